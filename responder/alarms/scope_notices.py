"""Tell every daphne process whose sockets to re-check when who-may-see-what changes.

Revocation must close a socket within seconds, not at the next periodic re-check.
Bulk `QuerySet.update()` sends no signal: call `responder.core.announce.scope_changed` after it.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver
from django_otp.models import Device

from maps.models import Building
from responder.core.announce import scope_changed
from responder.core.models import Grant

User = get_user_model()


def _notify(user_ids: list[int] | None) -> None:
    scope_changed(user_ids)  # after commit


@receiver(post_save, sender=Grant)
@receiver(post_delete, sender=Grant)
def grant_changed(sender: type, instance: Grant, **kwargs: object) -> None:
    if instance.user_id:
        _notify([instance.user_id])
    else:
        _notify(list(User.objects.filter(groups=instance.group_id).values_list("id", flat=True)))


@receiver(m2m_changed, sender=User.groups.through)
def membership_changed(
    sender: type, instance: Model, action: str, reverse: bool, pk_set: set | None, **kwargs
) -> None:
    if not action.startswith("post_"):
        return
    if not reverse:
        _notify([instance.pk])
    else:  # group.user_set changed; after a clear the members are unknown
        _notify(None if pk_set is None else list(pk_set))


@receiver(post_save, sender=User)
@receiver(post_delete, sender=User)
def user_changed(sender: type, instance: Model, **kwargs: object) -> None:
    # Deactivation, a new password (the session hash), deletion.
    _notify([instance.pk])


@receiver(post_save)
@receiver(post_delete)
def device_changed(sender: type, instance: object, **kwargs: object) -> None:
    if isinstance(instance, Device):
        _notify([instance.user_id])


@receiver(user_logged_out)
def signed_out(sender: type, request: object, user: Model | None, **kwargs: object) -> None:
    # logout() flushes the session only after this signal: end it here, or a socket
    # re-checked in between would find it still signed in and stay open.
    session = getattr(request, "session", None)
    if session is not None:
        session.delete()
    if user is not None:
        _notify([user.pk])


@receiver(post_save, sender=Building)
@receiver(post_delete, sender=Building)
def building_changed(sender: type, instance: Building, **kwargs: object) -> None:
    # Campus grants cover a new or moved building: every scope may change.
    _notify(None)
