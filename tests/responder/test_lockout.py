from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client

from responder.core.models import AuditEntry, SignInState
from responder.core.signin import account_unlock, signin_states_prune
from tests.factories import PASSWORD, TOTPDeviceFactory, UserFactory
from tests.signin_helpers import LOGIN, code_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


def login(username: str, *, password: str = PASSWORD, otp: str = "000000", client=None):
    body = {"username": username, "password": password, "otp": otp}
    return (client or Client()).post(LOGIN, body, content_type="application/json")


@pytest.fixture
def device():
    return TOTPDeviceFactory(user__username="officer")


def fail(times: int, *, password: str = "wrong") -> list[int]:
    return [login("officer", password=password).status_code for _ in range(times)]


def test_five_failures_in_a_row_lock_the_account(device):
    assert fail(4) == [401] * 4

    response = login("officer", password="wrong")

    assert response.status_code == 423
    assert response.json() == {
        "detail": (
            "This account is locked for a few minutes after too many failed sign-ins. "
            "Try again later, or call district IT to unlock it now."
        ),
        "code": "account_locked",
    }
    assert SignInState.objects.get(user=device.user).locked_at is not None


def test_wrong_codes_are_counted_apart_from_wrong_passwords(device):
    fail(4)
    assert [login("officer", otp="123456").status_code for _ in range(5)] == [401] * 4 + [423]
    state = SignInState.objects.get(user=device.user)
    assert (state.password_failures, state.code_failures) == (4, 5)


def test_a_locked_account_answers_423_even_with_the_right_password_and_code(device):
    fail(5)

    response = login("officer", otp=code_for(device))

    assert response.status_code == 423
    assert response.json()["code"] == "account_locked"


def test_a_success_resets_the_count(device):
    fail(4)
    assert login("officer", otp=code_for(device)).status_code == 200

    assert fail(4) == [401] * 4
    assert SignInState.objects.get(user=device.user).locked_at is None


def test_failures_older_than_the_window_start_a_new_count(device, time_machine):
    time_machine.move_to("2026-03-02 08:00:00+00:00", tick=False)
    fail(4)
    time_machine.shift(timedelta(minutes=15, seconds=1))

    assert fail(4) == [401] * 4
    assert login("officer", password="wrong").status_code == 423


def test_the_lock_lifts_itself_after_login_lock_minutes(device, time_machine):
    time_machine.move_to("2026-03-02 08:00:00+00:00", tick=False)
    fail(5)
    time_machine.shift(timedelta(minutes=14, seconds=59))
    assert login("officer", otp=code_for(device)).status_code == 423

    time_machine.shift(timedelta(seconds=2))

    assert login("officer", otp=code_for(device)).status_code == 200


def test_a_lifted_lock_starts_a_fresh_count(device, time_machine):
    time_machine.move_to("2026-03-02 08:00:00+00:00", tick=False)
    fail(5)
    time_machine.shift(timedelta(minutes=15, seconds=1))

    assert fail(4) == [401] * 4
    assert login("officer", password="wrong").status_code == 423


def test_district_it_can_lift_the_lock_sooner(device, time_machine):
    time_machine.move_to("2026-03-02 08:00:00+00:00", tick=False)
    fail(5)
    time_machine.shift(timedelta(minutes=1))
    assert login("officer", otp=code_for(device)).status_code == 423

    account_unlock(user=device.user, by=UserFactory(username="it-admin"))

    assert login("officer", otp=code_for(device)).status_code == 200


def test_an_unlocked_account_starts_a_fresh_count(device):
    fail(5)
    account_unlock(user=device.user, by=UserFactory(username="it-admin"))

    assert fail(4) == [401] * 4


def test_lockout_and_unlock_leave_audit_rows(device):
    it_admin = UserFactory(username="it-admin")
    fail(5)
    login("officer", otp=code_for(device))

    account_unlock(user=device.user, by=it_admin)

    rows = [
        (row.action, row.outcome, row.username, row.object_id)
        for row in AuditEntry.objects.order_by("id")
    ]
    officer = str(device.user.pk)
    assert rows == [
        *[("signin.failed", "failure", "officer", "")] * 5,
        ("account.locked", "denied", "officer", officer),
        ("signin.failed", "denied", "officer", ""),
        ("account.unlocked", "success", "it-admin", officer),
    ]
    assert AuditEntry.objects.get(action="account.locked").details == {
        "failures": 5,
        "kind": "password",
    }


def test_a_lock_does_not_end_the_sessions_already_open(device):
    signed_in = Client()
    assert login("officer", otp=code_for(device), client=signed_in).status_code == 200

    fail(5)

    assert signed_in.get("/api/v1/auth/me").status_code == 200


def test_an_unknown_username_is_counted_and_locked_like_a_real_one():
    assert [login("nobody").status_code for _ in range(6)] == [401] * 4 + [423] * 2
    state = SignInState.objects.get(username="nobody")
    assert state.user is None and state.is_locked


def test_counts_of_unknown_names_are_pruned_once_run_out(device, time_machine):
    time_machine.move_to("2026-03-02 08:00:00+00:00", tick=False)
    for name in ("nobody", "officer"):
        for _ in range(5):
            login(name, password="wrong")
    time_machine.shift(timedelta(minutes=14))
    login("nobody-else", password="wrong")
    assert signin_states_prune() == 0

    time_machine.shift(timedelta(minutes=1, seconds=1))

    assert signin_states_prune() == 1
    assert set(SignInState.objects.values_list("username", flat=True)) == {
        "officer",
        "nobody-else",
    }


def test_the_admin_login_counts_failures_and_answers_a_locked_account(device, client):
    device.user.is_staff = True
    device.user.save()
    for _ in range(5):
        client.post("/admin/login/", {"username": "officer", "password": "wrong", "otp": ""})

    response = client.post(
        "/admin/login/", {"username": "officer", "password": PASSWORD, "otp": code_for(device)}
    )

    assert b"This account is locked" in response.content
    assert client.get("/admin/").status_code == 302
    assert SignInState.objects.get(user=device.user).locked_at is not None


def test_district_it_unlocks_an_account_in_the_admin(device, verified_api_client):
    fail(5)
    it_admin = verified_api_client(UserFactory(is_staff=True, is_superuser=True))

    response = it_admin.post(
        "/admin/auth/user/",
        {"action": "unlock", "_selected_action": [device.user.pk]},
    )

    assert response.status_code == 302
    assert login("officer", otp=code_for(device)).status_code == 200
    assert AuditEntry.objects.get(action="account.unlocked").object_id == str(device.user.pk)


@pytest.mark.django_db(transaction=True)
def test_parallel_guesses_cannot_outrun_the_lockout():
    TOTPDeviceFactory(user__username="officer")

    def guess(_: int) -> int:
        try:
            return login("officer", password="wrong").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = sorted(pool.map(guess, range(12)))

    assert answers == [401] * 4 + [423] * 8
    password_checks = AuditEntry.objects.filter(details__reason="password").count()
    assert password_checks == 5
