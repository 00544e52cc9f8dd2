"""The demo's people: one user per role, each with a confirmed TOTP device.

Each device key derives from the username and the password, so the secrets seed_demo
prints stay valid across runs and machines for the same password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.db import transaction
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from maps.models import Campus
from responder.core import roles
from responder.core.models import Grant

DEVICE_NAME = "Demo authenticator"


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    groups: tuple[str, ...] = ()
    superuser: bool = False


DEMO_USERS = (
    DemoUser("it-admin", "District IT (superuser, admin)", (roles.DISTRICT_IT,), superuser=True),
    DemoUser("district-office", "District office: all buildings", (roles.DISTRICT_OFFICE,)),
    DemoUser(
        "hs-principal", "School administrator: high school only", (roles.SCHOOL_ADMINISTRATORS,)
    ),
    DemoUser("facilities", "Facilities: parking and exterior cameras, live", (roles.FACILITIES,)),
    DemoUser("officer", "Police responder", (roles.POLICE,)),
    DemoUser("fire", "Fire responder: live video only during incidents", (roles.FIRE,)),
)
PRINCIPAL_CAPABILITIES = [c.value for c in roles.SCHOOL_ADMINISTRATOR_CAPABILITIES]


def totp_key(username: str, password: str) -> str:
    digest = hmac.new(password.encode(), f"responder-demo:{username}".encode(), hashlib.sha256)
    return digest.digest()[:20].hex()


def totp_secret(device: TOTPDevice) -> str:
    """The base32 secret an authenticator app asks for."""
    return base64.b32encode(device.bin_key).decode()


def totp_now(device: TOTPDevice) -> str:
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    return f"{code:0{device.digits}d}"


def users_seed(*, password: str, high_school: Campus) -> list[tuple[DemoUser, TOTPDevice]]:
    with transaction.atomic():
        seeded = [(demo, _user(demo, password)) for demo in DEMO_USERS]
        principal = next(user for demo, user in seeded if demo.username == "hs-principal")
        _principal_grant(principal, high_school)
        return [(demo, _device(user, totp_key(demo.username, password))) for demo, user in seeded]


def _user(demo: DemoUser, password: str) -> User:
    user, _ = get_user_model().objects.get_or_create(username=demo.username)
    wanted = {
        "email": f"{demo.username}@district.example",
        "is_staff": demo.superuser,
        "is_superuser": demo.superuser,
        "is_active": True,
    }
    changed = [name for name, value in wanted.items() if getattr(user, name) != value]
    for name in changed:
        setattr(user, name, wanted[name])
    # check_password, not set_password: a new salt would change the row on every run.
    if not user.check_password(password):
        user.set_password(password)
        changed.append("password")
    if changed:
        user.save()
    groups = [Group.objects.get(name=name) for name in demo.groups]
    if set(user.groups.all()) != set(groups):
        user.groups.set(groups)
    return user


def _principal_grant(user: User, campus: Campus) -> None:
    grants = Grant.objects.filter(user=user, incident__isnull=True)
    wanted = sorted(PRINCIPAL_CAPABILITIES)
    current = [(g.campus_id, g.building_id, sorted(g.capabilities)) for g in grants]
    if current == [(campus.id, None, wanted)] and not grants[0].tags.exists():
        return
    grants.delete()
    Grant.objects.create(user=user, campus=campus, capabilities=wanted, note="Demo: own campus")


def _device(user: User, key: str) -> TOTPDevice:
    device, created = TOTPDevice.objects.get_or_create(
        user=user, name=DEVICE_NAME, defaults={"key": key, "confirmed": True}
    )
    if not created and (device.key != key or not device.confirmed):
        device.key, device.confirmed = key, True
        device.save()
    return device
