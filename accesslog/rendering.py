"""The one shape of an event for clients: WebSocket frames, REST history, web pushes."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, QuerySet

from accesslog.models import DoorCamera, Event, EventAck, EventQuerySet
from cameras.models import Camera
from responder.capabilities import VIEWING
from responder.incidents import EntryKind
from responder.models import IncidentEntry


def with_payload_relations(
    events: EventQuerySet, *, viewer: AbstractBaseUser | None = None
) -> EventQuerySet:
    """What `event_payloads` reads, fetched in two queries per batch.

    With a viewer, a door's cameras are those the viewer may watch; without one, all of
    them (the socket fan-out narrows them per scope group: responder/fanout.py).
    """
    links = DoorCamera.objects.all() if viewer is None else watchable_door_cameras(viewer)
    return events.select_related("door").prefetch_related(Prefetch("door__door_cameras", links))


def watchable_door_cameras(viewer: AbstractBaseUser) -> QuerySet[DoorCamera]:
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


def ack_record(ack: EventAck) -> dict:
    """Who acknowledged and when: in REST event records and the socket's ack frames."""
    user = ack.user
    return {
        "user": user.pk,
        "name": user.get_full_name() or user.get_username(),
        "at": ack.at.isoformat(),
    }
