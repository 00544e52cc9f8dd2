"""Events on the wire: frame shapes, close codes, what a socket may receive, the alarm's
announcement (sent through responder.core.announce, the one entry point).

Redis is only a doorbell. An announcement says "events up to seq N are stored"; every
daphne process then reads the new rows from the database once and writes them to its
own sockets (responder/alarms/fanout.py). Losing an announcement delays delivery, never loses it.

Notices (acknowledgements, incident changes, cameras going offline) have no seq and no
replay: they go out on channels of their own to the sockets live at that moment, and a
client that missed one finds the same facts over REST.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from types import SimpleNamespace
from typing import TYPE_CHECKING, Final, Literal, TypedDict, cast

from django.contrib.auth import get_user
from django.contrib.sessions.backends.base import SessionBase
from django.db import DatabaseError
from django.db.models import prefetch_related_objects
from django.http import HttpRequest
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device

from accesslog.rendering import AckFrame, event_payload, event_payloads
from cameras.models import Camera
from maps.models import Building
from responder.core.access import active_grants, is_district_it, scope_q
from responder.core.announce import WarningFrame, announce_on_commit, encode
from responder.core.capabilities import VIEWING, Capability
from responder.core.middleware import session_valid_until
from responder.incidents.services import IncidentScope, incident_scope

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from accesslog.models import Event

logger = logging.getLogger(__name__)

# A socket that resumes further back than this gets a reset and reloads over REST.
REPLAY_MAX_EVENTS = 1000
REPLAY_MAX_HOURS = 24
# A frame at least this often: the PWA calls a link silent for 15 s dead (frontend/src/link.js).
HEARTBEAT_SECONDS = 5


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


class IncidentFrame(TypedDict):
    type: Literal["incident"]
    incident: dict  # responder.incidents.services.incident_payload


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


ServerFrame = (
    EventFrame | ResetFrame | PingFrame | AckFrame | IncidentFrame | CameraFrame | WarningFrame
)


class ResumeMessage(TypedDict):
    type: Literal["resume"]
    after: int


# None: every building and the unmapped doors (superusers, district-wide grants).
AlarmScope = frozenset[int] | None
# Final: so that `scope is EVERYWHERE` narrows the scope to a set for the type checker.
EVERYWHERE: Final = None
# The cameras a user may watch (None: every camera), for camera notices.
CameraScope = frozenset[int] | None


def alarm_scope(user: User) -> AlarmScope:
    """The buildings whose events the user may see: `Event.objects.visible_to`, in memory."""
    q = scope_q(user, Capability.ALARMS, building="id")
    if not q:
        return EVERYWHERE
    return frozenset(Building.objects.filter(q).values_list("id", flat=True))


def in_scope(scope: AlarmScope | CameraScope, item_id: int | None) -> bool:
    return scope is EVERYWHERE or item_id in scope


def camera_scope(user: User) -> CameraScope:
    """`Camera.objects.visible_to(user, *VIEWING)`, in memory."""
    if not scope_q(user, *VIEWING, building="building", tags="tags"):
        return EVERYWHERE
    return frozenset(Camera.objects.visible_to(user, *VIEWING).values_list("id", flat=True))


def next_grant_end(user: User) -> datetime | None:
    """When the user's scope next shrinks by itself (a time-boxed grant ending)."""
    ends = [grant.ends_at for grant in active_grants(user) if grant.ends_at]
    return min(ends, default=None)


@dataclass(frozen=True)
class Access:
    """What a session may receive now: a close code, or a user and their scopes."""

    close_code: CloseCode | None
    user: User | None = None
    scope: AlarmScope = frozenset()
    recheck_at: datetime | None = None  # when the session ends or a grant runs out
    incidents: IncidentScope | None = None
    cameras: CameraScope = frozenset()
    it: bool = False  # district IT: receives the warnings of it_warn()


def session_access(session: SessionBase) -> Access:
    """The checks of the HTTP stack (session, its validity, scope) for a socket."""
    # get_user reads nothing of a request but its session.
    user = get_user(cast(HttpRequest, SimpleNamespace(session=session)))
    if not user.is_authenticated or not user.is_active:
        return Access(CloseCode.NOT_SIGNED_IN)
    valid_until = session_valid_until(session, user, _session_device(session))
    if valid_until is None:
        return Access(CloseCode.NOT_SIGNED_IN)
    scope = alarm_scope(user)
    if scope is not EVERYWHERE and not scope:
        return Access(CloseCode.NO_ALARMS, user)

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


def announce(event: Event, *, may_have_incident: bool = True) -> None:
    """Ring every process's doorbell once the event's transaction commits.

    The announcement carries the encoded frame and the building, so processes deliver it
    without a database read: in seq order, one ahead of a missing seq waiting a moment
    for it (responder/alarms/fanout.py); a seq never announced is read from the database.
    `may_have_incident=False` (no rule applied at ingest) skips looking for the
    incident the event opened or joined (only a rule does either at ingest).
    """
    announce_on_commit("events", lambda: event_message(event, may_have_incident=may_have_incident))


def event_message(event: Event, *, may_have_incident: bool = True) -> dict:
    try:
        # The objects ingest holds already have the door and its cameras: then the
        # payload costs at most one query (the incident), not a re-read of the event.
        prefetch_related_objects([event], "door__door_cameras")
        payload = event_payloads([event])[0] if may_have_incident else event_payload(event)
    except DatabaseError:
        return {"seq": event.seq}  # the processes read it themselves
    frame = encode({"type": "event", "seq": event.seq, "event": payload})
    building = event.door and event.door.building_id
    # Every camera of the door: each process narrows the frame per scope group.
    return {"seq": event.seq, "building": building, "frame": frame, "cameras": payload["cameras"]}
