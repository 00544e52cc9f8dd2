"""Attacks on the live alarm feed (the WebSocket at /ws/events), through a real daphne server
and a real WebSocket client, as a browser or a script would make them.

What these tests show, in plain words:
- a connection that must be refused is refused with the code that tells the app what to do
  (4401: sign in again; 4403: this web address may not open the feed; 4404: nothing to see),
  never with a server crash the app would retry forever;
- a page on another site, on another port of the same host, or on plain http when the site is
  https, cannot open the feed with a signed-in user's cookie;
- an open feed is closed within seconds once the person's right to it ends: a grant revoked,
  signing out, the session deleted, a new password, the authenticator removed, the session
  idle too long or past its absolute limit; and one faulty connection never stops the others
  from being checked;
- an alarm never names a camera the person may not watch, on the feed nor over REST.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import websockets
from channels.db import database_sync_to_async
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from responder.alarms.events import announce
from responder.core.middleware import SEEN_AT, SIGNED_IN_AT
from responder.embedded_redis import free_port
from tests.factories import (
    CameraFactory,
    DoorFactory,
    GrantFactory,
    GroupFactory,
    UserFactory,
    event_store,
)
from tests.responder.test_events_socket import signed_in
from tests.servers import HttpClient, daphne_command, http_sign_in, serve, stop

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CLOSE_WITHIN = 5  # seconds: revocation must close an open socket this fast


@pytest.fixture
def daphne_with(redis_server, tmp_path) -> Iterator[Callable[..., int]]:
    """`daphne_with(SESSION_MAX_HOURS="1")`: a real daphne with these settings; its port."""
    processes = []

    def start(**env: str) -> int:
        port = free_port()
        log = tmp_path / f"daphne-{port}.log"
        processes.append(serve(daphne_command(port), port, log, env=env))
        return port

    yield start
    stop(*processes)


def origin(port: int) -> str:
    return f"http://127.0.0.1:{port}"


async def opened(port: int, cookie: str = "", origin_header: str | None = None):
    headers = {"Cookie": cookie} if cookie else {}
    if origin_header != "":
        headers["Origin"] = origin_header or origin(port)
    return await websockets.connect(
        f"ws://127.0.0.1:{port}/ws/events", additional_headers=headers, open_timeout=10
    )


async def live(port: int, cookie: str):
    ws = await opened(port, cookie)
    await ws.send(json.dumps({"type": "resume", "after": 0}))
    while (await next_frame(ws))["type"] != "live":
        pass
    return ws


async def next_frame(ws, timeout: float = 10) -> dict:
    while (frame := json.loads(await asyncio.wait_for(ws.recv(), timeout)))["type"] == "ping":
        pass
    return frame


async def close_code(ws, within: float = 10) -> int | None:
    """The code the server closed with, waiting at most `within` seconds."""
    try:
        async with asyncio.timeout(within):
            async for _ in ws:
                pass
    except TimeoutError:
        await ws.close()
        return None
    except websockets.ConnectionClosed:
        pass
    return ws.close_code


async def frames_until_live(ws) -> list[dict]:
    await ws.send(json.dumps({"type": "resume", "after": 0}))
    frames = [await next_frame(ws)]
    while frames[-1]["type"] != "live":
        frames.append(await next_frame(ws))
    return frames


@database_sync_to_async
def watcher(**grant) -> object:
    user = UserFactory()
    GrantFactory(user=user, capabilities=["alarms"], **grant)
    return user


sign_in = database_sync_to_async(http_sign_in)


@database_sync_to_async
def stored(door) -> int:
    event = event_store(door)
    announce(event)
    return event.seq


# --- Refusals carry the codes the app acts on ---------------------------------------------


async def test_a_socket_without_a_session_is_closed_with_4401(daphne):
    assert await close_code(await opened(daphne)) == 4401


async def test_a_socket_with_a_session_but_no_second_factor_is_closed_with_4401(daphne):
    user = await watcher()
    cookie = await database_sync_to_async(signed_in)(user, verified=False)

    assert await close_code(await opened(daphne, cookie)) == 4401


async def test_a_user_with_no_alarms_anywhere_is_closed_with_4404(daphne):
    user = await database_sync_to_async(UserFactory)()
    await database_sync_to_async(GrantFactory)(user=user, capabilities=["live"])
    client = await sign_in(daphne, user)

    assert await close_code(await opened(daphne, client.cookie())) == 4404


FOREIGN_ORIGINS = [
    "https://evil.example",
    "http://127.0.0.1.evil.example:{port}",
    "http://127.0.0.1:{other}",  # another port of the same host
    "http://127.0.0.1",  # the host without the port
    "https://127.0.0.1:{port}",  # the right host and port, the wrong scheme
    "null",  # a sandboxed frame or a file
    "",  # no Origin at all
]


async def test_a_page_of_another_origin_cannot_open_the_feed_with_the_users_cookie(daphne):
    client = await sign_in(daphne, await watcher())
    for foreign in FOREIGN_ORIGINS:
        header = foreign.format(port=daphne, other=daphne + 1)

        ws = await opened(daphne, client.cookie(), origin_header=header)

        assert await close_code(ws) == 4403, header


async def test_the_sites_own_origin_opens_the_feed(daphne):
    client = await sign_in(daphne, await watcher())
    ws = await live(daphne, client.cookie())
    await ws.close()


# --- An open socket is closed when the right to it ends -----------------------------------


async def test_revoking_a_grant_closes_the_socket_with_4404_in_seconds_and_a_faulty_one_stops_no_other(
    daphne,
):
    # Three members of one group, rechecked in one batch when the group's grant goes: the
    # first loses every alarm, the second keeps a grant of its own, the third's session is
    # corrupt, so checking it raises.
    door = await database_sync_to_async(DoorFactory)()
    group = await database_sync_to_async(GroupFactory)(name="facilities")
    revoked, kept, faulty = [await database_sync_to_async(UserFactory)() for _ in range(3)]

    @database_sync_to_async
    def grants() -> object:
        for user in (revoked, kept, faulty):
            user.groups.add(group)
        GrantFactory(user=kept, capabilities=["alarms"], building=door.building)
        GrantFactory(user=faulty, capabilities=["alarms"], building=door.building)
        return GrantFactory(group=group, capabilities=["alarms"], building=door.building)

    group_grant = await grants()
    clients = [await sign_in(daphne, user) for user in (revoked, kept, faulty)]
    sockets = [await live(daphne, client.cookie()) for client in clients]

    @database_sync_to_async
    def corrupt(client: HttpClient) -> None:
        session = SessionStore(dict((c.name, c.value) for c in client.jar)["sessionid"])
        session[SESSION_KEY] = "not-a-user-id"
        session.save()

    await corrupt(clients[2])
    started = time.monotonic()
    await database_sync_to_async(group_grant.delete)()

    assert await close_code(sockets[0], within=CLOSE_WITHIN) == 4404
    assert time.monotonic() - started < CLOSE_WITHIN
    assert await close_code(sockets[2]) == 4503  # not left open unchecked: reconnect
    seq = await stored(door)
    frame = await next_frame(sockets[1])
    assert (frame["type"], frame["seq"]) == ("event", seq)
    await sockets[1].close()


async def test_a_grant_running_out_closes_the_socket_with_4404_in_seconds(daphne):
    user = await database_sync_to_async(UserFactory)()
    cookie = (await sign_in(daphne, user)).cookie()
    ends_at = timezone.now() + timedelta(seconds=6)
    await database_sync_to_async(GrantFactory)(user=user, capabilities=["alarms"], ends_at=ends_at)
    ws = await live(daphne, cookie)

    assert await close_code(ws, within=6 + CLOSE_WITHIN) == 4404


async def test_signing_out_closes_the_socket_with_4401(daphne):
    client = await sign_in(daphne, await watcher())
    ws = await live(daphne, client.cookie())

    status, _, _ = await asyncio.to_thread(client.request, "POST", "/api/v1/auth/logout")

    assert status in (200, 204)
    assert await close_code(ws, within=CLOSE_WITHIN) == 4401


async def test_a_deleted_session_closes_the_socket_within_the_recheck(daphne_with):
    port = daphne_with(SOCKET_RECHECK_SECONDS="2")
    client = await sign_in(port, await watcher())
    ws = await live(port, client.cookie())

    await database_sync_to_async(Session.objects.all().delete)()

    assert await close_code(ws, within=2 + CLOSE_WITHIN) == 4401


async def test_a_new_password_closes_the_sockets_of_the_old_one(daphne):
    user = await watcher()
    ws = await live(daphne, (await sign_in(daphne, user)).cookie())

    @database_sync_to_async
    def change_password() -> None:
        user.set_password("a completely different passphrase")
        user.save()

    await change_password()
    assert await close_code(ws, within=CLOSE_WITHIN) == 4401


async def test_removing_the_authenticator_closes_the_socket(daphne):
    user = await watcher()
    ws = await live(daphne, (await sign_in(daphne, user)).cookie())

    await database_sync_to_async(lambda: TOTPDevice.objects.filter(user=user).delete())()

    assert await close_code(ws, within=CLOSE_WITHIN) == 4401


@database_sync_to_async
def backdate(client: HttpClient, **stamps: float) -> None:
    session = SessionStore(dict((c.name, c.value) for c in client.jar)["sessionid"])
    for key, seconds_ago in stamps.items():
        session[key] = time.time() - seconds_ago
    session.save()


async def test_the_absolute_session_limit_closes_an_open_socket(daphne_with):
    port = daphne_with(SESSION_MAX_HOURS="1")
    client = await sign_in(port, await watcher())
    # Signed in 59 min 54 s ago, busy ever since: 6 s of the hour are left.
    await backdate(client, **{SIGNED_IN_AT: 3600 - 6, SEEN_AT: 0})
    ws = await live(port, client.cookie())

    assert await close_code(ws, within=6 + CLOSE_WITHIN) == 4401


async def test_a_session_idle_past_its_limit_closes_an_open_socket(daphne_with):
    # The socket's own traffic is not activity (the consumer's docstring says why).
    port = daphne_with(SESSION_IDLE_MINUTES="1")
    client = await sign_in(port, await watcher())
    await backdate(client, **{SEEN_AT: 60 - 6})  # its last request was 54 s ago
    ws = await live(port, client.cookie())

    assert await close_code(ws, within=6 + CLOSE_WITHIN) == 4401


# --- An alarm names only the cameras its reader may watch ---------------------------------


async def test_an_event_never_names_a_camera_the_viewer_may_not_see(daphne):
    @database_sync_to_async
    def district() -> tuple:
        door = DoorFactory()
        parking = CameraFactory(building=door.building, tags=["parking"])
        hallway = CameraFactory(building=door.building)
        door.cameras.add(parking, hallway)
        facilities = UserFactory()
        GrantFactory(user=facilities, capabilities=["alarms"], building=door.building)
        GrantFactory(user=facilities, capabilities=["live"], tags=["parking"])
        doors_only = UserFactory()
        GrantFactory(user=doors_only, capabilities=["alarms"], building=door.building)
        dispatch = UserFactory()
        GrantFactory(user=dispatch, capabilities=["alarms", "live"])
        return door, parking, hallway, facilities, doors_only, dispatch

    door, parking, hallway, facilities, doors_only, dispatch = await district()
    readers = {
        "facilities": (facilities, [parking.id]),
        "doors_only": (doors_only, []),
        "dispatch": (dispatch, sorted([parking.id, hallway.id])),
    }
    clients = {name: await sign_in(daphne, user) for name, (user, _) in readers.items()}
    earlier = await stored(door)  # replayed on connect
    sockets = {}
    for name, client in clients.items():
        sockets[name] = await opened(daphne, client.cookie())
        replayed = [f for f in await frames_until_live(sockets[name]) if f["type"] == "event"]
        assert [f["seq"] for f in replayed] == [earlier]
        assert sorted(replayed[0]["event"]["cameras"]) == readers[name][1], name

    later = await stored(door)  # sent live, one frame per scope group
    for name, ws in sockets.items():
        frame = await next_frame(ws)
        assert frame["seq"] == later
        assert sorted(frame["event"]["cameras"]) == readers[name][1], name
        await ws.close()

    for name, client in clients.items():
        status, _, body = await asyncio.to_thread(client.request, "GET", "/api/v1/events/")
        assert status == 200
        cameras = [sorted(r["cameras"]) for r in json.loads(body)["results"]]
        assert cameras == [readers[name][1]] * 2, name
