"""A share link through a real server: the officer's browser has no account; the page,
a file and the zip come over HTTP; 410 once revoked or expired."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import urllib.request
import zipfile
from collections.abc import Iterator

import pytest
from django.utils import timezone

from responder.core.models import AuditEntry
from responder.embedded_redis import free_port
from responder.evidence.models import Share
from tests.evidence.evidence_helpers import (
    built,
    export_post,
    exporter,
    process_env,
    recorded_camera,
)
from tests.servers import HttpClient, daphne_command, http_sign_in, serve, stop

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server(redis_server, evidence_roots, tmp_path) -> Iterator[int]:
    """A real daphne on this test's folders and key."""
    port = free_port()
    env = process_env()
    process = serve(daphne_command(port), port, tmp_path / "daphne.log", env)
    yield port
    stop(process)


def anonymous_get(url: str) -> tuple[int, bytes]:
    """A browser without an account or cookie: the officer who got the link."""
    request = urllib.request.Request(url, headers={"User-Agent": "Officer's browser"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_a_share_link_works_over_http_without_an_account_until_revoked_or_expired(server):
    camera, start, _ = recorded_camera(20)
    client = exporter(camera)
    export_id = export_post(client, [camera], start, start + dt.timedelta(seconds=20)).json()["id"]
    export = built(export_id)
    officer = http_sign_in(server, client.user)

    revoked, expiring = (share_made(officer, export_id, note) for note in ("Det. Ruiz", "DA"))
    page_status, page = anonymous_get(revoked["url"])
    mp4_status, mp4 = anonymous_get(revoked["url"] + f"video/camera-{camera.pk}.mp4")
    zip_status, whole = anonymous_get(revoked["url"] + "export.zip")
    gone = officer.request("DELETE", f"/api/v1/evidence/{export_id}/shares/{revoked['id']}")
    after_revoke = anonymous_get(revoked["url"])
    Share.objects.filter(pk=expiring["id"]).update(expires_at=timezone.now())
    after_expiry = anonymous_get(expiring["url"] + "export.zip")

    assert page_status == 200 and camera.name.encode() in page and b"Det. Ruiz" in page
    assert mp4_status == 200 and zip_status == 200
    archive = zipfile.ZipFile(io.BytesIO(whole))
    assert archive.read(f"video/camera-{camera.pk}.mp4") == mp4
    assert hashlib.sha256(archive.read("manifest.json")).hexdigest() == export.manifest_sha256
    assert gone[0] == 204
    assert after_revoke[0] == 410 and camera.name.encode() not in after_revoke[1]
    assert after_expiry[0] == 410
    downloads = AuditEntry.objects.filter(action="evidence.downloaded").order_by("id")
    assert [(row.details["file"], row.ip, row.user_agent) for row in downloads] == [
        (f"video/camera-{camera.pk}.mp4", "127.0.0.1", "Officer's browser"),
        ("export.zip", "127.0.0.1", "Officer's browser"),
    ]


def share_made(client: HttpClient, export_id: int, note: str) -> dict:
    status, _, body = client.request(
        "POST", f"/api/v1/evidence/{export_id}/shares", {"note": note, "expires_in_days": 2}
    )
    assert status == 201, body
    return json.loads(body)
