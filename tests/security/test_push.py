"""Attacks on push notifications: can a signed-in user make the server call into the
district's own network, hold up another officer's alarm or the live video, or take over
another person's phone?

Each test plays the attacker through the real API or a real Celery worker: it registers
endpoints that point at the server itself, at private addresses or at unknown hosts; it
changes where a name points after it was accepted; it registers more devices than an
account may have, or someone else's device; and it runs push services that never answer.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from subprocess import STDOUT

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from cryptography.hazmat.primitives.asymmetric import ec

from responder.celery import app
from responder.core.models import PushSubscription
from responder.core.redis import redis_client
from responder.embedded_redis import free_port
from responder.push import services as push
from responder.push.tasks import push_event as push_event_task
from tests.factories import DoorFactory, GrantFactory, UserFactory, event_store
from tests.responder.push_service import (
    Browser,
    HangingPushService,
    PushService,
    b64url,
    hanging_server,
    push_service_server,
)
from tests.servers import ROOT, daphne_command, database_url, http_sign_in, serve, stop

SUBSCRIPTIONS = "/api/v1/push/subscriptions"
KEYS = {"p256dh": "BPk", "auth": "xy"}


@pytest.fixture(autouse=True)
def _push_settings(settings):
    key = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    settings.VAPID_PRIVATE_KEY = b64url(key.to_bytes(32))
    settings.VAPID_PUBLIC_KEY = ""
    settings.PUSH_ENABLED = True
    for key in redis_client().scan_iter("responder:push:*"):
        redis_client().delete(key)


class Listener:
    """A port on this machine that counts who connects to it: what SSRF would reach."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    listening = Listener()
    yield listening
    listening.sock.close()


@pytest.fixture
def service() -> Iterator[PushService]:
    service = PushService()
    server = push_service_server(service)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield service
    server.shutdown()
    server.server_close()


@pytest.fixture
def hanging() -> Iterator[HangingPushService]:
    service = HangingPushService()
    server = hanging_server(service)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield service
    server.shutdown()
    server.server_close()


@pytest.fixture
def daphne_trusting_localhost(redis_server, tmp_path) -> Iterator[int]:
    """A daphne where IT added `localhost` to the push hosts (a name that is loopback)."""
    port = free_port()
    hosts = "fcm.googleapis.com,*.push.services.mozilla.com,localhost"
    env = {"PUSH_ALLOWED_HOSTS": hosts}
    process = serve(daphne_command(port), port, tmp_path / "daphne.log", env=env)
    yield port
    stop(process)


def subscribe(client, endpoint: str, keys: dict = KEYS) -> tuple[int, dict]:
    status, _, body = client.request("POST", SUBSCRIPTIONS, {"endpoint": endpoint, "keys": keys})
    return status, json.loads(body) if body else {}


def officer(door) -> object:
    user = UserFactory()
    GrantFactory(user=user, capabilities=["alarms"], building=door.building)
    return user


def device_keys() -> dict:
    browser = Browser(PushService(), "keys")
    return {"p256dh": browser.p256dh, "auth": browser.auth}


def subscribed(user, endpoint: str) -> PushSubscription:
    return PushSubscription.objects.create(user=user, endpoint=endpoint, **device_keys())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_endpoints_inside_the_network_or_off_the_push_services_are_refused(daphne, listener):
    client = http_sign_in(daphne, UserFactory())
    port = listener.port
    attacks = [
        f"https://127.0.0.1:{port}/push",  # the server itself
        f"https://[::1]:{port}/push",
        f"https://localhost:{port}/push",
        "https://10.0.0.5/push",  # the district's network
        "https://192.168.1.10/push",
        "https://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "https://evil.example/push",  # not a push service
        "https://fcm.googleapis.com.evil.example/push",
        f"https://fcm.googleapis.com@127.0.0.1:{port}/push",
        "http://fcm.googleapis.com/fcm/send/abc",  # plain http
        "https://[::1/push",  # not even a URL
    ]

    answers = {endpoint: subscribe(client, endpoint) for endpoint in attacks}

    for endpoint, (status, body) in answers.items():
        assert status == 400, endpoint
        assert body["detail"], endpoint
    assert not PushSubscription.objects.exists()
    assert listener.connections == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_push_host_it_trusts_that_resolves_to_loopback_is_refused(
    daphne_trusting_localhost, listener
):
    client = http_sign_in(daphne_trusting_localhost, UserFactory())

    status, body = subscribe(client, f"https://localhost:{listener.port}/push")

    assert status == 400
    assert "private" in body["detail"]
    assert not PushSubscription.objects.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_account_cannot_register_more_devices_than_its_cap(daphne, settings):
    user = UserFactory()
    client = http_sign_in(daphne, user)
    endpoints = [f"https://fcm.googleapis.com/fcm/send/device-{n}" for n in range(11)]

    statuses = [subscribe(client, endpoint)[0] for endpoint in endpoints[:10]]
    status, body = subscribe(client, endpoints[10])

    assert statuses == [201] * 10
    assert status == 400 and "10" in body["detail"]
    assert PushSubscription.objects.filter(user=user).count() == 10
    assert subscribe(client, endpoints[0])[0] == 201  # a device already registered still is


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_registering_another_users_endpoint_does_not_move_it(daphne):
    victim, attacker = UserFactory(), UserFactory()
    endpoint = "https://updates.push.services.mozilla.com/wpush/v2/victims-phone"
    victim_keys = device_keys()
    assert subscribe(http_sign_in(daphne, victim), endpoint, victim_keys)[0] == 201

    status, body = subscribe(http_sign_in(daphne, attacker), endpoint, device_keys())

    assert status == 409 and body["detail"]
    row = PushSubscription.objects.get(endpoint=endpoint)
    assert (row.user_id, row.p256dh, row.auth) == (victim.id, *victim_keys.values())


@pytest.mark.django_db
def test_a_trusted_name_that_points_inside_at_send_time_is_not_connected_to(settings, listener):
    settings.PUSH_ALLOWED_HOSTS = [*settings.PUSH_ALLOWED_HOSTS, "localhost"]
    door = DoorFactory()
    # Registered while the name pointed elsewhere, say: the send resolves it again.
    subscribed(officer(door), f"https://localhost:{listener.port}/push/phone")

    outcome = push.push_event(event_store(door))

    assert listener.connections == 0
    assert (outcome.sent, outcome.refused) == (0, 1)
    assert PushSubscription.objects.exists()


@pytest.mark.django_db
def test_a_name_rebound_to_loopback_after_subscribing_is_not_connected_to(
    settings, listener, monkeypatch
):
    settings.PUSH_ALLOWED_HOSTS = [*settings.PUSH_ALLOWED_HOSTS, "*.example.net"]
    real_getaddrinfo = socket.getaddrinfo
    points_to = {"push.example.net": "93.184.215.14"}  # public: accepted at subscribe

    def dns(host, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        return real_getaddrinfo(points_to.get(host, host), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", dns)
    door = DoorFactory()
    browser = Browser(PushService(), "rebound")
    push.push_subscription_register(
        user=officer(door),
        endpoint=f"https://push.example.net:{listener.port}/push",
        p256dh=browser.p256dh,
        auth=browser.auth,
    )
    points_to["push.example.net"] = "127.0.0.1"  # the attacker's DNS answers anew

    outcome = push.push_event(event_store(door))

    assert listener.connections == 0
    assert (outcome.sent, outcome.refused) == (0, 1)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_three_hanging_endpoints_do_not_hold_up_another_officers_alarm(settings, service, hanging):
    settings.PUSH_UNSAFE_LOOPBACK_FOR_TESTS = True
    settings.PUSH_READ_TIMEOUT = 10  # a margin on a loaded machine: the test waits less
    door = DoorFactory()
    attacker = officer(door)
    for n in range(3):  # registered first: an old worker would try them first
        hung = Browser(hanging, f"hang-{n}")
        push.push_subscription_register(
            user=attacker, endpoint=hung.endpoint, p256dh=hung.p256dh, auth=hung.auth
        )
    other = Browser(service, "other-officer")
    push.push_subscription_register(
        user=officer(door), endpoint=other.endpoint, p256dh=other.p256dh, auth=other.auth
    )
    hung_up_when_delivered: list[int] = []
    service.on_receive = lambda _: hung_up_when_delivered.append(hanging.closed)
    event = event_store(door)

    worker = start_worker(
        app, pool="threads", queues=["push"], perform_ping_check=False, shutdown_timeout=30
    )
    with worker:
        push_event_task.delay(event.id)
        [received] = service.wait_for(1)
        assert hanging.wait(lambda: hanging.opened == 3)

    assert other.decrypt(received)["seq"] == event.seq
    # Delivered while every hanging endpoint still held its connection: none delayed it.
    assert hung_up_when_delivered == [0]


@pytest.fixture
def push_worker(settings, tmp_path) -> Iterator[subprocess.Popen]:
    """The Procfile's push worker as a real process, on the test database and Redis."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DEBUG": "true",
        "VAPID_PRIVATE_KEY": settings.VAPID_PRIVATE_KEY,
        "PUSH_ENABLED": "true",
        "PUSH_UNSAFE_LOOPBACK_FOR_TESTS": "true",  # the hanging services are on loopback
        "PUSH_READ_TIMEOUT": "10",
    }
    log = tmp_path / "push-worker.log"
    command = [sys.executable, "-m", *shlex.split(procfile_command("push"))]
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=STDOUT)
    deadline = time.monotonic() + 60
    while "ready." not in log.read_text() and worker.poll() is None:
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    assert worker.poll() is None, log.read_text()[-3000:]
    yield worker
    worker.terminate()  # warm: it finishes the pushes under way, each within its timeout
    try:
        worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def procfile_command(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        process, _, command = line.partition(":")
        if process.strip() == name:
            return command.strip()
    raise LookupError(name)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_live_video_work_runs_while_push_endpoints_hang(settings, hanging, push_worker, tmp_path):
    settings.PUSH_UNSAFE_LOOPBACK_FOR_TESTS = True
    settings.LIVE_ROOT = tmp_path / "live"
    door = DoorFactory()
    attackers = [officer(door), officer(door)]
    for n in range(20):  # two attackers at their cap
        hung = Browser(hanging, f"hang-{n}")
        push.push_subscription_register(
            user=attackers[n // 10], endpoint=hung.endpoint, p256dh=hung.p256dh, auth=hung.auth
        )
    video: dict[str, str] = {}
    ran = threading.Event()
    hung_up_when_video_ran: list[int] = []

    def finished(task_id: str, **_: object) -> None:
        if task_id == video.get("id"):
            hung_up_when_video_ran.append(hanging.closed)
            ran.set()

    task_postrun.connect(finished, weak=False)
    try:
        # The Procfile's other worker, with as many slots as there are alarms below.
        with start_worker(
            app,
            pool="threads",
            concurrency=2,
            queues=["default", "video"],
            perform_ping_check=False,
            shutdown_timeout=30,
        ):
            for _ in range(2):
                push_event_task.delay(event_store(door).id)
            assert hanging.wait(lambda: hanging.opened >= 2)
            video["id"] = app.send_task("cameras.tasks.live_clean_up").id
            assert ran.wait(30), "the video task did not run while pushes hung"
    finally:
        task_postrun.disconnect(finished)

    assert hung_up_when_video_ran == [0]
