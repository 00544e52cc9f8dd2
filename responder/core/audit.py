"""Writing the audit log: one call for every sign-in, grant change and view of video."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import connection, models, transaction
from django.http import HttpRequest

from responder.core.chain import GENESIS, chain_hash, entry_content
from responder.core.models import AuditChainHead, AuditEntry, Outcome


def audit_record(
    *,
    action: str,
    request: HttpRequest | None = None,
    user: User | AnonymousUser | None = None,
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


@dataclass(frozen=True)
class ChainBreak:
    """The first row where the chain does not hold, and how."""

    id: int
    at: datetime
    action: str
    problem: str

    def __str__(self) -> str:
        return f"row {self.id} ({self.at.isoformat()}, {self.action}): {self.problem}"


def audit_verify() -> ChainBreak | None:
    """Walks the chain in id order; None when every row and the head hold."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":  # rows and head, one snapshot
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        head = AuditChainHead.objects.first()
        prev, last = GENESIS, None
        for entry in AuditEntry.objects.order_by("id").iterator(chunk_size=2000):
            problem = _entry_problem(entry, prev)
            if problem:
                return ChainBreak(entry.pk, entry.at, entry.action, problem)
            prev, last = entry.hash, entry
    if last is not None and (head is None or head.hash != last.hash):
        problem = "rows after it were deleted (the chain's head names a later row)"
        return ChainBreak(last.pk, last.at, last.action, problem)
    return None


def _entry_problem(entry: AuditEntry, prev: str) -> str:
    if entry.prev_hash != prev:
        return "the row before it was deleted or changed (prev_hash does not match)"
    if entry.hash != chain_hash(prev, entry_content(entry)):
        return "its content was changed (hash does not match)"
    return ""


def client_ip(request: HttpRequest | None) -> str | None:
    """The address of whoever made the request. X-Forwarded-For is read only as far as
    the hops that appended to it are TRUSTED_PROXIES: anyone else can write anything there.
    """
    peer = request.META.get("REMOTE_ADDR") if request else None
    if request is None or not peer or not _trusted(peer):
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
