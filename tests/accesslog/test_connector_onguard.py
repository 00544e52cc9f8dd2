import logging
import random
import signal
import socket
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from accesslog.connectors.base import Backoff, Stopper, connector_run
from accesslog.connectors.http import Endpoint
from accesslog.connectors.onguard import OnGuardClient, OnGuardConnector
from accesslog.models import Event, SystemKind
from tests.accesslog.connector_helpers import CHICAGO, cursor_of, run, served, stored_ids
from tests.accesslog.fakes.onguard import FakeOnGuard
from tests.factories import AccessSystemFactory, DoorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake():
    yield from served(FakeOnGuard())


@pytest.fixture
def system():
    return AccessSystemFactory(slug="hs-onguard", kind=SystemKind.ONGUARD)


def connector_for(fake, system, *, url=None, page_size=100, stopper=None):
    client = OnGuardClient(
        Endpoint(url or fake.url, timeout=5),
        fake.username,
        fake.password,
        fake.directory_id,
        fake.application_id,
    )
    return OnGuardConnector(
        system, client, CHICAGO, stopper=stopper or Stopper(), page_size=page_size
    )


def test_it_ingests_logged_events_with_their_fields_mapped(fake, system):
    door = DoorFactory(system=system, external_id="3-2")
    forced = fake.event_add(
        PANELID=3, DEVICEID=2, DESCRIPTION="Door Forced Open", TIME="2026-11-28T02:14:09-06:00"
    )
    fake.event_add(
        PANELID=3,
        DEVICEID=2,
        DESCRIPTION="Access Denied: Invalid Badge",
        CARDNUMBER=40411,
        PERSONID=77,
        ACCESSRESULT=3,
    )
    fake.event_add(DESCRIPTION="Door Held Open")
    fake.event_add(DESCRIPTION="Granted Access", ACCESSRESULT=2, CARDNUMBER=5)
    fake.event_add(DESCRIPTION="Access Granted", DURESS=True)
    fake.event_add(DESCRIPTION="Reader Tamper")
    fake.event_add(DESCRIPTION="Intercom Call Request")
    fake.event_add(DESCRIPTION="", ACCESSRESULT=3, TIME="2026-11-28 06:00:00")

    run(connector_for(fake, system), steps=1)

    events = list(Event.objects.order_by("seq"))
    assert [e.type for e in events] == [
        "door_forced",
        "access_denied",
        "door_held",
        "access_granted",
        "duress",
        "tamper",
        "intercom_call",
        "access_denied",
    ]
    first = events[0]
    assert first.source_event_id == str(forced["SERIALNUMBER"])
    assert (first.door, first.door_external_id) == (door, "3-2")
    assert first.occurred_at == datetime(2026, 11, 28, 8, 14, 9, tzinfo=ZoneInfo("UTC"))
    assert first.details["description"] == "Door Forced Open"
    assert (events[1].credential, events[1].person) == ("40411", "77")
    assert events[2].door is None and events[2].door_external_id == "1-1"
    # A time without an offset is in the system's zone.
    assert events[-1].occurred_at == datetime(2026, 11, 28, 6, tzinfo=CHICAGO)
    assert cursor_of(system) == str(fake.events[-1]["SERIALNUMBER"])


def test_it_logs_counts_and_steps_over_events_it_cannot_map(fake, system, caplog):
    fake.event_add(DESCRIPTION="Door Forced Open Restored")
    fake.event_add(DESCRIPTION="Alarm Acknowledged")
    forced = fake.event_add(DESCRIPTION="Door Forced Open")
    connector = connector_for(fake, system)

    with caplog.at_level(logging.WARNING, logger="accesslog.connectors"):
        run(connector, steps=1)

    assert list(Event.objects.values_list("source_event_id", flat=True)) == [
        str(forced["SERIALNUMBER"])
    ]
    assert connector.tally == {"unmapped": 2, "new": 1}
    assert "Alarm Acknowledged" in caplog.text
    assert cursor_of(system) == str(forced["SERIALNUMBER"])


def test_it_reads_properties_however_openaccess_spells_them(fake, system):
    fake.class_spelling = True
    event = fake.event_add(PANELID=4, DEVICEID=9, DESCRIPTION="Door Held Open", PERSONID=12)

    run(connector_for(fake, system), steps=1)

    stored = Event.objects.get()
    assert (stored.source_event_id, stored.type) == (str(event["SERIALNUMBER"]), "door_held")
    assert (stored.door_external_id, stored.person) == ("4-9", "12")


def test_a_restart_neither_misses_nor_repeats_an_event(fake, system):
    for n in range(5):
        fake.event_add(DESCRIPTION="Door Forced Open", DEVICEID=n)
    run(connector_for(fake, system, page_size=2), steps=2)
    assert Event.objects.count() == 4
    cursor = cursor_of(system)
    assert cursor == str(fake.events[3]["SERIALNUMBER"])

    # A new process: new client, new session; only the cursor in the database survives.
    for n in range(2):
        fake.event_add(DESCRIPTION="Door Held Open", DEVICEID=n)
    fake.queries.clear()
    run(connector_for(fake, system, page_size=2), steps=3)

    assert fake.queries[0]["filter"] == f"SERIALNUMBER > {cursor}"
    assert stored_ids() == [str(e["SERIALNUMBER"]) for e in fake.events]
    assert fake.sign_ins == 2


def test_it_signs_in_again_when_the_session_token_expires(fake, system):
    fake.event_add(DESCRIPTION="Door Forced Open")
    connector = connector_for(fake, system)
    run(connector, steps=1)
    fake.sessions_expire()
    fake.event_add(DESCRIPTION="Door Held Open")
    sleeps = []

    run(connector, steps=1, sleeps=sleeps)

    assert fake.sign_ins == 2
    assert Event.objects.count() == 2
    assert sleeps == []  # no backoff: an expired session is not an outage


def test_it_backs_off_exponentially_on_server_errors_then_recovers(fake, system):
    fake.failures = [500, 503, 502, 500, 500]
    fake.event_add(DESCRIPTION="Door Forced Open")
    backoff, sleeps = Backoff(base=1, cap=4, rng=random.Random(3)), []

    run(connector_for(fake, system), steps=6, sleeps=sleeps, backoff=backoff)

    ceilings = [1, 2, 4, 4, 4]
    assert len(sleeps) == 5
    assert all(c / 2 <= s <= c for s, c in zip(sleeps, ceilings, strict=True))
    assert Event.objects.count() == 1
    assert backoff.attempt == 0


def test_it_backs_off_while_the_server_is_unreachable(system, caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    sleeps = []

    with caplog.at_level(logging.WARNING, logger="accesslog.connectors"):
        run(connector_for(FakeOnGuard(), system, url=url), steps=3, sleeps=sleeps)

    assert len(sleeps) == 3 and sleeps[0] < sleeps[2]
    assert "reconnecting in" in caplog.text
    assert not Event.objects.exists()


def test_sigterm_stops_the_loop_cleanly_between_polls(fake, system):
    fake.event_add(DESCRIPTION="Door Forced Open")
    stopper = Stopper()
    connector = connector_for(fake, system, stopper=stopper)
    connector.idle_delay = 0.0

    def idle(delay):
        signal.raise_signal(signal.SIGTERM)

    with stopper.installed():
        # No step limit: only the signal ends this loop.
        connector_run(connector, stopper=stopper, sleep=idle)

    assert stopper.stopped
    assert len(fake.queries) == 2  # one with the event, one idle, then the signal
    assert Event.objects.count() == 1


def test_the_command_runs_the_onguard_connector(fake, system, monkeypatch):
    fake.event_add(DESCRIPTION="Door Forced Open")
    monkeypatch.setenv("LENELS2_PASSWORD", fake.password)

    call_command(
        "connect_lenels2",
        system.slug,
        url=fake.url,
        username=fake.username,
        application_id=fake.application_id,
        max_steps=1,
    )

    assert Event.objects.get().type == "door_forced"


def test_the_command_refuses_a_system_that_only_sends_webhooks(monkeypatch):
    AccessSystemFactory(slug="hooks", kind=SystemKind.GENERIC)

    with pytest.raises(CommandError, match="sends webhooks"):
        call_command("connect_lenels2", "hooks", url="http://127.0.0.1:9", username="x")
