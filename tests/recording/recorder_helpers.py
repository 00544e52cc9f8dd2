"""What the recorder's tests share: real `manage.py record` processes, real sources, checks.

The recorders are subprocesses on the test database and Redis (tests are
`django_db(transaction=True)`); they record into the test's RECORDINGS_ROOT with short
segments and leases, so faults show within seconds.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import pytest
from django.conf import settings

from cameras.loopcam import LoopServer, loop_server_running
from responder.core.redis import redis_client
from responder.recording.models import Segment
from tests.servers import ROOT, database_url

SEGMENT_SECONDS = 4
LEASE_SECONDS = 6
# A failing camera is tried again at most 2 s apart, not 30: a fault's gap ends seconds after
# the fault does (the production schedule has its own test in test_recorder_units.py).
BACKOFF_MAX_SECONDS = 2


@pytest.fixture
def recordings(settings, tmp_path) -> Iterator[Path]:
    """A fresh RECORDINGS_ROOT and no leases or recorders left from another test."""
    settings.RECORDINGS_ROOT = tmp_path / "recordings"
    _forget_leases()
    yield settings.RECORDINGS_ROOT
    _forget_leases()


def _forget_leases() -> None:
    client = redis_client()
    for key in client.scan_iter("recording:*"):
        client.delete(key)


@pytest.fixture(scope="module")
def loop_cameras() -> Iterator[LoopServer]:
    with loop_server_running() as server:
        yield server


def loop_url(server: LoopServer, name: str, **query: object) -> str:
    params = "&".join(f"{k}={v}" for k, v in {"size": "320x240", "fps": 15, **query}.items())
    return f"http://127.0.0.1:{server.server_port}/{name}/video.ts?{params}"


class Recorders:
    """`start(name)` runs a recorder; every one still running is stopped at the end."""

    def __init__(self, root: Path, logs: Path) -> None:
        self.root, self.logs = root, logs
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *, file_limit: int | None = None) -> subprocess.Popen:
        """file_limit: no file of the recorder grows past it (RLIMIT_FSIZE): writes fail
        with EFBIG as on a full disk, without filling this machine's disk."""
        environment = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "DJANGO_SETTINGS_MODULE": "responder.settings",
            "RECORDINGS_ROOT": str(self.root),
            "CAMERA_TIMEOUT": "3",
            "LOG_LEVEL": "INFO",
        }
        command = [
            sys.executable, "manage.py", "record", "--name", name,
            "--segment-seconds", str(SEGMENT_SECONDS), "--lease-seconds", str(LEASE_SECONDS),
            "--scan-seconds", "1", "--backoff-max-seconds", str(BACKOFF_MAX_SECONDS),
        ]  # fmt: skip
        log = (self.logs / f"recorder-{name}.log").open("w")
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            stderr=log,
            stdout=log,
            preexec_fn=(lambda: _file_limit(file_limit)) if file_limit else None,
        )
        self.processes[name] = process
        return process

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self.processes.clear()

    def log(self, name: str) -> str:
        return (self.logs / f"recorder-{name}.log").read_text()


@pytest.fixture
def recorders(recordings, tmp_path) -> Iterator[Recorders]:
    running = Recorders(recordings, tmp_path)
    yield running
    running.stop_all()


def _file_limit(size: int) -> None:
    # Ignored, SIGXFSZ would kill the process; the write then fails with EFBIG instead.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def wait_until(check: Callable[[], object], seconds: float, what: str) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.5)
    raise AssertionError(f"not within {seconds} s: {what}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def segment_verify(segment: Segment) -> int:
    """The row's file is whole: hashes to its sha256, decodes, keyframes where the row says.

    Returns the number of pictures decoded."""
    path = Path(settings.RECORDINGS_ROOT) / segment.path
    assert path.suffix == ".ts", segment.path
    data = path.read_bytes()
    assert len(data) == segment.bytes
    assert sha256_of(path) == segment.sha256
    assert segment.keyframes and segment.keyframes[0][0] == 0
    for _, offset in segment.keyframes:
        assert data[offset] == 0x47, f"keyframe offset {offset} is not a TS packet"
    pictures = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == segment.codec
        for packet in container.demux(stream):
            pictures += len(stream.codec_context.decode(packet))
    assert pictures > 0
    return pictures


def keyframe_decodes_alone(segment: Segment, index: int) -> bool:
    """A player that fetches only the bytes from this keyframe on can show a picture."""
    path = Path(settings.RECORDINGS_ROOT) / segment.path
    offset = segment.keyframes[index][1]
    tail = path.parent / f"tail-{segment.pk}-{index}.ts"
    tail.write_bytes(path.read_bytes()[offset:])
    try:
        with av.open(str(tail)) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if stream.codec_context.decode(packet):
                    return True
        return False
    finally:
        tail.unlink()
