"""Ingest's per-process directory of systems, doors and rules, against a real Redis."""

import time

import pytest
from django.conf import settings

from accesslog import directory
from accesslog.models import Door
from responder.alarms.services import event_ingest
from responder.core.models import Incident, IncidentRule
from responder.core.redis import quick_redis
from responder.embedded_redis import free_port
from tests.accesslog.ingest_helpers import event_json, post_event
from tests.factories import AccessSystemFactory, BuildingFactory, DoorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def door():
    return DoorFactory(system=AccessSystemFactory(webhook_secret="s3cret"), external_id="gym-1")


def ingest(door, n: int, **fields):
    payload = event_json(source_event_id=f"e{n}", door=door.external_id, **fields)
    return event_ingest(system=door.system, payload=payload)[0]


def moved_without_a_signal(door) -> int:
    """Another process moved the door, or a bulk update did: no signal in this one."""
    elsewhere = BuildingFactory()
    ingest(door, 0)  # held from here on
    Door.objects.filter(pk=door.pk).update(building=elsewhere)
    return elsewhere.id


def test_a_door_moved_is_announced_in_its_new_building_from_the_next_event(door):
    assert ingest(door, 1).door.building_id == door.building_id
    door.building = BuildingFactory()
    door.save()

    assert ingest(door, 2).door.building_id == door.building.id


def test_a_door_mapped_after_its_first_event_is_found_by_the_next(door):
    unknown = DoorFactory.build(system=door.system, external_id="gate-9")
    assert ingest(unknown, 1).door is None

    mapped = DoorFactory(system=door.system, external_id="gate-9")

    assert ingest(mapped, 2).door == mapped


def heard(generation: int | None) -> None:
    """Until this process's watch listens and has heard everything up to now."""
    deadline = time.monotonic() + 30
    while directory.watch().generation in (None, generation):
        assert time.monotonic() < deadline, "the directory's watch heard nothing"
        time.sleep(0.01)


def test_a_change_in_another_process_reaches_this_one_by_the_version_in_redis(door):
    elsewhere = moved_without_a_signal(door)
    assert ingest(door, 1).door.building_id == door.building_id  # held: no query
    listening = directory.watch().generation

    directory._bump()  # what the other process's commit did
    heard(listening)

    assert ingest(door, 2).door.building_id == elsewhere


def test_while_the_watch_listens_an_ingest_asks_redis_nothing(door):
    heard(None)
    ingest(door, 1)
    held = directory.directory()
    # Were the version read, a missing one would be set anew and the directory dropped.
    quick_redis(settings.REDIS_URL).delete(directory.VERSION_KEY)

    assert directory.directory() is held
    assert ingest(door, 2).door == door


def test_a_change_while_no_watch_listens_is_found_by_the_version(door):
    heard(None)
    elsewhere = moved_without_a_signal(door)
    redis = quick_redis(settings.REDIS_URL)
    name = directory.watch().name
    (mine,) = [c["id"] for c in redis.client_list(_type="pubsub") if c["name"] == name]
    redis.client_kill_filter(_id=mine)  # the watch is lost
    redis.set(directory.VERSION_KEY, "changed, nobody heard")
    deadline = time.monotonic() + 30
    while directory.watch().generation is not None and time.monotonic() < deadline:
        time.sleep(0.01)  # until the watch knows it is lost (it reconnects a second later)

    assert ingest(door, 1).door.building_id == elsewhere


def test_what_a_process_holds_is_read_again_after_a_minute(door, monkeypatch):
    elsewhere = moved_without_a_signal(door)
    monkeypatch.setattr(directory, "MAX_AGE_SECONDS", 0)

    assert ingest(door, 1).door.building_id == elsewhere


def test_without_redis_every_ingest_reads_the_database(door, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    elsewhere = moved_without_a_signal(door)

    assert ingest(door, 1).door.building_id == elsewhere


def test_a_rule_enabled_now_opens_an_incident_from_the_next_alarm(door):
    ingest(door, 1)
    assert not Incident.objects.exists()

    IncidentRule.objects.create(name="Forced", event_types=["door_forced"])
    ingest(door, 2)

    assert Incident.objects.get().source_event.source_event_id == "e2"


def test_a_rotated_secret_signs_from_the_next_post(door, client):
    assert (
        post_event(client, door.system.slug, event_json(door="gym-1"), "s3cret").status_code == 202
    )
    door.system.webhook_secret = "n3w"
    door.system.save()

    again = event_json(source_event_id="evt-2", door="gym-1")
    assert post_event(client, door.system.slug, again, "s3cret").status_code == 401
    assert post_event(client, door.system.slug, again, "n3w").status_code == 202
