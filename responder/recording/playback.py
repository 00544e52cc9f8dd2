"""Recorded playback: what is recorded when, byte-range playlists over the files, keyframes.

Playback reads the recorder's own files: a `source` playlist lists byte ranges of the
MPEG-TS segments, one media segment per keyframe interval (Segment.keyframes holds each
keyframe's offset with the PAT/PMT the muxer wrote before it, so a player can join at any
of them); transcoded profiles read the same bytes through the live transcode machinery.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db.models import Q

from accesslog.models import Event
from cameras import media
from cameras.live import LiveUnavailable, live_touch, playlist_read
from cameras.models import Camera
from cameras.tokens import Claims, TokenError
from responder.core.capabilities import Capability
from responder.core.redis import redis_client
from responder.recording.models import Gap, Segment

WINDOW_MAX = dt.timedelta(days=7)  # GET /recordings: a week of a camera at most
EVENTS_MAX = 1000
# Segments closer than this are one range: the recorder cuts at keyframes, so the next file
# starts within a frame of the previous one's end.
CONTIGUOUS = dt.timedelta(seconds=1)
PLAYLIST_SECONDS = 600  # a playlist covers 10 min from its start; the PWA asks again at its end
FRAME_CACHE_SECONDS = 24 * 3600  # a keyframe's picture never changes
FRAME_WIDTH = 320
SOURCE = media.SOURCE
RECHECK_SECONDS = 2


class NothingRecorded(Exception):
    def __init__(self, next_start: dt.datetime | None) -> None:
        super().__init__("Nothing is recorded at this time for this camera.")
        self.next_start = next_start


@dataclass(frozen=True)
class Part:
    """One media segment of a playlist: a keyframe interval of one file."""

    segment: Segment
    at: dt.datetime  # wall clock of its first frame
    offset: int
    length: int
    seconds: float


# ---- what is recorded ------------------------------------------------------------------


def recordings_window(*, camera: Camera, user: User, start: dt.datetime, end: dt.datetime) -> dict:
    """Merged recorded ranges, gaps and the door events the user may see, within the window."""
    return {
        "ranges": ranges_merge(camera=camera, start=start, end=end),
        "gaps": [
            {"start": max(gap.start, start), "end": gap.end, "reason": gap.reason}
            for gap in Gap.objects.filter(camera=camera, start__lt=end)
            .filter(Q(end__isnull=True) | Q(end__gt=start))
            .order_by("start")
        ],
        "events": list(
            Event.objects.visible_to(user)
            .filter(door__door_cameras__camera=camera, occurred_at__gte=start)
            .filter(occurred_at__lt=end)
            .order_by("occurred_at")
            .distinct()
            .values("id", "type", "occurred_at")[:EVENTS_MAX]
        ),
    }


def ranges_merge(*, camera: Camera, start: dt.datetime, end: dt.datetime) -> list[dict]:
    ranges: list[dict] = []
    spans = (
        Segment.objects.filter(camera=camera, end__gt=start, start__lt=end)
        .order_by("start")
        .values_list("start", "end")
    )
    for begins, ends in spans.iterator():
        if ranges and begins - ranges[-1]["end"] <= CONTIGUOUS:
            ranges[-1]["end"] = max(ranges[-1]["end"], ends)
        else:
            ranges.append({"start": begins, "end": ends})
    for span in ranges:  # clipped to the window asked
        span["start"], span["end"] = max(span["start"], start), min(span["end"], end)
    return ranges


def segment_at(*, camera_id: int, at: dt.datetime) -> Segment:
    """The segment recorded at `at`, or NothingRecorded naming the next recorded start."""
    found = (
        Segment.objects.filter(camera_id=camera_id, start__lte=at, end__gt=at)
        .order_by("-start")
        .first()
    )
    if found is None:
        later = Segment.objects.filter(camera_id=camera_id, start__gt=at).order_by("start")
        raise NothingRecorded(later.values_list("start", flat=True).first())
    return found


def keyframe_index(segment: Segment, at: dt.datetime) -> int:
    """The last keyframe at or before `at` (the first if `at` is before them all)."""
    seconds = (at - segment.start).total_seconds()
    index = 0
    for number, (offset_seconds, _) in enumerate(segment.keyframes):
        if offset_seconds <= seconds + 1e-3:
            index = number
    return index


def keyframe_time(segment: Segment, index: int) -> dt.datetime:
    return segment.start + dt.timedelta(seconds=segment.keyframes[index][0])


def playback_start(*, camera_id: int, at: dt.datetime) -> dt.datetime:
    """Where playback asked at `at` really starts: the keyframe at or before it."""
    segment = segment_at(camera_id=camera_id, at=at)
    if not segment.keyframes:
        raise NothingRecorded(None)
    return keyframe_time(segment, keyframe_index(segment, at))


# ---- the source playlist ---------------------------------------------------------------


def parts_from(*, camera_id: int, at: dt.datetime, seconds: float = PLAYLIST_SECONDS):
    """The keyframe intervals from the keyframe at or before `at`, for `seconds` of footage."""
    until = at + dt.timedelta(seconds=seconds)
    segments = Segment.objects.filter(camera_id=camera_id, end__gt=at, start__lt=until).order_by(
        "start"
    )
    for segment in segments.iterator():
        for part in segment_parts(segment):
            if part.at + dt.timedelta(seconds=part.seconds) <= at + dt.timedelta(milliseconds=1):
                continue
            if part.at >= until:
                return
            yield part


def segment_parts(segment: Segment) -> Iterator[Part]:
    keyframes = segment.keyframes
    duration = (segment.end - segment.start).total_seconds()
    for number, (seconds, offset) in enumerate(keyframes):
        following = keyframes[number + 1] if number + 1 < len(keyframes) else None
        ends, stop = following if following else (duration, segment.bytes)
        yield Part(
            segment=segment,
            at=segment.start + dt.timedelta(seconds=seconds),
            offset=int(offset),
            length=int(stop) - int(offset),
            seconds=max(0.001, float(ends) - float(seconds)),
        )


def source_playlist(*, parts: list[Part], url: Callable[[Segment], str]) -> str:
    """A VOD byte-range playlist: every part with its wall clock (EXT-X-PROGRAM-DATE-TIME)."""
    target = math.ceil(max((part.seconds for part in parts), default=1))
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:4",  # EXT-X-BYTERANGE
        f"#EXT-X-TARGETDURATION:{target}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    previous: Part | None = None
    for part in parts:
        if previous is not None and _discontinuous(previous, part):
            lines.append("#EXT-X-DISCONTINUITY")
        lines += [
            f"#EXT-X-PROGRAM-DATE-TIME:{iso(part.at)}",
            f"#EXTINF:{part.seconds:.3f},",
            f"#EXT-X-BYTERANGE:{part.length}@{part.offset}",
            url(part.segment),
        ]
        previous = part
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _discontinuous(previous: Part, part: Part) -> bool:
    """A new file after a gap, from another recorder, or of another kind of picture: the
    timestamps start afresh (each connection of a recorder re-anchors), players must know."""
    if previous.segment.pk == part.segment.pk:
        return False
    one, two = previous.segment, part.segment
    return abs((two.start - one.end).total_seconds()) > 0.25 or (
        one.recorder,
        one.codec,
        one.width,
        one.height,
    ) != (two.recorder, two.codec, two.width, two.height)


def iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---- sessions: one name per (profile, start keyframe) ---------------------------------


def session_name(profile: str, at: dt.datetime) -> str:
    """`low@1764740000000`: what tokens, Redis keys and URLs call one playback."""
    return f"{profile}@{round(at.timestamp() * 1000)}"


def session_parse(name: str) -> tuple[str, dt.datetime] | None:
    profile, _, millis = name.partition("@")
    if profile not in media.PROFILE_NAMES or not millis.isdigit() or len(millis) > 15:
        return None
    return profile, dt.datetime.fromtimestamp(int(millis) / 1000, tz=dt.UTC)


def viewer_check(claims: Claims, *, token: str | None = None) -> None:
    """The database's part of a recorded-video token: the user still active, the camera still
    theirs for `recorded`. With a segment token, asked at most once per RECHECK_SECONDS.

    A switched-off camera's recordings stay viewable: switching off stops the camera."""
    r = redis_client()
    key = f"recorded:checked:{hashlib.sha256(token.encode()).hexdigest()[:32]}" if token else None
    if key and r.exists(key):
        return
    user = get_user_model().objects.filter(pk=claims.user_id, is_active=True).first()
    if user is None:
        raise TokenError(403, "This video link was revoked.")
    visible = Camera.objects.visible_to(user, Capability.RECORDED).filter(pk=claims.camera_id)
    if not visible.exists():
        raise TokenError(403, "You may no longer watch this camera's recordings.")
    if key:
        r.set(key, "1", ex=RECHECK_SECONDS)


# ---- transcoded profiles: the live machinery over the files ---------------------------


def transcode_source(*, camera_id: int, at: dt.datetime) -> str:
    """An FFmpeg URL reading the contiguous files from the keyframe at `at` onwards."""
    parts = [part for part in parts_from(camera_id=camera_id, at=at) if part.at >= at]
    files: list[str] = []
    previous: Part | None = None
    for part in parts:
        if previous is not None and _discontinuous(previous, part):
            break  # one clock per transcode: the PWA asks again past a gap
        path = str(settings.RECORDINGS_ROOT / part.segment.path)
        if not files:
            files.append(f"subfile,,start,{part.offset},end,0,,:{path}")
        elif previous is not None and previous.segment.pk != part.segment.pk:
            files.append(path)
        previous = part
    if not files:
        raise NothingRecorded(None)
    return "concat:" + "|".join(files)


def transcode_write(
    directory: Path, keep_going: Callable[[], bool], *, camera_id: int, name: str
) -> None:
    """Transcode the recording from the session's start into `directory`, at most
    LEAD_SEGMENTS ahead of the furthest segment a viewer fetched: the first segments come at
    once, 2x/4x keep up as far as the CPU does, and none is burnt on footage nobody reaches."""
    parsed = session_parse(name)
    if parsed is None or parsed[0] == SOURCE:
        raise media.SourceError("Not a transcoded playback.")
    profile, at = parsed
    url = transcode_source(camera_id=camera_id, at=at)
    media.hls_write(
        url,
        directory,
        profile=media.PROFILES[profile],
        keep_going=_paced(directory, keep_going, _fetched_key(camera_id, name)),
        timeout=settings.CAMERA_TIMEOUT,
        segment_seconds=settings.LIVE_SEGMENT_SECONDS,
        list_size=0,
        pace=False,
        live=False,
    )


LEAD_SEGMENTS = 10


def _fetched_key(camera_id: int, name: str) -> str:
    return f"recorded:fetched:{camera_id}:{name}"


def segment_fetched(*, camera_id: int, name: str, number: int) -> None:
    """A viewer fetched segment `number` of a transcoded playback: the worker may go on."""
    key = _fetched_key(camera_id, name)
    r = redis_client()
    if number > int(r.get(key) or -1):  # a race between two viewers only delays a little
        r.set(key, number, ex=settings.LIVE_IDLE_SECONDS * 2)


def _paced(directory: Path, keep_going: Callable[[], bool], key: str) -> Callable[[], bool]:
    read_at, fetched = 0.0, -1

    def go_on() -> bool:
        nonlocal read_at, fetched
        while True:
            if time.monotonic() - read_at >= 0.2:  # Redis 5 times a second, not per packet
                read_at, fetched = time.monotonic(), int(redis_client().get(key) or -1)
            if len(list(directory.glob("seg*.ts"))) - fetched <= LEAD_SEGMENTS:
                return keep_going()
            if not keep_going():
                return False
            time.sleep(0.2)

    return go_on


def playback_launch(camera_id: int, name: str) -> Callable[[], None]:
    """What starts a transcoded playback on a video worker, for cameras.live's lease."""

    def launch() -> None:
        from responder.recording.tasks import recorded_session  # the task imports this module

        recorded_session.apply_async((camera_id, name), queue="video")

    return launch


def transcoded_join(*, camera: Camera, name: str) -> None:
    """Start or join the transcode on a video worker and wait for its first segment.

    Unlike live's join, a finished playlist will do: a short stretch near the end of the
    footage is transcoded whole (and its playlist ended) before anyone looks."""
    if not camera.enabled:
        raise LiveUnavailable("This camera is switched off: its recordings play in Original.", 60)
    launch = playback_launch(camera.pk, name)
    deadline = time.monotonic() + settings.LIVE_START_TIMEOUT
    while time.monotonic() < deadline:
        # The viewer is waiting, not gone: keep the lease while the worker starts.
        live_touch(camera_id=camera.pk, profile=name, launch=launch)
        text = playlist_read(camera_id=camera.pk, profile=name)
        if text and "#EXTINF" in text:
            return
        time.sleep(0.1)
    raise LiveUnavailable("No video worker started the playback in time. Try again.", 5)


def transcoded_playlist(text: str, *, starts: dt.datetime) -> str:
    """FFmpeg's playlist with the recording's wall clock on each segment, and a start at its
    beginning (players join a growing playlist at its end otherwise)."""
    lines, clock = [], starts
    for line in text.splitlines():
        if line.startswith("#EXTINF:"):
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{iso(clock)}")
            clock += dt.timedelta(seconds=float(line[8:].split(",")[0]))
        lines.append(line)
        if line.startswith("#EXT-X-TARGETDURATION"):
            lines += ["#EXT-X-START:TIME-OFFSET=0,PRECISE=YES", "#EXT-X-PLAYLIST-TYPE:EVENT"]
    return "\n".join(lines) + "\n"


# ---- keyframe pictures ----------------------------------------------------------------


def frame_jpeg(*, segment: Segment, index: int) -> bytes:
    """The keyframe's picture, decoded from its byte offset, cached by segment and keyframe."""
    key = f"recording:frame:{segment.pk}:{index}:{FRAME_WIDTH}"
    image = cache.get(key)
    if image is None:
        image = _keyframe_decode(segment, index)
        cache.set(key, image, FRAME_CACHE_SECONDS)
    return image


def _keyframe_decode(segment: Segment, index: int) -> bytes:
    part = list(segment_parts(segment))[index]
    with (settings.RECORDINGS_ROOT / segment.path).open("rb") as file:
        file.seek(part.offset)
        data = file.read(part.length)
    with av.open(io.BytesIO(data), "r", format="mpegts") as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        for frame in container.decode(stream):
            picture = frame.to_image()
            picture.thumbnail((FRAME_WIDTH, FRAME_WIDTH))
            buffer = io.BytesIO()
            picture.save(buffer, "JPEG", quality=70)
            return buffer.getvalue()
    raise media.SourceError("The recording has no picture at this keyframe.")
