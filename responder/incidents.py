"""Incidents: opening one grants its responders time-boxed video access on its campus.

The grants are plain Grant rows with `incident` set, so every path (REST, sockets, HLS
tokens, pushes) sees them through the one scope rule with no special case.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from maps.models import Building, Campus
from responder.access import scope_q
from responder.audit import audit_record
from responder.capabilities import Capability
from responder.events import broadcast
from responder.models import Grant, Incident, IncidentEntry, IncidentRule, IncidentStatus
from responder.signals import grant_details

if TYPE_CHECKING:
    from accesslog.models import Event

# "Live access, and access to recordings since the incident began": the video paths
# bound recorded access by the grant's starts_at.
INCIDENT_CAPABILITIES = [Capability.LIVE.value, Capability.RECORDED.value]


class EntryKind:
    OPENED = "opened"
    CLOSED = "closed"
    EVENT = "event"
    NOTE = "note"
    ASSIGNED = "assigned"
    GRANT_STARTED = "grant_started"
    GRANT_ENDED = "grant_ended"


def incidents_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Incident]:
    """Incidents on campuses where the user runs incidents, or that name them as responder."""
    if not user.is_authenticated or not user.is_active:
        return Incident.objects.none()
    q = Q(campus__in=incident_campuses(user))
    q |= Q(responders=user) | Q(responder_groups__in=user.groups.all())
    return Incident.objects.filter(id__in=Incident.objects.filter(q).values("id"))


def incident_campuses(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Campus]:
    """Campuses where the user holds the incidents capability (a building grant counts)."""
    q = scope_q(user, Capability.INCIDENTS, building="id")
    if not q:
        return Campus.objects.all()
    return Campus.objects.filter(id__in=Building.objects.filter(q).values("campus"))


@dataclass(frozen=True)
class IncidentScope:
    """Which incident frames a socket may receive, decided in memory per message."""

    user_id: int
    campuses: frozenset[int] | None  # None: every campus
    groups: frozenset[int]

    def covers(self, payload: dict) -> bool:
        return (
            self.campuses is None
            or payload["campus"] in self.campuses
            or self.user_id in payload["responders"]
            or not self.groups.isdisjoint(payload["responder_groups"])
        )


def incident_scope(user: AbstractBaseUser) -> IncidentScope:
    q = scope_q(user, Capability.INCIDENTS, building="id")
    campuses = None if not q else frozenset(incident_campuses(user).values_list("id", flat=True))
    groups = frozenset(user.groups.values_list("id", flat=True))
    return IncidentScope(user.pk, campuses, groups)


def may_run(user: AbstractBaseUser | AnonymousUser, campus: Campus) -> bool:
    return incident_campuses(user).filter(pk=campus.pk).exists()


@transaction.atomic
def incident_open(
    *,
    campus: Campus,
    title: str,
    by: AbstractBaseUser | None,
    responder_groups: Iterable[Group],
    grant_hours: int,
    source_event: Event | None = None,
    opened_at: datetime | None = None,
) -> Incident:
    opened_at = opened_at or timezone.now()
    incident = Incident.objects.create(
        campus=campus,
        title=title,
        opened_by=by,
        opened_at=opened_at,
        source_event=source_event,
        grant_hours=grant_hours,
    )
    groups = list(responder_groups)
    incident.responder_groups.set(groups)
    audit_record(action="incident.opened", user=by, obj=incident, details={"title": title})
    _entry(incident, EntryKind.OPENED, user=by, text=title)
    if source_event is not None:
        _entry(incident, EntryKind.EVENT, event=source_event, at=source_event.occurred_at)
    for group in groups:
        _grant_start(incident, by=by, group=group)
    incident_announce(incident)
    _wake_responders(incident)
    return incident


@transaction.atomic
def incident_close(*, incident: Incident, by: AbstractBaseUser | None) -> Incident:
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    if incident.status == IncidentStatus.CLOSED:
        return incident
    now = timezone.now()
    incident.status = IncidentStatus.CLOSED
    incident.closed_at = now
    incident.save(update_fields=["status", "closed_at"])
    audit_record(action="incident.closed", user=by, obj=incident)
    _entry(incident, EntryKind.CLOSED, user=by)
    for grant in incident.grants.active():
        grant.ends_at = now
        grant.save(update_fields=["ends_at"])  # the post_save signal re-checks sockets
        _grant_ended(incident, grant, by=by)
    incident_announce(incident)
    return incident


def incident_note_add(*, incident: Incident, by: AbstractBaseUser, text: str) -> IncidentEntry:
    entry = _entry(incident, EntryKind.NOTE, user=by, text=text)
    incident_announce(incident)
    return entry


@transaction.atomic
def incident_assign(
    *, incident: Incident, by: AbstractBaseUser, users: Iterable[AbstractBaseUser]
) -> Incident:
    """Names users as responders; while the incident is open they get its video access."""
    for user in users:
        if incident.responders.filter(pk=user.pk).exists():
            continue
        incident.responders.add(user)
        _entry(incident, EntryKind.ASSIGNED, user=by, text=user.get_username())
        audit_record(
            action="incident.assigned",
            user=by,
            obj=incident,
            details={"responder": user.get_username()},
        )
        if incident.status == IncidentStatus.OPEN and _grants_end(incident) > timezone.now():
            _grant_start(incident, by=by, user=user)
            _wake_responders(incident, user_ids=[user.pk])
    incident_announce(incident)
    return incident


def incident_grants_expire() -> int:
    """Records the end of grants that ran out of hours (beat). Idempotent: once per grant."""
    now = timezone.now()
    ended = 0
    # A week back is plenty for a beat task that runs every minute.
    expired = Grant.objects.filter(
        incident__isnull=False, ends_at__lte=now, ends_at__gt=now - timedelta(days=7)
    ).select_related("incident", "group", "user", "campus")
    recorded = set(
        IncidentEntry.objects.filter(kind=EntryKind.GRANT_ENDED).values_list("text", flat=True)
    )
    for grant in expired:
        if _grant_label(grant) in recorded:
            continue
        with transaction.atomic():
            _grant_ended(grant.incident, grant, by=None)
        ended += 1
    return ended


def incident_rule_for(
    *, campus_id: int, event_type: str, rules: Iterable[IncidentRule] | None = None
) -> IncidentRule | None:
    """The enabled rule, for the campus or district-wide, that an event of this type meets.

    `rules`: the enabled rules, when the caller holds them (ingest's accesslog.directory).
    """
    if rules is None:
        rules = IncidentRule.objects.filter(enabled=True)
    return next(
        (r for r in rules if r.campus_id in (None, campus_id) and event_type in r.event_types),
        None,
    )


@transaction.atomic
def incident_for_alarm(*, event: Event, rule: IncidentRule | None = None) -> Incident | None:
    """Applies the incident rules to a stored event; call inside the ingest transaction.

    An alarm matching a rule opens an incident on its campus unless one is open there;
    then the event joins the open incident's timeline instead. `rule`: the one the caller
    already found with `incident_rule_for` (ingest looks before it takes the seq lock).
    """
    door = event.door
    if door is None:
        return None
    campus_id = door.building.campus_id
    rule = rule or incident_rule_for(campus_id=campus_id, event_type=event.type)
    if rule is None:
        return None
    # The campus row lock serialises concurrent alarms: one incident per campus, not two.
    campus = Campus.objects.select_for_update().get(pk=campus_id)
    open_incident = campus.incidents.filter(status=IncidentStatus.OPEN).first()
    if open_incident is not None:
        _entry(open_incident, EntryKind.EVENT, event=event, at=event.occurred_at)
        incident_announce(open_incident)
        return open_incident
    return incident_open(
        campus=campus,
        title=f"{event.get_type_display()}: {door.name}",
        by=None,
        responder_groups=rule.responder_groups.all(),
        grant_hours=rule.grant_hours,
        source_event=event,
        # Recordings since the incident began: the alarm, not the moment it was stored.
        opened_at=min(event.occurred_at, timezone.now()),
    )


def incident_payload(incident: Incident) -> dict:
    """The incident's shape on the socket (and in the REST list)."""
    return {
        "id": incident.id,
        "campus": incident.campus_id,
        "title": incident.title,
        "status": incident.status,
        "opened_at": incident.opened_at.isoformat(),
        "closed_at": incident.closed_at and incident.closed_at.isoformat(),
        "source_event": incident.source_event_id,
        "responder_groups": sorted(g.id for g in incident.responder_groups.all()),
        "responders": sorted(u.id for u in incident.responders.all()),
        "grant_hours": incident.grant_hours,
    }


def incident_announce(incident: Incident) -> None:
    """Rings the sockets after commit with the incident's new state.

    Audience: `incident_scope(user).covers(message["incident"])`.
    """
    message = {"incident": incident_payload(incident)}
    transaction.on_commit(lambda: broadcast("incidents", message))


def _wake_responders(incident: Incident, *, user_ids: list[int] | None = None) -> None:
    from responder.tasks import push_incident  # the tasks import this module

    transaction.on_commit(lambda: push_incident.delay(incident.id, user_ids))


def _grant_start(
    incident: Incident,
    *,
    by: AbstractBaseUser | None,
    group: Group | None = None,
    user: AbstractBaseUser | None = None,
) -> Grant:
    grant = Grant.objects.create(
        group=group,
        user=user,
        incident=incident,
        campus=incident.campus,
        capabilities=INCIDENT_CAPABILITIES,
        starts_at=incident.opened_at,
        ends_at=_grants_end(incident),
        note=f"Incident #{incident.pk}: {incident.title}"[:200],
    )
    audit_record(action="incident.grant_started", user=by, obj=grant, details=grant_details(grant))
    _entry(incident, EntryKind.GRANT_STARTED, user=by, text=_grant_label(grant))
    return grant


def _grant_ended(incident: Incident, grant: Grant, *, by: AbstractBaseUser | None) -> None:
    audit_record(action="incident.grant_ended", user=by, obj=grant, details=grant_details(grant))
    _entry(incident, EntryKind.GRANT_ENDED, user=by, text=_grant_label(grant))


def _grants_end(incident: Incident) -> datetime:
    return incident.opened_at + timedelta(hours=incident.grant_hours)


def _grant_label(grant: Grant) -> str:
    # Also the key that makes incident_grants_expire record each grant's end once.
    caps = " and ".join(grant.capabilities)
    return f"Grant #{grant.pk}: {grant.grantee} — {caps} video on {grant.campus}"


def _entry(
    incident: Incident,
    kind: str,
    *,
    user: AbstractBaseUser | None = None,
    event: Event | None = None,
    text: str = "",
    at: datetime | None = None,
) -> IncidentEntry:
    return IncidentEntry.objects.create(
        incident=incident, kind=kind, user=user, event=event, text=text, at=at or timezone.now()
    )
