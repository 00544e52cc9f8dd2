"""An incident's custody trail: the audit rows that touch its footage (docs/CUSTODY.md).

Three kinds of row: a view of recorded video of its cameras inside its held range; a row
about one of its holds; and any row whose details name it (`details.incident == id`), as
exports, downloads and shares do.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from cameras.models import Camera
from responder.core.models import AuditEntry, Incident
from responder.recording.models import Hold, HoldSource
from responder.recording.services import (
    INCIDENT_HOLD_MARGIN,
    OPEN_END,
    incident_cameras,
)

# Every audit action that shows recorded footage (responder/recording/playback_api.py).
RECORDED_VIEWS = ("video.recorded", "video.recorded_frame")


def custody_trail(incident: Incident) -> list[AuditEntry]:
    """Oldest first, in the order of the audit chain."""
    holds = list(Hold.objects.filter(incident=incident))
    start, end = _range(incident, holds)
    camera_ids = {str(pk) for pk in _cameras(incident, holds)}
    views = Q(
        action__in=RECORDED_VIEWS,
        object_type=Camera._meta.label,
        object_id__in=camera_ids,
        at__gte=start,  # footage is seen after it is recorded
    )
    about_holds = Q(object_type=Hold._meta.label, object_id__in=[str(h.pk) for h in holds])
    rows = AuditEntry.objects.filter(views | about_holds | Q(details__incident=incident.pk))
    return [
        row
        for row in rows.order_by("id")
        if row.action not in RECORDED_VIEWS or _shows(row, start, end)
    ]


def _range(incident: Incident, holds: list[Hold]) -> tuple[datetime, datetime]:
    own = [hold for hold in holds if hold.source == HoldSource.INCIDENT]
    if own:
        start, end = own[0].start, own[0].end
    else:
        start = incident.opened_at - INCIDENT_HOLD_MARGIN
        end = incident.closed_at + INCIDENT_HOLD_MARGIN if incident.closed_at else OPEN_END
    if end >= OPEN_END:  # still open: held up to now
        end = timezone.now()
    return start, end


def _cameras(incident: Incident, holds: list[Hold]) -> set[int]:
    held = Hold.cameras.through.objects.filter(hold__in=holds).values_list("camera", flat=True)
    return set(incident_cameras(incident).values_list("id", flat=True)) | set(held)


def _shows(row: AuditEntry, start: datetime, end: datetime) -> bool:
    """Whether the footage the row's view showed overlaps [start, end]."""
    details = row.details
    first = (
        details.get("from") or details.get("frame") or details.get("at") or details.get("start")
    )
    last = details.get("until") or first
    try:
        shown = datetime.fromisoformat(first), datetime.fromisoformat(last)
    except (TypeError, ValueError):  # a row without its times: kept, never hidden
        return True
    return shown[0] <= end and shown[1] >= start
