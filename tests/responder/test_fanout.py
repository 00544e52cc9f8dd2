"""The fan-out's ordering of announcements, in memory: no database, no Redis."""

import asyncio
import json

from responder import fanout
from responder.events import EVERYWHERE, channel
from responder.wire import Frame


class Tablet:
    """A live socket that may see every building and keeps the seqs it is sent."""

    session_key, user_id, incident_scope, camera_scope = None, 1, None, EVERYWHERE
    alarm_scope, live = EVERYWHERE, True

    def __init__(self, cursor: int) -> None:
        self.cursor, self.seqs = cursor, []

    async def write(self, frames: list[Frame]) -> None:
        self.seqs += [json.loads(frame.text)["seq"] for frame in frames]


def announce(hub: fanout.Fanout, seq: int) -> None:
    frame = json.dumps({"type": "event", "seq": seq, "event": {"id": seq}})
    data = json.dumps({"seq": seq, "building": 1, "frame": frame})
    hub._on_message({"type": "message", "channel": channel("events").encode(), "data": data})


async def settled() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_announcements_out_of_order_go_out_in_order_from_the_announcements():
    # No database in this test: a read from it would fail, so the frames are the announced ones.
    hub = fanout.Fanout()
    hub.head = 10
    tablet = Tablet(cursor=10)
    hub.sockets.add(tablet)

    announce(hub, 12)  # two API processes: the later commit's doorbell rang first
    await settled()
    assert tablet.seqs == []
    announce(hub, 11)
    announce(hub, 13)
    await settled()

    assert tablet.seqs == [11, 12, 13]
    assert hub.head == 13
    assert not hub._wake.is_set()
    await hub.stop()


async def test_a_seq_never_announced_is_read_from_the_database_after_a_moment(monkeypatch):
    monkeypatch.setattr(fanout, "ANNOUNCE_GAP_SECONDS", 0.05)
    hub = fanout.Fanout()
    hub.head = 10
    tablet = Tablet(cursor=10)
    hub.sockets.add(tablet)

    announce(hub, 12)  # 11's doorbell was lost
    await settled()
    assert not hub._wake.is_set()
    await asyncio.sleep(0.1)

    assert hub._wake.is_set()  # the pump reads 11 (and 12) from the database
    assert tablet.seqs == []
    await hub.stop()
