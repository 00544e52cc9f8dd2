"""Attacks on the floor and site plans.

A building's floor plan shows where its doors and cameras are: it is given only to a
signed-in user (both factors) whose access covers that building or campus; anyone else
is told it does not exist. A plan uploaded with scripts hidden in it (an SVG can carry
them) is stored without them, and every plan is sent with a policy that lets nothing in
it run, load or navigate.
"""

from __future__ import annotations

import json
import secrets
import urllib.request
from collections.abc import Iterator

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from maps.views import PLAN_POLICY
from responder.embedded_redis import free_port
from tests.factories import (
    BuildingFactory,
    CampusFactory,
    FloorFactory,
    GrantFactory,
    UserFactory,
)
from tests.servers import HttpClient, daphne_command, http_sign_in, serve, stop

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EVIL_SVG = b"""<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 800 600"
  onload="fetch('/api/v1/auth/me').then(r => r.text()).then(t => alert(t))">
  <script>alert(document.cookie)</script>
  <foreignObject width="800" height="600">
    <iframe xmlns="http://www.w3.org/1999/xhtml" src="https://evil.example/"></iframe>
  </foreignObject>
  <rect width="800" height="600" fill="#eee" onclick="alert(1)"/>
  <image href="https://evil.example/beacon.png" width="1" height="1"/>
  <text x="20" y="40">Gym</text>
</svg>"""


@pytest.fixture
def daphne(redis_server, tmp_path, settings) -> Iterator[int]:
    """A real daphne reading the plans this test's factories write."""
    port = free_port()
    env = {"MEDIA_ROOT": str(settings.MEDIA_ROOT)}
    process = serve(daphne_command(port), port, tmp_path / "daphne.log", env)
    yield port
    stop(process)


def svg(label: str) -> ContentFile:
    body = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 50"><text>{label}</text></svg>'
    )
    return ContentFile(body.encode(), name="plan.svg")


def unverified_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = secrets.token_hex(16)
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n')
        parts.append(f"{value}\r\n")
    body = "".join(parts).encode()
    for name, (filename, content) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: image/svg+xml\r\n\r\n'
        )
        body += head.encode() + content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def admin_upload(client: HttpClient, fields: dict, files: dict) -> int:
    body, content_type = multipart(fields, files)
    headers = {
        "Content-Type": content_type,
        "X-CSRFToken": client.csrf_token,
        "Origin": client.base,
    }
    request = urllib.request.Request(
        client.base + "/admin/maps/floor/add/", body, headers, method="POST"
    )
    with client.opener.open(request, timeout=30) as response:
        response.read()
        return response.status


def test_a_plan_is_a_404_without_a_session_a_second_factor_or_a_grant_over_it(daphne):
    mine = FloorFactory(plan=svg("mine"))
    theirs = FloorFactory(plan=svg("theirs"), building=BuildingFactory(campus=CampusFactory()))
    theirs.building.campus.site_plan = svg("their site")
    theirs.building.campus.save()
    officer = UserFactory()
    GrantFactory(user=officer, building=mine.building, capabilities=["alarms"])
    anonymous, signed_in = HttpClient(daphne), http_sign_in(daphne, officer)
    half_signed_in = {"Cookie": unverified_cookie(officer)}

    assert anonymous.request("GET", mine.plan.url)[0] == 404
    assert HttpClient(daphne).request("GET", mine.plan.url, headers=half_signed_in)[0] == 404
    assert signed_in.request("GET", theirs.plan.url)[0] == 404
    assert signed_in.request("GET", theirs.building.campus.site_plan.url)[0] == 404
    status, headers, body = signed_in.request("GET", mine.plan.url)
    assert status == 200 and b"mine" in body
    assert headers["Content-Security-Policy"] == PLAN_POLICY
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "private" in headers["Cache-Control"] and "immutable" in headers["Cache-Control"]


def test_an_uploaded_svg_comes_back_without_its_scripts_and_under_a_strict_policy(daphne):
    building = BuildingFactory()
    it = http_sign_in(daphne, UserFactory(username="it", is_staff=True, is_superuser=True))
    fields = {"building": str(building.pk), "name": "Ground", "level": "0"}
    for inline in ("cameras", "doors"):
        fields |= {f"{inline}-TOTAL_FORMS": "0", f"{inline}-INITIAL_FORMS": "0"}

    assert admin_upload(it, fields, {"plan": ("plan.svg", EVIL_SVG)}) == 302
    status, _, tree = it.request("GET", "/api/v1/campuses/")
    [floor] = [f for c in json.loads(tree) for b in c["buildings"] for f in b["floors"]]
    status, headers, body = it.request("GET", floor["plan"])

    assert status == 200 and b"Gym" in body and b'viewBox="0 0 800 600"' in body
    for attack in (b"<script", b"onload", b"onclick", b"foreignObject", b"evil.example"):
        assert attack not in body, attack
    assert headers["Content-Type"] == "image/svg+xml"
    assert headers["Content-Security-Policy"] == PLAN_POLICY
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert (floor["plan_width"], floor["plan_height"]) == (800, 600)
