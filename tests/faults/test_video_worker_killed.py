"""A video worker process killed with -9 in the middle of a live session (another worker
beside it, as systemd's Restart= or a second machine gives): the viewer's next playlist
fetches start the session again, and the sweep leaves no orphan behind."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import timedelta

import pytest
import time_machine

from cameras.live import ACTIVE, LOCK_SECONDS, live_sweep, sessions_running
from responder.core.redis import redis_client
from responder.demo.simulate import simulator_running
from tests.cameras.conftest import verified_client
from tests.cameras.test_live import playlist_when, simulated, watch
from tests.factories import CameraFactory, GrantFactory, UserFactory
from tests.servers import serve

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _live(settings, tmp_path):
    settings.LIVE_ROOT = tmp_path / "live"
    settings.LIVE_IDLE_SECONDS = 3
    settings.LIVE_LIST_SIZE = 3
    settings.CAMERA_TIMEOUT = 3
    settings.LIVE_START_TIMEOUT = 20
    r = redis_client()
    for key in r.scan_iter("live:*"):
        r.delete(key)
    yield
    for key in r.scan_iter("live:*"):
        r.delete(key)


def video_worker(name: str, settings, tmp_path) -> subprocess.Popen:
    """A video worker process as the Procfile runs it (threads here: one process to kill)."""
    env = {
        name: str(getattr(settings, name))
        for name in ("LIVE_ROOT", "LIVE_IDLE_SECONDS", "LIVE_LIST_SIZE", "CAMERA_TIMEOUT")
    }
    command = ["celery", "-A", "responder", "worker", "-Q", "video", "-n", f"{name}@%h"]
    command += ["--pool", "threads", "-l", "INFO"]
    return serve(command, 0, tmp_path / f"worker-{name}.log", env, wait=False)


def log_says(path, text: str) -> bool:
    return path.exists() and text in path.read_text()


def until(condition, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


def viewer_for(camera):
    user = UserFactory()
    GrantFactory(user=user, capabilities=["live"], building=camera.building)
    return verified_client(user)


def owner(camera) -> str | None:
    owner = redis_client().hget(f"live:{camera.pk}:low:state", "owner")
    return owner.decode() if isinstance(owner, bytes) else owner


def test_a_killed_video_worker_s_session_restarts_on_the_next_fetch_and_leaves_no_orphan(
    settings, tmp_path
):
    logs = {name: tmp_path / f"worker-{name}.log" for name in ("one", "two")}
    with simulator_running() as server:
        workers = {name: video_worker(name, settings, tmp_path) for name in logs}
        try:
            until(lambda: all(log_says(log, " ready.") for log in logs.values()), "the workers")
            camera = CameraFactory(main_stream_url=simulated(server, "426x240"))
            path = watch(viewer_for(camera), camera, "low")
            playlist_when(path, lambda p: len(p.segments) >= 1)
            dead = owner(camera)
            [running] = [name for name, log in logs.items() if log_says(log, "live_session")]

            workers[running].send_signal(signal.SIGKILL)
            workers[running].wait()
            killed_at = time.monotonic()
            # The player goes on fetching; the dead worker's lock lapses, a fetch starts anew.
            restarted = playlist_when(
                path, lambda p: owner(camera) not in (None, dead) and len(p.segments) >= 1
            )
            restart_took = time.monotonic() - killed_at
            new = owner(camera)
            # The viewer leaves: the new session ends by itself and cleans up after itself.
            until(lambda: not redis_client().exists(f"live:{camera.pk}:low:lock"), "the end")
        finally:
            for process in workers.values():
                if process.poll() is None:
                    process.terminate()
                    process.wait(timeout=30)

    left = {path.name for path in settings.LIVE_ROOT.glob("*/*/*")}
    with time_machine.travel(timedelta(seconds=LOCK_SECONDS * 4), tick=True):
        swept = live_sweep()
    assert restarted.segments and new != dead
    assert restart_took < LOCK_SECONDS + settings.LIVE_START_TIMEOUT
    assert left == {dead}  # only the killed worker's files outlived their session
    assert swept == 1
    assert not any(settings.LIVE_ROOT.glob("*/*/*"))
    assert sessions_running() == 0
    assert not redis_client().zcard(ACTIVE)  # no lease of the dead worker left either
