import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accesslog.api import PAGE_MAX
from accesslog.models import EventAck
from responder.alarms.services import event_ingest
from responder.core.models import AuditEntry
from tests.accesslog.ingest_helpers import event_json
from tests.factories import (
    AccessSystemFactory,
    DoorFactory,
    GrantFactory,
    UserFactory,
    event_store,
    sign_in_verified,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def door():
    return DoorFactory(system=AccessSystemFactory(), external_id="panel1-door1")


def ingest(door, n: int = 1, **overrides) -> list:
    return [
        event_ingest(
            system=door.system,
            payload=event_json(source_event_id=f"{door.external_id}-{i}", door=door.external_id)
            | overrides,
        )[0]
        for i in range(n)
    ]


def officer(client, building):
    user = UserFactory()
    GrantFactory(user=user, building=building, capabilities=["alarms"])
    sign_in_verified(client, user)
    return user


def test_it_lists_the_events_after_a_seq_in_the_socket_shape(client, door):
    first, second = ingest(door, 2)
    officer(client, door.building)

    body = client.get(f"/api/v1/events/?after={first.seq}").json()

    [record] = body["results"]
    assert record["id"] == second.id and record["seq"] == second.seq
    assert record["door"]["id"] == door.id and record["door"]["building"] == door.building_id
    assert set(record) >= {"type", "severity", "occurred_at", "cameras", "incident", "acks"}
    assert body["last_seq"] == second.seq and body["next"] is None


def test_it_shows_only_events_in_the_users_scope(client, door):
    other = DoorFactory(system=door.system, external_id="panel2-door1")
    mine, theirs = ingest(door)[0], ingest(other)[0]
    officer(client, door.building)

    ids = [r["id"] for r in client.get("/api/v1/events/").json()["results"]]

    assert mine.id in ids and theirs.id not in ids


def test_it_pages_by_seq_with_a_constant_number_of_queries(client, door):
    ingest(door, 5)
    officer(client, door.building)

    first = client.get("/api/v1/events/?limit=2").json()
    with CaptureQueriesContext(connection) as small:
        client.get(first["next"])
    ingest(door, 30, type="tamper", credential="x")  # more rows per page must not add queries
    with CaptureQueriesContext(connection) as large:
        page = client.get("/api/v1/events/?limit=20").json()

    assert len(first["results"]) == 2 and first["next"].endswith(
        "after=" + str(first["last_seq"]) + "&limit=2"
    )
    assert len(page["results"]) == 20
    assert len(large) == len(small)


def test_it_bounds_the_page_size(client, door):
    for _ in range(PAGE_MAX + 1):
        event_store(door)
    officer(client, door.building)

    huge = client.get("/api/v1/events/?limit=100000").json()
    tiny = client.get("/api/v1/events/?limit=0").json()

    assert client.get("/api/v1/events/?limit=x").status_code == 400
    assert len(huge["results"]) == PAGE_MAX and huge["next"].endswith(f"limit={PAGE_MAX}")
    assert len(tiny["results"]) == 1 and tiny["next"].endswith("limit=1")


def test_it_needs_a_verified_second_factor(client, door):
    ingest(door)
    client.force_login(UserFactory(is_superuser=True))
    assert client.get("/api/v1/events/").status_code == 403


def test_an_acknowledgement_is_recorded_once_and_shown_to_everyone_who_sees_the_event(
    client, door
):
    from django.test import Client

    event = ingest(door)[0]
    user = officer(client, door.building)

    assert client.post(f"/api/v1/events/{event.id}/ack").status_code == 201
    again = client.post(f"/api/v1/events/{event.id}/ack")
    colleague = Client()
    officer(colleague, door.building)
    [record] = colleague.get("/api/v1/events/").json()["results"]

    assert again.status_code == 200
    assert EventAck.objects.filter(event=event).count() == 1
    assert [a["user"] for a in record["acks"]] == [user.id]
    assert record["acks"][0]["at"]


def test_acknowledging_an_event_outside_the_scope_is_404(client, door):
    other = DoorFactory(system=door.system, external_id="panel2-door1")
    event = ingest(other)[0]
    officer(client, door.building)

    assert client.post(f"/api/v1/events/{event.id}/ack").status_code == 404
    assert not EventAck.objects.exists()
    assert not AuditEntry.objects.filter(action="event.acknowledged").exists()


def test_each_acknowledgement_is_audited_with_who_what_and_from_where(client, door):
    event = ingest(door)[0]
    user = officer(client, door.building)

    client.post(f"/api/v1/events/{event.id}/ack", REMOTE_ADDR="10.1.2.3")
    client.post(f"/api/v1/events/{event.id}/ack", REMOTE_ADDR="10.1.2.3")

    rows = AuditEntry.objects.filter(action="event.acknowledged").order_by("id")
    assert [(r.user, r.object_id, r.details["first"]) for r in rows] == [
        (user, str(event.id), True),
        (user, str(event.id), False),
    ]
    assert rows[0].details["seq"] == event.seq and rows[0].details["door"] == door.id
    assert rows[0].ip == "10.1.2.3"


def test_events_of_unmapped_doors_are_shown_to_district_it_only(client, door):
    event = event_ingest(system=door.system, payload=event_json(door="panel9-door9"))[0]
    officer(client, door.building)
    assert client.get("/api/v1/events/").json()["results"] == []

    sign_in_verified(client, UserFactory(is_superuser=True))
    [record] = client.get("/api/v1/events/").json()["results"]
    assert record["id"] == event.id and record["door"] is None
