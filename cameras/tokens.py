"""Signed HLS tokens: one kind for the playlist, another for its segments.

Every token binds user, camera, profile, the user's token generation and the session that
asked (a hash of its key, never the key). A playlist token is valid for LIVE_TOKEN_SECONDS
from POST /live and is never renewed; a segment token for SEGMENT_SECONDS from the playlist
fetch that wrote it, never past its playlist token. Neither outlives the session: POST /live
records the session's hash in Redis until its idle or hard end, sign-out and deletion of the
session remove it, and every HLS request asks for it. Signing out also bumps the user's
generation, ending their tokens on every device.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.base import SessionBase
from django.core import signing

from cameras.models import Camera
from responder.core.capabilities import Capability
from responder.core.middleware import SIGNED_IN_AT
from responder.core.redis import redis_client

PLAYLIST, SEGMENT = "playlist", "segment"
# Recorded playback (responder.recording.playback): the same rules, kinds of their own.
RECORDED_PLAYLIST, RECORDED_SEGMENT = "recorded-playlist", "recorded-segment"
# An evidence export's zip (responder.evidence): camera_id carries the export's id.
EVIDENCE = "evidence"
# A salt per kind: a segment token's signature does not verify as a playlist token's, and a
# recorded-video token's never as a live one's.
SALTS = {
    PLAYLIST: "cameras.live.playlist",
    SEGMENT: "cameras.live.segment",
    RECORDED_PLAYLIST: "recording.playback.playlist",
    RECORDED_SEGMENT: "recording.playback.segment",
    EVIDENCE: "evidence.download",
}
# Long enough for a player to fetch every segment a playlist lists, short enough for a leak.
SEGMENT_SECONDS = 30
# Segments re-ask the database (user, scope, camera on) once per this, per segment token.
RECHECK_SECONDS = 2


class TokenError(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


@dataclass(frozen=True)
class Claims:
    user_id: int
    camera_id: int
    profile: str
    generation: int
    session: str
    expires: int


def session_hash(session_key: str) -> str:
    return hashlib.sha256(f"live-session:{session_key}".encode()).hexdigest()[:32]


def _session_key(digest: str) -> str:
    return f"live:session:{digest}"


def _generation_key(user_id: int) -> str:
    return f"live:generation:{user_id}"


def token_generation(user_id: int) -> int:
    return int(redis_client().get(_generation_key(user_id)) or 0)


def tokens_revoke(*, user_id: int) -> None:
    redis_client().incr(_generation_key(user_id))


def session_bind(*, session: SessionBase, user_id: int) -> tuple[str, int]:
    """Let this session's tokens work until its end: the earlier of its idle and hard limits.

    Called from POST /live, a request that has just renewed the session's idle time.
    """
    signed_in_at = session.get(SIGNED_IN_AT)
    if session.session_key is None or signed_in_at is None:
        raise TokenError(403, "Sign in again to watch video.")
    now = int(time.time())
    ends = min(int(signed_in_at + settings.SESSION_MAX_AGE), now + session.get_expiry_age())
    if ends <= now:
        raise TokenError(403, "Sign in again to watch video.")
    digest = session_hash(session.session_key)
    key = _session_key(digest)
    r = redis_client().pipeline()
    r.hset(key, mapping={"user": user_id, "ends": ends})
    r.expireat(key, ends)
    r.execute()
    return digest, ends


def session_unbind(*, session_key: str) -> None:
    """The session ended (signed out, expired, deleted): its video links stop at once."""
    redis_client().delete(_session_key(session_hash(session_key)))


def token_issue(
    *, user_id: int, camera_id: int, profile: str, session: SessionBase, kind: str = PLAYLIST
) -> tuple[str, int]:
    """A playlist token, from now for LIVE_TOKEN_SECONDS at most, never past the session."""
    digest, ends = session_bind(session=session, user_id=user_id)
    expires = min(int(time.time()) + settings.LIVE_TOKEN_SECONDS, ends)
    claims = Claims(user_id, camera_id, profile, token_generation(user_id), digest, expires)
    return token_sign(claims, kind=kind), expires


def token_sign(claims: Claims, *, kind: str) -> str:
    payload = [
        claims.user_id, claims.camera_id, claims.profile, claims.generation, claims.session,
        claims.expires,
    ]  # fmt: skip
    return signing.dumps(payload, salt=SALTS[kind], compress=False)


def segment_token_issue(claims: Claims) -> str:
    """The segment token a playlist fetch writes: short, and never past the playlist's own."""
    expires = min(int(time.time()) + SEGMENT_SECONDS, claims.expires)
    token = token_sign(
        Claims(
            claims.user_id, claims.camera_id, claims.profile, claims.generation,
            claims.session, expires,
        ),
        kind=SEGMENT,
    )  # fmt: skip
    # The playlist fetch has just checked user, scope and camera: its segments need not.
    redis_client().set(_checked_key(token), "1", ex=RECHECK_SECONDS)
    return token


def _checked_key(token: str) -> str:
    return "live:checked:" + hashlib.sha256(token.encode()).hexdigest()[:32]


def token_check(token: str, *, kind: str, camera_id: int, profile: str) -> Claims:
    """The claims of a token of this kind, or TokenError: 403 forged or revoked, 410 expired.

    Redis only: the signature, the expiry, the user's generation and the session's record.
    """
    try:
        claims = Claims(*signing.loads(token, salt=SALTS[kind]))
    except (signing.BadSignature, TypeError, ValueError):
        raise TokenError(403, "This video link is not valid.") from None
    if (claims.camera_id, claims.profile) != (camera_id, profile):
        raise TokenError(403, "This video link is for another camera.")
    if claims.expires < time.time():
        raise TokenError(410, "This video link has expired.")
    r = redis_client().pipeline()
    r.get(_generation_key(claims.user_id))
    r.hmget(_session_key(claims.session), "user", "ends")
    generation, (user, ends) = r.execute()
    if claims.generation != int(generation or 0):
        raise TokenError(403, "This video link was revoked.")
    if user != str(claims.user_id) or int(ends) < time.time():
        raise TokenError(403, "The session that opened this video has ended.")
    return claims


def viewer_check(claims: Claims, *, token: str | None = None) -> None:
    """The database's part: user still active, camera still in scope and switched on.

    With a segment token, asked at most once per RECHECK_SECONDS for that token.
    """
    if token is not None and redis_client().exists(_checked_key(token)):
        return
    user = get_user_model().objects.filter(pk=claims.user_id, is_active=True).first()
    if user is None:
        raise TokenError(403, "This video link was revoked.")
    enabled = (
        Camera.objects.visible_to(user, Capability.LIVE)
        .filter(pk=claims.camera_id)
        .values_list("enabled", flat=True)
        .first()
    )
    if enabled is None:
        raise TokenError(403, "You may no longer watch this camera.")
    if not enabled:
        raise TokenError(503, "This camera is switched off.", 60)
    if token is not None:
        redis_client().set(_checked_key(token), "1", ex=RECHECK_SECONDS)
