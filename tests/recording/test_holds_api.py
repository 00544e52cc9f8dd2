"""POST/GET /api/v1/holds and DELETE /api/v1/holds/<id> (issue 17): scope, input, audit."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator

from responder.core.audit import audit_verify
from responder.core.models import AuditEntry
from responder.incidents.services import incident_close, incident_open
from responder.recording.models import Hold, HoldSource, Segment
from responder.recording.retention import retention_sweep
from responder.recording.services import hold_create
from tests.factories import BuildingFactory, CameraFactory, UserFactory
from tests.recording.playback_helpers import verified_client, viewer
from tests.recording.retention_helpers import segment_write

pytestmark = pytest.mark.django_db

URL = "/api/v1/holds"
START = dt.datetime(2026, 11, 20, 14, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _recordings(settings, tmp_path):
    settings.RECORDINGS_ROOT = tmp_path / "recordings"


@pytest.fixture
def school():
    """Two cameras of one building a principal exports from, one camera elsewhere."""
    main = BuildingFactory(name="Main")
    cameras = [CameraFactory(building=main), CameraFactory(building=main)]
    return {
        "cameras": cameras,
        "elsewhere": CameraFactory(),
        "client": viewer(cameras[0], ["export"]),
    }


def body(cameras, /, **fields):
    return {
        "cameras": [camera.pk for camera in cameras],
        "start": START.isoformat(),
        "end": (START + dt.timedelta(hours=24)).isoformat(),
        "reason": "Fight in the cafeteria, parent complaint 4411",
        "until": None,
        **fields,
    }


def post(client, data):
    return client.post(URL, data, content_type="application/json")


def release(client, hold_id, data):
    return client.delete(f"{URL}/{hold_id}", data, content_type="application/json")


def test_a_user_with_export_places_a_hold_on_cameras_in_scope(school):
    client = school["client"]

    response = post(client, body(school["cameras"]))

    assert response.status_code == 201, response.content
    answer = response.json()
    hold = Hold.objects.get(pk=answer["id"])
    assert set(hold.cameras.all()) == set(school["cameras"])
    assert (hold.start, hold.end, hold.until) == (START, START + dt.timedelta(hours=24), None)
    assert (hold.source, hold.created_by) == (HoldSource.MANUAL, client.user)
    assert answer["cameras"] == sorted(c.pk for c in school["cameras"])
    assert answer["created_by"] == client.user.username and answer["active"] is True
    row = AuditEntry.objects.get(action="hold.placed", object_id=str(hold.pk))
    assert row.username == client.user.username
    assert row.details["cameras"] == answer["cameras"]
    assert row.details["reason"] == "Fight in the cafeteria, parent complaint 4411"


def test_until_lets_a_hold_lapse_by_itself(school):
    until = timezone.now() + dt.timedelta(days=90)

    answer = post(school["client"], body(school["cameras"], until=until.isoformat())).json()

    assert Hold.objects.get(pk=answer["id"]).until == until
    assert dt.datetime.fromisoformat(answer["until"]) == until


def test_a_camera_out_of_scope_answers_404_and_nothing_is_held(school):
    client = school["client"]

    mixed = post(client, body([school["cameras"][0], school["elsewhere"]]))
    unknown = post(client, body(school["cameras"], cameras=[school["cameras"][0].pk, 999999]))

    assert (mixed.status_code, unknown.status_code) == (404, 404)
    assert mixed.json() == unknown.json() == {"detail": "No such camera."}
    assert not Hold.objects.exists()
    assert not AuditEntry.objects.filter(action="hold.placed").exists()


def test_recorded_video_without_export_cannot_hold(school):
    client = viewer(school["cameras"][0], ["recorded", "live"])

    assert post(client, body(school["cameras"])).status_code == 404
    assert client.get(URL).json() == []
    assert not Hold.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"end": START.isoformat()}, "end", "after start"),
        ({"cameras": []}, "cameras", "empty"),
        ({"cameras": ["lobby"]}, "cameras", "integer"),
        ({"reason": ""}, "reason", "blank"),
        ({"start": "yesterday"}, "start", "format"),
        ({"until": "2020-01-01T00:00:00Z"}, "until", "future"),
    ],
)
def test_bad_input_answers_400_with_the_reason_and_holds_nothing(school, fields, field, words):
    response = post(school["client"], body(school["cameras"], **fields))

    assert response.status_code == 400
    assert words in str(response.json()[field])
    assert not Hold.objects.exists()


def test_the_list_shows_holds_on_cameras_in_scope_with_only_those_cameras(school):
    mine, theirs = school["cameras"][0], school["elsewhere"]
    it = UserFactory(username="it-staff")
    shared = hold_create(cameras=[mine, theirs], start=START, end=START, reason="Both", by=it)
    hold_create(cameras=[theirs], start=START, end=START, reason="Not yours", by=it)

    listed = school["client"].get(URL).json()

    assert [(h["id"], h["cameras"], h["reason"]) for h in listed] == [
        (shared.pk, [mine.pk], "Both")
    ]
    assert listed[0]["created_by"] == "it-staff" and listed[0]["source"] == "manual"


def test_the_list_shows_released_holds_unless_asked_for_active_ones(school):
    client = school["client"]
    kept = post(client, body(school["cameras"])).json()["id"]
    gone = post(client, body(school["cameras"])).json()["id"]
    release(client, gone, {"reason": "Complaint withdrawn"})

    everything = {h["id"]: h for h in client.get(URL).json()}
    active = [h["id"] for h in client.get(URL + "?active=true").json()]

    assert active == [kept]
    assert everything[gone]["active"] is False
    assert everything[gone]["release_reason"] == "Complaint withdrawn"
    assert everything[gone]["released_by"] == client.user.username


def test_releasing_needs_a_reason_and_is_audited_with_it(school):
    client = school["client"]
    hold_id = post(client, body(school["cameras"])).json()["id"]

    refused = release(client, hold_id, {})
    assert refused.status_code == 400 and "required" in str(refused.json()["reason"])
    assert Hold.objects.get(pk=hold_id).released_at is None

    assert release(client, hold_id, {"reason": "Complaint withdrawn"}).status_code == 204
    hold = Hold.objects.get(pk=hold_id)
    assert hold.released_by == client.user and hold.release_reason == "Complaint withdrawn"
    assert not Hold.objects.active().filter(pk=hold_id).exists()
    row = AuditEntry.objects.get(action="hold.released")
    assert (row.object_id, row.username) == (str(hold_id), client.user.username)
    assert row.details["release_reason"] == "Complaint withdrawn"
    again = release(client, hold_id, {"reason": "twice"})
    assert again.status_code == 409 and "already released" in again.json()["detail"]
    assert audit_verify() is None


def lockdown(school):
    """An incident on the school's campus: it holds the campus's cameras by itself."""
    campus = school["cameras"][0].building.campus
    return incident_open(campus=campus, title="Lockdown", by=None, responder_groups=[],
                         grant_hours=2)  # fmt: skip


def test_an_incidents_automatic_hold_is_listed_with_its_incident(school):
    incident = lockdown(school)

    listed = school["client"].get(URL + "?active=true").json()

    assert [(h["source"], h["incident"], h["incident_title"]) for h in listed] == [
        ("incident", incident.pk, "Lockdown")
    ]
    assert listed[0]["created_by"] is None and listed[0]["end"] is None
    assert listed[0]["cameras"] == sorted(c.pk for c in school["cameras"])


def test_an_open_incidents_hold_is_released_only_after_it_closes(school):
    incident = lockdown(school)
    hold = Hold.objects.get(incident=incident)
    client = school["client"]
    assert client.get(f"{URL}/{hold.pk}").json()["end"] is None

    refused = release(client, hold.pk, {"reason": "done"})
    assert refused.status_code == 409
    assert f"incident {incident.pk}, which is still open" in refused.json()["detail"]
    assert Hold.objects.get(pk=hold.pk).released_at is None

    incident_close(incident=incident, by=None)
    assert release(client, hold.pk, {"reason": "Reviewed, nothing to keep"}).status_code == 204
    row = AuditEntry.objects.get(action="hold.released")
    assert row.details["incident"] == incident.pk


def test_a_hold_out_of_scope_is_404_and_one_reaching_beyond_it_is_refused(school):
    it = UserFactory(username="it-staff")
    hidden = hold_create(cameras=[school["elsewhere"]], start=START, end=START, reason="x", by=it)
    wider = hold_create(
        cameras=[school["cameras"][0], school["elsewhere"]], start=START, end=START, reason="y",
        by=it,
    )  # fmt: skip
    client = school["client"]

    assert release(client, hidden.pk, {"reason": "mine now"}).status_code == 404
    assert client.get(f"{URL}/{hidden.pk}").status_code == 404
    assert release(client, wider.pk, {"reason": "mine now"}).status_code == 403
    assert not Hold.objects.filter(released_at__isnull=False).exists()


def test_every_path_needs_the_second_factor(client, school):
    hold = hold_create(cameras=school["cameras"], start=START, end=START, reason="x", by=None)
    client.force_login(UserFactory(is_superuser=True))

    assert post(client, body(school["cameras"])).status_code == 403
    assert client.get(URL).status_code == 403
    assert release(client, hold.pk, {"reason": "x"}).status_code == 403
    assert Hold.objects.count() == 1 and Hold.objects.active().count() == 1


def test_retention_keeps_footage_held_through_the_api(school, settings):
    camera = school["cameras"][0]
    old = timezone.now() - dt.timedelta(days=40)
    held = segment_write(camera, old)
    unheld = segment_write(camera, old - dt.timedelta(hours=2))
    window = {"start": (old - dt.timedelta(minutes=1)).isoformat(),
              "end": (old + dt.timedelta(minutes=2)).isoformat()}  # fmt: skip
    assert post(school["client"], body([camera], **window)).status_code == 201

    retention_sweep()

    assert set(Segment.objects.all()) == {held}
    assert unheld.pk not in set(Segment.objects.values_list("id", flat=True))


def test_the_holds_endpoints_have_a_schema_without_warnings():
    from django.urls import include, path

    from responder.recording.urls import urlpatterns

    GENERATOR_STATS.reset()
    patterns = [path("api/v1/", include(urlpatterns))]

    schema = SchemaGenerator(patterns=patterns).get_schema(request=None, public=True)

    assert not GENERATOR_STATS, "drf-spectacular reported warnings or errors"
    assert {"/api/v1/holds", "/api/v1/holds/{hold_id}"} <= set(schema["paths"])
    assert {"post", "get"} <= set(schema["paths"]["/api/v1/holds"])
    assert "delete" in schema["paths"]["/api/v1/holds/{hold_id}"]


def test_a_superuser_verified_holds_any_camera(school):
    client = verified_client(UserFactory(is_superuser=True))

    assert post(client, body([school["elsewhere"], *school["cameras"]])).status_code == 201
