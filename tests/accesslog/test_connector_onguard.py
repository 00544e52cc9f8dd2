import logging
import random
import signal
import socket
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from accesslog.connectors.base import Backoff, Stopper, connector_run
from accesslog.connectors.http import Endpoint
from accesslog.connectors.onguard import OnGuardClient, OnGuardConnector
from accesslog.models import ConnectorCursor, Event, SystemKind
from tests.accesslog.connector_helpers import CHICAGO, run, served
from tests.accesslog.fakes.onguard import FakeOnGuard
from tests.factories import AccessSystemFactory, DoorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake():
    yield from served(FakeOnGuard())


@pytest.fixture
def system():
    return AccessSystemFactory(slug="hs-onguard", kind=SystemKind.ONGUARD)


def connector_for(fake, system, *, url=None, page_size=100, stopper=None, backfill=None):
    client = OnGuardClient(
        Endpoint(url or fake.url, timeout=5),
        fake.username,
        fake.password,
        fake.directory_id,
        fake.application_id,
    )
    return OnGuardConnector(
        system,
        client,
        CHICAGO,
        stopper=stopper or Stopper(),
        page_size=page_size,
        backfill=backfill or timedelta(0),
    )


def ago(**delta) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def stored() -> list[tuple[str, str]]:
    """(door, description) of every stored event, in the order they were ingested."""
    return [
        (e.door_external_id, e.details.get("description", ""))
        for e in Event.objects.order_by("seq")
    ]


def test_it_ingests_logged_events_with_their_fields_mapped(fake, system):
    door = DoorFactory(system=system, external_id="3-2")
    fake.panel_add(3, offset=-360)
    fake.panel_add(1, offset=None)  # its times carry no offset: the system's zone
    at = ago(seconds=30).replace(microsecond=0)
    forced = fake.event_add(PANELID=3, DEVICEID=2, DESCRIPTION="Door Forced Open", at=at)
    fake.event_add(
        PANELID=3,
        DEVICEID=2,
        DESCRIPTION="Access Denied: Invalid Badge",
        CARDNUMBER=40411,
        PERSONID=77,
        ACCESSRESULT=3,
        at=at + timedelta(seconds=1),
    )
    for n, description in enumerate(
        ["Door Held Open", "Reader Tamper", "Intercom Call Request", "Access Granted"]
    ):
        fake.event_add(PANELID=1, DESCRIPTION=description, at=at + timedelta(seconds=2 + n))
    fake.event_add(PANELID=1, DESCRIPTION="Access Granted", DURESS=True, at=at)
    fake.event_add(PANELID=1, DESCRIPTION="", ACCESSRESULT=3, at=at + timedelta(seconds=9))

    run(connector_for(fake, system, backfill=timedelta(minutes=1)), steps=1)

    by_panel = {
        panel: [e.type for e in Event.objects.filter(details__panelid=panel).order_by("seq")]
        for panel in (1, 3)
    }
    assert by_panel == {
        1: ["duress", "door_held", "tamper", "intercom_call", "access_granted", "access_denied"],
        3: ["door_forced", "access_denied"],
    }
    first = Event.objects.get(details__description="Door Forced Open")
    assert first.source_event_id == f"3:{forced['SERIALNUMBER']}:{at:%Y%m%dT%H%M%SZ}"
    assert (first.door, first.door_external_id, first.occurred_at) == (door, "3-2", at)
    denied = Event.objects.get(credential="40411")
    assert denied.person == "77"
    # Panel 1's times have no offset: read in the system's zone, stored in UTC.
    assert Event.objects.get(details__description="Reader Tamper").occurred_at == at + timedelta(
        seconds=3
    )


def test_it_logs_counts_and_steps_over_events_it_cannot_map(fake, system, caplog):
    fake.panel_add(1)
    connector = connector_for(fake, system)
    run(connector, steps=1)  # the first start: from now on
    fake.event_add(DESCRIPTION="Door Forced Open Restored")
    fake.event_add(DESCRIPTION="Alarm Acknowledged")
    fake.event_add(DESCRIPTION="Door Forced Open")

    with caplog.at_level(logging.WARNING, logger="accesslog.connectors"):
        run(connector, steps=1)

    assert [e.type for e in Event.objects.all()] == ["door_forced"]
    assert connector.tally == {"unmapped": 2, "new": 1}
    assert "Alarm Acknowledged" in caplog.text


def test_it_reads_properties_however_openaccess_spells_them(fake, system):
    fake.class_spelling = True
    fake.panel_add(4)
    connector = connector_for(fake, system)
    run(connector, steps=1)
    fake.event_add(PANELID=4, DEVICEID=9, DESCRIPTION="Door Held Open", PERSONID=12)

    run(connector, steps=1)

    event = Event.objects.get()
    assert (event.type, event.door_external_id, event.person) == ("door_held", "4-9", "12")


def test_a_panel_whose_serials_run_ahead_hides_no_event_of_another_panel(fake, system):
    # The reviewer's finding: one cursor for the system skipped every event of panel 2
    # below panel 1's serial, and took equal serials of two panels for one event.
    fake.panel_add(1)
    fake.panel_add(2)
    fake.panel_ahead(1, 5000)
    fake.panel_ahead(2, 4990)
    connector = connector_for(fake, system)
    run(connector, steps=1)
    for n in range(6):
        fake.event_add(PANELID=1, DEVICEID=1, DESCRIPTION="Door Held Open", EVENTTEXT=f"a{n}")
        fake.event_add(PANELID=2, DEVICEID=7, DESCRIPTION="Door Forced Open", EVENTTEXT=f"b{n}")
    run(connector, steps=1)
    # Panel 2 catches up with panel 1's serials: 5001 on both panels, two events.
    for _ in range(12):
        fake.event_add(PANELID=2, DEVICEID=7, DESCRIPTION="Door Forced Open")
    fake.event_add(PANELID=1, DEVICEID=1, DESCRIPTION="Door Held Open")

    run(connector, steps=1)

    assert Event.objects.filter(door_external_id="2-7").count() == 18
    assert Event.objects.filter(door_external_id="1-1").count() == 7
    serials = [e.source_event_id.split(":")[:2] for e in Event.objects.all()]
    assert ["1", "5007"] in serials and ["2", "5007"] in serials


def test_a_panel_that_starts_its_count_over_is_still_read(fake, system):
    fake.panel_add(1)
    fake.panel_add(2)
    connector = connector_for(fake, system)
    run(connector, steps=1)
    for _ in range(5):
        # A second or more before the reset: restarting a panel takes far longer.
        fake.event_add(PANELID=2, DESCRIPTION="Door Held Open", at=ago(seconds=2))
    run(connector, steps=1)
    fake.panel_reset(2)
    fake.event_add(PANELID=2, DESCRIPTION="Door Forced Open")
    fake.event_add(PANELID=2, DESCRIPTION="Reader Tamper")

    run(connector, steps=1)
    fake.event_add(PANELID=2, DESCRIPTION="Door Forced Open")
    run(connector, steps=1)

    assert [e.type for e in Event.objects.all()] == ["door_held"] * 5 + [
        "door_forced",
        "tamper",
        "door_forced",
    ]
    assert [e.source_event_id.split(":")[1] for e in Event.objects.all()] == [
        "1", "2", "3", "4", "5", "1", "2", "3",
    ]  # fmt: skip


def test_a_panels_buffer_uploaded_after_an_outage_is_read_though_its_times_are_old(fake, system):
    fake.panel_add(1)
    connector = connector_for(fake, system, backfill=timedelta(hours=1))
    run(connector, steps=1)  # a connector that has run for an hour
    fake.event_add(DESCRIPTION="Door Held Open", at=ago(seconds=5))
    run(connector, steps=1)
    # The panel was offline for ten minutes; back, it uploads what it buffered: new
    # serials, old times.
    fake.event_add(DESCRIPTION="Door Forced Open", at=ago(minutes=10))
    fake.event_add(DESCRIPTION="Reader Tamper", at=ago(minutes=9))

    run(connector, steps=1)

    assert [(e.type, e.late) for e in Event.objects.all()] == [
        ("door_held", False),
        ("door_forced", True),
        ("tamper", True),
    ]


def test_the_first_start_begins_now_and_replays_no_old_log(fake, system):
    fake.panel_add(1)
    for days in (900, 30, 1):
        fake.event_add(DESCRIPTION="Door Forced Open", at=ago(days=days))

    run(connector_for(fake, system), steps=1)
    fake.event_add(DESCRIPTION="Door Held Open")
    run(connector_for(fake, system), steps=1)

    assert [e.type for e in Event.objects.all()] == ["door_held"]


def test_a_backfill_brings_recent_history_in_marked_late_and_nothing_older(fake, system):
    fake.panel_add(1)
    fake.event_add(DESCRIPTION="Door Forced Open", at=ago(days=2))
    fake.event_add(DESCRIPTION="Reader Tamper", at=ago(minutes=20))
    fake.event_add(DESCRIPTION="Door Held Open", at=ago(seconds=30))

    run(connector_for(fake, system, backfill=timedelta(minutes=30)), steps=1)

    assert [(e.type, e.late) for e in Event.objects.all()] == [
        ("tamper", True),
        ("door_held", False),
    ]


def test_a_restart_neither_misses_nor_repeats_an_event(fake, system):
    fake.panel_add(1)
    fake.panel_add(2)
    run(connector_for(fake, system), steps=1)
    for n in range(5):
        fake.event_add(PANELID=1 + n % 2, DESCRIPTION="Door Forced Open", DEVICEID=n)
    run(connector_for(fake, system, page_size=2), steps=1)
    assert Event.objects.count() == 5

    # A new process: new client, new session; only the cursor in the database survives.
    for n in range(3):
        fake.event_add(PANELID=2, DESCRIPTION="Door Held Open", DEVICEID=n)
    connector = connector_for(fake, system, page_size=2)
    run(connector, steps=2)

    assert Event.objects.count() == 8
    assert connector.tally["new"] == 3
    assert fake.sign_ins == 3


def test_a_session_that_expires_during_a_page_walk_is_signed_in_again_and_the_walk_goes_on(
    fake, system
):
    fake.panel_add(1)
    connector = connector_for(fake, system, page_size=2)
    run(connector, steps=1)
    for n in range(7):
        fake.event_add(DESCRIPTION="Door Held Open", DEVICEID=n)
    fake.queries.clear()
    fake.expire_after_pages = 2

    run(connector, steps=1)

    assert Event.objects.count() == 7
    pages = [q["page_number"] for q in fake.queries if q["type_name"] == "Lnl_LoggedEvent"]
    assert pages == ["1", "2", "3", "4"]
    assert fake.sign_ins == 2


def test_it_signs_in_again_when_the_session_token_expires(fake, system):
    fake.panel_add(1)
    connector = connector_for(fake, system)
    run(connector, steps=1)
    fake.event_add(DESCRIPTION="Door Forced Open")
    run(connector, steps=1)
    fake.sessions_expire()
    fake.event_add(DESCRIPTION="Door Held Open")
    sleeps = []

    run(connector, steps=1, sleeps=sleeps)

    assert fake.sign_ins == 2
    assert Event.objects.count() == 2
    assert sleeps == []  # no backoff: an expired session is not an outage


def test_it_backs_off_exponentially_on_server_errors_then_recovers(fake, system):
    fake.panel_add(1)
    fake.event_add(DESCRIPTION="Door Forced Open")
    fake.failures = [500, 503, 502, 500, 500]
    backoff, sleeps = Backoff(base=1, cap=4, rng=random.Random(3)), []

    run(
        connector_for(fake, system, backfill=timedelta(minutes=1)),
        steps=6,
        sleeps=sleeps,
        backoff=backoff,
    )

    ceilings = [1, 2, 4, 4, 4]
    assert len(sleeps) >= 5
    assert all(c / 2 <= s <= c for s, c in zip(sleeps[:5], ceilings, strict=True))
    assert Event.objects.count() == 1
    assert backoff.attempt == 0
    assert system.health.errors and "HTTP 500" in system.health.last_error


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
    fake.panel_add(1)
    fake.event_add(DESCRIPTION="Door Forced Open")
    stopper = Stopper()
    connector = connector_for(fake, system, stopper=stopper, backfill=timedelta(minutes=1))
    connector.idle_delay = 0.0

    def idle(delay):
        signal.raise_signal(signal.SIGTERM)

    with stopper.installed():
        # No step limit: only the signal ends this loop.
        connector_run(connector, stopper=stopper, sleep=idle)

    assert stopper.stopped
    events = [q for q in fake.queries if q["type_name"] == "Lnl_LoggedEvent"]
    assert len(events) == 2  # one with the event, one idle, then the signal
    assert Event.objects.count() == 1


def test_the_command_runs_the_onguard_connector_with_a_backfill(fake, system, monkeypatch):
    fake.panel_add(1)
    fake.event_add(DESCRIPTION="Door Forced Open", at=ago(minutes=3))
    fake.event_add(DESCRIPTION="Door Held Open", at=ago(minutes=30))
    monkeypatch.setenv("LENELS2_PASSWORD", fake.password)

    call_command(
        "connect_lenels2",
        system.slug,
        url=fake.url,
        username=fake.username,
        application_id=fake.application_id,
        max_steps=1,
        backfill=10,
    )

    assert Event.objects.get().type == "door_forced"
    assert ConnectorCursor.objects.get(system=system).position.startswith("{")


def test_the_command_refuses_a_negative_backfill_and_a_webhook_system(fake, system):
    AccessSystemFactory(slug="hooks", kind=SystemKind.GENERIC)

    with pytest.raises(CommandError, match="sends webhooks"):
        call_command("connect_lenels2", "hooks", url="http://127.0.0.1:9", username="x")
    with pytest.raises(CommandError, match="minutes, 0 or more"):
        call_command("connect_lenels2", system.slug, url=fake.url, username="x", backfill=-1)


def test_an_event_without_a_serial_is_logged_and_stops_nothing(fake, system, caplog):
    fake.panel_add(1)
    connector = connector_for(fake, system)
    run(connector, steps=1)
    fake.event_add(DESCRIPTION="Door Held Open")
    fake.events[-1]["SERIALNUMBER"] = None
    fake.event_add(DESCRIPTION="Door Forced Open")

    with caplog.at_level(logging.WARNING, logger="accesslog.connectors"):
        run(connector, steps=1)

    assert [e.type for e in Event.objects.all()] == ["door_forced"]
    assert "unreadable event skipped" in caplog.text and connector.tally["unreadable"] == 1
