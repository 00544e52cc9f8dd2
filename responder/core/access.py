"""Who may see what: the one rule every path asks (REST, WebSocket, HLS tokens, pushes)."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db.models import Q

from responder.core.capabilities import Capability
from responder.core.models import Grant

NOTHING = Q(pk__in=[])


def active_grants(user: User | AnonymousUser) -> list[Grant]:
    """The user's grants in force, read once per user object (one request, one socket)."""
    if not user.is_authenticated or not user.is_active:
        return []
    cached = getattr(user, "_active_grants", None)
    if cached is None:
        query = Grant.objects.active().for_user(user).prefetch_related("tags")
        # Cached on the user object itself: it lives as long as the request or socket.
        cached = user._active_grants = list(query)  # type: ignore[attr-defined]
    return cached


def signed_in(user: User | AnonymousUser) -> User:
    """The user of a request its view's permissions let in: signed in, never anonymous."""
    if not isinstance(user, User):
        raise PermissionDenied("Sign in first.")
    return user


def forget_grants(user: User) -> None:
    user.__dict__.pop("_active_grants", None)


def capabilities(user: User | AnonymousUser) -> set[str]:
    if user.is_authenticated and user.is_active and user.is_superuser:
        return set(Capability.values)
    return {cap for grant in active_grants(user) for cap in grant.capabilities}


def is_district_it(user: User | AnonymousUser) -> bool:
    """Superusers, and holders of `manage` over the whole district: IT's warnings reach them."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return any(
        Capability.MANAGE in grant.capabilities
        and not (grant.campus_id or grant.building_id or grant.tags.all())
        for grant in active_grants(user)
    )


def scope_q(
    user: User | AnonymousUser,
    *capabilities: Capability,
    building: str,
    tags: str | None = None,
) -> Q:
    """A filter for the objects the user may see with any of these capabilities.

    `building` is the lookup from the object to its building ("building", or "id" for
    buildings themselves); `tags` the lookup to its camera tags, if it has any. Objects
    without tags are outside every tag-scoped grant.
    """
    if user.is_authenticated and user.is_active and user.is_superuser:
        return Q()
    result = NOTHING
    for grant in active_grants(user):
        if set(capabilities).isdisjoint(grant.capabilities):
            continue
        grant_q = _grant_q(grant, building=building, tags=tags)
        if grant_q is None:
            continue
        if not grant_q:
            return Q()
        result |= grant_q
    return result


def _grant_q(grant: Grant, *, building: str, tags: str | None) -> Q | None:
    q = Q()
    if grant.campus_id:
        q &= Q(**{_path(building, "campus"): grant.campus_id})
    if grant.building_id:
        q &= Q(**{building: grant.building_id})
    tag_ids = [tag.id for tag in grant.tags.all()]
    if tag_ids:
        if tags is None:
            return None
        q &= Q(**{f"{tags}__in": tag_ids})
    return q


def _path(building: str, field: str) -> str:
    return field if building == "id" else f"{building}__{field}"
