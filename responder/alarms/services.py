"""An alarm from POST (or a connector) to its effects: `event_ingest` stores the event
under the seq lock, then calls each effect in turn once it commits: the sockets' doorbell,
the pushes, the warm-up of the door's cameras (and the incident a rule opens, in the
same transaction as the event).

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

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Field
from django.utils import timezone

from accesslog.directory import Directory, directory
from accesslog.models import SEVERITY_OF, AccessSystem, Door, Event, Severity
from accesslog.serializers import EventIngestSerializer
from accesslog.tasks import live_warm_up
from responder.alarms import events
from responder.core.announce import doorbell
from responder.core.models import IncidentRule
from responder.core.redis import RedisWrite, redis_send_now, task_write
from responder.incidents.services import incident_for_alarm, incident_rule_for
from responder.push.queue import event_push_keep, event_push_write

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
        if _alone(rule):
            # The lock and the insert are one transaction of their own: one round trip.
            event = _event_create(system, door, data, late=late)
        else:
            with transaction.atomic():
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
    # After commit: the doorbell, the pushes and the warm-up, in one round trip to Redis.
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


def _alone(rule: IncidentRule | None) -> bool:
    """Whether the insert may be its own transaction (PostgreSQL's implicit one): no
    incident to store with it, no caller's transaction to join (a duplicate there must roll
    back to a savepoint), and a database whose lock is a statement (SQLite's is BEGIN
    IMMEDIATE, taken by `atomic`)."""
    return rule is None and connection.vendor == "postgresql" and connection.get_autocommit()


def _event_create(system: AccessSystem, door: Door | None, data: dict, *, late: bool) -> Event:
    event = Event(
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
    # Under the lock every µs counts: the next seq and the insert in one statement, and no
    # ORM query to compile. Django's own fields turn the values into parameters.
    fields = _insert_fields()
    values = [f.get_db_prep_save(f.pre_save(event, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(), values)
        if connection.vendor == "postgresql":
            cursor.nextset()  # past the lock's empty result
        event.pk, event.seq = cursor.fetchone()
    event._state.adding = False
    event._state.db = connection.alias
    return event


@functools.cache
def _insert_fields() -> list[Field]:
    return [f for f in Event._meta.concrete_fields if f.name not in ("id", "seq")]


@functools.cache
def _insert_sql() -> str:
    table, quote = Event._meta.db_table, connection.ops.quote_name
    columns = ", ".join(quote(str(f.column)) for f in _insert_fields())
    values = ", ".join(["%s"] * len(_insert_fields()))
    # On PostgreSQL the seq lock first, in the same query (psycopg's client-side binding,
    # Django's default, sends it by the simple protocol; server-side binding would refuse
    # two statements): one round trip. Outside a transaction PostgreSQL
    # runs the two statements as one implicit transaction, so the lock is held until the
    # insert commits; and each statement takes its own snapshot (READ COMMITTED), so the
    # insert's MAX sees every seq committed before the lock was granted. (SQLite's lock
    # is the BEGIN IMMEDIATE of the transaction around it.)
    lock = (
        f"SELECT pg_advisory_xact_lock({SEQ_LOCK_KEY}); "
        if connection.vendor == "postgresql"
        else ""
    )
    return (
        f"{lock}INSERT INTO {quote(table)} ({quote('seq')}, {columns}) "
        f"SELECT COALESCE(MAX({quote('seq')}), 0) + 1, {values} FROM {quote(table)} "
        f"RETURNING {quote('id')}, {quote('seq')}"
    )


def event_announce(event: Event, *, may_have_incident: bool = True) -> None:
    """After commit: ring the sockets' doorbell, queue the pushes and the warm-up of the
    door's cameras, all in one round trip to Redis (Celery's client is not used here: it
    cost more CPU than the rest of the ingest). None may fail the ingest: sockets replay
    from the database whatever a doorbell missed, a push Redis did not take waits as a
    PendingPush (beat's push_pending_send queues it), and a warm-up is only a head start.

    A late event still rings the doorbell (sockets deliver seqs in order, and would wait
    for a missing one), its frame marked late so no device rings; it is never pushed."""
    message = events.event_message(event, may_have_incident=may_have_incident)
    writes = [doorbell("events", message)]
    push = None
    if event.severity != Severity.INFO and not event.late:  # else stored, not pushed
        push = event_push_write(event)
    if push is not None:
        writes.append(push)
    if event.door_id is not None and door_cameras_to_warm(event):
        writes.append(live_warm_write(door_id=event.door_id))
    sent = dict(zip(writes, redis_send_now(writes), strict=True))
    if push is not None and not sent[push]:
        event_push_keep(event)


def door_cameras_to_warm(event: Event) -> bool:
    """An alarm starts the low sessions of its door's nearest cameras: the officer's tap on
    it then plays at once. Ingest prefetched the door's cameras, so a door without any
    costs no query; an old alarm warms nothing (nobody will tap it to watch)."""
    if event.severity != Severity.ALARM or event.late or not settings.LIVE_WARM_ON_ALARM:
        return False
    return event.door is not None and bool(event.door.door_cameras.all())


def live_warm_write(*, door_id: int) -> RedisWrite:
    """The warm-up task: a video worker reads the door's cameras; the ingest only hands
    it the door. Dropped if stale: a warm-up nobody ran in time is worthless."""
    what = f"Warm-up of door {door_id}'s cameras"
    return task_write(live_warm_up, (door_id,), what=what, expires=settings.LIVE_IDLE_SECONDS)
