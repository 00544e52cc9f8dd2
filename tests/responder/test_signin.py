import re

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from responder.core.middleware import SIGNED_IN_AT
from responder.core.models import (
    AuditEntry,
    BackupCode,
    BackupCodeDevice,
    EnrolmentCode,
    SignInState,
)
from responder.core.signin import backup_codes_create
from tests.factories import PASSWORD, GrantFactory, GroupFactory, TOTPDeviceFactory, UserFactory
from tests.signin_helpers import LOGIN, code_for, code_from_uri, enrolment_code_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


def login(client: Client, username: str, password: str = PASSWORD, otp: str = ""):
    body = {"username": username, "password": password, "otp": otp}
    return client.post(LOGIN, body, content_type="application/json")


def enrol(client: Client, username: str, enrolment_code: str, password: str = PASSWORD):
    body = {"username": username, "password": password, "enrolment_code": enrolment_code}
    return client.post(LOGIN, body, content_type="application/json")


def test_it_signs_in_with_password_and_code_and_answers_the_user(client):
    user = UserFactory(username="officer")
    user.groups.add(GroupFactory(name="police"))
    GrantFactory(user=user, capabilities=["live", "alarms"])
    device = TOTPDeviceFactory(user=user)

    response = login(client, "officer", otp=code_for(device))

    assert response.status_code == 200
    body = response.json()
    assert body["user"]["username"] == "officer"
    assert body["groups"] == ["police"]
    assert body["capabilities"] == ["alarms", "live"]
    assert "backup_codes" not in body
    # Both the body's (masked) token and the cookie's secret pass the CSRF check.
    assert body["csrf_token"] and response.cookies["csrftoken"].value
    assert response.cookies["sessionid"].value
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert client.session[SIGNED_IN_AT]
    assert client.get("/api/v1/auth/me").json()["user"]["username"] == "officer"


def test_a_wrong_password_answers_401_with_a_clear_message(client):
    device = TOTPDeviceFactory(user__username="fire")

    response = login(client, "fire", password="wrong", otp=code_for(device))

    assert response.status_code == 401
    assert response.json() == {
        "detail": "Wrong username, password or one-time code.",
        "code": "invalid_credentials",
    }
    assert client.get("/api/v1/auth/me").status_code == 403


def test_a_wrong_or_missing_code_answers_401(client):
    TOTPDeviceFactory(user__username="fire")

    assert login(client, "fire", otp="000000").status_code == 401
    assert login(client, "fire", otp="").status_code == 401
    assert client.get("/api/v1/auth/me").status_code == 403


def test_an_unknown_user_answers_like_a_wrong_password(client):
    response = login(client, "nobody", otp="123456")

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    entry = AuditEntry.objects.get(action="signin.failed")
    assert (entry.user, entry.username, entry.outcome) == (None, "nobody", "failure")


def test_a_code_is_accepted_only_once(client):
    device = TOTPDeviceFactory(user__username="officer")
    code = code_for(device)

    assert login(client, "officer", otp=code).status_code == 200
    assert login(Client(), "officer", otp=code).status_code == 401


def test_a_backup_code_signs_in_once(client):
    user = UserFactory(username="officer")
    TOTPDeviceFactory(user=user)
    code = backup_codes_create(user=user)[3]

    assert login(client, "officer", otp=code).status_code == 200
    static = BackupCodeDevice.objects.get(user=user)
    assert client.session[DEVICE_ID_SESSION_KEY] == static.persistent_id
    assert login(Client(), "officer", otp=code).status_code == 401
    assert static.codes.count() == 9


def test_a_backup_code_is_accepted_without_dashes_and_in_capitals(client):
    user = UserFactory(username="officer")
    TOTPDeviceFactory(user=user)
    code = backup_codes_create(user=user)[0]

    assert login(client, "officer", otp=code.replace("-", "").upper()).status_code == 200


def test_backup_codes_are_kept_as_digests_only():
    user = UserFactory(username="officer")
    codes = backup_codes_create(user=user)

    stored = list(BackupCode.objects.values_list("digest", flat=True))

    assert len(stored) == 10
    assert not any(code.replace("-", "") in digest for code in codes for digest in stored)


def test_first_sign_in_asks_for_the_enrolment_code_from_district_it(client):
    UserFactory(username="newcomer")

    response = login(client, "newcomer")

    assert response.status_code == 401
    assert response.json() == {
        "detail": "Set up your authenticator app: type the enrolment code district IT gave you.",
        "code": "enrolment_required",
    }
    assert not TOTPDevice.objects.exists()


def test_first_sign_in_enrols_a_device_with_its_code_and_gives_backup_codes_once(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    user = UserFactory(username="newcomer", email="newcomer@district.example")
    enrolment_code = enrolment_code_for(user)

    first = enrol(client, "newcomer", enrolment_code)

    assert first.status_code == 401
    body = first.json()
    assert body["code"] == "enrolment_started"
    uri = body["enrolment"]["otpauth_uri"]
    assert uri.startswith("otpauth://totp/Responder%3Anewcomer?secret=")
    assert body["enrolment"]["qr_svg"].startswith("<svg")
    assert not TOTPDevice.objects.exists()
    assert client.get("/api/v1/auth/me").status_code == 403

    with django_capture_on_commit_callbacks(execute=True):
        signed_in = login(client, "newcomer", otp=code_from_uri(uri))

    assert signed_in.status_code == 200
    codes = signed_in.json()["backup_codes"]
    assert len(codes) == 10
    assert all(re.fullmatch(r"[a-z2-7]{4}(-[a-z2-7]{4}){3}", code) for code in codes)
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed
    assert device.config_url == uri
    assert EnrolmentCode.objects.get(user=user).used_at is not None
    assert client.get("/api/v1/auth/me").status_code == 200
    again = login(Client(), "newcomer", otp=codes[0])
    assert again.status_code == 200
    assert "backup_codes" not in again.json()
    assert list(
        AuditEntry.objects.filter(user=user).order_by("id").values_list("action", flat=True)
    ) == [
        "device.enrolled",
        "signin",
        "signin",
    ]
    assert [m.to for m in mailoutbox] == [["newcomer@district.example"]]
    assert "authenticator app was set up" in mailoutbox[0].body


def test_a_wrong_code_at_enrolment_keeps_the_enrolment_open(client):
    user = UserFactory(username="newcomer")
    uri = enrol(client, "newcomer", enrolment_code_for(user)).json()["enrolment"]["otpauth_uri"]
    wrong = f"{(int(code_from_uri(uri)) + 1) % 1_000_000:06d}"

    response = login(client, "newcomer", otp=wrong)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert response.json()["enrolment"]["otpauth_uri"] == uri
    assert not TOTPDevice.objects.exists()
    assert SignInState.objects.get(username="newcomer").code_failures == 1
    assert login(client, "newcomer", otp=code_from_uri(uri)).status_code == 200


def test_a_wrong_password_shows_no_enrolment(client):
    user = UserFactory(username="newcomer")

    response = enrol(client, "newcomer", enrolment_code_for(user), password="wrong")

    assert response.status_code == 401
    assert "enrolment" not in response.json()
    assert response.json()["code"] == "invalid_credentials"
    assert not TOTPDevice.objects.exists()


def test_district_it_issues_an_enrolment_code_in_the_admin_shown_once(verified_api_client):
    newcomer = UserFactory(username="newcomer")
    it_admin = verified_api_client(UserFactory(is_staff=True, is_superuser=True))

    response = it_admin.post(
        "/admin/auth/user/",
        {"action": "issue_enrolment_code", "_selected_action": [newcomer.pk]},
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    shown = re.search(rb'class="enrolment-code">([a-z2-7-]+)<', response.content).group(1)
    assert enrol(Client(), "newcomer", shown.decode()).json()["code"] == "enrolment_started"
    entry = AuditEntry.objects.get(action="enrolment_code.issued")
    assert entry.object_id == str(newcomer.pk)
    assert shown.decode() not in str(entry.details)


def test_sign_in_and_failures_leave_audit_rows(client):
    device = TOTPDeviceFactory(user__username="officer")

    login(client, "officer", password="wrong", otp=code_for(device))
    client.post(
        LOGIN,
        {"username": "officer", "password": PASSWORD, "otp": code_for(device)},
        content_type="application/json",
        headers={"user-agent": "MDT/1.0"},
    )
    client.post("/api/v1/auth/logout")

    rows = list(AuditEntry.objects.order_by("id"))
    assert [(r.action, r.outcome) for r in rows] == [
        ("signin.failed", "failure"),
        ("signin", "success"),
        ("signout", "success"),
    ]
    assert rows[0].details == {"reason": "password"}
    assert rows[1].user == device.user
    assert rows[1].user_agent == "MDT/1.0"
    assert rows[1].ip == "127.0.0.1"
    assert rows[1].details == {"device": device.persistent_id}


def test_logout_ends_the_session(client):
    device = TOTPDeviceFactory(user__username="officer")
    login(client, "officer", otp=code_for(device))

    assert client.post("/api/v1/auth/logout").status_code == 204

    assert client.get("/api/v1/auth/me").status_code == 403


def test_login_refuses_a_form_post_so_another_site_cannot_sign_the_browser_in():
    device = TOTPDeviceFactory(user__username="attacker")
    client = Client(enforce_csrf_checks=True)
    form = {"username": "attacker", "password": PASSWORD, "otp": code_for(device)}

    assert client.post(LOGIN, form).status_code == 415
    assert "sessionid" not in client.cookies


def test_logout_needs_the_csrf_token_of_the_session():
    device = TOTPDeviceFactory(user__username="officer")
    client = Client(enforce_csrf_checks=True)
    token = login(client, "officer", otp=code_for(device)).json()["csrf_token"]

    assert client.post("/api/v1/auth/logout").status_code == 403
    assert client.get("/api/v1/auth/me").status_code == 200
    assert client.post("/api/v1/auth/logout", headers={"x-csrftoken": token}).status_code == 204
    assert client.get("/api/v1/auth/me").status_code == 403


def test_the_fixture_signs_in_through_the_real_endpoint(verified_api_client):
    user = UserFactory()

    first, second = verified_api_client(user), verified_api_client(user)

    assert first.get("/api/v1/auth/me").status_code == 200
    assert second.get("/api/v1/auth/me").status_code == 200
    assert AuditEntry.objects.filter(user=user, action="signin").count() == 2


def admin_login(client: Client, username: str, password: str = PASSWORD, otp: str = ""):
    body = {"username": username, "password": password, "otp": otp, "next": "/admin/"}
    return client.post("/admin/login/", body)


def test_the_admin_signs_in_with_password_and_code(client):
    device = TOTPDeviceFactory(user__username="it-admin", user__is_staff=True)

    response = admin_login(client, "it-admin", otp=code_for(device))

    assert response.status_code == 302
    assert response.url == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert client.session[SIGNED_IN_AT]
    assert AuditEntry.objects.get(action="signin").user == device.user


def test_the_admin_refuses_a_password_without_a_code(client):
    TOTPDeviceFactory(user__username="it-admin", user__is_staff=True)

    response = admin_login(client, "it-admin")

    assert response.status_code == 200
    assert b"Wrong username, password or one-time code." in response.content
    assert client.get("/admin/").status_code == 302
    assert AuditEntry.objects.get(action="signin.failed").details == {"reason": "code"}


def test_the_admin_refuses_a_user_who_is_not_staff_with_the_words_of_a_wrong_password(client):
    device = TOTPDeviceFactory(user__username="officer")

    response = admin_login(client, "officer", otp=code_for(device))

    assert response.status_code == 200
    assert b"Wrong username, password or one-time code." in response.content
    assert client.get("/admin/").status_code == 302
    assert not AuditEntry.objects.filter(action="signin").exists()
    assert AuditEntry.objects.get(action="signin.failed").details == {"reason": "not staff"}


def test_the_admin_enrols_a_device_at_the_first_sign_in_with_an_enrolment_code(client):
    user = UserFactory(username="it-admin", is_staff=True)

    first = client.post(
        "/admin/login/",
        {
            "username": "it-admin",
            "password": PASSWORD,
            "otp": "",
            "enrolment_code": enrolment_code_for(user),
        },
    )

    assert first.status_code == 200
    assert b"<svg" in first.content
    uri = re.search(rb'href="(otpauth://totp/[^"]+)"', first.content).group(1).decode()
    signed_in = admin_login(client, "it-admin", otp=code_from_uri(uri.replace("&amp;", "&")))
    assert signed_in.status_code == 302
    index = client.get("/admin/")
    assert index.status_code == 200
    assert b"Your backup codes" in index.content


def test_the_admin_asks_a_new_user_for_the_enrolment_code(client):
    UserFactory(username="it-admin", is_staff=True)

    response = admin_login(client, "it-admin")

    assert b"type the enrolment code district IT gave you" in response.content
    assert b"otpauth://" not in response.content


def test_the_pwa_can_write_with_the_csrf_cookie_it_gets_at_sign_in():
    device = TOTPDeviceFactory(user__username="officer")
    client = Client(enforce_csrf_checks=True)
    login(client, "officer", otp=code_for(device))

    token = client.cookies["csrftoken"].value
    response = client.post("/api/v1/auth/logout", headers={"x-csrftoken": token})

    assert response.status_code == 204
