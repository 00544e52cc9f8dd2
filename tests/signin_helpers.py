"""Signing in through the real endpoint with real codes, for tests of every app."""

import base64
import time
from urllib.parse import parse_qs, urlparse

from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from responder.core.signin import enrolment_code_issue
from tests.factories import PASSWORD, TOTPDeviceFactory, UserFactory

LOGIN = "/api/v1/auth/login"


def code_for(device: TOTPDevice) -> str:
    """The device's code now, or the next step's if now's was used (codes never repeat)."""
    offset = max(0, device.last_t + 1 - _step(device))
    token = totp(device.bin_key, device.step, device.t0, device.digits, device.drift + offset)
    return f"{token:0{device.digits}d}"


def usable_device(user) -> TOTPDevice:
    device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").last()
    # The tolerance reaches one step ahead; past that, a second device is simplest.
    if device is None or device.last_t + 1 > _step(device) + device.tolerance:
        device = TOTPDeviceFactory(user=user)
    return device


def _step(device: TOTPDevice) -> int:
    return int((time.time() - device.t0) // device.step) + device.drift


def api_sign_in(user, *, password: str = PASSWORD) -> Client:
    device = usable_device(user)
    client = Client()
    response = client.post(
        LOGIN,
        {"username": user.get_username(), "password": password, "otp": code_for(device)},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    client.csrf_token = response.json()["csrf_token"]
    client.user = user
    return client


def code_from_uri(otpauth_uri: str) -> str:
    """The current code of the secret in an otpauth:// URI, as an authenticator app shows it."""
    secret = parse_qs(urlparse(otpauth_uri).query)["secret"][0]
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return f"{totp(key):06d}"


def enrolment_code_for(user) -> str:
    """A code as district IT issues one in the admin, for the user's first device."""
    it_admin = UserFactory(username="it-issuer", is_staff=True, is_superuser=True)
    return enrolment_code_issue(user=user, by=it_admin)
