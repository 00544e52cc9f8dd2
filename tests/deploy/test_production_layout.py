"""The production layout of deploy/, run: Debian's nginx with TLS and HTTP/2 in front of
gunicorn and two daphnes, Celery workers per queue, DEBUG off. Everything goes through nginx
over HTTPS and WSS, from another loopback address than nginx's own, as a tablet would.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import ssl
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path

import av
import pytest
import websockets
from channels.db import database_sync_to_async
from django.apps import apps
from django.conf import settings as django_settings
from encrypted_fields.fields import EncryptedFieldMixin

from accesslog.signatures import HEADER, sign
from deploy.prod import Layout
from responder.core.models import AuditEntry
from responder.demo.simulate import simulator_running
from responder.embedded_redis import free_port
from tests.factories import PASSWORD, CameraFactory, DoorFactory, GrantFactory, UserFactory
from tests.servers import database_url
from tests.signin_helpers import LOGIN, code_for, usable_device

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ORIGINAL_KEYS = (django_settings.SECRET_KEY, django_settings.SALT_KEY)
TABLET = "127.0.0.2"  # the client's address: nginx itself talks to Django from 127.0.0.1


def encrypted_fields_rekeyed() -> None:
    """Encrypted fields cache their key per field: drop it, so the next use derives anew."""
    for model in apps.get_models():
        for model_field in model._meta.get_fields():
            if isinstance(model_field, EncryptedFieldMixin):
                model_field.__dict__.pop("keys", None)
                model_field.__dict__.pop("f", None)


@pytest.fixture
def production(tmp_path, redis_server, settings) -> Iterator[Layout]:
    directory = tmp_path / "prod"
    directory.mkdir()
    layout = Layout(
        directory,
        free_port(),
        overrides={"DATABASE_URL": database_url(), "REDIS_URL": settings.REDIS_URL},
    )
    # What this process encrypts (webhook secrets), the layout's processes must read: the
    # same production key (DEBUG off refuses the development key this process runs with).
    settings.SECRET_KEY, settings.SALT_KEY = (
        layout.env["SECRET_KEY"],
        layout.env["CREDENTIALS_SALT"],
    )
    encrypted_fields_rekeyed()
    try:
        layout.start()
        yield layout
    finally:
        layout.stop()
        settings.SECRET_KEY, settings.SALT_KEY = ORIGINAL_KEYS
        encrypted_fields_rekeyed()


class Tablet:
    """HTTPS through nginx from 127.0.0.2, trusting only the layout's own certificate."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.tls = ssl.create_default_context(cafile=str(layout.certificate))
        self.cookies: dict[str, str] = {}
        self.csrf_token = ""

    def request(self, method: str, path: str, body: bytes | None = None, **headers: str):
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.layout.port, context=self.tls, source_address=(TABLET, 0)
        )
        headers = {"Origin": self.layout.url, "Cookie": self.cookie(), **headers}
        if self.csrf_token:
            headers["X-CSRFToken"] = self.csrf_token
        connection.request(method, path, body, headers)
        response = connection.getresponse()
        content = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        connection.close()
        return response, content

    def post_json(self, path: str, body: dict):
        return self.request(
            "POST", path, json.dumps(body).encode(), **{"Content-Type": "application/json"}
        )

    def cookie(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())


def sign_in(tablet: Tablet, user) -> http.client.HTTPResponse:
    credentials = {
        "username": user.get_username(),
        "password": PASSWORD,
        "otp": code_for(usable_device(user)),
    }
    response, content = tablet.post_json(LOGIN, credentials)
    assert response.status == 200, content
    tablet.csrf_token = json.loads(content)["csrf_token"]
    return response


async def live_socket(tablet: Tablet) -> websockets.ClientConnection:
    ws = await websockets.connect(
        f"wss://127.0.0.1:{tablet.layout.port}/ws/events",
        ssl=tablet.tls,
        additional_headers={"Origin": tablet.layout.url, "Cookie": tablet.cookie()},
    )
    await ws.send(json.dumps({"type": "resume", "after": 0}))
    while json.loads(await asyncio.wait_for(ws.recv(), 20))["type"] != "live":
        pass
    return ws


async def next_event(ws: websockets.ClientConnection) -> dict:
    while (frame := json.loads(await asyncio.wait_for(ws.recv(), 20)))["type"] != "event":
        pass
    return frame


def negotiated_protocol(layout: Layout) -> str | None:
    context = ssl.create_default_context(cafile=str(layout.certificate))
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", layout.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.selected_alpn_protocol()


def decoded_frames(segment: bytes, path: Path) -> int:
    path.write_bytes(segment)
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


async def test_a_tablet_signs_in_gets_an_alarm_and_plays_live_video_through_nginx(
    production, tmp_path
):
    with simulator_running() as camera_url:
        door = await database_sync_to_async(DoorFactory)(external_id="gym-east")
        camera = await database_sync_to_async(CameraFactory)(
            building=door.building,
            main_stream_url=f"{camera_url}/gym/video.ts?size=426x240&fps=15&kbps=300&gop=15",
        )
        officer = await database_sync_to_async(UserFactory)()
        await database_sync_to_async(GrantFactory)(
            user=officer, capabilities=["alarms", "live"], building=door.building
        )
        tablet = Tablet(production)

        signed_in = await asyncio.to_thread(sign_in, tablet, officer)
        ws = await live_socket(tablet)
        body = json.dumps(
            {
                "source_event_id": "lenel-9001",
                "type": "door_forced",
                "door": "gym-east",
                "occurred_at": "2026-12-02T07:00:00-06:00",
            }
        ).encode()
        posted, answer = await asyncio.to_thread(
            tablet.request,
            "POST",
            f"/api/v1/access/{door.system.slug}/events",
            body,
            **{"Content-Type": "application/json", HEADER: sign(body, door.system.webhook_secret)},
        )
        alarm = await next_event(ws)
        await ws.close()
        live, playlist = await asyncio.to_thread(
            tablet.post_json, f"/api/v1/cameras/{camera.pk}/live", {"profile": "low"}
        )
        playlist_url = json.loads(playlist)["playlist"]
        listing, text = await asyncio.to_thread(
            tablet.request, "GET", playlist_url.removeprefix(production.url)
        )
        first = next(line for line in text.decode().splitlines() if line.startswith("seg"))
        base = playlist_url.removeprefix(production.url).split("?")[0].rsplit("/", 1)[0]
        served, segment = await asyncio.to_thread(tablet.request, "GET", f"{base}/{first}")

    assert negotiated_protocol(production) == "h2"
    # Django saw HTTPS (SecurityMiddleware sends HSTS only then) and the tablet's address.
    assert signed_in.headers["Strict-Transport-Security"].startswith("max-age=")
    login_row = await database_sync_to_async(
        lambda: AuditEntry.objects.filter(action="signin", user=officer).get()
    )()
    assert login_row.ip == TABLET
    assert (posted.status, alarm["seq"]) == (202, json.loads(answer)["seq"])
    assert alarm["event"]["door"]["id"] == door.pk
    assert (live.status, listing.status) == (200, 200)
    assert playlist_url.startswith(f"{production.url}/api/v1/cameras/{camera.pk}/live/low/")
    # Gunicorn answered with an empty body and X-Accel-Redirect; the bytes are nginx's.
    assert served.status == 200 and "X-Accel-Redirect" not in served.headers
    assert served.headers["Content-Type"] == "video/mp2t"
    assert decoded_frames(segment, tmp_path / "first.ts") > 0
