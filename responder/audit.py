"""Writing the audit log: one call for every sign-in, grant change and view of video."""

from __future__ import annotations

from functools import cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

from django.conf import settings
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
    """The address of whoever made the request. X-Forwarded-For is read only as far as
    the hops that appended to it are TRUSTED_PROXIES: anyone else can write anything there.
    """
    peer = request.META.get("REMOTE_ADDR") if request else None
    if not peer or not _trusted(peer):
        return peer or None
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    # Each proxy appends the address it was handed the request by: read from the right.
    for hop in reversed([hop.strip() for hop in forwarded if hop.strip()]):
        if _address(hop) is None:
            break
        peer = hop
        if not _trusted(hop):
            break
    return peer


def _trusted(address: str) -> bool:
    ip = _address(address)
    return ip is not None and any(
        ip in network for network in _proxies(tuple(settings.TRUSTED_PROXIES))
    )


def _address(text: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(text)
    except ValueError:
        return None


@cache
def _proxies(configured: tuple[str, ...]) -> list[IPv4Network | IPv6Network]:
    return [ip_network(item, strict=False) for item in configured]
