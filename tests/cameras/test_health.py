import pytest

from cameras.health import camera_went_offline
from cameras.models import CameraHealth, HealthStatus
from cameras.tasks import health_probe
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
