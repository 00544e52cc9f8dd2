"""Live sessions: one transcode per (camera, profile), shared by every viewer.

Redis holds, per session: a lease that viewers renew by fetching the playlist, a lock
whose owner token names the worker running it (renewed while it runs), a "queued" mark
so concurrent first viewers enqueue one task, and the state (where its files are, or why
it failed). A worker that dies stops renewing its lock; the next request starts another.
"""

from __future__ import annotations

import math
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import cast

from django.conf import settings

from cameras import media
from cameras.health import camera_health_failed
from cameras.models import Camera, CameraHealth, HealthStatus, StreamKind
from cameras.tasks import live_session
from responder.core.redis import redis_client

ACTIVE = "live:active"  # sorted set of running sessions, scored by lock expiry
LOCK_SECONDS = 10
RECONNECTS = 3  # after 1, 2 and 4 s
FAILURE_SECONDS = 5
WARM_CAMERAS = 2  # an alarm warms its nearest cameras only: the rest stay for viewers
# Renew the lock only if we still own it: a paused worker must not steal it back.
RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""

# A replaced worker must not wipe the state its successor has written.
FORGET = """
if redis.call('hget', KEYS[1], 'owner') == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


# At most N (camera, profile) views per user: a view is held while its playlist is fetched.
HOLD = """
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1])
if redis.call('zscore', KEYS[1], ARGV[2]) or redis.call('zcard', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('zadd', KEYS[1], ARGV[4], ARGV[2])
  redis.call('expire', KEYS[1], ARGV[5])
  return 1
end
return 0
"""
ENABLED_CHECK_SECONDS = 2  # a running session asks whether its camera is still on


class LiveUnavailable(Exception):
    def __init__(self, message: str, retry_after: int = 5, status: int = 503) -> None:
        super().__init__(message)
        self.message, self.retry_after, self.status = message, retry_after, status


def _key(camera_id: int, profile: str, what: str) -> str:
    return f"live:{camera_id}:{profile}:{what}"


def session_dir(*, camera_id: int, profile: str) -> Path | None:
    owner = redis_client().hget(_key(camera_id, profile, "state"), "owner")
    # redis_client decodes: the answers are str.
    return settings.LIVE_ROOT / str(camera_id) / profile / cast(str, owner) if owner else None


def sessions_running() -> int:
    return redis_client().zcount(ACTIVE, time.time(), "+inf")


def live_touch(*, camera_id: int, profile: str, launch: Callable[[], None] | None = None) -> None:
    """A viewer is watching: renew the lease, and start the session if none is running.

    launch: queues another kind of session under the same lease and cap (recorded playback).
    """
    r = redis_client()
    r.set(_key(camera_id, profile, "lease"), "1", ex=settings.LIVE_IDLE_SECONDS)
    failed = r.get(_key(camera_id, profile, "failed"))
    if failed:  # a short pause before trying a failing camera again
        # The plain reason only: FFmpeg's detail names the stream URL (camera health has it).
        raise LiveUnavailable(f"The camera is unreachable. {failed!s}", FAILURE_SECONDS)
    if r.exists(_key(camera_id, profile, "lock")):
        return
    if sessions_running() >= settings.LIVE_MAX_SESSIONS:
        raise LiveUnavailable("Every video worker is busy. Try again in a moment.", 10)
    if r.set(_key(camera_id, profile, "queued"), "1", nx=True, ex=settings.LIVE_START_TIMEOUT):
        r.delete(_key(camera_id, profile, "state"))
        if launch is not None:
            launch()
        else:
            live_session.delay(camera_id, profile)


def _views_key(user_id: int) -> str:
    return f"live:views:{user_id}"


def viewer_hold(*, user_id: int, camera_id: int, profile: str, seconds: int) -> None:
    """Count this (camera, profile) among the user's views for `seconds`, or refuse (429).

    One script: concurrent requests of one user cannot pass the cap together.
    """
    now, limit = time.time(), settings.LIVE_MAX_SESSIONS_PER_USER
    held = redis_client().eval(
        HOLD, 1, _views_key(user_id), now, f"{camera_id}:{profile}", limit, now + seconds,
        seconds,
    )  # fmt: skip
    if not held:
        raise LiveUnavailable(
            f"You are watching {limit} cameras already: close one to open another.",
            settings.LIVE_IDLE_SECONDS,
            status=429,
        )


def viewer_release(*, user_id: int, camera_id: int, profile: str) -> None:
    redis_client().zrem(_views_key(user_id), f"{camera_id}:{profile}")


def viewer_profiles(*, user_id: int, camera_id: int) -> list[str]:
    """The profiles (or recorded playbacks) of the camera counted among the user's views."""
    prefix = f"{camera_id}:"
    members = cast("list[str]", redis_client().zrange(_views_key(user_id), 0, -1))  # decoded
    return [member[len(prefix) :] for member in members if member.startswith(prefix)]


def camera_sessions_stop(*, camera_id: int) -> None:
    """End the camera's sessions now: without lock and lease their workers stop within 1 s."""
    r = redis_client()
    for profile in media.PROFILE_NAMES:
        r.delete(*(_key(camera_id, profile, what) for what in ("lease", "lock", "queued")))


def live_join(*, camera: Camera, profile: str) -> None:
    """Start or join the session, and wait for its first segment."""
    if not camera.enabled:
        raise LiveUnavailable("This camera is switched off.", 60)
    live_touch(camera_id=camera.pk, profile=profile)
    deadline = time.monotonic() + settings.LIVE_START_TIMEOUT
    while time.monotonic() < deadline:
        text = playlist_read(camera_id=camera.pk, profile=profile)
        # A failing session's muxer writes an ended, empty playlist as it closes: not ready.
        if text and "#EXTINF" in text and "#EXT-X-ENDLIST" not in text:
            return
        # The viewer is waiting, not gone: keep the lease while the camera connects.
        live_touch(camera_id=camera.pk, profile=profile)
        time.sleep(0.1)
    raise LiveUnavailable("No video worker started the stream in time. Try again.", 5)


def playlist_read(*, camera_id: int, profile: str) -> str | None:
    directory = session_dir(camera_id=camera_id, profile=profile)
    try:
        return (directory / media.PLAYLIST).read_text() if directory else None
    except FileNotFoundError:
        return None


def stream_plan(camera: Camera, profile: str) -> tuple[str, StreamKind, media.Profile | None]:
    """Which stream to read, and the profile to transcode it to (None: remux, cheapest).

    A sub stream whose last probe shows H.264 within the profile is remuxed as it is; other
    small profiles transcode from the sub stream, high from the main one, source remuxes main.
    """
    target = media.PROFILES.get(profile)
    if target is None or not camera.sub_stream_url or profile == "high":
        return camera.main_stream_url, StreamKind.MAIN, target
    sub = CameraHealth.objects.filter(
        camera=camera, stream=StreamKind.SUB, status=HealthStatus.ONLINE
    ).first()
    fits = sub is not None and media.fits_profile(
        media.StreamInfo(
            sub.codec, sub.width or 0, sub.height or 0, sub.fps or 0, sub.bitrate or 0
        ),
        target,
    )
    return camera.sub_stream_url, StreamKind.SUB, None if fits else target


Writer = Callable[[Path, Callable[[], bool]], None]


def live_run(*, camera_id: int, profile: str, write: Writer | None = None) -> str:
    """The worker's side: run the session until its lease lapses. Returns why it ended.

    write: fills the session's directory instead of the camera (a recording played back);
    the files stay while viewers fetch them, then go like a live session's.
    """
    r = redis_client()
    lock, owner = _key(camera_id, profile, "lock"), uuid.uuid4().hex
    if not r.set(lock, owner, nx=True, ex=LOCK_SECONDS):
        return "already running"
    # The lock guards the session from now on: were this worker killed, the next fetch
    # after the lock lapses starts another, without waiting out the queued mark too.
    r.delete(_key(camera_id, profile, "queued"))
    directory = settings.LIVE_ROOT / str(camera_id) / profile / owner
    member = f"{camera_id}:{profile}:{owner}"
    try:
        camera = Camera.objects.filter(pk=camera_id, enabled=True).first()
        if camera is None or not r.exists(_key(camera_id, profile, "lease")):
            return "nobody is watching"
        directory.mkdir(parents=True)
        r.hset(_key(camera_id, profile, "state"), "owner", owner)
        r.zadd(ACTIVE, {member: time.time() + LOCK_SECONDS})
        url, kind, target = stream_plan(camera, profile)
        keep_going = _keeper(camera_id, profile, owner, member)
        if write is not None:
            try:
                write(directory, keep_going)
            except media.SourceError as error:
                r.set(_key(camera_id, profile, "failed"), error.reason, ex=FAILURE_SECONDS)
                return error.full
            _wait(math.inf, keep_going)
            return "the last viewer left"
        streamed = False
        for attempt in range(RECONNECTS + 1):
            number = media.segment_next(directory)
            try:
                media.hls_write(
                    media.url_with_credentials(url, camera.username, camera.password),
                    directory,
                    profile=target,
                    keep_going=keep_going,
                    timeout=settings.CAMERA_TIMEOUT,
                    segment_seconds=settings.LIVE_SEGMENT_SECONDS,
                    list_size=settings.LIVE_LIST_SIZE,
                    start_number=number,
                )
                return "the last viewer left"
            except media.SourceError as error:
                failure, streamed = error, streamed or error.streamed
            # A camera that never sent a segment fails fast: a viewer is waiting for the 503.
            # One that was streaming gets reconnects with backoff while anyone watches.
            if not streamed or attempt == RECONNECTS:
                break
            if not _wait(2**attempt, keep_going):
                return "the last viewer left during a reconnect"
            media.playlist_reopen(directory)
        # Health first: a viewer told "unreachable" may look at the camera's health at once.
        camera_health_failed(camera=camera, stream=kind, error=failure)
        r.set(_key(camera_id, profile, "failed"), failure.reason, ex=FAILURE_SECONDS)
        return failure.full
    finally:
        r.eval(FORGET, 1, _key(camera_id, profile, "state"), owner)
        r.delete(_key(camera_id, profile, "queued"))
        r.zrem(ACTIVE, member)
        shutil.rmtree(directory, ignore_errors=True)
        r.eval(RELEASE, 1, lock, owner)


def _wait(seconds: float, keep_going) -> bool:
    """Sleep, still renewing the lock; False as soon as the session should end."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        if not keep_going():
            return False
        time.sleep(0.2)
    return keep_going()


def _keeper(camera_id: int, profile: str, owner: str, member: str):
    r = redis_client()
    checked, enabled_checked = 0.0, time.monotonic()

    def keep_going() -> bool:
        nonlocal checked, enabled_checked
        if time.monotonic() - checked < 1:
            return True
        checked = time.monotonic()
        if not r.eval(RENEW, 1, _key(camera_id, profile, "lock"), owner, LOCK_SECONDS * 1000):
            return False  # another worker owns the session now, or the camera was switched off
        r.zadd(ACTIVE, {member: time.time() + LOCK_SECONDS})
        if checked - enabled_checked >= ENABLED_CHECK_SECONDS:
            # Switched off by any path (admin, shell, import): off within seconds all the same.
            enabled_checked = checked
            if not Camera.objects.filter(pk=camera_id, enabled=True).exists():
                return False
        return bool(r.exists(_key(camera_id, profile, "lease")))

    return keep_going


def live_warm(*, camera_ids: list[int], profile: str = "low") -> None:
    """Start sessions before anyone asks (a door alarm's nearest cameras): the tap then plays.

    The lease lasts LIVE_IDLE_SECONDS; if no viewer comes, the session stops by itself.
    """
    for camera_id in camera_ids:
        try:
            live_touch(camera_id=camera_id, profile=profile)
        except LiveUnavailable:
            # Workers full, or this camera failing: viewers get their 503 with Retry-After,
            # and the next camera may still be warmed.
            continue


def live_sweep() -> int:
    """Remove the files and leases of sessions whose worker was killed before it could
    clean up."""
    r, removed = redis_client(), 0
    r.zremrangebyscore(ACTIVE, "-inf", time.time())  # lapsed: their workers stopped renewing
    for directory in settings.LIVE_ROOT.glob("*/*/*"):
        camera_id, profile, owner = directory.relative_to(settings.LIVE_ROOT).parts
        running = r.get(_key(int(camera_id), profile, "lock")) == owner
        if not running and time.time() - directory.stat().st_mtime > LOCK_SECONDS * 3:
            shutil.rmtree(directory, ignore_errors=True)
            removed += 1
    return removed
