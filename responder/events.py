"""Events on the wire: frame shapes, close codes, Redis channel names, one `broadcast()`.

Redis is only a doorbell. An announcement says "events up to seq N are stored"; every
daphne process then reads the new rows from the database once and writes them to its
own sockets (responder/fanout.py). Losing an announcement delays delivery, never loses it.

Notices (acknowledgements, incident changes, cameras going offline) have no seq and no
replay: they go out on channels of their own to the sockets live at that moment, and a
client that missed one finds the same facts over REST.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from types import SimpleNamespace
from typing import TYPE_CHECKING, Literal, TypedDict
from urllib.parse import urlparse

import redis
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.sessions.backends.base import SessionBase
from django.db import DatabaseError, transaction
from django.db.models import prefetch_related_objects
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device

from cameras.models import Camera
from maps.models import Building
from responder.access import active_grants, is_district_it, scope_q
from responder.capabilities import VIEWING, Capability
from responder.celery import quick_redis
from responder.middleware import session_valid_until

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from accesslog.models import Event
    from responder.incidents import IncidentScope

logger = logging.getLogger(__name__)

# A socket that resumes further back than this gets a reset and reloads over REST.
REPLAY_MAX_EVENTS = 1000
REPLAY_MAX_HOURS = 24
HEARTBEAT_SECONDS = 20


class CloseCode(IntEnum):
    """Sent as plain ints: autobahn (under daphne) refuses anything else, enums included,
    and any code but 1000 and 3000-4999 from a server."""

    NOT_SIGNED_IN = 4401  # no session, no verified second factor, disabled, signed out, ended
    BAD_ORIGIN = 4403
    NO_ALARMS = 4404  # no alarms capability anywhere, or it was revoked
    UNCHECKED = 4503  # the server could not check the session: reconnect, to be checked afresh


class EventFrame(TypedDict):
    type: Literal["event"]
    seq: int
    event: dict


class ResetFrame(TypedDict):
    type: Literal["reset", "live"]
    seq: int


class PingFrame(TypedDict):
    type: Literal["ping"]


class AckRecord(TypedDict):
    user: int
    name: str
    at: str


class AckFrame(TypedDict):
    """Who has acknowledged event `event` (seq `seq`) so far, all of them."""

    type: Literal["ack"]
    seq: int
    event: int
    acks: list[AckRecord]


class IncidentFrame(TypedDict):
    type: Literal["incident"]
    incident: dict  # responder.incidents.incident_payload


class CameraRef(TypedDict):
    id: int
    name: str
    building: int
    floor: int | None


class CameraFrame(TypedDict):
    type: Literal["camera"]
    severity: Literal["warning"]
    state: Literal["offline"]
    camera: CameraRef
    stream: Literal["main", "sub"]
    reason: str  # never a stream URL: those may carry the camera's credentials
    at: str


class WarningFrame(TypedDict):
    """Something district IT must act on (a lock-out, an emergency grant, a silent connector)."""

    type: Literal["warning"]
    kind: str  # e.g. "account.locked", "incident.emergency_grant", "connector.silent"
    text: str  # one plain sentence for the screen
    details: dict  # ids and names for a link; never secrets
    at: str


ServerFrame = (
    EventFrame | ResetFrame | PingFrame | AckFrame | IncidentFrame | CameraFrame | WarningFrame
)
ChannelKind = Literal["events", "scope", "acks", "incidents", "cameras", "it"]


class ResumeMessage(TypedDict):
    type: Literal["resume"]
    after: int


# None: every building and the unmapped doors (superusers, district-wide grants).
AlarmScope = frozenset[int] | None
EVERYWHERE: AlarmScope = None
# The cameras a user may watch (None: every camera), for camera notices.
CameraScope = frozenset[int] | None


def alarm_scope(user: AbstractBaseUser) -> AlarmScope:
    """The buildings whose events the user may see: `Event.objects.visible_to`, in memory."""
    q = scope_q(user, Capability.ALARMS, building="id")
    if not q:
        return EVERYWHERE
    return frozenset(Building.objects.filter(q).values_list("id", flat=True))


def in_scope(scope: AlarmScope | CameraScope, item_id: int | None) -> bool:
    return scope is EVERYWHERE or item_id in scope


def camera_scope(user: AbstractBaseUser) -> CameraScope:
    """`Camera.objects.visible_to(user, *VIEWING)`, in memory."""
    if not scope_q(user, *VIEWING, building="building", tags="tags"):
        return EVERYWHERE
    return frozenset(Camera.objects.visible_to(user, *VIEWING).values_list("id", flat=True))


def next_grant_end(user: AbstractBaseUser) -> datetime | None:
    """When the user's scope next shrinks by itself (a time-boxed grant ending)."""
    ends = [grant.ends_at for grant in active_grants(user) if grant.ends_at]
    return min(ends, default=None)


@dataclass(frozen=True)
class Access:
    """What a session may receive now: a close code, or a user and their scopes."""

    close_code: CloseCode | None
    user: AbstractBaseUser | None = None
    scope: AlarmScope = frozenset()
    recheck_at: datetime | None = None  # when the session ends or a grant runs out
    incidents: IncidentScope | None = None
    cameras: CameraScope = frozenset()
    it: bool = False  # district IT: receives the warnings of it_warn()


def session_access(session: SessionBase) -> Access:
    """The checks of the HTTP stack (session, its validity, scope) for a socket."""
    user = get_user(SimpleNamespace(session=session))
    if not user.is_authenticated or not user.is_active:
        return Access(CloseCode.NOT_SIGNED_IN)
    valid_until = session_valid_until(session, user, _session_device(session))
    if valid_until is None:
        return Access(CloseCode.NOT_SIGNED_IN)
    scope = alarm_scope(user)
    if scope is not EVERYWHERE and not scope:
        return Access(CloseCode.NO_ALARMS, user)
    # Imported here: responder.incidents broadcasts through this module.
    from responder.incidents import incident_scope

    session_end = datetime.fromtimestamp(valid_until, tz=UTC)
    grant_end = next_grant_end(user)
    return Access(
        None,
        user,
        scope,
        min(session_end, grant_end) if grant_end else session_end,
        incident_scope(user),
        camera_scope(user),
        is_district_it(user),
    )


def _session_device(session: SessionBase) -> Device | None:
    persistent_id = session.get(DEVICE_ID_SESSION_KEY)
    return Device.from_persistent_id(persistent_id) if persistent_id else None


def encode(frame: ServerFrame) -> str:
    return json.dumps(frame, separators=(",", ":"))


def channel(kind: ChannelKind) -> str:
    # Pub/sub ignores Redis db numbers: name the db so deployments sharing a server don't mix.
    db = urlparse(settings.REDIS_URL).path.strip("/") or "0"
    return f"responder.{kind}.{db}"


def broadcast(kind: ChannelKind, message: dict) -> None:
    """Ring the doorbell on every daphne process. Never raises: the database is the truth."""
    try:
        # Fail-fast: ingest must answer even when Redis is down (delivery then polls).
        quick_redis(settings.REDIS_URL).publish(channel(kind), json.dumps(message))
    except redis.RedisError as error:
        logger.warning("Could not publish on %s (%s); sockets will poll", kind, error)


def announce(event: Event, *, may_have_incident: bool = True) -> None:
    """Call after the event's transaction commits.

    The announcement carries the encoded frame and the building, so processes deliver it
    without a database read: in seq order, one ahead of a missing seq waiting a moment
    for it (responder/fanout.py); a seq never announced is read from the database.
    `may_have_incident=False` (no rule applied at ingest) skips looking for the
    incident the event opened or joined (only a rule does either at ingest).
    """
    # Imported here: accesslog's services import this module.
    from accesslog.rendering import event_payload, event_payloads

    try:
        # The objects ingest holds already have the door and its cameras: then the
        # payload costs at most one query (the incident), not a re-read of the event.
        prefetch_related_objects([event], "door__door_cameras")
        payload = event_payloads([event])[0] if may_have_incident else event_payload(event)
    except DatabaseError:
        broadcast("events", {"seq": event.seq})  # the processes read it themselves
        return
    frame = encode({"type": "event", "seq": event.seq, "event": payload})
    building = event.door and event.door.building_id
    # Every camera of the door: each process narrows the frame per scope group.
    message = {"seq": event.seq, "building": building, "frame": frame}
    broadcast("events", {**message, "cameras": payload["cameras"]})


def acks_announce(event: Event, acks: list[AckRecord]) -> None:
    """Call after the acknowledgement commits; the frame is encoded here, once."""
    frame: AckFrame = {"type": "ack", "seq": event.seq, "event": event.id, "acks": acks}
    building = event.door.building_id if event.door_id else None
    broadcast("acks", {"seq": event.seq, "building": building, "frame": encode(frame)})


def scope_changed(user_ids: Iterable[int] | None) -> None:
    """Every process re-checks these users' sockets (None: everyone's) at once."""
    broadcast("scope", {"users": None if user_ids is None else sorted(set(user_ids))})


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
    message = {"frame": encode(frame)}
    transaction.on_commit(lambda: broadcast("it", message))
