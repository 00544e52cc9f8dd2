"""Share links for police: created, listed on a plain page without an account, audited
per download, 410 once revoked or expired, rate-limited, the token stored hashed only."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile
from urllib.parse import urlsplit

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from responder.core.models import AuditEntry
from responder.evidence.models import Share
from tests.evidence.evidence_helpers import built, export_post, exporter, recorded_camera

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("evidence_roots")]


@pytest.fixture
def ready():
    camera, start, _ = recorded_camera(20)
    client = exporter(camera)
    export_id = export_post(client, [camera], start, start + dt.timedelta(seconds=20)).json()["id"]
    return client, built(export_id), camera


def share_post(client, export, **body):
    return client.post(
        f"/api/v1/evidence/{export.pk}/shares", body, content_type="application/json"
    )


def path_of(url: str) -> str:
    return urlsplit(url).path


def test_a_share_link_opens_a_plain_page_without_an_account(ready):
    client, export, camera = ready

    response = share_post(client, export, expires_in_days=3, note="Det. Ruiz, case 2026-117")
    page = Client().get(path_of(response.json()["url"]), HTTP_USER_AGENT="police-browser")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "url", "expires_at"}
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(days=3) - (expires - timezone.now()) < dt.timedelta(minutes=1)
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    assert camera.name in html and "Det. Ruiz, case 2026-117" in html
    assert export.manifest_sha256 in html and "manifest.json" in html
    assert f"video/camera-{camera.pk}.mp4" in html
    opened = AuditEntry.objects.get(action="evidence.share_opened")
    assert (opened.ip, opened.user_agent, opened.user) == ("127.0.0.1", "police-browser", None)


def test_the_token_has_256_bits_and_only_its_hash_is_stored(ready):
    client, export, _ = ready

    url = share_post(client, export).json()["url"]

    token = path_of(url).rstrip("/").rsplit("/", 1)[1]
    share = Share.objects.get()
    assert len(token) >= 43  # 32 bytes of urlsafe base64
    assert share.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(Share.objects.values().get())
    assert share.expires_at - share.created_at == dt.timedelta(days=7)


def test_each_file_downloads_by_the_link_and_every_download_is_audited(ready):
    client, export, camera = ready
    page = path_of(share_post(client, export, note="DA office").json()["url"])
    outsider = Client(HTTP_USER_AGENT="curl/8", REMOTE_ADDR="203.0.113.9")

    mp4 = outsider.get(page + f"video/camera-{camera.pk}.mp4")
    whole = outsider.get(page + "export.zip")

    assert mp4.status_code == 200 and whole.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(whole.streaming_content)))
    assert b"".join(mp4.streaming_content) == archive.read(f"video/camera-{camera.pk}.mp4")
    rows = AuditEntry.objects.filter(action="evidence.downloaded").order_by("id")
    assert [row.details["file"] for row in rows] == [f"video/camera-{camera.pk}.mp4", "export.zip"]
    assert {(row.ip, row.user_agent) for row in rows} == {("203.0.113.9", "curl/8")}
    assert all(row.details["share"] and row.details["note"] == "DA office" for row in rows)


def test_a_revoked_link_answers_410_and_shows_nothing(ready):
    client, export, camera = ready
    body = share_post(client, export).json()
    page = path_of(body["url"])

    revoked = client.delete(f"/api/v1/evidence/{export.pk}/shares/{body['id']}")
    after = Client().get(page)
    file_after = Client().get(page + "export.zip")

    assert revoked.status_code == 204
    assert after.status_code == 410 and file_after.status_code == 410
    assert camera.name not in after.content.decode()
    assert AuditEntry.objects.filter(action="evidence.share_revoked").count() == 1
    assert not AuditEntry.objects.filter(action="evidence.downloaded").exists()


def test_an_expired_link_answers_410(ready):
    client, export, _ = ready
    page = path_of(share_post(client, export, expires_in_days=1).json()["url"])

    with time_machine.travel(timezone.now() + dt.timedelta(days=1, minutes=1)):
        response = Client().get(page)

    assert response.status_code == 410


def test_an_unknown_token_is_404_and_guessing_is_rate_limited(ready, settings):
    settings.EVIDENCE_SHARE_RATE = "5/m"
    guesser = Client()

    answers = [guesser.get(f"/evidence/s/guess{n}/").status_code for n in range(7)]

    assert answers[:5] == [404] * 5
    assert answers[5:] == [429, 429]


@pytest.mark.parametrize("days", [0, 31])
def test_a_share_longer_than_30_days_or_shorter_than_one_is_refused(ready, days):
    client, export, _ = ready

    response = share_post(client, export, expires_in_days=days)

    assert response.status_code == 400
    assert not Share.objects.exists()


def test_a_building_export_cannot_be_shared():
    camera, start, _ = recorded_camera(10)
    client = exporter(camera)
    export_id = export_post(client, [camera], start, start + dt.timedelta(seconds=10)).json()["id"]

    response = client.post(
        f"/api/v1/evidence/{export_id}/shares", {}, content_type="application/json"
    )

    assert response.status_code == 409
    assert not Share.objects.exists()


def test_shares_of_an_export_out_of_scope_are_404(ready):
    _, export, _ = ready
    other, _, _ = recorded_camera(10)
    stranger = exporter(other)
    share = Share.objects.create(
        export=export, token_sha256="0" * 64, created_by=export.created_by,
        expires_at=timezone.now() + dt.timedelta(days=1),
    )  # fmt: skip

    created = share_post(stranger, export)
    revoked = stranger.delete(f"/api/v1/evidence/{export.pk}/shares/{share.pk}")

    assert created.status_code == 404 and revoked.status_code == 404
    share.refresh_from_db()
    assert share.revoked_at is None
