import os
import time
from pathlib import Path

import pytest

from cameras.live import sessions_running
from cameras.models import CameraHealth, HealthStatus
from responder.core.models import AuditEntry, Outcome
from responder.core.redis import redis_client
from tests.cameras.conftest import free_port, h264_file
from tests.cameras.fake_cameras import broken_camera
from tests.factories import CameraFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def children() -> list[str]:
    """Processes whose parent is this test process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
            found.append(entry.name)
    return found


def assert_ends_cleanly(client, camera, settings, reason: str) -> None:
    processes = children()

    response = client.post(
        f"/api/v1/cameras/{camera.pk}/live", {"profile": "low"}, content_type="application/json"
    )

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert reason in response.json()["detail"]
    health = CameraHealth.objects.get(camera=camera, stream="main")
    assert health.status == HealthStatus.OFFLINE
    assert reason in health.reason
    # The 503 can beat the worker's clean-up by a moment: give it one.
    for _ in range(50):
        if not redis_client().exists(f"live:{camera.pk}:low:lock"):
            break
        time.sleep(0.1)
    assert not redis_client().exists(f"live:{camera.pk}:low:lock")
    assert sessions_running() == 0
    assert not any(settings.LIVE_ROOT.rglob("*.*"))
    assert children() == processes
    entry = AuditEntry.objects.get(action="video.live")
    assert entry.outcome == Outcome.FAILURE


def test_a_dead_camera_ends_cleanly_with_the_reason(video_worker, viewer_for, settings):
    camera = CameraFactory(main_stream_url=f"http://127.0.0.1:{free_port()}/cam/video.ts")

    assert_ends_cleanly(viewer_for(camera), camera, settings, "did not answer")


def test_a_stalled_camera_ends_cleanly_with_the_reason(
    video_worker, viewer_for, settings, tmp_path
):
    video = h264_file(tmp_path / "v.ts", width=320, height=240, fps=15, seconds=2)
    url, listener = broken_camera("stall", video)
    camera = CameraFactory(main_stream_url=url)

    with listener:
        assert_ends_cleanly(viewer_for(camera), camera, settings, "stopped sending video")


def test_a_camera_sending_garbage_ends_cleanly_with_the_reason(video_worker, viewer_for, settings):
    url, listener = broken_camera("garbage")
    camera = CameraFactory(main_stream_url=url)

    with listener:
        assert_ends_cleanly(viewer_for(camera), camera, settings, "not video")


def test_the_503_names_no_stream_url_and_health_keeps_the_detail_without_the_password(
    video_worker, viewer_for
):
    port = free_port()
    camera = CameraFactory(
        main_stream_url=f"rtsp://127.0.0.1:{port}/axis-media/media.amp",
        username="operator",
        password="s3cret-pass",
    )
    client = viewer_for(camera)

    response = client.post(
        f"/api/v1/cameras/{camera.pk}/live", {"profile": "low"}, content_type="application/json"
    )
    again = client.post(
        f"/api/v1/cameras/{camera.pk}/live", {"profile": "low"}, content_type="application/json"
    )
    snapshot = client.get(f"/api/v1/cameras/{camera.pk}/snapshot")

    for answer in (response, again, snapshot):
        assert answer.status_code == 503
        text = answer.content.decode()
        assert "The camera is unreachable" in text
        for secret in ("rtsp", "127.0.0.1", str(port), "operator", "s3cret-pass", "axis-media"):
            assert secret not in text
    health = CameraHealth.objects.get(camera=camera, stream="main")
    assert "did not answer" in health.reason
    assert f"127.0.0.1:{port}/axis-media" in health.reason  # for IT
    assert "s3cret-pass" not in health.reason
    assert "operator" not in health.reason
    audits = AuditEntry.objects.filter(action="video.live")
    assert all("rtsp" not in str(entry.details) for entry in audits)
