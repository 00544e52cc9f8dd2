"""The disk guard: RECORDINGS_MIN_FREE_PERCENT stays free on RECORDINGS_ROOT's filesystem.

The oldest unheld footage goes first; when only held footage is left, cameras stop by
priority tier and district IT is warned; when space returns, they record again.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from responder.core.announce import it_warn
from responder.recording.models import Gap, GapReason, RecordingMode, RecordingStop, Segment
from responder.recording.policy import cameras_in_mode, policies_for
from responder.recording.retention import Deleted, merged, segments_delete

log = logging.getLogger(__name__)

# Stops end only once free space is this far above the minimum, so a camera does not
# stop and start at every run of the guard.
RESUME_MARGIN_PERCENT = 2
GUARD_BATCH = 50  # segments the guard deletes before measuring the disk again
ADJACENT = timedelta(seconds=2)  # deleted segments this close make one Gap row


@dataclass
class GuardOutcome:
    free_percent: float
    deleted: int = 0
    stopped: list[int] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)


def free_percent(root: Path | None = None) -> float:
    usage = shutil.disk_usage(root or recordings_root())
    return 100 * usage.free / usage.total


def recordings_root() -> Path:
    root = Path(settings.RECORDINGS_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    return root


def _bytes_short(minimum: float) -> int:
    usage = shutil.disk_usage(recordings_root())
    return math.ceil(usage.total * minimum / 100 - usage.free)


def disk_guard() -> GuardOutcome:
    """Keeps RECORDINGS_MIN_FREE_PERCENT free: the oldest unheld footage goes first; when
    only held footage is left, the lowest-priority cameras stop. Recorders call it too
    (on a write that found the disk full): it never raises for a full disk."""
    minimum = settings.RECORDINGS_MIN_FREE_PERCENT
    deleted: list[Deleted] = []
    while (short := _bytes_short(minimum)) > 0:
        batch = segments_delete(Segment.objects.all(), limit=GUARD_BATCH, enough_bytes=short)
        if not batch:
            break
        deleted += batch
    _gaps_for(deleted)
    outcome = GuardOutcome(free_percent=free_percent(), deleted=len(deleted))
    if deleted:
        log.warning(
            "disk guard deleted %d segments (%.1f%% free)", len(deleted), outcome.free_percent
        )
    if outcome.free_percent < minimum:
        outcome.stopped = recording_stop_lowest(free=outcome.free_percent, minimum=minimum)
    elif outcome.free_percent >= minimum + RESUME_MARGIN_PERCENT:
        outcome.resumed = recording_resume_all(free=outcome.free_percent)
    return outcome


def _gaps_for(deleted: list[Deleted]) -> None:
    """Footage the guard deleted before its time is a gap on the timeline, with its reason."""
    by_camera: dict[int, list[Deleted]] = defaultdict(list)
    for segment in deleted:
        by_camera[segment.camera_id].append(segment)
    gaps = []
    for camera_id, segments in by_camera.items():
        for start, end in merged(((s.start, s.end) for s in segments), slack=ADJACENT):
            detail = "Deleted by the disk guard to keep free space"
            gaps.append(
                Gap(
                    camera_id=camera_id,
                    start=start,
                    end=end,
                    reason=GapReason.DELETED,
                    detail=detail,
                )
            )
    Gap.objects.bulk_create(gaps)


@transaction.atomic
def recording_stop_lowest(*, free: float, minimum: float) -> list[int]:
    """Stops cameras by priority tier, lowest first. The further free space is below the
    minimum, the more tiers stop (every one at 0% free): a shortfall that holds steady
    does not stop one more tier at every run of the guard."""
    recordable = cameras_in_mode(RecordingMode.CONTINUOUS, RecordingMode.EVENTS)
    names = dict(recordable.filter(enabled=True).values_list("id", "name"))
    policies = policies_for(names)
    tiers = sorted({policy.priority for policy in policies.values()})
    if not tiers:
        return []
    stopping = set(tiers[: max(1, math.ceil((minimum - free) / minimum * len(tiers)))])
    already = set(RecordingStop.objects.values_list("camera", flat=True))
    stopped = sorted(
        camera_id
        for camera_id, policy in policies.items()
        if policy.priority in stopping and camera_id not in already
    )
    now = timezone.now()
    reason = f"Only held footage left to delete; {free:.1f}% free"
    for camera_id in stopped:
        RecordingStop.objects.create(camera_id=camera_id, since=now, reason=reason)
        Gap.objects.create(
            camera_id=camera_id, start=now, reason=GapReason.DISK_FULL, detail=reason
        )
    if stopped:
        it_warn(
            kind="recording.stopped",
            text=f"Recording disk full of held footage ({free:.1f}% free): stopped "
            f"{len(stopped)} camera(s), priority {min(stopping)} to {max(stopping)}. "
            "Add space or release holds.",
            details={
                "cameras": stopped,
                "names": [names[c] for c in stopped],
                "free_percent": round(free, 1),
            },
        )
        log.warning("disk guard stopped cameras %s (%.1f%% free)", stopped, free)
    return stopped


@transaction.atomic
def recording_resume_all(*, free: float) -> list[int]:
    resumed = sorted(RecordingStop.objects.values_list("camera", flat=True))
    if not resumed:
        return []
    now = timezone.now()
    RecordingStop.objects.filter(camera__in=resumed).delete()
    Gap.objects.filter(camera__in=resumed, reason=GapReason.DISK_FULL, end__isnull=True).update(
        end=now
    )
    it_warn(
        kind="recording.resumed",
        text=f"Recording disk has space again ({free:.1f}% free): {len(resumed)} camera(s) record again.",
        details={"cameras": resumed, "free_percent": round(free, 1)},
    )
    return resumed
