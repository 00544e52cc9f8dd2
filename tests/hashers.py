"""A password hasher for the test process only (tests/conftest.py puts it first)."""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Django's PBKDF2 at a thousandth of its cost. Every factory user's password is hashed
    (half a second each at a million rounds) and no test measures the hashing's cost.

    The hashes it writes are ordinary `pbkdf2_sha256$1000$…` ones: the real servers of the
    tests (daphne, gunicorn, on the default hashers) verify them as they are, then store
    them again at full strength, as they would any hash from an older Django."""

    iterations = 1_000
