"""The scope rule's two mirrors agree: what a socket decides in memory is what SQL returns.

The fan-out (responder/fanout.py) filters every frame in memory, with the scopes computed
once per socket: `alarm_scope` + `in_scope` for events and acks, `camera_scope` for camera
notices and the cameras named in an event, `incident_scope(user).covers` for incidents.
REST lists the same objects through SQL (`visible_to`, `incidents_visible_to`). Hypothesis
builds small districts, people and grants and checks, object by object, that both say the
same. A mismatch is a user who sees on the socket what REST hides, or the reverse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from accesslog.models import AccessSystem, Door, Event, SystemKind
from cameras.models import Camera, Tag
from maps.models import Building, Campus, District, Floor
from responder.alarms.events import alarm_scope, camera_scope, in_scope
from responder.core.capabilities import VIEWING, Capability
from responder.core.models import Grant, Incident
from responder.incidents.services import incident_payload, incident_scope, incidents_visible_to

# Passing takes under a minute; a failure shrinks its counterexample for up to hypothesis's
# five minutes before reporting it, which the suite's 300 s timeout would cut short.
pytestmark = pytest.mark.timeout(900)

# Frozen: a grant that starts or ends exactly now is on the boundary, every run alike.
NOW = datetime(2030, 3, 4, 12, 0, tzinfo=UTC)
TAGS = ("parking", "hallway", "exterior")
# Around now: already started / ended, exactly now, not yet; open-ended most often.
MOMENTS = (None, None, None, -timedelta(hours=1), timedelta(0), timedelta(hours=1))
# Weighted to what the three mirrors read (alarms, viewing, incidents); all can be drawn.
# Hypothesis starts from the first of each choice: a scoped alarm grant, not a wide one.
CAPABILITIES = ["alarms", "incidents", "live", "alarms", "incidents", "live", *Capability.values]

small = st.integers(min_value=0, max_value=4)


@dataclass(frozen=True)
class GrantSpec:
    user: int | None  # exactly one of user, group (the table's constraint)
    group: int | None
    capabilities: frozenset[str]
    campus: int | None
    building: int | None
    tags: frozenset[str]
    starts: timedelta | None
    ends: timedelta | None
    incident: int | None


@st.composite
def districts(draw: st.DrawFn) -> dict:
    """Index-based specs: every reference points at something drawn before it."""
    campuses = draw(st.integers(min_value=1, max_value=3))
    buildings = draw(st.lists(st.integers(0, campuses - 1), min_size=2, max_size=4))
    in_building = st.integers(0, len(buildings) - 1)
    groups = draw(st.integers(min_value=0, max_value=3))
    users = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    # Mostly not: a superuser sees everything, which tells little.
                    "superuser": st.sampled_from([False, False, False, True]),
                    # Deactivated: still in groups and named on incidents, sees nothing.
                    "active": st.sampled_from([True, True, True, False]),
                    "groups": st.frozensets(st.integers(0, groups - 1)) if groups else st.just(()),
                }
            ),
            min_size=1,
            max_size=3,
        )
    )
    # A camera, a door and an event in every building, then more at random: hypothesis
    # starts from the simplest draws (all in building 0), which would hide every boundary.
    camera = st.tuples(st.frozensets(st.sampled_from(TAGS)), st.booleans())
    cameras = [(b, *draw(camera)) for b in range(len(buildings))]
    extra_cameras = draw(st.lists(st.tuples(in_building, camera), max_size=3))
    cameras += [(b, *rest) for b, rest in extra_cameras]
    doors = [*range(len(buildings)), *draw(st.lists(in_building, max_size=2))]
    # An event of an unknown door keeps no door (accesslog.Event.door is nullable).
    events = [
        *range(len(doors)),
        *draw(st.lists(st.none() | st.integers(0, len(doors) - 1), max_size=3)),
    ]
    incidents = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "campus": st.integers(0, campuses - 1),
                    "building": st.none() | in_building,
                    "groups": st.frozensets(st.integers(0, groups - 1)) if groups else st.just(()),
                    "users": st.frozensets(st.integers(0, len(users) - 1)),
                }
            ),
            max_size=3,
        )
    )
    grantee = st.one_of(
        st.tuples(st.integers(0, len(users) - 1), st.none()),
        *([st.tuples(st.none(), st.integers(0, groups - 1))] if groups else []),
    )
    grants = draw(
        st.lists(
            st.builds(
                lambda who, **fields: GrantSpec(user=who[0], group=who[1], **fields),
                grantee,
                capabilities=st.frozensets(
                    st.sampled_from(Capability.values), min_size=1, max_size=3
                ),
                campus=st.integers(0, campuses - 1) | st.none(),
                building=in_building | st.none(),
                # Untagged half the time: a tagged grant shows no events (doors have no tags).
                tags=st.just(frozenset()) | st.frozensets(st.sampled_from(TAGS), min_size=1),
                starts=st.sampled_from(MOMENTS),
                ends=st.sampled_from(MOMENTS),
                incident=st.none() | st.integers(0, len(incidents) - 1)
                if incidents
                else st.none(),
            ),
            min_size=1,
            max_size=6,
        )
    )
    return {
        "campuses": campuses,
        "buildings": buildings,
        "groups": groups,
        "users": users,
        "cameras": cameras,
        "doors": doors,
        "events": events,
        "incidents": incidents,
        "grants": grants,
    }


def build(spec: dict) -> dict[str, list]:
    """The spec's rows, made straight through the ORM (the rules of who may grant what
    are other tests'; here any grant the table admits is fair)."""
    district = District.objects.create(name="Mirror ISD")
    campuses = [
        Campus.objects.create(district=district, name=f"Campus {i}")
        for i in range(spec["campuses"])
    ]
    buildings = [
        Building.objects.create(campus=campuses[c], name=f"Building {i}")
        for i, c in enumerate(spec["buildings"])
    ]
    # bulk_create skips Floor.save's plan sanitising: no plan file is needed to place things.
    floors = Floor.objects.bulk_create(
        Floor(building=b, name="Ground", level=0, plan="plans/none.svg") for b in buildings
    )
    tags = {slug: Tag.objects.create(slug=slug) for slug in TAGS}
    groups = [Group.objects.create(name=f"group {i}") for i in range(spec["groups"])]
    users = []
    for i, u in enumerate(spec["users"]):
        user = get_user_model().objects.create(
            username=f"user{i}",
            is_superuser=u["superuser"],
            is_staff=u["superuser"],
            is_active=u["active"],
        )
        user.groups.set(groups[g] for g in u["groups"])
        users.append(user)
    cameras = []
    for i, (b, slugs, on_floor) in enumerate(spec["cameras"]):
        camera = Camera.objects.create(
            building=buildings[b],
            floor=floors[b] if on_floor else None,
            name=f"Camera {i}",
            main_stream_url=f"rtsp://127.0.0.1:9/cam{i}",
        )
        camera.tags.set(tags[s] for s in slugs)
        cameras.append(camera)
    system = AccessSystem.objects.create(name="OnGuard", slug="onguard", kind=SystemKind.ONGUARD)
    doors = [
        Door.objects.create(
            system=system, building=buildings[b], external_id=f"door{i}", name=f"Door {i}"
        )
        for i, b in enumerate(spec["doors"])
    ]
    events = [
        Event.objects.create(
            seq=seq,
            system=system,
            source_event_id=f"src-{seq}",
            type="door_forced",
            severity="alarm",
            door=None if d is None else doors[d],
            door_external_id="unknown" if d is None else doors[d].external_id,
            occurred_at=NOW,
        )
        for seq, d in enumerate(spec["events"], start=1)
    ]
    incidents = []
    for i, inc in enumerate(spec["incidents"]):
        incident = Incident.objects.create(
            campus=campuses[inc["campus"]],
            building=None if inc["building"] is None else buildings[inc["building"]],
            title=f"Incident {i}",
            grants_end_at=NOW + timedelta(hours=4),
        )
        incident.responder_groups.set(groups[g] for g in inc["groups"])
        incident.responders.set(users[u] for u in inc["users"])
        incidents.append(incident)
    for g in spec["grants"]:
        grant = Grant.objects.create(
            user=None if g.user is None else users[g.user],
            group=None if g.group is None else groups[g.group],
            capabilities=sorted(g.capabilities),
            campus=None if g.campus is None else campuses[g.campus],
            building=None if g.building is None else buildings[g.building],
            starts_at=None if g.starts is None else NOW + g.starts,
            ends_at=None if g.ends is None else NOW + g.ends,
            incident=None if g.incident is None else incidents[g.incident],
        )
        grant.tags.set(tags[s] for s in g.tags)
    return {"users": users, "cameras": cameras, "events": events, "incidents": incidents}


def fresh(user):
    """The user as a new request or socket loads them: no grants cached on the object."""
    return get_user_model().objects.get(pk=user.pk)


def ids(query) -> set[int]:
    return set(query.values_list("id", flat=True))


def seen(kind: str, visible: set[int], every: list) -> None:
    """Tells --hypothesis-show-statistics how often a user saw none, some or all."""
    share = "none" if not visible else "all" if len(visible) == len(every) else "some"
    event(f"{kind}: {share}")


class ScopeMirrorTests(TestCase):
    """Each example runs in its own transaction, rolled back after it (hypothesis's
    Django TestCase), so districts never leak into the next example."""

    # The mirrors are asked about active users only: the socket refuses anyone else before
    # it computes a scope (responder.alarms.events.session_access).
    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(districts())
    def test_in_memory_scopes_match_sql(self, spec: dict) -> None:
        with time_machine.travel(NOW, tick=False):
            made = build(spec)
            for user in made["users"]:
                if not user.is_active:
                    self.assert_sees_nothing(user)
                    continue
                self.assert_events_agree(user, made["events"])
                self.assert_cameras_agree(user, made["cameras"])
                self.assert_incidents_agree(user, made["incidents"])

    def assert_sees_nothing(self, user) -> None:
        """SQL's side only: the socket closes before any in-memory scope (4401)."""
        assert not Event.objects.visible_to(fresh(user)).exists()
        assert not Camera.objects.visible_to(fresh(user), *VIEWING).exists()
        assert not incidents_visible_to(fresh(user)).exists()

    def assert_events_agree(self, user, events: list[Event]) -> None:
        scope = alarm_scope(fresh(user))
        # The building as the fan-out reads it (responder/fanout.py: event.door.building_id).
        in_memory = {e.id for e in events if in_scope(scope, e.door and e.door.building_id)}
        seen("events", in_memory, events)
        assert in_memory == ids(Event.objects.visible_to(fresh(user))), user.username

    def assert_cameras_agree(self, user, cameras: list[Camera]) -> None:
        scope = camera_scope(fresh(user))
        in_memory = {c.id for c in cameras if in_scope(scope, c.id)}
        seen("cameras", in_memory, cameras)
        assert in_memory == ids(Camera.objects.visible_to(fresh(user), *VIEWING)), user.username

    def assert_incidents_agree(self, user, incidents: list[Incident]) -> None:
        scope = incident_scope(fresh(user))
        # The payload as a socket's fan-out gets it: through JSON, from Redis.
        in_memory = {
            i.id for i in incidents if scope.covers(json.loads(json.dumps(incident_payload(i))))
        }
        seen("incidents", in_memory, incidents)
        assert in_memory == ids(incidents_visible_to(fresh(user))), user.username
