"""What the store holds and how long it lasts: the admin's storage page and the status API.

Growth counts continuous and event footage only: events mode's buffer is deleted as it
ages, so it takes a constant share of the disk, not a growing one.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Exists, Max, Min, Q, Sum
from django.utils import timezone

from cameras.models import Camera
from responder.recording.guard import recordings_root
from responder.recording.models import RecordingStop, Segment, SegmentKind
from responder.recording.policy import policies_for
from responder.recording.retention import holds_over_segment

DAY = timedelta(days=1)


def storage_status(*, now: datetime | None = None) -> dict:
    """The JSON of GET /api/v1/recording/status (shape: docs/RECORDING.md)."""
    now = now or timezone.now()
    usage = shutil.disk_usage(recordings_root())
    cameras = _cameras(now)
    growth = sum(c["daily_growth_bytes"] for c in cameras)
    recorded = sum(c["bytes"] for c in cameras)
    kept = recorded - sum(c["buffer_bytes"] for c in cameras)
    reserve = usage.total * settings.RECORDINGS_MIN_FREE_PERCENT / 100
    usable = max(usage.free - reserve, 0)
    return {
        "at": now.isoformat(),
        "filesystem": {
            "total_bytes": usage.total,
            "used_bytes": usage.used,
            "free_bytes": usage.free,
            "free_percent": round(100 * usage.free / usage.total, 2),
            "min_free_percent": settings.RECORDINGS_MIN_FREE_PERCENT,
        },
        "recorded_bytes": recorded,
        "held_bytes": sum(c["held_bytes"] for c in cameras),
        "daily_growth_bytes": growth,
        "days_that_fit": round((kept + usable) / growth, 1) if growth else None,
        "days_until_guard_deletes": round(usable / growth, 1) if growth else None,
        "cameras": cameras,
        "stopped": [
            {
                "camera": s.camera_id,
                "name": s.camera.name,
                "since": s.since.isoformat(),
                "reason": s.reason,
            }
            for s in RecordingStop.objects.select_related("camera").order_by("since")
        ],
    }


def _cameras(now: datetime) -> list[dict]:
    kept = ~Q(kind=SegmentKind.BUFFER)
    totals = (
        Segment.objects.values("camera")
        .annotate(
            bytes_sum=Sum("bytes"),
            buffer_sum=Sum("bytes", filter=Q(kind=SegmentKind.BUFFER)),
            recent=Sum("bytes", filter=kept & Q(start__gte=now - DAY)),
            count=Count("id"),
            oldest=Min("start"),
            newest=Max("end"),
        )
        .order_by()
    )
    held_by_camera = held_bytes_by_camera()
    by_camera = {
        row["camera"]: {**row, "held_sum": held_by_camera.get(row["camera"])} for row in totals
    }
    stops = dict(RecordingStop.objects.values_list("camera", "since"))
    cameras = Camera.objects.select_related("building").order_by("building__name", "name")
    policies = policies_for(c.pk for c in cameras)
    return [
        _camera(c, policies[c.pk].mode, by_camera.get(c.pk), stops.get(c.pk), now) for c in cameras
    ]


def held_bytes_by_camera(camera_ids: Iterable[int] | None = None) -> dict[int, int]:
    """Bytes of each camera's segments that an active hold covers (cameras with none left out)."""
    # A query of its own: in WHERE, the hold test is a semi-join PostgreSQL runs from the
    # few holds; inside an aggregate it would be a subquery per segment.
    held = Segment.objects.filter(Exists(holds_over_segment()))
    if camera_ids is not None:
        held = held.filter(camera_id__in=list(camera_ids))
    rows = held.values("camera").annotate(held_sum=Sum("bytes")).order_by()
    return {row["camera"]: row["held_sum"] for row in rows}


def _camera(
    camera: Camera, mode: str, row: dict | None, stopped: datetime | None, now: datetime
) -> dict:
    row = row or {}
    oldest, newest = row.get("oldest"), row.get("newest")
    # Less than a day recorded: the rate so far, scaled to a day.
    span = min(now - oldest, DAY) if oldest else DAY
    recent = row.get("recent") or 0
    return {
        "id": camera.pk,
        "name": camera.name,
        "building": camera.building.name,
        "mode": mode,
        "segments": row.get("count", 0),
        "bytes": row.get("bytes_sum") or 0,
        "held_bytes": row.get("held_sum") or 0,
        "buffer_bytes": row.get("buffer_sum") or 0,
        "oldest": oldest and oldest.isoformat(),
        "newest": newest and newest.isoformat(),
        "days_held": round((now - oldest) / DAY, 2) if oldest else 0,
        "daily_growth_bytes": round(recent * (DAY / max(span, timedelta(minutes=1)))),
        "stopped_since": stopped and stopped.isoformat(),
    }
