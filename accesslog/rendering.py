"""The one shape of an event for clients: WebSocket frames, REST history, web pushes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypedDict

from django.contrib.auth.models import User
from django.db.models import Prefetch, QuerySet

from accesslog.models import Door, DoorCamera, Event, EventAck, EventQuerySet
from cameras.models import Camera
from responder.core.capabilities import VIEWING
from responder.core.models import EntryKind, IncidentEntry


def with_payload_relations(events: EventQuerySet, *, viewer: User | None = None) -> EventQuerySet:
    """What `event_payloads` reads, fetched in two queries per batch.

    With a viewer, a door's cameras are those the viewer may watch; without one, all of
    them (the socket fan-out narrows them per scope group: responder/alarms/fanout.py).
    """
    links = DoorCamera.objects.all() if viewer is None else watchable_door_cameras(viewer)
    return events.select_related("door__building__campus", "door__floor").prefetch_related(
        Prefetch("door__door_cameras", links)
    )


def watchable_door_cameras(viewer: User) -> QuerySet[DoorCamera]:
    """Door-camera links of the cameras the viewer may watch: what a payload may name."""
    return DoorCamera.objects.filter(camera__in=Camera.objects.visible_to(viewer, *VIEWING))


def event_payload(event: Event, *, incident_id: int | None = None) -> dict:
    door = event.door
    return {
        "id": event.id,
        "type": event.type,
        "severity": event.severity,
        "occurred_at": event.occurred_at.isoformat(),
        "door": door
        and {
            "id": door.id,
            "name": door.name,
            "building": door.building_id,
            "floor": door.floor_id,
            "placement": door.placement,
        },
        "cameras": [link.camera_id for link in door.door_cameras.all()] if door else [],
        "incident": incident_id,
        "late": event.late,
        "location": door and door_location(door),
    }


def door_location(door: Door) -> dict:
    """Names for the line "campus › building › floor": a device may hold no map of the place
    (a push, a scope without maps), and a responder must still know where to go."""
    return {
        "campus": door.building.campus.name,
        "building": door.building.name,
        "floor": door.floor.name if door.floor else None,
    }


def event_payloads(events: Iterable[Event]) -> list[dict]:
    """Payloads for a batch, with the incident each event opened or joined (one query)."""
    events = list(events)
    if not events:
        return []
    entries = IncidentEntry.objects.filter(
        kind=EntryKind.EVENT, event__in=[e.id for e in events]
    ).order_by("id")
    incidents = dict(entries.values_list("event_id", "incident_id"))
    return [event_payload(e, incident_id=incidents.get(e.id)) for e in events]


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


def ack_record(ack: EventAck) -> AckRecord:
    """Who acknowledged and when: in REST event records and the socket's ack frames."""
    user = ack.user
    return {
        "user": user.pk,
        "name": user.get_full_name() or user.get_username(),
        "at": ack.at.isoformat(),
    }
