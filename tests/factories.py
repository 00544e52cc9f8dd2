"""factory_boy factories for the whole project. Add yours at the end of the file."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.db.models import Max
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accesslog.models import AccessSystem, Door, Event, SystemKind
from cameras.models import Camera, Tag
from maps.models import Building, Campus, District, Floor
from responder.core.models import Grant

PASSWORD = "correct horse battery staple"
PLAN_SVG = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1000 600"></svg>'


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@district.example")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()


class TOTPDeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TOTPDevice

    user = factory.SubFactory(UserFactory)
    name = "phone"
    confirmed = True


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"group{n}")


class DistrictFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = District
        django_get_or_create = ("name",)

    name = "Test District"


class CampusFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campus

    district = factory.SubFactory(DistrictFactory)
    name = factory.Sequence(lambda n: f"Campus {n}")


class BuildingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Building

    campus = factory.SubFactory(CampusFactory)
    name = factory.Sequence(lambda n: f"Building {n}")


class FloorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Floor

    building = factory.SubFactory(BuildingFactory)
    name = factory.Sequence(lambda n: f"Floor {n}")
    level = factory.Sequence(lambda n: n)
    plan = factory.LazyFunction(lambda: ContentFile(PLAN_SVG, name="plan.svg"))


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"tag{n}")


class CameraFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Camera
        skip_postgeneration_save = True

    building = factory.SubFactory(BuildingFactory)
    name = factory.Sequence(lambda n: f"Camera {n}")
    # Loopback, closed port: a test that opens it by mistake is refused, never sent out.
    main_stream_url = factory.Sequence(lambda n: f"rtsp://127.0.0.1:9/cam{n}/axis-media/media.amp")

    @factory.post_generation
    def tags(obj, create, extracted, **kwargs):  # noqa: N805
        if create and extracted:
            obj.tags.set(TagFactory(slug=slug) for slug in extracted)


class AccessSystemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AccessSystem
        django_get_or_create = ("slug",)

    name = "OnGuard"
    slug = "onguard"
    kind = SystemKind.ONGUARD


class DoorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Door

    system = factory.SubFactory(AccessSystemFactory)
    building = factory.SubFactory(BuildingFactory)
    external_id = factory.Sequence(lambda n: f"panel1-door{n}")
    name = factory.Sequence(lambda n: f"Door {n}")


class GrantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Grant
        skip_postgeneration_save = True

    capabilities = factory.LazyFunction(lambda: ["live", "alarms"])

    @factory.post_generation
    def tags(obj, create, extracted, **kwargs):  # noqa: N805
        if create and extracted:
            obj.tags.set(TagFactory(slug=slug) for slug in extracted)


def sign_in_verified(client, user) -> TOTPDevice:
    """Signs `user` in past the second factor, as the real sign-in leaves the session."""
    from django_otp import DEVICE_ID_SESSION_KEY

    device = TOTPDeviceFactory(user=user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device


def event_store(door: Door, type: str = "door_forced", severity: str = "alarm", **fields) -> Event:
    """An event stored with the next seq, as ingest would leave it (no announcement)."""
    seq = (Event.objects.aggregate(m=Max("seq"))["m"] or 0) + 1
    return Event.objects.create(
        seq=seq,
        system=door.system,
        source_event_id=f"src-{seq}",
        type=type,
        severity=severity,
        door=door,
        door_external_id=door.external_id,
        occurred_at=timezone.now(),
        **fields,
    )
