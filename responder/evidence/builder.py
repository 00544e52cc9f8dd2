"""Building an export's zip: the recorded segments exactly as written (hashed while copied),
one MP4 per camera remuxed from them (PyAV, no re-encode) with C2PA Content Credentials
that name the manifest's core hash, the signed canonical manifest.

The zip is written as a temporary file under EVIDENCE_ROOT/.building and renamed into
place only when complete, so no reader ever sees a partial zip. A failure (a source file
missing, a disk error) removes the temporary file, marks the export failed with the
reason and releases its hold. A build reports a heartbeat with its progress: a build
whose worker died stops reporting, and `exports_stale_fail` (beat) fails it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

import av
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from responder.core.announce import users_notify
from responder.core.audit import audit_record
from responder.core.models import Outcome
from responder.evidence import credentials, remux, signing
from responder.evidence import manifest as m
from responder.evidence.models import Export, ExportStatus
from responder.recording.models import Gap, Segment
from responder.recording.retention import segment_file
from responder.recording.services import hold_release

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024
# A build reports at least this often while it works; silent for STALE_AFTER, it is dead.
HEARTBEAT_SECONDS = 2.0
STALE_AFTER = timedelta(seconds=30)
# A stretch without footage shorter than this is the join between two segments, not a gap.
GAP_TOLERANCE = timedelta(seconds=1)


class BuildError(Exception):
    """A reason the export cannot be completed, worded for the person who asked."""


class BuildAborted(Exception):
    """The export stopped being ours to build (failed by the sweep meanwhile)."""


@dataclass
class Progress:
    export: Export
    total: int
    done: int = 0
    reported_at: float = field(default_factory=time.monotonic)

    def advance(self, count: int) -> None:
        self.done += count
        if time.monotonic() - self.reported_at >= HEARTBEAT_SECONDS:
            self.report()

    def report(self) -> None:
        self.reported_at = time.monotonic()
        value = min(self.done / self.total, 0.99) if self.total else 0.0
        alive = Export.objects.filter(pk=self.export.pk, status=ExportStatus.BUILDING).update(
            progress=value, heartbeat_at=timezone.now()
        )
        if not alive:
            raise BuildAborted()
        self.export.progress = value
        export_announce(self.export)


def export_announce(export: Export) -> None:
    frame = {
        "type": "evidence.progress",
        "export": {
            "id": export.pk,
            "status": export.status,
            "progress": round(export.progress, 3),
            "bytes": export.bytes,
            "failure": export.failure,
        },
    }
    users_notify(user_ids=[export.created_by_id], frame=frame)


def export_build(*, export_id: int, task_id: str = "") -> ExportStatus | None:
    """Builds a queued export once: a second delivery of the task (acks_late) finds it
    claimed, done or failed, and does nothing."""
    claimed = Export.objects.filter(
        pk=export_id, status=ExportStatus.BUILDING, heartbeat_at__isnull=True
    ).update(heartbeat_at=timezone.now(), task_id=task_id[:50])
    if not claimed:
        return None
    export = Export.objects.select_related("created_by", "incident", "hold").get(pk=export_id)
    work = Path(settings.EVIDENCE_ROOT) / ".building" / f"{export.pk}-{uuid.uuid4().hex}"
    try:
        work.mkdir(parents=True)
        zipped = _zip_write(export, work)
        return _ready(export, zipped)
    except BuildAborted:
        return None
    except BuildError as error:
        export_fail(export_id=export.pk, reason=str(error))
    except (OSError, av.FFmpegError, zipfile.LargeZipFile) as error:
        logger.exception("Export %s failed", export.pk)
        export_fail(export_id=export.pk, reason=f"The export could not be written: {error}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ExportStatus.FAILED


def _ready(export: Export, zipped: Path) -> ExportStatus | None:
    final = Path(settings.EVIDENCE_ROOT) / f"export-{export.pk}.zip"
    zipped.replace(final)
    with transaction.atomic():
        done = Export.objects.filter(pk=export.pk, status=ExportStatus.BUILDING).update(
            status=ExportStatus.READY, progress=1.0, bytes=final.stat().st_size,
            manifest_sha256=export.manifest_sha256, path=final.name,
            finished_at=timezone.now(), heartbeat_at=timezone.now(),
        )  # fmt: skip
        if not done:  # failed by the sweep while we finished: nothing of it stays
            final.unlink(missing_ok=True)
            return None
        export.refresh_from_db()
        audit_record(
            action="evidence.ready", user=export.created_by, obj=export,
            details={"bytes": export.bytes, "manifest_sha256": export.manifest_sha256},
        )  # fmt: skip
        export_announce(export)
    return ExportStatus.READY


@transaction.atomic
def export_fail(*, export_id: int, reason: str) -> bool:
    """Failed with its reason, its zip (if any) gone, its hold released: a failed export
    holds nothing partial. False when it had already ended."""
    export = (
        Export.objects.select_for_update()
        .filter(pk=export_id, status=ExportStatus.BUILDING)
        .first()
    )
    if export is None:
        return False
    export.status, export.failure, export.finished_at = ExportStatus.FAILED, reason, timezone.now()
    export.path = ""
    export.save(update_fields=["status", "failure", "finished_at", "path"])
    if export.hold is not None and export.hold.released_at is None:
        hold_release(hold=export.hold, by=None, reason=f"Export {export.pk} failed: {reason}")
    audit_record(
        action="evidence.failed", user=export.created_by, obj=export, outcome=Outcome.FAILURE,
        details={"reason": reason},
    )  # fmt: skip
    export_announce(export)
    return True


def exports_stale_fail(*, now: datetime | None = None) -> list[int]:
    """Fails the exports whose build stopped reporting (its worker was killed)."""
    now = now or timezone.now()
    stale = Export.objects.building().filter(heartbeat_at__lt=now - STALE_AFTER)
    failed = []
    for export_id in stale.values_list("id", flat=True):
        reason = "The worker building this export stopped; ask for the export again."
        if export_fail(export_id=export_id, reason=reason):
            failed.append(export_id)
    _partials_remove(alive=set(Export.objects.building().values_list("id", flat=True)))
    return failed


def _partials_remove(*, alive: set[int]) -> None:
    # A killed build leaves its work folder behind: none of it may stay.
    building = Path(settings.EVIDENCE_ROOT) / ".building"
    if not building.is_dir():
        return
    for work in building.iterdir():
        export_id = work.name.split("-", 1)[0]
        if not export_id.isdigit() or int(export_id) not in alive:
            shutil.rmtree(work, ignore_errors=True)


# The zip ------------------------------------------------------------------------------


@dataclass
class CameraPart:
    camera_id: int
    place: dict
    segments: list[Segment]
    gaps: list[dict]


def _parts(export: Export) -> list[CameraPart]:
    parts = []
    cameras = export.cameras.select_related("building__campus", "floor").order_by("pk")
    for camera in cameras:
        segments = list(
            Segment.objects.filter(
                camera=camera, start__lt=export.end, end__gt=export.start
            ).order_by("start")
        )
        gaps = gaps_in_range(camera.pk, segments, export.start, export.end)
        parts.append(CameraPart(camera.pk, m.camera_place(camera), segments, gaps))
    return parts


def gaps_in_range(
    camera_id: int, segments: list[Segment], start: datetime, end: datetime
) -> list[dict]:
    """Every stretch of [start, end] no segment covers, with the reason the index gives
    (a gap row over it), or `not_recorded` when the index has none."""
    holes, cursor = [], start
    for segment in segments:
        if segment.start - cursor > GAP_TOLERANCE:
            holes.append((cursor, segment.start))
        cursor = max(cursor, segment.end)
    if end - cursor > GAP_TOLERANCE:
        holes.append((cursor, end))
    rows = list(
        Gap.objects.filter(camera_id=camera_id, start__lt=end)
        .exclude(end__lte=start)
        .order_by("start")
    )
    return [_gap(hole, rows) for hole in holes]


def _gap(hole: tuple[datetime, datetime], rows: list[Gap]) -> dict:
    begin, until = hole
    over = [row for row in rows if row.start < until and (row.end is None or row.end > begin)]
    reason = over[0].reason if over else "not_recorded"
    detail = "; ".join(row.detail for row in over if row.detail)
    return {"start": m.iso(begin), "end": m.iso(until), "reason": reason, "detail": detail}


def _zip_write(export: Export, work: Path) -> Path:
    parts = _parts(export)
    # Each recorded byte is copied, remuxed, then signed into the zip (the MP4 is as big).
    total = 3 * sum(segment.bytes for part in parts for segment in part.segments)
    progress = Progress(export, total)
    progress.report()
    path = work / "export.zip.partial"
    key = signing.signing_key()
    key_id = signing.key_id(key.public_key())
    with path.open("wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as archive:
        cameras = [_camera_write(archive, part, work, progress) for part in parts]
        district = export.cameras.values_list("building__campus__district__name", flat=True)
        document = m.manifest_build(
            export=export, cameras=cameras, key_id=key_id, district=district.first() or "",
            created_at=export.created_at,
        )  # fmt: skip
        # The MP4s' credentials name the manifest without the MP4s' hashes (its core),
        # which is final here; the MP4s are hashed into the manifest once signed.
        core = m.manifest_core_sha256(document)
        embed = credentials.content_credentials_enabled()
        for camera, part in zip(cameras, parts, strict=True):
            provenance = _provenance(document, core, camera) if embed else None
            camera["mp4"] = _mp4_write(
                archive, part, work, progress, provenance=provenance, key=key
            )
        if embed:
            document["content_credentials"] = {
                "manifest_core_sha256": core, "assertion": credentials.ASSERTION,
            }  # fmt: skip
        body = m.canonical(document)
        sums = m.sums_text(m.manifest_files(document))
        archive.writestr(m.MANIFEST, body)
        archive.writestr(m.SIGNATURE, key.sign(body))
        archive.writestr(m.SUMS, sums)
        archive.writestr(m.SUMS_SIGNATURE, key.sign(sums))
        archive.writestr(m.PUBLIC_KEY, signing.public_pem(key.public_key()))
        archive.writestr(
            m.VERIFY, m.verify_text(export_id=export.pk, key_id=key_id, credentials=embed)
        )
        archive.close()
        raw.flush()
        os.fsync(raw.fileno())
    export.manifest_sha256 = hashlib.sha256(body).hexdigest()
    return path


def _camera_write(
    archive: zipfile.ZipFile, part: CameraPart, work: Path, progress: Progress
) -> dict:
    """The camera's segments into the zip, its MP4 remuxed beside the zip (not in it yet)."""
    segments = [_segment_copy(archive, segment, progress) for segment in part.segments]
    if part.segments:
        files = [segment_file(segment.path) for segment in part.segments]
        remux.remux_to_mp4(
            files, _remuxed(work, part),
            on_file=lambda i: progress.advance(part.segments[i].bytes),
        )  # fmt: skip
    return part.place | {"segments": segments, "gaps": part.gaps, "mp4": None}


def _remuxed(work: Path, part: CameraPart) -> Path:
    return work / f"camera-{part.camera_id}.mp4"


def _provenance(document: dict, core: str, camera: dict) -> credentials.Provenance:
    operator = document["operator"]
    full_name = f" ({operator['full_name']})" if operator["full_name"] else ""
    return credentials.Provenance(
        export_id=document["export_id"], exported_by=operator["username"] + full_name,
        exported_at=document["created_at"], camera_id=camera["id"], camera=camera["name"],
        manifest_core_sha256=core,
    )  # fmt: skip


def _mp4_write(
    archive: zipfile.ZipFile,
    part: CameraPart,
    work: Path,
    progress: Progress,
    *,
    provenance: credentials.Provenance | None,
    key: Ed25519PrivateKey,
) -> dict | None:
    """The remuxed MP4 into the zip, with its credentials when there are any to embed."""
    if not part.segments:
        return None
    name = f"video/camera-{part.camera_id}.mp4"
    remuxed = _remuxed(work, part)
    # The library holds about twice the MP4 in memory: a bigger one goes without credentials.
    signed = (
        provenance is not None and remuxed.stat().st_size <= settings.EVIDENCE_C2PA_MAX_MB * 2**20
    )
    source = remuxed.open("rb", buffering=CHUNK)  # the library reads 8 KiB at a time
    with source, archive.open(name, "w", force_zip64=True) as member:
        writer = HashingWriter(member)
        if provenance is not None and signed:
            _sign(source, writer, provenance=provenance, key=key)
        else:
            shutil.copyfileobj(source, writer, CHUNK)
        writer.flush()
    remuxed.unlink()
    progress.advance(sum(segment.bytes for segment in part.segments))
    return {
        "file": name, "sha256": writer.digest.hexdigest(), "bytes": writer.size,
        "credentials": signed,
    }  # fmt: skip


def _sign(
    source: IO[bytes],
    writer: HashingWriter,
    *,
    provenance: credentials.Provenance,
    key: Ed25519PrivateKey,
) -> None:
    title = f"camera-{provenance['camera_id']}.mp4"
    try:
        credentials.content_credentials_sign(
            source, writer, title=title, provenance=provenance, key=key
        )
    except credentials.CredentialsError as error:
        if writer.error is not None:  # the zip's disk failed under the library
            raise writer.error from error
        raise BuildError(
            f"The Content Credentials of {provenance['camera']}'s video could not be made: {error}"
        ) from error


class HashingWriter(io.RawIOBase):
    """Writes through to `target`, hashing what passes: the MP4's SHA-256 as it is written.

    Small writes (c2pa-rs writes 8 KiB at a time) are gathered into CHUNK before they reach
    the zip and the hash: half the signing time. c2pa-rs writes a signed MP4 front to back,
    then seeks only to ask where it is (to the start and the end): such seeks are answered,
    and a write anywhere but at the end (which a zip member cannot take) fails the signing
    instead of corrupting the MP4. `flush` before reading `digest`."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target, self.digest, self.size, self.position = target, hashlib.sha256(), 0, 0
        self.pending = bytearray()
        self.error: OSError | None = None

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # bytes-like, as RawIOBase's
        if self.position != self.size:
            raise OSError(f"a write at {self.position} of a stream written up to {self.size}")
        self.pending += data
        self.size += len(data)
        self.position = self.size
        if len(self.pending) >= CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if not self.pending:  # also when closed by the garbage collector, after its zip
            return
        try:
            self.target.write(self.pending)
        except OSError as error:
            self.error = error
            raise
        self.digest.update(self.pending)
        self.pending.clear()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = base + offset
        return self.position

    def tell(self) -> int:
        return self.position


def _segment_copy(archive: zipfile.ZipFile, segment: Segment, progress: Progress) -> dict:
    name = f"segments/{segment.path}"
    try:
        source = segment_file(segment.path).open("rb")
    except FileNotFoundError:
        raise BuildError(f"A recorded file is missing: {segment.path}") from None
    with source:
        digest, size = _copy_hashing(source, archive, name, progress=progress)
    return {
        "file": name,
        "start": m.iso(segment.start),
        "end": m.iso(segment.end),
        "bytes": size,
        "sha256_recorded": segment.sha256,
        "sha256_now": digest,
        # A file changed since it was recorded is still exported, as it is now, and
        # flagged: the manifest tells, the export does not hide it.
        "matches": digest == segment.sha256 and size == segment.bytes,
    }


def _copy_hashing(
    source: IO[bytes], archive: zipfile.ZipFile, name: str, *, progress: Progress | None
) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with archive.open(name, "w", force_zip64=True) as target:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            target.write(chunk)
            size += len(chunk)
            if progress is not None:
                progress.advance(len(chunk))
    return digest.hexdigest(), size
