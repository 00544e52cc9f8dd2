"""Real threads, each with its own database connection, against the real database."""

import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accesslog.models import Event
from responder.alarms.services import SEQ_LOCK_KEY, event_ingest
from responder.core.models import Incident, IncidentEntry, IncidentRule
from responder.incidents.services import EntryKind
from tests.accesslog.ingest_helpers import event_json, post_event
from tests.factories import AccessSystemFactory, BuildingFactory, DoorFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def system():
    system = AccessSystemFactory(webhook_secret="s3cret")
    DoorFactory(system=system, external_id="panel1-door1")
    return system


def in_threads(count: int, work) -> list:
    barrier, results = threading.Barrier(count), [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as error:  # surfaced by the assertions below
            results[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_duplicates_give_one_event(system):
    responses = in_threads(6, lambda i: post_event(Client(), "onguard", event_json(), "s3cret"))

    assert sorted(r.status_code for r in responses) == [200] * 5 + [202]
    event = Event.objects.get()
    assert {tuple(r.json().items()) for r in responses} == {(("id", event.id), ("seq", event.seq))}


def test_concurrent_events_get_distinct_gapless_numbers(system):
    def ingest(i: int) -> int:
        return event_ingest(system=system, payload=event_json(source_event_id=f"e{i}"))[0].seq

    seqs = in_threads(6, ingest)

    assert sorted(seqs) == list(range(min(seqs), min(seqs) + 6))


def waiting_on_the_seq_lock() -> int:
    """Backends blocked on ingest's advisory lock right now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return cursor.fetchone()[0]


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the seq lock is PostgreSQL's advisory lock; SQLite serialises writers itself",
)
def test_an_ingest_waits_for_the_one_in_progress_and_numbers_after_it(system):
    # Without the lock the second would read the same max(seq) and collide, or commit
    # a higher seq before the lower one became visible. So the test waits until the
    # second ingest is seen blocked on the lock, then lets the first commit.
    started, later = threading.Event(), {}

    def second() -> None:
        started.wait()
        try:
            event, _ = event_ingest(system=system, payload=event_json(source_event_id="b"))
            later["seq"] = event.seq
        except Exception as error:  # surfaced by the assertions below
            later["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=second)
    thread.start()
    with transaction.atomic():
        first, _ = event_ingest(system=system, payload=event_json(source_event_id="a"))
        started.set()
        deadline = time.monotonic() + 10
        while not waiting_on_the_seq_lock() and time.monotonic() < deadline:
            time.sleep(0.01)
        blocked = waiting_on_the_seq_lock()
        assert later == {}
    thread.join()

    assert blocked == 1
    assert later == {"seq": first.seq + 1}


postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="one statement outside a transaction is PostgreSQL's path (SQLite's lock is BEGIN)",
)


@postgresql_only
def test_an_ingest_outside_a_transaction_locks_and_inserts_in_one_statement(system):
    event_ingest(system=system, payload=event_json(source_event_id="a"))  # the door is held
    with CaptureQueriesContext(connection) as queries:
        event, created = event_ingest(system=system, payload=event_json(source_event_id="b"))

    assert created
    assert len(queries) == 1
    assert f"pg_advisory_xact_lock({SEQ_LOCK_KEY})" in queries[0]["sql"]
    assert Event.objects.get(source_event_id="b").seq == event.seq


def seq_lock_free() -> bool:
    """Whether another connection can take the seq lock now (and gives it back at once)."""
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [SEQ_LOCK_KEY])
            free = cursor.fetchone()[0]
            cursor.execute("SELECT pg_advisory_unlock_all()")
        return free
    finally:
        other.close()


@postgresql_only
def test_a_duplicate_outside_a_transaction_stores_nothing_and_frees_the_lock(system):
    first, _ = event_ingest(system=system, payload=event_json(source_event_id="a"))

    again, created = event_ingest(system=system, payload=event_json(source_event_id="a"))

    assert (again, created) == (first, False)
    assert seq_lock_free()
    later, _ = event_ingest(system=system, payload=event_json(source_event_id="b"))
    assert later.seq == first.seq + 1
    assert Event.objects.count() == 2


def test_concurrent_alarms_on_one_campus_open_one_incident_that_all_of_them_join(system):
    IncidentRule.objects.create(name="Forced", event_types=["door_forced"])
    first = system.doors.get()
    # The same campus, another building: one incident per campus, not per building.
    other_building = BuildingFactory(campus=first.building.campus)
    for i in range(1, 6):
        DoorFactory(system=system, external_id=f"gate-{i}", building=other_building)

    def ingest(i: int) -> Event:
        door = "panel1-door1" if i == 0 else f"gate-{i}"
        return event_ingest(system=system, payload=event_json(source_event_id=f"f{i}", door=door))[
            0
        ]

    stored = in_threads(6, ingest)

    incident = Incident.objects.get()
    assert incident.campus == first.building.campus
    joined = IncidentEntry.objects.filter(incident=incident, kind=EntryKind.EVENT)
    assert sorted(joined.values_list("event_id", flat=True)) == sorted(e.id for e in stored)
