import pytest
import redis
from django.conf import settings

pytest_plugins = ["tests.servers"]


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
