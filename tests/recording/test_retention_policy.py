"""Which policy a camera follows, what recorders record, and the demo's recording."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from cameras.models import Camera
from responder.recording.models import RecordingMode, RecordingPolicy, RecordingStop
from responder.recording.policy import cameras_to_record, policies_for, policy_default, policy_for
from tests.factories import CameraFactory

pytestmark = pytest.mark.django_db


def test_the_district_default_is_made_once_on_first_use():
    assert not RecordingPolicy.objects.exists()
    first = policy_default()
    assert policy_default() == first
    assert (first.camera, first.mode, first.pre_roll_seconds, first.post_roll_seconds) == (
        None, RecordingMode.CONTINUOUS, 30, 60,
    )  # fmt: skip
    assert RecordingPolicy.objects.count() == 1


def test_a_camera_follows_its_own_policy_or_else_the_default():
    own, other = CameraFactory(), CameraFactory()
    mine = RecordingPolicy.objects.create(camera=own, mode=RecordingMode.OFF)
    assert policy_for(own) == mine
    assert policy_for(other) == policy_default()
    assert policies_for([own.pk, other.pk]) == {own.pk: mine, other.pk: policy_default()}


def test_recorders_record_enabled_cameras_not_off_and_not_stopped():
    recorded = CameraFactory()
    CameraFactory(enabled=False)
    RecordingPolicy.objects.create(camera=CameraFactory(), mode=RecordingMode.OFF)
    RecordingStop.objects.create(camera=CameraFactory(), reason="disk")
    events = CameraFactory()
    RecordingPolicy.objects.create(camera=events, mode=RecordingMode.EVENTS)
    assert set(cameras_to_record()) == {recorded, events}

    default = policy_default()
    default.mode = RecordingMode.OFF
    default.save()
    assert set(cameras_to_record()) == {events}


def test_the_demo_records_the_high_schools_entrances_continuously_its_other_cameras_around_events(
    settings,
):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    for _ in range(2):  # idempotent
        call_command("seed_demo", camera_base_url="http://cameras.test:8554", stdout=io.StringIO())

    continuous = RecordingPolicy.objects.filter(mode=RecordingMode.CONTINUOUS)
    names = sorted(continuous.values_list("camera__name", flat=True))
    assert len(names) == 4 and all("Entrance" in name for name in names)
    assert policy_default().mode == RecordingMode.OFF
    high_school = Camera.objects.filter(building__campus__name="Riverside High School")
    assert 4 < high_school.count() < Camera.objects.count()
    assert set(cameras_to_record()) == set(high_school)
    events = RecordingPolicy.objects.filter(mode=RecordingMode.EVENTS)
    assert events.count() == high_school.count() - 4
