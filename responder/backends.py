from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest

from responder.models import SignInState


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
    ) -> AbstractBaseUser | None:
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and SignInState.objects.locked().filter(user=user).exists():
            return None
        return user
