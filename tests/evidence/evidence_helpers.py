"""What the evidence tests share: fresh roots and key, exporters, built exports."""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.utils import timezone

from responder.evidence import builder
from responder.evidence.models import Export
from tests.factories import CameraFactory
from tests.recording.playback_helpers import recording_make, viewer


@pytest.fixture
def evidence_roots(settings, tmp_path) -> Iterator[Path]:
    """RECORDINGS_ROOT, EVIDENCE_ROOT and a development key of this test's own."""
    settings.RECORDINGS_ROOT = tmp_path / "recordings"
    settings.EVIDENCE_ROOT = tmp_path / "evidence"
    settings.EVIDENCE_DEV_KEY_DIR = tmp_path / "keys"
    settings.EVIDENCE_SIGNING_KEY = ""
    settings.EVIDENCE_OLD_PUBLIC_KEYS = []
    yield settings.EVIDENCE_ROOT


def process_env() -> dict[str, str]:
    """For a server or worker process of the test: its folders and its development key."""
    from django.conf import settings

    return {
        "DEBUG": "true",
        "EVIDENCE_ROOT": str(settings.EVIDENCE_ROOT),
        "RECORDINGS_ROOT": str(settings.RECORDINGS_ROOT),
        "EVIDENCE_DEV_KEY_DIR": str(settings.EVIDENCE_DEV_KEY_DIR),
        "EVIDENCE_SIGNING_KEY": "",
    }


def recorded_camera(seconds: float = 30, *, ago: dt.timedelta = dt.timedelta(minutes=5), **kw):
    """A camera with `seconds` of clock video (10 s files), starting `ago` before now."""
    camera = CameraFactory(**kw)
    start = (timezone.now() - ago).replace(microsecond=0)
    segments = recording_make(camera, start, seconds=seconds, segment_seconds=10)
    return camera, start, segments


def exporter(camera, capabilities=("export", "recorded")):
    return viewer(camera, capabilities=capabilities)


def export_post(client, cameras, start, end, reason="Forced door, case 2026-117", **extra):
    body = {
        "cameras": [camera.pk for camera in cameras],
        "start": start.isoformat(),
        "end": end.isoformat(),
        "reason": reason,
        **extra,
    }
    return client.post("/api/v1/evidence/", body, content_type="application/json")


def built(export_id: int) -> Export:
    """Builds the export here, as the worker's task does (the service, called directly)."""
    builder.export_build(export_id=export_id)
    return Export.objects.get(pk=export_id)


def zip_path(export: Export, root: Path) -> Path:
    return root / export.path


def unzip(path: Path, into: Path) -> Path:
    with zipfile.ZipFile(path) as archive:
        archive.extractall(into)
    return into
