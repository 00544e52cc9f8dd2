"""Real segment files for the retention tests: MPEG-TS written by PyAV, indexed as the
recorder indexes them (path under RECORDINGS_ROOT, SHA-256 of the bytes written)."""

from __future__ import annotations

import hashlib
import io
import random
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import av
from django.conf import settings

from cameras.models import Camera
from responder.recording.models import Segment, SegmentKind


@cache
def ts_bytes(*, frames: int = 10, noise: bool = False) -> bytes:
    """An H.264 MPEG-TS stream; noise makes each frame large (to fill a small disk)."""
    out = io.BytesIO()
    with av.open(out, "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height = (320, 240) if noise else (64, 48)
        stream.pix_fmt = "yuv420p"
        stream.options = {"qp": "0"} if noise else {}
        rng = random.Random(15)
        size = stream.width * stream.height * 3
        for i in range(frames):
            frame = av.VideoFrame(stream.width, stream.height, "rgb24")
            frame.planes[0].update(rng.randbytes(size) if noise else bytes([i * 20]) * size)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def segment_write(
    camera: Camera,
    start: datetime,
    *,
    seconds: int = 60,
    kind: SegmentKind = SegmentKind.CONTINUOUS,
    noise: bool = False,
) -> Segment:
    data = ts_bytes(noise=noise)
    relative = f"{camera.pk}/{start:%Y-%m-%d}/{start:%H%M%S}-test-{kind}.ts"
    path = Path(settings.RECORDINGS_ROOT) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return Segment.objects.create(
        camera=camera,
        path=relative,
        start=start,
        end=start + timedelta(seconds=seconds),
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        codec="h264",
        width=320 if noise else 64,
        height=240 if noise else 48,
        keyframes=[[0, 0]],
        kind=kind,
        recorder="test",
    )


def decodes(path: Path) -> int:
    """Frames a real decoder gets from the file."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def on_disk(segment: Segment) -> Path:
    return Path(settings.RECORDINGS_ROOT) / segment.path
