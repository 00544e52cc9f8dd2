"""Audit rows for changes made anywhere (grants, group membership, the admin); sign-in time."""

import time

from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from responder.core.audit import audit_record
from responder.core.middleware import SIGNED_IN_AT
from responder.core.models import Grant

User = get_user_model()


def grant_details(grant: Grant) -> dict:
    return {
        "grantee": str(grant.grantee),
        "capabilities": grant.capabilities,
        "scope": grant.scope_label,
        "starts_at": grant.starts_at.isoformat() if grant.starts_at else None,
        "ends_at": grant.ends_at.isoformat() if grant.ends_at else None,
        "incident": grant.incident_id,
    }


@receiver(user_logged_in)
def stamp_sign_in_time(sender: type, request: object, user: object, **kwargs) -> None:
    # The start of the session's absolute lifetime (SessionLifetimeMiddleware).
    if request is not None and hasattr(request, "session"):
        request.session[SIGNED_IN_AT] = time.time()


@receiver(post_save, sender=Grant)
def audit_grant_saved(sender: type, instance: Grant, created: bool, **kwargs) -> None:
    action = "grant.created" if created else "grant.changed"
    audit_record(action=action, obj=instance, details=grant_details(instance))


@receiver(post_delete, sender=Grant)
def audit_grant_deleted(sender: type, instance: Grant, **kwargs) -> None:
    audit_record(action="grant.deleted", obj=instance, details=grant_details(instance))


@receiver(m2m_changed, sender=Grant.tags.through)
def audit_grant_tags(sender: type, instance: Grant, action: str, **kwargs) -> None:
    if action in ("post_add", "post_remove", "post_clear"):
        audit_record(action="grant.changed", obj=instance, details=grant_details(instance))


@receiver(m2m_changed, sender=User.groups.through)
def audit_group_membership(
    sender: type, instance: Model, action: str, pk_set: set | None, **kwargs
) -> None:
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    verb = {"post_add": "added", "post_remove": "removed", "post_clear": "cleared"}[action]
    audit_record(
        action=f"membership.{verb}",
        obj=instance,
        details={"model": kwargs["model"]._meta.label, "ids": sorted(pk_set or [])},
    )


@receiver(post_save, sender=LogEntry)
def audit_admin_change(sender: type, instance: LogEntry, created: bool, **kwargs) -> None:
    if not created:
        return
    verb = {1: "added", 2: "changed", 3: "deleted"}.get(instance.action_flag, "changed")
    model = instance.content_type.model_class() if instance.content_type else None
    audit_record(
        action=f"admin.{verb}",
        user=instance.user,
        details={
            "object_type": model._meta.label if model else "",
            "object_id": instance.object_id,
            "object_repr": instance.object_repr,
            "change": instance.get_change_message(),
        },
    )
