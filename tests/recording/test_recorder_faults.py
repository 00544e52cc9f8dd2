"""Faults, with real recorder processes: killed, sharing, a camera down, bad data."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from cameras.models import CameraHealth, HealthStatus
from responder.core.announce import channel
from responder.recording.models import Gap, Segment
from tests.factories import CameraFactory

pytest.register_assert_rewrite("tests.recording.recorder_helpers")
from tests.recording.recorder_helpers import (  # noqa: E402
    BACKOFF_MAX_SECONDS,
    loop_url,
    segment_verify,
    wait_until,
)

# The fixtures: recorders (real `manage.py record` processes), loop_cameras, recordings.
pytest_plugins = ["tests.recording.recorder_helpers"]
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
# Long enough for the recorder to fail twice (it marks the camera offline then), several
# back-offs long: the gap is the time down, not a back-off.
DOWN_SECONDS = 6


def loop_cameras_made(server, count: int, prefix: str) -> list:
    return [CameraFactory(main_stream_url=loop_url(server, f"{prefix}{n}")) for n in range(count)]


def holders(cameras) -> list[str]:
    """Who holds each camera's lease now, sorted."""
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    return sorted(client.get(f"recording:lease:{c.pk}") or "" for c in cameras)


def recorders_of(camera, since: dt.datetime | None = None) -> set[str]:
    segments = Segment.objects.filter(camera=camera)
    if since:
        segments = segments.filter(start__gte=since)
    return set(segments.values_list("recorder", flat=True))


def overlaps(camera) -> list[tuple[Segment, Segment]]:
    """Pairs of this camera's segments from two recorders over the same time."""
    found = []
    segments = list(Segment.objects.filter(camera=camera).order_by("start"))
    for index, one in enumerate(segments):
        for other in segments[index + 1 :]:
            if other.recorder != one.recorder and other.start < one.end:
                found.append((one, other))
    return found


def test_two_recorders_split_the_cameras_and_never_record_one_twice(recorders, loop_cameras):
    cameras = loop_cameras_made(loop_cameras, 4, "split")
    recorders.start("a")
    recorders.start("b")
    wait_until(lambda: holders(cameras) == ["a", "a", "b", "b"], 60, "the cameras split")
    settled = timezone.now()
    wait_until(
        lambda: all(
            Segment.objects.filter(camera=c, start__gte=settled).exists() for c in cameras
        ),
        60,
        "every camera recorded after the split",
    )
    time.sleep(5)
    recorders.stop_all()

    latest = [recorders_of(c, since=settled) for c in cameras]
    assert all(len(names) == 1 for names in latest), latest  # one recorder each, since
    assert sorted(n for names in latest for n in names) == ["a", "a", "b", "b"]
    for camera in cameras:
        assert overlaps(camera) == []
        for segment in Segment.objects.filter(camera=camera):
            segment_verify(segment)


def test_a_killed_recorders_cameras_are_taken_within_30_s_and_nothing_truncated_is_indexed(
    recorders, loop_cameras
):
    cameras = loop_cameras_made(loop_cameras, 4, "kill")
    recorders.start("a")
    recorders.start("b")
    wait_until(lambda: holders(cameras) == ["a", "a", "b", "b"], 60, "the cameras split")
    split_at = timezone.now()
    wait_until(
        lambda: all(
            Segment.objects.filter(camera=c, start__gte=split_at).exists() for c in cameras
        ),
        60,
        "both recorders recording",
    )
    time.sleep(3)  # into a segment: the killed recorder leaves it half written
    orphaned = [
        c
        for c in cameras
        if "a" in recorders_of(c, since=timezone.now() - dt.timedelta(seconds=8))
    ]
    assert orphaned
    killed_at = timezone.now()
    recorders.kill("a")

    def taken() -> bool:
        return all(recorders_of(c, since=killed_at) == {"b"} for c in orphaned)

    wait_until(taken, 45, "b recording the killed recorder's cameras")
    for camera in orphaned:
        first = Segment.objects.filter(camera=camera, recorder="b", start__gte=killed_at).earliest(
            "start"
        )
        assert (first.start - killed_at).total_seconds() <= 30
        gap = Gap.objects.get(camera=camera, reason="recorder_down")
        assert gap.end == first.start
        assert gap.start <= killed_at + dt.timedelta(seconds=1)
        # What `a` was writing when killed: recovered, whole, indexed before the gap.
        recovered = Segment.objects.filter(camera=camera, recorder="a").latest("end")
        assert recovered.end == gap.start
    recorders.stop_all()

    for camera in cameras:
        assert overlaps(camera) == []
        for segment in Segment.objects.filter(camera=camera):
            segment_verify(segment)  # every row's file hashes to its sha256 and decodes
    assert not list(Path(settings.RECORDINGS_ROOT).glob("*/*/*.partial"))


def test_a_camera_down_a_few_seconds_is_a_gap_as_long_and_recording_resumes(
    recorders, loop_cameras
):
    camera = CameraFactory(main_stream_url=loop_url(loop_cameras, "flaky"))
    warnings = redis.Redis.from_url(settings.REDIS_URL).pubsub()
    warnings.subscribe(channel("cameras"))
    recorder = recorders.start("one")
    wait_until(lambda: Segment.objects.filter(camera=camera).count() >= 2, 60, "recording")
    down_at = timezone.now()
    loop_cameras.down("flaky", DOWN_SECONDS)
    wait_until(
        lambda: CameraHealth.objects.filter(camera=camera, status=HealthStatus.OFFLINE).exists(),
        20,
        "the camera marked offline",
    )
    back_at = down_at + dt.timedelta(seconds=DOWN_SECONDS)
    wait_until(
        lambda: Segment.objects.filter(camera=camera, start__gt=back_at).exists(),
        60,
        "recording again",
    )

    gap = Gap.objects.get(camera=camera)
    assert gap.reason in ("source_down", "source_error")
    assert abs((gap.start - down_at).total_seconds()) < 2
    # Late by at most one back-off, and the time to connect and reach a keyframe.
    late = BACKOFF_MAX_SECONDS + 6
    assert DOWN_SECONDS - 2 <= (gap.end - gap.start).total_seconds() <= DOWN_SECONDS + late
    resumed = Segment.objects.filter(camera=camera, start__gte=gap.end).earliest("start")
    assert resumed.start == gap.end and resumed.recorder == "one"
    assert recorder.poll() is None  # the same process all along
    assert CameraHealth.objects.get(camera=camera).status == HealthStatus.ONLINE
    # The offline warning went to the sockets' channel, naming the camera.
    announced = []
    while message := warnings.get_message(timeout=1):
        if message["type"] == "message":
            announced.append(json.loads(message["data"]))
    assert any(a.get("camera") == camera.pk for a in announced), announced
    recorders.stop_all()
    for segment in Segment.objects.filter(camera=camera):
        segment_verify(segment)


def test_corrupt_or_truncated_data_closes_the_segment_cleanly_and_recording_goes_on(
    recorders, loop_cameras
):
    camera = CameraFactory(main_stream_url=loop_url(loop_cameras, "noisy"))
    recorder = recorders.start("one")
    wait_until(lambda: Segment.objects.filter(camera=camera).exists(), 60, "recording")
    loop_cameras.garbage("noisy")
    time.sleep(3)
    loop_cameras.truncate("noisy")
    cut_at = timezone.now()
    wait_until(
        lambda: Segment.objects.filter(camera=camera, start__gt=cut_at).count() >= 2,
        60,
        "recording after the bad data",
    )
    assert recorder.poll() is None
    recorders.stop_all()
    for segment in Segment.objects.filter(camera=camera):
        assert segment_verify(segment) > 0
    assert Gap.objects.filter(camera=camera, reason="source_error").exists()


def test_a_disk_that_refuses_writes_is_a_disk_full_gap_never_a_truncated_row_or_a_crash(
    recorders, loop_cameras
):
    camera = CameraFactory(main_stream_url=loop_url(loop_cameras, "full", kbps=1000))
    # Each segment file stops growing at ~300 kB, about 2 s into its 4 s.
    recorder = recorders.start("one", file_limit=300_000)
    wait_until(lambda: Gap.objects.filter(camera=camera, reason="disk_full").exists(), 60, "a gap")
    wait_until(lambda: Segment.objects.filter(camera=camera).count() >= 2, 60, "retried")
    assert recorder.poll() is None  # no crash, no crash loop
    recorders.stop_all()
    for segment in Segment.objects.filter(camera=camera):
        assert segment.bytes <= 300_000
        assert segment_verify(segment) > 0  # what was written, cut to whole packets, hashed
    assert not list(Path(settings.RECORDINGS_ROOT).glob("*/*/*.partial"))
