from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]
ME = "/api/v1/auth/me"


@pytest.fixture
def signed_in(verified_api_client, time_machine):
    time_machine.move_to("2026-03-02 08:00:00+00:00", tick=False)
    user = UserFactory(username="officer")
    client = verified_api_client(user)
    assert client.get(ME).status_code == 200
    return client


def test_a_session_ends_after_30_idle_minutes(signed_in, time_machine):
    time_machine.shift(timedelta(minutes=31))

    assert signed_in.get(ME).status_code == 403


def test_a_busy_session_lives_past_30_minutes(signed_in, time_machine):
    for _ in range(6):
        time_machine.shift(timedelta(minutes=20))
        assert signed_in.get(ME).status_code == 200


def test_a_busy_session_ends_12_hours_after_sign_in(signed_in, time_machine):
    for _ in range(11 * 3):
        time_machine.shift(timedelta(minutes=20))
        assert signed_in.get(ME).status_code == 200
    time_machine.shift(timedelta(minutes=61))

    assert signed_in.get(ME).status_code == 403
    # Ended, not merely refused: signing in again is the only way back.
    time_machine.shift(timedelta(seconds=1))
    assert signed_in.get(ME).status_code == 403


def test_a_disabled_users_sessions_end_at_once(signed_in):
    get_user_model().objects.filter(username="officer").update(is_active=False)

    assert signed_in.get(ME).status_code == 403


def test_a_disabled_staff_users_admin_session_ends_at_once(verified_api_client):
    user = UserFactory(username="it-admin", is_staff=True, is_superuser=True)
    client = verified_api_client(user)
    assert client.get("/admin/").status_code == 200

    type(user).objects.filter(pk=user.pk).update(is_active=False)

    response = client.get("/admin/")
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


def test_a_session_without_a_sign_in_time_is_ended():
    # Sessions from before the 12 h cap existed, or forged by some other path.
    user = UserFactory()
    client = Client()
    client.force_login(user)
    session = client.session
    del session["signed_in_at"]
    session.save()

    client.get(ME)

    assert "_auth_user_id" not in client.session


def test_a_session_idle_since_its_last_request_ends_even_if_its_row_lives_on(signed_in):
    # Only HTTP requests are activity: a row kept alive by anything else does not count.
    session = signed_in.session
    session["seen_at"] -= 31 * 60
    session.save()

    assert signed_in.get(ME).status_code == 403
    assert "_auth_user_id" not in signed_in.session


def test_removing_the_authenticator_ends_the_session(signed_in):
    TOTPDevice.objects.filter(user__username="officer").delete()

    assert signed_in.get(ME).status_code == 403
    assert "_auth_user_id" not in signed_in.session
