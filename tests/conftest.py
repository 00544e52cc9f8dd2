import os
import time
from urllib.parse import urlsplit

import pytest
import redis
from django.conf import settings
from django.core.management.base import CommandError
from django.db import OperationalError
from django.test import TransactionTestCase, override_settings

pytest_plugins = ["tests.servers"]


def pytest_configure(config):
    _redis_of_this_worker()


def _redis_of_this_worker() -> None:
    """Under pytest-xdist each worker process has a Redis database of its own, as
    pytest-django gives it a test database of its own: REDIS_URL's number plus the worker's
    (gw0 keeps it). Sharing one, a worker's Celery would run the other's tasks against the
    wrong database, and their channel groups and throttles would mix. Every setting naming
    the run's Redis names the worker's instead, and so does the environment the tests'
    servers inherit."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    if worker == "gw0":
        return
    run = settings.REDIS_URL
    parts = urlsplit(run)
    number = int(parts.path.strip("/") or 0) + int(worker.removeprefix("gw"))
    ours = parts._replace(path=f"/{number}").geturl()
    for name in [name for name in dir(settings) if name.isupper()]:
        value = getattr(settings, name)
        if run in repr(value):
            setattr(settings, name, _replaced(value, run, ours))
    os.environ["REDIS_URL"] = ours


def _replaced(value, old: str, new: str):
    if isinstance(value, dict):
        return {key: _replaced(item, old, new) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_replaced(item, old, new) for item in value)
    assert value == old or not isinstance(value, str) or old not in value, value
    return new if value == old else value


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
