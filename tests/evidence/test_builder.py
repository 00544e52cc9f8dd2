"""The zip an export builds: the recorded files unchanged, a remuxed MP4 per camera, a
canonical manifest signed with Ed25519, checked here by the real sha256sum and openssl."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import pytest
from django.conf import settings

from responder.core.announce import channel
from responder.core.models import AuditEntry
from responder.core.redis import redis_client
from responder.evidence.models import ExportStatus
from responder.recording.models import Gap, GapReason, Hold
from responder.recording.retention import segment_file
from tests.evidence.evidence_helpers import (
    built,
    export_post,
    exporter,
    recorded_camera,
    unzip,
    zip_path,
)
from tests.recording.playback_helpers import clock_read

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("evidence_roots")]


@pytest.fixture
def two_cameras():
    (first, start, first_segments) = recorded_camera(30)
    second, _, second_segments = recorded_camera(20, building=first.building)
    client = exporter(first)
    return client, start, {first: first_segments, second: second_segments}


def build(client, cameras, start, end, **extra):
    response = export_post(client, list(cameras), start, end, **extra)
    assert response.status_code == 202, response.content
    return built(response.json()["id"])


def verify_commands(text: str) -> list[str]:
    """The commands VERIFY.txt tells people to run, exactly as written there."""
    return [
        line.strip() for line in text.splitlines() if re.match(r"\s+(openssl|sha256sum) ", line)
    ]


def test_the_zip_verifies_with_the_commands_of_verify_txt_and_nothing_else(two_cameras, tmp_path):
    client, start, recorded = two_cameras
    export = build(client, recorded, start, start + dt.timedelta(seconds=30))
    folder = unzip(zip_path(export, settings.EVIDENCE_ROOT), tmp_path / "unzipped")

    commands = verify_commands((folder / "VERIFY.txt").read_text())
    results = [
        subprocess.run(command, shell=True, cwd=folder, capture_output=True, text=True, timeout=60)
        for command in commands
    ]

    assert len(commands) == 4
    assert [result.returncode for result in results] == [0, 0, 0, 0], results
    assert results[0].stdout.strip() == "Signature Verified Successfully"
    assert results[1].stdout.strip() == "Signature Verified Successfully"
    checked = results[2].stdout.splitlines()
    assert len(checked) == sum(len(s) for s in recorded.values()) + 2
    assert all(line.endswith(": OK") for line in checked)
    manifest = json.loads((folder / "manifest.json").read_bytes())
    assert results[3].stdout.strip() == manifest["signing_key_id"]


def test_the_manifest_is_canonical_json_and_its_hash_is_the_exports(two_cameras, tmp_path):
    client, start, recorded = two_cameras
    export = build(client, recorded, start, start + dt.timedelta(seconds=30), reason="Case 117")
    folder = unzip(zip_path(export, settings.EVIDENCE_ROOT), tmp_path / "unzipped")

    raw = (folder / "manifest.json").read_bytes()
    manifest = json.loads(raw)

    assert raw == json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    assert hashlib.sha256(raw).hexdigest() == export.manifest_sha256
    assert manifest["export_id"] == export.pk
    assert manifest["operator"]["username"] == client.user.username
    assert manifest["reason"] == "Case 117"
    assert manifest["district"] == "Test District"
    assert [camera["id"] for camera in manifest["cameras"]] == sorted(c.pk for c in recorded)
    first = manifest["cameras"][0]
    assert first["source_host"] and "@" not in first["source_host"]
    assert first["campus"] and first["building"]


def test_every_segment_is_the_recorded_file_byte_for_byte_with_both_hashes(two_cameras, tmp_path):
    client, start, recorded = two_cameras
    export = build(client, recorded, start, start + dt.timedelta(seconds=30))
    folder = unzip(zip_path(export, settings.EVIDENCE_ROOT), tmp_path / "unzipped")
    manifest = json.loads((folder / "manifest.json").read_bytes())

    for camera in manifest["cameras"]:
        segments = next(s for c, s in recorded.items() if c.pk == camera["id"])
        assert len(camera["segments"]) == len(segments)
        for listed, segment in zip(camera["segments"], segments, strict=True):
            exported = (folder / listed["file"]).read_bytes()
            assert exported == segment_file(segment.path).read_bytes()
            assert listed["sha256_recorded"] == listed["sha256_now"] == segment.sha256
            assert listed["matches"] is True and listed["bytes"] == segment.bytes


def test_each_camera_gets_one_mp4_with_every_frame_of_its_segments_not_re_encoded(
    two_cameras, tmp_path
):
    client, start, recorded = two_cameras
    export = build(client, recorded, start, start + dt.timedelta(seconds=30))
    folder = unzip(zip_path(export, settings.EVIDENCE_ROOT), tmp_path / "unzipped")
    first = next(iter(recorded))

    with av.open(str(folder / f"video/camera-{first.pk}.mp4")) as mp4:
        stream = mp4.streams.video[0]
        frames = list(mp4.decode(stream))
        packets = [
            p
            for p in av.open(str(folder / f"video/camera-{first.pk}.mp4")).demux(video=0)
            if p.size
        ]

    assert stream.codec_context.name == "h264"
    assert len(frames) == 300  # 30 s at 10 fps, the three files end to end
    assert abs(clock_read(frames[0]) - start) < dt.timedelta(seconds=0.2)
    assert abs(clock_read(frames[-1]) - (start + dt.timedelta(seconds=29.9))) < dt.timedelta(
        seconds=0.2
    )
    # The same packets as recorded (a re-encode would change their keyframe pattern):
    recorded_keys = []
    for segment in recorded[first]:
        with av.open(str(segment_file(segment.path))) as ts:
            recorded_keys += [p.is_keyframe for p in ts.demux(video=0) if p.size]
    assert [p.is_keyframe for p in packets] == recorded_keys
    duration = float(frames[-1].pts * Fraction(frames[-1].time_base))
    assert 29 < duration < 30.5


def test_a_range_beyond_the_recording_exports_what_exists_and_lists_the_gaps(tmp_path):
    camera, start, segments = recorded_camera(20)
    Gap.objects.create(
        camera=camera, start=start - dt.timedelta(minutes=1), end=start,
        reason=GapReason.SOURCE_DOWN, detail="no answer from the camera",
    )  # fmt: skip
    client = exporter(camera)
    export = build(
        client, [camera], start - dt.timedelta(seconds=30), start + dt.timedelta(seconds=50)
    )
    folder = unzip(zip_path(export, settings.EVIDENCE_ROOT), tmp_path / "unzipped")

    gaps = json.loads((folder / "manifest.json").read_bytes())["cameras"][0]["gaps"]

    assert export.status == ExportStatus.READY
    assert [(g["reason"], g["detail"]) for g in gaps] == [
        ("source_down", "no answer from the camera"),
        ("not_recorded", ""),
    ]
    assert gaps[0]["start"] == (start - dt.timedelta(seconds=30)).isoformat().replace(
        "+00:00", "Z"
    )
    assert gaps[1]["end"] == (start + dt.timedelta(seconds=50)).isoformat().replace("+00:00", "Z")


def test_a_camera_with_nothing_recorded_in_the_range_has_no_mp4_and_one_gap(tmp_path):
    camera, start, _ = recorded_camera(10)
    client = exporter(camera)
    later = start + dt.timedelta(minutes=2)
    export = build(client, [camera], later, later + dt.timedelta(seconds=30))
    folder = unzip(zip_path(export, settings.EVIDENCE_ROOT), tmp_path / "unzipped")

    only = json.loads((folder / "manifest.json").read_bytes())["cameras"][0]

    assert export.status == ExportStatus.READY
    assert only["segments"] == [] and only["mp4"] is None
    assert [gap["reason"] for gap in only["gaps"]] == ["not_recorded"]


def test_a_segment_changed_since_recording_is_exported_as_it_is_and_flagged(tmp_path):
    camera, start, segments = recorded_camera(20)
    changed = segment_file(segments[1].path)
    data = bytearray(changed.read_bytes())
    data[-100] ^= 0xFF
    changed.write_bytes(bytes(data))
    client = exporter(camera)
    export = build(client, [camera], start, start + dt.timedelta(seconds=20))
    folder = unzip(zip_path(export, settings.EVIDENCE_ROOT), tmp_path / "unzipped")

    listed = json.loads((folder / "manifest.json").read_bytes())["cameras"][0]["segments"]

    assert export.status == ExportStatus.READY
    assert [s["matches"] for s in listed] == [True, False]
    assert listed[1]["sha256_recorded"] == segments[1].sha256
    assert listed[1]["sha256_now"] == hashlib.sha256(data).hexdigest()


def test_a_missing_source_file_fails_the_export_with_the_reason_and_holds_nothing():
    camera, start, segments = recorded_camera(20)
    segment_file(segments[1].path).unlink()
    client = exporter(camera)
    export = build(client, [camera], start, start + dt.timedelta(seconds=20))

    assert export.status == ExportStatus.FAILED
    assert segments[1].path in export.failure and "missing" in export.failure
    assert export.path == "" and export.bytes is None
    assert not any(Path(settings.EVIDENCE_ROOT).rglob("*.zip*"))
    assert not Hold.objects.active().filter(pk=export.hold_id).exists()
    assert AuditEntry.objects.filter(action="evidence.failed", object_id=str(export.pk)).exists()
    detail = client.get(f"/api/v1/evidence/{export.pk}").json()
    assert detail["status"] == "failed" and detail["download"] is None


def test_a_disk_error_fails_the_export_and_removes_the_partial_zip(settings):
    camera, start, _ = recorded_camera(20)
    client = exporter(camera)
    export_id = export_post(client, [camera], start, start + dt.timedelta(seconds=20)).json()["id"]
    settings.EVIDENCE_ROOT.mkdir(parents=True)
    (settings.EVIDENCE_ROOT / ".building").write_text("not a folder")  # every write fails

    export = built(export_id)

    assert export.status == ExportStatus.FAILED
    assert "could not be written" in export.failure
    assert not Hold.objects.active().filter(pk=export.hold_id).exists()


def test_a_second_delivery_of_the_task_builds_nothing_again():
    camera, start, _ = recorded_camera(10)
    client = exporter(camera)
    export_id = export_post(client, [camera], start, start + dt.timedelta(seconds=10)).json()["id"]
    export = built(export_id)

    again = built(export_id)

    assert (again.status, again.path, again.manifest_sha256) == (
        ExportStatus.READY, export.path, export.manifest_sha256,
    )  # fmt: skip
    assert AuditEntry.objects.filter(action="evidence.ready").count() == 1


def test_progress_reaches_the_creators_socket_channel(django_capture_on_commit_callbacks):
    camera, start, _ = recorded_camera(10)
    client = exporter(camera)
    export_id = export_post(client, [camera], start, start + dt.timedelta(seconds=10)).json()["id"]
    pubsub = redis_client().pubsub()
    pubsub.subscribe(channel("users"))
    pubsub.get_message(timeout=1)  # the subscription's confirmation

    with django_capture_on_commit_callbacks(execute=True):
        built(export_id)

    frames = []
    while (message := pubsub.get_message(timeout=1)) is not None:
        notice = json.loads(message["data"])
        frames.append((notice["users"], json.loads(notice["frame"])))
    pubsub.close()
    assert frames and all(users == [client.user.pk] for users, _ in frames)
    assert all(frame["type"] == "evidence.progress" for _, frame in frames)
    assert frames[-1][1]["export"] == {
        "id": export_id, "status": "ready", "progress": 1.0,
        "bytes": frames[-1][1]["export"]["bytes"], "failure": "",
    }  # fmt: skip
