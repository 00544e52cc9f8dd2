"""Incidents: opening one grants its responders time-boxed video access on its campus.

The grants are plain Grant rows with `incident` set, so every path (REST, sockets, HLS
tokens, pushes) sees them through the one scope rule with no special case.

What a user may make an incident grant (issue 12), checked by `incident_request`,
`incident_assign` and `incident_extend`:

- Reach: an incident covers its campus, or one building of it. A user may open (and run)
  an incident only over buildings their own `incidents` grants cover: a campus-wide one
  needs every building of the campus; a user whose grant covers one building names that
  building, and the incident's grants cover that building only.
- Who: only the groups IT marks as responder roles with emergency access (ResponderRole;
  police and fire by default) can be named, and only their active members assigned.
  Nobody gives themselves emergency access: not by assigning themselves, not by naming
  a group they belong to.
- How long: at most INCIDENT_MAX_HOURS; an extension needs a reason, is audited and
  reaches at most INCIDENT_MAX_HOURS past its own moment.
- Seen: every grant an incident makes is a warning frame on district IT's sockets and a
  row in the admin's list of emergency grants.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Group, User
from django.db import transaction
from django.db.models import Q, QuerySet
from django.dispatch import Signal
from django.utils import timezone

from maps.models import Building, Campus
from responder.core.access import scope_q
from responder.core.announce import announce_on_commit, it_warn
from responder.core.audit import audit_record
from responder.core.capabilities import Capability
from responder.core.models import (
    EntryKind,
    Grant,
    Incident,
    IncidentEntry,
    IncidentRule,
    IncidentStatus,
)
from responder.core.signals import grant_details
from responder.recording.services import incident_hold_update

if TYPE_CHECKING:
    from accesslog.models import Event

# "Live access, and access to recordings since the incident began": the video paths
# bound recorded access by the grant's starts_at.
INCIDENT_CAPABILITIES = [Capability.LIVE.value, Capability.RECORDED.value]


# The incident's responders must be woken (their phones pushed): sent after commit, with
# incident_id and user_ids (None: all of them). responder.push connects to it at start.
incident_wake = Signal()


class IncidentRefused(Exception):
    """A request the rules above refuse: `field` is the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def incidents_visible_to(user: User | AnonymousUser) -> QuerySet[Incident]:
    """Incidents on campuses where the user runs incidents, or that name them as responder."""
    if not user.is_authenticated or not user.is_active:
        return Incident.objects.none()
    q = Q(campus__in=incident_campuses(user))
    q |= Q(responders=user) | Q(responder_groups__in=user.groups.all())
    return Incident.objects.filter(id__in=Incident.objects.filter(q).values("id"))


def incident_campuses(user: User | AnonymousUser) -> QuerySet[Campus]:
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


def incident_scope(user: User) -> IncidentScope:
    q = scope_q(user, Capability.INCIDENTS, building="id")
    campuses = None if not q else frozenset(incident_campuses(user).values_list("id", flat=True))
    groups = frozenset(user.groups.values_list("id", flat=True))
    return IncidentScope(user.pk, campuses, groups)


def incident_buildings(user: User | AnonymousUser) -> QuerySet[Building]:
    """Buildings where the user holds the incidents capability."""
    return Building.objects.filter(scope_q(user, Capability.INCIDENTS, building="id"))


def reach_covered(
    user: User | AnonymousUser, *, campus: Campus, building: Building | None
) -> bool:
    """Whether the user's own incidents scope covers this reach: one building, or all of a campus."""
    if building is not None:
        return (
            building.campus_id == campus.pk
            and incident_buildings(user).filter(pk=building.pk).exists()
        )
    q = scope_q(user, Capability.INCIDENTS, building="id")
    return not q or (
        incident_campuses(user).filter(pk=campus.pk).exists()
        and not Building.objects.filter(campus=campus).exclude(q).exists()
    )


def may_run(user: User | AnonymousUser, incident: Incident) -> bool:
    """Closing, assigning and extending need incidents over the incident's whole reach."""
    return reach_covered(user, campus=incident.campus, building=incident.building)


def emergency_groups() -> QuerySet[Group]:
    """The responder roles IT lets incidents give emergency access (police and fire)."""
    return Group.objects.filter(responder_role__emergency_access=True)


def nameable_groups(*, by: User) -> QuerySet[Group]:
    """The responder roles `by` may name on an incident they open: none of their own
    (a superuser's excepted), none to whoever opens no incident."""
    if not incident_campuses(by).exists():
        return Group.objects.none()
    groups = emergency_groups()
    if not by.is_superuser:
        groups = groups.exclude(pk__in=by.groups.values("pk"))
    return groups.order_by("name")


def assignable_users(*, by: User) -> QuerySet:
    """Whom `by` may assign: active members of a responder role, never `by` themselves."""
    members = (
        get_user_model()
        .objects.filter(is_active=True, groups__in=emergency_groups())
        .exclude(pk=by.pk)
    )
    return get_user_model().objects.filter(pk__in=members.values("pk"))


def incident_request(
    *,
    by: User,
    campus: Campus,
    building: Building | None,
    title: str,
    responder_groups: Iterable[Group],
    grant_hours: int,
) -> Incident:
    """An incident a user opens, held to their own scope (the rules above)."""
    groups = list(responder_groups)
    if not reach_covered(by, campus=campus, building=building):
        raise IncidentRefused(
            "building",
            "Your incidents access does not cover all of this campus: name a building it covers.",
        )
    eligible = set(emergency_groups().values_list("pk", flat=True))
    if any(group.pk not in eligible for group in groups):
        raise IncidentRefused("responder_groups", "Only responder roles can be named.")
    if not by.is_superuser and by.groups.filter(pk__in=[g.pk for g in groups]).exists():
        raise IncidentRefused(
            "responder_groups", "An incident cannot name a group you belong to: no self-grants."
        )
    if grant_hours > settings.INCIDENT_MAX_HOURS:
        raise IncidentRefused(
            "grant_hours", f"At most {settings.INCIDENT_MAX_HOURS} hours; extend it later."
        )
    return incident_open(
        campus=campus,
        building=building,
        title=title,
        by=by,
        responder_groups=groups,
        grant_hours=grant_hours,
    )


@transaction.atomic
def incident_open(
    *,
    campus: Campus,
    title: str,
    by: User | None,
    responder_groups: Iterable[Group],
    grant_hours: int,
    source_event: Event | None = None,
    opened_at: datetime | None = None,
    building: Building | None = None,
) -> Incident:
    """Opens it as asked; callers hold the rules: `incident_request` for users, IT's rules."""
    opened_at = opened_at or timezone.now()
    grant_hours = min(grant_hours, settings.INCIDENT_MAX_HOURS)
    incident = Incident.objects.create(
        campus=campus,
        building=building,
        title=title,
        opened_by=by,
        opened_at=opened_at,
        source_event=source_event,
        grant_hours=grant_hours,
        grants_end_at=opened_at + timedelta(hours=grant_hours),
    )
    groups = list(responder_groups)
    incident.responder_groups.set(groups)
    # Its cameras' footage is kept (issue 17). First: the holds lock is taken before the
    # audit chain's head, in every transaction (docs/CUSTODY.md), so none waits in a circle.
    incident_hold_update(incident=incident)
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
def incident_close(*, incident: Incident, by: User | None) -> Incident:
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    if incident.status == IncidentStatus.CLOSED:
        return incident
    now = timezone.now()
    incident.status = IncidentStatus.CLOSED
    incident.closed_at = now
    incident.grants_end_at = min(incident.grants_end_at, now)
    incident.save(update_fields=["status", "closed_at", "grants_end_at"])
    incident_hold_update(incident=incident)  # held until 10 min after; before the audit
    audit_record(action="incident.closed", user=by, obj=incident)
    _entry(incident, EntryKind.CLOSED, user=by)
    for grant in incident.grants.active():
        grant.ends_at = now
        grant.save(update_fields=["ends_at"])  # the post_save signal re-checks sockets
        _grant_ended(incident, grant, by=by)
    incident_announce(incident)
    return incident


def incident_note_add(*, incident: Incident, by: User, text: str) -> IncidentEntry:
    entry = _entry(incident, EntryKind.NOTE, user=by, text=text)
    incident_announce(incident)
    return entry


@transaction.atomic
def incident_assign(*, incident: Incident, by: User, users: Iterable[User]) -> Incident:
    """Names responders; while the incident is open they get its video access.

    Only `assignable_users(by=by)`: the same refusal for every other name, so it tells
    nothing about who exists.
    """
    users = list(users)
    allowed = set(
        assignable_users(by=by).filter(pk__in=[u.pk for u in users]).values_list("pk", flat=True)
    )
    refused = [user.get_username() for user in users if user.pk not in allowed]
    if refused:
        raise IncidentRefused("users", unassignable_message(refused))
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
        if incident.status == IncidentStatus.OPEN and incident.grants_end_at > timezone.now():
            _grant_start(incident, by=by, user=user)
            _wake_responders(incident, user_ids=[user.pk])
    incident_announce(incident)
    return incident


def unassignable_message(names: Iterable[str]) -> str:
    return f"No responder you may assign is named {', '.join(sorted(set(names)))}."


@transaction.atomic
def incident_extend(*, incident: Incident, by: User, hours: int, reason: str) -> Incident:
    """Moves the end of the incident's emergency access to `hours` from now, for a reason."""
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    now = timezone.now()
    if incident.status == IncidentStatus.CLOSED:
        raise IncidentRefused("detail", "The incident is closed.")
    if incident.grants_end_at <= now:
        raise IncidentRefused("detail", "Its emergency access has ended: open a new incident.")
    if not 1 <= hours <= settings.INCIDENT_MAX_HOURS:
        raise IncidentRefused("hours", f"From 1 to {settings.INCIDENT_MAX_HOURS} hours.")
    if not reason.strip():
        raise IncidentRefused("reason", "Say why the access must last longer.")
    ends_at = now + timedelta(hours=hours)
    if ends_at <= incident.grants_end_at:
        raise IncidentRefused("hours", "The access already lasts that long.")
    before = incident.grants_end_at
    incident.grants_end_at = ends_at
    incident.save(update_fields=["grants_end_at"])
    for grant in incident.grants.active():
        grant.ends_at = ends_at
        grant.save(update_fields=["ends_at"])
    details = {"reason": reason, "from": before.isoformat(), "to": ends_at.isoformat()}
    audit_record(action="incident.extended", user=by, obj=incident, details=details)
    _entry(
        incident, EntryKind.EXTENDED, user=by, text=f"Until {ends_at:%Y-%m-%d %H:%M} UTC: {reason}"
    )
    it_warn(
        kind="incident.extended",
        text=f"{by.get_username()} extended the emergency access of incident #{incident.pk} "
        f"({incident.title}) by {hours} h: {reason}",
        details={"incident": incident.pk, **details},
    )
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
            _grant_ended(grant.incident, grant, by=None)  # type: ignore[arg-type]  # incident__isnull=False
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
        _retitle(open_incident)
        incident_announce(open_incident)
        return open_incident
    return incident_open(
        campus=campus,
        title=alarm_incident_title(campus=campus, event_type=event.get_type_display(), doors=1),
        by=None,
        # IT's rule, held to IT's own list of responder roles all the same.
        responder_groups=rule.responder_groups.filter(pk__in=emergency_groups()),
        grant_hours=rule.grant_hours,
        source_event=event,
        # Recordings since the incident began: the alarm, not the moment it was stored.
        opened_at=min(event.occurred_at, timezone.now()),
    )


def alarm_incident_title(*, campus: Campus, event_type: str, doors: int) -> str:
    """What an incident opened by an alarm is: where, what started it, how far it spread."""
    return f"{campus.name}: {event_type}, {doors} door{'' if doors == 1 else 's'}"[:200]


def _retitle(incident: Incident) -> None:
    # Only titles a rule wrote follow the doors: a person's own title is theirs to keep.
    source = incident.source_event
    if incident.opened_by_id is not None or source is None:
        return
    events = incident.timeline.filter(kind=EntryKind.EVENT).exclude(event__door=None)
    count = events.values("event__door").distinct().count()
    title = alarm_incident_title(
        campus=incident.campus, event_type=source.get_type_display(), doors=max(count, 1)
    )
    if title != incident.title:
        incident.title = title
        incident.save(update_fields=["title"])


def incident_payload(incident: Incident) -> dict:
    """The incident's shape on the socket (and in the REST list)."""
    return {
        "id": incident.id,
        "campus": incident.campus_id,
        "building": incident.building_id,
        "title": incident.title,
        "status": incident.status,
        "opened_at": incident.opened_at.isoformat(),
        "closed_at": incident.closed_at and incident.closed_at.isoformat(),
        "source_event": incident.source_event_id,
        "responder_groups": sorted(g.id for g in incident.responder_groups.all()),
        "responders": sorted(u.id for u in incident.responders.all()),
        "grant_hours": incident.grant_hours,
        "grants_end_at": incident.grants_end_at.isoformat(),
    }


def incident_announce(incident: Incident) -> None:
    """Rings the sockets after commit with the incident's new state.

    Audience: `incident_scope(user).covers(message["incident"])`.
    """
    announce_on_commit("incidents", {"incident": incident_payload(incident)})


def _wake_responders(incident: Incident, *, user_ids: list[int] | None = None) -> None:
    # After commit; responder.push receives it (push sits above incidents).
    transaction.on_commit(
        lambda: incident_wake.send(Incident, incident_id=incident.id, user_ids=user_ids)
    )


def _grant_start(
    incident: Incident,
    *,
    by: User | None,
    group: Group | None = None,
    user: User | None = None,
) -> Grant:
    grant = Grant.objects.create(
        group=group,
        user=user,
        incident=incident,
        campus=incident.campus,
        building=incident.building,
        capabilities=INCIDENT_CAPABILITIES,
        starts_at=incident.opened_at,
        ends_at=incident.grants_end_at,
        note=f"Incident #{incident.pk}: {incident.title}"[:200],
    )
    details = grant_details(grant)
    audit_record(action="incident.grant_started", user=by, obj=grant, details=details)
    _entry(incident, EntryKind.GRANT_STARTED, user=by, text=_grant_label(grant))
    opener = by.get_username() if by else "an alarm rule"
    it_warn(
        kind="incident.emergency_grant",
        text=f"Emergency access: {grant.grantee} has live and recorded video on "
        f"{grant.scope_label} until {grant.ends_at:%Y-%m-%d %H:%M} UTC "
        f"(incident #{incident.pk}, {incident.title}, by {opener}).",
        details={**details, "grant": grant.pk, "opened_by": by and by.get_username()},
    )
    return grant


def _grant_ended(incident: Incident, grant: Grant, *, by: User | None) -> None:
    audit_record(action="incident.grant_ended", user=by, obj=grant, details=grant_details(grant))
    _entry(incident, EntryKind.GRANT_ENDED, user=by, text=_grant_label(grant))


def _grant_label(grant: Grant) -> str:
    # Also the key that makes incident_grants_expire record each grant's end once.
    caps = " and ".join(grant.capabilities)
    return f"Grant #{grant.pk}: {grant.grantee} — {caps} video on {grant.scope_label}"


def _entry(
    incident: Incident,
    kind: str,
    *,
    user: User | None = None,
    event: Event | None = None,
    text: str = "",
    at: datetime | None = None,
) -> IncidentEntry:
    return IncidentEntry.objects.create(
        incident=incident, kind=kind, user=user, event=event, text=text, at=at or timezone.now()
    )
