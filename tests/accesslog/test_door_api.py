import pytest

from accesslog.models import DoorCamera
from tests.factories import (
    BuildingFactory,
    CameraFactory,
    DoorFactory,
    FloorFactory,
    GrantFactory,
    UserFactory,
    sign_in_verified,
)

pytestmark = pytest.mark.django_db
URL = "/api/v1/doors/"


def ids(response) -> list[int]:
    assert response.status_code == 200
    return [door["id"] for door in response.json()]


def test_it_describes_a_door_with_its_cameras_nearest_first(client):
    floor = FloorFactory()
    door = DoorFactory(building=floor.building, floor=floor, x=3, y=4, external_id="P1-D2")
    far, near = CameraFactory(building=floor.building), CameraFactory(building=floor.building)
    DoorCamera.objects.create(door=door, camera=far, rank=2)
    DoorCamera.objects.create(door=door, camera=near, rank=0)
    user = UserFactory()
    GrantFactory(user=user, capabilities=["live", "alarms"])
    sign_in_verified(client, user)

    response = client.get(f"{URL}{door.id}/")

    assert response.json() == {
        "id": door.id, "external_id": "P1-D2", "name": door.name, "system": "onguard",
        "building": floor.building_id, "campus": floor.building.campus_id,
        "cameras": [near.id, far.id], "placement": {"floor": floor.id, "x": 3, "y": 4},
    }  # fmt: skip
    assert ids(client.get(URL)) == [door.id]


def test_it_lists_only_doors_whose_alarms_the_user_may_see(client):
    building = BuildingFactory()
    inside = DoorFactory(building=building)
    outside = DoorFactory()
    user = UserFactory()
    GrantFactory(user=user, capabilities=["alarms"], building=building)
    GrantFactory(user=user, capabilities=["live"], building=outside.building)
    sign_in_verified(client, user)

    assert ids(client.get(URL)) == [inside.id]
    assert client.get(f"{URL}{outside.id}/").status_code == 404


def test_a_door_lists_only_the_cameras_the_user_may_watch(client):
    door = DoorFactory()
    hidden = CameraFactory(building=door.building, tags=["hallway"])
    shown = CameraFactory(building=door.building, tags=["entrance"])
    DoorCamera.objects.create(door=door, camera=hidden, rank=0)
    DoorCamera.objects.create(door=door, camera=shown, rank=1)
    user = UserFactory()
    GrantFactory(user=user, capabilities=["alarms"], building=door.building)
    GrantFactory(user=user, capabilities=["live"], tags=["entrance"])
    sign_in_verified(client, user)

    assert client.get(f"{URL}{door.id}/").json()["cameras"] == [shown.id]


def test_it_filters_and_searches(client):
    building = BuildingFactory()
    front = DoorFactory(building=building, name="Front Entrance")
    gym = DoorFactory(building=BuildingFactory(campus=building.campus), name="Gym Exit")
    other = DoorFactory(name="Front Office")
    sign_in_verified(client, UserFactory(is_superuser=True))

    assert ids(client.get(URL, {"building": building.id})) == [front.id]
    assert ids(client.get(URL, {"campus": building.campus_id})) == [front.id, gym.id]
    assert ids(client.get(URL, {"search": "front"})) == [front.id, other.id]
    assert ids(client.get(URL, {"q": "gym"})) == [gym.id]
    assert ids(client.get(URL, {"system": "nowhere"})) == []


def test_it_needs_the_second_factor(client):
    DoorFactory()
    client.force_login(UserFactory(is_superuser=True))

    assert client.get(URL).status_code == 403
