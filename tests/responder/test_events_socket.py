import asyncio
import json
import time
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY

from accesslog.models import Event
from responder.alarms import fanout
from responder.alarms.consumers import origin_allowed
from responder.alarms.events import EVERYWHERE
from responder.asgi import application
from responder.core.middleware import SIGNED_IN_AT
from tests.factories import DoorFactory, GrantFactory, TOTPDeviceFactory, UserFactory, event_store

pytestmark = pytest.mark.django_db(transaction=True)


def signed_in(user, *, verified: bool = True) -> str:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "responder.backends.LockoutModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session[SIGNED_IN_AT] = time.time()
    if verified:
        session[DEVICE_ID_SESSION_KEY] = TOTPDeviceFactory(user=user).persistent_id
    session.save()
    return f"sessionid={session.session_key}"


def socket(
    cookie: str = "", origin: str = "http://testserver", path: str = "/ws/events"
) -> WebsocketCommunicator:
    # As a browser on http://testserver: its Host, and the page's origin.
    headers = [
        (b"host", b"testserver"),
        (b"origin", origin.encode()),
        (b"cookie", cookie.encode()),
    ]
    return WebsocketCommunicator(application, path, headers=headers)


store_event = event_store


async def stored(door) -> Event:
    from responder.alarms.events import announce

    event = await database_sync_to_async(store_event)(door)
    await database_sync_to_async(announce)(event)
    return event


async def next_frame(communicator: WebsocketCommunicator) -> dict:
    # The server pings an idle socket every few seconds (responder.events.HEARTBEAT_SECONDS).
    while (frame := await communicator.receive_json_from(timeout=5))["type"] == "ping":
        pass
    return frame


async def resumed(communicator: WebsocketCommunicator, after: int = 0) -> list[dict]:
    """Connect, resume, and return the frames up to the server's `live`."""
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"type": "resume", "after": after})
    frames = []
    while not frames or frames[-1]["type"] != "live":
        frames.append(await next_frame(communicator))
    return frames


async def closed_with(communicator: WebsocketCommunicator) -> int:
    while True:
        message = await communicator.receive_output(timeout=5)
        if message["type"] == "websocket.close":
            return message["code"]


@pytest.fixture
def door():
    return DoorFactory()


@pytest.fixture
def watcher(door):
    user = UserFactory()
    GrantFactory(user=user, capabilities=["alarms"], building=door.building)
    return user


async def test_it_closes_with_4401_without_a_session():
    communicator = socket()
    await communicator.connect()
    assert await closed_with(communicator) == 4401
    await communicator.disconnect()


async def test_it_closes_with_4401_before_the_second_factor(watcher):
    communicator = socket(await database_sync_to_async(signed_in)(watcher, verified=False))
    await communicator.connect()
    assert await closed_with(communicator) == 4401
    await communicator.disconnect()


async def test_it_closes_with_4403_for_a_foreign_origin(watcher):
    cookie = await database_sync_to_async(signed_in)(watcher)
    communicator = socket(cookie, origin="https://evil.example")
    await communicator.connect()
    assert await closed_with(communicator) == 4403
    await communicator.disconnect()


async def test_it_closes_with_4404_without_alarms_in_scope(door):
    user = await database_sync_to_async(UserFactory)()
    await database_sync_to_async(GrantFactory)(user=user, capabilities=["live"])
    communicator = socket(await database_sync_to_async(signed_in)(user))
    await communicator.connect()
    assert await closed_with(communicator) == 4404
    await communicator.disconnect()


async def test_it_sends_new_events_in_the_users_scope_only(watcher, door):
    elsewhere = await database_sync_to_async(DoorFactory)()
    communicator = socket(await database_sync_to_async(signed_in)(watcher))
    await resumed(communicator)
    await stored(elsewhere)
    mine = await stored(door)

    frame = await next_frame(communicator)
    assert frame["type"] == "event"
    assert frame["seq"] == mine.seq
    assert frame["event"]["id"] == mine.id
    assert frame["event"]["door"]["building"] == door.building_id
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_it_replays_what_was_missed_then_goes_live(watcher, door):
    first, second, third = [await stored(door) for _ in range(3)]
    communicator = socket(await database_sync_to_async(signed_in)(watcher))
    replayed = await resumed(communicator, after=first.seq)
    fourth = await stored(door)

    assert [f["seq"] for f in replayed] == [second.seq, third.seq, third.seq]
    assert (await next_frame(communicator))["seq"] == fourth.seq
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_a_resume_that_comes_after_the_live_start_is_answered_with_a_reset(watcher, door):
    first, second = [await stored(door) for _ in range(2)]
    communicator = socket(await database_sync_to_async(signed_in)(watcher))
    connected, _ = await communicator.connect()
    assert connected
    # A busy daphne or link: no resume within the wait, so the socket went live without it.
    assert await next_frame(communicator) == {"type": "live", "seq": second.seq}

    await communicator.send_json_to({"type": "resume", "after": first.seq})

    # The second event was never replayed: the client reloads it over REST.
    assert await next_frame(communicator) == {"type": "reset", "seq": second.seq}
    await communicator.send_json_to({"type": "resume", "after": first.seq})
    third = await stored(door)
    assert (await next_frame(communicator))["seq"] == third.seq  # one reset, then live
    await communicator.disconnect()


async def test_a_resume_in_the_url_replays_at_the_accept_and_the_same_message_changes_nothing(
    watcher, door
):
    first, second = [await stored(door) for _ in range(2)]
    cookie = await database_sync_to_async(signed_in)(watcher)
    communicator = socket(cookie, path=f"/ws/events?after={first.seq}")
    connected, _ = await communicator.connect()
    assert connected

    assert (await next_frame(communicator))["seq"] == second.seq  # replayed: no reset
    assert await next_frame(communicator) == {"type": "live", "seq": second.seq}
    # The PWA says it again as a message, for a server older than the URL's `after`.
    await communicator.send_json_to({"type": "resume", "after": first.seq})
    third = await stored(door)
    assert (await next_frame(communicator))["seq"] == third.seq
    await communicator.disconnect()


@pytest.mark.parametrize("query", ["after=x", "after=-1", "after=1&after=2", "after=%EF%BC%91"])
async def test_a_resume_in_the_url_that_is_no_seq_is_as_none(watcher, door, query):
    event = await stored(door)
    cookie = await database_sync_to_async(signed_in)(watcher)
    communicator = socket(cookie, path=f"/ws/events?{query}")
    await communicator.connect()

    assert await next_frame(communicator) == {"type": "live", "seq": event.seq}
    await communicator.disconnect()


async def test_it_sends_a_reset_past_a_day_of_missed_events(watcher, door):
    old = await stored(door)
    await database_sync_to_async(Event.objects.filter(pk=old.pk).update)(
        received_at=timezone.now() - timedelta(hours=25)
    )
    communicator = socket(await database_sync_to_async(signed_in)(watcher))

    assert (await resumed(communicator))[0] == {"type": "reset", "seq": old.seq}
    newer = await stored(door)
    assert (await next_frame(communicator))["seq"] == newer.seq
    await communicator.disconnect()


async def test_sockets_resuming_on_a_fresh_fanout_share_one_read_and_see_their_own(watcher, door):
    # A daphne just (re)started: nothing in memory, every tablet resumes from its last seq.
    other_door = await database_sync_to_async(DoorFactory)()
    other = await database_sync_to_async(UserFactory)()
    await database_sync_to_async(GrantFactory)(
        user=other, capabilities=["alarms"], building=other_door.building
    )
    mine = [await database_sync_to_async(store_event)(door) for _ in range(3)]
    theirs = [await database_sync_to_async(store_event)(other_door) for _ in range(2)]
    first = socket(await database_sync_to_async(signed_in)(watcher))
    replayed = await resumed(first)

    hub = fanout._fanouts[asyncio.get_running_loop()]
    held = hub.recent(0, EVERYWHERE, EVERYWHERE)
    assert [json.loads(f.text)["seq"] for f in held] == sorted(e.seq for e in mine + theirs)
    second = socket(await database_sync_to_async(signed_in)(other))
    assert [f["seq"] for f in replayed] == [*(e.seq for e in mine), theirs[-1].seq]
    assert [f["seq"] for f in await resumed(second)] == [e.seq for e in theirs] + [theirs[-1].seq]
    await first.disconnect()
    await second.disconnect()


async def test_it_sends_a_reset_past_a_thousand_missed_events(watcher, door):
    def flood() -> None:
        for _ in range(1001):
            store_event(door)

    await database_sync_to_async(flood)()
    communicator = socket(await database_sync_to_async(signed_in)(watcher))

    assert [f["type"] for f in await resumed(communicator)] == ["reset", "live"]
    await communicator.disconnect()


async def test_revoking_the_grant_closes_the_socket(watcher, door):
    communicator = socket(await database_sync_to_async(signed_in)(watcher))
    await resumed(communicator)
    await database_sync_to_async(lambda: watcher.grants.all().delete())()

    assert await closed_with(communicator) == 4404
    await communicator.disconnect()


async def test_disabling_the_user_closes_the_socket(watcher):
    communicator = socket(await database_sync_to_async(signed_in)(watcher))
    await resumed(communicator)

    def disable() -> None:
        watcher.is_active = False
        watcher.save()

    await database_sync_to_async(disable)()
    assert await closed_with(communicator) == 4401
    await communicator.disconnect()


async def test_a_narrower_scope_sends_a_reset_and_stops_the_lost_building(watcher, door):
    other = await database_sync_to_async(DoorFactory)()
    lost = await database_sync_to_async(GrantFactory)(
        user=watcher, capabilities=["alarms"], building=other.building
    )
    communicator = socket(await database_sync_to_async(signed_in)(watcher))
    await resumed(communicator)
    await database_sync_to_async(lost.delete)()

    assert (await next_frame(communicator))["type"] == "reset"
    await stored(other)
    kept = await stored(door)
    assert (await next_frame(communicator))["seq"] == kept.seq
    await communicator.disconnect()


async def test_a_grant_running_out_closes_the_socket(door):
    user = await database_sync_to_async(UserFactory)()
    await database_sync_to_async(GrantFactory)(
        user=user,
        capabilities=["alarms"],
        building=door.building,
        ends_at=timezone.now() + timedelta(seconds=2),
    )
    communicator = socket(await database_sync_to_async(signed_in)(user))
    await resumed(communicator)

    assert await closed_with(communicator) == 4404
    await communicator.disconnect()


def handshake(origin: str, host: str = "responder.district.example", **headers: str) -> dict:
    pairs = {"origin": origin, "host": host, **headers}
    return {"type": "websocket", "headers": [(k.encode(), v.encode()) for k, v in pairs.items()]}


def test_behind_the_tls_proxy_only_the_https_origin_of_the_host_may_connect(settings):
    settings.ALLOWED_HOSTS = ["responder.district.example"]
    site = "https://responder.district.example"
    forwarded = {"x-forwarded-proto": "https"}

    assert origin_allowed(handshake(site, **forwarded))
    assert not origin_allowed(handshake("http://responder.district.example", **forwarded))
    assert not origin_allowed(handshake(site))  # no proxy said it was https
    assert not origin_allowed(handshake(site, host="evil.example", **forwarded))


def test_the_site_url_and_trusted_origins_may_connect_and_nothing_near_them(settings):
    settings.ALLOWED_HOSTS = ["responder.district.example"]
    settings.SITE_URL = "https://responder.district.example/"
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.district.example", "https://dispatch.example:8443"]

    assert origin_allowed(handshake("https://responder.district.example", host="internal:8001"))
    assert origin_allowed(handshake("https://maps.district.example", host="internal:8001"))
    assert origin_allowed(handshake("https://dispatch.example:8443", host="internal:8001"))
    for near in [
        "http://maps.district.example",
        "https://district.example.evil.example",
        "https://dispatch.example",
        "https://dispatch.example:8444",
        "https://evildistrict.example",
    ]:
        assert not origin_allowed(handshake(near, host="internal:8001")), near


async def test_a_clients_ping_is_answered_at_once_before_and_after_live(watcher, door):
    communicator = socket(await database_sync_to_async(signed_in)(watcher))
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}
    await communicator.send_json_to({"type": "resume", "after": 0})
    frames = [await communicator.receive_json_from(timeout=5)]
    assert frames[-1]["type"] == "live"  # the ping did not start the feed in the resume's place
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}
    await communicator.disconnect()


async def test_an_events_frame_names_its_campus_building_and_floor(watcher, door):
    communicator = socket(await database_sync_to_async(signed_in)(watcher))
    await resumed(communicator)
    await stored(door)

    frame = await communicator.receive_json_from(timeout=5)
    names = await database_sync_to_async(
        lambda: (door.building.campus.name, door.building.name, door.floor and door.floor.name)
    )()
    assert frame["event"]["location"] == dict(
        zip(("campus", "building", "floor"), names, strict=True)
    )
    assert frame["event"]["door"]["name"] == door.name  # the existing keys stay
    await communicator.disconnect()
