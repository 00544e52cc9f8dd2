"""What every bench shares: the machine's speed, and the services and settings a run uses."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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
def bench_services(tmp: Path, **env: str) -> Iterator[subprocess.Popen | None]:
    """REDIS_URL's Redis or an embedded one (yielded, to tell its CPU from a shared
    server's), DATABASE_URL's database or SQLite in `tmp`, and production settings with a
    throwaway key (plus `env`) for every process started."""
    redis = None
    if not os.environ.get("REDIS_URL"):
        port = free_port()
        redis = start_redis(port, str(tmp))
        os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    defaults = {
        "DJANGO_SETTINGS_MODULE": "responder.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "EVIDENCE_SIGNING_KEY": throwaway_signing_key(),
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(defaults | env)  # a bench's own key (bench.evidence) wins
    try:
        yield redis
    finally:
        if redis:
            redis.terminate()
            redis.wait(timeout=10)


def throwaway_vapid_key() -> str:
    """A P-256 key as production's VAPID_PRIVATE_KEY (base64url): push is on, as in a
    district, so every alarm's push task is queued as it would be there."""
    key = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    return base64.urlsafe_b64encode(key.to_bytes(32, "big")).rstrip(b"=").decode()


def throwaway_signing_key() -> str:
    """An Ed25519 key as PEM text: production settings refuse to start without one."""
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


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


def h264_1080p(seconds: int, fps: int) -> list[av.Packet]:
    """FFmpeg's testsrc2 at 1080p encoded as cameras send it: ~4 Mbps, a keyframe a second."""
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 1920, 1080, "yuv420p"
    encoder.time_base, encoder.framerate = Fraction(1, fps), fps
    encoder.options = {"preset": "ultrafast", "g": str(fps), "sc_threshold": "0", "bf": "0",
                       "b": "4000000", "maxrate": "4500000", "bufsize": "4500000"}  # fmt: skip
    packets = []
    source = av.open(f"testsrc2=size=1920x1080:rate={fps}:duration={seconds}", format="lavfi")
    with source:
        for index, frame in enumerate(source.decode(video=0)):
            frame.pts, frame.time_base = index, Fraction(1, fps)
            packets += encoder.encode(frame)
    return packets + encoder.encode(None)
