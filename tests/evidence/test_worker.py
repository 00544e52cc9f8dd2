"""Exports built by real Celery workers: the smoke test, a worker killed with -9 in the
middle of a build, and retention sweeping while a build reads its segments."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from responder.celery import app
from responder.evidence.models import Export, ExportStatus
from responder.recording.models import Hold, RecordingPolicy, Segment
from responder.recording.retention import retention_sweep, segment_file
from responder.recording.services import hold_create
from tests.evidence.evidence_helpers import export_post, exporter, process_env, recorded_camera
from tests.servers import serve

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def until(condition, what: str, timeout: float = 90) -> object:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)
    return value


def status_of(export_id: int) -> str:
    return Export.objects.values_list("status", flat=True).get(pk=export_id)


def stalled(segment: Segment) -> Path:
    """Its file becomes a FIFO: a build that reaches it waits there (a stuck disk) until
    someone writes it. Returns the path; the recorded bytes stay in `<path>.bytes`."""
    path = segment_file(segment.path)
    kept = path.with_suffix(".bytes")
    path.rename(kept)
    os.mkfifo(path)
    return path


def release(path: Path) -> None:
    """Lets a build blocked on the FIFO go on: the regular file goes back in place (for
    the remux that reopens it), and the waiting reader gets the same bytes."""
    kept = path.with_suffix(".bytes")
    with path.open("wb") as fifo:  # unblocks the reader's open()
        path.unlink()
        kept.rename(path)
        fifo.write(path.read_bytes())


def test_a_worker_builds_a_queued_export_to_ready(evidence_roots):
    camera, start, _ = recorded_camera(20)
    client = exporter(camera)

    with start_worker(app, pool="threads", queues=["default"], perform_ping_check=False):
        export_id = export_post(client, [camera], start, start + dt.timedelta(seconds=20)).json()[
            "id"
        ]
        until(lambda: status_of(export_id) != ExportStatus.BUILDING, "the build", timeout=60)

    export = Export.objects.get(pk=export_id)
    assert export.status == ExportStatus.READY, export.failure
    assert (settings.EVIDENCE_ROOT / export.path).stat().st_size == export.bytes
    assert export.task_id  # the worker's task claimed it


def worker_process(tmp_path: Path) -> subprocess.Popen:
    """A default-queue worker as the Procfile runs it, on this test's folders and key."""
    env = process_env()
    command = ["celery", "-A", "responder", "worker", "-Q", "default", "-n", "evidence@%h"]
    command += ["--pool", "solo", "-l", "INFO"]
    return serve(command, 0, tmp_path / "worker.log", env, wait=False)


def test_a_worker_killed_mid_export_ends_it_failed_within_a_minute_and_holds_stay(
    evidence_roots, tmp_path
):
    camera, start, segments = recorded_camera(30)
    end = start + dt.timedelta(seconds=30)
    incident_hold = hold_create(cameras=[camera], start=start, end=end, reason="case", by=None)
    stuck = stalled(segments[1])
    client = exporter(camera)
    worker = worker_process(tmp_path)
    try:
        export_id = export_post(client, [camera], start, end).json()["id"]
        # The build has claimed it and copied the first file, then waits on the second.
        until(lambda: list(settings.EVIDENCE_ROOT.glob(".building/*/export.zip.partial")),
              "the build to start", timeout=90)  # fmt: skip
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        killed_at = time.monotonic()

        detail = until(
            lambda: (d := client.get(f"/api/v1/evidence/{export_id}").json())["status"] != "building"
            and d,
            "the export to end", timeout=75,
        )  # fmt: skip
        took = time.monotonic() - killed_at
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    stuck.unlink()

    assert detail["status"] == "failed" and "stopped" in detail["failure"]
    assert detail["download"] is None
    assert took < 60
    assert not list(settings.EVIDENCE_ROOT.rglob("*.zip*"))  # nothing partial stays
    assert Hold.objects.active().filter(pk=incident_hold.pk).exists()
    assert Segment.objects.filter(pk__in=[s.pk for s in segments]).count() == 3


def test_retention_sweeping_during_an_export_deletes_none_of_the_segments_it_reads(
    evidence_roots,
):
    ago = dt.timedelta(days=3)
    camera, start, segments = recorded_camera(30, ago=ago)
    RecordingPolicy.objects.create(camera=camera, continuous_retention_days=1)
    # Just as old, outside the export's range: retention must delete it, proving it ran.
    outside = recorded_camera(10, ago=ago - dt.timedelta(minutes=5), building=camera.building)
    RecordingPolicy.objects.create(camera=outside[0], continuous_retention_days=1)
    stuck = stalled(segments[1])
    client = exporter(camera)

    with start_worker(app, pool="threads", queues=["default"], perform_ping_check=False):
        export_id = export_post(client, [camera], start, start + dt.timedelta(seconds=30)).json()[
            "id"
        ]
        until(lambda: list(settings.EVIDENCE_ROOT.glob(".building/*/export.zip.partial")),
              "the build to start")  # fmt: skip
        swept = retention_sweep()  # while the build is stuck in the middle of the export
        threading.Thread(target=release, args=(stuck,)).start()
        until(lambda: status_of(export_id) != ExportStatus.BUILDING, "the build", timeout=60)

    export = Export.objects.get(pk=export_id)
    assert swept == len(outside[2])  # the old footage nobody holds went
    assert Segment.objects.filter(pk__in=[s.pk for s in segments]).count() == 3
    assert all(segment_file(s.path).exists() for s in segments)
    assert export.status == ExportStatus.READY, export.failure
