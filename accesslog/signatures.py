"""Webhook signatures, as Stripe signs its webhooks.

Header: `X-Responder-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`.
While a secret rotates, the sender signs with the old and the new one and sends one `v1=`
for each; any of them matching one of the system's secrets is enough (the new one, and the
old one until the overlap IT chose at rotation ends). The timestamp is signed
too, so a captured request cannot be replayed after the tolerance.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable

HEADER = "X-Responder-Signature"
TOLERANCE_SECONDS = 300
HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(body: bytes, *secrets: str, timestamp: int | None = None) -> str:
    """The header value for `body`, one `v1=` per secret (several while rotating)."""
    t = int(time.time()) if timestamp is None else timestamp
    return ",".join([f"t={t}", *(f"v1={signature(s, t, body)}" for s in secrets)])


def parse(header: str) -> tuple[int | None, list[str]]:
    timestamp, candidates = None, []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and HEX_DIGEST.fullmatch(value):
            # Anything else can never match, and a non-ASCII str makes compare_digest raise.
            candidates.append(value)
    return timestamp, candidates


def verify(
    header: str | None,
    body: bytes,
    secrets: Iterable[str],
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """True if a `v1` matches one of our secrets and `t` is within the tolerance."""
    if not header:
        return False
    timestamp, candidates = parse(header)
    now = time.time() if now is None else now
    if timestamp is None or abs(now - timestamp) > tolerance:
        return False
    expected = [signature(s, timestamp, body) for s in secrets if s]
    # Every pair is compared, in constant time each, so the time taken says nothing
    # about which candidate came close.
    matches = [hmac.compare_digest(e, c) for e in expected for c in candidates]
    return any(matches)
