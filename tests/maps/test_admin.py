import pytest
from django.contrib.staticfiles import finders
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accesslog.models import DoorCamera
from cameras.models import Camera
from tests.factories import (
    AccessSystemFactory,
    CameraFactory,
    DoorFactory,
    FloorFactory,
    TagFactory,
    UserFactory,
    sign_in_verified,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    sign_in_verified(client, UserFactory(is_superuser=True, is_staff=True))
    return client


@pytest.fixture
def placed_camera():
    floor = FloorFactory()
    return CameraFactory(
        building=floor.building, floor=floor, x=10, y=20, tags=["entrance"],
        username="svc-video", password="s3cret-pw",
    )  # fmt: skip


def test_every_district_page_renders_for_a_superuser(admin_client, placed_camera):
    door = DoorFactory(building=placed_camera.building, floor=placed_camera.floor, x=1, y=2)
    DoorCamera.objects.create(door=door, camera=placed_camera, rank=0)
    objects = {
        "maps/district": placed_camera.building.campus.district,
        "maps/campus": placed_camera.building.campus,
        "maps/building": placed_camera.building,
        "maps/floor": placed_camera.floor,
        "cameras/camera": placed_camera,
        "cameras/tag": TagFactory(slug="parking"),
        "accesslog/accesssystem": AccessSystemFactory(),
        "accesslog/door": door,
    }
    for path, obj in objects.items():
        for url in (f"/admin/{path}/", f"/admin/{path}/add/", f"/admin/{path}/{obj.pk}/change/"):
            response = admin_client.get(url)
            assert response.status_code == 200, url
    assert admin_client.get("/admin/cameras/camera/import/").status_code == 200


def test_the_placement_pages_carry_the_clickable_plan(admin_client, placed_camera):
    door = DoorFactory(building=placed_camera.building)
    pages = [
        f"/admin/cameras/camera/{placed_camera.pk}/change/",
        f"/admin/accesslog/door/{door.pk}/change/",
        f"/admin/maps/floor/{placed_camera.floor.pk}/change/",
    ]
    for url in pages:
        page = admin_client.get(url).text
        assert 'class="plan-placement"' in page, url
        assert "maps/plan_placement.js" in page, url
        assert placed_camera.floor.plan.url in page, url
    assert finders.find("maps/plan_placement.js")
    assert finders.find("maps/plan_placement.css")


def test_the_campus_page_places_buildings_on_the_site_plan(admin_client):
    floor = FloorFactory()
    campus = floor.building.campus
    campus.site_plan = floor.plan.name
    campus.save()

    page = admin_client.get(f"/admin/maps/campus/{campus.pk}/change/").text

    assert 'class="plan-placement"' in page
    assert "site_x" in page


def test_the_camera_page_never_shows_the_stored_credentials(admin_client, placed_camera):
    page = admin_client.get(f"/admin/cameras/camera/{placed_camera.pk}/change/").text

    assert "svc-video" not in page
    assert "s3cret-pw" not in page
    assert "A value is stored" in page


def camera_form(camera: Camera, **changes: str) -> dict:
    return {
        "name": camera.name, "enabled": "on", "vendor": camera.vendor, "model": "",
        "tags": [tag.pk for tag in camera.tags.all()], "building": camera.building_id,
        "floor": camera.floor_id or "", "x": camera.x or "", "y": camera.y or "",
        "heading": camera.heading, "field_of_view": camera.field_of_view,
        "main_stream_url": camera.main_stream_url, "sub_stream_url": "",
        "username": "", "password": "",
        # The recording policy inline (responder.recording.admin), left empty.
        "recording_policy-TOTAL_FORMS": "0", "recording_policy-INITIAL_FORMS": "0",
        **changes,
    }  # fmt: skip


def test_blank_credentials_keep_the_stored_ones(admin_client, placed_camera):
    url = f"/admin/cameras/camera/{placed_camera.pk}/change/"

    response = admin_client.post(url, camera_form(placed_camera, x="30"))

    assert response.status_code == 302
    placed_camera.refresh_from_db()
    assert (placed_camera.x, placed_camera.username, placed_camera.password) == (
        30, "svc-video", "s3cret-pw",
    )  # fmt: skip


def test_new_credentials_replace_the_stored_ones_and_can_be_cleared(admin_client, placed_camera):
    url = f"/admin/cameras/camera/{placed_camera.pk}/change/"

    admin_client.post(url, camera_form(placed_camera, password="n3w-pw"))
    placed_camera.refresh_from_db()
    assert (placed_camera.username, placed_camera.password) == ("svc-video", "n3w-pw")

    admin_client.post(url, camera_form(placed_camera, clear_credentials="on"))
    placed_camera.refresh_from_db()
    assert (placed_camera.username, placed_camera.password) == (None, None)


def test_a_placement_on_another_buildings_floor_is_refused(admin_client, placed_camera):
    elsewhere = FloorFactory()
    url = f"/admin/cameras/camera/{placed_camera.pk}/change/"

    response = admin_client.post(url, camera_form(placed_camera, floor=str(elsewhere.pk)))

    assert response.status_code == 200
    assert "The floor must be in the same building." in response.text


def test_the_floor_page_moves_its_cameras(admin_client, placed_camera):
    floor = placed_camera.floor
    data = {
        "building": floor.building_id, "name": floor.name, "level": floor.level,
        "cameras-TOTAL_FORMS": 1, "cameras-INITIAL_FORMS": 1,
        "cameras-0-id": placed_camera.pk, "cameras-0-floor": floor.pk,
        "cameras-0-x": 300, "cameras-0-y": 400, "cameras-0-heading": 180,
        "cameras-0-field_of_view": 45,
        "doors-TOTAL_FORMS": 0, "doors-INITIAL_FORMS": 0,
    }  # fmt: skip

    response = admin_client.post(f"/admin/maps/floor/{floor.pk}/change/", data)

    assert response.status_code == 302, response.text
    placed_camera.refresh_from_db()
    assert (placed_camera.x, placed_camera.y, placed_camera.heading) == (300, 400, 180)


def test_the_floor_page_takes_its_labels_and_an_emptied_box_as_none(admin_client):
    floor = FloorFactory()
    data = {
        "building": floor.building_id, "name": floor.name, "level": floor.level,
        "labels": '[{"text": "Room 101", "x": 300, "y": 200, "width": 180}]',
        "cameras-TOTAL_FORMS": 0, "cameras-INITIAL_FORMS": 0,
        "doors-TOTAL_FORMS": 0, "doors-INITIAL_FORMS": 0,
    }  # fmt: skip
    url = f"/admin/maps/floor/{floor.pk}/change/"

    assert admin_client.post(url, data).status_code == 302
    floor.refresh_from_db()
    assert floor.labels == [{"text": "Room 101", "x": 300, "y": 200, "width": 180}]
    refused = admin_client.post(url, {**data, "labels": '[{"text": "Room 101"}]'})
    assert "give text, x and y" in refused.text
    assert admin_client.post(url, {**data, "labels": ""}).status_code == 302
    floor.refresh_from_db()
    assert floor.labels == []


def test_the_camera_and_door_lists_take_the_same_queries_for_more_rows(admin_client):
    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as context:
            assert admin_client.get(url).status_code == 200
        return len(context)

    def add_rows() -> None:
        floor = FloorFactory()
        for _ in range(3):
            CameraFactory(building=floor.building, floor=floor, x=1, y=1, tags=["hallway"])
            DoorFactory(building=floor.building, floor=floor)

    add_rows()
    few = {url: queries(url) for url in ("/admin/cameras/camera/", "/admin/accesslog/door/")}
    add_rows()
    add_rows()
    assert {url: queries(url) for url in few} == few


def test_floors_are_listed_and_offered_with_their_campus_and_building(admin_client):
    north = FloorFactory(
        name="1st Floor", building__name="Main Building", building__campus__name="North High"
    )
    south = FloorFactory(
        name="1st Floor", building__name="Main Building", building__campus__name="South Middle"
    )
    listing = admin_client.get("/admin/maps/floor/").text
    for floor in (north, south):
        row = listing[listing.index(f"/admin/maps/floor/{floor.pk}/change/") :]
        row = row[: row.index("</tr>")]
        assert floor.building.campus.name in row and "Main Building" in row

    form = admin_client.get("/admin/cameras/camera/add/").text
    assert f'<option value="{north.pk}">North High › Main Building › 1st Floor</option>' in form
    assert f'<option value="{south.pk}">South Middle › Main Building › 1st Floor</option>' in form


def test_the_second_factor_sections_have_readable_names(admin_client):
    index = admin_client.get("/admin/").text
    assert "Sign-in codes: authenticator apps" in index
    assert "Otp_Totp" not in index and "Otp_Static" not in index


def test_the_floor_page_says_pins_can_be_dragged(admin_client, placed_camera):
    page = admin_client.get(f"/admin/maps/floor/{placed_camera.floor.pk}/change/").text
    assert "then click the plan or drag its pin" in page
