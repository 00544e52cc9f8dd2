from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from cameras.tokens import session_unbind, tokens_revoke


@receiver(user_logged_out, dispatch_uid="cameras.revoke_live_tokens")
def revoke_live_tokens(sender, request, user, **kwargs) -> None:
    # Signing out on one device ends every live link the user holds; the PWA asks again.
    if user is not None:
        tokens_revoke(user_id=user.pk)
    if request is not None and request.session.session_key:
        session_unbind(session_key=request.session.session_key)


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="cameras.user_disabled")
def user_disabled(sender, instance, **kwargs) -> None:
    # Segments re-ask the database only every few seconds; a disabled user stops at once.
    if not instance.is_active:
        tokens_revoke(user_id=instance.pk)


@receiver(post_delete, sender="sessions.Session", dispatch_uid="cameras.session_ended")
def session_ended(sender, instance, **kwargs) -> None:
    # A session deleted any way (flushed, cleared, removed by IT) takes its video links along.
    session_unbind(session_key=instance.session_key)
