import random
import signal
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from accesslog.connectors.base import Backoff, Stopper, connector_run
from accesslog.connectors.http import Endpoint
from accesslog.connectors.netbox import NetBoxClient, NetBoxConnector, netbox_event_id
from accesslog.connectors.xmlstream import NetBoxDocuments
from accesslog.models import ConnectorCursor, Event, SystemKind
from tests.accesslog.connector_helpers import CHICAGO, cursor_of, run, served, stored_ids
from tests.accesslog.fakes.netbox import FakeNetBox, access_record, netbox_event
from tests.factories import AccessSystemFactory, DoorFactory


@pytest.fixture
def fake():
    yield from served(FakeNetBox())


@pytest.fixture
def system(db):
    return AccessSystemFactory(slug="ms-netbox", name="NetBox", kind=SystemKind.NETBOX)


def connector_for(fake, system, *, password=None, stopper=None, **options):
    client = NetBoxClient(Endpoint(fake.url, timeout=5), fake.username, password or fake.password)
    return NetBoxConnector(system, client, CHICAGO, stopper=stopper or Stopper(), **options)


def test_it_ingests_streamed_events_with_their_fields_mapped(fake, system):
    door = DoorFactory(system=system, external_id="Gym east")
    fake.events = [
        netbox_event(
            ACTIVITYID="901",
            DESCNAME="Door forced open",
            PORTALNAME="Gym east",
            CDT="2026-11-28 02:14:09 -06:00",
        ),
        netbox_event(
            ACTIVITYID="902",
            DESCNAME="Access denied",
            PERSONNAME="Pat Doe",
            PERSONID="_17",
            CDT="2026-11-28 06:00:00",
        ),
        netbox_event(
            ACTIVITYID="903",
            DESCNAME="Event activated",
            EVTNAME="Lobby duress",
            PORTALNAME="",
            RDRNAME="",
            NODENAME="",
        ),
        netbox_event(
            ACTIVITYID="904",
            DESCNAME="Door held open",
            PORTALNAME="",
            NODENAME="Node 2",
            RDRNAME="Dock reader",
        ),
    ]

    run(connector_for(fake, system), steps=1)

    events = list(Event.objects.order_by("seq"))
    assert [e.type for e in events] == ["door_forced", "access_denied", "duress", "door_held"]
    assert [e.source_event_id for e in events] == ["901", "902", "903", "904"]
    assert events[0].door == door
    assert events[0].occurred_at == datetime(2026, 11, 28, 8, 14, 9, tzinfo=ZoneInfo("UTC"))
    # CDT without an offset is the controller's local time.
    assert events[1].occurred_at == datetime(2026, 11, 28, 6, tzinfo=CHICAGO)
    assert events[1].person == "Pat Doe" and events[1].details["personid"] == "_17"
    assert events[2].door_external_id == "event:Lobby duress"
    assert events[3].door_external_id == "Node 2/Dock reader"
    assert cursor_of(system) == "904"


def test_it_logs_counts_and_steps_over_events_it_cannot_map(fake, system, caplog):
    fake.events = [
        netbox_event(ACTIVITYID="1", DESCNAME="Momentary unlock"),
        netbox_event(ACTIVITYID="2", DESCNAME="Door forced open restored"),
        netbox_event(ACTIVITYID="3", DESCNAME="Event deactivated", EVTNAME="Lobby duress"),
        netbox_event(ACTIVITYID="4", DESCNAME="Door forced open"),
    ]
    connector = connector_for(fake, system)

    run(connector, steps=1)

    assert list(Event.objects.values_list("source_event_id", flat=True)) == ["4"]
    assert connector.tally == {"unmapped": 3, "new": 1}
    assert cursor_of(system) == "4"
    assert "Momentary unlock" in caplog.text


def test_a_restart_neither_misses_nor_repeats_an_event(fake, system):
    fake.events = [netbox_event(ACTIVITYID=str(n), DESCNAME="Access denied") for n in (1, 2, 3)]
    run(connector_for(fake, system), steps=1)
    assert cursor_of(system) == "3"

    # A new process, and a controller that sends again what it sent before the restart.
    fake.events += [netbox_event(ACTIVITYID=str(n), DESCNAME="Door held open") for n in (4, 5)]
    connector = connector_for(fake, system)
    run(connector, steps=1)

    assert stored_ids() == ["1", "2", "3", "4", "5"]
    assert connector.tally == {"already seen": 3, "new": 2}
    assert fake.logins == 2


def test_events_without_an_activity_id_are_not_doubled_when_sent_again(fake, system):
    fake.events = [
        netbox_event(DESCNAME="Access denied", CDT=f"2026-11-28 07:00:0{n}") for n in range(3)
    ]
    run(connector_for(fake, system), steps=1)
    connector = connector_for(fake, system)

    run(connector, steps=1)

    assert Event.objects.count() == 3
    assert connector.tally == {"duplicate": 3}
    assert netbox_event_id(fake.events[0]) != netbox_event_id(fake.events[1])


def accesses(*log_ids: int, **fields: str) -> list[dict[str, str]]:
    return [access_record(LOGID=str(n), **fields) for n in log_ids]


def test_events_that_happened_while_it_was_down_are_caught_up_once_and_in_order(fake, system):
    fake.events = [netbox_event(ACTIVITYID=str(n), DESCNAME="Access granted") for n in (1, 2)]
    fake.history = accesses(1, 2)
    run(connector_for(fake, system), steps=1)

    # While it is down the controller logs three accesses; a new stream only sends live ones.
    fake.history += accesses(3, 5, REASON="12", PERSONID="_17") + accesses(4)
    fake.events = []
    connector = connector_for(fake, system)
    run(connector, steps=1)

    assert stored_ids() == ["1", "2", "3", "4", "5"]
    types = dict(Event.objects.values_list("source_event_id", "type"))
    assert (types["3"], types["4"], types["5"]) == (
        "access_denied",
        "access_granted",
        "access_denied",
    )
    assert Event.objects.get(source_event_id="3").person == "_17"
    assert fake.history_queries == [{"AFTERLOGID": "2", "MAXRECORDS": "200"}]
    assert connector.tally == {"new": 3}
    assert cursor_of(system) == "5"

    again = connector_for(fake, system)
    run(again, steps=1)

    assert Event.objects.count() == 5
    assert again.tally == {}


def test_the_history_is_read_page_by_page_after_the_cursor(fake, system):
    ConnectorCursor.objects.create(system=system, position="10")
    fake.history = accesses(*range(8, 18))

    run(connector_for(fake, system, history_page_size=3), steps=1)

    assert [q["AFTERLOGID"] for q in fake.history_queries] == ["10", "13", "16"]
    assert stored_ids() == [str(n) for n in range(11, 18)]
    assert cursor_of(system) == "17"


def test_a_long_outage_is_caught_up_over_several_connections(fake, system):
    ConnectorCursor.objects.create(system=system, position="10")
    fake.history = accesses(*range(11, 16))
    connector = connector_for(fake, system, history_page_size=2, history_max_pages=1)

    run(connector, steps=3)

    assert stored_ids() == ["11", "12", "13", "14", "15"]
    assert [q["AFTERLOGID"] for q in fake.history_queries] == ["10", "12", "14"]
    assert fake.streams == 3


def test_the_first_start_goes_live_without_replaying_old_history(fake, system):
    fake.history = accesses(1, 2, 3)
    fake.events = [netbox_event(ACTIVITYID="4", DESCNAME="Door forced open")]

    run(connector_for(fake, system), steps=1)

    assert stored_ids() == ["4"]
    assert fake.history_queries == []


def test_a_controller_refusing_the_history_still_streams_live_events(fake, system, caplog):
    ConnectorCursor.objects.create(system=system, position="10")
    fake.history_refused = True
    fake.history = accesses(11)
    fake.events = [netbox_event(ACTIVITYID="12", DESCNAME="Door forced open")]

    run(connector_for(fake, system), steps=1)

    assert stored_ids() == ["12"]
    assert "no history after 10 (NBAPI GetAccessHistory failed: Permission denied)" in caplog.text


def test_events_between_opening_the_stream_and_reading_the_history_are_kept_once(fake, system):
    ConnectorCursor.objects.create(system=system, position="10")
    # 11 happened while it was down. 12 and 13 happen after the stream opened but before
    # the history is read: the stream holds both, the access history only the access 13.
    fake.history = accesses(9, 10, 11, 13)
    fake.events = [
        netbox_event(ACTIVITYID="12", DESCNAME="Door forced open"),
        netbox_event(ACTIVITYID="13", DESCNAME="Access granted"),
        netbox_event(ACTIVITYID="14", DESCNAME="Door held open"),
    ]
    connector = connector_for(fake, system)

    run(connector, steps=1)

    assert stored_ids() == ["11", "13", "12", "14"]
    assert connector.tally == {"new": 4, "already seen": 1}
    assert cursor_of(system) == "14"

    again = connector_for(fake, system)
    run(again, steps=1)

    assert Event.objects.count() == 4
    assert again.tally == {"already seen": 3}


def test_it_signs_in_again_when_the_session_expires(fake, system):
    fake.events = [netbox_event(ACTIVITYID="1", DESCNAME="Door forced open")]
    connector = connector_for(fake, system)
    run(connector, steps=1)
    fake.sessions_expire()
    fake.events.append(netbox_event(ACTIVITYID="2", DESCNAME="Door held open"))
    sleeps = []

    run(connector, steps=1, sleeps=sleeps)

    assert (fake.logins, fake.streams) == (2, 2)
    assert Event.objects.count() == 2
    assert sleeps == []  # no backoff: an expired session is not an outage


def test_it_backs_off_while_the_login_fails(fake, system, caplog):
    sleeps, backoff = [], Backoff(base=2, cap=5, rng=random.Random(1))

    run(connector_for(fake, system, password="wrong"), steps=4, sleeps=sleeps, backoff=backoff)

    assert [c / 2 <= s <= c for s, c in zip(sleeps, [2, 4, 5, 5], strict=True)] == [True] * 4
    assert fake.streams == 0
    assert "Invalid login" in caplog.text


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
    fake.events = [
        netbox_event(ACTIVITYID="1", DESCNAME="Door forced open"),
        netbox_event(ACTIVITYID="2", DESCNAME="Door held open"),
    ]
    fake.write_size = 7  # tags and documents cut across TCP segments
    stored_before_next = []

    def hold(index):
        # The server sends nothing more until the event it just sent is in the database.
        if index == 0:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if Event.objects.filter(source_event_id="1").exists():
                    stored_before_next.append(True)
                    break
                time.sleep(0.02)
            connection.close()

    fake.after_event = hold
    run(connector_for(fake, system), steps=1)

    assert stored_before_next == [True]
    assert Event.objects.count() == 2


def test_sigterm_stops_a_connector_waiting_on_an_open_stream(fake, system):
    fake.events = [netbox_event(ACTIVITYID="1", DESCNAME="Door forced open")]
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
    assert fake.streams == 1
    # Stopped before or after the event, never between its ingest and its cursor.
    cursor = ConnectorCursor.objects.filter(system=system).first()
    assert list(Event.objects.values_list("source_event_id", flat=True)) == (
        ["1"] if cursor else []
    )
