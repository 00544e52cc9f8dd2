"""A push service and a browser for tests: real HTTP in, RFC 8291 decryption, RFC 8292 checks."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class PushService:
    """Answers 201, or the status set for a path (410 for a gone subscription)."""

    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    on_receive: Callable[[Received], None] | None = None

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count and time.monotonic() < deadline:
                self.arrived.wait(0.1)
        return list(self.received)


def push_service_server(service: PushService) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            received = Received(self.path, headers, body)
            if service.on_receive:
                service.on_receive(received)
            with service.arrived:
                service.received.append(received)
                service.arrived.notify_all()
            self.send_response(service.statuses.get(self.path, 201))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((service.host, 0), Handler)
    service.port = server.server_port
    return server


@dataclass
class HangingPushService:
    """Takes each push and never answers, until the sender gives up and closes."""

    host: str = "127.0.0.1"
    port: int = 0
    opened: int = 0
    closed: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def wait(self, ready: Callable[[], bool], timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not ready() and time.monotonic() < deadline:
                self.changed.wait(0.1)
            return ready()

    def _count(self, what: str) -> None:
        with self.changed:
            setattr(self, what, getattr(self, what) + 1)
            self.changed.notify_all()


def hanging_server(service: HangingPushService) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            service._count("opened")
            self.rfile.read(1)  # blocks until the sender closes the connection
            service._count("closed")
            self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((service.host, 0), Handler)
    server.daemon_threads = True
    service.port = server.server_port
    return server


class Browser:
    """A device's push keys, as PushManager.subscribe() makes them."""

    def __init__(self, service: PushService | HangingPushService, name: str) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth_secret = os.urandom(16)
        self.endpoint = f"{service.origin}/push/{name}"
        self.path = f"/push/{name}"

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)

    def decrypt(self, received: Received) -> dict:
        assert received.headers["content-encoding"] == "aes128gcm"
        plain = http_ece.decrypt(
            received.body,
            private_key=self.private_key,
            auth_secret=self.auth_secret,
            version="aes128gcm",
        )
        return json.loads(plain)


def vapid_claims(authorization: str, public_key: str) -> dict:
    """The JWT claims of an RFC 8292 header, after checking its ES256 signature."""
    scheme, params = authorization.split(" ", 1)
    assert scheme == "vapid"
    parts = dict(part.strip().split("=", 1) for part in params.split(","))
    assert parts["k"] == public_key
    signing_input, signature = parts["t"].rsplit(".", 1)
    raw = unb64url(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(public_key))
    key.verify(der, signing_input.encode(), ec.ECDSA(hashes.SHA256()))  # raises if forged
    header, claims = (json.loads(unb64url(p)) for p in signing_input.split("."))
    assert header["alg"] == "ES256"
    return claims
