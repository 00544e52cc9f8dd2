"""Writes of access-control events: ingest, acknowledgement, linking doors mapped later.

Sequence numbers. `seq` is the order of delivery, and a client that saw seq N asks for
"after N". So a reader must never see N and later find a new event below N: numbers
must become visible in the order they were given. With concurrent ingests, a plain
sequence (or `max + 1` without a lock) breaks this: transaction A takes 7, B takes 8,
B commits first, a socket serves 8, then A commits 7 behind it and 7 is never sent.

So allocation is serialised and held until commit: on PostgreSQL a transaction-level
advisory lock taken before reading `max(seq)`, released by the commit or the rollback;
on SQLite every write transaction begins IMMEDIATE (settings), which already holds the
database's single write lock. The next number is `max(seq) + 1` under that lock, so
numbers are gapless as well as ordered: a rolled-back ingest gives its number back.
Ingests queue on the lock for the length of one short transaction (a few ms), far
above the 200 events/s asked for (see the report's figures). Events are never deleted
(the admin is read-only), so `max(seq)` never moves back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accesslog.directory import Directory, directory
from accesslog.models import SEVERITY_OF, AccessSystem, Door, Event, EventAck, Severity
from accesslog.rendering import ack_record
from accesslog.serializers import EventIngestSerializer
from responder import events
from responder.celery import task_send_now
from responder.incidents import incident_for_alarm, incident_rule_for
from responder.models import IncidentRule, PendingPush

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


# Any 64-bit constant, the same in every process: "the event seq allocator".
SEQ_LOCK_KEY = 0x5245_5350_5345_51  # "RESPSEQ"


def event_ingest(
    *, system: AccessSystem, payload: Any, lookups: Directory | None = None
) -> tuple[Event, bool]:
    """Validates and stores one event; returns (event, created).

    A `source_event_id` already stored for the system returns that event and False,
    and nothing is announced again. Raises rest_framework's ValidationError, naming the
    fields at fault, with nothing stored.

    Every ingest queues on the seq lock, so the transaction holding it does only what
    needs it: take the next seq and insert (and open an incident when a rule may apply).
    The door, its cameras and the rules are read before, through `lookups` (the process's
    accesslog.directory by default); the payload is announced from these objects after
    commit, without reading the event back.
    """
    serializer = EventIngestSerializer(data=payload)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    # No look for a duplicate first: they are rare (a system's retries), and the unique
    # constraint finds them below, under the lock, with nothing kept.
    lookups = lookups or directory()
    door = lookups.door(system, data["door"])
    late = event_is_late(data["occurred_at"])
    # A late event opens no incident: the door was forced minutes or months ago.
    rule = None if late else _incident_rule(door, data["type"], lookups)
    try:
        with transaction.atomic():
            _seq_lock()
            event = _event_create(system, door, data, late=late)
            if rule is not None:
                # Same transaction: an alarm and the incident it opens are stored together.
                incident_for_alarm(event=event, rule=rule)
    except IntegrityError:
        # The unique constraint: a duplicate, stored before or committed while we waited
        # for the lock. The rollback kept nothing and gave the seq back.
        existing = _stored(system, data["source_event_id"])
        if existing is None:
            raise
        return existing, False
    transaction.on_commit(lambda: event_announce(event, may_have_incident=rule is not None))
    return event, True


def event_is_late(occurred_at: datetime) -> bool:
    """Older than ALARM_MAX_AGE_SECONDS now: a compare, nothing more (ingest's hot path)."""
    return timezone.now() - occurred_at > timedelta(seconds=settings.ALARM_MAX_AGE_SECONDS)


def _stored(system: AccessSystem, source_event_id: str) -> Event | None:
    return Event.objects.filter(system=system, source_event_id=source_event_id).first()


def _incident_rule(door: Door | None, event_type: str, lookups: Directory) -> IncidentRule | None:
    """The rule `incident_for_alarm` would apply, found before the seq lock: most events
    (badges) meet none and skip its queries under the lock. A rule enabled between this
    read and the commit applies from the next event on."""
    if door is None:
        return None
    return incident_rule_for(
        campus_id=door.building.campus_id, event_type=event_type, rules=lookups.incident_rules()
    )


def _seq_lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEQ_LOCK_KEY])


def _event_create(system: AccessSystem, door: Door | None, data: dict, *, late: bool) -> Event:
    # Read raw: under the lock every µs counts, and the ORM's aggregate costs twice this.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX(seq) FROM {Event._meta.db_table}")
        head = cursor.fetchone()[0] or 0
    return Event.objects.create(
        seq=head + 1,
        system=system,
        source_event_id=data["source_event_id"],
        type=data["type"],
        severity=SEVERITY_OF[data["type"]],
        door=door,
        door_external_id=data["door"],
        # In UTC, as a read from the database gives it: the announced frame and a
        # replayed one must be the same bytes.
        occurred_at=data["occurred_at"].astimezone(UTC),
        credential=data.get("credential", ""),
        person=data.get("person", ""),
        details=data.get("details", {}),
        late=late,
    )


def event_announce(event: Event, *, may_have_incident: bool = True) -> None:
    """After commit: ring the sockets' doorbell and queue the pushes. Neither may fail the
    ingest: sockets replay from the database whatever a doorbell missed, and a push the
    broker did not take waits as a PendingPush (beat's push_pending_send queues it).

    A late event still rings the doorbell (sockets deliver seqs in order, and would wait
    for a missing one), its frame marked late so no device rings; it is never pushed."""
    events.announce(event, may_have_incident=may_have_incident)
    if event.severity == Severity.INFO or event.late:
        return  # stored and searchable, not pushed
    from responder.tasks import push_event

    if not task_send_now(push_event, (event.id,), what=f"Push for event {event.seq}"):
        PendingPush.objects.create(event=event)  # queued once the broker answers again


def event_ack(*, event: Event, user: AbstractBaseUser) -> tuple[EventAck, bool]:
    """Records that `user` acknowledged `event`; acknowledging twice keeps the first."""
    ack, created = EventAck.objects.get_or_create(event=event, user=user)
    if created:
        transaction.on_commit(lambda: event_acks_announce(event))
    return ack, created


def event_acks_announce(event: Event) -> None:
    """After commit: the sockets that have the event get everyone who acknowledged it.

    The whole list, read after our commit, so concurrent acknowledgements add up.
    """
    acks = EventAck.objects.filter(event=event).select_related("user").order_by("at", "id")
    events.acks_announce(event, [ack_record(ack) for ack in acks])


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
