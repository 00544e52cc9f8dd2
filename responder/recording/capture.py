"""One camera's recording thread: source -> segments, reconnecting with backoff.

No database here (150 threads would be 150 connections): the thread reports what happens
as events on a queue, and the recorder's main thread indexes them in order.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import PictureType

from cameras import media
from responder.recording import writer as segments
from responder.recording.leases import Claim

log = logging.getLogger("responder.recording")

REMUX_CODECS = {"h264", "hevc"}  # recorded as sent; anything else is transcoded to H.264
MAX_JUMP_SECONDS = 5  # a larger step of the camera's clock is a break (reboot, 33-bit wrap)
TRANSCODE_GOP_MS = 2000
BACKOFF_MAX = 30.0


@dataclass
class Up:
    camera_id: int
    at: datetime  # of the first recorded picture
    info: media.StreamInfo


@dataclass
class Down:
    camera_id: int
    at: datetime  # the end of the last recorded picture, or now
    reason: str  # a GapReason value
    message: str  # plain words for viewers and IT, no URL
    failures: int


@dataclass
class Closed:
    camera_id: int
    segment: segments.ClosedSegment


class Capture(threading.Thread):
    def __init__(
        self,
        *,
        camera_id: int,
        url: str,
        root: Path,
        recorder: str,
        segment_seconds: float,
        timeout: float,
        events: queue.Queue,
        lease: Claim,
        fence: float,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        super().__init__(name=f"camera-{camera_id}", daemon=True)
        self.camera_id, self.url, self.root, self.recorder = camera_id, url, root, recorder
        self.segment_seconds, self.timeout, self.events = segment_seconds, timeout, events
        # Checked before every packet written: a camera whose lease could lapse (the keeper
        # found it lost, or could not renew it in time) stops here, before another recorder
        # may start it, whatever the main thread is doing.
        self.lease, self.fence = lease, fence
        self.backoff_max = backoff_max
        self.stopping = False  # a plain attribute: read once per packet, cheaper than an Event
        self.last_end: datetime | None = None
        self.writer: segments.SegmentWriter | None = None

    def stop(self) -> None:
        self.stopping = True

    def _stopped(self) -> bool:
        if not self.stopping and time.monotonic() >= self.lease.until - self.fence:
            self.stopping = True
        return self.stopping

    def run(self) -> None:
        failures, backoff = 0, 1.0
        while not self.stopping:
            started = time.monotonic()
            reason, message = "source_error", "The camera closed the stream."
            try:
                self._connect()
            except media.SourceError as error:
                reason = "source_down" if "did not answer" in error.reason else "source_error"
                message = error.reason
            except segments.DiskError as error:
                reason, message = "disk_full", f"The recordings disk cannot be written: {error}"
                backoff = max(backoff, 10.0)
            except Exception:  # a bug must not end the camera's recording for good
                log.exception("camera %s: recording failed", self.camera_id)
            finally:
                self._finish()
            if self.stopping:
                break
            if time.monotonic() - started > 2 * self.backoff_max:
                failures, backoff = 0, 1.0  # it recorded a while: a fresh fault
            failures += 1
            at = self.last_end or segments._utc(time.time())
            self.events.put(Down(self.camera_id, at, reason, message, failures))
            self._sleep(backoff)
            backoff = min(backoff * 2, self.backoff_max)

    def _sleep(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < until:
            time.sleep(0.2)

    def _connect(self) -> None:
        with media.source_open(self.url, timeout=self.timeout) as source:
            if not source.streams.video:
                raise media.SourceError("The camera sent no video stream.")
            stream = source.streams.video[0]
            if stream.codec_context.name in REMUX_CODECS:
                self._remux(source, stream)
            else:
                self._transcode(source, stream)
        if not self.stopping:
            raise media.SourceError("The camera closed the stream.")

    def _remux(self, source, stream) -> None:
        time_base = stream.time_base
        jump, cut = int(MAX_JUMP_SECONDS / time_base), int(self.segment_seconds / time_base)
        info = media.stream_info(stream)
        anchor_wall, anchor_pts, last_dts = 0.0, 0, None
        for packet in media.packets(source, stream, pace=False, live=True):
            if self._stopped():
                return
            dts = packet.dts
            assert dts is not None  # media.packets skips packets without one
            pts = packet.pts if packet.pts is not None else dts
            if last_dts is None or not last_dts < dts <= last_dts + jump:
                # A new connection or a break in the camera's clock: map it to ours anew.
                self._finish()
                anchor_wall, anchor_pts = time.time(), pts
            last_dts = dts
            key = packet.is_keyframe
            writer = self.writer
            if writer is None or (key and pts - writer.first_pts >= cut):
                if not key:
                    continue  # a segment starts at a keyframe
                start = anchor_wall + float((pts - anchor_pts) * time_base)
                writer = self._open(stream, info, time_base, pts, start)
            self._write(writer, packet, pts, key)

    def _transcode(self, source, stream) -> None:
        """MJPEG/MxPEG: no segment container holds them as sent; H.264 at the camera's size.

        A picture's time is its arrival: MJPEG over HTTP has no timestamps, and MxPEG's are
        the camera's clock, which NTP may step (docs/RECORDING.md, "Mobotix").
        """
        decoder = stream.codec_context
        decoder.thread_type, decoder.thread_count = "SLICE", 1
        time_base = Fraction(1, 1000)
        cut = int(self.segment_seconds * 1000)
        encoder, first_wall, last_pts, last_key = None, None, -1, None
        for packet in media.packets(source, stream, pace=False, live=True):
            if self._stopped():
                return
            try:
                frames = decoder.decode(packet)
            except av.FFmpegError:
                frames = []  # one broken picture: skip it
            for frame in frames:
                now = time.time()
                first_wall = first_wall or now
                pts = int((now - first_wall) * 1000)
                if pts <= last_pts:
                    continue
                last_pts = pts
                if encoder is None:
                    encoder = h264_encoder(frame.width, frame.height, time_base)
                    info = media.StreamInfo("h264", frame.width, frame.height, 0.0, 0)
                key = last_key is None or pts - last_key >= TRANSCODE_GOP_MS
                last_key = pts if key else last_key
                picture = frame.reformat(encoder.width, encoder.height, format="yuv420p")
                picture.pts, picture.time_base = pts, time_base
                picture.pict_type = PictureType.I if key else PictureType.NONE
                for out in encoder.encode(picture):
                    # The encoder stamps every packet from its picture's pts.
                    out_pts, out_key = out.pts or 0, out.is_keyframe
                    writer = self.writer
                    if writer is None or (out_key and out_pts - writer.first_pts >= cut):
                        if not out_key:
                            continue
                        start = first_wall + out_pts / 1000
                        writer = self._open(None, info, time_base, out_pts, start)
                    self._write(writer, out, out_pts, out_key)

    def _open(self, template, info, time_base, pts, start) -> segments.SegmentWriter:
        first_of_connection = self.writer is None
        self._finish()
        try:
            self.writer = segments.segment_open(
                root=self.root,
                camera_id=self.camera_id,
                recorder=self.recorder,
                template=template,
                codec=info.codec,
                width=info.width or None,
                height=info.height or None,
                time_base=time_base,
                first_pts=pts,
                start_wall=start,
            )
        except OSError as error:
            if segments.is_disk_error(error):
                raise segments.DiskError(error.strerror) from error
            raise
        if first_of_connection:
            self.events.put(Up(self.camera_id, segments._utc(start), info))
        return self.writer

    def _write(self, writer: segments.SegmentWriter, packet, pts: int, key: bool) -> None:
        try:
            writer.write(packet, pts, key)
        except (av.FFmpegError, OSError) as error:
            if writer.file.error is not None and segments.is_disk_error(writer.file.error):
                raise segments.DiskError(writer.file.error.strerror) from error
            # The muxer refused the packet (a corrupt one): close the segment, go on.
            log.warning("camera %s: packet refused (%s); segment closed", self.camera_id, error)
            self._finish()

    def _finish(self) -> None:
        writer, self.writer = self.writer, None
        if writer is None:
            return
        try:
            closed = writer.close()
        except Exception:
            log.exception("camera %s: closing %s failed", self.camera_id, writer.file.path.name)
            try:
                closed = segments.partial_salvage(
                    writer.file.path, writer.start_wall, writer.codec
                )
            except OSError:
                log.exception("camera %s: %s left to recover", self.camera_id, writer.file.path)
                return
        if closed is not None:
            self.last_end = closed.end
            self.events.put(Closed(self.camera_id, closed))


def h264_encoder(width: int, height: int, time_base: Fraction) -> av.VideoCodecContext:
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width // 2 * 2, height // 2 * 2, "yuv420p"
    encoder.time_base = time_base
    encoder.options = {
        "preset": "veryfast",
        "tune": "zerolatency",  # no frames held back: a crash loses no more than remuxing
        "crf": "26",
        "bf": "0",
        "sc_threshold": "0",
        "g": "600",  # keyframes are forced every TRANSCODE_GOP_MS instead
        "forced-idr": "1",
        # Parameter sets before every keyframe: any byte range from a keyframe decodes alone.
        "x264-params": "repeat-headers=1",
        "threads": "1",
    }
    return encoder
