"""Events mode and retention over real segment files in a real PostgreSQL index."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from accesslog.models import DoorCamera, Event
from responder.recording.models import (
    Gap,
    GapReason,
    Hold,
    HoldSource,
    RecordingMode,
    RecordingPolicy,
    Segment,
    SegmentKind,
)
from responder.recording.policy import policy_default
from responder.recording.retention import buffer_sweep, orphans_sweep, retention_sweep
from responder.recording.services import hold_create
from tests.factories import CameraFactory, DoorFactory, event_store
from tests.recording.retention_helpers import decodes, on_disk, segment_write

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _recordings(settings, tmp_path):
    settings.RECORDINGS_ROOT = tmp_path / "recordings"


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def events_camera(clock):
    """An events-mode camera watching a door, with 20 minutes of buffer up to now."""
    default = policy_default()
    default.mode = RecordingMode.EVENTS
    default.save()
    camera = CameraFactory()
    door = DoorFactory(building=camera.building)
    DoorCamera.objects.create(door=door, camera=camera)
    for minute in range(20, 0, -1):
        segment_write(camera, NOW - minute * MINUTE, kind=SegmentKind.BUFFER)
    return camera, door


def event_at(door, type: str, severity: str, at: datetime) -> None:
    event = event_store(door, type, severity)
    Event.objects.filter(pk=event.pk).update(occurred_at=at)


def kinds(camera) -> dict[int, str]:
    """Minutes before NOW at which each remaining segment starts -> its kind."""
    return {int((NOW - s.start) / MINUTE): s.kind for s in Segment.objects.filter(camera=camera)}


def test_buffer_around_a_door_alarm_becomes_event_footage_and_the_rest_goes(events_camera):
    camera, door = events_camera
    event_at(door, "door_forced", "alarm", NOW - 10 * MINUTE)
    files = {s.start: on_disk(s) for s in Segment.objects.all()}

    outcome = buffer_sweep()

    # Pre-roll 30 s and post-roll 60 s around 10 min ago: the segments from 11 and 10 min ago.
    remaining = kinds(camera)
    assert {m for m, kind in remaining.items() if kind == SegmentKind.EVENT} == {11, 10}
    # Buffer older than pre-roll + the margin for late events is gone, the recent stays.
    assert {m for m, kind in remaining.items() if kind == SegmentKind.BUFFER} == {6, 5, 4, 3, 2, 1}
    assert (outcome.promoted, outcome.deleted) == (2, 12)
    for start, path in files.items():
        assert path.exists() == Segment.objects.filter(start=start).exists()
    assert decodes(on_disk(Segment.objects.get(start=NOW - 10 * MINUTE))) == 10


def test_only_the_event_types_it_selected_keep_footage_besides_alarms(events_camera):
    camera, door = events_camera
    event_at(door, "access_granted", "info", NOW - 15 * MINUTE)
    buffer_sweep()
    assert SegmentKind.EVENT not in kinds(camera).values()

    other = CameraFactory(building=camera.building)
    DoorCamera.objects.create(door=door, camera=other)
    RecordingPolicy.objects.create(
        camera=other, mode=RecordingMode.EVENTS, event_types=["access_granted"]
    )
    segment_write(other, NOW - 15 * MINUTE, kind=SegmentKind.BUFFER)
    buffer_sweep()
    assert kinds(other) == {15: SegmentKind.EVENT}


def test_an_incident_keeps_its_cameras_buffer_from_pre_roll_to_post_roll(events_camera, clock):
    from responder.incidents.services import incident_close, incident_open

    camera, _ = events_camera
    clock.move_to(NOW - 8 * MINUTE)
    incident = incident_open(
        campus=camera.building.campus, title="Fight", by=None, responder_groups=[], grant_hours=1
    )
    clock.move_to(NOW - 6 * MINUTE)
    incident_close(incident=incident, by=None)
    Hold.objects.all().delete()  # the incident's own hold would keep them anyway
    clock.move_to(NOW)

    buffer_sweep()

    events = {m for m, kind in kinds(camera).items() if kind == SegmentKind.EVENT}
    # Opened 8 min ago (pre-roll 30 s: the segment of 9 min ago), closed 6 min ago (+60 s).
    assert events == {9, 8, 7, 6}


def test_held_buffer_is_never_deleted(events_camera):
    camera, _ = events_camera
    hold_create(
        cameras=[camera], start=NOW - 18 * MINUTE, end=NOW - 17 * MINUTE - timedelta(seconds=30),
        reason="Case 2026-117", by=None,
    )  # fmt: skip
    buffer_sweep()
    assert set(kinds(camera)) == {18, 6, 5, 4, 3, 2, 1}


def test_retention_deletes_each_kind_after_its_own_days_and_never_held_footage(clock):
    camera = CameraFactory()
    day = timedelta(days=1)
    expired = segment_write(camera, NOW - 31 * day)
    kept = segment_write(camera, NOW - 29 * day)
    event_kept = segment_write(camera, NOW - 31 * day, kind=SegmentKind.EVENT, seconds=30)
    event_expired = segment_write(camera, NOW - 91 * day, kind=SegmentKind.EVENT)
    held = segment_write(camera, NOW - 40 * day)
    released = segment_write(camera, NOW - 41 * day)
    ran_out = segment_write(camera, NOW - 42 * day)
    hold_create(cameras=[camera], start=held.start, end=held.end, reason="Court", by=None)
    hold_create(
        cameras=[camera], start=released.start, end=released.end, reason="Done", by=None
    ).__class__.objects.filter(start=released.start).update(released_at=NOW - day)
    hold_create(
        cameras=[camera], start=ran_out.start, end=ran_out.end, reason="Week", by=None,
        until=NOW - day,
    )  # fmt: skip
    other_hold_camera = CameraFactory()
    hold_create(
        cameras=[other_hold_camera], start=expired.start, end=expired.end, reason="x", by=None
    )

    assert retention_sweep() == 4

    assert set(Segment.objects.values_list("pk", flat=True)) == {kept.pk, event_kept.pk, held.pk}
    for gone in (expired, event_expired, released, ran_out):
        assert not on_disk(gone).exists()
    for stays in (kept, event_kept, held):
        assert on_disk(stays).exists()


def test_a_camera_policy_of_its_own_wins_over_the_default(clock):
    short, default = CameraFactory(), CameraFactory()
    RecordingPolicy.objects.create(camera=short, continuous_retention_days=1)
    segment_write(short, NOW - timedelta(days=2))
    segment_write(default, NOW - timedelta(days=2))

    retention_sweep()

    assert list(Segment.objects.values_list("camera", flat=True)) == [default.pk]


def test_files_without_a_row_are_swept_once_old_but_never_partial_or_indexed_ones(clock, settings):
    camera = CameraFactory()
    indexed = on_disk(segment_write(camera, NOW - timedelta(hours=3)))
    folder = indexed.parent
    orphan, fresh_orphan, partial = (folder / n for n in ("a.ts", "b.ts", "c.ts.partial"))
    for path in (orphan, fresh_orphan, partial):
        path.write_bytes(b"\x47" * 188)
    old = (NOW - timedelta(hours=2)).timestamp()
    for path in (indexed, orphan, partial):
        os.utime(path, (old, old))
    os.utime(fresh_orphan, (NOW.timestamp(), NOW.timestamp()))

    assert orphans_sweep() == 1

    assert not orphan.exists()
    assert indexed.exists() and fresh_orphan.exists() and partial.exists()


def test_an_empty_folder_of_a_past_day_goes_but_not_today(clock, settings):
    root = settings.RECORDINGS_ROOT
    (root / "7" / "2026-11-01").mkdir(parents=True)
    (root / "7" / NOW.date().isoformat()).mkdir(parents=True)
    orphans_sweep()
    assert [p.name for p in (root / "7").iterdir()] == [NOW.date().isoformat()]


def test_holds_a_user_places_are_audited(clock):
    from responder.core.models import AuditEntry

    camera = CameraFactory()
    hold = hold_create(
        cameras=[camera], start=NOW - MINUTE, end=NOW, reason="Case 1", by=None,
        source=HoldSource.MANUAL,
    )  # fmt: skip
    [entry] = AuditEntry.objects.filter(action="hold.placed")
    assert entry.details["cameras"] == [camera.pk] and entry.details["reason"] == "Case 1"
    assert Hold.objects.active().get() == hold


def test_gaps_older_than_all_kept_footage_go_with_it(clock):
    camera = CameraFactory()
    old = Gap.objects.create(
        camera=camera, start=NOW - timedelta(days=100), end=NOW - timedelta(days=95),
        reason=GapReason.SOURCE_DOWN,
    )  # fmt: skip
    recent = Gap.objects.create(
        camera=camera, start=NOW - timedelta(days=60), end=NOW - timedelta(days=59),
        reason=GapReason.SOURCE_DOWN,
    )  # fmt: skip
    segment_write(camera, NOW - timedelta(days=1))
    retention_sweep()
    assert list(Gap.objects.all()) == [recent] and old.pk
