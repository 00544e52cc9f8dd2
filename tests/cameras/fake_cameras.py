"""Broken cameras for the tests: stalled, sending garbage, or dropping mid-stream."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path


def broken_camera(behaviour: str, video: Path | None = None) -> tuple[str, socket.socket]:
    """Serve HTTP on a free port; 'stall' sends some video then nothing, 'garbage' noise."""
    head = b"HTTP/1.0 200 OK\r\nContent-Type: video/mp2t\r\n\r\n"

    def answer(connection: socket.socket) -> None:
        connection.recv(4096)
        if behaviour == "stall":
            assert video is not None
            connection.sendall(head + video.read_bytes()[: 188 * 30])  # less than a segment
            connection.recv(1)  # hold the line open, silent, until the client gives up
        else:
            connection.sendall(head)
            for _ in range(2000):
                connection.sendall(os.urandom(4096))

    return _serving(answer)


def counting_dead_camera(*, delay: float = 0.0) -> tuple[str, list]:
    """A camera that answers every connection with an error, `delay` seconds after the
    request: the list counts connections."""
    connections: list = []

    def answer(connection: socket.socket) -> None:
        connections.append(connection)
        connection.recv(4096)
        time.sleep(delay)
        connection.sendall(b"HTTP/1.0 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")

    return _serving(answer)[0], connections


def _serving(answer: Callable[[socket.socket], None]) -> tuple[str, socket.socket]:
    """An HTTP camera on a free port: each connection is given to `answer`, then closed."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            try:
                answer(connection)
            except OSError:
                pass
            finally:
                connection.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/cam/video.ts", listener


class CuttableProxy:
    """A TCP proxy to a camera whose cut() drops every open connection, as a flaky link does."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.removeprefix("http://")
        host, _, port = self.upstream.partition(":")
        self.address = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}{path}"

    def cut(self) -> None:
        for sock in self.open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self.open.clear()

    def close(self) -> None:
        self.cut()
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.address)
            self.open += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)
