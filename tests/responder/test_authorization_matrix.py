"""Every role × every object type × in and out of scope, over the real API: no cross-scope success."""

import pytest
from django.contrib.auth.models import Group

from accesslog.models import Event, EventType, Severity
from responder.core.roles import DISTRICT_OFFICE, FACILITIES, FIRE, POLICE, roles_ensure
from tests.factories import (
    BuildingFactory,
    CameraFactory,
    DoorFactory,
    GrantFactory,
    UserFactory,
    sign_in_verified,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def district():
    roles_ensure()
    hs, ms = BuildingFactory(name="HS Main"), BuildingFactory(name="MS Main")
    objects = {}
    for label, building in (("hs", hs), ("ms", ms)):
        objects[f"{label}_hallway"] = CameraFactory(building=building, tags=["hallway"])
        objects[f"{label}_parking"] = CameraFactory(building=building, tags=["parking"])
        door = DoorFactory(building=building)
        objects[f"{label}_door"] = door
        objects[f"{label}_event"] = Event.objects.create(
            seq=len(objects), system=door.system, source_event_id=f"e-{label}",
            type=EventType.DOOR_FORCED, severity=Severity.ALARM, door=door,
            door_external_id=door.external_id, occurred_at="2026-11-28T12:00:00Z",
        )  # fmt: skip
    objects["hs_building"] = hs
    return objects


def user_in(role: str | None, **grant) -> object:
    user = UserFactory()
    if role:
        user.groups.add(Group.objects.get(name=role))
    if grant:
        GrantFactory(user=user, **grant)
    return user


# What each role may see: cameras (live), doors and events (alarms).
EXPECTED = {
    "district office": {"hs_hallway", "hs_parking", "ms_hallway", "ms_parking", "hs_door",
                        "ms_door", "hs_event", "ms_event"},
    "principal": {"hs_hallway", "hs_parking", "hs_door", "hs_event"},
    "facilities": {"hs_parking", "ms_parking"},
    "police": {"hs_hallway", "hs_parking", "ms_hallway", "ms_parking", "hs_door", "ms_door",
               "hs_event", "ms_event"},
    "fire": {"hs_door", "ms_door", "hs_event", "ms_event"},
    "nobody": set(),
}  # fmt: skip


def make_user(role: str, district: dict) -> object:
    if role == "principal":
        return user_in(
            None,
            capabilities=["live", "recorded", "alarms"],
            building=district["hs_building"],
        )
    names = {"district office": DISTRICT_OFFICE, "facilities": FACILITIES, "police": POLICE}
    return user_in({**names, "fire": FIRE}.get(role))


@pytest.mark.parametrize("role", EXPECTED)
def test_each_role_sees_exactly_its_scope_and_nothing_else(client, district, role):
    sign_in_verified(client, make_user(role, district))
    urls = {
        "camera": "/api/v1/cameras/{}/",
        "door": "/api/v1/doors/{}/",
    }
    for name, obj in district.items():
        kind = name.split("_")[1]
        kind = {"hallway": "camera", "parking": "camera"}.get(kind, kind)
        if kind not in urls:
            continue
        status = client.get(urls[kind].format(obj.pk)).status_code
        assert status == (200 if name in EXPECTED[role] else 404), (role, name, status)

    listed_cameras = {c["id"] for c in client.get("/api/v1/cameras/").json()}
    listed_doors = {d["id"] for d in client.get("/api/v1/doors/").json()}
    listed_events = {e["id"] for e in client.get("/api/v1/events/").json()["results"]}
    seen = {
        name
        for name, obj in district.items()
        if (
            obj.pk in listed_cameras
            and "hallway" in name
            or "parking" in name
            and obj.pk in listed_cameras
        )
        or (name.endswith("_door") and obj.pk in listed_doors)
        or (name.endswith("_event") and obj.pk in listed_events)
    }
    assert seen == EXPECTED[role]
    for name in ("hs_event", "ms_event"):
        ack = client.post(f"/api/v1/events/{district[name].pk}/ack")
        assert (ack.status_code in (200, 201)) == (name in EXPECTED[role]), (role, name)
