import json

import pytest

from accesslog.models import Event, Severity
from accesslog.signatures import HEADER, sign
from responder.alarms.api import EventIngest
from tests.accesslog.ingest_helpers import event_json, now, post_event
from tests.factories import AccessSystemFactory, DoorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def system():
    return AccessSystemFactory(webhook_secret="s3cret")


@pytest.fixture
def door(system):
    return DoorFactory(system=system, external_id="panel1-door1")


def test_it_stores_a_new_event_and_answers_202_with_its_id_and_seq(client, door):
    response = post_event(client, "onguard", event_json(person="Pat", details={"a": 1}), "s3cret")

    assert response.status_code == 202
    event = Event.objects.get()
    assert response.json() == {"id": event.id, "seq": event.seq}
    assert (event.door, event.severity, event.person, event.details) == (
        door,
        Severity.ALARM,
        "Pat",
        {"a": 1},
    )


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "*/*"])
def test_it_answers_json_whatever_the_sender_accepts(client, door, accept):
    stored = post_event(client, "onguard", event_json(), "s3cret", HTTP_ACCEPT=accept)
    refused = post_event(client, "onguard", event_json(), "wrong", HTTP_ACCEPT=accept)

    assert (stored.status_code, stored["Content-Type"]) == (202, "application/json")
    assert (refused.status_code, refused["Content-Type"]) == (401, "application/json")
    assert stored.json() == {"id": Event.objects.get().id, "seq": Event.objects.get().seq}


def test_it_answers_200_with_the_same_body_for_a_duplicate(client, door):
    first = post_event(client, "onguard", event_json(), "s3cret")
    second = post_event(client, "onguard", event_json(type="tamper"), "s3cret")

    assert second.status_code == 200
    assert second.json() == first.json()
    assert Event.objects.get().type == "door_forced"


def test_it_numbers_events_one_after_the_other(client, door):
    seqs = [
        post_event(client, "onguard", event_json(source_event_id=f"e{i}"), "s3cret").json()["seq"]
        for i in range(3)
    ]
    assert seqs[1:] == [seqs[0] + 1, seqs[0] + 2]


def test_it_keeps_an_event_of_an_unknown_door_for_district_it_to_map(client, system):
    response = post_event(client, "onguard", event_json(door="panel9-door9"), "s3cret")

    assert response.status_code == 202
    event = Event.objects.get()
    assert (event.door, event.door_external_id) == (None, "panel9-door9")


def test_it_answers_404_for_an_unknown_system(client, door):
    assert post_event(client, "nope", event_json(), "s3cret").status_code == 404


def test_it_rejects_a_missing_signature(client, door):
    assert post_event(client, "onguard", event_json()).status_code == 401
    assert not Event.objects.exists()


def test_it_rejects_a_wrong_secret(client, door):
    assert post_event(client, "onguard", event_json(), "other").status_code == 401
    assert not Event.objects.exists()


def test_it_rejects_a_tampered_body(client, door):
    signed = json.dumps(event_json()).encode()
    tampered = signed.replace(b"door_forced", b"door_held")
    response = client.post(
        "/api/v1/access/onguard/events",
        tampered,
        content_type="application/json",
        headers={HEADER: sign(signed, "s3cret")},
    )
    assert response.status_code == 401
    assert not Event.objects.exists()


@pytest.mark.parametrize("offset", [-301, 301])
def test_it_rejects_a_stale_or_future_timestamp(client, door, offset):
    response = post_event(client, "onguard", event_json(), "s3cret", t=now() + offset)
    assert response.status_code == 401
    assert not Event.objects.exists()


def test_it_accepts_a_timestamp_within_the_tolerance(client, door):
    assert post_event(client, "onguard", event_json(), "s3cret", t=now() - 290).status_code == 202


def test_it_accepts_either_signature_while_a_secret_rotates(client, door, system):
    assert post_event(client, "onguard", event_json(), "old", "s3cret").status_code == 202
    system.webhook_secret = "new"
    system.save()
    response = post_event(client, "onguard", event_json(source_event_id="e2"), "s3cret", "new")
    assert response.status_code == 202


def test_it_rejects_bad_json_with_nothing_stored(client, door):
    response = post_event(client, "onguard", b'{"source_event_id": ', "s3cret")
    assert response.status_code == 400
    assert "body" in response.json()
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        (event_json(type="door_exploded"), {"type"}),
        ({"type": "door_forced"}, {"source_event_id", "door", "occurred_at"}),
        (event_json(occurred_at="2026-01-05T07:42:10"), {"occurred_at"}),
        (event_json(occurred_at="yesterday"), {"occurred_at"}),
        (event_json(details=[1, 2]), {"details"}),
    ],
)
def test_it_names_the_fields_at_fault_with_nothing_stored(client, door, payload, fields):
    response = post_event(client, "onguard", payload, "s3cret")
    assert response.status_code == 400
    assert set(response.json()) == fields
    assert not Event.objects.exists()


def test_it_rejects_a_body_that_is_not_an_object(client, door):
    response = post_event(client, "onguard", b"[1, 2]", "s3cret")
    assert response.status_code == 400
    assert not Event.objects.exists()


def test_it_refuses_a_body_over_64_kib(client, door):
    payload = event_json(details={"blob": "x" * 65536})
    assert post_event(client, "onguard", payload, "s3cret").status_code == 413
    assert not Event.objects.exists()


def test_it_counts_the_bytes_when_content_length_understates_them(rf, door):
    # Over ASGI (daphne) the body is read whole, whatever Content-Length says.
    raw = json.dumps(event_json(details={"blob": "x" * 65536})).encode()
    request = rf.post(
        "/api/v1/access/onguard/events",
        raw,
        content_type="application/json",
        headers={HEADER: sign(raw, "s3cret")},
    )
    request.META["CONTENT_LENGTH"] = "100"
    request._body = raw  # as ASGIRequest holds it

    assert EventIngest.as_view()(request, slug="onguard").status_code == 413
    assert not Event.objects.exists()


def test_it_needs_no_session_and_no_csrf_token(door):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert post_event(strict, "onguard", event_json(), "s3cret").status_code == 202


@pytest.fixture
def redis_down(settings):
    settings.REDIS_URL = settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens


def test_it_stores_and_answers_with_redis_down(
    client, door, redis_down, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_event(client, "onguard", event_json(), "s3cret")

    assert response.status_code == 202
    assert len(callbacks) == 1  # the announcement ran, and failed quietly
    assert Event.objects.filter(seq=response.json()["seq"]).exists()
