import json
import logging
import random
import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection

from accesslog.connectors.base import Backoff, Stopper, connector_run
from accesslog.connectors.http import Endpoint
from accesslog.connectors.netbox import NetBoxClient, NetBoxConnector
from accesslog.connectors.xmlstream import NetBoxDocuments
from accesslog.models import ConnectorCursor, ConnectorHealth, Event, SystemKind
from responder.core.announce import channel
from responder.core.redis import quick_redis
from tests.accesslog.connector_helpers import CHICAGO, run, served
from tests.accesslog.fakes.netbox import FakeNetBox
from tests.factories import AccessSystemFactory, DoorFactory


@pytest.fixture
def fake():
    netbox = FakeNetBox()
    netbox.portal_add("3", "MS Main Entrance", ("7", "MS Main Entrance In"))
    netbox.portal_add("4", "MS Gym East", ("8", "MS Gym East In"))
    yield from served(netbox)


@pytest.fixture
def system(db):
    return AccessSystemFactory(slug="ms-netbox", name="NetBox", kind=SystemKind.NETBOX)


def connector_for(fake, system, *, password=None, stopper=None, **options):
    client = NetBoxClient(Endpoint(fake.url, timeout=5), fake.username, password or fake.password)
    options.setdefault("backfill", timedelta(0))
    return NetBoxConnector(system, client, CHICAGO, stopper=stopper or Stopper(), **options)


def ago(**delta) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def stored() -> list[tuple[str, str]]:
    return list(Event.objects.order_by("seq").values_list("door_external_id", "type"))


def started(fake, system) -> None:
    """A connector that has run once (its first start: from now on)."""
    run(connector_for(fake, system), steps=1)


def test_it_ingests_streamed_events_on_their_doors_by_portal_key(fake, system):
    door = DoorFactory(system=system, external_id="3", name="MS Main Entrance")
    started(fake, system)
    at = ago(seconds=20).replace(microsecond=0)
    fake.alarm("3", "Door forced open", at=at)
    fake.badge("3", person="_17", denied=True, at=at + timedelta(seconds=1))
    fake.alarm("4", "Door held open", at=at + timedelta(seconds=2))

    run(connector_for(fake, system), steps=1)

    assert stored() == [("3", "door_forced"), ("3", "access_denied"), ("4", "door_held")]
    forced = Event.objects.get(type="door_forced")
    assert (forced.door, forced.occurred_at, forced.late) == (door, at, False)
    assert Event.objects.get(type="access_denied").person == "_17"


def test_badge_reads_recovered_from_the_history_land_on_their_door_not_a_readers_name(
    fake, system
):
    # The reviewer's finding: history records have no PORTALNAME, and the fallback to the
    # reader's name filed every recovered read under "MS Main Entrance In".
    DoorFactory(system=system, external_id="3", name="MS Main Entrance")
    started(fake, system)
    for n in range(3):
        fake.badge("3", person=f"_{n}", live=False)  # while the connector was down

    run(connector_for(fake, system), steps=1)

    assert stored() == [("3", "access_granted")] * 3
    assert all(e.door is not None for e in Event.objects.all())


def test_an_event_between_opening_the_stream_and_the_catch_up_is_kept_once_on_its_door(
    fake, system
):
    started(fake, system)
    fake.badge("3", person="_1", live=False)
    fake.on_stream_open = lambda: fake.badge("3", person="_2")  # in the log and the stream

    connector = connector_for(fake, system)
    run(connector, steps=1)

    assert stored() == [("3", "access_granted"), ("3", "access_granted")]
    assert sorted(Event.objects.values_list("details__personid", flat=True)) == ["_1", "_2"]
    assert connector.tally == {"new": 2, "already seen": 1}


def test_the_history_cursor_is_the_logs_own_id_never_the_streams(fake, system):
    started(fake, system)
    fake.badge("3")
    run(connector_for(fake, system), steps=1)
    # The stream's ACTIVITYIDs run far ahead of the log's LOGIDs on this controller.
    fake.badge("3", person="_9", live=False)

    run(connector_for(fake, system), steps=1)

    assert Event.objects.count() == 2
    assert [q.get("AFTERLOGID") for q in fake.history_queries][-1] == "5001"


def test_door_alarms_raised_while_it_was_down_come_back_from_the_event_history(fake, system):
    started(fake, system)
    fake.alarm("4", "Door forced open", live=False)
    fake.alarm("3", "Door held open", live=False)
    fake.alarm("3", "Door forced open restored", live=False)

    run(connector_for(fake, system), steps=1)
    run(connector_for(fake, system), steps=1)

    assert stored() == [("4", "door_forced"), ("3", "door_held")]


def test_the_first_start_goes_live_without_replaying_old_history(fake, system):
    fake.badge("3", at=ago(days=400), live=False)
    fake.alarm("3", at=ago(days=2), live=False)
    fake.alarm("4", "Door held open")

    run(connector_for(fake, system), steps=1)

    assert stored() == [("4", "door_held")]


def test_a_backfill_brings_recent_history_in_marked_late(fake, system):
    fake.badge("3", at=ago(days=2), live=False)
    fake.badge("4", at=ago(minutes=20), live=False)
    fake.alarm("3", at=ago(minutes=10), live=False)
    fake.alarm("4", "Door held open", at=ago(seconds=30), live=False)

    run(connector_for(fake, system, backfill=timedelta(minutes=30)), steps=1)

    assert sorted(Event.objects.values_list("door_external_id", "type", "late")) == [
        ("3", "door_forced", True),
        ("4", "access_granted", True),
        ("4", "door_held", False),
    ]


def test_a_controller_restart_and_a_stream_cut_mid_record_lose_nothing(fake, system):
    started(fake, system)
    fake.badge("3", person="_1")
    fake.badge("3", person="_2")
    fake.alarm("4")
    fake.cut_in_record = 1  # the connection drops in the middle of the second event

    run(connector_for(fake, system), steps=1)
    fake.cut_in_record = None
    fake.badge("4", person="_3")  # queued on the stream, then the controller restarts
    fake.restart()
    fake.badge("4", person="_4", live=False)  # while it comes back up
    run(connector_for(fake, system), steps=2)

    people = [e.details.get("personid", "") for e in Event.objects.all()]
    assert sorted(people) == ["", "_1", "_2", "_3", "_4"]
    assert Event.objects.filter(type="door_forced", door_external_id="4").count() == 1


def test_events_without_an_activity_id_are_not_doubled_when_sent_again(fake, system):
    started(fake, system)
    for n in range(3):
        fake.badge("3", person=f"_{n}")
    again = [dict(e) for e in fake.live]
    run(connector_for(fake, system), steps=1)
    for event in again:
        event.pop("ACTIVITYID")
    fake.live = again

    connector = connector_for(fake, system)
    run(connector, steps=1)

    assert Event.objects.count() == 3
    assert connector.tally["new"] == 0


def test_the_history_is_read_page_by_page_after_the_cursor(fake, system):
    started(fake, system)
    for n in range(7):
        fake.badge("3", person=f"_{n}", live=False)

    run(connector_for(fake, system, history_page_size=3), steps=1)

    assert [q.get("AFTERLOGID") for q in fake.history_queries[-3:]] == ["0", "5003", "5006"]
    assert Event.objects.count() == 7
    assert '"log":5007' in ConnectorCursor.objects.get(system=system).position


def test_a_long_outage_is_caught_up_over_several_connections(fake, system):
    started(fake, system)
    for n in range(5):
        fake.badge("3", person=f"_{n}", live=False)
    connector = connector_for(fake, system, history_page_size=2, history_max_pages=1)

    run(connector, steps=3)

    assert Event.objects.count() == 5
    assert fake.streams == 4


def test_a_controller_refusing_the_history_still_streams_live_events(fake, system, caplog):
    started(fake, system)
    fake.history_refused = True
    fake.badge("3", live=False)
    fake.alarm("4")

    with caplog.at_level(logging.WARNING, logger="accesslog.connectors"):
        run(connector_for(fake, system), steps=1)

    assert stored() == [("4", "door_forced")]
    assert "GetAccessHistory failed: Permission denied" in caplog.text


def test_it_signs_in_again_when_the_session_expires(fake, system):
    connector = connector_for(fake, system)
    run(connector, steps=1)
    fake.sessions_expire()
    fake.alarm("3")
    sleeps = []

    run(connector, steps=1, sleeps=sleeps)

    assert fake.logins == 2
    assert Event.objects.count() == 1
    assert sleeps == []  # no backoff: an expired session is not an outage


def test_it_backs_off_while_the_login_fails(fake, system, caplog):
    sleeps, backoff = [], Backoff(base=2, cap=5, rng=random.Random(1))

    # The level these warnings need is set here, not inherited: with two workers, a test run
    # earlier in the same process once left it above WARNING (which test is not yet known).
    with caplog.at_level(logging.WARNING, logger="accesslog.connectors"):
        run(connector_for(fake, system, password="wrong"), steps=4, sleeps=sleeps, backoff=backoff)

    assert [c / 2 <= s <= c for s, c in zip(sleeps, [2, 4, 5, 5], strict=True)] == [True] * 4
    assert fake.streams == 0
    assert "Invalid login" in caplog.text
    assert len(ConnectorHealth.objects.get(system=system).errors) == 4


def test_the_document_splitter_returns_each_document_once_it_is_complete():
    part = (
        b"--B\r\nContent-Type: text/xml\r\nContent-Length: 99\r\n\r\n<NETBOX>"
        b'<RESPONSE command="StreamEvents"><EVENT><DESCNAME>Door forced open</DESCNAME>'
        b"<PORTALNAME>Caf\xc3\xa9</PORTALNAME></EVENT></RESPONSE></NETBOX>\r\n"
    )
    splitter, completed_at = NetBoxDocuments(), []
    stream = part * 3

    for offset in range(len(stream)):  # one byte at a time: every possible cut
        for document in splitter.feed(stream[offset : offset + 1]):
            completed_at.append(offset + 1)
            assert document.findtext("RESPONSE/EVENT/PORTALNAME") == "Café"

    ends = [n * len(part) - len(b"\r\n") for n in (1, 2, 3)]
    assert completed_at == ends


@pytest.mark.django_db(transaction=True)
def test_events_are_ingested_as_they_arrive_while_the_stream_stays_open(fake, system):
    started(fake, system)
    fake.alarm("3")
    fake.alarm("4", "Door held open")
    fake.write_size = 7  # tags and documents cut across TCP segments
    stored_before_next = []

    def hold(index):
        # The server sends nothing more until the event it just sent is in the database.
        if index == 0:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if Event.objects.filter(door_external_id="3").exists():
                    stored_before_next.append(True)
                    break
                time.sleep(0.02)
            connection.close()

    fake.after_event = hold
    run(connector_for(fake, system), steps=1)

    assert stored_before_next == [True]
    assert Event.objects.count() == 2


def test_sigterm_stops_a_connector_waiting_on_an_open_stream(fake, system):
    started(fake, system)
    fake.alarm("3")
    stopper = Stopper()
    main, release, gave_up = threading.main_thread().ident, threading.Event(), threading.Event()

    def signal_once_waiting(index):
        while not stopper.waiting:  # a read is blocked on the socket
            time.sleep(0.01)
        signal.pthread_kill(main, signal.SIGTERM)
        # The stream stays open: only the signal can end the connector's read.
        if not release.wait(10):
            gave_up.set()

    fake.after_event = signal_once_waiting
    try:
        with stopper.installed():
            connector_run(connector_for(fake, system, stopper=stopper), stopper=stopper)
        assert not gave_up.is_set()  # it stopped while the stream was still open
    finally:
        release.set()

    assert stopper.stopped
    assert Event.objects.count() in (0, 1)


def test_a_silent_stream_from_a_controller_that_answers_pings_warns_district_it(
    fake, system, django_capture_on_commit_callbacks
):
    started(fake, system)
    fake.silent = True
    listener = quick_redis(settings.REDIS_URL).pubsub()
    listener.subscribe(channel("it"))
    listener.get_message(timeout=1)  # the subscription's own confirmation
    sleeps = []
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run(connector_for(fake, system, silence=0.3), steps=1, sleeps=sleeps)
    finally:
        fake.release.set()

    message = listener.get_message(timeout=5)
    frame = json.loads(json.loads(message["data"])["frame"])
    assert (frame["type"], frame["kind"]) == ("warning", "connector_silent")
    assert frame["details"]["system"] == "ms-netbox"
    assert fake.pings == 1 and len(sleeps) == 1  # then it reconnects, after a backoff
    health = ConnectorHealth.objects.get(system=system)
    assert health.silence_warned_at is not None
    assert "silent" in health.last_error
