"""manage.py evidence_verify: 0 on an intact zip, else non-zero naming each file that
differs; exports signed before a key rotation still verify."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from responder.evidence import signing
from tests.evidence.evidence_helpers import (
    built,
    export_post,
    exporter,
    process_env,
    recorded_camera,
    zip_path,
)
from tests.servers import ROOT

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("evidence_roots")]


@pytest.fixture
def export_zip() -> Path:
    camera, start, _ = recorded_camera(20)
    client = exporter(camera)
    export_id = export_post(client, [camera], start, start + dt.timedelta(seconds=20)).json()["id"]
    return zip_path(built(export_id), settings.EVIDENCE_ROOT)


def evidence_verify(path: Path) -> subprocess.CompletedProcess:
    """The command as people run it: its own process, the district's key from settings."""
    env = {**os.environ, **process_env()}
    return subprocess.run(
        [sys.executable, "manage.py", "evidence_verify", str(path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def rewritten(source: Path, target: Path, change) -> Path:
    """A copy of the zip with `change(name, data) -> data` applied to every member."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info, change(info.filename, old.read(info)))
    return target


def flip(data: bytes, at: int) -> bytes:
    changed = bytearray(data)
    changed[at] ^= 0x01
    return bytes(changed)


def test_an_intact_export_verifies_with_exit_0(export_zip):
    result = evidence_verify(export_zip)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: 3 files")


def test_one_byte_changed_in_a_segment_and_in_the_manifest_are_both_named(export_zip, tmp_path):
    with zipfile.ZipFile(export_zip) as archive:
        segment = next(n for n in archive.namelist() if n.endswith(".ts"))
    manifest_text = b'"reason":"Forced door'

    def tamper(name: str, data: bytes) -> bytes:
        if name == segment:
            return flip(data, len(data) // 2)
        if name == "manifest.json":
            return data.replace(manifest_text, b'"reason":"Forged door')
        return data

    result = evidence_verify(rewritten(export_zip, tmp_path / "tampered.zip", tamper))

    assert result.returncode != 0
    assert f"DIFFERS {segment}: SHA-256 differs" in result.stderr
    assert "DIFFERS manifest.json: the signature does not match" in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("DIFFERS")]) == 2


def test_a_changed_mp4_or_a_file_slipped_in_is_named(export_zip, tmp_path):
    copy = tmp_path / "extra.zip"
    shutil.copy(export_zip, copy)
    with zipfile.ZipFile(copy, "a") as archive:
        archive.writestr("segments/extra.ts", b"\x47" * 188)
    mp4 = rewritten(export_zip, tmp_path / "mp4.zip",
                    lambda n, d: flip(d, len(d) - 10) if n.endswith(".mp4") else d)  # fmt: skip

    slipped_out, changed_out = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as slipped:
        call_command("evidence_verify", str(copy), stderr=slipped_out)
    with pytest.raises(CommandError) as changed:
        call_command("evidence_verify", str(mp4), stderr=changed_out)

    assert slipped.value.returncode == 1 and changed.value.returncode == 1
    assert slipped_out.getvalue().splitlines() == [
        "DIFFERS segments/extra.ts: is not listed in the signed manifest"
    ]
    assert changed_out.getvalue().startswith("DIFFERS video/camera-")


def test_exports_signed_before_a_key_rotation_still_verify(export_zip, settings, tmp_path):
    old_public = signing.public_pem(signing.signing_key().public_key()).decode()
    settings.EVIDENCE_SIGNING_KEY = signing.private_pem_new().decode()  # the new key

    with pytest.raises(CommandError):
        call_command("evidence_verify", str(export_zip))  # the old key is not listed
    settings.EVIDENCE_OLD_PUBLIC_KEYS = [old_public]
    call_command("evidence_verify", str(export_zip))


def test_a_manifest_signed_by_another_key_is_refused(export_zip, settings):
    with zipfile.ZipFile(export_zip) as archive:
        key_id = json.loads(archive.read("manifest.json"))["signing_key_id"]
    settings.EVIDENCE_SIGNING_KEY = signing.private_pem_new().decode()

    with pytest.raises(CommandError):
        call_command("evidence_verify", str(export_zip))
    assert key_id not in signing.trusted_keys()
