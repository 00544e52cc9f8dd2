"""Segment files: MPEG-TS written by PyAV, hashed as written, recovered after a crash.

No Django here: the recorder indexes what these functions return. A file is named
`<camera>/<YYYY-MM-DD>/<HHMMSS>-<recorder>.ts.partial` (UTC) while written and loses the
`.partial` when indexed; beside it, `<name>.ts.json` holds what the file itself
cannot tell a recovering recorder (its wall-clock start).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av

TS_PACKET = 188
PARTIAL = ".partial"
FLUSH_SECONDS = 1.0  # a killed recorder loses at most this of each camera
FLUSH_BYTES = 256 * 1024
MAX_WRITE = 32 * 1024  # PyAV's I/O buffer (av.open's buffer_size): the most it writes at once
SYNC_SECONDS = 2.0  # a crash (of the machine, not just the process) loses at most this
# PAT, SDT and FFmpeg's PMT: the muxer writes them right before a keyframe's PES, and a
# byte range that starts at a keyframe must carry them for a player joining there.
TABLE_PIDS = {0x0000, 0x0011, 0x1000}
# Errors of the disk, not of the stream: close what can be closed, retry later.
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS}


class DiskError(Exception):
    """Writing a segment failed for want of disk (full, quota, I/O error)."""


def is_disk_error(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in DISK_ERRNOS


@dataclass
class ClosedSegment:
    """A complete file on disk, still `.partial`, ready to be renamed and indexed."""

    partial: Path
    start: dt.datetime
    end: dt.datetime
    bytes: int
    sha256: str
    codec: str
    width: int | None
    height: int | None
    keyframes: list[list[float]]

    @property
    def final(self) -> Path:
        return self.partial.with_name(self.partial.name.removesuffix(PARTIAL))


class HashingFile:
    """The muxer's output: every byte goes to SHA-256 once and to the file within a second.

    The muxer flushes after each packet (flush_packets), so `size` before a packet is muxed
    is its exact byte offset. The bytes are gathered in one buffer per file and written
    and hashed in one go per FLUSH_BYTES or FLUSH_SECONDS (a write per packet cost ~10 µs
    more a packet: BENCHMARKS.md), and fsynced every SYNC_SECONDS: a killed process loses
    at most FLUSH_SECONDS, a crashed machine SYNC_SECONDS. Hashing per flush, not per
    packet: hashlib lets go of the GIL for anything over 2 KiB, and at 150 cameras each
    such hand-over is a context switch (see RECORDING.md, "Where the CPU goes"); the digest
    still covers exactly the bytes written, in their order. The buffer is allocated once
    and reused: a new one per flush cost an mmap, page faults and a munmap each time.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        self.digest = hashlib.sha256()
        self.size = 0
        self.buffer = bytearray(FLUSH_BYTES + MAX_WRITE)
        self.pending = 0  # bytes of `buffer` not yet written
        self.flushed_at = self.synced_at = time.monotonic()
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        size = len(data)
        if self.pending + size > len(self.buffer):
            self.flush()
            if size > len(self.buffer):
                self.buffer = bytearray(size)  # never from PyAV (MAX_WRITE): a caller's own
        self.buffer[self.pending : self.pending + size] = data
        self.pending += size
        self.size += size
        if self.pending >= FLUSH_BYTES or time.monotonic() - self.flushed_at >= FLUSH_SECONDS:
            self.flush()
        return size

    def flush(self) -> None:
        view = memoryview(self.buffer)[: self.pending]
        try:
            self.digest.update(view)
            while view:
                view = view[os.write(self.fd, view) :]
            now = self.flushed_at = time.monotonic()
            if now - self.synced_at >= SYNC_SECONDS:
                os.fsync(self.fd)
                self.synced_at = now
        except OSError as error:
            self.error = error  # PyAV turns it into its own error; the recorder asks here
            raise
        finally:
            self.pending = 0

    def close(self) -> None:
        if self.fd < 0:
            return
        try:
            if self.pending:
                self.flush()
            os.fsync(self.fd)
        finally:
            os.close(self.fd)
            self.fd = -1


@dataclass
class SegmentWriter:
    """One open segment: a fresh MPEG-TS muxer over a HashingFile."""

    file: HashingFile
    output: av.container.OutputContainer
    stream: av.VideoStream
    time_base: Fraction
    first_pts: int
    start_wall: float
    codec: str
    width: int | None
    height: int | None
    last_pts: int = 0
    frame_ticks: int = 0
    keyframes: list[list[float]] = field(default_factory=list)

    def write(self, packet: av.Packet, pts: int, key: bool) -> None:
        if key:
            seconds = float((pts - self.first_pts) * self.time_base)
            self.keyframes.append([round(seconds, 3), self.file.size])
        if pts > self.last_pts:
            self.frame_ticks = pts - self.last_pts
            self.last_pts = pts
        packet.stream = self.stream
        self.output.mux(packet)

    def seconds(self, pts: int) -> float:
        return float((pts - self.first_pts) * self.time_base)

    def close(self) -> ClosedSegment | None:
        """Finish the file: a ClosedSegment, or None when nothing whole was written."""
        try:
            self.output.close()
            self.file.close()
        except (av.FFmpegError, OSError):
            with contextlib.suppress(OSError):
                self.file.close()
            if self.file.error and is_disk_error(self.file.error):
                return partial_salvage(self.file.path, self.start_wall, self.codec)
            raise
        if not self.keyframes:
            self.file.path.unlink(missing_ok=True)
            sidecar(self.file.path).unlink(missing_ok=True)
            return None
        duration = self.seconds(self.last_pts + self.frame_ticks)
        return ClosedSegment(
            partial=self.file.path,
            start=_utc(self.start_wall),
            end=_utc(self.start_wall + duration),
            bytes=self.file.size,
            sha256=self.file.digest.hexdigest(),
            codec=self.codec,
            width=self.width,
            height=self.height,
            keyframes=self.keyframes,
        )


def segment_path(root: Path, camera_id: int, start_wall: float, recorder: str) -> Path:
    at = _utc(start_wall)
    return root / str(camera_id) / f"{at:%Y-%m-%d}" / f"{at:%H%M%S}-{recorder}.ts{PARTIAL}"


def sidecar(path: Path) -> Path:
    """`<name>.ts.json`, for the `.partial` and the renamed file alike: it goes last, after
    the row is in, so a crash at any step leaves it to show what to recover."""
    return path.with_name(path.name.removesuffix(PARTIAL) + ".json")


def segment_open(
    *,
    root: Path,
    camera_id: int,
    recorder: str,
    template: av.VideoStream | None,
    codec: str,
    width: int | None,
    height: int | None,
    time_base: Fraction,
    first_pts: int,
    start_wall: float,
) -> SegmentWriter:
    """A new segment file; template None: an H.264 stream fed by the recorder's encoder."""
    path = segment_path(root, camera_id, start_wall, recorder)
    stem, number = path.name.split("-", 1)[0], 1
    while path.exists() or path.with_name(path.name.removesuffix(PARTIAL)).exists():
        number += 1  # two cuts within a second (a reconnect): HHMMSS_2-<recorder>.ts
        path = path.with_name(f"{stem}_{number}-{recorder}.ts{PARTIAL}")
    path.parent.mkdir(parents=True, exist_ok=True)
    sidecar(path).write_text(json.dumps({"start": start_wall, "codec": codec}))
    file = HashingFile(path)
    output = av.open(file, "w", format="mpegts", options={"flush_packets": "1"})
    if template is not None:
        stream = output.add_stream_from_template(template)
    else:
        stream = output.add_stream("h264")
        assert width is not None and height is not None  # the recorder's encoder has a size
        stream.width, stream.height = width, height
        stream.time_base = time_base
    return SegmentWriter(
        file=file,
        output=output,
        stream=stream,
        time_base=time_base,
        first_pts=first_pts,
        start_wall=start_wall,
        codec=codec,
        width=width,
        height=height,
        last_pts=first_pts,
    )


def partial_salvage(path: Path, start_wall: float | None, codec: str = "") -> ClosedSegment | None:
    """What a killed writer left: cut to the last whole TS packet, scanned, hashed.

    None (and the file removed) when nothing in it decodes as a keyframe.
    """
    meta = sidecar(path)
    if start_wall is None:
        try:
            info = json.loads(meta.read_text())
            start_wall, codec = float(info["start"]), info.get("codec", "")
        except (OSError, ValueError, KeyError):
            start_wall = path.stat().st_mtime - 60  # no sidecar: a guess, said in the log
    size = path.stat().st_size // TS_PACKET * TS_PACKET
    with path.open("r+b") as file:
        file.truncate(size)
    scanned = _scan(path)
    if scanned is None:
        path.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)
        return None
    keyframes, seconds, found_codec, width, height = scanned
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return ClosedSegment(
        partial=path,
        start=_utc(start_wall),
        end=_utc(start_wall + seconds),
        bytes=size,
        sha256=digest.hexdigest(),
        codec=found_codec or codec,
        width=width,
        height=height,
        keyframes=keyframes,
    )


def _scan(path: Path) -> tuple[list[list[float]], float, str, int, int] | None:
    keyframes: list[list[float]] = []
    first = last = step = None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            time_base = stream.time_base
            if time_base is None:  # never when demuxed (the stubs allow None for encoders)
                return None
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                first = packet.pts if first is None else first
                if packet.is_keyframe and packet.pos is not None and packet.pos >= 0:
                    at = float((packet.pts - first) * time_base)
                    keyframes.append([round(at, 3), _tables_before(path, packet.pos)])
                if last is not None and packet.pts > last:
                    step = packet.pts - last
                last = packet.pts if last is None else max(last, packet.pts)
            context = stream.codec_context
            codec, width, height = context.name, context.width, context.height
    except (av.FFmpegError, OSError):
        return None
    if not keyframes or first is None or last is None:
        return None
    seconds = float((last - first + (step or 0)) * time_base)
    return keyframes, seconds, codec, width, height


def _tables_before(path: Path, offset: int) -> int:
    """The offset of the PAT/PMT run the muxer wrote right before a keyframe at `offset`."""
    with path.open("rb") as file:
        while offset >= TS_PACKET:
            file.seek(offset - TS_PACKET)
            head = file.read(3)
            if len(head) < 3 or head[0] != 0x47:
                break
            if ((head[1] & 0x1F) << 8 | head[2]) not in TABLE_PIDS:
                break
            offset -= TS_PACKET
    return offset


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
