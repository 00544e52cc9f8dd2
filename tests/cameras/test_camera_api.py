import pytest

from tests.factories import (
    BuildingFactory,
    CameraFactory,
    FloorFactory,
    GrantFactory,
    UserFactory,
    sign_in_verified,
)

pytestmark = pytest.mark.django_db
URL = "/api/v1/cameras/"


def viewer(client, **grant):
    user = UserFactory()
    GrantFactory(user=user, **{"capabilities": ["live"], **grant})
    sign_in_verified(client, user)
    return user


def ids(response) -> list[int]:
    assert response.status_code == 200
    return [camera["id"] for camera in response.json()]


def test_it_describes_a_camera_without_its_streams_or_credentials(client):
    floor = FloorFactory()
    camera = CameraFactory(
        name="HS Main Entrance – Lobby", building=floor.building, floor=floor, x=12.5, y=40,
        heading=90, field_of_view=60, vendor="mobotix", model="M16", tags=["entrance"],
        main_stream_url="rtsp://10.1.2.3/main", sub_stream_url="rtsp://10.1.2.3/sub",
        username="svc-video", password="s3cret-pw",
    )  # fmt: skip
    viewer(client)

    response = client.get(f"{URL}{camera.id}/")

    assert response.json() == {
        "id": camera.id, "name": "HS Main Entrance – Lobby", "building": floor.building_id,
        "campus": floor.building.campus_id, "tags": ["entrance"],
        "placement": {"floor": floor.id, "x": 12.5, "y": 40}, "vendor": "mobotix",
        "model": "M16", "heading": 90, "field_of_view": 60, "enabled": True,
    }  # fmt: skip
    for body in (response.content, client.get(URL).content):
        for secret in (b"svc-video", b"s3cret-pw", b"rtsp://", b"10.1.2.3"):
            assert secret not in body


def test_an_unplaced_camera_has_no_placement(client):
    camera = CameraFactory()
    viewer(client)

    assert client.get(f"{URL}{camera.id}/").json()["placement"] is None


def test_it_lists_only_cameras_in_scope(client):
    building = BuildingFactory()
    inside = CameraFactory(building=building)
    CameraFactory()
    viewer(client, building=building)

    assert ids(client.get(URL)) == [inside.id]


def test_a_camera_outside_the_scope_is_not_found(client):
    outside = CameraFactory()
    viewer(client, building=BuildingFactory())

    assert client.get(f"{URL}{outside.id}/").status_code == 404
    assert client.get(f"{URL}{outside.id + 1000}/").status_code == 404


def test_a_grant_without_viewing_capabilities_shows_no_camera(client):
    camera = CameraFactory()
    viewer(client, capabilities=["alarms", "export"])

    assert ids(client.get(URL)) == []
    assert client.get(f"{URL}{camera.id}/").status_code == 404


def test_a_tag_scope_shows_each_camera_once(client):
    camera = CameraFactory(tags=["parking", "exterior"])
    CameraFactory(tags=["hallway"])
    viewer(client, tags=["parking", "exterior"])

    assert ids(client.get(URL)) == [camera.id]
    assert ids(client.get(URL, {"tag": "parking"})) == [camera.id]


def test_it_filters_by_building_campus_and_tag(client):
    building = BuildingFactory()
    neighbour = BuildingFactory(campus=building.campus)
    in_building = CameraFactory(building=building, tags=["parking"])
    on_campus = CameraFactory(building=neighbour, tags=["hallway"])
    CameraFactory()
    viewer(client)

    assert ids(client.get(URL, {"building": building.id})) == [in_building.id]
    assert sorted(ids(client.get(URL, {"campus": building.campus_id}))) == sorted(
        [in_building.id, on_campus.id]
    )
    assert ids(client.get(URL, {"tag": "hallway"})) == [on_campus.id]
    assert ids(client.get(URL, {"tag": "nowhere"})) == []


def test_it_searches_by_name(client):
    lobby = CameraFactory(name="HS Main Entrance – Lobby")
    CameraFactory(name="MS Gym")
    viewer(client)

    assert ids(client.get(URL, {"search": "lobby"})) == [lobby.id]
    assert ids(client.get(URL, {"q": "LOBBY"})) == [lobby.id]


def test_it_is_read_only(client):
    camera = CameraFactory()
    viewer(client)

    assert client.post(URL, {"name": "new"}).status_code == 405
    assert client.delete(f"{URL}{camera.id}/").status_code == 405


def test_it_needs_the_second_factor(client):
    camera = CameraFactory()
    client.force_login(UserFactory(is_superuser=True))

    assert client.get(URL).status_code == 403
    assert client.get(f"{URL}{camera.id}/").status_code == 403
