from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accesslog.models import Severity
from cameras.live import live_warm_queue
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


@receiver(post_save, sender="accesslog.Event", dispatch_uid="cameras.warm_on_alarm")
def warm_on_alarm(sender, instance, created: bool, **kwargs) -> None:
    # The officer's tap on the alarm then plays at once. After commit: a rolled-back
    # ingest warms nothing. The ingest prefetches the door's cameras, so this check costs
    # no query under its seq lock; a door without cameras queues nothing.
    if not (created and instance.severity == Severity.ALARM and settings.LIVE_WARM_ON_ALARM):
        return
    if instance.late:  # an old alarm: nobody will tap it to watch
        return
    if instance.door is not None and instance.door.door_cameras.all():
        door_id = instance.door_id
        transaction.on_commit(lambda: live_warm_queue(door_id=door_id))
