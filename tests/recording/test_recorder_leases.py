"""Leases under load, with a real Recorder in this process, real Redis and real sources: a
recorder busy for longer than a lease keeps its cameras; one that cannot renew stops
writing before another recorder can take them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.db import connection

from responder.core.redis import redis_client
from responder.recording.leases import Leases
from responder.recording.models import Gap, Segment
from responder.recording.recorder import Recorder
from tests.cameras.conftest import free_port
from tests.factories import CameraFactory

pytest.register_assert_rewrite("tests.recording.recorder_helpers")
from tests.recording.recorder_helpers import loop_url, wait_until  # noqa: E402

pytest_plugins = ["tests.recording.recorder_helpers"]
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LEASE_SECONDS = 4


class Running:
    """A Recorder's main loop on a thread of this process, stopped at the end."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.recorder.run()
        finally:
            connection.close()

    def recording(self, camera_ids: list[int]) -> bool:
        captures = self.recorder.captures
        return all(c in captures and captures[c].writer is not None for c in camera_ids)


@pytest.fixture
def running(recordings: Path) -> Iterator[Callable[[Recorder], Running]]:
    started: list[Running] = []

    def start(recorder: Recorder) -> Running:
        run = Running(recorder)
        run.thread.start()
        started.append(run)
        return run

    yield start
    for run in started:
        run.recorder.stop.set()
    for run in started:
        run.thread.join(30)


def recorder_made(name: str, root: Path) -> Recorder:
    return Recorder(
        name=name, root=root, segment_seconds=2, lease_seconds=LEASE_SECONDS, scan_seconds=0.5,
        timeout=3,
    )  # fmt: skip


def test_a_recorder_whose_main_thread_is_held_up_for_three_leases_keeps_its_cameras(
    running, recordings, loop_cameras
):
    cameras = [CameraFactory(main_stream_url=loop_url(loop_cameras, f"busy{n}")) for n in range(2)]
    ids = [c.pk for c in cameras]
    recorder = recorder_made("busy", recordings)
    scan = recorder.scan

    def slow_scan() -> None:
        scan()
        if recorder.captures:
            # Indexing a burst, recovering a dead recorder's files, starved of the GIL.
            recorder.stop.wait(3 * LEASE_SECONDS)

    recorder.scan = slow_scan  # type: ignore[method-assign]
    run = running(recorder)
    wait_until(lambda: run.recording(ids), 20, "both cameras recorded")
    captures = {c: recorder.captures[c] for c in ids}

    client = redis_client()
    deadline = time.monotonic() + 4 * LEASE_SECONDS
    while time.monotonic() < deadline:
        holders = [client.get(f"recording:lease:{c}") for c in ids]
        assert holders == ["busy", "busy"], "a lease lapsed while its recorder was busy"
        time.sleep(0.1)

    assert {c: recorder.captures.get(c) for c in ids} == captures  # never stopped, restarted
    assert all(capture.is_alive() for capture in captures.values())
    wait_until(lambda: Segment.objects.filter(camera__in=cameras).count() >= 4, 20, "indexed")
    assert not Gap.objects.filter(camera__in=cameras).exists()


def test_a_recorder_that_cannot_renew_stops_writing_before_another_can_take_the_camera(
    running, recordings, loop_cameras
):
    camera = CameraFactory(main_stream_url=loop_url(loop_cameras, "fenced"))
    recorder = recorder_made("cut-off", recordings)
    run = running(recorder)
    wait_until(lambda: run.recording([camera.pk]), 20, "the camera recorded")
    capture = recorder.captures[camera.pk]

    # Redis unreachable from this recorder only (a port nobody listens on): nothing renews.
    unreachable = redis.Redis(port=free_port(), socket_connect_timeout=0.2)
    recorder.leases = recorder.keeper.leases = Leases(unreachable, "cut-off", ttl=LEASE_SECONDS)
    other = Leases(redis_client(), "other", ttl=LEASE_SECONDS)
    claimed = wait_until(lambda: other.claim(camera.pk), 3 * LEASE_SECONDS, "the lease lapsed")

    assert capture.stopping, "still writing when another recorder could start the camera"
    assert claimed.lapsed_from == "cut-off"
    capture.join(10)
    wait_until(lambda: camera.pk not in recorder.captures, 10, "the recorder dropped it")
    last = Segment.objects.filter(camera=camera).latest("end")
    assert last.recorder == "cut-off" and (recordings / last.path).exists()
    recorder.leases = recorder.keeper.leases = Leases(redis_client(), "cut-off", ttl=1)
