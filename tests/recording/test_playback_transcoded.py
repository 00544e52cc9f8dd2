import datetime as dt
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.test import Client
from django.utils import timezone

from responder.celery import app
from responder.core.redis import redis_client
from responder.recording.playback import LEAD_SEGMENTS, session_name
from tests.factories import CameraFactory
from tests.recording.playback_helpers import (
    clock_read,
    first_frame,
    playlist_parts,
    recording_make,
    viewer,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def video_worker():
    # Threads, so a running session does not block the next one; the real broker.
    with start_worker(
        app, pool="threads", concurrency=4, queues=["video"], perform_ping_check=False
    ) as worker:
        yield worker


@pytest.fixture(autouse=True)
def _places(settings, tmp_path):
    settings.RECORDINGS_ROOT = tmp_path / "recordings"
    settings.LIVE_ROOT = tmp_path / "live"
    settings.LIVE_IDLE_SECONDS = 3
    settings.LIVE_START_TIMEOUT = 40  # a loaded machine (8 helpers on 2 cores)
    r = redis_client()
    yield
    for key in r.scan_iter("live:*@*"):  # this test's sessions stop without their locks
        r.delete(key)


def test_the_low_profile_is_transcoded_from_the_start_asked_at_the_recorded_clock(video_worker):
    camera = CameraFactory()
    start = (timezone.now() - dt.timedelta(minutes=3)).replace(microsecond=0)
    recording_make(camera, start, seconds=24, segment_seconds=8)
    client = viewer(camera)
    asked = start + dt.timedelta(seconds=9.4)

    response = client.post(
        f"/api/v1/cameras/{camera.pk}/playback",
        {"start": asked.isoformat(), "profile": "low"},
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["profile"] == "low"
    playlist = response.json()["playlist"]
    text = Client().get(playlist).content.decode()
    assert "#EXT-X-START:TIME-OFFSET=0" in text
    parts = playlist_parts(text, playlist)
    assert parts[0]["at"] == start + dt.timedelta(seconds=9)
    for part in parts[:3]:
        got = Client().get(part["url"])
        assert got.status_code == 200
        data = b"".join(got.streaming_content)
        frame = first_frame(data)
        assert frame.height == 240
        assert abs((clock_read(frame) - part["at"]).total_seconds()) < 1
    name = session_name("low", start + dt.timedelta(seconds=9))
    assert redis_client().exists(f"live:{camera.pk}:{name}:lock")

    # The worker stays LEAD_SEGMENTS ahead of what the viewer fetched, then waits for them.
    for _ in range(8):  # a player fetching the playlist, not its segments: the lease holds
        text = Client().get(playlist).content.decode()
        time.sleep(0.5)
    assert "#EXT-X-ENDLIST" not in text
    assert len(playlist_parts(text)) <= 2 + LEAD_SEGMENTS + 2  # the one being written, rounding
    Client().get(playlist_parts(text, playlist)[-1]["url"])
    for _ in range(100):
        text = Client().get(playlist).content.decode()
        if "#EXT-X-ENDLIST" in text:
            break
        time.sleep(0.2)
    assert "#EXT-X-ENDLIST" in text
    assert len(playlist_parts(text)) == 15  # 9 s to 24 s, a segment a second


def test_seeking_again_and_again_never_hits_the_cap_of_views(video_worker, settings):
    settings.LIVE_MAX_SESSIONS_PER_USER = 2
    camera = CameraFactory()
    start = (timezone.now() - dt.timedelta(minutes=3)).replace(microsecond=0)
    recording_make(camera, start, seconds=12, segment_seconds=12)
    client = viewer(camera)

    for second in (1, 4, 7, 10):
        response = client.post(
            f"/api/v1/cameras/{camera.pk}/playback",
            {"start": (start + dt.timedelta(seconds=second)).isoformat(), "profile": "low"},
            content_type="application/json",
        )
        assert response.status_code == 200, (second, response.content)
