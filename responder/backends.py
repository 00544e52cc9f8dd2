from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser


class LockoutModelBackend(ModelBackend):
    """ModelBackend that refuses a locked account, whatever the password."""

    def user_can_authenticate(self, user: AbstractBaseUser) -> bool:
        state = getattr(user, "sign_in_state", None)
        return super().user_can_authenticate(user) and not (state and state.locked_at)
