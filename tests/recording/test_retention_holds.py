"""Incidents hold their cameras' footage from 10 min before opening to 10 min after closing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from accesslog.models import EventType
from responder.core.models import IncidentRule
from responder.incidents.services import incident_close, incident_for_alarm, incident_open
from responder.recording.guard import disk_guard
from responder.recording.models import Hold, HoldSource, Segment, SegmentKind
from responder.recording.retention import buffer_sweep, retention_sweep
from responder.recording.services import OPEN_END
from tests.factories import BuildingFactory, CameraFactory, DoorFactory, event_store
from tests.recording.retention_helpers import segment_write

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
TEN = timedelta(minutes=10)


@pytest.fixture(autouse=True)
def _recordings(settings, tmp_path):
    settings.RECORDINGS_ROOT = tmp_path / "recordings"


@pytest.fixture
def campus():
    main = BuildingFactory(name="Main")
    gym = BuildingFactory(campus=main.campus, name="Gym")
    elsewhere = BuildingFactory(name="Other school")
    return {
        "campus": main.campus,
        "main": main,
        "main_camera": CameraFactory(building=main),
        "gym_camera": CameraFactory(building=gym),
        "elsewhere_camera": CameraFactory(building=elsewhere),
    }


def open_incident(campus, **fields):
    return incident_open(
        campus=campus["campus"], title="Lockdown", by=None, responder_groups=[], grant_hours=2,
        **fields,
    )  # fmt: skip


def test_an_open_incident_holds_its_campus_cameras_from_ten_minutes_before(campus):
    with time_machine.travel(NOW, tick=False):
        incident = open_incident(campus)

    hold = Hold.objects.get(incident=incident)
    assert hold.source == HoldSource.INCIDENT
    assert set(hold.cameras.all()) == {campus["main_camera"], campus["gym_camera"]}
    assert (hold.start, hold.end, hold.until) == (NOW - TEN, OPEN_END, None)


def test_closing_ends_the_hold_ten_minutes_after_and_keeps_it(campus):
    with time_machine.travel(NOW, tick=False):
        incident = open_incident(campus)
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        incident_close(incident=incident, by=None)

    hold = Hold.objects.get(incident=incident)
    assert (hold.start, hold.end) == (NOW - TEN, NOW + timedelta(hours=1) + TEN)
    assert Hold.objects.active().filter(pk=hold.pk).exists()


def test_a_building_incident_holds_that_building_only(campus):
    incident = open_incident(campus, building=campus["main"])
    assert list(Hold.objects.get(incident=incident).cameras.all()) == [campus["main_camera"]]


def test_an_incident_a_rule_opens_from_an_alarm_holds_too(campus):
    door = DoorFactory(building=campus["main"])
    IncidentRule.objects.create(
        name="Forced", campus=campus["campus"], event_types=[EventType.DOOR_FORCED]
    )
    incident = incident_for_alarm(event=event_store(door))
    assert Hold.objects.filter(incident=incident, source=HoldSource.INCIDENT).exists()


def test_neither_retention_nor_the_guard_deletes_an_old_incident_footage(campus, settings):
    """Thirty-one days later, the incident's footage is past its retention, and kept."""
    camera = campus["main_camera"]
    with time_machine.travel(NOW, tick=False):
        incident = open_incident(campus)
        before = segment_write(camera, NOW - 9 * TEN)  # 1h30 before: not held
        during = segment_write(camera, NOW - timedelta(minutes=5))
        buffered = segment_write(camera, NOW, kind=SegmentKind.BUFFER)
    with time_machine.travel(NOW + timedelta(minutes=30), tick=False):
        incident_close(incident=incident, by=None)
    with time_machine.travel(NOW + timedelta(days=31), tick=False):
        retention_sweep()
        buffer_sweep()
        settings.RECORDINGS_MIN_FREE_PERCENT = 100  # the guard would delete all it may
        disk_guard()

    assert set(Segment.objects.all()) == {during, buffered}
    assert Segment.objects.get(pk=buffered.pk).kind == SegmentKind.EVENT
    assert not Segment.objects.filter(pk=before.pk).exists()
