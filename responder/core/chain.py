"""The audit log's hash chain: what a row's hash covers, and how it is computed.

Each row stores `prev_hash` (the previous row's `hash`) and `hash` = SHA-256 of prev_hash
followed by the row's canonical content. Plain functions of the row's attributes, so the
migration that chained the existing rows (historical models) uses the very same rule.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Protocol

# The `prev_hash` of the first row.
GENESIS = "0" * 64

CONTENT_FIELDS = (
    "at",
    "user_id",
    "username",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "ip",
    "user_agent",
    "outcome",
    "details",
)


class Entry(Protocol):
    at: datetime
    user_id: int | None
    username: str
    action: str
    object_type: str
    object_id: str
    object_repr: str
    ip: str | None
    user_agent: str
    outcome: str
    details: Any


def canonical(value: Any) -> str:
    """Sorted keys, no whitespace, ASCII: the same text from any machine or database."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_iso_utc)


def _iso_utc(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def entry_content(entry: Entry) -> str:
    return canonical({field: getattr(entry, field) for field in CONTENT_FIELDS})


def chain_hash(prev_hash: str, content: str) -> str:
    # The database computes the same (SHA-256 of the UTF-8 of prev_hash || content) when a
    # row is appended: responder/core/models.py, AuditEntry._chain.
    return hashlib.sha256((prev_hash + content).encode()).hexdigest()
