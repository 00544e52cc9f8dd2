"""Holds: footage retention and the disk guard never delete (issue 17 builds its API on these).

Placing a hold and deleting segments serialise on one PostgreSQL advisory lock: the
deleter takes it alone, holders share it. So a hold committed before a deletion starts
is seen by that deletion's query, and footage an export is about to read (it holds first)
can never go between the deleter's check and its commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from cameras.models import Camera
from responder.core.audit import audit_record
from responder.core.models import Incident, IncidentStatus
from responder.recording.models import Hold, HoldSource

# Issue 17: "an incident holds its cameras' footage from 10 min before it opened to 10
# min after it closed".
INCIDENT_HOLD_MARGIN = timedelta(minutes=10)
# The end of an open incident's hold: footage after now does not exist yet, so an end
# far ahead holds everything recorded until the close sets the real one.
OPEN_END = datetime(9999, 1, 1, tzinfo=UTC)
_HOLDS_LOCK = 0x5EC0_4D01  # pg_advisory_xact_lock key: holds vs segment deletion


def holds_lock(*, shared: bool) -> None:
    """Inside a transaction. SQLite (the demo) has no advisory locks: one writer anyway."""
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [_HOLDS_LOCK])


@transaction.atomic
def hold_create(
    *,
    cameras: Iterable[Camera],
    start: datetime,
    end: datetime,
    reason: str,
    by: User | None,
    source: HoldSource = HoldSource.MANUAL,
    incident: Incident | None = None,
    until: datetime | None = None,
) -> Hold:
    holds_lock(shared=True)
    hold = Hold.objects.create(
        start=start,
        end=end,
        reason=reason,
        source=source,
        incident=incident,
        created_by=by,
        until=until,
    )
    # One INSERT for every camera (150 cameras: one statement, not 150).
    camera_ids = sorted({camera.pk for camera in cameras})
    Hold.cameras.through.objects.bulk_create(
        Hold.cameras.through(hold_id=hold.pk, camera_id=camera_id) for camera_id in camera_ids
    )
    audit_record(action="hold.placed", user=by, obj=hold, details=_hold_details(hold, camera_ids))
    return hold


class HoldRefused(Exception):
    """A release the rules refuse; the hold stays as it was."""


@transaction.atomic
def hold_release(*, hold: Hold, by: User | None, reason: str) -> Hold:
    """Ends a hold now: retention may delete its footage from then on. Audited with why;
    `by` None: the system (a failed export gives back its own hold)."""
    hold = Hold.objects.select_for_update(of=("self",)).select_related("incident").get(pk=hold.pk)
    if hold.released_at is not None:
        raise HoldRefused(f"Hold {hold.pk} was already released.")
    if (
        hold.source == HoldSource.INCIDENT
        and hold.incident
        and hold.incident.status == IncidentStatus.OPEN
    ):
        raise HoldRefused(
            f"Hold {hold.pk} keeps the footage of incident {hold.incident_id}, which is "
            "still open: it can be released once the incident is closed."
        )
    hold.released_at, hold.released_by, hold.release_reason = timezone.now(), by, reason
    hold.save(update_fields=["released_at", "released_by", "release_reason"])
    details = _hold_details(hold) | {"release_reason": reason}
    audit_record(action="hold.released", user=by, obj=hold, details=details)
    return hold


def incident_cameras(incident: Incident) -> QuerySet[Camera]:
    """The cameras of its reach: one building, or its whole campus."""
    if incident.building_id:
        return Camera.objects.filter(building_id=incident.building_id)
    return Camera.objects.filter(building__campus_id=incident.campus_id)


@transaction.atomic
def incident_hold_update(*, incident: Incident) -> Hold:
    """Creates the incident's hold at opening, moves its end at closing; the incidents
    services call it inside their own transactions."""
    start = incident.opened_at - INCIDENT_HOLD_MARGIN
    end = incident.closed_at + INCIDENT_HOLD_MARGIN if incident.closed_at else OPEN_END
    hold = Hold.objects.filter(incident=incident, source=HoldSource.INCIDENT).first()
    if hold is None:
        return hold_create(
            cameras=incident_cameras(incident),
            start=start,
            end=end,
            reason=f"Incident {incident.pk}: {incident.title}",
            by=None,
            source=HoldSource.INCIDENT,
            incident=incident,
        )
    holds_lock(shared=True)
    hold.start, hold.end = min(hold.start, start), end
    hold.save(update_fields=["start", "end"])
    hold.cameras.add(*incident_cameras(incident))
    audit_record(action="hold.extended", obj=hold, details=_hold_details(hold))
    return hold


def _hold_details(hold: Hold, camera_ids: list[int] | None = None) -> dict:
    if camera_ids is None:
        camera_ids = sorted(hold.cameras.values_list("id", flat=True))
    details: dict[str, object] = {
        "cameras": camera_ids,
        "start": hold.start.isoformat(),
        "end": hold.end.isoformat(),
        "source": hold.source,
        "reason": hold.reason,
    }
    # The custody convention (docs/CUSTODY.md): a row about an incident names it so.
    if hold.incident_id:
        details["incident"] = hold.incident_id
    return details
