"""Keeping and deleting recorded footage: events mode, retention, orphans (the disk guard,
guard.py, deletes through the same function).

Deleting is row first, file second: the rows go in a transaction, the files after it
commits. A crash in between leaves files without rows (orphans, swept later), never a row
pointing at a missing file, so nothing the index offers for playback or export vanishes
under it. A segment overlapping an active hold of its camera is never selected.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from accesslog.models import Event, Severity
from cameras.models import Camera
from responder.core.models import Incident
from responder.recording.models import (
    Gap,
    Hold,
    RecordingPolicy,
    Segment,
    SegmentKind,
)
from responder.recording.policy import policies_for
from responder.recording.services import holds_lock

# Events reach us late (a connector's poll, a controller's buffer after an outage): a
# buffer segment stays this long past its pre-roll in case an event still arrives for it.
BUFFER_MARGIN = timedelta(minutes=5)
BATCH = 500  # segments per delete transaction
MAX_BATCHES = 40  # per sweep: a beat run ends, the next one goes on
# A .ts file is renamed from .partial right before its row is inserted: younger files
# may be about to get their row.
ORPHAN_MIN_AGE = timedelta(hours=1)


def segment_file(segment_path: str) -> Path:
    return Path(settings.RECORDINGS_ROOT) / segment_path


def unheld(segments: QuerySet[Segment]) -> QuerySet[Segment]:
    return segments.exclude(Exists(holds_over_segment()))


def holds_over_segment() -> QuerySet[Hold]:
    return Hold.objects.active().filter(
        cameras=OuterRef("camera"), start__lt=OuterRef("end"), end__gt=OuterRef("start")
    )


@dataclass(frozen=True)
class Deleted:
    camera_id: int
    path: str
    start: datetime
    end: datetime
    bytes: int


def segments_delete(
    segments: QuerySet[Segment], *, limit: int = BATCH, enough_bytes: int | None = None
) -> list[Deleted]:
    """Deletes up to `limit` of these segments, oldest first, never a held one; with
    `enough_bytes`, stops at the first that brings the total to it."""
    with transaction.atomic():
        holds_lock(shared=False)
        candidates = unheld(segments).order_by("start").select_for_update(skip_locked=True)
        rows = list(
            candidates.values_list("id", "camera_id", "path", "start", "end", "bytes")[:limit]
        )
        if enough_bytes is not None:
            rows = _enough(rows, enough_bytes)
        Segment.objects.filter(pk__in=[row[0] for row in rows]).delete()
    deleted = [Deleted(*row[1:]) for row in rows]
    for segment in deleted:
        segment_file(segment.path).unlink(missing_ok=True)
    return deleted


def _enough(rows: list[tuple], wanted: int) -> list[tuple]:
    total = 0
    for count, row in enumerate(rows, 1):
        total += row[-1]
        if total >= wanted:
            return rows[:count]
    return rows


def segments_delete_all(segments: QuerySet[Segment]) -> list[Deleted]:
    deleted: list[Deleted] = []
    for _ in range(MAX_BATCHES):
        batch = segments_delete(segments)
        deleted += batch
        if len(batch) < BATCH:
            break
    return deleted


# Events mode ---------------------------------------------------------------------------


@dataclass
class SweepOutcome:
    promoted: int = 0
    deleted: int = 0


def buffer_sweep(*, now: datetime | None = None) -> SweepOutcome:
    """Buffer footage near an event or incident becomes event footage; the rest of the
    buffer goes once no event can still claim it."""
    now = now or timezone.now()
    outcome = SweepOutcome()
    buffered = Segment.objects.filter(kind=SegmentKind.BUFFER)
    camera_ids = set(buffered.values_list("camera", flat=True).distinct())
    policies = policies_for(camera_ids)
    cameras = Camera.objects.select_related("building").in_bulk(camera_ids)
    for camera_id, policy in policies.items():
        outcome.promoted += _promote(cameras[camera_id], policy, now=now)
        cutoff = now - timedelta(seconds=policy.pre_roll_seconds) - BUFFER_MARGIN
        # start bounds the index scan: a segment that ended before the cutoff started before it
        stale = buffered.filter(camera_id=camera_id, start__lt=cutoff, end__lt=cutoff)
        if stale.exists():  # one query, not a locking transaction, when nothing is stale
            outcome.deleted += len(segments_delete_all(stale))
    return outcome


def _promote(camera: Camera, policy: RecordingPolicy, *, now: datetime) -> int:
    segments = Segment.objects.filter(camera=camera, kind=SegmentKind.BUFFER)
    promoted = 0
    for start, end in merged(event_windows(camera, policy, now=now)):
        in_window = segments.filter(start__lt=end, end__gt=start)
        promoted += in_window.update(kind=SegmentKind.EVENT)
    return promoted


def event_windows(
    camera: Camera, policy: RecordingPolicy, *, now: datetime
) -> list[tuple[datetime, datetime]]:
    """The time around this camera's door events and incidents that events mode keeps."""
    pre = timedelta(seconds=policy.pre_roll_seconds)
    post = timedelta(seconds=policy.post_roll_seconds)
    buffered = Segment.objects.filter(camera=camera, kind=SegmentKind.BUFFER)
    first = buffered.order_by("start").values_list("start", flat=True).first()
    if first is None:
        return []
    kinds = Q(severity=Severity.ALARM) | Q(type__in=policy.event_types or [])
    moments = Event.objects.filter(
        kinds, door__door_cameras__camera=camera, occurred_at__gte=first - post
    ).values_list("occurred_at", flat=True)
    windows = [(moment - pre, moment + post) for moment in moments]
    reach = Q(building=camera.building_id) | Q(
        building__isnull=True, campus=camera.building.campus_id
    )
    incidents = Incident.objects.filter(reach).filter(
        Q(closed_at__isnull=True) | Q(closed_at__gte=first - post)
    )
    for opened_at, closed_at in incidents.values_list("opened_at", "closed_at"):
        windows.append((opened_at - pre, (closed_at or now) + post))
    return windows


def merged(
    windows: Iterable[tuple[datetime, datetime]], *, slack: timedelta = timedelta(0)
) -> list[tuple[datetime, datetime]]:
    """Overlapping windows (or closer than `slack`) joined, in order."""
    result: list[tuple[datetime, datetime]] = []
    for start, end in sorted(windows):
        if result and start <= result[-1][1] + slack:
            result[-1] = (result[-1][0], max(result[-1][1], end))
        else:
            result.append((start, end))
    return result


# Retention -----------------------------------------------------------------------------


def retention_sweep(*, now: datetime | None = None) -> int:
    """Deletes continuous and event footage past its camera's retention days."""
    now = now or timezone.now()
    camera_ids = Camera.objects.values_list("id", flat=True)  # not a scan of the segments
    by_days: dict[tuple[int, int], list[int]] = defaultdict(list)
    for camera_id, policy in policies_for(camera_ids).items():
        days = (policy.continuous_retention_days, policy.event_retention_days)
        by_days[days].append(camera_id)
    expired = Q(pk__in=[])
    shortest = min((min(days) for days in by_days), default=0)
    for (continuous_days, event_days), ids in by_days.items():
        # A gap older than all footage kept says nothing the timeline still shows.
        oldest_kept = now - timedelta(days=max(continuous_days, event_days))
        Gap.objects.filter(camera_id__in=ids, end__lt=oldest_kept).delete()
        expired |= Q(
            camera_id__in=ids,
            kind=SegmentKind.CONTINUOUS,
            end__lt=now - timedelta(days=continuous_days),
        )
        expired |= Q(
            camera_id__in=ids, kind=SegmentKind.EVENT, end__lt=now - timedelta(days=event_days)
        )
    # The bound on start lets PostgreSQL read the start index from the oldest up to the
    # shortest retention only, not the whole index, when little has expired.
    candidates = Segment.objects.filter(expired, start__lt=now - timedelta(days=shortest))
    return len(segments_delete_all(candidates))


def orphans_sweep(*, now: datetime | None = None) -> int:
    """Removes closed segment files with no row (a crash between a delete's commit and its
    unlink) and empty day folders of past days. `.partial` files are the recorders'.

    One query per camera folder and a stat only for files without a row: a daily run over
    150 cameras x 30 days reads the index once."""
    now = now or timezone.now()
    root = Path(settings.RECORDINGS_ROOT)
    if not root.is_dir():
        return 0
    removed = 0
    for folder in root.iterdir():
        if folder.is_dir() and folder.name.isdigit():
            removed += _orphans_of(root, folder, old=(now - ORPHAN_MIN_AGE).timestamp())
    _prune_day_folders(root, before=now.date() - timedelta(days=1))
    return removed


def _orphans_of(root: Path, folder: Path, *, old: float) -> int:
    files = {p.relative_to(root).as_posix(): p for p in folder.glob("*/*.ts")}
    if not files:
        return 0
    indexed = Segment.objects.filter(camera_id=int(folder.name)).values_list("path", flat=True)
    # Paths are stored relative to RECORDINGS_ROOT; an absolute one is matched as well.
    known = {Path(p).relative_to(root).as_posix() if p.startswith("/") else p for p in indexed}
    removed = 0
    for name, path in files.items():
        if name not in known and path.stat().st_mtime < old:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _prune_day_folders(root: Path, *, before: date) -> None:
    # Recorders write into today's folder only: an older empty one is finished with.
    for day in root.glob("*/*"):
        if day.is_dir() and day.name < before.isoformat():
            with suppress(OSError):  # not empty
                day.rmdir()
