"""Writes of the evidence app: exports and their share links. The zip itself: builder.py."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.http import Http404, HttpRequest
from django.utils import timezone

from cameras.models import Camera
from responder.core.audit import audit_record
from responder.core.capabilities import Capability
from responder.core.models import Incident
from responder.evidence import tasks
from responder.evidence.models import Export, ExportStatus, Share
from responder.recording.models import HoldSource
from responder.recording.services import hold_create

MAX_CAMERAS = 16
SHARE_DEFAULT_DAYS = 7
SHARE_MAX_DAYS = 30
# 32 bytes: 256 bits, twice the floor of 128.
SHARE_TOKEN_BYTES = 32


def export_cameras(*, user: User, camera_ids: Sequence[int]) -> list[Camera]:
    """The cameras asked for, each in the user's scope with `export`; one outside: 404."""
    wanted = set(camera_ids)
    allowed = Camera.objects.visible_to(user, Capability.EXPORT).select_related("building")
    cameras = list(allowed.filter(pk__in=wanted))
    if len(cameras) != len(wanted):
        raise Http404("No such camera.")
    return sorted(cameras, key=lambda camera: camera.pk)


def export_incident(*, cameras: list[Camera], incident_id: int | None) -> Incident | None:
    """The incident the export belongs to: one on the campus of a camera exported (the
    user may export those cameras); any other is 404, as if it did not exist."""
    if incident_id is None:
        return None
    campuses = {camera.building.campus_id for camera in cameras}
    incident = Incident.objects.filter(pk=incident_id, campus_id__in=campuses).first()
    if incident is None:
        raise Http404("No such incident.")
    return incident


@transaction.atomic
def export_create(
    *,
    user: User,
    camera_ids: Sequence[int],
    start: datetime,
    end: datetime,
    reason: str,
    incident_id: int | None,
    request: HttpRequest | None = None,
) -> tuple[Export, bool]:
    """The export (and whether it is new). Its hold is placed before the build is queued,
    so retention can never delete a segment the build is about to read."""
    cameras = export_cameras(user=user, camera_ids=camera_ids)
    incident = export_incident(cameras=cameras, incident_id=incident_id)
    # One user's identical requests serialise here: a double tap builds once.
    User.objects.select_for_update().filter(pk=user.pk).first()
    same = _building_twin(user, cameras, start, end, reason, incident)
    if same is not None:
        return same, False
    export = Export.objects.create(
        start=start, end=end, reason=reason, incident=incident, created_by=user
    )
    export.cameras.set(cameras)
    export.hold = hold_create(
        cameras=cameras, start=start, end=end, reason=f"Evidence export {export.pk}: {reason}",
        by=user, source=HoldSource.EXPORT, incident=incident,
    )  # fmt: skip
    export.save(update_fields=["hold"])
    audit_record(
        action="evidence.created", request=request, user=user, obj=export,
        details=export_details(export),
    )  # fmt: skip
    transaction.on_commit(lambda: tasks.export_build.delay(export.pk))
    return export, True


def _building_twin(
    user: User,
    cameras: list[Camera],
    start: datetime,
    end: datetime,
    reason: str,
    incident: Incident | None,
) -> Export | None:
    candidates = Export.objects.building().filter(
        created_by=user, start=start, end=end, reason=reason, incident=incident
    )
    ids = [camera.pk for camera in cameras]
    for export in candidates.prefetch_related("cameras"):
        if sorted(camera.pk for camera in export.cameras.all()) == ids:
            return export
    return None


def export_details(export: Export) -> dict:
    return {
        "cameras": sorted(export.cameras.values_list("id", flat=True)),
        "start": export.start.isoformat(),
        "end": export.end.isoformat(),
        "reason": export.reason,
        "incident": export.incident_id,
    }


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def share_create(
    *,
    export: Export,
    user: User,
    expires_in_days: int = SHARE_DEFAULT_DAYS,
    note: str = "",
    request: HttpRequest | None = None,
) -> tuple[Share, str]:
    """The share and its token: shown once, in the link; only its hash is kept."""
    token = secrets.token_urlsafe(SHARE_TOKEN_BYTES)
    now = timezone.now()
    share = Share.objects.create(
        export=export,
        token_sha256=token_digest(token),
        note=note,
        created_by=user,
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days),
    )
    audit_record(
        action="evidence.shared", request=request, user=user, obj=export,
        details={"share": share.pk, "note": note, "expires_at": share.expires_at.isoformat()},
    )  # fmt: skip
    return share, token


@transaction.atomic
def share_revoke(*, share: Share, user: User, request: HttpRequest | None = None) -> None:
    if share.revoked_at is None:
        share.revoked_at, share.revoked_by = timezone.now(), user
        share.save(update_fields=["revoked_at", "revoked_by"])
    audit_record(
        action="evidence.share_revoked", request=request, user=user, obj=share.export,
        details={"share": share.pk, "note": share.note},
    )  # fmt: skip


def share_find(token: str) -> Share | None:
    """The share of this token, usable or not (the page tells 410 from 404)."""
    if not token or len(token) > 100:
        return None
    return Share.objects.select_related("export").filter(token_sha256=token_digest(token)).first()


def export_is_ready(export: Export) -> bool:
    return export.status == ExportStatus.READY and bool(export.path)
