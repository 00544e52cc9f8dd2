import time

import pytest
import redis
from django.conf import settings
from django.core.management.base import CommandError
from django.db import OperationalError
from django.test import TransactionTestCase, override_settings

pytest_plugins = ["tests.servers"]


@pytest.fixture(scope="session", autouse=True)
def _quick_password_hashing():
    """Passwords hashed in this process cost a millisecond, not half a second (tests/hashers.py);
    Django's own hashers stay behind it, so any stored hash still verifies."""
    hashers = ["tests.hashers.QuickPBKDF2PasswordHasher", *settings.PASSWORD_HASHERS]
    with override_settings(PASSWORD_HASHERS=hashers):
        yield


@pytest.fixture(scope="session", autouse=True)
def _flush_retried_on_deadlock():
    """A transactional test's teardown TRUNCATEs every table while the real servers of the
    test (daphne, a Celery worker) may still be writing its last rows (an audit row as a
    socket closes, a task's result). Their locks and TRUNCATE's, taken in other orders, can
    deadlock, and PostgreSQL fails one side: CI once saw "couldn't be flushed" on a browser
    test. The flush runs in a transaction, so a failed one changed nothing; it is tried again
    once the servers' write has committed."""
    teardown = TransactionTestCase._fixture_teardown

    def _fixture_teardown(self):
        for attempt in range(5):
            try:
                return teardown(self)
            except CommandError as error:
                if attempt == 4 or not isinstance(error.__cause__, OperationalError):
                    raise
                time.sleep(0.2 * (attempt + 1))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TransactionTestCase, "_fixture_teardown", _fixture_teardown)
        yield


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def verified_api_client():
    """`verified_api_client(user)`: a Client signed in through POST /api/v1/auth/login
    with a real TOTP code from the user's device (one is made if they have none)."""
    from tests.signin_helpers import api_sign_in

    return api_sign_in


@pytest.fixture
def fast_passwords(settings):
    # Sign-in tests hash the password dozens of times; PBKDF2's cost proves nothing there.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_throttle_carried_over():
    """Every test signs in from 127.0.0.1: one test's attempts must not throttle the next."""
    yield
    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    for key in client.scan_iter(f"*:{settings.RATELIMIT_CACHE_PREFIX}*"):
        client.delete(key)
    client.close()
