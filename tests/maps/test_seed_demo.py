import io
import math

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db.models import Model
from django_otp.plugins.otp_totp.models import TOTPDevice

from accesslog.models import AccessSystem, Door, DoorCamera
from cameras.media import source_format
from cameras.models import Camera, Tag
from maps.models import Building, Campus, District, Floor
from responder.core.capabilities import Capability
from responder.core.models import AuditEntry, Grant, IncidentRule
from responder.core.roles import FIRE, POLICE
from responder.demo.users import totp_key
from responder.incidents.services import incident_open, incidents_visible_to

pytestmark = pytest.mark.django_db
User = get_user_model()
BASE = "http://cameras.test:8554"
HIGH_SCHOOL = "Riverside High School"


@pytest.fixture(autouse=True)
def _fast_hashes(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed(**options) -> None:
    call_command("seed_demo", camera_base_url=BASE, stdout=io.StringIO(), **options)


def user(username: str):
    return User.objects.get(username=username)


def test_it_builds_the_case_study_district():
    seed()
    assert District.objects.count() == 1
    assert Campus.objects.count() == 3
    assert Building.objects.count() >= 7
    assert Camera.objects.count() == 150
    assert Door.objects.count() >= 40
    assert list(AccessSystem.objects.values_list("slug", "kind")) == [("lenels2", "onguard")]
    assert set(Camera.objects.values_list("vendor", flat=True)) == {"axis", "mobotix"}
    assert not Camera.objects.filter(floor__isnull=True).exists()
    assert all(c.main_stream_url.startswith(BASE) for c in Camera.objects.all())
    # The Mobotix cameras' small stream is the simulator's MxPEG, opened as the real one is.
    mobotix = Camera.objects.filter(vendor="mobotix")
    assert {source_format(c.sub_stream_url) for c in mobotix} == {"mxg"}
    assert Camera.objects.filter(name="HS Main Entrance – Lobby").exists()
    assert Camera.objects.filter(name="ES Parking Lot – East").exists()


def test_its_floors_and_campuses_have_generated_plans_of_known_size():
    seed()
    for floor in Floor.objects.all():
        assert (floor.plan_width, floor.plan_height) == (1200, 900)
        assert floor.building.name.encode() in floor.plan.read()
    assert not Campus.objects.filter(site_plan="").exists()
    assert not Campus.objects.filter(site_plan_width__isnull=True).exists()


def test_the_names_on_its_plans_are_labels_the_app_draws_not_text_in_the_images():
    # Text in an image shrinks with it: 16 px on a 1200 px plan is 5 px on a 360 px phone.
    seed()
    for plan in [*Floor.objects.all(), *Campus.objects.all()]:
        image = plan.plan if isinstance(plan, Floor) else plan.site_plan
        assert b"<text" not in image.read()
        full_clean_labels(plan)
    first = Floor.objects.get(
        building__campus__short_name="HS", building__name="Main Building", level=1
    )
    rooms = {label["text"]: label for label in first.labels}
    assert {"Main Office", "Cafeteria", "Room 101", "Library", "Corridor"} <= rooms.keys()
    assert rooms["Cafeteria"]["width"] > rooms["Nurse"]["width"]  # a room's width, to fit in


def full_clean_labels(plan: Floor | Campus) -> None:
    plan.clean_fields(exclude=[f.name for f in plan._meta.fields if f.name != "labels"])


def test_each_door_is_linked_to_the_nearest_cameras_of_its_floor_nearest_first():
    seed()
    for door in Door.objects.prefetch_related("door_cameras__camera"):
        linked = [link.camera for link in door.door_cameras.all()]
        assert len(linked) == 3
        distances = [math.dist((c.x, c.y), (door.x, door.y)) for c in linked]
        assert distances == sorted(distances)
        others = Camera.objects.filter(floor=door.floor).exclude(id__in=[c.id for c in linked])
        assert all(math.dist((c.x, c.y), (door.x, door.y)) >= distances[-1] for c in others)


def snapshot() -> dict[str, list[dict]]:
    models: list[type[Model]] = [
        District, Campus, Building, Floor, Tag, Camera, Camera.tags.through, AccessSystem,
        Door, DoorCamera, Group, Grant, Grant.tags.through, User, User.groups.through,
        TOTPDevice, IncidentRule, AuditEntry,
    ]  # fmt: skip
    return {m._meta.label: list(m.objects.order_by("pk").values()) for m in models}


def test_running_it_twice_changes_nothing():
    seed()
    before = snapshot()
    seed()
    assert snapshot() == before


def test_each_demo_user_has_a_confirmed_totp_device_derived_from_the_password():
    seed(password="another demo password")
    for username in [
        "it-admin",
        "district-office",
        "hs-principal",
        "facilities",
        "officer",
        "fire",
    ]:
        device = TOTPDevice.objects.get(user__username=username)
        assert device.confirmed
        assert device.key == totp_key(username, "another demo password")
        assert user(username).check_password("another demo password")
    assert user("it-admin").is_superuser and user("it-admin").is_staff
    assert not User.objects.filter(is_staff=True).exclude(username="it-admin").exists()


def test_the_principal_sees_only_high_school_cameras_and_doors():
    seed()
    principal = user("hs-principal")
    live = Camera.objects.visible_to(principal, Capability.LIVE)
    assert live.count() == Camera.objects.filter(building__campus__name=HIGH_SCHOOL).count() > 0
    assert not live.exclude(building__campus__name=HIGH_SCHOOL).exists()
    doors = Door.objects.visible_to(principal, Capability.ALARMS)
    assert doors.exists() and not doors.exclude(building__campus__name=HIGH_SCHOOL).exists()
    assert not Camera.objects.visible_to(principal, Capability.MANAGE).exists()


def test_the_principal_sees_incidents_at_the_high_school_only():
    seed()
    principal = user("hs-principal")
    high_school = Campus.objects.get(name=HIGH_SCHOOL)
    police, elsewhere = (
        incident_open(
            campus=campus, title=title, by=None, grant_hours=1,
            responder_groups=[Group.objects.get(name=POLICE)],
        )
        for campus, title in [
            (high_school, "Police on site"),
            (Campus.objects.exclude(pk=high_school.pk).first(), "Elsewhere"),
        ]
    )  # fmt: skip
    visible = incidents_visible_to(principal)
    assert police in visible and elsewhere not in visible


def test_facilities_sees_parking_and_exterior_cameras_live_and_nothing_else():
    seed()
    facilities = user("facilities")
    live = Camera.objects.visible_to(facilities, Capability.LIVE)
    outdoor = Camera.objects.filter(tags__slug__in=["parking", "exterior"]).distinct()
    assert set(live) == set(outdoor) and live.count() < 150
    for capability in [Capability.RECORDED, Capability.EXPORT, Capability.MANAGE]:
        assert not Camera.objects.visible_to(facilities, capability).exists()
    assert not Door.objects.visible_to(facilities, Capability.ALARMS).exists()


def test_fire_sees_alarms_everywhere_but_live_video_only_during_an_incident():
    seed()
    fire = user("fire")
    assert Door.objects.visible_to(fire, Capability.ALARMS).count() == Door.objects.count()
    assert not Camera.objects.visible_to(fire, Capability.LIVE).exists()
    campus = Campus.objects.get(name=HIGH_SCHOOL)
    incident_open(
        campus=campus, title="Smoke", by=None, responder_groups=[Group.objects.get(name=FIRE)],
        grant_hours=1,
    )  # fmt: skip
    fire = user("fire")  # the grants are read once per user object
    live = Camera.objects.visible_to(fire, Capability.LIVE)
    assert live.exists() and not live.exclude(building__campus=campus).exists()


def test_the_officer_and_the_district_office_see_every_camera_live():
    seed()
    for username in ["officer", "district-office"]:
        assert Camera.objects.visible_to(user(username), Capability.LIVE).count() == 150
    assert not Camera.objects.visible_to(user("officer"), Capability.RECORDED).exists()
    assert not Camera.objects.visible_to(user("district-office"), Capability.MANAGE).exists()
