"""Writing the audit log: one call for every sign-in, grant change and view of video."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import models
from django.http import HttpRequest

from responder.models import AuditEntry, Outcome


def audit_record(
    *,
    action: str,
    request: HttpRequest | None = None,
    user: AbstractBaseUser | AnonymousUser | None = None,
    obj: models.Model | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    details: dict[str, Any] | None = None,
    username: str = "",
) -> AuditEntry:
    """Append one row. `user` defaults to the request's; `username` names an unknown one."""
    if user is None and request is not None:
        user = request.user
    known = user if user is not None and user.is_authenticated else None
    return AuditEntry.objects.create(
        action=action,
        user=known,
        username=known.get_username() if known else username[:150],
        object_type=obj._meta.label if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        ip=client_ip(request),
        user_agent=(request.headers.get("User-Agent", "") if request else "")[:300],
        outcome=outcome,
        details=details or {},
    )


def client_ip(request: HttpRequest | None) -> str | None:
    # REMOTE_ADDR only: behind a proxy, the proxy must set it (daphne --proxy-headers).
    return request.META.get("REMOTE_ADDR") or None if request else None
