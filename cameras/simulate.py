"""Simulated cameras over HTTP: H.264 in MPEG-TS and MJPEG, paced like a real camera.

Each distinct (size, fps, bitrate, GOP) is encoded once from lavfi's testsrc2 (moving
content, a running clock burned in) into a loop kept in memory; every client gets that
loop remuxed with continuous timestamps and paced to real time. 150 cameras cost a remux
each, not an encode each.

  /<anything>/video.ts?size=1920x1080&fps=30&kbps=4500&gop=30   H.264 in MPEG-TS
  /<anything>/mjpeg?size=640x360&fps=5                          multipart JPEG
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import av
from av.video.frame import PictureType

BOUNDARY = "responderframe"


@dataclass(frozen=True)
class Loop:
    packets: list[tuple[bytes, int, bool]]  # payload, pts in 1/fps, keyframe
    fps: int
    extradata: bytes | None
    width: int
    height: int


def _frames(width: int, height: int, fps: int, seconds: int):
    source = av.open(
        f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}", format="lavfi"
    )
    with source:
        yield from source.decode(video=0)


def h264_loop(*, width: int, height: int, fps: int, kbps: int, gop: int, seconds: int) -> Loop:
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base, encoder.framerate = Fraction(1, fps), Fraction(fps)
    encoder.bit_rate = kbps * 1000
    encoder.options = {
        "preset": "veryfast",
        "g": str(gop),
        "keyint_min": str(gop),
        "sc_threshold": "0",
        # No B-frames, like most surveillance cameras: decode order is display order.
        "bf": "0",
        "maxrate": str(kbps * 1000),
        "bufsize": str(kbps * 1000),
        # Parameter sets in-band before every keyframe, as cameras send them.
        "x264-params": "repeat-headers=1",
    }
    packets = []
    for index, frame in enumerate(_frames(width, height, fps, seconds)):
        frame.pts, frame.time_base, frame.pict_type = index, encoder.time_base, PictureType.NONE
        packets += [(bytes(p), p.pts, p.is_keyframe) for p in encoder.encode(frame)]
    packets += [(bytes(p), p.pts, p.is_keyframe) for p in encoder.encode(None)]
    return Loop(packets, fps, encoder.extradata, width, height)


def mjpeg_loop(*, width: int, height: int, fps: int, seconds: int) -> list[bytes]:
    images = []
    for frame in _frames(width, height, fps, seconds):
        buffer = io.BytesIO()
        frame.to_image().save(buffer, "JPEG", quality=70)
        images.append(buffer.getvalue())
    return images


class _Loops:
    def __init__(self, seconds: int) -> None:
        self.seconds, self.lock, self.cache = seconds, threading.Lock(), {}

    def get(self, key: tuple, make):
        with self.lock:  # one encode per distinct stream, however many clients ask at once
            if key not in self.cache:
                self.cache[key] = make()
            return self.cache[key]


def _send_ts(wfile, loop: Loop) -> None:
    # The loop's pts restart at 0; the per-client muxer keeps them rising across laps.
    output = av.open(wfile, "w", format="mpegts")
    stream = output.add_stream("h264", rate=loop.fps)
    stream.width, stream.height = loop.width, loop.height
    stream.time_base = Fraction(1, 90000)
    if loop.extradata:
        stream.codec_context.extradata = loop.extradata
    started, offset = time.monotonic(), 0
    length = len(loop.packets)
    try:
        while True:
            for payload, pts, key in loop.packets:
                at = (offset + pts) / loop.fps
                time.sleep(max(0.0, started + at - time.monotonic()))
                packet = av.Packet(payload)
                packet.pts = packet.dts = offset + pts
                packet.time_base, packet.stream, packet.is_keyframe = (
                    Fraction(1, loop.fps),
                    stream,
                    key,
                )
                output.mux(packet)
            offset += length
    finally:
        with contextlib.suppress(Exception):  # the client has gone; nothing to flush to
            output.close()


def _send_mjpeg(wfile, images: list[bytes], fps: int) -> None:
    started, index = time.monotonic(), 0
    while True:
        image = images[index % len(images)]
        time.sleep(max(0.0, started + index / fps - time.monotonic()))
        head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(image)}\r\n\r\n"
        wfile.write(head.encode() + image + b"\r\n")
        index += 1


def _int(query: dict, name: str, default: int) -> int:
    return int(query.get(name, [default])[0])


def handler_for(loops: _Loops) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            width, _, height = query.get("size", ["1920x1080"])[0].partition("x")
            width, height = int(width), int(height)
            try:
                if url.path.endswith("/video.ts"):
                    fps, kbps = _int(query, "fps", 30), _int(query, "kbps", 4500)
                    gop = _int(query, "gop", fps)
                    loop = loops.get(
                        ("ts", width, height, fps, kbps, gop),
                        lambda: h264_loop(
                            width=width,
                            height=height,
                            fps=fps,
                            kbps=kbps,
                            gop=gop,
                            seconds=loops.seconds,
                        ),
                    )
                    self._head("video/mp2t")
                    _send_ts(self.wfile, loop)
                elif url.path.endswith("/mjpeg"):
                    fps = _int(query, "fps", 5)
                    images = loops.get(
                        ("mjpeg", width, height, fps),
                        lambda: mjpeg_loop(
                            width=width, height=height, fps=fps, seconds=loops.seconds
                        ),
                    )
                    self._head(f"multipart/x-mixed-replace;boundary={BOUNDARY}")
                    _send_mjpeg(self.wfile, images, fps)
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


def simulator_server(host: str, port: int, *, seconds: int = 10) -> ThreadingHTTPServer:
    """A server ready for serve_forever(); port 0 picks a free one (server.server_port)."""
    server = ThreadingHTTPServer((host, port), handler_for(_Loops(seconds)))
    server.daemon_threads = True
    return server
