"""A district's week in a few seconds: two OnGuard panels (one whose serials run far ahead,
one that is reset) and a NetBox controller that restarts and expires sessions, read by the
real `manage.py connect_lenels2` processes, stopped with SIGTERM and killed with SIGKILL.
Every door event arrives once, on its door, with its type, in order per door; nothing
from before the first start is stored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from accesslog.models import ConnectorCursor, Event, SystemKind
from tests.accesslog.connector_helpers import served
from tests.accesslog.fakes.netbox import FakeNetBox
from tests.accesslog.fakes.onguard import FakeOnGuard
from tests.factories import AccessSystemFactory, BuildingFactory
from tests.servers import database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def onguard():
    fake = FakeOnGuard()
    fake.panel_add(1, offset=-360)
    fake.panel_add(2, offset=None)
    fake.panel_ahead(1, 5000)
    for panel in (1, 2):
        for reader in (1, 2):
            fake.reader_add(panel, reader, f"HS panel {panel} reader {reader}")
    yield from served(fake)


@pytest.fixture
def netbox():
    fake = FakeNetBox()
    fake.portal_add("3", "MS Main Entrance", ("7", "MS Main Entrance In"))
    fake.portal_add("4", "MS Gym East", ("8", "MS Gym East In"))
    yield from served(fake)


def connector(slug: str, url: str, settings, tmp_path: Path, **extra: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "responder.settings",
        "LENELS2_PASSWORD": "s3cret",
    }
    args = [f"--{key.replace('_', '-')}={value}" for key, value in extra.items()]
    command = [sys.executable, "manage.py", "connect_lenels2", slug, f"--url={url}"]
    return subprocess.Popen(
        [*command, "--username=responder", "--max-backoff=0.5", *args],
        cwd=ROOT,
        env=env,
        stderr=(tmp_path / f"{slug}.log").open("a"),
    )


def until(condition: Callable[[], bool], what: str, timeout: float = 180) -> None:
    # Generous: a process starting Django on a loaded 2-core machine takes many seconds.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def started(slug: str) -> bool:
    return ConnectorCursor.objects.filter(system__slug=slug).exists()


def count(slug: str) -> int:
    return Event.objects.filter(system__slug=slug).count()


def test_every_door_event_arrives_once_on_its_door_in_order_across_restarts(
    onguard, netbox, settings, tmp_path
):
    hs = AccessSystemFactory(slug="hs", kind=SystemKind.ONGUARD)
    ms = AccessSystemFactory(slug="ms", kind=SystemKind.NETBOX)
    building = BuildingFactory(name="Campus")
    os.environ["LENELS2_PASSWORD"] = "s3cret"
    try:
        for system, fake, extra in (
            (hs, onguard, {"application_id": onguard.application_id}),
            (ms, netbox, {}),
        ):
            call_command(
                "import_doors",
                system.slug,
                url=fake.url,
                username="responder",
                building=str(building.id),
                **extra,
            )
    finally:
        del os.environ["LENELS2_PASSWORD"]
    # Years of history before the connectors are first started: none of it is stored.
    old = datetime.now(UTC) - timedelta(days=700)
    onguard.event_add(PANELID=2, DEVICEID=1, DESCRIPTION="Door Forced Open", at=old)
    netbox.badge("3", at=old, live=False)
    netbox.alarm("4", at=old, live=False)

    og_args = {"application_id": onguard.application_id, "poll_interval": "0.2"}
    og = connector("hs", onguard.url, settings, tmp_path, **og_args)
    nb = connector("ms", netbox.url, settings, tmp_path)
    processes = [og, nb]
    try:
        until(lambda: started("hs") and started("ms"), "the first starts")
        expected_hs = expected_ms = 0

        # Both panels busy; panel 1's serials are 5000 ahead of panel 2's.
        for n in range(6):
            onguard.event_add(PANELID=1, DEVICEID=1 + n % 2, DESCRIPTION="Door Held Open")
            onguard.event_add(PANELID=2, DEVICEID=1 + n % 2, DESCRIPTION="Door Forced Open")
            netbox.badge("3", person=f"_{n}", denied=n % 3 == 0)
            netbox.alarm("4", "Door forced open" if n % 2 else "Door held open")
            # A NetBox event is known by door, second, type and person: one door is not
            # forced twice in a second (docs/CONNECTORS.md).
            time.sleep(1.05)
        expected_hs, expected_ms = expected_hs + 12, expected_ms + 12
        until(lambda: count("hs") == expected_hs and count("ms") == expected_ms, "phase 1")

        # OnGuard's connector stopped (SIGTERM); meanwhile panel 2 is reset.
        og.send_signal(signal.SIGTERM)
        assert og.wait(timeout=20) == 0
        time.sleep(1.1)  # a reset takes its time: the new count starts a second later
        onguard.panel_reset(2)
        for _ in range(4):
            onguard.event_add(PANELID=2, DEVICEID=2, DESCRIPTION="Reader Tamper")
            onguard.event_add(PANELID=1, DEVICEID=1, DESCRIPTION="Access Denied")
        expected_hs += 8
        og = connector("hs", onguard.url, settings, tmp_path, **og_args)
        processes.append(og)
        until(lambda: count("hs") == expected_hs, "phase 2")

        # NetBox's connector killed (SIGKILL); meanwhile badges and alarms, then the
        # controller restarts, and later every session expires.
        nb.kill()
        nb.wait(timeout=20)
        for n in range(3):
            netbox.badge("4", person=f"_k{n}", live=False)
            netbox.alarm("3", live=False)
            time.sleep(1.05)
        netbox.restart()
        og.kill()
        og.wait(timeout=20)
        onguard.event_add(PANELID=1, DEVICEID=2, DESCRIPTION="Door Forced Open")
        expected_hs, expected_ms = expected_hs + 1, expected_ms + 6
        og = connector("hs", onguard.url, settings, tmp_path, **og_args)
        nb = connector("ms", netbox.url, settings, tmp_path)
        processes += [og, nb]
        until(lambda: count("hs") == expected_hs and count("ms") == expected_ms, "phase 3")
        netbox.sessions_expire()
        onguard.sessions_expire()
        netbox.badge("3", person="_last")
        onguard.event_add(PANELID=2, DEVICEID=1, DESCRIPTION="Door Held Open")
        expected_hs, expected_ms = expected_hs + 1, expected_ms + 1
        until(lambda: count("hs") == expected_hs and count("ms") == expected_ms, "phase 4")
        time.sleep(1)  # anything doubled would show now
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
    connection.close()

    assert (count("hs"), count("ms")) == (expected_hs, expected_ms)
    events = list(Event.objects.select_related("door").order_by("seq"))
    assert all(e.door is not None for e in events), "an event filed under no known door"
    assert not any(e.occurred_at < datetime.now(UTC) - timedelta(days=1) for e in events)
    for door in {e.door for e in events}:
        times = [e.occurred_at for e in events if e.door == door]
        assert times == sorted(times), f"out of order at {door}"
    types = {(e.system.slug, e.type) for e in events}
    assert types >= {
        ("hs", "door_held"),
        ("hs", "door_forced"),
        ("hs", "tamper"),
        ("hs", "access_denied"),
        ("ms", "access_granted"),
        ("ms", "access_denied"),
        ("ms", "door_forced"),
        ("ms", "door_held"),
    }
