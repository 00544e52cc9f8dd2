"""Signed playlist and segment tokens, bound to user, camera, profile and a short expiry.

Signing out bumps the user's token generation in Redis and ends every token at once;
a disabled user fails the is_active check on the next request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core import signing

from cameras.redis import redis_client

SALT = "cameras.live"


class TokenError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Claims:
    user_id: int
    camera_id: int
    profile: str
    generation: int
    expires: int


def _generation_key(user_id: int) -> str:
    return f"live:generation:{user_id}"


def token_generation(user_id: int) -> int:
    return int(redis_client().get(_generation_key(user_id)) or 0)


def tokens_revoke(*, user_id: int) -> None:
    redis_client().incr(_generation_key(user_id))


def token_issue(*, user_id: int, camera_id: int, profile: str) -> tuple[str, int]:
    expires = int(time.time()) + settings.LIVE_TOKEN_SECONDS
    claims = Claims(user_id, camera_id, profile, token_generation(user_id), expires)
    return token_sign(claims), expires


def token_sign(claims: Claims) -> str:
    payload = [claims.user_id, claims.camera_id, claims.profile, claims.generation, claims.expires]
    return signing.dumps(payload, salt=SALT, compress=False)


def token_renew(claims: Claims) -> str:
    """The same grant with a fresh expiry, for the segment URIs of a fetched playlist."""
    expires = int(time.time()) + settings.LIVE_TOKEN_SECONDS
    return token_sign(replace(claims, expires=expires))


def token_check(token: str, *, camera_id: int, profile: str) -> tuple[AbstractBaseUser, Claims]:
    """The user the token speaks for, or TokenError: 403 forged or revoked, 410 expired."""
    try:
        claims = Claims(*signing.loads(token, salt=SALT))
    except (signing.BadSignature, TypeError, ValueError):
        raise TokenError(403, "This video link is not valid.") from None
    if (claims.camera_id, claims.profile) != (camera_id, profile):
        raise TokenError(403, "This video link is for another camera.")
    if claims.expires < time.time():
        raise TokenError(410, "This video link has expired.")
    user = get_user_model().objects.filter(pk=claims.user_id, is_active=True).first()
    if user is None or claims.generation != token_generation(claims.user_id):
        raise TokenError(403, "This video link was revoked.")
    return user, claims
