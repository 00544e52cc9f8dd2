"""Real server processes for tests: daphne, gunicorn and a Redis we can kill.

Loaded by tests/conftest.py as a plugin, so every test package has these fixtures. What the
servers see is the test database: tests that use them are `django_db(transaction=True)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from responder.embedded_redis import free_port
from responder.embedded_redis import start as start_redis

ROOT = Path(__file__).resolve().parents[1]


def database_url(*, port: int | None = None) -> str:
    """The test database's URL; with `port`, reached on 127.0.0.1:port (a TcpProxy)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    host = f"127.0.0.1:{port}" if port else f"{db['HOST']}:{db['PORT'] or 5432}"
    return f"postgres://{db['USER']}{password}@{host}/{db['NAME']}"


def wait_for(port: int, timeout: float = 90) -> None:
    # Generous: Django starting on a loaded 2-core machine can take half a minute.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def serve(
    command: list[str],
    port: int,
    log: Path,
    env: dict[str, str] | None = None,
    *,
    wait: bool = True,
) -> subprocess.Popen:
    """A real server process (daphne, gunicorn) on the test database and Redis; without
    `wait`, started only (several start at once: `wait_for` each port after)."""
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "responder.settings",
        **(env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", *command], cwd=ROOT, env=environment, stderr=log.open("a")
    )
    if wait:
        wait_for(port)
    return process


def stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            # gunicorn waits out its graceful timeout (30 s) for a request still running:
            # the test is over, and its teardown must not fail on a server's shutdown.
            process.kill()
            process.wait(timeout=10)


def daphne_command(port: int) -> list[str]:
    return ["daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0", "responder.asgi:application"]


@pytest.fixture
def redis_server(tmp_path, settings) -> Iterator[dict]:
    """A Redis of the test's own, on a free port: `server` can be killed and started again."""
    port = free_port()
    server = start_redis(port, str(tmp_path))
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    holder = {"server": server, "port": port}
    yield holder
    holder["server"].terminate()
    holder["server"].wait(timeout=10)


@pytest.fixture
def daphnes(redis_server, tmp_path) -> Iterator[list[int]]:
    """Two daphne processes sharing the test's Redis: their ports."""
    ports = [free_port(), free_port()]
    processes = [
        serve(daphne_command(port), port, tmp_path / f"daphne-{port}.log", wait=False)
        for port in ports
    ]
    for port in ports:  # started together: each takes seconds to load Django
        wait_for(port)
    yield ports
    stop(*processes)


@pytest.fixture(scope="session")
def _shared_daphne(django_db_setup, tmp_path_factory) -> Iterator[tuple[int, str]]:
    """A daphne and a Redis of its own for the whole run: (port, Redis URL). Starting a
    daphne costs seconds; dozens of tests ask for one that nothing else configures."""
    directory = tmp_path_factory.mktemp("shared-daphne")
    redis_port, port = free_port(), free_port()
    server = start_redis(redis_port, str(directory))
    url = f"redis://127.0.0.1:{redis_port}/0"
    process = serve(daphne_command(port), port, directory / "daphne.log", {"REDIS_URL": url})
    yield port, url
    stop(process)
    server.terminate()
    server.wait(timeout=10)


def _fanout_channels(client: redis.Redis) -> list[bytes]:
    return [c for c in client.pubsub_channels("responder.*") if b".directory." not in c]


@pytest.fixture
def daphne(_shared_daphne, settings, request) -> int:
    """One real daphne (HTTP and sockets) on a Redis nothing else uses: its port.

    The process outlives the test; what it keeps is emptied before each: the Redis is
    flushed (sessions' throttles, lockouts, channel groups) and no socket of an earlier
    test is left, so no fan-out still holds the head of a database flushed since.
    Tests that kill Redis or need settings of their own start their own (`daphne_with`).
    """
    assert "redis_server" not in request.fixturenames, "the shared daphne has its own Redis"
    port, url = _shared_daphne
    settings.REDIS_URL = url
    client = redis.Redis.from_url(url)
    try:
        _until_no_fanout(client)
        client.flushall()
    finally:
        client.close()
    return port


def _until_no_fanout(client: redis.Redis, timeout: float = 30) -> None:
    # A fan-out lives while its process has a socket, subscribed to responder.* channels;
    # an earlier test's client socket may take a moment to be closed (and then seen) there.
    # (Not the directory's: every process that ingested keeps its watch, socket or none.)
    deadline = time.monotonic() + timeout
    while _fanout_channels(client):
        assert time.monotonic() < deadline, "the shared daphne still holds an earlier socket"
        time.sleep(0.05)


@pytest.fixture
def gunicorn(redis_server, tmp_path) -> Iterator[int]:
    """HTTP as in production: WSGI workers beside the daphnes that hold the sockets."""
    port = free_port()
    command = [
        "gunicorn", "-b", f"127.0.0.1:{port}", "--workers", "2",
        "--worker-class", "gthread", "--threads", "2", "responder.wsgi:application",
    ]  # fmt: skip
    process = serve(command, port, tmp_path / "gunicorn.log")
    answering(port)
    yield port
    stop(process)


def answering(port: int, timeout: float = 90) -> None:
    """Waits for an HTTP answer, any status. gunicorn's master listens at once; its workers
    load Django after, and a request meanwhile waits in the backlog (past a test's timeout
    on a loaded machine: CI saw a POST time out after 10 s)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/auth/me", timeout=5).close()
            return
        except urllib.error.HTTPError:
            return  # refused as nobody: a worker answered
        except OSError:
            assert time.monotonic() < deadline, f"no HTTP answer on {port}"
            time.sleep(0.2)


class HttpClient:
    """A real HTTP client with a cookie jar, for a real server on 127.0.0.1:port."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.jar = http.cookiejar.CookieJar()
        handlers = [urllib.request.HTTPCookieProcessor(self.jar), _NoRaise()]
        self.opener = urllib.request.build_opener(*handlers)
        self.csrf_token = ""

    def request(
        self, method: str, path: str, body: dict | None = None, headers: dict | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {"Content-Type": "application/json", "Origin": self.base, **(headers or {})}
        if self.csrf_token:
            all_headers["X-CSRFToken"] = self.csrf_token
        request = urllib.request.Request(self.base + path, data, all_headers, method=method)
        with self.opener.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()

    def cookie(self) -> str:
        """The Cookie header this client sends, for a WebSocket client beside it."""
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)


class _NoRaise(urllib.request.HTTPErrorProcessor):
    """Every status comes back as an answer: the tests assert refusals."""

    def http_response(self, request, response):  # noqa: ANN001, ANN201
        return response

    https_response = http_response


def http_sign_in(port: int, user, *, password: str | None = None) -> HttpClient:
    """Signs `user` in through POST /api/v1/auth/login on a real server with a real code."""
    from tests.factories import PASSWORD
    from tests.signin_helpers import LOGIN, code_for, usable_device

    client = HttpClient(port)
    credentials = {
        "username": user.get_username(),
        "password": password or PASSWORD,
        "otp": code_for(usable_device(user)),
    }
    status, _, body = client.request("POST", LOGIN, credentials)
    assert status == 200, body
    client.csrf_token = json.loads(body)["csrf_token"]
    return client


class TcpProxy:
    """A TCP relay on 127.0.0.1:port, in a thread of its own: a link a test cuts and restores.

    In front of PostgreSQL it makes the database unreachable for the servers behind it while
    the machine's shared server (and the test's own connection) go on. In front of several
    daphnes it is the load balancer: each connection goes to the next upstream in turn, and
    one that refuses is skipped, as nginx's upstream does with a dead server.
    """

    def __init__(self, *upstreams: int) -> None:
        self.upstreams = list(upstreams)
        self.port = free_port()
        self.connections = 0  # relayed so far
        self._next = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.restore()

    def restore(self) -> None:
        """Listens again: new connections go through."""
        self._run(self._listen())

    def cut(self) -> None:
        """Refuses new connections and resets every open one, as a dead host's router would."""
        self._run(self._cut())

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _run(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._relay, "127.0.0.1", self.port, reuse_address=True, backlog=1024
            )

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._links):
            writer.transport.abort()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await self._open_upstream()
        if upstream is None:
            writer.transport.abort()
            return
        self.connections += 1
        up_reader, up_writer = upstream
        self._links.update((writer, up_writer))
        try:
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        finally:
            self._links.difference_update((writer, up_writer))

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in self.upstreams:
            port = self.upstreams[self._next % len(self.upstreams)]
            self._next += 1
            with contextlib.suppress(OSError):
                return await asyncio.open_connection("127.0.0.1", port)
        return None


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One direction of a link; its end (or a reset) ends the other direction too."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.transport.abort()
