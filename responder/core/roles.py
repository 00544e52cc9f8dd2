"""The roles of the case as groups, with default grants that district IT may then change.

The defaults are data, not code paths: `roles_ensure()` writes them once, and from then on
the admin is where IT changes them. It runs from `manage.py ensure_roles` (and seed_demo),
not from a data migration: a migration would put district-wide grants into every test
database and re-appear on flushes, and a command can also restore the defaults (--reset).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group
from django.db import transaction

from responder.core.capabilities import Capability
from responder.core.models import Grant, ResponderRole

DISTRICT_OFFICE = "District office"
SCHOOL_ADMINISTRATORS = "School administrators"
FACILITIES = "Facilities"
POLICE = "Police responders"
FIRE = "Fire responders"
DISTRICT_IT = "District IT"


@dataclass(frozen=True)
class DefaultGrant:
    """A district-wide grant, narrowed to cameras with any of `tags` when given."""

    capabilities: tuple[str, ...]
    tags: tuple[str, ...] = ()

    def key(self) -> tuple:
        return tuple(sorted(self.capabilities)), tuple(sorted(self.tags))


ALL = tuple(Capability.values)
ROLES: dict[str, tuple[DefaultGrant, ...]] = {
    DISTRICT_OFFICE: (DefaultGrant(tuple(c for c in ALL if c != Capability.MANAGE)),),
    # Administrators hold grants of their own, over their campus or building.
    SCHOOL_ADMINISTRATORS: (),
    FACILITIES: (DefaultGrant((Capability.LIVE,), tags=("parking", "exterior")),),
    POLICE: (DefaultGrant((Capability.ALARMS, Capability.LIVE)),),
    # Live video only through the time-boxed grants of an incident that names them.
    FIRE: (DefaultGrant((Capability.ALARMS,)),),
    DISTRICT_IT: (DefaultGrant(ALL),),
}
# What a school administrator's own grant, over their campus, holds unless IT says otherwise:
# their school's video and alarms, and its incidents (a principal must see the incident
# police are working at their school, not "No open incidents").
SCHOOL_ADMINISTRATOR_CAPABILITIES = (
    Capability.LIVE,
    Capability.RECORDED,
    Capability.EXPORT,
    Capability.ALARMS,
    Capability.INCIDENTS,
)
# The roles incidents may give emergency video (ResponderRole); IT changes it in the admin.
EMERGENCY_ROLES = (POLICE, FIRE)


def roles_ensure(*, reset: bool = False) -> list[Group]:
    """Creates the missing role groups with their default grants.

    An existing group keeps the grants IT gave it unless `reset`, which brings its
    standing grants (not an incident's, not time-boxed) back to the defaults. Rows that
    already match are not written, so a second run changes nothing and audits nothing.
    """
    groups = []
    with transaction.atomic():
        for name, defaults in ROLES.items():
            group, created = Group.objects.get_or_create(name=name)
            if created or reset:
                _grants_set(group, defaults)
            _responder_role_set(group, emergency=name in EMERGENCY_ROLES, reset=reset)
            groups.append(group)
    return groups


def _grants_set(group: Group, defaults: tuple[DefaultGrant, ...]) -> None:
    wanted = {grant.key(): grant for grant in defaults}
    for grant in _standing_grants(group):
        key = (tuple(sorted(grant.capabilities)), tuple(sorted(t.slug for t in grant.tags.all())))
        if key in wanted and not grant.campus_id and not grant.building_id:
            del wanted[key]
        else:
            grant.delete()
    for default in wanted.values():
        grant = Grant.objects.create(
            group=group, capabilities=list(default.capabilities), note="Role default"
        )
        if default.tags:
            # cameras.Tag, reached through the relation: core imports no app above it.
            tag = Grant._meta.get_field("tags").related_model
            grant.tags.set(tag._default_manager.get_or_create(slug=s)[0].pk for s in default.tags)


def _standing_grants(group: Group) -> list[Grant]:
    query = Grant.objects.filter(
        group=group, incident__isnull=True, starts_at__isnull=True, ends_at__isnull=True
    )
    return list(query.prefetch_related("tags"))


def _responder_role_set(group: Group, *, emergency: bool, reset: bool) -> None:
    role, created = ResponderRole.objects.get_or_create(
        group=group, defaults={"emergency_access": emergency}
    )
    if reset and not created and role.emergency_access != emergency:
        role.emergency_access = emergency
        role.save(update_fields=["emergency_access"])
