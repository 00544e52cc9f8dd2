"""manifest.json: what an export holds, in canonical JSON (the bytes that are signed),
and the plain-text files beside it (SHA256SUMS, VERIFY.txt). Schema: docs/EVIDENCE.md."""

from __future__ import annotations

import hashlib
import json
import tomllib
from datetime import datetime
from functools import cache
from urllib.parse import urlsplit

from django.conf import settings

from cameras.models import Camera
from responder.evidence.models import Export

FORMAT = 1
MANIFEST, SIGNATURE, PUBLIC_KEY = "manifest.json", "manifest.sig", "public-key.pem"
SUMS, SUMS_SIGNATURE, VERIFY = "SHA256SUMS", "SHA256SUMS.sig", "VERIFY.txt"


def canonical(document: dict) -> bytes:
    """Sorted keys, no whitespace, UTF-8: one document, one byte string."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@cache
def software_version() -> str:
    with (settings.BASE_DIR / "pyproject.toml").open("rb") as file:
        return str(tomllib.load(file)["project"]["version"])


def source_host(camera: Camera) -> str:
    # The host alone: never the URL's path, query or user:password.
    return urlsplit(camera.main_stream_url).hostname or ""


def camera_place(camera: Camera) -> dict:
    building = camera.building
    return {
        "id": camera.pk,
        "name": camera.name,
        "campus": building.campus.name,
        "building": building.name,
        "floor": camera.floor.name if camera.floor_id and camera.floor else None,
        "source_host": source_host(camera),
    }


def manifest_build(
    *, export: Export, cameras: list[dict], key_id: str, district: str, created_at: datetime
) -> dict:
    user = export.created_by
    incident = export.incident
    return {
        "format": FORMAT,
        "export_id": export.pk,
        "district": district,
        "operator": {"username": user.get_username(), "full_name": user.get_full_name()},
        "reason": export.reason,
        "incident": {"id": incident.pk, "title": incident.title} if incident else None,
        "created_at": iso(created_at),
        "range": {"start": iso(export.start), "end": iso(export.end)},
        "cameras": cameras,
        "software": {"name": "Responder", "version": software_version()},
        "signing_key_id": key_id,
        "content_credentials": None,
    }


def manifest_core_sha256(manifest: dict) -> str:
    """The SHA-256 of the canonical manifest with `content_credentials` and every camera's
    `mp4` set to null: what each MP4's C2PA credentials name. The MP4s' own hashes cannot be
    in it (they change when the credentials are embedded), the rest of the manifest is."""
    cameras = [camera | {"mp4": None} for camera in manifest["cameras"]]
    core = manifest | {"content_credentials": None, "cameras": cameras}
    return hashlib.sha256(canonical(core)).hexdigest()


def manifest_files(manifest: dict) -> dict[str, str]:
    """Every file the manifest lists with its SHA-256 as exported, by path in the zip."""
    files: dict[str, str] = {}
    for camera in manifest["cameras"]:
        for segment in camera["segments"]:
            files[segment["file"]] = segment["sha256_now"]
        if camera["mp4"] is not None:
            files[camera["mp4"]["file"]] = camera["mp4"]["sha256"]
    return files


def sums_text(files: dict[str, str]) -> bytes:
    # sha256sum's own format: hash, two spaces (text mode), path; sorted for a stable file.
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(files.items())).encode()


def verify_text(*, export_id: int, key_id: str, credentials: bool) -> bytes:
    return _verify_steps(export_id, key_id) + (CREDENTIALS_TEXT if credentials else b"")


CREDENTIALS_TEXT = f"""
Each video/camera-<id>.mp4 also carries C2PA Content Credentials, signed by the same key:
who exported it, when, from which camera, and "manifest_core_sha256", the SHA-256 of
{MANIFEST} with "content_credentials" and every camera's "mp4" set to null (the manifest
states it under "content_credentials"). Any C2PA reader shows them, e.g.
c2patool video/camera-<id>.mp4 or https://contentcredentials.org/verify.
""".encode()


def _verify_steps(export_id: int, key_id: str) -> bytes:
    return f"""Evidence export {export_id}: how to check it with standard tools alone
======================================================================

Unzip the export, then run these commands in the folder it made.

1. The manifest is signed by the district's key (Ed25519, key id {key_id}):

   openssl pkeyutl -verify -pubin -inkey {PUBLIC_KEY} -rawin -in {MANIFEST} -sigfile {SIGNATURE}

   It prints "Signature Verified Successfully".

2. The list of checksums is signed by the same key:

   openssl pkeyutl -verify -pubin -inkey {PUBLIC_KEY} -rawin -in {SUMS} -sigfile {SUMS_SIGNATURE}

3. Every video file is exactly the one listed (the same SHA-256 as in {MANIFEST}):

   sha256sum -c {SUMS}

   Every line ends in "OK".

4. The key is the district's: its id is the first 16 hex digits of the SHA-256 of the
   raw public key, and must equal the key id the district publishes ({key_id}):

   openssl pkey -pubin -in {PUBLIC_KEY} -outform DER | tail -c 32 | sha256sum | cut -c1-16

{MANIFEST} also lists, per recorded segment, the SHA-256 taken when it was recorded
("sha256_recorded") beside the one taken at export ("sha256_now"); "matches": false marks
a segment that changed on disk after it was recorded. With Responder installed:
manage.py evidence_verify <this zip> checks all of the above at once.
""".encode()
