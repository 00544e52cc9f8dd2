"""Recordings for playback tests, made without the recorder: real H.264 with a readable clock.

Each frame carries its wall-clock time twice: as text for people (PIL) and as a row of
black and white blocks, one bit each, that clock_read() reads back from a decoded frame.
The stream is cut at keyframes into MPEG-TS files named as the recorder names them, and
indexed as Segment rows with real keyframe byte offsets (PAT/PMT included) and SHA-256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from fractions import Fraction
from pathlib import Path

import av
from django.conf import settings
from PIL import Image, ImageDraw, ImageStat

from responder.recording.models import Segment

BITS = 40  # tenths of a second since the epoch: 2^40 / 10 s is ~3500 years
BLOCK = 16
ROW_Y = 200
TABLE_PIDS = {0x0000, 0x0011, 0x1000}  # PAT, SDT, FFmpeg's PMT
TS_PACKET = 188


def clock_frame(at: dt.datetime, *, width: int, height: int) -> av.VideoFrame:
    image = Image.new("RGB", (width, height), (40, 40, 90))
    draw = ImageDraw.Draw(image)
    draw.text((10, 10), at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-5], fill=(255, 255, 255))
    tenths = round(at.timestamp() * 10)
    for bit in range(BITS):
        on = tenths >> (BITS - 1 - bit) & 1
        x, y = (bit % 20) * BLOCK, ROW_Y + (bit // 20) * BLOCK
        draw.rectangle(
            (x, y, x + BLOCK - 1, y + BLOCK - 1), fill=(255, 255, 255) if on else (0, 0, 0)
        )
    return av.VideoFrame.from_image(image)


def clock_read(frame: av.VideoFrame) -> dt.datetime:
    """The wall-clock time burned into a decoded frame (any size: scaled back to 320 wide)."""
    gray = frame.to_image().convert("L").resize((320, 240))
    tenths = 0
    for bit in range(BITS):
        x, y = (bit % 20) * BLOCK + BLOCK // 2, ROW_Y + (bit // 20) * BLOCK + BLOCK // 2
        mean = ImageStat.Stat(gray.crop((x - 3, y - 3, x + 3, y + 3))).mean[0]
        tenths = tenths << 1 | int(mean > 128)
    return dt.datetime.fromtimestamp(tenths / 10, tz=dt.UTC)


def _packets(start: dt.datetime, *, seconds: float, fps: int, gop: int, codec: str):
    """Encoded packets of a clock from `start`, a keyframe every `gop` frames."""
    encoder = av.CodecContext.create("libx264" if codec == "h264" else "libx265", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 320, 240, "yuv420p"
    encoder.time_base = Fraction(1, fps)
    encoder.framerate = fps
    options = {"preset": "ultrafast", "g": str(gop), "sc_threshold": "0", "bf": "0"}
    if codec == "hevc":
        options = {
            "preset": "ultrafast",
            "x265-params": f"keyint={gop}:min-keyint={gop}:log-level=error",
        }
    encoder.options = options
    for index in range(round(seconds * fps)):
        frame = clock_frame(start + dt.timedelta(seconds=index / fps), width=320, height=240)
        frame = frame.reformat(format="yuv420p")
        frame.pts, frame.time_base = index, Fraction(1, fps)
        yield from encoder.encode(frame)
    yield from encoder.encode(None)
    return encoder


def recording_make(
    camera,
    start: dt.datetime,
    *,
    seconds: float = 30,
    segment_seconds: float = 10,
    fps: int = 10,
    gop: int = 10,
    codec: str = "h264",
    recorder: str = "test",
    kind: str = "continuous",
) -> list[Segment]:
    """Record `seconds` of clock video from `start` into files of ~segment_seconds each."""
    groups: list[list[av.Packet]] = []
    for packet in _packets(start, seconds=seconds, fps=fps, gop=gop, codec=codec):
        cut = not groups or (packet.is_keyframe and len(groups[-1]) >= segment_seconds * fps)
        if cut:
            groups.append([])
        groups[-1].append(packet)
    return [
        _segment_write(camera, start, group, fps=fps, codec=codec, recorder=recorder, kind=kind)
        for group in groups
    ]


def _segment_write(
    camera, origin, group, *, fps, codec, recorder, kind, width=320, height=240
) -> Segment:
    first, last = group[0].pts, group[-1].pts  # before muxing rescales them in place
    begins = origin + dt.timedelta(seconds=first / fps)
    relative = Path(str(camera.pk), f"{begins:%Y-%m-%d}", f"{begins:%H%M%S}-{recorder}.ts")
    path = settings.RECORDINGS_ROOT / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mpegts") as output:
        stream = output.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        for packet in group:
            packet.stream = stream
            output.mux(packet)
    data = path.read_bytes()
    ends = origin + dt.timedelta(seconds=(last + 1) / fps)
    return Segment.objects.create(
        camera=camera,
        path=relative.as_posix(),
        start=begins,
        end=ends,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        codec=codec,
        width=width,
        height=height,
        keyframes=keyframes_scan(path, start_pts=first, fps=fps),
        kind=kind,
        recorder=recorder,
    )


def keyframes_scan(path: Path, *, start_pts: int, fps: int) -> list[list[float]]:
    """[[seconds from the file's start, offset of the PAT/PMT run before it], ...]."""
    data = path.read_bytes()
    found = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        first = None
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            first = packet.pts if first is None else first
            if packet.is_keyframe:
                seconds = float((packet.pts - first) * stream.time_base)
                found.append([round(seconds, 3), _tables_before(data, packet.pos)])
    return found


def _tables_before(data: bytes, offset: int) -> int:
    while offset >= TS_PACKET and data[offset - TS_PACKET] == 0x47:
        head = data[offset - TS_PACKET : offset - TS_PACKET + 3]
        if ((head[1] & 0x1F) << 8 | head[2]) not in TABLE_PIDS:
            break
        offset -= TS_PACKET
    return offset


# ---- viewers ---------------------------------------------------------------------------


def recordings_isolated(settings, tmp_path) -> None:
    """Recordings in the test's own directory, served by Django, no playback left in Redis."""
    from responder.core.redis import redis_client

    settings.RECORDINGS_ROOT = tmp_path / "recordings"
    settings.RECORDINGS_ACCEL_REDIRECT = ""
    r = redis_client()
    for key in r.scan_iter("recorded:*"):
        r.delete(key)


def verified_client(user):
    """A client signed in past the second factor, as POST /auth/login leaves the session."""
    import time

    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY

    from responder.core.middleware import SIGNED_IN_AT
    from tests.factories import TOTPDeviceFactory

    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDeviceFactory(user=user).persistent_id
    session[SIGNED_IN_AT] = time.time()
    session.save()
    client.user = user
    return client


def viewer(camera, capabilities=("recorded",)):
    """A verified client whose user holds `capabilities` on the camera's building."""
    from tests.factories import GrantFactory, UserFactory

    user = UserFactory()
    GrantFactory(user=user, capabilities=list(capabilities), building=camera.building)
    return verified_client(user)


def playlist_parts(text: str, base: str = "") -> list[dict]:
    """Each media segment of a playlist: its wall clock, duration, byte range and URL."""
    from urllib.parse import urljoin

    parts, current = [], {}
    for line in text.splitlines():
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            current["at"] = dt.datetime.fromisoformat(line.split(":", 1)[1].replace("Z", "+00:00"))
        elif line.startswith("#EXTINF:"):
            current["seconds"] = float(line[8:].split(",")[0])
        elif line.startswith("#EXT-X-BYTERANGE:"):
            length, offset = line.split(":", 1)[1].split("@")
            current["range"] = (int(offset), int(length))
        elif line and not line.startswith("#"):
            parts.append(current | {"url": urljoin(base, line)})
            current = {}
    return parts


def first_frame(data: bytes) -> av.VideoFrame:
    import io

    with av.open(io.BytesIO(data), format="mpegts") as container:
        for frame in container.decode(video=0):
            return frame
    raise AssertionError("no frame decodes")
