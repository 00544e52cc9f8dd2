"""Checking an export's zip as `manage.py evidence_verify` does: the signatures by the
district's key (current or rotated out), every file's SHA-256 against the signed lists, and
each MP4's C2PA credentials against the manifest (where c2pa-python is installed).

Each problem names its file. Files are read straight from the zip's stored bytes (exports
are never compressed), so checking costs what `sha256sum -c` costs.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
from dataclasses import dataclass, field
from io import BufferedReader, RawIOBase
from pathlib import Path
from typing import Any

from responder.evidence import manifest as m
from responder.evidence import signing

try:
    from responder.evidence import credentials
except ImportError:  # no c2pa-python (its native library) here: the rest is still checked
    credentials = None  # type: ignore[assignment]

CHUNK = 1024 * 1024
LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # a zip member's local header, 30 bytes
META = {m.MANIFEST, m.SIGNATURE, m.PUBLIC_KEY, m.SUMS, m.SUMS_SIGNATURE, m.VERIFY}


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    checked: int = 0
    key_id: str = ""

    def add(self, name: str, problem: str) -> None:
        self.problems.append(f"{name}: {problem}")


def zip_verify(path: Path) -> Report:
    report = Report()
    with path.open("rb") as raw, zipfile.ZipFile(raw) as archive:
        names = set(archive.namelist())
        missing = [name for name in (m.MANIFEST, m.SIGNATURE, m.SUMS, m.SUMS_SIGNATURE)
                   if name not in names]  # fmt: skip
        for name in missing:
            report.add(name, "missing from the zip")
        if missing:
            return report
        body, sums = archive.read(m.MANIFEST), archive.read(m.SUMS)
        document = _parsed(body, report)
        key = _key(document, archive, report)
        manifest_ok = _signed(key, archive.read(m.SIGNATURE), body, m.MANIFEST, report)
        sums_ok = _signed(key, archive.read(m.SUMS_SIGNATURE), sums, m.SUMS, report)
        expected = _expected(document if manifest_ok or not sums_ok else None, sums, report)
        if document is not None and manifest_ok and sums_ok:
            if m.sums_text(m.manifest_files(document)) != sums:
                report.add(m.SUMS, "does not list what manifest.json lists")
            _recording_mismatches(document, report)
            _credentials_check(raw, archive, document, report)
        for name in sorted(names - META - set(expected)):
            report.add(name, "is not listed in the signed manifest")
        for name, digest in sorted(expected.items()):
            _file_check(raw, archive, name, digest, report)
    return report


def _parsed(body: bytes, report: Report) -> dict | None:
    try:
        document = json.loads(body)
    except ValueError:
        report.add(m.MANIFEST, "is not valid JSON")
        return None
    if not isinstance(document, dict):
        report.add(m.MANIFEST, "is not a manifest")
        return None
    return document


def _key(document: dict | None, archive: zipfile.ZipFile, report: Report):
    trusted = signing.trusted_keys()
    key_id = document.get("signing_key_id", "") if document else ""
    if not key_id and m.PUBLIC_KEY in archive.namelist():
        try:
            key_id = signing.key_id(signing.public_key_load(archive.read(m.PUBLIC_KEY)))
        except ValueError:
            report.add(m.PUBLIC_KEY, "is not an Ed25519 public key")
    report.key_id = key_id
    key = trusted.get(key_id)
    if key is None:
        report.add(m.MANIFEST, f"signed by key {key_id or '?'}, not one of the district's")
    elif m.PUBLIC_KEY in archive.namelist() and archive.read(m.PUBLIC_KEY) != signing.public_pem(
        key
    ):
        report.add(m.PUBLIC_KEY, "is not the key that signed the manifest")
    return key


def _signed(key, signature: bytes, data: bytes, name: str, report: Report) -> bool:
    if key is None:
        return False
    if not signing.signature_valid(key, signature, data):
        report.add(name, "the signature does not match (the file or its signature changed)")
        return False
    return True


def _expected(document: dict | None, sums: bytes, report: Report) -> dict[str, str]:
    """What each file's SHA-256 must be: from the manifest when its signature holds (or
    neither holds), else from SHA256SUMS, whose own signature held."""
    if document is not None:
        try:
            return m.manifest_files(document)
        except (KeyError, TypeError):
            report.add(m.MANIFEST, "does not list the files in the expected shape")
    expected = {}
    for line in sums.decode(errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        if name:
            expected[name] = digest
    return expected


def _recording_mismatches(document: dict, report: Report) -> None:
    for camera in document["cameras"]:
        for segment in camera["segments"]:
            if segment["sha256_recorded"] != segment["sha256_now"]:
                report.add(segment["file"], "differs from the file as it was recorded")


def _credentials_check(
    raw: BufferedReader, archive: zipfile.ZipFile, document: dict, report: Report
) -> None:
    """Each MP4's credentials name this manifest's core and its own camera. The MP4's bytes
    (the credentials among them) are fixed by the signed manifest's hash already: this
    finds an MP4 of another export or camera signed into a manifest by the district's key."""
    stated = document.get("content_credentials")
    if not stated:
        return
    core = m.manifest_core_sha256(document)
    if stated.get("manifest_core_sha256") != core:
        report.add(m.MANIFEST, "the core hash it states is not its own")
    if credentials is None:
        return
    for camera in document["cameras"]:
        mp4 = camera["mp4"]
        # None; too big to sign (EVIDENCE_C2PA_MAX_MB); or missing, which is named above.
        if not mp4 or not mp4.get("credentials", True) or mp4["file"] not in archive.namelist():
            continue
        info = archive.getinfo(camera["mp4"]["file"])
        stored = info.compress_type == zipfile.ZIP_STORED
        try:
            with MemberReader(raw, info) if stored else archive.open(info) as member:
                seen = credentials.content_credentials_read(member)
        except credentials.CredentialsError as error:
            report.add(info.filename, f"its Content Credentials cannot be read ({error})")
            continue
        problem = _credentials_problem(seen, camera, core)
        if problem:
            report.add(info.filename, problem)


def _credentials_problem(seen: Any, camera: dict, core: str) -> str:
    claimed = seen["evidence"]
    if seen["state"] == "Absent":
        return "carries no Content Credentials, though the manifest says it does"
    if not seen["hard_binding_intact"] or seen["state"] == "Invalid":
        # Who issued the certificate is not asked here: the signed manifest fixes the MP4.
        failures = [code for code in seen["failures"] if code != credentials.UNTRUSTED]
        return f"its Content Credentials do not hold ({', '.join(failures)})"
    if claimed.get("manifest_core_sha256") != core:
        return "its Content Credentials name another manifest"
    if (claimed.get("camera_id"), claimed.get("camera")) != (camera["id"], camera["name"]):
        return f"its Content Credentials name another camera ({claimed.get('camera')})"
    return ""


class MemberReader(RawIOBase):
    """A stored zip member as a seekable file of its own: C2PA's reader seeks about."""

    def __init__(self, raw: BufferedReader, info: zipfile.ZipInfo) -> None:
        self.raw, self.start, self.size, self.position = (
            raw,
            _data_offset(raw, info),
            info.file_size,
            0,
        )

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # a writable bytes-like, as RawIOBase's
        count = max(0, min(len(buffer), self.size - self.position))
        self.raw.seek(self.start + self.position)
        read = self.raw.readinto(memoryview(buffer)[:count]) if count else 0
        self.position += read
        return read

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.position, 2: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def tell(self) -> int:
        return self.position


def _file_check(
    raw: BufferedReader, archive: zipfile.ZipFile, name: str, digest: str, report: Report
) -> None:
    try:
        info = archive.getinfo(name)
    except KeyError:
        report.add(name, "missing from the zip")
        return
    report.checked += 1
    if _sha256(raw, archive, info) != digest:
        report.add(name, "SHA-256 differs from the signed manifest")


def _sha256(raw: BufferedReader, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    digest = hashlib.sha256()
    if info.compress_type != zipfile.ZIP_STORED:
        with archive.open(info) as member:
            while chunk := member.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest()
    # Stored: the member's bytes lie right after its local header; read them directly
    # (no CRC pass on top of the hash).
    raw.seek(_data_offset(raw, info))
    left, buffer = info.file_size, bytearray(CHUNK)
    view = memoryview(buffer)
    while left:
        count = raw.readinto(view[: min(CHUNK, left)])
        if not count:
            break
        digest.update(view[:count])
        left -= count
    return digest.hexdigest()


def _data_offset(raw: BufferedReader, info: zipfile.ZipInfo) -> int:
    raw.seek(info.header_offset)
    header = LOCAL_HEADER.unpack(raw.read(LOCAL_HEADER.size))
    return info.header_offset + LOCAL_HEADER.size + header[-2] + header[-1]  # name, extra
