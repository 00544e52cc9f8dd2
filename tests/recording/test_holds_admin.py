"""The admin shows held bytes per camera and every hold with who, why and until when."""

import datetime as dt

import pytest
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone

from responder.incidents.services import incident_open
from responder.recording.models import Hold
from responder.recording.services import hold_create, hold_release
from tests.factories import CameraFactory, UserFactory, sign_in_verified
from tests.recording.retention_helpers import segment_write

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _recordings(settings, tmp_path):
    settings.RECORDINGS_ROOT = tmp_path / "recordings"


def test_the_camera_list_shows_the_bytes_active_holds_keep(client):
    sign_in_verified(client, UserFactory(is_superuser=True, is_staff=True))
    held_camera, other = CameraFactory(name="Lobby"), CameraFactory(name="Gym")
    start = timezone.now() - dt.timedelta(hours=2)
    held = [segment_write(held_camera, start + dt.timedelta(minutes=m)) for m in (0, 1)]
    segment_write(held_camera, start + dt.timedelta(minutes=30))  # outside the hold
    segment_write(other, start)
    principal = UserFactory(username="principal")
    end = start + dt.timedelta(minutes=2)
    hold_create(cameras=[held_camera], start=start, end=end, reason="Fight", by=principal)
    lapsed = hold_create(cameras=[other], start=start, end=end, reason="Old", by=principal)
    hold_release(hold=lapsed, by=principal, reason="Withdrawn")

    page = client.get("/admin/cameras/camera/").content.decode()

    assert "Held footage" in page
    lobby_row = next(row for row in page.split("<tr") if ">Lobby<" in row)
    gym_row = next(row for row in page.split("<tr") if ">Gym<" in row)
    assert f'<td class="field-held">{filesizeformat(sum(s.bytes for s in held))}<' in lobby_row
    assert f'<td class="field-held">{filesizeformat(0)}<' in gym_row


def test_the_camera_page_lists_every_hold_with_who_why_and_until(client):
    sign_in_verified(client, UserFactory(is_superuser=True, is_staff=True))
    camera = CameraFactory()
    start = timezone.now() - dt.timedelta(days=1)
    until = timezone.now() + dt.timedelta(days=30)
    principal = UserFactory(username="principal")
    hold_create(cameras=[camera], start=start, end=start + dt.timedelta(hours=1),
                reason="Parent complaint 4411", by=principal, until=until)  # fmt: skip
    gone = hold_create(cameras=[camera], start=start, end=start + dt.timedelta(hours=1),
                       reason="Vandalism", by=principal)  # fmt: skip
    hold_release(hold=gone, by=principal, reason="Insurer has the copy")

    page = client.get(f"/admin/cameras/camera/{camera.pk}/change/").content.decode()

    assert "Holds on this camera" in page and "Held footage" in page
    assert "Parent complaint 4411" in page and "principal" in page
    assert f"{until:%Y-%m-%d %H:%M}" in page and "in force" in page
    assert "Vandalism" in page and "by principal: Insurer has the copy" in page


def test_an_incidents_automatic_hold_shows_its_incident_on_every_hold_page(client):
    sign_in_verified(client, UserFactory(is_superuser=True, is_staff=True))
    camera = CameraFactory()
    incident = incident_open(
        campus=camera.building.campus, title="Break-in at the library", by=None,
        responder_groups=[], grant_hours=1,
    )  # fmt: skip
    hold = Hold.objects.get(incident=incident)
    who = f"incident {incident.pk}: Break-in at the library"
    link = f'<a href="/admin/responder/incident/{incident.pk}/change/">Break-in at the library</a>'

    holds = client.get("/admin/recording/hold/").content.decode()
    camera_page = client.get(f"/admin/cameras/camera/{camera.pk}/change/").content.decode()
    storage = client.get(reverse("admin:recording_storage")).content.decode()

    row = next(row for row in holds.split("<tr") if f"/admin/recording/hold/{hold.pk}/" in row)
    assert who in row and link in row and "Incident" in row
    assert who in camera_page and "while the incident is open" in camera_page
    assert who in storage
