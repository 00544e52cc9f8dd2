import io
import sys
import threading
from collections.abc import Iterator

import pytest
from PIL import Image

from cameras.media import SourceError
from cameras.snapshots import camera_snapshot
from responder.core.models import AuditEntry
from tests.cameras.conftest import free_port
from tests.cameras.fake_cameras import counting_dead_camera
from tests.factories import CameraFactory

pytestmark = pytest.mark.django_db


def test_a_snapshot_is_a_small_jpeg_from_the_camera(camera_server, viewer_for):
    camera = CameraFactory(
        main_stream_url=f"{camera_server}/s/video.ts?size=854x480&fps=15&kbps=500&gop=15"
    )
    client = viewer_for(camera)

    response = client.get(f"/api/v1/cameras/{camera.pk}/snapshot")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (640, 360)
    assert (
        AuditEntry.objects.filter(action="video.snapshot", object_id=str(camera.pk)).count() == 1
    )


def test_a_snapshot_is_cached_for_a_few_seconds(camera_server, viewer_for):
    camera = CameraFactory(
        main_stream_url=f"{camera_server}/s/video.ts?size=426x240&fps=15&kbps=300&gop=15"
    )
    client = viewer_for(camera)
    first = client.get(f"/api/v1/cameras/{camera.pk}/snapshot")
    camera.main_stream_url = f"http://127.0.0.1:{free_port()}/gone/video.ts"
    camera.save()

    second = client.get(f"/api/v1/cameras/{camera.pk}/snapshot")

    assert second.status_code == 200
    assert second.content == first.content


def test_an_unreachable_camera_has_no_snapshot(viewer_for):
    camera = CameraFactory(main_stream_url=f"http://127.0.0.1:{free_port()}/cam/video.ts")

    response = viewer_for(camera).get(f"/api/v1/cameras/{camera.pk}/snapshot")

    assert response.status_code == 503
    assert "unreachable" in response.json()["detail"]


def test_a_failed_snapshot_is_remembered_for_a_few_seconds(camera_server, viewer_for):
    camera = CameraFactory(main_stream_url=f"http://127.0.0.1:{free_port()}/cam/video.ts")
    client = viewer_for(camera)
    assert client.get(f"/api/v1/cameras/{camera.pk}/snapshot").status_code == 503
    # The camera comes back: within the few seconds the failure is cached, nobody asks it.
    camera.main_stream_url = f"{camera_server}/s/video.ts?size=426x240&fps=15&kbps=300&gop=15"
    camera.save()

    response = client.get(f"/api/v1/cameras/{camera.pk}/snapshot")

    assert response.status_code == 503
    assert "unreachable" in response.json()["detail"]


def test_a_switched_off_camera_has_no_snapshot(camera_server, viewer_for):
    camera = CameraFactory(
        main_stream_url=f"{camera_server}/s/video.ts?size=426x240&fps=15&kbps=300&gop=15",
        enabled=False,
    )

    response = viewer_for(camera).get(f"/api/v1/cameras/{camera.pk}/snapshot")

    assert response.status_code == 503
    assert response.json()["detail"] == "This camera is switched off."


@pytest.fixture
def eager_thread_switches() -> Iterator[None]:
    """Threads switch every 10 µs instead of 5 ms: a race between them shows in a few runs."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.parametrize("burst", range(5))
def test_requests_arriving_as_a_dead_cameras_grab_ends_do_not_contact_it_again(
    burst, eager_thread_switches
):
    # Requests keep arriving while the camera takes its time to fail, and some land in the
    # instant its failure is being written down: none of them may open a second connection.
    dead, connections = counting_dead_camera(delay=0.2)
    camera = CameraFactory(main_stream_url=dead)
    answers: list[str] = []

    def ask() -> None:
        try:
            camera_snapshot(camera=camera)
        except SourceError as error:
            answers.append(error.reason)

    requests = [threading.Timer(index * 0.005, ask) for index in range(60)]
    for request in requests:
        request.start()
    for request in requests:
        request.join()

    assert answers == ["The camera did not answer."] * 60
    assert len(connections) == 1
