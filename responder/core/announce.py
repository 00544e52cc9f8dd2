"""The one way anything reaches live sockets: `announce_on_commit`.

Every producer (an alarm, its acknowledgements, an incident, a camera going offline, a
change of scope, a warning for IT) calls it inside or outside its transaction; the
message is published once the transaction commits (at once outside one), so a rolled-back
write announces nothing (zulip's `send_event_on_commit`). Redis is only a doorbell: every
daphne process reads what it needs from the message or the database (responder/alarms).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Literal, TypedDict
from urllib.parse import urlparse

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from responder.core.redis import RedisWrite, redis_send_now

ChannelKind = Literal["events", "scope", "acks", "incidents", "cameras", "it", "users"]
# A message, or a function that builds it after the commit (an alarm's frame is built
# outside the seq lock; acknowledgements are read once committed, so concurrent ones add up).
Message = dict | Callable[[], dict]


class WarningFrame(TypedDict):
    """Something district IT must act on (a lock-out, an emergency grant, a silent connector)."""

    type: Literal["warning"]
    kind: str  # e.g. "account.locked", "incident.emergency_grant", "connector.silent"
    text: str  # one plain sentence for the screen
    details: dict  # ids and names for a link; never secrets
    at: str


def announce_on_commit(kind: ChannelKind, message: Message) -> None:
    """Publish `message` on the `kind` channel once the caller's transaction commits."""
    transaction.on_commit(lambda: broadcast(kind, message() if callable(message) else message))


def encode(frame: Mapping[str, object]) -> str:  # a frame: a TypedDict of any shape
    return json.dumps(frame, separators=(",", ":"))


def channel(kind: ChannelKind) -> str:
    # Pub/sub ignores Redis db numbers: name the db so deployments sharing a server don't mix.
    db = urlparse(settings.REDIS_URL).path.strip("/") or "0"
    return f"responder.{kind}.{db}"


def broadcast(kind: ChannelKind, message: dict) -> None:
    """Ring the doorbell on every daphne process now. Never raises: the database is the
    truth. Producers call `announce_on_commit`; this is its last step."""
    # Fail-fast: ingest must answer even when Redis is down (delivery then polls).
    redis_send_now([doorbell(kind, message)])


def doorbell(kind: ChannelKind, message: dict) -> RedisWrite:
    """The doorbell as a write, for a caller that sends it with others in one round trip
    (ingest: with its pushes). What a lost one costs: the sockets poll."""
    publish = ("PUBLISH", channel(kind), json.dumps(message))
    return RedisWrite(settings.REDIS_URL, publish, f"The doorbell on {kind} (sockets will poll)")


def scope_changed(user_ids: Iterable[int] | None) -> None:
    """Every process re-checks these users' sockets (None: everyone's), after commit."""
    announce_on_commit("scope", {"users": None if user_ids is None else sorted(set(user_ids))})


def it_warn(*, kind: str, text: str, details: dict | None = None) -> None:
    """A warning frame to district IT's live sockets, sent once the caller's transaction
    commits (at once outside one). Live sockets only: the admin keeps the lasting record."""
    frame: WarningFrame = {
        "type": "warning",
        "kind": kind,
        "text": text,
        "details": details or {},
        "at": timezone.now().isoformat(),
    }
    announce_on_commit("it", {"frame": encode(frame)})


def users_notify(*, user_ids: Iterable[int], frame: Mapping[str, object]) -> None:
    """A frame to these users' live sockets (an export's progress to its maker), after
    commit. Live sockets only: the database keeps the state a reconnect reads."""
    announce_on_commit("users", {"users": sorted(set(user_ids)), "frame": encode(frame)})
