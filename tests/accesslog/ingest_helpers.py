"""Building and posting signed events, shared by the ingest tests."""

from __future__ import annotations

import json
import time

from django.utils import timezone

from accesslog.signatures import HEADER, sign


def event_json(**overrides: object) -> dict:
    return {
        "source_event_id": "evt-1",
        "type": "door_forced",
        "door": "panel1-door1",
        "occurred_at": timezone.now().isoformat(),
        **overrides,
    }


def post_event(
    client, slug: str, body: bytes | dict, *secrets: str, t: int | None = None, **extra
):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {HEADER: sign(raw, *secrets, timestamp=t)} if secrets else {}
    return client.post(
        f"/api/v1/access/{slug}/events",
        raw,
        content_type="application/json",
        headers=headers,
        **extra,
    )


def now() -> int:
    return int(time.time())
