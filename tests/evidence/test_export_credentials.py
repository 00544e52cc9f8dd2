"""C2PA Content Credentials in an export's MP4s: read back with c2pa-python, they name the
manifest's core hash and their camera; evidence_verify checks them; an export whose
credentials cannot be made fails with the reason and holds nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from responder.evidence import builder, signing, verify
from responder.evidence import manifest as m
from responder.evidence.credentials import (
    content_credentials_read,
    content_credentials_root,
    development_certificate,
)
from responder.evidence.models import Export, ExportStatus
from responder.recording.models import Hold
from tests.evidence.evidence_helpers import built, export_post, exporter, recorded_camera
from tests.evidence.evidence_helpers import zip_path as export_zip_path

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("evidence_roots")]


def export_of(cameras, start, seconds=20):
    client = exporter(cameras[0])
    response = export_post(client, cameras, start, start + dt.timedelta(seconds=seconds))
    assert response.status_code == 202, response.content
    return built(response.json()["id"])


@pytest.fixture
def two_camera_zip() -> Path:
    first, start, _ = recorded_camera(20, name="Gym east")
    second, _, _ = recorded_camera(20, building=first.building, name="Gym west")
    export = export_of([first, second], start)
    assert export.status == ExportStatus.READY, export.failure
    return export_zip_path(export, settings.EVIDENCE_ROOT)


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def resigned(files: dict[str, bytes], document: dict, target: Path) -> Path:
    """The zip as someone holding the district's key would re-sign it after a change."""
    for camera in document["cameras"]:
        data = files[camera["mp4"]["file"]]
        camera["mp4"] |= {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    key = signing.signing_key()
    body, sums = m.canonical(document), m.sums_text(m.manifest_files(document))
    files |= {m.MANIFEST: body, m.SIGNATURE: key.sign(body), m.SUMS: sums,
              m.SUMS_SIGNATURE: key.sign(sums)}  # fmt: skip
    return zip_of(files, target)


def zip_of(files: dict[str, bytes], target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return target


def problems(path: Path) -> list[str]:
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("evidence_verify", str(path), stderr=out)
    return out.getvalue().splitlines()


def test_each_mp4_carries_credentials_naming_the_manifest_core_and_its_camera(
    two_camera_zip, tmp_path
):
    files = members(two_camera_zip)
    document = json.loads(files[m.MANIFEST])
    core = document["content_credentials"]["manifest_core_sha256"]
    # The core, by its definition in docs/EVIDENCE.md: the manifest without the MP4s' hashes.
    stripped = document | {"content_credentials": None,
                           "cameras": [c | {"mp4": None} for c in document["cameras"]]}  # fmt: skip
    assert core == hashlib.sha256(m.canonical(stripped)).hexdigest()
    root = content_credentials_root(signing.signing_key())

    for camera in document["cameras"]:
        mp4 = tmp_path / f"{camera['id']}.mp4"
        mp4.write_bytes(files[camera["mp4"]["file"]])
        seen = content_credentials_read(mp4, trust_anchors=root)

        assert seen["state"] == "Trusted" and seen["hard_binding_intact"], seen["failures"]
        assert seen["evidence"] == {
            "export_id": document["export_id"],
            "exported_by": document["operator"]["username"],
            "exported_at": document["created_at"],
            "camera_id": camera["id"],
            "camera": camera["name"],
            "manifest_core_sha256": core,
        }
    assert [c["name"] for c in document["cameras"]] == ["Gym east", "Gym west"]
    assert all(camera["mp4"]["credentials"] for camera in document["cameras"])
    assert b"also carries C2PA Content Credentials" in files[m.VERIFY]
    call_command("evidence_verify", str(two_camera_zip))


def test_a_changed_byte_in_an_mp4_is_named_by_its_hash_and_by_its_credentials(
    two_camera_zip, tmp_path
):
    files = members(two_camera_zip)
    name = next(n for n in files if n.endswith(".mp4"))
    data = bytearray(files[name])
    data[data.index(b"mdat") + 1000] ^= 0x01
    files[name] = bytes(data)
    tampered = zip_of(files, tmp_path / "tampered.zip")

    assert problems(tampered) == [
        f"DIFFERS {name}: its Content Credentials do not hold (assertion.bmffHash.mismatch)",
        f"DIFFERS {name}: SHA-256 differs from the signed manifest",
    ]


def test_credentials_too_damaged_to_read_are_named_not_a_crash(two_camera_zip, tmp_path):
    files = members(two_camera_zip)
    name = next(n for n in files if n.endswith(".mp4"))
    data = bytearray(files[name])
    data[data.index(b"jumb") + 4] ^= 0xFF  # inside the C2PA box: its first JUMBF header
    files[name] = bytes(data)
    damaged = zip_of(files, tmp_path / "damaged.zip")

    found = problems(damaged)

    assert found[0].startswith(f"DIFFERS {name}: its Content Credentials cannot be read (")
    assert found[1:] == [f"DIFFERS {name}: SHA-256 differs from the signed manifest"]


def test_mp4s_swapped_between_cameras_and_re_signed_are_named_by_their_credentials(
    two_camera_zip, tmp_path
):
    files = members(two_camera_zip)
    document = json.loads(files[m.MANIFEST])
    first, second = (camera["mp4"]["file"] for camera in document["cameras"])
    files[first], files[second] = files[second], files[first]

    found = problems(resigned(files, document, tmp_path / "swapped.zip"))

    assert found == [
        f"DIFFERS {first}: its Content Credentials name another camera (Gym west)",
        f"DIFFERS {second}: its Content Credentials name another camera (Gym east)",
    ]


def test_an_mp4_from_another_export_re_signed_into_this_one_is_named(two_camera_zip, tmp_path):
    files = members(two_camera_zip)
    document = json.loads(files[m.MANIFEST])
    camera = document["cameras"][0]
    start = dt.datetime.fromisoformat(document["range"]["start"])
    cameras = Export.objects.get(pk=document["export_id"]).cameras.order_by("pk")
    other = export_of(list(cameras), start)
    with zipfile.ZipFile(export_zip_path(other, settings.EVIDENCE_ROOT)) as archive:
        files[camera["mp4"]["file"]] = archive.read(camera["mp4"]["file"])

    found = problems(resigned(files, document, tmp_path / "other.zip"))

    assert found == [
        f"DIFFERS {camera['mp4']['file']}: its Content Credentials name another manifest"
    ]


def test_without_the_c2pa_library_the_rest_is_still_checked(two_camera_zip, monkeypatch):
    monkeypatch.setattr(verify, "credentials", None)

    report = verify.zip_verify(two_camera_zip)

    assert report.problems == [] and report.checked == 6


def test_production_without_a_certificate_exports_mp4s_without_credentials_and_says_so(
    settings, tmp_path
):
    settings.EVIDENCE_C2PA_CERT, settings.EVIDENCE_C2PA_DEV_CERT = "", False
    camera, start, _ = recorded_camera(20)

    export = export_of([camera], start)

    files = members(export_zip_path(export, settings.EVIDENCE_ROOT))
    document = json.loads(files[m.MANIFEST])
    assert export.status == ExportStatus.READY and document["content_credentials"] is None
    assert b"C2PA" not in files[m.VERIFY]
    mp4 = tmp_path / "camera.mp4"
    mp4.write_bytes(files[document["cameras"][0]["mp4"]["file"]])
    assert content_credentials_read(mp4)["state"] == "Absent"
    call_command("evidence_verify", str(export_zip_path(export, settings.EVIDENCE_ROOT)))


def test_an_mp4_too_big_to_sign_goes_without_credentials_and_the_manifest_says_which(
    settings, tmp_path
):
    settings.EVIDENCE_C2PA_MAX_MB = 0  # every MP4 is over it
    camera, start, _ = recorded_camera(20)

    export = export_of([camera], start)

    path = export_zip_path(export, settings.EVIDENCE_ROOT)
    files = members(path)
    document = json.loads(files[m.MANIFEST])
    mp4 = document["cameras"][0]["mp4"]
    assert export.status == ExportStatus.READY and mp4["credentials"] is False
    assert document["content_credentials"] is not None  # the others would carry them
    (tmp_path / "camera.mp4").write_bytes(files[mp4["file"]])
    assert content_credentials_read(tmp_path / "camera.mp4")["state"] == "Absent"
    call_command("evidence_verify", str(path))


def another_keys_certificate(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "chain.pem"
    path.write_text(development_certificate(signing.Ed25519PrivateKey.generate()))
    return {"EVIDENCE_C2PA_CERT": str(path)}


@pytest.mark.parametrize(
    ("configure", "reason"),
    [
        (another_keys_certificate, "is not a certificate for the signing key"),
        # Port 9 (discard) answers nothing here: a timestamp authority out of reach.
        (lambda _: {"EVIDENCE_C2PA_TSA_URL": "http://127.0.0.1:9/tsa"}, "error sending request"),
    ],
    ids=["certificate of another key", "timestamp authority unreachable"],
)
def test_credentials_that_cannot_be_made_fail_the_export_with_the_reason_and_hold_nothing(
    settings, tmp_path, configure, reason
):
    for name, value in configure(tmp_path).items():
        setattr(settings, name, value)
    camera, start, _ = recorded_camera(20, name="Gym east")

    export = export_of([camera], start)

    assert export.status == ExportStatus.FAILED
    assert export.failure.startswith(
        "The Content Credentials of Gym east's video could not be made: "
    )
    assert reason in export.failure
    assert not Hold.objects.active().filter(pk=export.hold_id).exists()
    assert not any(Path(settings.EVIDENCE_ROOT).rglob("*.zip*"))
    assert not any(Path(settings.EVIDENCE_ROOT).rglob("*.mp4"))


def test_a_write_anywhere_but_the_end_of_a_zip_member_is_refused():
    target = io.BytesIO()
    writer = builder.HashingWriter(target)
    writer.write(b"ftyp....mdat")

    assert writer.seek(0, io.SEEK_END) == 12 and writer.seek(0) == 0 and writer.tell() == 0
    with pytest.raises(OSError, match="a write at 0 of a stream written up to 12"):
        writer.write(b"moov")
    writer.flush()
    assert target.getvalue() == b"ftyp....mdat"
    assert writer.digest.hexdigest() == hashlib.sha256(b"ftyp....mdat").hexdigest()
