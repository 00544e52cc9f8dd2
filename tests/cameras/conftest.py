from __future__ import annotations

import shutil
import socket
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest
from celery.contrib.testing.worker import start_worker
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY

from responder.celery import app
from responder.core.middleware import SIGNED_IN_AT
from responder.core.redis import redis_client
from responder.demo.simulate import simulator_running
from tests.factories import GrantFactory, TOTPDeviceFactory, UserFactory

RTSP_PACKAGES = (
    "apt-get install -y gir1.2-gst-rtsp-server-1.0 python3-gi "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"
)


@pytest.fixture
def live_root(tmp_path) -> Path:
    """The test's LIVE_ROOT; a module whose servers outlive a test gives one of its own."""
    return tmp_path / "live"


@pytest.fixture(autouse=True)
def _live(settings, live_root):
    settings.LIVE_ROOT = live_root
    settings.LIVE_IDLE_SECONDS = 3
    settings.LIVE_LIST_SIZE = 3
    settings.CAMERA_TIMEOUT = 3
    settings.LIVE_START_TIMEOUT = 20
    r = redis_client()
    for key in r.scan_iter("live:*"):
        r.delete(key)
    for key in r.scan_iter("*cameras:snapshot:*"):
        r.delete(key)
    yield
    # End this test's sessions (their locks go, so they stop) before its database does.
    for key in r.scan_iter("live:*"):
        r.delete(key)
    for _ in range(50):
        if not any(settings.LIVE_ROOT.glob("*/*/*")):
            break
        time.sleep(0.1)


@pytest.fixture(scope="module")
def video_worker():
    # Threads, so a running session does not block the next one; the real broker.
    with start_worker(
        app, pool="threads", concurrency=4, queues=["video"], perform_ping_check=False
    ) as worker:
        yield worker


@pytest.fixture(scope="module")
def camera_server():
    with simulator_running() as url:
        yield url


def verified_client(user) -> Client:
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDeviceFactory(user=user).persistent_id
    session[SIGNED_IN_AT] = time.time()
    session.save()
    return client


@pytest.fixture
def viewer_for():
    """A signed-in, verified client whose user may watch live video at the camera."""

    def make(camera, username: str | None = None) -> Client:
        user = UserFactory(**({"username": username} if username else {}))
        GrantFactory(user=user, capabilities=["live"], building=camera.building)
        client = verified_client(user)
        client.user = user
        return client

    return make


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def h264_file(path: Path, *, width: int, height: int, fps: int, seconds: int) -> Path:
    """An MPEG-TS H.264 fixture with a keyframe every second, made by PyAV."""
    with av.open(str(path), "w", format="mpegts") as output:
        stream = output.add_stream(
            "libx264",
            rate=fps,
            options={"preset": "ultrafast", "g": str(fps), "sc_threshold": "0", "bf": "0"},
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        source = av.open(
            f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}", "r", "lavfi"
        )
        with source:
            for index, frame in enumerate(source.decode(video=0)):
                frame.pts, frame.time_base = index, Fraction(1, fps)
                frame.pict_type = av.video.frame.PictureType.NONE
                output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return path


@pytest.fixture
def rtsp_server(tmp_path):
    """rtsp://… of GStreamer's rtsp-server playing a PyAV-made file; fails loudly if missing."""
    python = shutil.which("python3", path="/usr/bin")
    probe = subprocess.run(
        [python or "/usr/bin/python3", "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"
         "; from gi.repository import GstRtspServer"],
        capture_output=True,
    )  # fmt: skip
    if probe.returncode:
        pytest.fail(f"GStreamer's RTSP server is missing. Install it: {RTSP_PACKAGES}")
    media = h264_file(tmp_path / "rtsp.ts", width=320, height=240, fps=15, seconds=20)
    port = free_port()
    server = subprocess.Popen(
        [python, str(Path(__file__).with_name("rtsp_server.py")), str(media), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout.readline().strip() == "ready"
        yield f"rtsp://127.0.0.1:{port}/camera"
    finally:
        server.terminate()
        server.wait(10)
