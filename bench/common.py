"""What every bench shares: the machine's speed, and the services and settings a run uses."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from responder.embedded_redis import free_port
from responder.embedded_redis import start as start_redis


def calibration() -> float:
    """Milliseconds for SHA-256 over 64 MiB in 1 MiB blocks: printed with every run, so
    figures from machines of different speed (or one machine at a slow hour) compare."""
    block, started = b"\x5a" * (1 << 20), time.perf_counter()
    digest = hashlib.sha256()
    for _ in range(64):
        digest.update(block)
    return (time.perf_counter() - started) * 1000


@contextlib.contextmanager
def bench_services(tmp: Path, **env: str) -> Iterator[None]:
    """REDIS_URL's Redis or an embedded one, DATABASE_URL's database or SQLite in `tmp`,
    and production settings with a throwaway key (plus `env`) for every process started."""
    redis = None
    if not os.environ.get("REDIS_URL"):
        port = free_port()
        redis = start_redis(port, str(tmp))
        os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="responder.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(60),
        SECURE_SSL_REDIRECT="false",
        LOG_LEVEL="WARNING",
        **env,
    )
    try:
        yield
    finally:
        if redis:
            redis.terminate()
            redis.wait(timeout=10)


def wait_for_port(*ports: int, seconds: float = 30) -> None:
    for port in ports:
        deadline = time.monotonic() + seconds
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"Nothing listens on {port}") from None
                time.sleep(0.1)
