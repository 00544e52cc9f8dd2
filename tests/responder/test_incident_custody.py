"""GET /api/v1/incidents/<id>/custody: the audit rows touching an incident's footage."""

import datetime as dt

import pytest
from django.utils import timezone

from responder.core.audit import audit_record, audit_verify
from responder.core.models import AuditEntry, ResponderRole
from responder.incidents.services import incident_close, incident_open
from responder.recording.models import Hold
from responder.recording.services import hold_release
from tests.factories import (
    BuildingFactory,
    CameraFactory,
    GrantFactory,
    GroupFactory,
    UserFactory,
)
from tests.recording.playback_helpers import (
    recording_make,
    recordings_isolated,
    verified_client,
    viewer,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _recordings(settings, tmp_path):
    recordings_isolated(settings, tmp_path)


@pytest.fixture
def school():
    """A camera recording on a campus since 2 min ago (and a day ago); one elsewhere."""
    building = BuildingFactory()
    camera, elsewhere = CameraFactory(building=building), CameraFactory()
    now = timezone.now().replace(microsecond=0)
    recent, old = now - dt.timedelta(minutes=2), now - dt.timedelta(days=1)
    for cam in (camera, elsewhere):
        recording_make(cam, recent, seconds=10, segment_seconds=10)
    recording_make(camera, old, seconds=10, segment_seconds=10)
    dispatch = UserFactory(username="dispatch")
    GrantFactory(user=dispatch, capabilities=["incidents"], campus=building.campus)
    incident = incident_open(
        campus=building.campus, title="Break-in", by=dispatch, responder_groups=[],
        grant_hours=2,
    )  # fmt: skip
    return {"camera": camera, "elsewhere": elsewhere, "recent": recent, "old": old,
            "incident": incident, "dispatch": dispatch}  # fmt: skip


def custody_url(incident_id) -> str:
    return f"/api/v1/incidents/{incident_id}/custody"


def play(client, camera, start):
    body = {"start": start.isoformat(), "profile": "source"}
    response = client.post(f"/api/v1/cameras/{camera.pk}/playback", body, "application/json")
    assert response.status_code == 200, response.content


def frame(client, camera, at):
    url = f"/api/v1/cameras/{camera.pk}/recordings/frame?at={at.isoformat()}"
    assert client.get(url.replace("+", "%2B")).status_code == 200


def test_it_lists_views_of_its_footage_its_holds_and_rows_naming_it(school):
    camera, incident = school["camera"], school["incident"]
    officer = viewer(camera, ("recorded",))
    play(officer, camera, school["recent"])
    frame(officer, camera, school["recent"] + dt.timedelta(seconds=3))
    play(officer, camera, school["old"])  # the same camera, a day before: not its footage
    play(viewer(school["elsewhere"], ("recorded",)), school["elsewhere"], school["recent"])
    audit_record(action="evidence.exported", username="principal",
                 details={"incident": incident.pk, "export": 4})  # fmt: skip
    audit_record(action="evidence.exported", username="principal",
                 details={"incident": incident.pk + 1})  # fmt: skip
    incident_close(incident=incident, by=school["dispatch"])
    hold_release(hold=Hold.objects.get(incident=incident), by=school["dispatch"], reason="done")

    response = verified_client(school["dispatch"]).get(custody_url(incident.pk))

    assert response.status_code == 200
    rows = response.json()
    assert [(row["action"], row["username"]) for row in rows] == [
        ("hold.placed", ""),
        ("video.recorded", officer.user.username),
        ("video.recorded_frame", officer.user.username),
        ("evidence.exported", "principal"),
        ("hold.extended", ""),
        ("hold.released", "dispatch"),
    ]
    assert rows[1]["object_id"] == str(camera.pk) and rows[1]["ip"] == "127.0.0.1"
    assert rows[3]["details"] == {"incident": incident.pk, "export": 4}
    assert rows[5]["details"]["release_reason"] == "done"


def test_every_recorded_view_and_hold_is_a_chained_row(school):
    camera, incident = school["camera"], school["incident"]
    officer = viewer(camera, ("recorded",))
    play(officer, camera, school["recent"])
    frame(officer, camera, school["recent"])

    rows = verified_client(school["dispatch"]).get(custody_url(incident.pk)).json()

    stored = AuditEntry.objects.in_bulk([row["id"] for row in rows])
    assert {row["action"] for row in rows} == {"hold.placed", "video.recorded",
                                               "video.recorded_frame"}  # fmt: skip
    assert all(row["hash"] == stored[row["id"]].hash != "" for row in rows)
    assert audit_verify() is None


def test_an_assigned_responder_sees_it_and_others_get_404(school):
    incident = school["incident"]
    fire = GroupFactory(name="fire")
    ResponderRole.objects.create(group=fire, emergency_access=True)
    firefighter = UserFactory(username="firefighter")
    firefighter.groups.add(fire)
    incident.responder_groups.add(fire)
    other_dispatch = UserFactory(username="other-dispatch")
    GrantFactory(user=other_dispatch, capabilities=["incidents"], campus=BuildingFactory().campus)
    recorded_only = UserFactory(username="recorded-only")
    GrantFactory(user=recorded_only, capabilities=["recorded"], campus=incident.campus)

    assert verified_client(firefighter).get(custody_url(incident.pk)).status_code == 200
    for user in (other_dispatch, recorded_only):
        response = verified_client(user).get(custody_url(incident.pk))
        assert response.status_code == 404
    assert verified_client(school["dispatch"]).get(custody_url(999999)).status_code == 404
    assert verified_client(school["dispatch"]).get(custody_url("abc")).status_code == 404


def test_it_needs_the_second_factor(client, school):
    client.force_login(school["dispatch"])

    response = client.get(custody_url(school["incident"].pk))

    assert response.status_code == 403
    assert "hold.placed" not in response.content.decode()


def test_the_custody_endpoint_has_a_schema_without_warnings():
    from django.urls import include, path
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    from responder.incidents.api import IncidentCustody

    GENERATOR_STATS.reset()
    route = path("incidents/<int:pk>/custody", IncidentCustody.as_view())
    patterns = [path("api/v1/", include([route]))]

    schema = SchemaGenerator(patterns=patterns).get_schema(request=None, public=True)

    assert not GENERATOR_STATS, "drf-spectacular reported warnings or errors"
    row = schema["components"]["schemas"]["CustodyRow"]["properties"]
    assert {"action", "username", "details", "prev_hash", "hash"} <= set(row)
