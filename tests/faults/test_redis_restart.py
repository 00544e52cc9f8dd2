"""Redis killed and started again (empty: it keeps nothing on disk) during an alarm stream,
under gunicorn, a daphne, a push worker and beat, all real processes."""

from __future__ import annotations

import asyncio
import threading

import pytest
from channels.db import database_sync_to_async
from cryptography.hazmat.primitives.asymmetric import ec

from accesslog.models import Event
from responder.core.models import PendingPush
from responder.embedded_redis import free_port
from responder.embedded_redis import start as start_redis
from responder.push import services as push
from tests.factories import BuildingFactory, DoorFactory, GrantFactory, UserFactory
from tests.faults.conftest import Supervised
from tests.faults.feed_client import FeedClient
from tests.faults.test_database_outage import all_seqs, until, webhook
from tests.responder.push_service import Browser, PushService, b64url, push_service_server
from tests.responder.test_events_socket import signed_in
from tests.servers import daphne_command, serve, stop, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def push_service():
    service = PushService()
    server = push_service_server(service)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield service
    server.shutdown()
    server.server_close()


@pytest.fixture
def vapid(settings) -> dict[str, str]:
    """Push on, with a key of the test's own, to the stand-in push service on loopback."""
    key = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    env = {
        "VAPID_PRIVATE_KEY": b64url(key.to_bytes(32)),
        "PUSH_ENABLED": "true",
        "PUSH_UNSAFE_LOOPBACK_FOR_TESTS": "true",
        # Beat's sweep of the pushes kept while Redis was down: every 3 s, not every 15.
        "PUSH_PENDING_SECONDS": "3",
    }
    settings.VAPID_PRIVATE_KEY = env["VAPID_PRIVATE_KEY"]
    settings.PUSH_ENABLED = settings.PUSH_UNSAFE_LOOPBACK_FOR_TESTS = True
    return env


@pytest.fixture
def servers(redis_server, vapid, tmp_path):
    """gunicorn, a daphne, the push worker and beat, as the Procfile runs them: web ports."""
    http, ws = free_port(), free_port()
    wsgi = [
        "gunicorn", "-b", f"127.0.0.1:{http}", "--workers", "2",
        "--worker-class", "gthread", "--threads", "2", "responder.wsgi:application",
    ]  # fmt: skip
    worker = ["celery", "-A", "responder", "worker", "-Q", "push", "--pool", "threads"]
    beat = ["celery", "-A", "responder", "beat", "--schedule", str(tmp_path / "beat")]
    processes = [
        serve(wsgi, http, tmp_path / "gunicorn.log", vapid, wait=False),
        serve(daphne_command(ws), ws, tmp_path / "daphne.log", vapid, wait=False),
    ]
    # Celery's worker can exit when its broker goes mid-task (kombu restoring unacked
    # messages over a dead connection: "Unrecoverable error"); systemd starts it again.
    supervised = [
        Supervised(lambda c=command, log=log: serve([*c, "-l", "INFO"], 0, log, vapid, wait=False))
        for command, log in ((worker, tmp_path / "worker.log"), (beat, tmp_path / "beat.log"))
    ]
    try:
        wait_for(http)
        wait_for(ws)
        yield http, ws
    finally:
        for process in supervised:
            process.stop()
        stop(*processes)


def officer(service: PushService, building) -> tuple[str, Browser]:
    """A tablet's session and a phone's push subscription, for one building's alarms."""
    user = UserFactory()
    GrantFactory(user=user, capabilities=["alarms"], building=building)
    phone = Browser(service, "phone")
    push.push_subscription_register(
        user=user, endpoint=phone.endpoint, p256dh=phone.p256dh, auth=phone.auth
    )
    return signed_in(user), phone


async def test_a_redis_restart_loses_no_alarm_on_sockets_nor_any_push(
    servers, redis_server, push_service, tmp_path
):
    http, ws = servers
    building = await database_sync_to_async(BuildingFactory)()
    # One door per alarm: a second alarm at a door within its window is summed, not pushed.
    doors = [await database_sync_to_async(DoorFactory)(building=building) for _ in range(5)]
    cookie, phone = await database_sync_to_async(officer)(push_service, building)
    tablet = FeedClient(ws, cookie)
    tablet.start()
    try:
        await asyncio.wait_for(tablet.live.wait(), 60)
        assert (await asyncio.to_thread(webhook, http, doors[0], "before"))[0] == 202
        await asyncio.to_thread(push_service.wait_for, 1, 60)

        redis_server["server"].kill()
        redis_server["server"].wait()
        for n, door in enumerate(doors[1:3]):
            assert (await asyncio.to_thread(webhook, http, door, f"down-{n}"))[0] == 202
        pending = await database_sync_to_async(PendingPush.objects.count)()
        redis_server["server"] = start_redis(redis_server["port"], str(tmp_path))
        for n, door in enumerate(doors[3:]):
            assert (await asyncio.to_thread(webhook, http, door, f"after-{n}"))[0] == 202

        seqs = await database_sync_to_async(all_seqs)()
        assert await tablet.has(seqs[-1])
        # Beat's push-pending (every 3 s here) queues what ingest could not while Redis was down.
        await asyncio.to_thread(push_service.wait_for, len(seqs), 90)
        await database_sync_to_async(until)(
            lambda: not PendingPush.objects.exists(), "the pending pushes", 30
        )
        await asyncio.sleep(1)  # room for a doubled push to show
        received = list(push_service.received)
    finally:
        await tablet.stop()

    assert pending == 2  # kept in the database while the broker was down
    assert tablet.seqs == seqs  # every alarm on the socket once, in order
    pushed = sorted(phone.decrypt(push)["seq"] for push in received)
    assert pushed == seqs  # and every alarm on the phone once
    assert await database_sync_to_async(Event.objects.count)() == 5
