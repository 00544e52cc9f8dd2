"""Cameras that loop a clip encoded once: cheap enough to serve 150 at 1080p, with faults.

For the recorder's tests and bench/record. A clip (H.264 or H.265, testsrc2, encoded by
PyAV once per size/rate) is muxed into MPEG-TS live by one thread per clip, its timestamps
running on across loops like a camera's; every client gets the same bytes from the next
keyframe on, so a client costs one socket write per batch of frames, not an encode.

  /<name>/video.ts?codec=h264|hevc&size=1920x1080&fps=30&kbps=2000&seconds=10

Faults, per camera name, set by the test that runs the server in-process:
`down(name, seconds)` closes its streams and answers 503 meanwhile; `garbage(name)` sends
random bytes in the middle of its stream; `truncate(name)` cuts its stream mid-packet.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qs, urlsplit

import av
from av.video.frame import PictureType

ENCODERS: dict[str, Literal["libx264", "libx265"]] = {"h264": "libx264", "hevc": "libx265"}


def clip_encode(
    *, codec: str, width: int, height: int, fps: int, kbps: int, seconds: int
) -> list[tuple[bytes, int, bool]]:
    """The clip's packets (payload, pts in 1/fps, keyframe), a keyframe every second."""
    encoder = av.CodecContext.create(ENCODERS[codec], "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base, encoder.framerate = Fraction(1, fps), Fraction(fps)
    encoder.bit_rate = kbps * 1000
    options = {"preset": "ultrafast", "g": str(fps), "bf": "0", "sc_threshold": "0"}
    if codec == "hevc":
        # Parameter sets before every keyframe, as cameras send them; quiet x265.
        options["x265-params"] = f"keyint={fps}:min-keyint={fps}:repeat-headers=1:log-level=0"
    else:
        options["x264-params"] = "repeat-headers=1"
    encoder.options = options
    # The encoder stamps every packet from its frame's pts.
    packets: list[tuple[bytes, int, bool]] = []
    source = av.open(f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}", "r", "lavfi")
    with source:
        for index, frame in enumerate(source.decode(video=0)):
            frame.pts, frame.time_base = index, encoder.time_base
            frame.pict_type = PictureType.I if index % fps == 0 else PictureType.NONE
            packets += [(bytes(p), p.pts or 0, p.is_keyframe) for p in encoder.encode(frame)]
    packets += [(bytes(p), p.pts or 0, p.is_keyframe) for p in encoder.encode(None)]
    return packets


class _Sink:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


class Loop:
    """One clip muxed live, forever, for all its clients."""

    def __init__(self, clip: list[tuple[bytes, int, bool]], *, codec: str, fps: int, size) -> None:
        self.clip, self.codec, self.fps, self.size = clip, codec, fps, size
        self.cond = threading.Condition()
        self.chunks: list[tuple[bytes, bool]] = []  # TS bytes of one frame, keyframe
        self.first = 0  # the absolute number of chunks[0]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        sink = _Sink()
        output = av.open(sink, "w", format="mpegts", options={"flush_packets": "1"})
        stream = output.add_stream(self.codec, rate=self.fps)
        assert isinstance(stream, av.VideoStream)  # h264 or hevc, checked by the handler
        stream.width, stream.height = self.size
        stream.time_base = Fraction(1, 90000)
        rate, length = Fraction(1, self.fps), len(self.clip)
        started = time.monotonic()
        for index in range(1 << 62):
            payload, pts, key = self.clip[index % length]
            pts += index // length * length
            time.sleep(max(0.0, started + pts / self.fps - time.monotonic()))
            packet = av.Packet(payload)
            packet.pts = packet.dts = pts
            packet.time_base, packet.stream, packet.is_keyframe = rate, stream, key
            output.mux(packet)
            self._add(sink.take(), key)

    def _add(self, data: bytes, key: bool) -> None:
        with self.cond:
            self.chunks.append((data, key))
            if len(self.chunks) > self.fps * 4:  # a few seconds for slow readers
                drop = len(self.chunks) - self.fps * 2
                self.chunks, self.first = self.chunks[drop:], self.first + drop
            self.cond.notify_all()

    def follow(self) -> Iterator[bytes]:
        """Batches of TS bytes from the next keyframe on, live."""
        with self.cond:
            at = self.first + len(self.chunks)
        started = False
        while True:
            with self.cond:
                while at >= self.first + len(self.chunks):
                    self.cond.wait(5)
                at = max(at, self.first)
                batch = self.chunks[at - self.first :]
                at += len(batch)
            if not started:
                keys = [i for i, (_, key) in enumerate(batch) if key]
                if not keys:
                    continue
                batch, started = batch[keys[0] :], True
            yield b"".join(data for data, _ in batch)


class LoopServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.lock = threading.Lock()
        self.loops: dict[tuple, Loop] = {}
        self.down_until: dict[str, float] = {}
        self.faults: dict[str, str] = {}
        self.served: dict[str, float] = {}  # camera name -> wall clock of its first bytes

    def loop(self, codec: str, width: int, height: int, fps: int, kbps: int, seconds: int):
        key = (codec, width, height, fps, kbps, seconds)
        with self.lock:
            if key not in self.loops:
                clip = clip_encode(
                    codec=codec, width=width, height=height, fps=fps, kbps=kbps, seconds=seconds
                )
                self.loops[key] = Loop(clip, codec=codec, fps=fps, size=(width, height))
            return self.loops[key]

    def down(self, name: str, seconds: float) -> None:
        self.down_until[name] = time.monotonic() + seconds

    def is_down(self, name: str) -> bool:
        return time.monotonic() < self.down_until.get(name, 0)

    def garbage(self, name: str) -> None:
        self.faults[name] = "garbage"

    def truncate(self, name: str) -> None:
        self.faults[name] = "truncate"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server: LoopServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        name = url.path.strip("/").split("/")[0]
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if not url.path.endswith("/video.ts") or query.get("codec", "h264") not in ENCODERS:
            self.send_error(404)
            return
        if self.server.is_down(name):
            self.send_error(503)
            return
        width, height = (int(n) for n in query.get("size", "640x360").split("x"))
        loop = self.server.loop(
            query.get("codec", "h264"),
            width,
            height,
            int(query.get("fps", 25)),
            int(query.get("kbps", 1000)),
            int(query.get("seconds", 10)),
        )
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.end_headers()
        with contextlib.suppress(OSError):
            self._stream(name, loop)

    def _stream(self, name: str, loop: Loop) -> None:
        for data in loop.follow():
            if self.server.is_down(name):
                return
            self.server.served.setdefault(name, time.time())
            fault = self.server.faults.pop(name, None)
            if fault == "garbage":
                self.wfile.write(os.urandom(64 * 1024))
            elif fault == "truncate":
                self.wfile.write(data[: len(data) // 2 + 50])
                return
            self.wfile.write(data)


@contextlib.contextmanager
def loop_server_running() -> Iterator[LoopServer]:
    server = LoopServer(("127.0.0.1", 0))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
