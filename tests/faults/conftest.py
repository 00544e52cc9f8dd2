from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator

import pytest
from django.db import connection

from tests.servers import TcpProxy


@pytest.fixture
def pg_proxy() -> Iterator[TcpProxy]:
    """PostgreSQL behind a link the test cuts: the machine's server itself never stops."""
    if connection.vendor != "postgresql":
        pytest.skip("a database out of reach needs a database server: run on PostgreSQL")
    proxy = TcpProxy(int(connection.settings_dict["PORT"] or 5432))
    yield proxy
    proxy.close()


class Supervised:
    """A process kept running as deploy/systemd's units keep theirs (Restart=always,
    RestartSec=2): started again whenever it exits, until `stop`."""

    RESTART_SECONDS = 2

    def __init__(self, start: Callable[[], subprocess.Popen]) -> None:
        self._start = start
        self.restarts = 0
        self._stopping = threading.Event()
        self.process = start()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while True:
            self.process.wait()
            if self._stopping.wait(self.RESTART_SECONDS):
                return
            self.restarts += 1
            self.process = self._start()

    def stop(self) -> None:
        self._stopping.set()
        self.process.terminate()
        self.process.wait(timeout=30)
        self._thread.join(timeout=10)
