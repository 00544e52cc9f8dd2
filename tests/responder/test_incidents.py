import functools
import json
from datetime import timedelta

import pytest
import redis
import time_machine
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from accesslog.models import DoorCamera, EventType, Severity
from accesslog.rendering import event_payloads
from cameras.models import Camera
from responder.core.access import forget_grants
from responder.core.announce import channel
from responder.core.capabilities import Capability
from responder.core.models import AuditEntry, Grant, IncidentRule, IncidentStatus, ResponderRole
from responder.core.roles import FIRE, POLICE, roles_ensure
from responder.incidents.services import (
    IncidentRefused,
    emergency_groups,
    incident_close,
    incident_extend,
    incident_for_alarm,
    incident_grants_expire,
    incident_payload,
    incident_scope,
)
from responder.incidents.services import incident_open as open_incident
from tests.factories import (
    BuildingFactory,
    CameraFactory,
    DoorFactory,
    GrantFactory,
    GroupFactory,
    UserFactory,
    event_store,
    sign_in_verified,
)

pytestmark = pytest.mark.django_db
URL = "/api/v1/incidents/"


def watchable(user, capability=Capability.LIVE) -> set[int]:
    forget_grants(user)
    return set(Camera.objects.visible_to(user, capability).values_list("id", flat=True))


store_event = functools.partial(event_store, type=EventType.DURESS)


@pytest.fixture
def school():
    """A campus with two buildings and a camera in each; a camera on another campus."""
    main = BuildingFactory()
    gym = BuildingFactory(campus=main.campus)
    cameras = [CameraFactory(building=main), CameraFactory(building=gym)]
    elsewhere = CameraFactory()
    fire = GroupFactory(name="fire")
    ResponderRole.objects.create(group=fire, emergency_access=True)
    firefighter = UserFactory(username="firefighter")
    firefighter.groups.add(fire)
    dispatch = UserFactory(username="dispatch")
    GrantFactory(user=dispatch, capabilities=["incidents", "alarms"], campus=main.campus)
    return {
        "campus": main.campus,
        "cameras": {c.id for c in cameras},
        "elsewhere": elsewhere,
        "fire": fire,
        "firefighter": firefighter,
        "dispatch": dispatch,
    }


def open_for(school, hours=4):
    return open_incident(
        campus=school["campus"],
        title="Smoke in the gym",
        by=school["dispatch"],
        responder_groups=[school["fire"]],
        grant_hours=hours,
    )


def test_opening_an_incident_gives_the_fire_group_the_campus_cameras_only(school):
    firefighter = school["firefighter"]
    assert watchable(firefighter) == set()

    incident = open_for(school)

    assert watchable(firefighter) == school["cameras"]
    assert watchable(firefighter, Capability.RECORDED) == school["cameras"]
    assert watchable(firefighter, Capability.EXPORT) == set()
    grant = Grant.objects.get(incident=incident)
    # Recorded access is bounded by the grant's start: the incident's beginning.
    assert grant.starts_at == incident.opened_at
    assert grant.ends_at == incident.opened_at + timedelta(hours=4)


def test_closing_the_incident_ends_the_grants_and_audits_both_ends(school):
    incident = open_for(school)
    grant = Grant.objects.get(incident=incident)

    incident_close(incident=incident, by=school["dispatch"])

    assert watchable(school["firefighter"]) == set()
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.CLOSED
    audits = AuditEntry.objects.filter(object_id=str(grant.pk), action__startswith="incident.")
    assert sorted(audits.values_list("action", "username")) == [
        ("incident.grant_ended", "dispatch"),
        ("incident.grant_started", "dispatch"),
    ]
    kinds = list(incident.timeline.values_list("kind", flat=True))
    assert kinds == ["opened", "grant_started", "closed", "grant_ended"]


def test_the_grants_end_after_grant_hours_and_the_end_is_recorded_once(school):
    incident = open_for(school, hours=2)

    with time_machine.travel(timezone.now() + timedelta(hours=1, minutes=59), tick=False):
        assert watchable(school["firefighter"]) == school["cameras"]
        assert incident_grants_expire() == 0
    with time_machine.travel(timezone.now() + timedelta(hours=2, minutes=1), tick=False):
        assert watchable(school["firefighter"]) == set()
        assert incident_grants_expire() == 1
        assert incident_grants_expire() == 0

    assert AuditEntry.objects.filter(action="incident.grant_ended").count() == 1
    assert incident.timeline.filter(kind="grant_ended").count() == 1


def test_dispatch_opens_an_incident_and_the_responder_sees_it_and_their_grant(client, school):
    sign_in_verified(client, school["dispatch"])
    body = {
        "campus": school["campus"].id,
        "title": "Fire alarm",
        "responder_groups": [school["fire"].id],
    }

    response = client.post(URL, body, content_type="application/json")

    assert response.status_code == 201, response.content
    incident_id = response.json()["id"]
    client.logout()
    sign_in_verified(client, school["firefighter"])
    assert [i["id"] for i in client.get(URL).json()] == [incident_id]
    detail = client.get(f"{URL}{incident_id}/").json()
    assert [e["kind"] for e in detail["timeline"]] == ["opened", "grant_started"]
    grants = client.get("/api/v1/emergency-grants").json()
    assert [(g["incident"], g["capabilities"], g["active"]) for g in grants] == [
        (incident_id, ["live", "recorded"], True)
    ]
    # Responders may add notes but not close: that is dispatch's.
    note = client.post(f"{URL}{incident_id}/notes/", {"text": "On scene"}, "application/json")
    assert note.status_code == 201
    assert client.post(f"{URL}{incident_id}/close/").status_code == 403


def test_dispatch_is_offered_the_responder_roles_it_may_name_and_never_its_own(client, school):
    police = GroupFactory(name="police")
    ResponderRole.objects.create(group=police, emergency_access=True)
    GroupFactory(name="teachers")  # not a responder role
    school["dispatch"].groups.add(police)  # a dispatcher who is also police names only fire
    sign_in_verified(client, school["dispatch"])

    offered = client.get(f"{URL}responder-groups/").json()

    assert offered == [{"id": school["fire"].id, "name": "fire"}]
    body = {
        "campus": school["campus"].id,
        "title": "Fire alarm",
        "responder_groups": [offered[0]["id"]],
    }
    opened = client.post(URL, body, content_type="application/json")
    assert opened.status_code == 201, opened.content
    assert opened.json()["responder_group_names"] == ["fire"]


def test_a_user_who_opens_no_incidents_is_offered_no_group(client, school):
    sign_in_verified(client, school["firefighter"])
    assert client.get(f"{URL}responder-groups/").json() == []


def test_incidents_outside_the_users_scope_are_404(client, school):
    other = BuildingFactory()
    outsider = UserFactory()
    GrantFactory(user=outsider, capabilities=["incidents"], campus=other.campus)
    incident = open_for(school)
    sign_in_verified(client, outsider)

    assert client.get(URL).json() == []
    assert client.get(f"{URL}{incident.id}/").status_code == 404
    assert client.post(f"{URL}{incident.id}/close/").status_code == 404
    note = client.post(f"{URL}{incident.id}/notes/", {"text": "x"}, "application/json")
    assert note.status_code == 404
    body = {"campus": school["campus"].id, "title": "Not mine"}
    refused = client.post(URL, body, content_type="application/json")
    assert refused.status_code == 400
    assert "campus" in refused.json()


def test_closing_over_the_api_ends_access(client, school):
    incident = open_for(school)
    sign_in_verified(client, school["dispatch"])

    response = client.post(f"{URL}{incident.id}/close/")

    assert response.status_code == 200
    assert response.json()["status"] == "closed"
    assert watchable(school["firefighter"]) == set()


def test_assigning_a_responder_gives_them_the_incidents_video(client, school):
    officer = UserFactory(username="officer")
    officer.groups.add(school["fire"])
    incident = open_for(school)
    sign_in_verified(client, school["dispatch"])

    response = client.post(
        f"{URL}{incident.id}/responders/", {"users": ["officer"]}, "application/json"
    )

    assert response.status_code == 200
    assert response.json()["responders"] == ["officer"]
    assert watchable(officer) == school["cameras"]


def test_a_duress_alarm_opens_an_incident_by_rule_and_the_next_alarm_joins_it(school):
    rule = IncidentRule.objects.create(name="Duress", event_types=["duress", "door_forced"])
    rule.responder_groups.add(school["fire"])
    door = DoorFactory(building=BuildingFactory(campus=school["campus"]))
    first, second = store_event(door), store_event(door, type=EventType.DOOR_FORCED)
    ignored = store_event(door, type=EventType.ACCESS_GRANTED, severity=Severity.INFO)

    incident = incident_for_alarm(event=first)

    assert incident.source_event == first and incident.opened_by is None
    assert incident.opened_at == first.occurred_at
    assert watchable(school["firefighter"]) == school["cameras"]
    assert incident_for_alarm(event=second) == incident
    assert incident_for_alarm(event=ignored) is None
    assert incident.timeline.filter(kind="event").count() == 2
    assert school["campus"].incidents.count() == 1


def test_an_alarm_that_joins_an_open_incident_names_it_to_clients(school):
    IncidentRule.objects.create(name="Forced", event_types=["door_forced"])
    door = DoorFactory(building=BuildingFactory(campus=school["campus"]))
    first, joined = (store_event(door, type=EventType.DOOR_FORCED) for _ in range(2))
    incident = incident_for_alarm(event=first)
    incident_for_alarm(event=joined)
    unrelated = store_event(door, type=EventType.ACCESS_GRANTED, severity=Severity.INFO)

    payloads = event_payloads([first, joined, unrelated])

    assert [p["incident"] for p in payloads] == [incident.id, incident.id, None]


def test_a_disabled_rule_opens_nothing(school):
    IncidentRule.objects.create(name="Off", event_types=["duress"], enabled=False)
    door = DoorFactory(building=BuildingFactory(campus=school["campus"]))

    assert incident_for_alarm(event=store_event(door)) is None


def test_incident_changes_ring_the_sockets_doorbell(school, django_capture_on_commit_callbacks):
    pubsub = redis.Redis.from_url(settings.REDIS_URL).pubsub()
    pubsub.subscribe(channel("incidents"))
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"

    with django_capture_on_commit_callbacks(execute=True):
        incident = open_for(school)

    message = pubsub.get_message(timeout=5)
    pubsub.close()
    payload = json.loads(message["data"])["incident"]
    assert payload["id"] == incident.id and payload["campus"] == school["campus"].id
    assert payload["responder_groups"] == [school["fire"].id]


def test_the_socket_audience_of_an_incident_is_dispatch_and_the_responders(school):
    incident = open_for(school)
    payload = incident_payload(incident)
    stranger = UserFactory()
    GrantFactory(user=stranger, capabilities=["incidents"], campus=BuildingFactory().campus)
    district = UserFactory()
    GrantFactory(user=district, capabilities=["incidents"])

    assert incident_scope(school["dispatch"]).covers(payload)
    assert incident_scope(school["firefighter"]).covers(payload)
    assert incident_scope(district).covers(payload)
    assert not incident_scope(stranger).covers(payload)


def test_the_timeline_shows_the_alarm_and_who_acknowledged_it(client, school):
    IncidentRule.objects.create(name="Duress", event_types=["duress"])
    door = DoorFactory(building=BuildingFactory(campus=school["campus"]))
    event = store_event(door)
    incident = incident_for_alarm(event=event)
    guard = UserFactory(username="guard")
    GrantFactory(user=guard, capabilities=["alarms"], building=door.building)
    sign_in_verified(client, school["dispatch"])

    def event_entry() -> dict:
        timeline = client.get(f"{URL}{incident.id}/").json()["timeline"]
        [entry] = [e for e in timeline if e["kind"] == "event"]
        return entry

    before = event_entry()
    assert client.post(f"/api/v1/events/{event.id}/ack").status_code == 201
    client.logout()
    sign_in_verified(client, guard)
    assert client.post(f"/api/v1/events/{event.id}/ack").status_code == 201
    client.logout()
    sign_in_verified(client, school["dispatch"])

    entry = event_entry()
    assert before["acknowledged_by"] == []
    assert entry["event"]["id"] == event.id and entry["event"]["type"] == "duress"
    assert [a["user"] for a in entry["acknowledged_by"]] == ["dispatch", "guard"]


def test_the_timeline_names_only_the_door_cameras_the_viewer_may_watch(client, school):
    IncidentRule.objects.create(name="Duress", event_types=["duress"])
    door = DoorFactory(building=BuildingFactory(campus=school["campus"]))
    near = CameraFactory(building=door.building)
    for rank, camera in enumerate((school["elsewhere"], near)):
        DoorCamera.objects.create(door=door, camera=camera, rank=rank)
    incident = incident_for_alarm(event=store_event(door))
    GrantFactory(user=school["dispatch"], capabilities=["live"], building=door.building)
    sign_in_verified(client, school["dispatch"])

    timeline = client.get(f"{URL}{incident.id}/").json()["timeline"]

    [entry] = [e for e in timeline if e["kind"] == "event"]
    assert entry["event"]["cameras"] == [near.id]


def test_ensure_roles_gives_emergency_access_to_police_and_fire_only():
    roles_ensure()

    assert set(emergency_groups().values_list("name", flat=True)) == {POLICE, FIRE}


def test_a_rule_grants_only_responder_roles_and_no_longer_than_the_cap(school, settings):
    settings.INCIDENT_MAX_HOURS = 6
    rule = IncidentRule.objects.create(name="Duress", event_types=["duress"], grant_hours=24)
    rule.responder_groups.add(school["fire"], GroupFactory(name="Facilities"))
    door = DoorFactory(building=BuildingFactory(campus=school["campus"]))

    incident = incident_for_alarm(event=store_event(door))

    [grant] = Grant.objects.filter(incident=incident)
    assert grant.group == school["fire"]
    assert grant.ends_at - grant.starts_at == timedelta(hours=6)
    with pytest.raises(ValidationError):
        rule.full_clean()


def test_an_incident_on_one_building_grants_video_of_that_building_only(school):
    building = BuildingFactory(campus=school["campus"])
    camera = CameraFactory(building=building)

    open_incident(
        campus=school["campus"],
        building=building,
        title="Gas leak",
        by=school["dispatch"],
        responder_groups=[school["fire"]],
        grant_hours=2,
    )

    assert watchable(school["firefighter"]) == {camera.id}


def test_an_extension_moves_every_grant_and_stays_within_the_cap(school, settings):
    settings.INCIDENT_MAX_HOURS = 3
    incident = open_for(school, hours=2)

    with time_machine.travel(timezone.now() + timedelta(hours=1), tick=False):
        incident_extend(incident=incident, by=school["dispatch"], hours=3, reason="Still burning")
        now = timezone.now()
        with pytest.raises(IncidentRefused):
            incident_extend(incident=incident, by=school["dispatch"], hours=4, reason="More")

    [grant] = Grant.objects.filter(incident=incident)
    incident.refresh_from_db()
    assert grant.ends_at == incident.grants_end_at == now + timedelta(hours=3)
    assert incident.timeline.filter(kind="extended").count() == 1
    incident_close(incident=incident, by=school["dispatch"])
    with pytest.raises(IncidentRefused):
        incident_extend(incident=incident, by=school["dispatch"], hours=1, reason="Reopen it")


def test_an_alarm_incident_is_titled_by_campus_first_alarm_and_doors_as_they_join(school):
    IncidentRule.objects.create(name="Forced", event_types=["door_forced", "door_held"])
    building = BuildingFactory(campus=school["campus"])
    front, back = DoorFactory(building=building), DoorFactory(building=building)
    campus = school["campus"].name

    incident = incident_for_alarm(event=store_event(front, type=EventType.DOOR_FORCED))
    assert incident.title == f"{campus}: Door forced, 1 door"
    incident_for_alarm(event=store_event(front, type=EventType.DOOR_HELD))
    incident.refresh_from_db()
    assert incident.title == f"{campus}: Door forced, 1 door"  # the same door again
    incident_for_alarm(event=store_event(back, type=EventType.DOOR_HELD))
    incident.refresh_from_db()
    assert incident.title == f"{campus}: Door forced, 2 doors"


def test_a_title_a_person_gave_stays_when_alarms_join(school):
    IncidentRule.objects.create(name="Forced", event_types=["door_forced"])
    incident = open_for(school)
    incident_for_alarm(
        event=store_event(
            DoorFactory(building=BuildingFactory(campus=school["campus"])),
            type=EventType.DOOR_FORCED,
        )
    )
    incident.refresh_from_db()
    assert incident.title == "Smoke in the gym"
