"""Simulated cameras over HTTP: H.264 in MPEG-TS, MJPEG and Mobotix's, live like a real camera.

Each distinct stream (size, fps, bitrate, GOP) has one encoder, running while anyone
watches: lavfi's testsrc2 (moving content) with the wall clock burned in (HH:MM:SS.t, so a
viewer sees the glass-to-glass delay), encoded live and shared by every client. A new
client starts at a keyframe forced for it, as an Axis camera answers a new viewer with an
IDR, then follows live: 150 cameras showing one stream cost one encode, not 150.

  /<anything>/video.ts?size=1920x1080&fps=30&kbps=4500&gop=30   H.264 in MPEG-TS
  /<anything>/mjpeg?size=640x360&fps=5                          multipart JPEG
  /<anything>/faststream.jpg?stream=mxg&size=640x360&fps=5      a Mobotix camera (below)

The Mobotix camera, as its public documentation describes /control/faststream.jpg:
- `stream=full`: multipart (server push) JPEG. `stream=MxPEG`, the firmware's default: the
  same server push, each part an MxPEG frame, with audio unless `noaudio`. `stream=mxg`:
  an "MxPEG clip", the frames back to back, "not server push". (faststream.jpg's help page,
  https://developer.mobotix.com/docs/params.html and a copy of a newer firmware's at
  https://wiki.bergau.de/FRMRVM_KAMERAS.) The docs name no content type for the clip.
- An MxPEG frame is a JPEG; the first of a stream a complete one, later ones may carry only
  the changed 16×16 tiles, listed in a COM "MXM" bitmask
  (https://developer.mobotix.com/docs/how.html). Each frame has a COM "MXF" header whose
  bytes 8-15 are its time in µs since 1970, little-endian (.../docs/mxf.html); audio comes
  in APP13 blocks: u32 duration and u64 first sample's time in µs, then G.711 A-law at
  8 kHz (.../docs/audio.html). FFmpeg's mxg demuxer reads exactly these: a picture from each
  SOI to EOI timed by its MXF, an audio packet from each APP13; its mxpeg decoder takes a
  frame without MXM as a whole picture (https://github.com/FFmpeg/FFmpeg/blob/master/
  libavformat/mxg.c and .../libavcodec/mxpegdec.c). VLC opens these cameras so, naming the
  demuxer: https://wiki.videolan.org/MxPEG/.
- FFmpeg has no MxPEG encoder, so frames are made from FFmpeg's baseline JPEGs (one thread:
  no restart markers, which the mxpeg decoder ignores). A client's first frame and one a
  second are whole; the others carry only the rows of tiles that hold the clock: those rows
  encoded as a JPEG of their own, its SOF dropped, an MXM bitmask naming them (MxpegTiles).
  As a camera's encoder would, were only the clock changing. The audio is silence, a block
  a picture.
"""

from __future__ import annotations

import contextlib
import struct
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import av
from av.video.frame import PictureType

BOUNDARY = "responderframe"
ALAW_SILENCE = 0xD5  # G.711 A-law's zero, its even bits inverted

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


def mxpeg_encoder(*, width: int, height: int, fps: int) -> av.VideoCodecContext:
    encoder = mjpeg_encoder(width=width, height=height, fps=fps)
    # One thread: with slice threads FFmpeg's JPEGs carry restart markers (DRI), which
    # FFmpeg's mxpeg decoder does not read: past the first row of tiles it shows garbage.
    encoder.thread_count = 1
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


def mxf_header(at: float, number: int) -> bytes:
    """The COM segment "MXF" of an MxPEG frame: 64 bytes, the time at 8 (µs, little-endian)."""
    header = b"MXF\0" + struct.pack("<IQII", 0, int(at * 1_000_000), number, number)
    header = header.ljust(64, b"\0")
    return b"\xff\xfe" + struct.pack(">H", len(header) + 2) + header


def mxpeg_audio(at: float, seconds: float) -> bytes:
    """An APP13 block of A-law silence: duration and first sample's time in µs, then samples."""
    samples = bytes([ALAW_SILENCE]) * int(8000 * seconds)
    block = struct.pack("<IQ", int(seconds * 1_000_000), int(at * 1_000_000)) + samples
    return b"\xff\xed" + struct.pack(">H", len(block) + 2) + block


class MxpegTiles:
    """MxPEG's partial frames, made from whole JPEGs: the top rows of 16×16 tiles (where the
    clock is), listed in a COM "MXM" bitmask, with no SOF (the decoder keeps the last one's)."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        x, y, box_w, box_h = clock_box(width, height)
        self.rows = -(-(y + box_h) // 16)
        columns, rows = -(-width // 16), -(-height // 16)
        lit = self.rows * columns
        bits = "1" * lit + "0" * (-(-columns * rows // 8) * 8 - lit)
        # Its layout as FFmpeg reads it (mxpegdec.c): sizes in tiles at 4 and 6, the bits from
        # 12 on, first tile first, most significant bit first.
        mxm = b"MXM\0" + struct.pack("<HH", columns, rows) + bytes(4)
        mxm += int(bits, 2).to_bytes(len(bits) // 8, "big")
        self.mxm = b"\xff\xfe" + struct.pack(">H", len(mxm) + 2) + mxm
        self.decoder = av.CodecContext.create("mjpeg", "r")
        self.encoder = mxpeg_encoder(width=width, height=self.rows * 16, fps=1)
        self.count = 0

    def of(self, image: bytes) -> bytes:
        """The tiles of the JPEG `image`, as the frame after SOI."""
        (picture,) = self.decoder.decode(av.Packet(image))
        strip = av.VideoFrame(self.width, self.rows * 16, picture.format.name)
        for source, target, lines in zip(
            picture.planes,
            strip.planes,
            (self.rows * 16, self.rows * 8, self.rows * 8),
            strict=True,
        ):
            size = min(source.line_size, target.line_size)
            into, out = memoryview(target), memoryview(source)
            for line in range(lines):
                into[line * target.line_size :][:size] = out[line * source.line_size :][:size]
        strip.pts, self.count = self.count, self.count + 1
        (packet,) = self.encoder.encode(strip)
        return self.mxm + _without_sof(bytes(packet))


def _without_sof(jpeg: bytes) -> bytes:
    """The JPEG's segments after SOI but its SOF0, then its scan and EOI."""
    kept, at = [], 2
    while jpeg[at + 1] != 0xDA:  # SOS: the scan follows to the end
        end = at + 2 + int.from_bytes(jpeg[at + 2 : at + 4], "big")
        if jpeg[at + 1] != 0xC0:
            kept.append(jpeg[at:end])
        at = end
    return b"".join(kept) + jpeg[at:]


def _send_mobotix(
    wfile, feed: Feed, *, push: bool, audio: bool, fps: int, width: int, height: int
) -> None:
    """MxPEG as server push or a bare clip: a whole JPEG each second, as a client's first
    frame, and between them only the tiles of the clock's rows (the rest "unchanged")."""
    tiles = MxpegTiles(width, height)
    for number, (image, _, _) in enumerate(feed.follow()):
        at = time.time()  # the picture was encoded live a moment ago
        body = image[2:] if number % fps == 0 else tiles.of(image)
        frame = (mxpeg_audio(at, 1 / fps) if audio else b"") + image[:2]
        frame += mxf_header(at, number) + body  # just after the SOI marker
        if push:
            head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n\r\n"
            frame = head.encode() + frame + b"\r\n"
        wfile.write(frame)


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
                elif url.path.endswith("/faststream.jpg"):
                    self._mobotix(query, width, height, "noaudio" in url.query.split("&"))
                else:
                    self.send_error(404)
            except (BrokenPipeError, ConnectionResetError, OSError):
                return  # the viewer hung up

        def _mobotix(self, query: dict, width: int, height: int, noaudio: bool) -> None:
            fps = _int(query, "fps", 5)
            feed = feeds.get(
                ("mxpeg", width, height, fps),
                lambda: mxpeg_encoder(width=width, height=height, fps=fps),
            )
            stream = query.get("stream", ["MxPEG"])[0].lower()
            if stream == "full":
                self._head(f"multipart/x-mixed-replace;boundary={BOUNDARY}")
                _send_mjpeg(self.wfile, feed)
            elif stream in ("mxpeg", "mxg"):
                push = stream == "mxpeg"
                kind = f"multipart/x-mixed-replace;boundary={BOUNDARY}"
                self._head(kind if push else "application/octet-stream")
                _send_mobotix(
                    self.wfile,
                    feed,
                    push=push,
                    audio=not noaudio,
                    fps=fps,
                    width=width,
                    height=height,
                )
            else:
                self.send_error(400, "stream= full, MxPEG or mxg")

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
