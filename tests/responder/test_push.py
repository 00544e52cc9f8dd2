import json
import threading
import time
from datetime import datetime, timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from accesslog.models import DoorCamera, Event, EventType, Severity
from accesslog.rendering import event_payloads
from accesslog.tasks import live_warm_up
from responder.alarms.services import event_ingest
from responder.celery import app
from responder.core.models import PendingPush, PushSubscription
from responder.core.redis import quick_redis, redis_client, task_write
from responder.embedded_redis import free_port
from responder.incidents.services import incident_open
from responder.push import services as push
from responder.push.tasks import push_event as push_event_task
from responder.push.tasks import push_pending_send
from tests.factories import (
    BuildingFactory,
    CameraFactory,
    DoorFactory,
    GrantFactory,
    GroupFactory,
    UserFactory,
    event_store,
    sign_in_verified,
)
from tests.responder.push_service import (
    Browser,
    PushService,
    b64url,
    push_service_server,
    vapid_claims,
)
from tests.responder.test_settings import PRODUCTION, run_manage

store_event = event_store
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _push_settings(settings):
    key = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    settings.VAPID_PRIVATE_KEY = b64url(key.to_bytes(32))
    settings.VAPID_PUBLIC_KEY = ""
    settings.VAPID_SUBJECT = "mailto:it@district.example"
    settings.PUSH_ENABLED = True
    settings.PUSH_WINDOW_SECONDS = 60
    # The stand-in push service (push_service.py) listens on 127.0.0.1 over plain http.
    settings.PUSH_UNSAFE_LOOPBACK_FOR_TESTS = True
    for key in redis_client().scan_iter("responder:push:*"):
        redis_client().delete(key)


@pytest.fixture
def service():
    service = PushService()
    server = push_service_server(service)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield service
    server.shutdown()
    server.server_close()


@pytest.fixture
def door():
    return DoorFactory(name="Gym east door")


def phone(service, user, name="phone") -> Browser:
    browser = Browser(service, name)
    push.push_subscription_register(
        user=user, endpoint=browser.endpoint, p256dh=browser.p256dh, auth=browser.auth
    )
    return browser


def officer_with_phone(service, building, name="phone", capabilities=("alarms",)):
    user = UserFactory()
    GrantFactory(user=user, capabilities=list(capabilities), building=building)
    return phone(service, user, name)


def test_an_alarm_reaches_the_phone_signed_encrypted_and_collapsed_per_door(service, door):
    browser = officer_with_phone(service, door.building)
    event = store_event(door)

    outcome = push.push_event(event)

    assert outcome.sent == 1
    [received] = service.received
    assert received.path == browser.path
    assert received.headers["ttl"] == "3600"
    assert received.headers["topic"] == f"door-{door.id}"
    assert received.headers["urgency"] == "high"
    claims = vapid_claims(received.headers["authorization"], push.vapid_public_key())
    assert claims["aud"] == service.origin
    assert claims["sub"] == "mailto:it@district.example"
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    assert browser.decrypt(received) == {
        "type": "event",
        "seq": event.seq,
        "event": event_payloads([event])[0],
        "title": "Door forced: Gym east door",
    }


def test_only_devices_whose_user_may_see_the_doors_alarms_are_pushed(service, door):
    inside = officer_with_phone(service, door.building, "inside")
    officer_with_phone(service, BuildingFactory(), "other-building")
    officer_with_phone(service, door.building, "live-only", capabilities=["live"])

    push.push_event(store_event(door))

    assert [r.path for r in service.received] == [inside.path]


def test_an_intercom_call_comes_with_its_camera_and_info_is_not_pushed(service, door):
    camera = CameraFactory(building=door.building)
    DoorCamera.objects.create(door=door, camera=camera, rank=0)
    browser = officer_with_phone(service, door.building, capabilities=["alarms", "live"])

    assert push.push_event(store_event(door, EventType.ACCESS_GRANTED, Severity.INFO)).sent == 0
    push.push_event(store_event(door, EventType.INTERCOM_CALL, Severity.NOTICE))

    [received] = service.received
    assert received.headers["ttl"] == "60"
    assert browser.decrypt(received)["camera"] == camera.id


def test_a_push_names_only_the_cameras_its_user_may_watch(service, door):
    outside, inside = CameraFactory(), CameraFactory(building=door.building)
    for rank, camera in enumerate((outside, inside)):
        DoorCamera.objects.create(door=door, camera=camera, rank=rank)
    watcher = officer_with_phone(service, door.building, "watcher", ["alarms", "live"])
    alarms_only = officer_with_phone(service, door.building, "alarms-only")

    push.push_event(store_event(door))

    by_path = {received.path: received for received in service.received}
    assert watcher.decrypt(by_path[watcher.path])["event"]["cameras"] == [inside.id]
    assert alarms_only.decrypt(by_path[alarms_only.path])["event"]["cameras"] == []


@pytest.mark.parametrize("status", [404, 410])
def test_a_subscription_the_push_service_reports_gone_is_removed(service, door, status):
    gone = officer_with_phone(service, door.building, "gone")
    kept = officer_with_phone(service, door.building, "kept")
    service.statuses[gone.path] = status

    outcome = push.push_event(store_event(door))

    assert (outcome.sent, outcome.removed) == (1, 1)
    assert list(PushSubscription.objects.values_list("endpoint", flat=True)) == [kept.endpoint]


def test_a_failing_push_service_is_retried_for_that_device_only(service, door):
    failing = officer_with_phone(service, door.building, "failing")
    officer_with_phone(service, door.building, "fine")
    service.statuses[failing.path] = 503
    event = store_event(door)

    outcome = push.push_event(event)

    failing_id = PushSubscription.objects.get(endpoint=failing.endpoint).id
    assert outcome.failed == [failing_id]
    del service.statuses[failing.path]
    # The retry is not swallowed by the flood limit: the failed push never counted.
    assert push.push_event(event, subscription_ids=outcome.failed).sent == 1
    assert [r.path for r in service.received].count(failing.path) == 2


def test_a_flood_at_one_door_pushes_once_then_one_summary(service, door):
    browser = officer_with_phone(service, door.building)
    other_door = DoorFactory(building=door.building)
    events = [store_event(door) for _ in range(5)]

    outcomes = [push.push_event(event) for event in events]
    push.push_event(store_event(other_door))

    assert [o.sent for o in outcomes] == [1, 0, 0, 0, 0]
    summaries = [s for o in outcomes for s in o.summaries]
    assert len(summaries) == 1
    subscription_id, door_key, delay = summaries[0]
    assert door_key == f"door-{door.id}" and 0 < delay <= 60
    assert [r.headers["topic"] for r in service.received] == [door_key, f"door-{other_door.id}"]

    assert push.push_summary_send(subscription_id=subscription_id, door=door_key)

    summary = service.received[-1]
    assert summary.headers["topic"] == door_key
    assert browser.decrypt(summary) == {
        "type": "summary",
        "door": door.id,
        "count": 4,
        "latest": events[-1].id,
        "title": "4 more at Gym east door",
    }
    # The summary opened a new window: the flood goes on, still bounded.
    assert push.push_event(store_event(door)).sent == 0
    assert not push.push_summary_send(subscription_id=subscription_id, door="door-0")


def test_opening_an_incident_wakes_the_responders_phones(service, door):
    fire = GroupFactory(name="fire")
    firefighter = UserFactory()
    firefighter.groups.add(fire)
    browser = phone(service, firefighter, "firefighter")
    officer_with_phone(service, door.building, "not-a-responder")
    incident = incident_open(
        campus=door.building.campus,
        title="Smoke in the gym",
        by=None,
        responder_groups=[fire],
        grant_hours=4,
    )

    assert push.push_incident(incident).sent == 1

    [received] = service.received
    assert received.headers["topic"] == f"incident-{incident.id}"
    message = browser.decrypt(received)
    assert message["title"] == "Incident: Smoke in the gym"
    assert message["incident"]["id"] == incident.id


def test_the_pwa_registers_and_removes_a_subscription(client):
    user = UserFactory()
    sign_in_verified(client, user)
    url = "/api/v1/push/subscriptions"
    endpoint = "https://fcm.googleapis.com/fcm/send/abc"
    body = {"endpoint": endpoint, "expirationTime": None, "keys": {"p256dh": "BPk", "auth": "xy"}}

    assert client.post(url, body, "application/json").status_code == 201
    assert client.post(url, body, "application/json").status_code == 201
    assert PushSubscription.objects.get().user == user
    plain_http = {**body, "endpoint": "http://10.0.0.1/internal"}
    assert client.post(url, plain_http, "application/json").status_code == 400
    assert client.delete(url, {"endpoint": endpoint}, "application/json").status_code == 204
    assert client.delete(url, {"endpoint": endpoint}, "application/json").status_code == 404
    assert not PushSubscription.objects.exists()


def test_the_vapid_key_is_served_to_the_pwa(client):
    response = client.get("/api/v1/push/vapid-key")

    assert response.json() == {"key": push.vapid_public_key()}
    assert len(push.vapid_public_key()) == 87  # 65 bytes, base64url: an uncompressed point


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_push_task_runs_on_a_real_worker(service, door):
    browser = officer_with_phone(service, door.building)
    event = store_event(door)

    with start_worker(app, pool="threads", queues=["push"], perform_ping_check=False):
        push_event_task.delay(event.id)
        received = service.wait_for(1)

    assert browser.decrypt(received[0])["seq"] == event.seq


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_ingested_alarm_reaches_the_phone_through_a_real_worker(service, door):
    browser = officer_with_phone(service, door.building)

    event = forced(door, "queued-by-ingest")  # autocommit: its push is queued at once
    with start_worker(app, pool="threads", queues=["push"], perform_ping_check=False):
        received = service.wait_for(1)

    assert browser.decrypt(received[0])["seq"] == event.seq
    assert not PendingPush.objects.exists()


@pytest.mark.parametrize(
    ("task", "expires"), [(push_event_task, None), (live_warm_up, 30)], ids=["push", "warm-up"]
)
def test_the_message_ingest_queues_is_the_one_celery_would_send(task, expires, settings):
    broker = quick_redis(settings.CELERY_BROKER_URL)
    queue = task_write(task, (41,), what="a test").command[1]
    task.apply_async((41,), expires=expires)
    celery = json.loads(broker.lpop(queue))

    ours = json.loads(task_write(task, (41,), what="a test", expires=expires).command[2])

    for message in (ours, celery):
        headers, properties = message["headers"], message["properties"]
        for key in ("id", "root_id"):
            assert headers.pop(key) == properties["correlation_id"]
        for key in ("correlation_id", "delivery_tag", "reply_to"):  # per message
            properties.pop(key)
        if expires:
            expiry = datetime.fromisoformat(headers.pop("expires"))
            assert abs(expiry - timezone.now() - timedelta(seconds=expires)) < timedelta(seconds=5)
    assert ours == celery


def forced(door, source_event_id: str) -> Event:
    payload = {
        "source_event_id": source_event_id,
        "type": "door_forced",
        "door": door.external_id,
        "occurred_at": timezone.now().isoformat(),
    }
    return event_ingest(system=door.system, payload=payload)[0]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_push_the_broker_could_not_take_at_ingest_goes_once_it_answers(service, door, settings):
    browser = officer_with_phone(service, door.building)
    broker = settings.CELERY_BROKER_URL
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens

    event = forced(door, "while-the-broker-was-down")  # autocommit: announced at once

    assert PendingPush.objects.filter(event=event).exists()
    settings.CELERY_BROKER_URL = broker
    with start_worker(app, pool="threads", queues=["push"], perform_ping_check=False):
        assert push_pending_send() == 1
        received = service.wait_for(1)

    assert browser.decrypt(received[0])["seq"] == event.seq
    assert not PendingPush.objects.exists()


def test_a_push_is_left_pending_only_when_the_broker_did_not_answer(
    door, django_capture_on_commit_callbacks, settings
):
    broker = quick_redis(settings.CELERY_BROKER_URL)
    before = broker.llen("push")

    with django_capture_on_commit_callbacks(execute=True):
        event = forced(door, "broker-up")

    assert [(h["task"], h["argsrepr"]) for h in queued_tasks(broker, before)] == [
        ("responder.tasks.push_event", f"({event.id},)")
    ]
    assert not PendingPush.objects.exists()


def queued_tasks(broker, before: int) -> list[dict]:
    """The tasks queued on `push` since it held `before`, newest first, as a worker reads them."""
    return [json.loads(m)["headers"] for m in broker.lrange("push", 0, -before - 1)]


def test_a_pending_push_past_its_ttl_is_dropped_not_sent(door, settings):
    stale, fresh = store_event(door), store_event(door, type="intercom_call", severity="notice")
    Event.objects.filter(pk=stale.pk).update(received_at=timezone.now() - timedelta(hours=2))
    PendingPush.objects.create(event=stale)
    PendingPush.objects.create(event=fresh)
    broker = quick_redis(settings.CELERY_BROKER_URL)
    before = broker.llen("push")

    assert push.push_pending_queue() == 1

    assert [(h["task"], h["argsrepr"]) for h in queued_tasks(broker, before)] == [
        ("responder.tasks.push_event", f"({fresh.id},)")
    ]
    assert not PendingPush.objects.exists()


def test_a_dev_machine_derives_one_stable_key_and_production_needs_one(settings):
    settings.VAPID_PRIVATE_KEY = ""
    settings.DEBUG = True
    dev_key = push.vapid_public_key()
    assert dev_key == push.vapid_public_key() and len(dev_key) == 87
    settings.DEBUG = False
    with pytest.raises(ImproperlyConfigured):
        push.vapid_public_key()


def test_a_subscription_kept_from_before_hosts_were_checked_is_dropped_unsent(service, door):
    kept = officer_with_phone(service, door.building, "kept")
    stranger = UserFactory()
    GrantFactory(user=stranger, capabilities=["alarms"], building=door.building)
    PushSubscription.objects.create(
        user=stranger, endpoint="https://evil.example/push", p256dh=kept.p256dh, auth=kept.auth
    )

    outcome = push.push_event(store_event(door))

    assert (outcome.sent, outcome.removed) == (1, 1)
    assert list(PushSubscription.objects.values_list("endpoint", flat=True)) == [kept.endpoint]


def test_production_refuses_to_start_with_loopback_push_services_allowed():
    env = {**PRODUCTION, "PUSH_UNSAFE_LOOPBACK_FOR_TESTS": "true"}

    result = run_manage("check", env=env)

    assert result.returncode != 0
    assert "PUSH_UNSAFE_LOOPBACK_FOR_TESTS" in result.stderr


def test_production_refuses_to_start_with_push_on_and_no_key():
    result = run_manage("check", env={**PRODUCTION, "PUSH_ENABLED": "true"})

    assert result.returncode != 0
    assert "VAPID_PRIVATE_KEY" in result.stderr


def test_production_without_a_key_tells_the_pwa_that_push_is_off():
    ask = (
        "from django.test import Client; "
        "r = Client().get('/api/v1/push/vapid-key', secure=True, "
        "headers={'host': 'responder.example.org'}); print(r.status_code, r.json())"
    )

    result = run_manage("shell", "--verbosity", "0", "-c", ask, env=PRODUCTION)

    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip() == "404 {'detail': 'Notifications are not set up on this server.'}"
    )


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"VAPID_PRIVATE_KEY": "not-a-key"}, "VAPID_PRIVATE_KEY is not a P-256 private key"),
        (
            {"VAPID_PRIVATE_KEY": b64url(b"\x01" * 32), "VAPID_PUBLIC_KEY": b64url(b"\x04" * 65)},
            "VAPID_PUBLIC_KEY is not VAPID_PRIVATE_KEY's public key",
        ),
    ],
    ids=["malformed", "mismatched"],
)
def test_production_refuses_to_start_with_a_key_push_services_would_refuse(env, says):
    result = run_manage("check", env={**PRODUCTION, **env})

    assert result.returncode != 0
    assert says in result.stderr
