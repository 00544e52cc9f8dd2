from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from cameras.tokens import tokens_revoke


@receiver(user_logged_out, dispatch_uid="cameras.revoke_live_tokens")
def revoke_live_tokens(sender, request, user, **kwargs) -> None:
    # Signing out on one device ends every live link the user holds; the PWA asks again.
    if user is not None:
        tokens_revoke(user_id=user.pk)
