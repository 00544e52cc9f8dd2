import time

import pytest
from celery.beat import Scheduler
from celery.contrib.testing.worker import start_worker

from cameras.health import camera_went_offline
from cameras.models import CameraHealth, HealthStatus
from cameras.tasks import health_probe
from responder.celery import app
from tests.cameras.conftest import free_port
from tests.factories import CameraFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def offline_events():
    events = []

    def record(sender, camera, stream, reason, **kwargs) -> None:
        events.append((camera.pk, stream, reason))

    camera_went_offline.connect(record)
    yield events
    camera_went_offline.disconnect(record)


def test_a_probe_records_an_online_camera_and_its_streams(camera_server):
    camera = CameraFactory(
        main_stream_url=f"{camera_server}/a/video.ts?size=426x240&fps=15&kbps=300&gop=15",
        sub_stream_url=f"{camera_server}/a/mjpeg?size=320x180&fps=5",
    )

    health_probe(camera.pk)

    main = CameraHealth.objects.get(camera=camera, stream="main")
    assert (main.status, main.codec, main.width, main.height, main.fps) == (
        HealthStatus.ONLINE,
        "h264",
        426,
        240,
        15.0,
    )
    assert 150_000 < main.bitrate < 600_000
    assert main.last_frame_at is not None
    sub = CameraHealth.objects.get(camera=camera, stream="sub")
    assert (sub.status, sub.codec, sub.width) == (HealthStatus.ONLINE, "mjpeg", 320)
    assert 3 <= sub.fps <= 7


def test_going_offline_is_one_event_with_the_reason(offline_events):
    camera = CameraFactory(main_stream_url=f"http://127.0.0.1:{free_port()}/cam/video.ts")

    health_probe(camera.pk)
    health_probe(camera.pk)

    health = CameraHealth.objects.get(camera=camera, stream="main")
    assert health.status == HealthStatus.OFFLINE
    assert "did not answer" in health.reason
    assert len(offline_events) == 1
    assert offline_events[0][:2] == (camera.pk, "main")


def test_a_disabled_camera_is_not_probed():
    camera = CameraFactory(enabled=False)

    health_probe(camera.pk)

    assert not CameraHealth.objects.filter(camera=camera).exists()


def test_the_beat_probes_every_enabled_camera_through_a_default_queue_worker(camera_server):
    online = CameraFactory(main_stream_url=f"{camera_server}/b/video.ts?size=320x180&fps=10")
    dead = CameraFactory(main_stream_url=f"http://127.0.0.1:{free_port()}/cam/video.ts")
    switched_off = CameraFactory(enabled=False)
    beat = Scheduler(app=app)
    entry = beat.schedule["camera-health"]
    assert entry.task == "cameras.tasks.health_probe_all"

    # Only the default queue is served: the video workers' slots stay for live sessions.
    with start_worker(app, pool="threads", queues=["default"], perform_ping_check=False):
        beat.apply_async(entry)
        for _ in range(150):
            if CameraHealth.objects.filter(camera__in=[online, dead]).count() == 2:
                break
            time.sleep(0.1)

    assert CameraHealth.objects.get(camera=online).status == HealthStatus.ONLINE
    assert CameraHealth.objects.get(camera=dead).status == HealthStatus.OFFLINE
    assert not CameraHealth.objects.filter(camera=switched_off).exists()
