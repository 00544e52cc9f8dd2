"""PostgreSQL out of reach for 20 s (a cut link: the machine's server runs on), under gunicorn,
a daphne and a NetBox connector process that all reach it only through that link."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from http.client import HTTPConnection

import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command

from accesslog.models import ConnectorCursor, Event, SystemKind
from accesslog.signatures import HEADER, sign
from responder.core.outage import RETRY_AFTER_SECONDS
from responder.embedded_redis import free_port
from tests.accesslog.connector_helpers import served
from tests.accesslog.fakes.netbox import FakeNetBox
from tests.factories import (
    AccessSystemFactory,
    BuildingFactory,
    DoorFactory,
    GrantFactory,
    UserFactory,
)
from tests.faults.feed_client import FeedClient
from tests.responder.test_events_socket import signed_in
from tests.servers import ROOT, daphne_command, database_url, serve, stop, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

OUTAGE_SECONDS = 20


@pytest.fixture
def netbox():
    fake = FakeNetBox()
    fake.portal_add("3", "MS Main Entrance", ("7", "MS Main Entrance In"))
    fake.portal_add("4", "MS Gym East", ("8", "MS Gym East In"))
    yield from served(fake)


@pytest.fixture
def behind_the_link(pg_proxy, redis_server, tmp_path):
    """gunicorn and a daphne whose only way to PostgreSQL is the proxy: their ports."""
    env = {
        "DATABASE_URL": database_url(port=pg_proxy.port),
        # The periodic re-check is the one thing that would close a socket mid-outage
        # (4503: the PWA reconnects, checked afresh); here the socket itself must last.
        "SOCKET_RECHECK_SECONDS": "600",
    }
    http, ws = free_port(), free_port()
    wsgi = [
        "gunicorn", "-b", f"127.0.0.1:{http}", "--workers", "2",
        "--worker-class", "gthread", "--threads", "2", "responder.wsgi:application",
    ]  # fmt: skip
    servers = [
        serve(wsgi, http, tmp_path / "gunicorn.log", env, wait=False),
        serve(daphne_command(ws), ws, tmp_path / "daphne.log", env, wait=False),
    ]
    try:
        wait_for(http)
        wait_for(ws)
        yield http, ws
    finally:
        stop(*servers)


def connector(netbox: FakeNetBox, pg_proxy, settings, tmp_path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(port=pg_proxy.port),
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "responder.settings",
        "LENELS2_PASSWORD": netbox.password,
    }
    command = [sys.executable, "manage.py", "connect_lenels2", "ms", f"--url={netbox.url}"]
    return subprocess.Popen(
        [*command, f"--username={netbox.username}", "--max-backoff=2"],
        cwd=ROOT,
        env=env,
        stderr=(tmp_path / "connector.log").open("w"),
    )


def webhook(port: int, door, source_event_id: str) -> tuple[int, dict[str, str]]:
    """An access system's POST of one forced door: the status and headers it gets."""
    body = json.dumps(
        {
            "source_event_id": source_event_id,
            "type": "door_forced",
            "door": door.external_id,
            "occurred_at": datetime.now(UTC).isoformat(),  # news: rung and pushed
        }
    ).encode()
    http = HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", HEADER: sign(body, door.system.webhook_secret)}
    http.request("POST", f"/api/v1/access/{door.system.slug}/events", body, headers)
    response = http.getresponse()
    response.read()
    return response.status, dict(response.headers)


def signed_in_get(port: int, cookie: str, path: str) -> int:
    http = HTTPConnection("127.0.0.1", port, timeout=30)
    http.request("GET", path, headers={"Cookie": cookie})
    response = http.getresponse()
    response.read()
    return response.status


def until(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def stored_ids(prefix: str) -> list[str]:
    events = Event.objects.filter(source_event_id__startswith=prefix)
    return list(events.values_list("source_event_id", flat=True))


def all_seqs() -> list[int]:
    return list(Event.objects.order_by("seq").values_list("seq", flat=True))


def district(netbox: FakeNetBox):
    """NetBox's doors and a webhook's door in one building, and a tablet that sees them."""
    building = BuildingFactory(name="Middle school")
    ms = AccessSystemFactory(slug="ms", kind=SystemKind.NETBOX)
    os.environ["LENELS2_PASSWORD"] = netbox.password
    try:
        call_command(
            "import_doors",
            "ms",
            url=netbox.url,
            username=netbox.username,
            building=str(building.id),
        )
    finally:
        del os.environ["LENELS2_PASSWORD"]
    door = DoorFactory(building=building, external_id="gym-east")
    user = UserFactory()
    GrantFactory(user=user, capabilities=["alarms"], building=building)
    return ms, door, signed_in(user)


async def test_postgresql_out_of_reach_for_20_s_answers_503_and_loses_nothing(
    behind_the_link, pg_proxy, netbox, settings, tmp_path
):
    http, ws = behind_the_link
    ms, door, cookie = await database_sync_to_async(district)(netbox)
    reader = connector(netbox, pg_proxy, settings, tmp_path)
    tablet = FeedClient(ws, cookie)
    try:
        await database_sync_to_async(until)(
            lambda: ConnectorCursor.objects.filter(system=ms).exists(), "the connector"
        )
        tablet.start()
        await asyncio.wait_for(tablet.live.wait(), 60)
        assert (await asyncio.to_thread(webhook, http, door, "before"))[0] == 202
        netbox.alarm("3", "Door forced open")
        await database_sync_to_async(until)(lambda: Event.objects.count() == 2, "the first events")

        pg_proxy.cut()
        cut_at, answers, refused = time.monotonic(), [], []
        while time.monotonic() - cut_at < OUTAGE_SECONDS:
            source = f"during-{len(refused)}"
            status, headers = await asyncio.to_thread(webhook, http, door, source)
            answers.append((status, headers.get("Retry-After")))
            refused.append(source)
            if len(refused) in (2, 5):  # the controller goes on: its connector must catch up
                netbox.alarm("4" if len(refused) == 2 else "3", "Door held open")
            await asyncio.sleep(1)
        page = await asyncio.to_thread(signed_in_get, http, cookie, "/api/v1/events/")
        kept = await database_sync_to_async(stored_ids)("during-")
        lasted = len(tablet.opened) == 1 and not tablet.lost
        pg_proxy.restore()

        for source in refused:  # the access system retries what was refused
            assert (await asyncio.to_thread(webhook, http, door, source))[0] == 202
        total = 2 + len(refused) + 2
        await database_sync_to_async(until)(lambda: Event.objects.count() == total, "the catch-up")
        seqs = await database_sync_to_async(all_seqs)()
        assert await tablet.has(seqs[-1])
        from_connector = await database_sync_to_async(Event.objects.filter(system=ms).count)()
    finally:
        await tablet.stop()
        reader.terminate()
        reader.wait(timeout=20)

    assert answers and set(answers) == {(503, str(RETRY_AFTER_SECONDS))}
    assert page == 503
    assert kept == []  # nothing half-stored while refused
    assert lasted and len(tablet.opened) == 1  # the socket stayed open throughout
    assert tablet.seqs == seqs  # every event once, in order, the missed ones too
    assert from_connector == 3
