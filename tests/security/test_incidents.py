"""Attacks on incidents and the emergency video access they grant (issue 12, finding 3).

An incident gives police and fire time-boxed live and recorded video. A reviewer with the
right to run incidents in one building opened a 72-hour incident over the whole campus,
assigned themselves to it and named the Facilities group, so that they and Facilities saw
every camera of the campus; and the answer to an unknown username told them which names
exist. Each test below makes that attempt against a real server, signed in through the
real sign-in with a real one-time code, and checks that it is refused and changes nothing:

- an incident reaches no further than the opener's own incidents access;
- only the responder roles IT marks (police and fire) can be given emergency access, and
  nobody can give it to themselves;
- the access ends when the incident closes, and after INCIDENT_MAX_HOURS at the latest;
  longer needs an extension with a reason, which is audited;
- a name that does not exist is answered exactly like a name one may not assign;
- every emergency grant appears at once on district IT's screens and in the admin.
"""

import asyncio
import json
from datetime import timedelta

import pytest
import websockets
from channels.db import database_sync_to_async
from django.contrib.auth.models import Group
from django.db.models import F
from django.utils import timezone

from accesslog.models import EventType
from responder.alarms.events import announce
from responder.core.models import AuditEntry, Grant, Incident, IncidentRule
from responder.core.roles import FACILITIES, FIRE, roles_ensure
from responder.incidents.services import incident_for_alarm
from tests.factories import (
    BuildingFactory,
    CameraFactory,
    DoorFactory,
    GrantFactory,
    UserFactory,
    event_store,
)
from tests.responder.test_events_socket import signed_in
from tests.servers import HttpClient, http_sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

INCIDENTS = "/api/v1/incidents/"
CAMERAS = "/api/v1/cameras/"


@pytest.fixture
def school() -> dict:
    """A campus of two buildings (two cameras in the main one, one in the gym), the role
    groups, a principal who runs incidents in the main building only, campus dispatch, a
    firefighter and a facilities worker (parking cameras only)."""
    roles_ensure()
    main = BuildingFactory(name="Main")
    gym = BuildingFactory(campus=main.campus, name="Gym")
    main_cameras = {CameraFactory(building=main).id, CameraFactory(building=main).id}
    gym_camera = CameraFactory(building=gym).id
    principal = UserFactory(username="principal")
    GrantFactory(user=principal, capabilities=["incidents", "alarms", "live"], building=main)
    dispatch = UserFactory(username="dispatch")
    GrantFactory(user=dispatch, capabilities=["incidents", "alarms"], campus=main.campus)
    firefighter = UserFactory(username="firefighter")
    firefighter.groups.add(Group.objects.get(name=FIRE))
    facilities = UserFactory(username="facilities1")
    facilities.groups.add(Group.objects.get(name=FACILITIES))
    return {
        "campus": main.campus,
        "main": main,
        "gym": gym,
        "main_cameras": main_cameras,
        "campus_cameras": main_cameras | {gym_camera},
        "principal": principal,
        "dispatch": dispatch,
        "firefighter": firefighter,
        "facilities": facilities,
        "fire": Group.objects.get(name=FIRE),
        "facilities_group": Group.objects.get(name=FACILITIES),
    }


def cameras_of(client: HttpClient) -> set[int]:
    status, _, body = client.request("GET", CAMERAS)
    assert status == 200, body
    return {camera["id"] for camera in json.loads(body)}


def post(client: HttpClient, path: str, body: dict) -> tuple[int, dict]:
    status, _, raw = client.request("POST", path, body)
    return status, json.loads(raw)


def refused(status: int, answer: dict) -> bool:
    """A clear refusal: a 4xx with a sentence in `detail`."""
    return 400 <= status < 500 and bool(answer.get("detail"))


def test_a_building_scoped_user_cannot_open_an_incident_over_the_whole_campus(daphne, school):
    principal = http_sign_in(daphne, school["principal"])
    firefighter = http_sign_in(daphne, school["firefighter"])
    campus_wide = {
        "campus": school["campus"].id,
        "title": "Whole campus",
        "responder_groups": [school["fire"].id],
    }

    status, answer = post(principal, INCIDENTS, campus_wide)

    assert refused(status, answer), answer
    assert not Incident.objects.exists() and not Grant.objects.filter(incident__isnull=False)
    assert cameras_of(firefighter) == set()
    # The other building alone is outside the principal's access too.
    status, answer = post(principal, INCIDENTS, {**campus_wide, "building": school["gym"].id})
    assert refused(status, answer), answer
    # Their own building is theirs to open an incident on: fire sees that building only.
    status, answer = post(principal, INCIDENTS, {**campus_wide, "building": school["main"].id})
    assert status == 201, answer
    assert cameras_of(firefighter) == school["main_cameras"]


def test_a_building_scoped_user_cannot_assign_themselves_wider_video(daphne, school):
    dispatch = http_sign_in(daphne, school["dispatch"])
    principal = http_sign_in(daphne, school["principal"])
    school["principal"].groups.add(school["fire"])  # even a firefighter among principals
    before = cameras_of(principal)
    whole = {"campus": school["campus"].id, "title": "Campus lockdown"}
    status, campus_incident = post(dispatch, INCIDENTS, whole)
    assert status == 201, campus_incident
    status, own = post(principal, INCIDENTS, {**whole, "building": school["main"].id})
    assert status == 201, own
    me = {"users": ["principal"]}

    onto_campus = post(principal, f"{INCIDENTS}{campus_incident['id']}/responders/", me)
    onto_own = post(principal, f"{INCIDENTS}{own['id']}/responders/", me)

    assert refused(*onto_campus), onto_campus
    assert refused(*onto_own), onto_own
    assert cameras_of(principal) == before == school["main_cameras"]
    assert not Grant.objects.filter(user=school["principal"], incident__isnull=False)


def test_an_incident_cannot_name_a_group_that_is_not_a_responder_role(daphne, school):
    dispatch = http_sign_in(daphne, school["dispatch"])
    facilities = http_sign_in(daphne, school["facilities"])
    before = cameras_of(facilities)
    body = {"campus": school["campus"].id, "title": "Snow on the lot"}

    named = post(
        dispatch, INCIDENTS, {**body, "responder_groups": [school["facilities_group"].id]}
    )
    unknown = post(dispatch, INCIDENTS, {**body, "responder_groups": [987654]})

    assert refused(*named), named
    assert named[0] == unknown[0]
    assert not Incident.objects.exists()
    assert cameras_of(facilities) == before


def test_an_incident_cannot_outlast_the_cap_and_an_extension_needs_a_reason(daphne, school):
    dispatch = http_sign_in(daphne, school["dispatch"])
    body = {
        "campus": school["campus"].id,
        "title": "Fire",
        "responder_groups": [school["fire"].id],
    }

    too_long = post(dispatch, INCIDENTS, {**body, "grant_hours": 72})

    assert refused(*too_long), too_long
    assert not Incident.objects.exists()
    status, incident = post(dispatch, INCIDENTS, {**body, "grant_hours": 12})
    assert status == 201, incident
    [grant] = Grant.objects.filter(incident_id=incident["id"])
    assert grant.ends_at - grant.starts_at == timedelta(hours=12)
    extend = f"{INCIDENTS}{incident['id']}/extend/"
    no_reason = post(dispatch, extend, {"hours": 6, "reason": ""})
    beyond = post(dispatch, extend, {"hours": 13, "reason": "Search still under way"})
    assert refused(*no_reason), no_reason
    assert refused(*beyond), beyond
    grant.refresh_from_db()
    assert grant.ends_at - grant.starts_at == timedelta(hours=12)
    status, extended = post(dispatch, extend, {"hours": 12, "reason": "Search still under way"})
    assert status == 200, extended
    grant.refresh_from_db()
    assert timedelta(hours=11) < grant.ends_at - timezone.now() <= timedelta(hours=12)
    [audit] = AuditEntry.objects.filter(action="incident.extended")
    assert (audit.username, audit.details["reason"]) == ("dispatch", "Search still under way")


def test_unknown_and_forbidden_usernames_get_the_same_answer(daphne, school):
    dispatch = http_sign_in(daphne, school["dispatch"])
    status, incident = post(dispatch, INCIDENTS, {"campus": school["campus"].id, "title": "X"})
    assert status == 201, incident
    gone = UserFactory(username="facilities3", is_active=False)
    gone.groups.add(school["fire"])
    assign = f"{INCIDENTS}{incident['id']}/responders/"

    # facilities1 exists (not a responder), facilities2 does not, facilities3 is disabled.
    answers = [dispatch.request("POST", assign, {"users": [f"facilities{n}"]}) for n in (1, 2, 3)]

    statuses = {status for status, _, _ in answers}
    bodies = {body.replace(f"facilities{n}".encode(), b"NAME") for n, (_, _, body) in
              zip((1, 2, 3), answers, strict=True)}  # fmt: skip
    assert len(statuses) == 1 and 400 <= statuses.pop() < 500
    assert len(bodies) == 1 and b"detail" in bodies.pop()
    assert not Incident.objects.get(pk=incident["id"]).responders.exists()


async def frame_on(ws: websockets.ClientConnection) -> dict:
    while (frame := json.loads(await asyncio.wait_for(ws.recv(), 10)))["type"] == "ping":
        pass
    return frame


async def warning_on(ws: websockets.ClientConnection) -> dict:
    """The next warning frame, past the event and incident frames before it."""
    while (frame := await frame_on(ws))["type"] != "warning":
        pass
    return frame


async def live_on(port: int, user: object) -> websockets.ClientConnection:
    cookie = await database_sync_to_async(signed_in)(user)
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}/ws/events",
        additional_headers={"Origin": f"http://127.0.0.1:{port}", "Cookie": cookie},
    )
    await ws.send(json.dumps({"type": "resume", "after": 0}))
    while (await frame_on(ws))["type"] != "live":
        pass
    return ws


async def test_an_emergency_grant_warns_district_it_at_once_and_is_listed_in_the_admin(
    daphne, school
):
    it_user = await database_sync_to_async(UserFactory)(
        username="it-admin", is_staff=True, is_superuser=True
    )
    elsewhere = await database_sync_to_async(DoorFactory)()
    outsider = await database_sync_to_async(UserFactory)(username="outsider")
    await database_sync_to_async(GrantFactory)(
        user=outsider, capabilities=["alarms"], building=elsewhere.building
    )
    it_socket = await live_on(daphne, it_user)
    other = await live_on(daphne, outsider)
    dispatch = await database_sync_to_async(http_sign_in)(daphne, school["dispatch"])
    body = {
        "campus": school["campus"].id,
        "title": "Smoke",
        "responder_groups": [school["fire"].id],
    }

    status, incident = await asyncio.to_thread(post, dispatch, INCIDENTS, body)
    warning = await warning_on(it_socket)
    later = await database_sync_to_async(event_store)(elsewhere, type=EventType.DOOR_FORCED)
    await database_sync_to_async(announce)(later)

    assert status == 201, incident
    assert warning["kind"] == "incident.emergency_grant"
    assert (warning["details"]["incident"], warning["details"]["grantee"]) == (
        incident["id"],
        FIRE,
    )
    assert "dispatch" in warning["text"] and FIRE in warning["text"]
    # Nobody but IT: the outsider's next frame is the later event.
    assert (await frame_on(other))["seq"] == later.seq
    for ws in (it_socket, other):
        await ws.close()
    it_client = await database_sync_to_async(http_sign_in)(daphne, it_user)
    status, _, page = await asyncio.to_thread(
        it_client.request, "GET", "/admin/responder/emergencygrant/"
    )
    assert status == 200
    assert FIRE.encode() in page and b"Smoke" in page


def test_the_grants_end_when_the_incident_closes(daphne, school):
    dispatch = http_sign_in(daphne, school["dispatch"])
    firefighter = http_sign_in(daphne, school["firefighter"])
    body = {
        "campus": school["campus"].id,
        "title": "Fire",
        "responder_groups": [school["fire"].id],
    }
    status, incident = post(dispatch, INCIDENTS, body)
    assert status == 201, incident
    assert cameras_of(firefighter) == school["campus_cameras"]

    status, closed = post(dispatch, f"{INCIDENTS}{incident['id']}/close/", {})

    assert (status, closed["status"]) == (200, "closed")
    assert cameras_of(firefighter) == set()


def test_the_grants_end_when_the_cap_passes_even_if_a_rule_asks_for_longer(daphne, school):
    firefighter = http_sign_in(daphne, school["firefighter"])
    dispatch = http_sign_in(daphne, school["dispatch"])
    # A rule from before the cap, asking a day: the cap still bounds what it grants.
    rule = IncidentRule.objects.create(name="Forced", event_types=["door_forced"], grant_hours=24)
    rule.responder_groups.add(school["fire"])
    door = DoorFactory(building=school["main"])
    incident = incident_for_alarm(event=event_store(door, type=EventType.DOOR_FORCED))
    assert cameras_of(firefighter) == school["campus_cameras"]

    # Thirteen hours pass: the server's clock is real, so the stored times move back.
    past = timedelta(hours=13)
    Grant.objects.filter(incident=incident).update(
        starts_at=F("starts_at") - past, ends_at=F("ends_at") - past
    )

    assert cameras_of(firefighter) == set()
    Incident.objects.filter(pk=incident.pk).update(
        opened_at=F("opened_at") - past, grants_end_at=F("grants_end_at") - past
    )
    late = post(dispatch, f"{INCIDENTS}{incident.pk}/extend/", {"hours": 4, "reason": "Too late"})
    assert refused(*late), late
    assert cameras_of(firefighter) == set()
