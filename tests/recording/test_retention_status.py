"""Storage status: GET /api/v1/recording/status for district IT, the admin's pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from responder.recording.models import RecordingMode, RecordingPolicy, RecordingStop, SegmentKind
from responder.recording.policy import policy_default
from responder.recording.services import hold_create
from tests.factories import CameraFactory, GrantFactory, UserFactory, sign_in_verified
from tests.recording.retention_helpers import segment_write, ts_bytes

pytestmark = pytest.mark.django_db

STATUS = "/api/v1/recording/status"
NOW = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _recordings(settings, tmp_path):
    settings.RECORDINGS_ROOT = tmp_path / "recordings"


@pytest.fixture
def store():
    """Two cameras: the lobby's 4 segments over 2 days (one held), the gym's one buffer."""
    lobby, gym = CameraFactory(name="Lobby"), CameraFactory(name="Gym")
    RecordingPolicy.objects.create(camera=gym, mode=RecordingMode.EVENTS, priority=10)
    with time_machine.travel(NOW, tick=False):
        segments = [segment_write(lobby, NOW - hours * HOUR) for hours in (48, 30, 12, 2)]
        segment_write(gym, NOW - HOUR, kind=SegmentKind.BUFFER)
        hold_create(
            cameras=[lobby], start=NOW - 13 * HOUR, end=NOW - 11 * HOUR, reason="x", by=None
        )
        RecordingStop.objects.create(camera=gym, reason="Only held footage left")
    return {"lobby": lobby, "gym": gym, "segments": segments}


def it_client(client):
    sign_in_verified(client, UserFactory(is_superuser=True, is_staff=True))
    return client


def test_district_it_gets_bytes_held_days_growth_and_stops(client, store):
    size = len(ts_bytes())
    with time_machine.travel(NOW, tick=False):
        body = it_client(client).get(STATUS).json()

    cameras = {c["name"]: c for c in body["cameras"]}
    lobby, gym = cameras["Lobby"], cameras["Gym"]
    assert (lobby["bytes"], lobby["held_bytes"], lobby["segments"]) == (4 * size, size, 4)
    assert (lobby["days_held"], lobby["mode"], lobby["stopped_since"]) == (2.0, "continuous", None)
    # Two segments started within the last day: that is the day's growth.
    assert lobby["daily_growth_bytes"] == 2 * size
    # Buffer footage is deleted as it ages: it takes space but is not growth.
    assert (gym["bytes"], gym["buffer_bytes"], gym["daily_growth_bytes"]) == (size, size, 0)
    assert gym["mode"] == "events" and gym["stopped_since"] == NOW.isoformat()
    assert body["recorded_bytes"] == 5 * size and body["held_bytes"] == size
    assert body["daily_growth_bytes"] == 2 * size
    fs = body["filesystem"]
    assert 0 < fs["free_bytes"] <= fs["total_bytes"] and fs["min_free_percent"] == 10
    usable = fs["free_bytes"] - fs["total_bytes"] * 0.10
    assert body["days_until_guard_deletes"] == pytest.approx(usable / (2 * size), rel=0.01)
    assert body["days_that_fit"] == pytest.approx((4 * size + usable) / (2 * size), rel=0.01)
    assert body["stopped"] == [
        {
            "camera": store["gym"].pk,
            "name": "Gym",
            "since": NOW.isoformat(),
            "reason": "Only held footage left",
        }
    ]


def test_a_district_manage_grant_is_district_it_too(client, store):
    user = UserFactory()
    GrantFactory(user=user, capabilities=["manage"])
    sign_in_verified(client, user)
    assert client.get(STATUS).status_code == 200


@pytest.mark.parametrize("grant", [["live", "recorded", "export"], ["manage"]])
def test_anyone_else_is_refused(client, store, grant):
    user = UserFactory()
    scoped = {"campus": store["lobby"].building.campus} if grant == ["manage"] else {}
    GrantFactory(user=user, capabilities=grant, **scoped)
    sign_in_verified(client, user)

    response = client.get(STATUS)

    assert response.status_code == 403
    assert response.json() == {"detail": "District IT only."}


def test_a_session_without_its_second_factor_is_refused(client, store):
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    assert client.get(STATUS).status_code == 403


def test_the_admin_storage_page_shows_cameras_holds_and_the_stop_warning(client, store):
    response = it_client(client).get("/admin/recording/recordingpolicy/storage/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Lobby" in page and "Gym" in page
    assert "only held footage" in page and 'id="recording-stopped"' in page


def test_the_admin_lists_the_district_default_and_holds(client, store):
    client = it_client(client)
    policies = client.get("/admin/recording/recordingpolicy/").content.decode()
    assert "District default" in policies and "Storage status" in policies
    assert "The disk guard stopped recording 1 camera(s)" in policies
    holds = client.get("/admin/recording/hold/").content.decode()
    assert ">x<" in holds


def test_the_camera_admin_edits_its_own_recording_policy(client):
    camera = CameraFactory(name="Gate")
    client = it_client(client)
    page = client.get(f"/admin/cameras/camera/{camera.pk}/change/").content.decode()
    assert "recording_policy-TOTAL_FORMS" in page

    form = {
        "name": "Gate", "enabled": "on", "vendor": "axis", "building": camera.building_id,
        "main_stream_url": camera.main_stream_url, "sub_stream_url": "", "heading": "0",
        "field_of_view": "90", "recording_policy-TOTAL_FORMS": "1",
        "recording_policy-INITIAL_FORMS": "0", "recording_policy-MIN_NUM_FORMS": "0",
        "recording_policy-MAX_NUM_FORMS": "1", "recording_policy-0-mode": "events",
        "recording_policy-0-continuous_retention_days": "7",
        "recording_policy-0-event_retention_days": "180",
        "recording_policy-0-pre_roll_seconds": "45", "recording_policy-0-post_roll_seconds": "90",
        "recording_policy-0-event_types": ["access_denied", "door_held"],
        "recording_policy-0-priority": "20",
    }  # fmt: skip
    response = client.post(f"/admin/cameras/camera/{camera.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()[-3000:]
    policy = RecordingPolicy.objects.get(camera=camera)
    assert (policy.mode, policy.pre_roll_seconds, policy.event_retention_days) == (
        "events",
        45,
        180,
    )
    assert sorted(policy.event_types) == ["access_denied", "door_held"]
    assert policy_default().mode == "continuous"


def test_the_district_default_cannot_be_deleted_in_the_admin(client):
    default = policy_default()
    client = it_client(client)
    assert client.get(f"/admin/recording/recordingpolicy/{default.pk}/delete/").status_code == 403
    page = client.get("/admin/recording/recordingpolicy/").content.decode()
    assert "delete_selected" not in page
