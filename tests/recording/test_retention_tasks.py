"""The beat entries of the recording store, run by a real Celery worker on the default queue."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from celery.beat import Scheduler
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from responder.celery import app
from responder.recording.models import RecordingPolicy, RecordingStop, Segment, SegmentKind
from tests.factories import CameraFactory
from tests.recording.retention_helpers import on_disk, segment_write

pytestmark = pytest.mark.django_db(transaction=True)

ENTRIES = {
    "recording-retention": "responder.recording.tasks.recording_retention_sweep",
    "recording-buffer-sweep": "responder.recording.tasks.recording_buffer_sweep",
    "recording-orphans": "responder.recording.tasks.recording_orphans_sweep",
    "recording-disk-guard": "responder.recording.tasks.recording_disk_guard",
}


def test_every_recording_beat_entry_runs_its_sweep_through_a_worker(settings, tmp_path):
    settings.RECORDINGS_ROOT = tmp_path / "recordings"
    settings.RECORDINGS_MIN_FREE_PERCENT = 100  # the guard finds the disk "full" of held footage
    now = timezone.now()
    camera = CameraFactory()
    RecordingPolicy.objects.create(camera=camera, priority=1)
    expired = segment_write(camera, now - timedelta(days=40))
    stale_buffer = segment_write(camera, now - timedelta(hours=1), kind=SegmentKind.BUFFER)
    orphan = on_disk(expired).parent / "orphan.ts"
    orphan.write_bytes(b"\x47" * 188)
    old = (now - timedelta(hours=2)).timestamp()
    os.utime(orphan, (old, old))
    beat = Scheduler(app=app)
    assert {name: beat.schedule[name].task for name in ENTRIES} == ENTRIES

    with start_worker(app, pool="threads", queues=["default"], perform_ping_check=False):
        for name in ENTRIES:
            beat.apply_async(beat.schedule[name])
        for _ in range(300):
            done = not Segment.objects.exists() and not orphan.exists()
            if done and RecordingStop.objects.exists():
                break
            time.sleep(0.1)

    assert not Segment.objects.filter(pk__in=[expired.pk, stale_buffer.pk]).exists()
    assert not on_disk(expired).exists() and not on_disk(stale_buffer).exists()
    assert not orphan.exists()
    assert RecordingStop.objects.filter(camera=camera).exists()
