"""Broken cameras for the tests: stalled, sending garbage, or dropping mid-stream."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path


def broken_camera(behaviour: str, video: Path | None = None) -> tuple[str, socket.socket]:
    """Serve HTTP on a free port; 'stall' sends some video then nothing, 'garbage' noise."""
    listener = socket.create_server(("127.0.0.1", 0))
    head = b"HTTP/1.0 200 OK\r\nContent-Type: video/mp2t\r\n\r\n"

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            try:
                connection.recv(4096)
                if behaviour == "stall":
                    connection.sendall(
                        head + video.read_bytes()[: 188 * 30]
                    )  # less than a segment
                    connection.recv(1)  # hold the line open, silent, until the client gives up
                else:
                    connection.sendall(head)
                    for _ in range(2000):
                        connection.sendall(os.urandom(4096))
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
