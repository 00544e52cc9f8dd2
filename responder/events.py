"""Events on the wire: frame shapes, close codes, Redis channel names, one `broadcast()`.

Redis is only a doorbell. An announcement says "events up to seq N are stored"; every
daphne process then reads the new rows from the database once and writes them to its
own sockets (responder/fanout.py). Losing an announcement delays delivery, never loses it.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from types import SimpleNamespace
from typing import TYPE_CHECKING, Literal, TypedDict
from urllib.parse import urlparse

import redis
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.sessions.backends.base import SessionBase
from django.db import DatabaseError
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device

from maps.models import Building
from responder.access import active_grants, scope_q
from responder.capabilities import Capability
from responder.middleware import SIGNED_IN_AT

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from accesslog.models import Event

logger = logging.getLogger(__name__)

# A socket that resumes further back than this gets a reset and reloads over REST.
REPLAY_MAX_EVENTS = 1000
REPLAY_MAX_HOURS = 24
HEARTBEAT_SECONDS = 20


class CloseCode(IntEnum):
    NOT_SIGNED_IN = 4401  # no session, no verified second factor, disabled, signed out
    BAD_ORIGIN = 4403
    NO_ALARMS = 4404  # no alarms capability anywhere, or it was revoked


class EventFrame(TypedDict):
    type: Literal["event"]
    seq: int
    event: dict


class ResetFrame(TypedDict):
    type: Literal["reset", "live"]
    seq: int


class PingFrame(TypedDict):
    type: Literal["ping"]


class ResumeMessage(TypedDict):
    type: Literal["resume"]
    after: int


# None: every building and the unmapped doors (superusers, district-wide grants).
AlarmScope = frozenset[int] | None
EVERYWHERE: AlarmScope = None


def alarm_scope(user: AbstractBaseUser) -> AlarmScope:
    """The buildings whose events the user may see: `Event.objects.visible_to`, in memory."""
    q = scope_q(user, Capability.ALARMS, building="id")
    if not q:
        return EVERYWHERE
    return frozenset(Building.objects.filter(q).values_list("id", flat=True))


def in_scope(scope: AlarmScope, building_id: int | None) -> bool:
    return scope is EVERYWHERE or building_id in scope


def next_grant_end(user: AbstractBaseUser) -> datetime | None:
    """When the user's scope next shrinks by itself (a time-boxed grant ending)."""
    ends = [grant.ends_at for grant in active_grants(user) if grant.ends_at]
    return min(ends, default=None)


@dataclass(frozen=True)
class Access:
    """What a session may receive now: a close code, or a user and their alarm scope."""

    close_code: CloseCode | None
    user: AbstractBaseUser | None = None
    scope: AlarmScope = frozenset()
    recheck_at: datetime | None = None


def session_access(session: SessionBase) -> Access:
    """The checks of the HTTP stack (session, lifetime, OTPMiddleware, scope) for a socket."""
    user = get_user(SimpleNamespace(session=session))
    if not user.is_authenticated or not user.is_active:
        return Access(CloseCode.NOT_SIGNED_IN)
    signed_in_at = session.get(SIGNED_IN_AT)
    if signed_in_at is None or time.time() - signed_in_at > settings.SESSION_MAX_AGE:
        return Access(CloseCode.NOT_SIGNED_IN)
    if not _verified(session, user):
        return Access(CloseCode.NOT_SIGNED_IN)
    scope = alarm_scope(user)
    if scope is not EVERYWHERE and not scope:
        return Access(CloseCode.NO_ALARMS, user)
    return Access(None, user, scope, next_grant_end(user))


def _verified(session: SessionBase, user: AbstractBaseUser) -> bool:
    # As django_otp's OTPMiddleware: the session's device, confirmed and the user's own.
    persistent_id = session.get(DEVICE_ID_SESSION_KEY)
    device = persistent_id and Device.from_persistent_id(persistent_id)
    return bool(device and device.user_id == user.pk and device.confirmed)


def encode(frame: EventFrame | ResetFrame | PingFrame) -> str:
    return json.dumps(frame, separators=(",", ":"))


def channel(kind: Literal["events", "scope"]) -> str:
    # Pub/sub ignores Redis db numbers: name the db so deployments sharing a server don't mix.
    db = urlparse(settings.REDIS_URL).path.strip("/") or "0"
    return f"responder.{kind}.{db}"


@functools.cache
def _redis() -> redis.Redis:
    # Short timeouts: ingest must answer even when Redis is down (delivery then polls).
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)


def broadcast(kind: Literal["events", "scope"], message: dict) -> None:
    """Ring the doorbell on every daphne process. Never raises: the database is the truth."""
    try:
        _redis().publish(channel(kind), json.dumps(message))
    except redis.RedisError as error:
        logger.warning("Could not publish on %s (%s); sockets will poll", kind, error)


def announce(event: Event) -> None:
    """Call after the event's transaction commits.

    The announcement carries the encoded frame and the building, so a process that has
    delivered everything before it needs no database read; any other reads the rows.
    """
    # Imported here: accesslog's services import this module.
    from accesslog.models import Event as Events
    from accesslog.rendering import event_payloads, with_payload_relations

    try:
        event = with_payload_relations(Events.objects.filter(pk=event.pk)).get()
        payload = event_payloads([event])[0]
    except DatabaseError:
        broadcast("events", {"seq": event.seq})  # the processes read it themselves
        return
    frame = encode({"type": "event", "seq": event.seq, "event": payload})
    building = event.door and event.door.building_id
    broadcast("events", {"seq": event.seq, "building": building, "frame": frame})


def scope_changed(user_ids: Iterable[int] | None) -> None:
    """Every process re-checks these users' sockets (None: everyone's) at once."""
    broadcast("scope", {"users": None if user_ids is None else sorted(set(user_ids))})
