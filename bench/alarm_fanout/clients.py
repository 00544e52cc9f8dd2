"""One load process: COUNT WebSocket clients that record when each event frame arrives.

Prints "ready" once every client is connected (and, with --resume, live), then reads
"wait LAST_SEQ" (answered "done") and "stop LAST_SEQ" from stdin; after "stop" it prints
{"received": [[seq, unix time], ...] per client, "dead": n} as JSON.

The clients share the server's 2 cores, so what they spend is taken from the server
being measured (a phone decodes its frames on its own CPU). So each client is a bare
asyncio Protocol on uvloop, not the `websockets` client (a coroutine wake-up per
message, ~50 µs a frame here: shared/notes and docs/BENCHMARKS.md), and reads of a text
frame only its leading "type" and "seq" (what the server and the reference both write
first), decoding the whole JSON only for a frame that doesn't start that way: decoding
every copy cost 3 of the client's 3.6 µs a frame. It still does a client's whole
protocol job: the RFC 6455 handshake (Sec-WebSocket-Accept checked), every frame's
header parsed, pings answered with masked pongs. The receipt time is taken once per read
from the socket, before any parsing, so parsing counts as latency only for frames behind
it in the same read, as in a real client.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import re
import struct
import sys
import time
from urllib.parse import urlparse

import uvloop

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HEAD = re.compile(rb'\{"type": ?"(\w+)", ?"seq": ?(\d+)[,}]')


class Client(asyncio.Protocol):
    def __init__(self, request: bytes, accept: bytes, resume: bool) -> None:
        self.request, self.accept, self.resume = request, accept, resume
        self.log: list[tuple[int, float]] = []
        self.ready = asyncio.Event()
        self.closed = asyncio.get_running_loop().create_future()
        self.buffer = b""
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buffer = self.buffer + data if self.buffer else data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            head = buffer[:end].decode("latin-1").split("\r\n")
            headers = {
                k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in head[1:])
            }
            if (
                " 101 " not in head[0] + " "
                or headers.get("sec-websocket-accept") != self.accept.decode()
            ):
                raise SystemExit(f"Handshake refused: {head[0]}")
            self.upgraded = True
            buffer = buffer[end + 4 :]
            if self.resume:
                self.send(0x1, json.dumps({"type": "resume", "after": 0}).encode())
            else:
                self.ready.set()
        self.buffer = self.frames(buffer, now)

    def frames(self, buffer: bytes, now: float) -> bytes:
        position, size = 0, len(buffer)
        while size - position >= 2:
            first, second = buffer[position], buffer[position + 1]
            length, start = second & 0x7F, position + 2
            if length == 126:
                if size - start < 2:
                    break
                (length,) = struct.unpack_from("!H", buffer, start)
                start += 2
            elif length == 127:
                if size - start < 8:
                    break
                (length,) = struct.unpack_from("!Q", buffer, start)
                start += 8
            if second & 0x80 or not first & 0x80:
                raise SystemExit("Masked or fragmented frame from the server")
            end = start + length
            if end > size:
                break
            opcode = first & 0x0F
            if opcode == 0x1:
                kind, seq = _kind_and_seq(buffer[start:end])
                if kind == "event":
                    self.log.append((seq, now))
                elif kind == "live":
                    self.ready.set()
            elif opcode == 0x9:
                self.send(0xA, buffer[start:end])
            elif opcode == 0x8:
                self.transport.close()
            position = end
        return buffer[position:]

    def send(self, opcode: int, payload: bytes) -> None:
        # Client frames are masked (RFC 6455 5.3); payloads here are short.
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)


def _kind_and_seq(text: bytes) -> tuple[str, int | None]:
    head = HEAD.match(text)
    if head:
        return head[1].decode(), int(head[2])
    frame = json.loads(text)
    return frame["type"], frame.get("seq")


async def connect(url: str, origin: str, cookie: str, resume: bool) -> Client:
    parts = urlparse(url)
    key = base64.b64encode(os.urandom(16))
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    lines = [
        f"GET {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key.decode()}",
        "Sec-WebSocket-Version: 13",
        f"Origin: {origin}",
    ]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(
        lambda: Client(request, accept, resume), parts.hostname, parts.port
    )
    return client


async def main(args: argparse.Namespace) -> None:
    clients = []
    for index in range(args.count):
        url = args.urls[index % len(args.urls)]
        # The PWA's own origin: the server closes sockets from any other with 4403.
        origin = args.origin or f"http://{urlparse(url).netloc}"
        clients.append(await connect(url, origin, args.cookie, args.resume))
        if index % 50 == 49:
            await asyncio.sleep(0.05)  # don't overrun the listen backlog
    await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), 120)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    # "wait LAST_SEQ" / "stop LAST_SEQ": wait (bounded) until every client has LAST_SEQ,
    # so a backlog still draining counts as latency, not as loss; "wait" answers "done".
    while True:
        command, last = (await loop.run_in_executor(None, sys.stdin.readline)).split()
        await received(clients, int(last))
        if command == "stop":
            break
        print("done", flush=True)
    dead = sum(c.closed.done() for c in clients)
    for c in clients:
        c.transport.close()
    print(json.dumps({"received": [c.log for c in clients], "dead": dead}), flush=True)


async def received(clients: list[Client], last: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(
        not c.closed.done() and (not c.log or c.log[-1][0] < last) for c in clients
    ):
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--origin", help="default: the socket URL's own")
    parser.add_argument("--cookie", default="")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("urls", nargs="+")
    uvloop.run(main(parser.parse_args()))
