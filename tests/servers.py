"""Real server processes for tests: daphne, gunicorn and a Redis we can kill.

Loaded by tests/conftest.py as a plugin, so every test package has these fixtures. What the
servers see is the test database: tests that use them are `django_db(transaction=True)`.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from responder.embedded_redis import free_port
from responder.embedded_redis import start as start_redis

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_for(port: int) -> None:
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def serve(
    command: list[str], port: int, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """A real server process (daphne, gunicorn) on the test database and Redis."""
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "responder.settings",
        **(env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", *command], cwd=ROOT, env=environment, stderr=log.open("w")
    )
    wait_for(port)
    return process


def stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=20)


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
        serve(daphne_command(port), port, tmp_path / f"daphne-{port}.log") for port in ports
    ]
    yield ports
    stop(*processes)


@pytest.fixture
def daphne(redis_server, tmp_path) -> Iterator[int]:
    """One real daphne (HTTP and sockets) on the test's Redis: its port."""
    port = free_port()
    process = serve(daphne_command(port), port, tmp_path / "daphne.log")
    yield port
    stop(process)


@pytest.fixture
def gunicorn(redis_server, tmp_path) -> Iterator[int]:
    """HTTP as in production: WSGI workers beside the daphnes that hold the sockets."""
    port = free_port()
    command = [
        "gunicorn", "-b", f"127.0.0.1:{port}", "--workers", "2",
        "--worker-class", "gthread", "--threads", "2", "responder.wsgi:application",
    ]  # fmt: skip
    process = serve(command, port, tmp_path / "gunicorn.log")
    yield port
    stop(process)


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
