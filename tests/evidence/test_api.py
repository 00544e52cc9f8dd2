"""POST/GET /api/v1/evidence/: scope, second factor, bad input, duplicates, download."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest
from django.test import Client

from responder.core.models import AuditEntry
from responder.evidence.models import Export, ExportStatus
from responder.recording.models import Hold, HoldSource
from tests.evidence.evidence_helpers import built, export_post, exporter, recorded_camera
from tests.factories import CameraFactory, UserFactory
from tests.recording.playback_helpers import viewer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("evidence_roots")]


def test_an_export_answers_202_and_holds_its_range_before_anything_is_built():
    camera, start, _ = recorded_camera()
    client = exporter(camera)
    end = start + dt.timedelta(seconds=30)

    response = export_post(client, [camera], start, end)

    assert response.status_code == 202
    assert response.json()["status"] == "building"
    export = Export.objects.get(pk=response.json()["id"])
    assert export.created_by == client.user
    hold = Hold.objects.active().get(pk=export.hold_id)
    assert hold.source == HoldSource.EXPORT
    assert (hold.start, hold.end) == (start, end)
    assert list(hold.cameras.all()) == [camera]
    assert AuditEntry.objects.filter(action="evidence.created", object_id=str(export.pk)).exists()


def test_a_second_identical_request_while_building_returns_the_first():
    camera, start, _ = recorded_camera()
    client = exporter(camera)
    end = start + dt.timedelta(seconds=20)

    first = export_post(client, [camera], start, end).json()
    second = export_post(client, [camera], start, end).json()

    assert first == second
    assert Export.objects.count() == 1
    assert Hold.objects.count() == 1


def test_the_same_request_after_the_first_is_built_makes_a_new_export():
    camera, start, _ = recorded_camera()
    client = exporter(camera)
    end = start + dt.timedelta(seconds=20)
    first = export_post(client, [camera], start, end).json()
    built(first["id"])

    second = export_post(client, [camera], start, end).json()

    assert second["id"] != first["id"]


def test_a_camera_out_of_scope_answers_404_and_nothing_is_created():
    camera, start, _ = recorded_camera()
    elsewhere = CameraFactory()
    client = exporter(camera)

    response = export_post(client, [camera, elsewhere], start, start + dt.timedelta(seconds=10))

    assert response.status_code == 404
    assert not Export.objects.exists() and not Hold.objects.exists()


def test_recorded_without_export_is_404_too():
    camera, start, _ = recorded_camera()
    client = viewer(camera, capabilities=("recorded", "live"))

    response = export_post(client, [camera], start, start + dt.timedelta(seconds=10))

    assert response.status_code == 404
    assert not Export.objects.exists()


def test_an_incident_elsewhere_answers_404():
    from django.utils import timezone

    from responder.core.models import Incident
    from tests.factories import CampusFactory

    camera, start, _ = recorded_camera()
    incident = Incident.objects.create(
        campus=CampusFactory(), title="Elsewhere", grants_end_at=timezone.now()
    )
    client = exporter(camera)

    response = export_post(client, [camera], start, start + dt.timedelta(seconds=10),
                           incident=incident.pk)  # fmt: skip

    assert response.status_code == 404
    assert not Export.objects.exists()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"minutes": 241}, "at most 240 minutes"),
        ({"minutes": -1}, "end must be after start"),
        ({"cameras": 17}, "At most 16 cameras"),
        ({"reason": ""}, "may not be blank"),
    ],
)
def test_bad_input_answers_400_with_the_reason_and_creates_nothing(change, reason):
    camera, start, _ = recorded_camera(10)
    client = exporter(camera)
    cameras = [camera] * change.get("cameras", 1)
    end = start + dt.timedelta(minutes=change.get("minutes", 1))

    response = export_post(client, cameras, start, end, reason=change.get("reason", "why"))

    assert response.status_code == 400
    assert reason in str(response.json())
    assert not Export.objects.exists() and not Hold.objects.exists()


def test_the_longest_range_allowed_is_the_setting(settings):
    settings.EXPORT_MAX_MINUTES = 5
    camera, start, _ = recorded_camera(10)
    client = exporter(camera)

    refused = export_post(client, [camera], start, start + dt.timedelta(minutes=6))
    accepted = export_post(client, [camera], start, start + dt.timedelta(minutes=5))

    assert refused.status_code == 400 and "at most 5 minutes" in str(refused.json())
    assert accepted.status_code == 202


def test_a_password_without_the_second_factor_is_refused():
    camera, start, _ = recorded_camera(10)
    user = UserFactory(is_superuser=True)
    client = Client()
    client.force_login(user)

    posted = export_post(client, [camera], start, start + dt.timedelta(seconds=10))
    listed = client.get("/api/v1/evidence/")

    assert posted.status_code == 403 and listed.status_code == 403
    assert not Export.objects.exists()


def test_the_list_and_the_detail_show_only_exports_of_cameras_in_scope():
    camera, start, _ = recorded_camera(10)
    other, _, _ = recorded_camera(10)
    mine, theirs = exporter(camera), exporter(other)
    end = start + dt.timedelta(seconds=10)
    own = export_post(mine, [camera], start, end).json()["id"]
    foreign = export_post(theirs, [other], start, end).json()["id"]

    listed = mine.get("/api/v1/evidence/").json()

    assert [item["id"] for item in listed] == [own]
    assert mine.get(f"/api/v1/evidence/{foreign}").status_code == 404
    assert mine.get(f"/api/v1/evidence/{own}").json()["status"] == "building"


def test_a_ready_export_downloads_once_by_its_short_signed_url_and_is_audited():
    camera, start, _ = recorded_camera()
    client = exporter(camera)
    export_id = export_post(client, [camera], start, start + dt.timedelta(seconds=30)).json()["id"]
    assert built(export_id).status == ExportStatus.READY

    detail = client.get(f"/api/v1/evidence/{export_id}").json()
    response = Client().get(detail["download"], HTTP_USER_AGENT="curl/8")

    assert set(detail) >= {
        "id", "status", "progress", "cameras", "start", "end", "bytes", "download",
        "manifest_sha256", "failure",
    }  # fmt: skip
    assert detail["status"] == "ready" and detail["progress"] == 1.0
    assert detail["cameras"] == [camera.pk]
    assert response.status_code == 200
    data = b"".join(response.streaming_content)
    assert len(data) == detail["bytes"]
    assert "manifest.json" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    audit = AuditEntry.objects.get(action="evidence.downloaded")
    assert (audit.user, audit.user_agent, audit.ip) == (client.user, "curl/8", "127.0.0.1")


def test_a_tampered_or_foreign_download_url_is_refused():
    camera, start, _ = recorded_camera()
    client = exporter(camera)
    export_id = export_post(client, [camera], start, start + dt.timedelta(seconds=30)).json()["id"]
    built(export_id)
    url = client.get(f"/api/v1/evidence/{export_id}").json()["download"]

    tampered = Client().get(url[:-3] + "abc")
    other = Client().get(url.replace(f"/evidence/{export_id}/", f"/evidence/{export_id + 1}/"))

    assert tampered.status_code == 403 and other.status_code == 403
    assert not AuditEntry.objects.filter(action="evidence.downloaded").exists()


def test_a_building_export_has_no_download():
    camera, start, _ = recorded_camera(10)
    client = exporter(camera)
    export_id = export_post(client, [camera], start, start + dt.timedelta(seconds=10)).json()["id"]

    assert client.get(f"/api/v1/evidence/{export_id}").json()["download"] is None
