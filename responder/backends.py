# Beside the settings, not in responder/core: every session stores this module's dotted
# path (django.contrib.auth's BACKEND_SESSION_KEY), so moving it would sign everyone out.
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.http import HttpRequest

from responder.core.models import SignInState


class LockoutModelBackend(ModelBackend):
    """ModelBackend that refuses a password for a locked account, whatever the password.

    Only new sign-ins: a lock does not end the sessions already open, so that someone
    guessing a responder's code cannot sign them out in the middle of an incident.
    Disabling the user (is_active) ends those, through ModelBackend.get_user.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: object,
    ) -> User | None:
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and SignInState.objects.locked().filter(user=user).exists():
            return None
        return user
