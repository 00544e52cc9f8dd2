"""The disk guard on a real small filesystem (a 20 MiB tmpfs mounted for the test).

The oldest unheld footage goes first; held footage never goes; when only held footage is
left the lowest-priority cameras stop and district IT is warned on a real socket through
a real daphne; when space returns, they record again.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from responder.recording.guard import disk_guard, free_percent, recording_stop_lowest
from responder.recording.models import Gap, GapReason, RecordingPolicy, RecordingStop, Segment
from responder.recording.policy import cameras_to_record
from responder.recording.services import hold_create
from tests.factories import CameraFactory, UserFactory
from tests.recording.retention_helpers import on_disk, segment_write
from tests.security.test_incidents import live_on, warning_on

NOW = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def small_disk(tmp_path, settings):
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)], check=True)
    settings.RECORDINGS_ROOT = mount
    settings.RECORDINGS_MIN_FREE_PERCENT = 30
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def ballast(disk: Path, *, leave_free_percent: float) -> Path:
    """Fills the disk with something other than recordings, down to this much free."""
    total = os.statvfs(disk).f_blocks * os.statvfs(disk).f_frsize
    path = disk / f"ballast-{len(list(disk.glob('ballast*')))}"
    free = total * free_percent(disk) / 100
    path.write_bytes(b"\0" * int(free - total * leave_free_percent / 100))
    return path


def store(small_disk) -> dict:
    """Nine segments of about 1.2 MB: an unheld camera's six oldest, a held camera's three."""
    unheld, held = CameraFactory(name="Parking"), CameraFactory(name="Lobby")
    RecordingPolicy.objects.create(camera=held, priority=50)
    start = NOW - timedelta(hours=1)
    old = [segment_write(unheld, start + i * MINUTE, noise=True) for i in range(6)]
    kept = [segment_write(held, start + i * MINUTE, noise=True) for i in range(3)]
    hold_create(cameras=[held], start=start, end=NOW, reason="Case 2026-117", by=None)
    return {"unheld": unheld, "held": held, "old": old, "kept": kept}


@pytest.mark.django_db
def test_the_oldest_unheld_footage_goes_until_enough_is_free(small_disk):
    footage = store(small_disk)
    ballast(small_disk, leave_free_percent=25)

    outcome = disk_guard()

    assert outcome.free_percent >= 30 and 1 <= outcome.deleted < 6
    gone = footage["old"][: outcome.deleted]
    assert not Segment.objects.filter(pk__in=[s.pk for s in gone]).exists()
    assert all(not on_disk(s).exists() for s in gone)
    assert Segment.objects.filter(camera=footage["unheld"]).count() == 6 - outcome.deleted
    assert all(on_disk(s).exists() for s in footage["kept"])
    # What went before its time is a gap on the timeline, with its reason.
    [gap] = Gap.objects.filter(reason=GapReason.DELETED)
    assert (gap.camera, gap.start, gap.end) == (footage["unheld"], gone[0].start, gone[-1].end)
    assert not RecordingStop.objects.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_only_held_footage_left_stops_the_lowest_priority_and_warns_it(small_disk, daphne):
    footage = await database_sync_to_async(store)(small_disk)
    it_user = await database_sync_to_async(UserFactory)(
        username="it", is_superuser=True, is_staff=True
    )
    ws = await live_on(daphne, it_user)
    try:
        ballast(small_disk, leave_free_percent=5)
        first = await database_sync_to_async(disk_guard)()
        # Below the minimum of 30% once the last unheld footage is gone, not by much.
        filler = ballast(small_disk, leave_free_percent=22)

        outcome = await database_sync_to_async(disk_guard)()
        warning = await warning_on(ws)
    finally:
        await ws.close()

    assert first.deleted >= 1 and first.stopped == []
    assert outcome.deleted == 6 - first.deleted and outcome.free_percent < 30
    assert (
        await database_sync_to_async(Segment.objects.filter(camera=footage["unheld"]).exists)()
        is False
    )
    held = await database_sync_to_async(lambda: set(Segment.objects.all()))()
    assert held == set(footage["kept"]) and all(on_disk(s).exists() for s in held)
    # The held camera has priority 50, below the default 100: only it stops, a little
    # short of the minimum; the other records on.
    assert outcome.stopped == [footage["held"].pk]
    assert warning["kind"] == "recording.stopped"
    assert warning["details"]["cameras"] == [footage["held"].pk]
    recorded = await database_sync_to_async(lambda: set(cameras_to_record()))()
    assert recorded == {footage["unheld"]}

    filler.unlink()
    outcome = await database_sync_to_async(disk_guard)()

    assert outcome.resumed == [footage["held"].pk]
    assert not await database_sync_to_async(RecordingStop.objects.exists)()
    gap = await database_sync_to_async(Gap.objects.get)(reason=GapReason.DISK_FULL)
    assert gap.camera_id == footage["held"].pk and gap.end is not None
    assert gap.end <= timezone.now()


@pytest.mark.django_db
def test_the_further_below_the_minimum_the_more_priority_tiers_stop():
    low, middle, high = (CameraFactory() for _ in range(3))
    for camera, priority in ((low, 10), (middle, 50), (high, 100)):
        RecordingPolicy.objects.create(camera=camera, priority=priority)

    assert recording_stop_lowest(free=9, minimum=10) == [low.pk]
    assert recording_stop_lowest(free=9, minimum=10) == []  # steady: nothing more
    assert recording_stop_lowest(free=5, minimum=10) == [middle.pk]
    assert recording_stop_lowest(free=0, minimum=10) == [high.pk]
    assert Gap.objects.filter(reason=GapReason.DISK_FULL, end__isnull=True).count() == 3
    assert not cameras_to_record().exists()
