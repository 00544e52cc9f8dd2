"""The district under test, in the bench's database.

`Bench High` has the one door every client of the first phases sees (the worst case:
every event goes to every socket). The district phase has schools, each with its doors
and its own staff, and a dispatch centre that sees every school: each event then goes
to the sockets whose users may see it, as in a real district.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

SLUG = "bench"
SCHOOLS, DOORS_PER_SCHOOL = 10, 4


@dataclass(frozen=True)
class Audience:
    name: str
    cookie: str
    buildings: frozenset[int] | None  # None: every building


@dataclass(frozen=True)
class Bench:
    secret: str
    everyone: Audience  # the one-building phases
    dispatch: Audience
    schools: list[Audience]
    doors: list[tuple[str, int]]  # the schools' doors: external id, building id


def bench_setup() -> Bench:
    import django

    django.setup()
    from accesslog.models import AccessSystem, Door
    from maps.models import Building, Campus, District

    district, _ = District.objects.get_or_create(name="Bench District")
    campus, _ = Campus.objects.get_or_create(district=district, name="Bench Campus")
    high, _ = Building.objects.get_or_create(campus=campus, name="Bench High")
    system, _ = AccessSystem.objects.get_or_create(slug=SLUG, defaults={"name": "Bench"})
    Door.objects.get_or_create(
        system=system, external_id="door-1", defaults={"building": high, "name": "Gym"}
    )
    schools, doors = [], []
    for number in range(1, SCHOOLS + 1):
        school_campus, _ = Campus.objects.get_or_create(district=district, name=f"Campus {number}")
        school, _ = Building.objects.get_or_create(campus=school_campus, name=f"School {number}")
        for door in range(1, DOORS_PER_SCHOOL + 1):
            external_id = f"school-{number}-door-{door}"
            Door.objects.get_or_create(
                system=system,
                external_id=external_id,
                defaults={"building": school, "name": f"Door {door}"},
            )
            doors.append((external_id, school.id))
        schools.append(_audience(f"bench-school-{number}", building=school))
    return Bench(
        secret=system.webhook_secret,
        everyone=_audience("bench-officer", building=high),
        dispatch=_audience("bench-dispatch", building=None),
        schools=schools,
        doors=doors,
    )


def _audience(username: str, *, building: object | None) -> Audience:
    """A user with the alarms capability on one building (None: district-wide), signed in
    with a verified second factor; the session cookie its sockets send."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from responder.core.middleware import SIGNED_IN_AT
    from responder.core.models import Grant

    user, _ = User.objects.get_or_create(username=username)
    Grant.objects.get_or_create(user=user, building=building, capabilities=["alarms"])
    device = TOTPDevice.objects.create(user=user, name="bench")
    session = SessionStore()
    session.update(
        {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "responder.backends.LockoutModelBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
            SIGNED_IN_AT: time.time(),
            DEVICE_ID_SESSION_KEY: device.persistent_id,
        }
    )
    session.save()
    buildings = None if building is None else frozenset([building.id])
    return Audience(username, f"sessionid={session.session_key}", buildings)
