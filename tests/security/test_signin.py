"""Attacks on signing in, made as an outsider would make them, against real servers.

What is attacked, and what must hold:

- Setting up a new user's authenticator. Knowing a new user's password must not be
  enough to get their secret: the first set-up needs a one-time code that district IT
  issues, each attempt gets a secret of its own, and a secret shown to one browser is
  useless in any other. Expired and already-used codes are refused.
- Reading second factors in the admin. Even district IT's own verified session sees no
  authenticator key, QR code or backup code in the admin's pages.
- Locking officers out. Wrong passwords lock an account for LOGIN_LOCK_MINUTES only, and
  district IT is warned at once; a lock and every refusal read the same byte for byte
  whether the name exists or not; the admin's sign-in says the same to staff and
  non-staff; one address that keeps trying is slowed down with 429 answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import urllib.parse
import urllib.request
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django_otp import devices_for_user
from django_otp.plugins.otp_totp.models import TOTPDevice

from responder.core.models import EnrolmentCode, SignInState
from responder.core.signin import backup_codes_create
from responder.embedded_redis import free_port
from tests.factories import PASSWORD, TOTPDeviceFactory, UserFactory
from tests.responder.test_socket_notices import live_on, received
from tests.servers import HttpClient, daphne_command, http_sign_in, serve, stop
from tests.signin_helpers import LOGIN, code_for, code_from_uri, enrolment_code_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def attempt(client: HttpClient, username: str, **fields: str) -> tuple[int, dict]:
    status, _, body = client.request(
        "POST", LOGIN, {"username": username, "password": PASSWORD, **fields}
    )
    return status, json.loads(body)


# Setting up a new user's authenticator


def test_two_password_only_sign_ins_never_see_a_secret(daphne):
    UserFactory(username="newcomer")

    answers = [attempt(HttpClient(daphne), "newcomer") for _ in range(2)]

    for status, body in answers:
        assert status == 401
        assert body["code"] == "enrolment_required"
        assert "enrolment" not in body
        assert "otpauth" not in json.dumps(body)
    assert not TOTPDevice.objects.exists()


def test_each_enrolment_attempt_gets_a_secret_of_its_own(daphne):
    user = UserFactory(username="newcomer")
    code = enrolment_code_for(user)

    uris = [
        attempt(client, "newcomer", enrolment_code=code)[1]["enrolment"]["otpauth_uri"]
        for client in (HttpClient(daphne), HttpClient(daphne), HttpClient(daphne))
    ]

    assert len(set(uris)) == 3


def test_a_secret_shown_in_one_session_is_useless_in_another(daphne):
    user = UserFactory(username="newcomer")
    code = enrolment_code_for(user)
    victim, attacker = HttpClient(daphne), HttpClient(daphne)
    uri = attempt(victim, "newcomer", enrolment_code=code)[1]["enrolment"]["otpauth_uri"]

    stolen = attempt(attacker, "newcomer", otp=code_from_uri(uri), enrolment_code=code)

    assert stolen[0] == 401 and stolen[1]["code"] == "invalid_credentials"
    assert not TOTPDevice.objects.exists()
    assert attacker.request("GET", "/api/v1/auth/me")[0] == 403
    assert attempt(victim, "newcomer", otp=code_from_uri(uri))[0] == 200


def test_enrolment_without_a_valid_code_from_it_is_refused(daphne):
    UserFactory(username="newcomer")
    client = HttpClient(daphne)

    guessed = attempt(client, "newcomer", enrolment_code="abcd-efgh-ijkl")
    blind = attempt(client, "newcomer", otp="123456")

    assert guessed == (
        401,
        {
            "detail": (
                "That enrolment code is wrong, used or expired. Ask district IT for a new one."
            ),
            "code": "enrolment_code_invalid",
        },
    )
    assert blind[0] == 401 and "enrolment" not in blind[1]
    assert not TOTPDevice.objects.exists()


def test_an_expired_enrolment_code_is_refused(daphne):
    user = UserFactory(username="newcomer")
    code = enrolment_code_for(user)
    EnrolmentCode.objects.filter(user=user).update(expires_at=timezone.now())

    status, body = attempt(HttpClient(daphne), "newcomer", enrolment_code=code)

    assert (status, body["code"]) == (401, "enrolment_code_invalid")
    assert "enrolment" not in body


def test_a_used_enrolment_code_is_refused(daphne):
    user = UserFactory(username="newcomer")
    code = enrolment_code_for(user)
    client = HttpClient(daphne)
    uri = attempt(client, "newcomer", enrolment_code=code)[1]["enrolment"]["otpauth_uri"]
    assert attempt(client, "newcomer", otp=code_from_uri(uri))[0] == 200
    # IT removes the devices (a lost phone): the old code must not set up a new one.
    for device in devices_for_user(user, confirmed=None):
        device.delete()

    status, body = attempt(HttpClient(daphne), "newcomer", enrolment_code=code)

    assert (status, body["code"]) == (401, "enrolment_code_invalid")


def test_an_enrolment_code_opened_elsewhere_is_spent_once(daphne):
    user = UserFactory(username="newcomer")
    code = enrolment_code_for(user)
    first, second = HttpClient(daphne), HttpClient(daphne)
    uris = [
        attempt(c, "newcomer", enrolment_code=code)[1]["enrolment"]["otpauth_uri"]
        for c in (first, second)
    ]

    assert attempt(first, "newcomer", otp=code_from_uri(uris[0]))[0] == 200
    assert attempt(second, "newcomer", otp=code_from_uri(uris[1]))[0] == 401
    assert TOTPDevice.objects.filter(user=user).count() == 1


# Reading second factors in the admin


def admin_pages(user) -> list[str]:
    """The admin pages of a user and of each of their devices, the key and QR views too."""
    pages = [reverse("admin:auth_user_change", args=[user.pk])]
    for device in devices_for_user(user, confirmed=None):
        meta = device._meta
        pages.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        with contextlib.suppress(NoReverseMatch):
            pages.append(
                reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[device.pk])
            )
    totp = TOTPDevice.objects.get(user=user)
    pages += [f"/admin/otp_totp/totpdevice/{totp.pk}/config/"]
    pages += [f"/admin/otp_totp/totpdevice/{totp.pk}/qrcode/"]
    return pages


def test_the_admin_shows_no_key_qr_code_or_backup_code(gunicorn):
    officer = UserFactory(username="officer")
    totp = TOTPDeviceFactory(user=officer)
    backup_codes = backup_codes_create(user=officer)
    it_admin = http_sign_in(gunicorn, UserFactory(is_staff=True, is_superuser=True))
    secret = re.search(r"secret=([A-Z2-7]+)", totp.config_url).group(1)

    for page in admin_pages(officer):
        status, headers, body = it_admin.request("GET", page)
        html = body.decode()
        assert status in (200, 302, 403, 404), (page, status)
        assert "/login/" not in headers.get("Location", ""), page
        assert totp.key not in html and secret not in html, page
        assert "otpauth://" not in html and "/qrcode/" not in html, page
        for code in backup_codes:
            assert code not in html and code.replace("-", "") not in html, page


# Locking officers out


def test_a_lock_lifts_itself_after_login_lock_minutes(daphne):
    officer = UserFactory(username="officer")
    device = TOTPDeviceFactory(user=officer)
    client = HttpClient(daphne)
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        attempt(client, "officer", password="wrong")
    assert attempt(client, "officer", otp=code_for(device))[0] == 423

    # The clock moves on: the lock began LOGIN_LOCK_MINUTES and a second ago.
    past = timezone.now() - settings.LOGIN_LOCK - timedelta(seconds=1)
    SignInState.objects.filter(user=officer).update(locked_at=past, first_failure_at=past)

    assert attempt(client, "officer", otp=code_for(device))[0] == 200


async def test_a_lock_warns_district_it_on_their_live_socket(daphne):
    it_admin = await database_sync_to_async(UserFactory)(is_staff=True, is_superuser=True)
    officer = await database_sync_to_async(UserFactory)(username="officer")
    it_socket = await live_on(daphne, it_admin)
    client = HttpClient(daphne)

    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        await asyncio.to_thread(attempt, client, "officer", password="wrong")

    warning = await received(it_socket)
    assert (warning["type"], warning["kind"]) == ("warning", "account.locked")
    assert "officer" in warning["text"]
    assert warning["details"]["user_id"] == officer.pk
    assert warning["details"]["reason"] == "password"
    await it_socket.close()


def test_known_and_unknown_names_get_byte_identical_answers(daphne):
    device = TOTPDeviceFactory(user__username="officer")
    client = HttpClient(daphne)

    def answers(username: str, **fields: str) -> list[tuple[int, bytes]]:
        tries = settings.LOGIN_FAILURE_LIMIT + 1
        body = {"username": username, "password": "wrong", **fields}
        return [client.request("POST", LOGIN, body)[::2] for _ in range(tries)]

    known, unknown = answers("officer"), answers("nobody-here")

    assert known == unknown
    assert [status for status, _ in known][-2:] == [423, 423]
    wrong_code = client.request(
        "POST", LOGIN, {"username": device.user.username, "password": PASSWORD, "otp": "1"}
    )
    assert wrong_code[::2] == known[-1]  # still locked: no hint that the password was right


def admin_form_post(port: int, fields: dict[str, str]) -> tuple[int, str]:
    """The admin's sign-in form as a browser posts it: its CSRF cookie first, then the form."""
    client = HttpClient(port)
    client.request("GET", "/admin/login/", headers={"Content-Type": "text/html"})
    token = next(c.value for c in client.jar if c.name == "csrftoken")
    data = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": token}).encode()
    request = urllib.request.Request(
        f"{client.base}/admin/login/",
        data,
        {"Content-Type": "application/x-www-form-urlencoded", "Origin": client.base},
    )
    with client.opener.open(request, timeout=30) as response:
        return response.status, response.read().decode()


def errornote(html: str) -> str:
    return " ".join(re.search(r'<p class="errornote">(.*?)</p>', html, re.S).group(1).split())


def test_the_admin_sign_in_says_the_same_to_staff_and_non_staff(daphne):
    TOTPDeviceFactory(user__username="it-admin", user__is_staff=True)
    officer = TOTPDeviceFactory(user__username="officer")

    answers = [
        admin_form_post(daphne, {"username": "it-admin", "password": "wrong", "otp": ""}),
        admin_form_post(
            daphne, {"username": "officer", "password": PASSWORD, "otp": code_for(officer)}
        ),
        admin_form_post(daphne, {"username": "nobody-here", "password": "wrong", "otp": ""}),
    ]

    notes = {errornote(html) for _, html in answers}
    assert notes == {"Wrong username, password or one-time code."}
    assert {status for status, _ in answers} == {200}


def test_one_address_that_keeps_trying_gets_429(redis_server, tmp_path):
    port = free_port()
    env = {"LOGIN_THROTTLE_RATE": "3/d"}
    server = serve(daphne_command(port), port, tmp_path / "daphne.log", env=env)
    try:
        device = TOTPDeviceFactory(user__username="officer")
        client = HttpClient(port)
        tries = [attempt(client, f"name-{n}", password="wrong")[0] for n in range(3)]

        throttled = attempt(client, "officer", otp=code_for(device))
        admin = admin_form_post(port, {"username": "officer", "password": PASSWORD, "otp": ""})
    finally:
        stop(server)

    assert tries == [401, 401, 401]
    assert throttled == (
        429,
        {"detail": "Too many attempts from this address. Wait a minute, then try again."},
    )
    assert admin[0] == 429
    assert not SignInState.objects.filter(username="officer").exists()
