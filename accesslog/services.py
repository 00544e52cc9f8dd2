"""Writes of access-control events: acknowledgement, linking doors mapped later.

Storing an event (ingest, its seq and its side effects) is responder/alarms/services.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.http import HttpRequest

from accesslog.models import Door, Event, EventAck
from accesslog.rendering import AckFrame, ack_record
from responder.core.announce import announce_on_commit, encode
from responder.core.audit import audit_record

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@transaction.atomic
def event_ack(
    *, event: Event, user: User, request: HttpRequest | None = None
) -> tuple[EventAck, bool]:
    """Records that `user` acknowledged `event`; acknowledging twice keeps the first.

    Audited like a view of video: who answered an alarm, and when, is part of the record
    (the second press is audited too, as a repeat, since it was an act of its own)."""
    ack, created = EventAck.objects.get_or_create(event=event, user=user)
    audit_record(
        action="event.acknowledged",
        request=request,
        user=user,
        obj=event,
        details={"seq": event.seq, "type": event.type, "door": event.door_id, "first": created},
    )
    if created:
        event_acks_announce(event)
    return ack, created


def event_acks_announce(event: Event) -> None:
    """After commit: the sockets that have the event get everyone who acknowledged it."""
    announce_on_commit("acks", lambda: event_acks_message(event))


def event_acks_message(event: Event) -> dict:
    """The whole list, read after our commit, so concurrent acknowledgements add up; the
    frame is encoded here, once."""
    acks = EventAck.objects.filter(event=event).select_related("user").order_by("at", "id")
    records = [ack_record(ack) for ack in acks]
    frame: AckFrame = {"type": "ack", "seq": event.seq, "event": event.id, "acks": records}
    building = event.door.building_id if event.door else None
    return {"seq": event.seq, "building": building, "frame": encode(frame)}


def event_doors_link(*, events: Any = None) -> int:
    """Links stored events of unknown doors to the doors district IT has since created."""
    unmapped = (events if events is not None else Event.objects.all()).filter(door=None)
    linked = 0
    for system_id, external_id in unmapped.values_list("system", "door_external_id").distinct():
        door = Door.objects.filter(system=system_id, external_id=external_id).first()
        if door is not None:
            same_door = unmapped.filter(system=system_id, door_external_id=external_id)
            linked += same_door.update(door=door)
    return linked


@dataclass(frozen=True)
class VendorDoor:
    """A door as its access system lists it: its key there and its name."""

    key: str
    name: str
    # The door's former id here, where doors were keyed by display name (NetBox).
    former_key: str = ""
