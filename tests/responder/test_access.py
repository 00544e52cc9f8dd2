from datetime import UTC, datetime

import pytest

from cameras.models import Camera
from responder.core.capabilities import Capability
from tests.factories import BuildingFactory, CameraFactory, GrantFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_tag_grant_shows_each_matching_camera_once():
    user = UserFactory()
    camera = CameraFactory(tags=["parking", "exterior"])
    CameraFactory(tags=["hallway"])
    GrantFactory(user=user, capabilities=["live"], tags=["parking", "exterior"])

    assert list(Camera.objects.visible_to(user, Capability.LIVE)) == [camera]


def test_a_building_grant_stops_at_the_building():
    user = UserFactory()
    inside = CameraFactory()
    CameraFactory()
    GrantFactory(user=user, capabilities=["live"], building=inside.building)

    assert list(Camera.objects.visible_to(user, Capability.LIVE)) == [inside]
    assert not Camera.objects.visible_to(user, Capability.EXPORT).exists()


def test_a_grant_ends_at_its_end(time_machine):
    user = UserFactory()
    CameraFactory()
    GrantFactory(user=user, capabilities=["live"], ends_at=datetime(2030, 1, 1, tzinfo=UTC))

    time_machine.move_to("2029-12-31T23:59Z")
    assert Camera.objects.visible_to(user, Capability.LIVE).count() == 1
    time_machine.move_to("2030-01-01T00:01Z")
    assert (
        Camera.objects.visible_to(UserFactory(username=user.username), Capability.LIVE).count()
        == 0
    )


def test_a_campus_grant_covers_its_buildings_only():
    user = UserFactory()
    building = BuildingFactory()
    inside = CameraFactory(building=BuildingFactory(campus=building.campus))
    CameraFactory()
    GrantFactory(user=user, capabilities=["live"], campus=building.campus)

    assert list(Camera.objects.visible_to(user, Capability.LIVE)) == [inside]
