import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accesslog.models import DoorCamera
from responder.maptree.api import campus_tree
from responder.maptree.serializers import CampusTreeSerializer
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
URL = "/api/v1/campuses/"


def district(size: int) -> None:
    """`size` campuses of two buildings of two floors, with cameras and doors on each floor
    and one of each not yet placed in each building."""
    for _ in range(size):
        first = BuildingFactory()
        for building in (first, BuildingFactory(campus=first.campus)):
            for _ in range(2):
                floor = FloorFactory(building=building)
                cameras = [
                    CameraFactory(building=building, floor=floor, x=10, y=20, tags=["hallway"])
                    for _ in range(size)
                ]
                door = DoorFactory(building=building, floor=floor, x=5, y=6)
                for rank, camera in enumerate(cameras):
                    DoorCamera.objects.create(door=door, camera=camera, rank=rank)
            unplaced = DoorFactory(building=building)
            DoorCamera.objects.create(door=unplaced, camera=CameraFactory(building=building))


def office_user():
    user = UserFactory()
    group = Group.objects.create(name="district office")
    user.groups.add(group)
    GrantFactory(group=group, capabilities=["live", "recorded", "alarms"])
    return user


def test_each_plan_carries_the_names_the_app_draws_over_it(client):
    room = {"text": "Room 101", "x": 300, "y": 200, "width": 180}
    floor = FloorFactory(labels=[room, {"text": "N ↑", "x": 1140, "y": 50}])
    floor.building.campus.labels = [{"text": "River Road", "x": 600, "y": 760}]
    floor.building.campus.save()
    sign_in_verified(client, office_user())

    [campus] = client.get(URL).json()

    assert campus["labels"] == [{"text": "River Road", "x": 600.0, "y": 760.0}]
    [tree_floor] = campus["buildings"][0]["floors"]
    assert tree_floor["labels"] == [room, {"text": "N ↑", "x": 1140, "y": 50}]


def test_it_answers_the_whole_tree_in_one_response(client):
    floor = FloorFactory(building__site_x=120, building__site_y=80)
    building = floor.building
    near = CameraFactory(
        building=building, floor=floor, x=100, y=200, heading=45, field_of_view=70,
        tags=["entrance"],
    )  # fmt: skip
    far = CameraFactory(building=building)
    on_floor_only = CameraFactory(building=building, floor=floor, name="Z on the floor, no x")
    door = DoorFactory(building=building, floor=floor, x=110, y=210, external_id="P1-D7")
    DoorCamera.objects.create(door=door, camera=far, rank=1)
    DoorCamera.objects.create(door=door, camera=near, rank=0)
    sign_in_verified(client, office_user())

    [campus] = client.get(URL).json()

    assert campus["id"] == building.campus_id
    assert {"name", "short_name", "site_plan", "site_plan_width", "site_plan_height"} <= set(
        campus
    )
    [tree_building] = campus["buildings"]
    assert (tree_building["id"], tree_building["site_x"], tree_building["site_y"]) == (
        building.id, 120, 80,
    )  # fmt: skip
    [tree_floor] = tree_building["floors"]
    assert tree_floor["plan"] == floor.plan.url
    assert (tree_floor["plan_width"], tree_floor["plan_height"]) == (1000, 600)
    assert tree_floor["level"] == floor.level
    assert tree_floor["cameras"] == [{
        "id": near.id, "name": near.name, "floor": floor.id, "x": 100, "y": 200,
        "heading": 45, "field_of_view": 70, "tags": ["entrance"], "enabled": True,
    }]  # fmt: skip
    assert [c["id"] for c in tree_building["unplaced_cameras"]] == [far.id, on_floor_only.id]
    assert tree_building["unplaced_cameras"][0]["floor"] is None
    assert tree_building["unplaced_doors"] == []
    assert tree_floor["doors"] == [
        {
            "id": door.id, "name": door.name, "external_id": "P1-D7", "floor": floor.id,
            "x": 110, "y": 210, "cameras": [near.id, far.id],
        }
    ]  # fmt: skip


def test_it_shows_only_the_buildings_cameras_and_doors_in_scope(client):
    mine = BuildingFactory()
    theirs = BuildingFactory()
    camera = CameraFactory(building=mine)
    CameraFactory(building=theirs)
    DoorFactory(building=theirs)
    door = DoorFactory(building=mine)
    DoorCamera.objects.create(door=door, camera=camera, rank=0)
    user = UserFactory()
    GrantFactory(user=user, capabilities=["live"], building=mine)
    GrantFactory(user=user, capabilities=["alarms"], building=mine)
    sign_in_verified(client, user)

    [campus] = client.get(URL).json()

    assert campus["id"] == mine.campus_id
    [building] = campus["buildings"]
    assert building["id"] == mine.id
    assert [c["id"] for c in building["unplaced_cameras"]] == [camera.id]
    assert [(d["id"], d["cameras"]) for d in building["unplaced_doors"]] == [
        (door.id, [camera.id])
    ]


def test_doors_need_the_alarms_capability_and_list_only_cameras_the_user_may_watch(client):
    building = BuildingFactory()
    watched = CameraFactory(building=building, tags=["parking"])
    unwatched = CameraFactory(building=building, tags=["hallway"])
    door = DoorFactory(building=building)
    DoorCamera.objects.create(door=door, camera=unwatched, rank=0)
    DoorCamera.objects.create(door=door, camera=watched, rank=1)
    user = UserFactory()
    GrantFactory(user=user, capabilities=["live"], tags=["parking"])
    sign_in_verified(client, user)

    [campus] = client.get(URL).json()
    assert campus["buildings"][0]["unplaced_doors"] == []
    assert [c["id"] for c in campus["buildings"][0]["unplaced_cameras"]] == [watched.id]

    GrantFactory(user=user, capabilities=["alarms"], building=building)
    [campus] = client.get(URL).json()
    assert campus["buildings"][0]["unplaced_doors"][0]["cameras"] == [watched.id]


def test_facilities_see_only_the_buildings_of_their_tagged_cameras(client):
    parking = CameraFactory(tags=["parking"])
    CameraFactory(tags=["hallway"])
    user = UserFactory()
    GrantFactory(user=user, capabilities=["live"], tags=["parking"])
    sign_in_verified(client, user)

    tree = client.get(URL).json()

    assert [b["id"] for c in tree for b in c["buildings"]] == [parking.building_id]


def test_district_wide_users_see_buildings_that_have_no_camera_yet(client):
    empty = BuildingFactory()
    CameraFactory()
    sign_in_verified(client, office_user())

    tree = client.get(URL).json()

    assert empty.id in [b["id"] for c in tree for b in c["buildings"]]
    assert len([b for c in tree for b in c["buildings"]]) == 2


def test_a_user_without_grants_gets_an_empty_tree(client):
    CameraFactory()
    sign_in_verified(client, UserFactory())

    assert client.get(URL).json() == []


def test_it_needs_the_second_factor(client):
    user = UserFactory()
    client.force_login(user)

    assert client.get(URL).status_code == 403


# The user's grants and their tags, then campuses, buildings, floors, and for the floors
# and for the unplaced: cameras, their tags, doors, the doors' cameras.
TREE_QUERIES = 13


@pytest.mark.parametrize("size", [1, 4])
def test_the_tree_takes_the_same_queries_whatever_the_districts_size(
    django_assert_num_queries, size
):
    district(size)
    user = office_user()

    with django_assert_num_queries(TREE_QUERIES):
        campuses = CampusTreeSerializer(campus_tree(user), many=True).data

    assert len(campuses) == size
    floors = [f for campus in campuses for b in campus["buildings"] for f in b["floors"]]
    assert sum(len(floor["cameras"]) for floor in floors) == size * size * 4


def test_the_endpoints_query_count_does_not_grow_with_the_district(client):
    sign_in_verified(client, office_user())

    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            assert client.get(URL).status_code == 200
        return len(context)

    district(1)
    small = queries()
    district(4)
    assert len(client.get(URL).json()) == 5
    assert queries() == small


def test_an_unchanged_tree_answers_not_modified(client):
    CameraFactory()
    sign_in_verified(client, office_user())

    first = client.get(URL)
    again = client.get(URL, headers={"if-none-match": first["ETag"]})
    CameraFactory()
    changed = client.get(URL, headers={"if-none-match": first["ETag"]})

    assert "private" in first["Cache-Control"]
    assert again.status_code == 304
    assert changed.status_code == 200
