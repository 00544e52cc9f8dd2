import json
import logging
import time

import pytest

from accesslog.models import DoorCamera
from cameras.live import playlist_read
from responder.alarms.services import event_ingest
from responder.core.models import AuditEntry
from responder.core.redis import quick_redis, redis_client
from tests.accesslog.ingest_helpers import event_json
from tests.factories import CameraFactory, DoorFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
WARM_UP = "cameras.tasks.live_warm_up"


def simulated(server: str, name: str) -> str:
    return f"{server}/{name}/video.ts?size=426x240&fps=15&kbps=300&gop=15"


def door_with_cameras(*cameras_by_rank):
    door = DoorFactory()
    for rank, camera in cameras_by_rank:
        DoorCamera.objects.create(door=door, camera=camera, rank=rank)
    return door


def playing(camera) -> bool:
    text = playlist_read(camera_id=camera.pk, profile="low")
    return bool(text) and "#EXTINF" in text


def test_a_door_alarm_starts_the_low_sessions_of_its_two_nearest_cameras(
    video_worker, camera_server
):
    nearest, second, third = (
        CameraFactory(main_stream_url=simulated(camera_server, n)) for n in "abc"
    )
    off = CameraFactory(main_stream_url=simulated(camera_server, "d"), enabled=False)
    door = door_with_cameras((3, third), (0, off), (1, nearest), (2, second))

    event, created = event_ingest(system=door.system, payload=event_json(door=door.external_id))

    assert created
    for _ in range(200):
        if playing(nearest) and playing(second):
            break
        time.sleep(0.1)
    assert playing(nearest) and playing(second)  # before anyone asked for them
    r = redis_client()
    assert not r.exists(f"live:{third.pk}:low:lease")
    assert not r.exists(f"live:{off.pk}:low:lease")
    assert not AuditEntry.objects.filter(action="video.live").exists()


@pytest.mark.django_db  # not transactional: the after-commit work runs when asked
def test_only_alarms_at_doors_with_cameras_warm_anything(
    settings, django_capture_on_commit_callbacks
):
    settings.LIVE_WARM_ON_ALARM = True
    door = door_with_cameras((0, CameraFactory()))
    bare = DoorFactory(system=door.system)
    payloads = [
        event_json(source_event_id="granted", type="access_granted", door=door.external_id),
        event_json(source_event_id="no-cameras", door=bare.external_id),
        event_json(source_event_id="forced", door=door.external_id),
    ]

    def warm_ups_queued(payload: dict) -> int:
        broker = quick_redis(settings.CELERY_BROKER_URL)
        before = broker.llen("video")
        with django_capture_on_commit_callbacks(execute=True):
            event_ingest(system=door.system, payload=payload)
        queued = broker.lrange("video", 0, -before - 1)
        return [json.loads(m)["headers"]["task"] for m in queued].count(WARM_UP)

    assert [warm_ups_queued(payload) for payload in payloads] == [0, 0, 1]

    settings.LIVE_WARM_ON_ALARM = False
    assert warm_ups_queued(event_json(source_event_id="x", door=door.external_id)) == 0


def test_an_alarm_is_stored_when_the_broker_is_down(settings, caplog):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens
    door = door_with_cameras((0, CameraFactory()))

    with caplog.at_level(logging.WARNING, logger="responder.core.redis"):
        event, created = event_ingest(
            system=door.system, payload=event_json(door=door.external_id)
        )

    assert created and event.pk
    assert f"Warm-up of door {door.pk}'s cameras not sent" in caplog.text
