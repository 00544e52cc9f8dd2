import hashlib

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile

from maps.plans import plan_svg_clean, validate_plan_labels
from tests.factories import (
    BuildingFactory,
    FloorFactory,
    GrantFactory,
    UserFactory,
    sign_in_verified,
)

pytestmark = pytest.mark.django_db

SCRIPTED = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 300 200" onload="alert(1)">'
    b"<script>alert(2)</script><rect width='300' height='200'/></svg>"
)


def officer_on(client, building):
    user = UserFactory()
    GrantFactory(user=user, building=building, capabilities=["alarms"])
    sign_in_verified(client, user)
    return user


def test_a_stored_svg_is_the_cleaned_one_and_named_after_what_was_kept():
    floor = FloorFactory(plan=ContentFile(SCRIPTED, name="plan.svg"))

    stored = floor.plan.open("rb").read()

    assert b"script" not in stored and b"onload" not in stored
    assert plan_svg_clean(stored) == stored
    assert floor.plan.name == f"plans/{hashlib.sha256(stored).hexdigest()[:20]}.svg"
    assert (floor.plan_width, floor.plan_height) == (300, 200)


def test_the_map_tree_gives_each_plan_a_versioned_url_its_user_may_fetch(client):
    floor = FloorFactory()
    officer_on(client, floor.building)

    [campus] = client.get("/api/v1/campuses/").json()
    url = campus["buildings"][0]["floors"][0]["plan"]
    response = client.get(url)

    assert url == floor.plan.url and url.startswith("/media/plans/")
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    assert b"".join(response.streaming_content).startswith(b"<?xml")


def test_a_grant_on_one_building_shows_its_campus_site_plan(client):
    building = BuildingFactory()
    building.campus.site_plan = ContentFile(SCRIPTED, name="site.svg")
    building.campus.save()
    officer_on(client, building)

    assert client.get(building.campus.site_plan.url).status_code == 200


def test_only_plans_are_served_under_media(client, settings):
    floor = FloorFactory()
    (settings.MEDIA_ROOT / "plans" / "notes.txt").write_text("not a plan")
    sign_in_verified(client, UserFactory(is_superuser=True))

    assert client.get(floor.plan.url).status_code == 200
    assert client.get("/media/plans/notes.txt").status_code == 404
    assert client.get("/media/plans/0123456789abcdef0123.svg").status_code == 404
    assert client.post(floor.plan.url).status_code == 405


@pytest.mark.parametrize(
    "labels",
    [
        {"text": "Room 101", "x": 1, "y": 2},  # not a list
        [{"text": "Room 101", "x": 1}],  # no y
        [{"text": "", "x": 1, "y": 2}],
        [{"text": "Room 101", "x": "1", "y": 2}],
        [{"text": "Room 101", "x": 1, "y": 2, "width": 0}],
        [{"text": "Room 101", "x": 1, "y": 2, "size": 30}],  # the app sets the size
    ],
)
def test_plan_labels_it_cannot_draw_are_refused(labels):
    with pytest.raises(ValidationError):
        validate_plan_labels(labels)


def test_plan_labels_with_text_a_place_and_a_room_width_are_accepted():
    validate_plan_labels(
        [{"text": "Room 101", "x": 10, "y": 20.5, "width": 180}, {"text": "N", "x": 1, "y": 1}]
    )
