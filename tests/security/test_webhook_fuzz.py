"""The access systems' webhook under bodies and signatures drawn by hypothesis.

Whatever arrives (random JSON, bytes, UTF-16, a BOM, bad UTF-8, deep nesting, a body over
the limit) with whatever signature (valid over the garbage, wrong, stale, another
system's, none), the answer is a 4xx and nothing is stored nor announced: no Event row and
no doorbell on Redis. And drawn valid events still go in (2xx), each announced once.

Transactional, so an ingest commits and rings the doorbell as in production.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings as django_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accesslog.models import EventType
from accesslog.signatures import HEADER, sign
from responder.alarms.api import MAX_EVENT_BYTES, MAX_EVENT_DEPTH
from responder.core.announce import channel
from tests.accesslog.ingest_helpers import event_json
from tests.factories import AccessSystemFactory, DoorFactory

pytestmark = pytest.mark.django_db(transaction=True)

FUZZ = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


def event_bytes(**fields: object) -> bytes:
    return json.dumps(event_json(**fields)).encode()


# A valid event's JSON spoiled in one way each, and plain garbage.
bad_bodies = st.one_of(
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=2048),
    st.sampled_from(["utf-16", "utf-16-le", "utf-32", "utf-8-sig"]).map(
        lambda encoding: json.dumps(event_json(), ensure_ascii=False).encode(encoding)
    ),
    st.binary(min_size=1, max_size=8)
    .filter(lambda junk: not _decodes(junk))
    .map(lambda junk: event_bytes().replace(b'"evt-1"', b'"evt-' + junk + b'"')),
    st.integers(MAX_EVENT_BYTES - 64, 4 * MAX_EVENT_BYTES).map(
        lambda size: event_bytes(person="x" * size)
    ),
    st.integers(MAX_EVENT_DEPTH + 1, 5_000).map(
        lambda depth: event_bytes().replace(
            b"}", b', "details": {"x": ' + b"[" * depth + b"]" * depth + b"}}"
        )
    ),
    st.fixed_dictionaries(
        {"type": st.text(), "door": json_values, "occurred_at": json_values}
    ).map(lambda fields: event_bytes(**fields)),
)


def _decodes(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


@pytest.fixture
def doorbell() -> Iterator[redis.client.PubSub]:
    """Subscribed to the events doorbell every ingest rings."""
    pubsub = redis.Redis.from_url(django_settings.REDIS_URL).pubsub()
    pubsub.subscribe(channel("events"))
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    yield pubsub
    pubsub.close()


def rings(pubsub: redis.client.PubSub) -> int:
    """Doorbells rung so far (each publish is made before the answer is sent)."""
    count = 0
    while pubsub.get_message(timeout=0.05) is not None:
        count += 1
    return count


def signature_for(kind: str, body: bytes, secret: str) -> dict[str, str]:
    signatures = {
        "valid": sign(body, secret),
        "wrong": sign(body + b" ", secret),
        "stale": sign(body, secret, timestamp=int(time.time()) - 3600),
        "another system's": sign(body, "not-this-systems-secret"),
        "not hex": sign(body, secret).split(",")[0] + ",v1=" + "zz" * 32,
    }
    return {HEADER: signatures[kind]} if kind in signatures else {}


@FUZZ
@given(
    body=bad_bodies,
    signed=st.sampled_from(["valid", "wrong", "stale", "another system's", "not hex", "none"]),
)
def test_any_bad_body_or_signature_gets_a_4xx_and_stores_and_rings_nothing(
    client, doorbell, body, signed
):
    system = AccessSystemFactory._meta.model.objects.first() or AccessSystemFactory()
    stored = system.events.count()

    answer = client.post(
        f"/api/v1/access/{system.slug}/events",
        body,
        content_type="application/json",
        headers=signature_for(signed, body, system.webhook_secret),
    )

    assert 400 <= answer.status_code < 500, (answer.status_code, answer.content[:200])
    assert answer.json()  # says why: `detail`, or the fields at fault
    assert system.events.count() == stored
    assert rings(doorbell) == 0


# Text as PostgreSQL stores it: no U+0000 (refused with a 400: see the test below).
stored_text = st.text(alphabet=st.characters(exclude_characters="\x00"), max_size=200)


@settings(FUZZ, max_examples=30)  # each commits, rings and is read back: the costly half
@given(
    # Kept as sent only without surrounding blanks (the serializer trims them).
    source_event_id=stored_text.filter(lambda s: s and s.strip() == s),
    type=st.sampled_from(EventType.values),
    details=st.dictionaries(stored_text, stored_text | st.integers(), max_size=5),
    person=stored_text,
)
def test_drawn_valid_events_are_stored_and_rung_once(
    client, doorbell, source_event_id, type, details, person
):
    door = DoorFactory._meta.model.objects.first() or DoorFactory(external_id="panel1-door1")
    system = door.system
    body = event_bytes(source_event_id=source_event_id, type=type, details=details, person=person)
    fresh = not system.events.filter(source_event_id=source_event_id).exists()

    answer = client.post(
        f"/api/v1/access/{system.slug}/events",
        body,
        content_type="application/json",
        headers={HEADER: sign(body, system.webhook_secret)},
    )

    assert answer.status_code == (202 if fresh else 200), answer.content[:300]
    assert system.events.filter(source_event_id=source_event_id).count() == 1
    assert rings(doorbell) == (1 if fresh else 0)


# --- What the fuzzing found, kept by a plain test ----------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-8-sig"])
def test_a_signed_event_in_utf16_utf32_or_with_a_bom_is_refused_with_400(client, encoding):
    system = AccessSystemFactory()
    body = json.dumps(event_json()).encode(encoding)  # json.loads alone would take UTF-16/32

    answer = client.post(
        f"/api/v1/access/{system.slug}/events",
        body,
        content_type="application/json",
        headers={HEADER: sign(body, system.webhook_secret)},
    )

    assert answer.status_code == 400 and "UTF-8" in answer.json()["detail"]
    assert not system.events.exists()


@pytest.mark.parametrize("details", [{"note": "a\x00b"}, {"a\x00": 1}, {"list": [["\x00"]]}])
def test_a_signed_event_with_a_nul_in_its_details_is_refused_with_400(client, details):
    system = AccessSystemFactory()
    body = event_bytes(details=details)  # jsonb holds no \u0000: the insert would fail, a 500

    answer = client.post(
        f"/api/v1/access/{system.slug}/events",
        body,
        content_type="application/json",
        headers={HEADER: sign(body, system.webhook_secret)},
    )

    assert answer.status_code == 400 and answer.json()["details"] == [
        "Null characters are not allowed."
    ]
    assert not system.events.exists()
