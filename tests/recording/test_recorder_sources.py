"""The recorder records what cameras send: H.264 (HTTP, RTSP) and H.265 as sent, MJPEG and
Mobotix MxPEG as H.264."""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from pathlib import Path

import av
import pytest
from django.conf import settings

from responder.demo.simulate import GLYPHS, clock_box, simulator_running
from responder.recording.models import Gap, Segment
from tests.cameras.conftest import RTSP_PACKAGES, free_port, h264_file
from tests.factories import CameraFactory

pytest.register_assert_rewrite("tests.recording.recorder_helpers")
from tests.recording.recorder_helpers import (  # noqa: E402
    keyframe_decodes_alone,
    loop_url,
    segment_verify,
    wait_until,
)

# The fixtures: recorders (real `manage.py record` processes), loop_cameras, recordings.
pytest_plugins = ["tests.recording.recorder_helpers"]
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

GLYPH_OF = {rows: char for char, rows in GLYPHS.items()}


def segments_of(camera, count: int) -> list[Segment]:
    found = list(Segment.objects.filter(camera=camera).order_by("start"))
    return found if len(found) >= count else []


def clock_read(frame: av.VideoFrame) -> float:
    """The simulator's burned-in clock (HH:MM:SS.t, local time) as seconds of the day."""
    x, y, _, _ = clock_box(frame.width, frame.height)
    unit, plane = x, frame.planes[0]
    luma, line = bytes(plane), plane.line_size
    text = ""
    for index in range(10):
        rows = tuple(
            "".join(
                "1"
                if luma[(y + (row + 1) * unit + unit // 2) * line + x + (1 + 4 * index + col) * unit
                   + unit // 2] > 128
                else "0"
                for col in range(3)
            )
            for row in range(5)
        )  # fmt: skip
        text += GLYPH_OF.get(rows, "?")
    hours, minutes, seconds = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def first_picture(segment: Segment) -> av.VideoFrame:
    with av.open(str(Path(settings.RECORDINGS_ROOT) / segment.path)) as container:
        for frame in container.decode(video=0):
            return frame.reformat(format="yuv420p")
    raise AssertionError("no picture")


def seconds_of_day(at: dt.datetime) -> float:
    local = time.localtime(at.timestamp())
    return local.tm_hour * 3600 + local.tm_min * 60 + local.tm_sec + at.microsecond / 1e6


def simulator_recorded(recorders, path: str, count: int) -> list[Segment]:
    """The first `count` segments recorder "one" makes of the simulator's `path`, stopped."""
    with simulator_running() as simulator:
        camera = CameraFactory(main_stream_url=simulator + path)
        recorders.start("one")
        recorded = wait_until(lambda: segments_of(camera, count), 60, f"{count} segments")
        recorders.stop_all()
    return recorded


def starts_on_its_clock(segment: Segment) -> bool:
    """The burned-in clock of the segment's first picture says the row's start (< 1 s)."""
    return abs(clock_read(first_picture(segment)) - seconds_of_day(segment.start)) < 1.0


def test_it_records_h264_as_sent_with_the_start_of_each_segment_on_the_camera_clock(recorders):
    recorded = simulator_recorded(recorders, "/cam/video.ts?size=640x360&fps=15", 3)

    for segment in recorded:
        assert segment_verify(segment) > 0
        assert (segment.codec, segment.width, segment.height) == ("h264", 640, 360)
        assert segment.recorder == "one" and segment.kind == "continuous"
        assert 3 <= (segment.end - segment.start).total_seconds() <= 9
        assert starts_on_its_clock(segment), segment.start
    assert keyframe_decodes_alone(recorded[1], len(recorded[1].keyframes) - 1)
    # Segments follow one another without a hole or an overlap beyond a frame.
    for before, after in zip(recorded, recorded[1:], strict=False):
        assert abs((after.start - before.end).total_seconds()) < 0.2
    # Stopped on purpose: an open gap says so until a recorder takes the camera again.
    assert Gap.objects.get(camera=recorded[0].camera, end__isnull=True).reason == "stopped"


def test_it_records_h265_as_sent(recorders, loop_cameras):
    camera = CameraFactory(main_stream_url=loop_url(loop_cameras, "hevc-cam", codec="hevc"))
    recorders.start("one")
    recorded = wait_until(lambda: segments_of(camera, 2), 90, "two segments")
    recorders.stop_all()

    for segment in recorded:
        assert segment_verify(segment) > 0
        assert (segment.codec, segment.width, segment.height) == ("hevc", 320, 240)
    assert keyframe_decodes_alone(recorded[0], 1)
    # The loop camera has no clock to burn in: its first bytes' wall-clock time instead.
    served = dt.datetime.fromtimestamp(loop_cameras.served["hevc-cam"], tz=dt.UTC)
    assert abs((recorded[0].start - served).total_seconds()) < 1.0


def test_it_transcodes_mjpeg_to_h264_at_the_camera_size(recorders):
    recorded = simulator_recorded(recorders, "/cam/mjpeg?size=320x240&fps=5", 2)

    for segment in recorded:
        assert segment_verify(segment) > 0
        assert (segment.codec, segment.width, segment.height) == ("h264", 320, 240)
    assert keyframe_decodes_alone(recorded[0], 0)


@pytest.mark.parametrize("query", ["stream=mxg", "stream=MxPEG&noaudio"])
def test_it_transcodes_mobotix_mxpeg_to_h264_with_each_picture_at_its_time(recorders, query):
    path = f"/gate/control/faststream.jpg?{query}&size=320x240&fps=5"

    recorded = simulator_recorded(recorders, path, 2)

    for segment in recorded:
        assert segment_verify(segment) > 0
        assert (segment.codec, segment.width, segment.height) == ("h264", 320, 240)
        # Arrival times, and none held back while opening (the mxg demuxer's audio stream).
        assert starts_on_its_clock(segment), segment.start
    assert keyframe_decodes_alone(recorded[1], 0)


@pytest.fixture
def rtsp_camera(tmp_path):
    """GStreamer's RTSP server playing 30 s of PyAV-made H.264: its rtsp:// URL."""
    python = "/usr/bin/python3"
    probe = subprocess.run(
        [python, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
        capture_output=True,
    )
    if probe.returncode:
        pytest.fail(f"GStreamer's RTSP server is missing. Install it: {RTSP_PACKAGES}")
    media = h264_file(tmp_path / "rtsp.ts", width=320, height=240, fps=15, seconds=30)
    port = free_port()
    script = Path(__file__).parents[1] / "cameras" / "rtsp_server.py"
    server = subprocess.Popen(
        [python, str(script), str(media), str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout.readline().strip() == "ready"
        yield f"rtsp://127.0.0.1:{port}/camera"
    finally:
        server.terminate()
        server.wait(10)


def test_it_records_an_rtsp_camera_with_its_credentials_and_never_writes_them(
    recorders, rtsp_camera
):
    camera = CameraFactory(main_stream_url=rtsp_camera, username="rec", password="Pw-9f3k")
    recorders.start("one")
    recorded = wait_until(lambda: segments_of(camera, 2), 60, "two segments")
    recorders.stop_all()

    for segment in recorded:
        assert segment_verify(segment) > 0
        assert (segment.codec, segment.width, segment.height) == ("h264", 320, 240)
    assert "Pw-9f3k" not in recorders.log("one")
    assert not Gap.objects.filter(camera=camera, detail__contains="Pw-9f3k").exists()
