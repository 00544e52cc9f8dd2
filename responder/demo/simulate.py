"""Simulated cameras over HTTP: H.264 in MPEG-TS and MJPEG, live like a real camera.

Each distinct stream (size, fps, bitrate, GOP) has one encoder, running while anyone
watches: lavfi's testsrc2 (moving content) with the wall clock burned in (HH:MM:SS.t, so a
viewer sees the glass-to-glass delay), encoded live and shared by every client. A new
client starts at a keyframe forced for it, as an Axis camera answers a new viewer with an
IDR, then follows live: 150 cameras showing one stream cost one encode, not 150.

  /<anything>/video.ts?size=1920x1080&fps=30&kbps=4500&gop=30   H.264 in MPEG-TS
  /<anything>/mjpeg?size=640x360&fps=5                          multipart JPEG
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import av
from av.video.frame import PictureType

BOUNDARY = "responderframe"

# A 3×5 pixel font: no font file to ship or download.
GLYPHS = {
    "0": ("111", "101", "101", "101", "111"),
    "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"),
    "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"),
    "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"),
    "7": ("111", "001", "001", "001", "001"),
    "8": ("111", "101", "111", "101", "111"),
    "9": ("111", "101", "111", "001", "111"),
    ":": ("000", "010", "000", "010", "000"),
    ".": ("000", "000", "000", "000", "010"),
}
ON, OFF, NEUTRAL = 235, 16, 128  # video-range white, black; grey chroma


def clock_text(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at * 10) % 10}"


def clock_box(width: int, height: int) -> tuple[int, int, int, int]:
    """Where the clock goes: x, y, width, height (even numbers, for the chroma planes)."""
    unit = max(2, height // 60) // 2 * 2
    return unit, unit, (len(clock_text(0)) * 4 + 1) * unit, 7 * unit


def clock_draw(frame: av.VideoFrame, text: str) -> None:
    """Burn `text` into the top left corner of a yuv420p frame, in place."""
    x, y, box_w, box_h = clock_box(frame.width, frame.height)
    unit = x
    rows = []
    for row in range(5):
        units = [0] + [int(b) for c in text for b in GLYPHS[c][row] + "0"]
        rows.append(b"".join(bytes([ON if u else OFF]) * unit for u in units))
    blank = bytes([OFF]) * box_w
    luma, (u_plane, v_plane) = frame.planes[0], frame.planes[1:]
    pixels = memoryview(luma)
    for line in range(box_h):
        unit_row = line // unit - 1
        data = rows[unit_row] if 0 <= unit_row < 5 else blank
        start = (y + line) * luma.line_size + x
        pixels[start : start + box_w] = data
    grey = bytes([NEUTRAL]) * (box_w // 2)
    for plane in (u_plane, v_plane):
        chroma = memoryview(plane)
        for line in range(box_h // 2):
            start = (y // 2 + line) * plane.line_size + x // 2
            chroma[start : start + box_w // 2] = grey


def h264_encoder(
    *, width: int, height: int, fps: int, kbps: int, gop: int
) -> av.VideoCodecContext:
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base, encoder.framerate = Fraction(1, fps), Fraction(fps)
    encoder.bit_rate = kbps * 1000
    encoder.options = {
        "preset": "veryfast",
        "tune": "zerolatency",  # a camera sends each frame as it is taken
        "g": str(gop),
        "keyint_min": str(gop),
        "sc_threshold": "0",
        # No B-frames, like most surveillance cameras: decode order is display order.
        "bf": "0",
        "maxrate": str(kbps * 1000),
        "bufsize": str(kbps * 1000),
        # Parameter sets in-band before every keyframe, as cameras send them.
        "x264-params": "repeat-headers=1",
        "forced-idr": "1",  # a keyframe forced for a new client is an IDR: it can start there
    }
    return encoder


def mjpeg_encoder(*, width: int, height: int, fps: int) -> av.VideoCodecContext:
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
    encoder.time_base = Fraction(1, fps)
    encoder.bit_rate = width * height * fps // 4  # about quality 70 of a JPEG library
    return encoder


class Feed:
    """One live encoder shared by its clients; it stops `linger` seconds after the last."""

    def __init__(self, make: Callable[[], av.VideoCodecContext], *, linger: float) -> None:
        self.make, self.linger = make, linger
        self.cond = threading.Condition()
        self.packets: list[tuple[bytes, int, bool]] = []  # payload, pts in 1/fps, keyframe
        self.first = 0  # the absolute number of packets[0]
        self.key = -1  # the absolute number of the newest keyframe
        self.clients, self.running, self.left_at = 0, False, 0.0
        self.idr_wanted = False

    def _start(self) -> None:
        # Under self.cond. Also from a waiting client: the encoder may have just lingered out.
        if not self.running:
            self.running = True
            threading.Thread(target=self._run, daemon=True).start()

    def follow(self) -> Iterator[tuple[bytes, int, bool]]:
        """The packets from a keyframe made for this client on, live, while it reads."""
        with self.cond:
            self.clients += 1
            self.idr_wanted = True
            join = self.first + len(self.packets)  # the number of the next packet
            self._start()
        try:
            at = None
            while True:
                with self.cond:
                    while self.key < join or (
                        at is not None and at >= self.first + len(self.packets)
                    ):
                        self._start()
                        if not self.cond.wait(10):
                            return  # the encoder died: the camera "hangs up"
                    if at is None or at < self.first:  # new, or fell behind: the newest IDR
                        at = self.key
                    batch = self.packets[at - self.first :]
                    at += len(batch)
                yield from batch
        finally:
            with self.cond:
                self.clients -= 1
                self.left_at = time.monotonic()

    def _run(self) -> None:
        encoder = self.make()
        fps = int(1 / encoder.time_base)
        source = av.open(
            f"testsrc2=size={encoder.width}x{encoder.height}:rate={fps}", format="lavfi"
        )
        started = time.monotonic()
        try:
            for index, frame in enumerate(source.decode(video=0)):
                with self.cond:
                    if not self.clients and time.monotonic() - self.left_at > self.linger:
                        return
                    idr, self.idr_wanted = self.idr_wanted, False
                time.sleep(max(0.0, started + index / fps - time.monotonic()))
                clock_draw(frame, clock_text(time.time()))
                frame.pts, frame.time_base = index, encoder.time_base
                frame.pict_type = PictureType.I if idr else PictureType.NONE
                for packet in encoder.encode(frame):
                    # The encoder stamps every packet from its frame's pts.
                    self._add(bytes(packet), packet.pts or 0, packet.is_keyframe)
        finally:
            source.close()
            with self.cond:
                self.first += len(self.packets)
                self.running, self.packets, self.key = False, [], -1
                self.cond.notify_all()

    def _add(self, payload: bytes, pts: int, key: bool) -> None:
        with self.cond:
            if key:
                # Keep the previous GOP too: a client reading it is not cut short.
                drop = max(0, self.key - self.first)
                self.packets, self.first = self.packets[drop:], self.first + drop
                self.key = self.first + len(self.packets)
            self.packets.append((payload, pts, key))
            self.cond.notify_all()


class _Feeds:
    def __init__(self, linger: float) -> None:
        self.linger, self.lock = linger, threading.Lock()
        self.feeds: dict[tuple, Feed] = {}

    def get(self, key: tuple, make: Callable[[], av.VideoCodecContext]) -> Feed:
        with self.lock:
            if key not in self.feeds:
                self.feeds[key] = Feed(make, linger=self.linger)
            return self.feeds[key]


def _send_ts(wfile, feed: Feed, *, width: int, height: int, fps: int) -> None:
    output = av.open(wfile, "w", format="mpegts")
    stream = output.add_stream("h264", rate=fps)
    stream.width, stream.height = width, height
    stream.time_base = Fraction(1, 90000)
    try:
        for payload, pts, key in feed.follow():
            packet = av.Packet(payload)
            packet.pts = packet.dts = pts
            packet.time_base, packet.stream, packet.is_keyframe = Fraction(1, fps), stream, key
            output.mux(packet)
    finally:
        with contextlib.suppress(Exception):  # the client has gone; nothing to flush to
            output.close()


def _send_mjpeg(wfile, feed: Feed) -> None:
    for image, _, _ in feed.follow():
        head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(image)}\r\n\r\n"
        wfile.write(head.encode() + image + b"\r\n")


def _int(query: dict, name: str, default: int) -> int:
    return int(query.get(name, [default])[0])


def handler_for(feeds: _Feeds) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            size_w, _, size_h = query.get("size", ["1920x1080"])[0].partition("x")
            width, height = int(size_w), int(size_h)
            try:
                if url.path.endswith("/video.ts"):
                    fps, kbps = _int(query, "fps", 30), _int(query, "kbps", 4500)
                    gop = _int(query, "gop", fps)
                    feed = feeds.get(
                        ("ts", width, height, fps, kbps, gop),
                        lambda: h264_encoder(
                            width=width, height=height, fps=fps, kbps=kbps, gop=gop
                        ),
                    )
                    self._head("video/mp2t")
                    _send_ts(self.wfile, feed, width=width, height=height, fps=fps)
                elif url.path.endswith("/mjpeg"):
                    fps = _int(query, "fps", 5)
                    feed = feeds.get(
                        ("mjpeg", width, height, fps),
                        lambda: mjpeg_encoder(width=width, height=height, fps=fps),
                    )
                    self._head(f"multipart/x-mixed-replace;boundary={BOUNDARY}")
                    _send_mjpeg(self.wfile, feed)
                else:
                    self.send_error(404)
            except (BrokenPipeError, ConnectionResetError, OSError):
                return  # the viewer hung up

        def _head(self, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()

    return Handler


def simulator_server(host: str, port: int, *, seconds: float = 10) -> ThreadingHTTPServer:
    """A server ready for serve_forever(); port 0 picks a free one (server.server_port).

    A stream's encoder runs on `seconds` after its last client, ready for the next one.
    """
    server = ThreadingHTTPServer((host, port), handler_for(_Feeds(seconds)))
    server.daemon_threads = True
    return server


@contextlib.contextmanager
def simulator_running(*, seconds: float = 2) -> Iterator[str]:
    """A simulator on a free loopback port, served from a thread: its base URL."""
    server = simulator_server("127.0.0.1", 0, seconds=seconds)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
