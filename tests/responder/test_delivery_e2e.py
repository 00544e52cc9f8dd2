"""Real daphne and gunicorn processes, a real Redis we can kill, real `websockets` clients."""

import asyncio
import json
from http.client import HTTPConnection

import pytest
import websockets
from channels.db import database_sync_to_async

from accesslog.signatures import HEADER, sign
from responder.alarms import events
from responder.embedded_redis import start as start_redis
from tests.factories import DoorFactory, GrantFactory, UserFactory
from tests.responder.test_events_socket import signed_in, store_event

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class Client:
    """Keeps the seqs it received; reconnects to any daphne resuming after the last one."""

    def __init__(self, cookie: str) -> None:
        self.cookie = cookie
        self.seqs: list[int] = []
        self.task: asyncio.Task | None = None

    async def connect(self, port: int) -> None:
        headers = {"Origin": f"http://127.0.0.1:{port}", "Cookie": self.cookie}
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/ws/events", additional_headers=headers
        )
        await ws.send(json.dumps({"type": "resume", "after": self.seqs[-1] if self.seqs else 0}))
        while (frame := json.loads(await ws.recv()))["type"] != "live":
            if frame["type"] == "event":
                self.seqs.append(frame["seq"])
        self.task = asyncio.create_task(self._read(ws))

    async def _read(self, ws: websockets.ClientConnection) -> None:
        async with ws:
            async for text in ws:
                frame = json.loads(text)
                if frame["type"] == "event":
                    self.seqs.append(frame["seq"])

    async def drop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def has(self, seq: int) -> bool:
        for _ in range(300):
            if self.seqs and self.seqs[-1] >= seq:
                return True
            await asyncio.sleep(0.1)
        return False


async def test_every_client_gets_every_event_once_in_order_through_drops_and_a_redis_restart(
    daphnes, redis_server, tmp_path
):
    door = await database_sync_to_async(DoorFactory)()
    elsewhere = await database_sync_to_async(DoorFactory)()
    user = await database_sync_to_async(UserFactory)()
    await database_sync_to_async(GrantFactory)(
        user=user, capabilities=["alarms"], building=door.building
    )
    cookie = await database_sync_to_async(signed_in)(user)
    first, second = Client(cookie), Client(cookie)
    await first.connect(daphnes[0])
    await second.connect(daphnes[1])

    async def post(count: int, at=door) -> list[int]:
        seqs = []
        for _ in range(count):
            event = await database_sync_to_async(store_event)(at)
            await database_sync_to_async(events.announce)(event)
            seqs.append(event.seq)
        return seqs

    mine = await post(3)
    await post(1, at=elsewhere)
    assert await first.has(mine[-1])
    await first.drop()  # the tablet loses its link
    mine += await post(3)
    await first.connect(daphnes[1])  # and comes back through the other process
    mine += await post(2)

    redis_server["server"].kill()
    redis_server["server"].wait()
    mine += await post(3)  # stored while Redis is down: delivered by polling
    redis_server["server"] = start_redis(redis_server["port"], str(tmp_path))
    mine += await post(3)
    await second.drop()
    await second.connect(daphnes[0])
    mine += await post(2)

    for client in (first, second):
        assert await client.has(mine[-1])
        assert client.seqs == mine
    await first.drop()
    await second.drop()


async def test_an_event_posted_to_the_wsgi_workers_reaches_a_socket_on_daphne(daphnes, gunicorn):
    door = await database_sync_to_async(DoorFactory)(external_id="gym-east")
    user = await database_sync_to_async(UserFactory)()
    await database_sync_to_async(GrantFactory)(
        user=user, capabilities=["alarms"], building=door.building
    )
    client = Client(await database_sync_to_async(signed_in)(user))
    await client.connect(daphnes[0])
    body = json.dumps(
        {
            "source_event_id": "lenel-77",
            "type": "door_forced",
            "door": "gym-east",
            "occurred_at": "2026-11-29T07:00:00-06:00",
        }
    ).encode()

    def post() -> tuple[int, dict]:
        http = HTTPConnection("127.0.0.1", gunicorn, timeout=10)
        headers = {
            "Content-Type": "application/json",
            HEADER: sign(body, door.system.webhook_secret),
        }
        http.request("POST", f"/api/v1/access/{door.system.slug}/events", body, headers)
        response = http.getresponse()
        return response.status, json.loads(response.read())

    status, answer = await asyncio.to_thread(post)

    assert status == 202
    assert await client.has(answer["seq"])
    assert client.seqs == [answer["seq"]]
    await client.drop()
