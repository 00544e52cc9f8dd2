"""The one shape of an event for clients: WebSocket frames, REST history, web pushes."""

from __future__ import annotations

from collections.abc import Iterable

from accesslog.models import Event, EventQuerySet
from responder.models import Incident


def with_payload_relations(events: EventQuerySet) -> EventQuerySet:
    """What `event_payloads` reads, fetched in two queries per batch."""
    return events.select_related("door").prefetch_related("door__door_cameras")


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
    }


def event_payloads(events: Iterable[Event]) -> list[dict]:
    """Payloads for a batch, with the incident each alarm opened (one query)."""
    events = list(events)
    if not events:
        return []
    incidents = dict(
        Incident.objects.filter(source_event__in=[e.id for e in events]).values_list(
            "source_event_id", "id"
        )
    )
    return [event_payload(e, incident_id=incidents.get(e.id)) for e in events]
