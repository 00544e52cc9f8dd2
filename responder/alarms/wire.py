"""Frames encoded once, down to the WebSocket bytes, and written straight to daphne's socket.

The baselines (shared/notes/fanout-baselines.md) put a third of daphne's time in
autobahn's per-frame write path. A server-to-client text frame is unmasked, so the same
bytes serve every client: the fan-out builds them once per event and, on daphne, hands a
socket all its frames of a batch in one write. Elsewhere (tests' communicator, other
servers) frames go through the ASGI `send` as usual.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Awaitable, Callable
from typing import Any

try:
    from daphne.ws_protocol import WebSocketProtocol
except ImportError:  # pragma: no cover - daphne is a dependency; keep the fallback honest
    WebSocketProtocol = None


class Frame:
    __slots__ = ("text", "wire")

    def __init__(self, text: str) -> None:
        payload = text.encode()
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x81, size)
        elif size < 1 << 16:
            header = struct.pack("!BBH", 0x81, 126, size)
        else:
            header = struct.pack("!BBQ", 0x81, 127, size)
        self.text, self.wire = text, header + payload


Send = Callable[[Any], Awaitable[None]]  # an ASGI send: any of ASGI's event dicts


def direct_writer(send: Send) -> Callable[[bytes], bool] | None:
    """A function writing whole frames to daphne's transport, if `send` is daphne's."""
    # channels' SessionMiddleware wraps daphne's send in a method of its own wrapper.
    inner: Any = send  # unwrapped by duck typing: any object may stand between
    while not isinstance(inner, functools.partial):
        inner = getattr(getattr(inner, "__self__", None), "real_send", None)
        if inner is None:
            return None
    protocol = inner.args[0] if inner.args else None
    if WebSocketProtocol is None or not isinstance(protocol, WebSocketProtocol):
        return None

    send_now = _transport_writer(protocol.transport)

    def write(data: bytes) -> bool:
        # Only when autobahn has nothing queued and no compression: then our frames are
        # exactly what it would have written, in order.
        if (
            protocol.state != protocol.STATE_OPEN
            or protocol.send_queue
            or protocol._perMessageCompress is not None
        ):
            return False
        send_now(data)
        return True

    return write


def _transport_writer(transport: Any) -> Callable[[bytes], None]:
    """`transport.write`, but sent at once when Twisted has nothing queued.

    Twisted buffers every write and sends it on the reactor's next turn, registering and
    unregistering the socket with epoll for each: per event and socket, that was a third
    of the fan-out's time (docs/BENCHMARKS.md). With nothing queued, the same bytes go
    out in the same order straight away; whatever the kernel does not take is queued as
    before. Anything but a plain TCP transport (TLS, a test's) takes the usual path.

    The transport is looked at once, here: the write runs per event and socket, and its
    `getattr`s with defaults were a sixth of a write pass under a profiler.
    """
    if getattr(transport, "socket", None) is None or not all(
        hasattr(transport, name) for name in _TCP_STATE
    ):
        return transport.write
    sock = transport.socket

    def write(data: bytes) -> None:
        if (
            transport.connected
            and not transport.disconnecting
            and not transport.TLS  # a startTLS since: Twisted's path encrypts
            and not transport._tempDataBuffer
            and len(transport.dataBuffer) == transport.offset
        ):
            try:
                sent = sock.send(data)
            except OSError:  # BlockingIOError included: full, or failing; Twisted takes over
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        transport.write(data)

    return write


# What Twisted's TCP transports (abstract.FileDescriptor, tcp.Connection) keep of their state.
_TCP_STATE = ("connected", "disconnecting", "TLS", "_tempDataBuffer", "dataBuffer", "offset")
