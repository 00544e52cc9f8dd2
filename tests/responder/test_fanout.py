"""The fan-out in memory (no database, no Redis): announcement order, scope groups, acks."""

import asyncio
import json
from types import SimpleNamespace

from responder.alarms import fanout
from responder.alarms.consumers import EventsConsumer
from responder.alarms.events import EVERYWHERE, Access, AlarmScope
from responder.alarms.wire import Frame
from responder.core.announce import channel


class Tablet:
    """A live socket that keeps the frames it is sent, and the seqs of its events."""

    session_key, user_id, incident_scope, camera_scope, live = None, 1, None, EVERYWHERE, True
    is_it = False

    def __init__(self, cursor: int, alarm_scope: AlarmScope = EVERYWHERE) -> None:
        self.cursor, self.alarm_scope, self.frames = cursor, alarm_scope, []
        self.writes = 0

    def send_now(self, wire: bytes) -> bool:
        return False  # as off daphne: every frame through `write`

    async def write(self, frames: list[Frame]) -> None:
        self.frames += [json.loads(frame.text) for frame in frames]
        self.writes += 1

    @property
    def seqs(self) -> list[int]:
        return [frame["seq"] for frame in self.frames if frame["type"] == "event"]


def publish(hub: fanout.Fanout, kind: str, data: dict) -> None:
    message = {"type": "message", "channel": channel(kind).encode(), "data": json.dumps(data)}
    hub._on_message(message)


def announce(hub: fanout.Fanout, seq: int, building: int = 1) -> None:
    frame = json.dumps({"type": "event", "seq": seq, "event": {"id": seq}})
    publish(hub, "events", {"seq": seq, "building": building, "frame": frame, "cameras": []})


def acknowledge(hub: fanout.Fanout, seq: int, building: int) -> None:
    frame = json.dumps({"type": "ack", "seq": seq, "event": seq, "acks": []})
    publish(hub, "acks", {"seq": seq, "building": building, "frame": frame})


async def settled() -> None:
    """Past a flood's wait before a write pass (each test's announcements come in a burst)."""
    await asyncio.sleep(fanout.COALESCE_SECONDS * 2)
    for _ in range(5):
        await asyncio.sleep(0)


def hub_at(head: int, *sockets: object) -> fanout.Fanout:
    """A fan-out whose head is `head`, with these sockets joined."""
    hub = fanout.Fanout()
    hub.head = head
    for sock in sockets:
        hub.add(sock)
    return hub


async def test_announcements_out_of_order_go_out_in_order_from_the_announcements():
    # No database in this test: a read from it would fail, so the frames are the announced ones.
    tablet = Tablet(cursor=10)
    hub = hub_at(10, tablet)

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


async def test_a_lone_alarm_goes_at_once_and_a_flood_in_fewer_writes():
    tablet = Tablet(cursor=10)
    hub = hub_at(10, tablet)

    announce(hub, 11)
    for _ in range(5):
        await asyncio.sleep(0)
    assert tablet.seqs == [11]  # no wait: nothing was written lately
    announce(hub, 12)  # a flood: the pass waits a moment for more
    for _ in range(5):
        await asyncio.sleep(0)
    assert tablet.seqs == [11]
    announce(hub, 13)
    await settled()

    assert tablet.seqs == [11, 12, 13]
    assert tablet.writes == 2  # 12 and 13 in one
    await hub.stop()


async def test_a_seq_never_announced_is_read_from_the_database_after_a_moment(monkeypatch):
    monkeypatch.setattr(fanout, "ANNOUNCE_GAP_SECONDS", 0.05)
    tablet = Tablet(cursor=10)
    hub = hub_at(10, tablet)

    announce(hub, 12)  # 11's doorbell was lost
    await settled()
    assert not hub._wake.is_set()
    await asyncio.sleep(0.1)

    assert hub._wake.is_set()  # the pump reads 11 (and 12) from the database
    assert tablet.seqs == []
    await hub.stop()


async def test_a_resume_from_a_seq_delivered_lately_is_served_from_memory(monkeypatch):
    monkeypatch.setattr(fanout, "RECENT_ROWS", 2)
    hub = hub_at(10, Tablet(cursor=10))
    assert hub.recent(10, EVERYWHERE, EVERYWHERE) is None  # nothing delivered yet

    for seq in (11, 12, 13):
        announce(hub, seq)
    await settled()

    assert [json.loads(f.text)["seq"] for f in hub.recent(11, EVERYWHERE, EVERYWHERE)] == [12, 13]
    assert hub.recent(11, frozenset({2}), EVERYWHERE) == []  # another building's scope
    assert hub.recent(10, EVERYWHERE, EVERYWHERE) is None  # no longer held: the database
    await hub.stop()


async def test_a_socket_is_not_visited_for_events_its_scope_does_not_see():
    dispatch, guard = Tablet(cursor=10), Tablet(cursor=10, alarm_scope=frozenset({2}))
    hub = hub_at(10, dispatch, guard)

    for seq in (11, 12, 13):
        announce(hub, seq, building=1)
        await settled()
    assert dispatch.seqs == [11, 12, 13]
    assert guard.frames == []
    assert guard.cursor == 10  # not even its cursor was touched

    announce(hub, 14, building=2)
    announce(hub, 15, building=1)
    await settled()
    assert dispatch.seqs == [11, 12, 13, 14, 15]
    assert guard.seqs == [14]
    assert guard.cursor == 15
    await hub.stop()


async def test_a_socket_whose_scope_changed_gets_its_new_buildings_events():
    guard = Tablet(cursor=10, alarm_scope=frozenset({2}))
    hub = hub_at(10, guard)
    announce(hub, 11, building=1)
    await settled()

    guard.alarm_scope = frozenset({1, 2})  # as EventsConsumer._take does
    hub.regroup()
    for seq, building in [(12, 1), (13, 3), (14, 2)]:  # one batch each
        announce(hub, seq, building)
        await settled()

    assert guard.seqs == [12, 14]
    await hub.stop()


async def test_a_socket_behind_on_unseen_seqs_gets_the_acks_of_events_it_has_and_no_others():
    guard = Tablet(cursor=10, alarm_scope=frozenset({2}))
    hub = hub_at(10, guard)
    announce(hub, 11, building=2)
    announce(hub, 12, building=1)
    await settled()
    assert guard.cursor == 12  # both in one batch

    announce(hub, 13, building=1)
    await settled()
    assert guard.cursor == 12

    acknowledge(hub, 11, building=2)
    acknowledge(hub, 13, building=1)
    await settled()
    assert [(f["type"], f["seq"]) for f in guard.frames] == [("event", 11), ("ack", 11)]

    guard.alarm_scope = frozenset({1, 2})  # 13 is in scope now, but never reached it
    hub.regroup()
    acknowledge(hub, 13, building=1)
    await settled()
    assert [(f["type"], f["seq"]) for f in guard.frames] == [("event", 11), ("ack", 11)]
    await hub.stop()


async def test_a_reset_reaches_the_head_past_seqs_the_old_scope_did_not_see():
    # A guard moved from building 2 to building 1: the REST reload up to the reset's seq
    # must include building 1's events the fan-out passed it by.
    hub = hub_at(10)
    consumer = EventsConsumer()
    consumer.fanout, consumer._timers = hub, []
    consumer.cursor, consumer.live, consumer.alarm_scope = 10, True, frozenset({2})
    sent = []

    async def write(frames: list[Frame]) -> None:
        sent.extend(json.loads(frame.text) for frame in frames)

    consumer.write = write
    hub.add(consumer)
    announce(hub, 11, building=1)
    await settled()
    assert consumer.cursor == 10

    await consumer.apply(Access(None, SimpleNamespace(pk=1), frozenset({1})))

    assert sent == [{"type": "reset", "seq": 11}]
    announce(hub, 12, building=1)
    await settled()
    assert sent[-1]["seq"] == 12
    await hub.stop()


async def test_an_event_names_only_the_cameras_each_scope_group_may_watch():
    everything = Tablet(cursor=10)
    parking = Tablet(cursor=10)
    parking.camera_scope = frozenset({5, 9})
    blind = Tablet(cursor=10)
    blind.camera_scope = frozenset()
    hub = hub_at(10, everything, parking, blind)
    frame = json.dumps({"type": "event", "seq": 11, "event": {"id": 11, "cameras": [5, 6]}})

    publish(hub, "events", {"seq": 11, "building": 1, "frame": frame, "cameras": [5, 6]})
    await settled()

    assert [f["event"]["cameras"] for f in everything.frames] == [[5, 6]]
    assert [f["event"]["cameras"] for f in parking.frames] == [[5]]
    assert [f["event"]["cameras"] for f in blind.frames] == [[]]
    await hub.stop()


async def test_an_announcement_without_its_cameras_is_read_from_the_database():
    # From an ingest process of an older version: its frame names every camera.
    tablet = Tablet(cursor=10)
    hub = hub_at(10, tablet)
    frame = json.dumps({"type": "event", "seq": 11, "event": {"id": 11, "cameras": [5]}})

    publish(hub, "events", {"seq": 11, "building": 1, "frame": frame})
    await settled()

    assert tablet.frames == []
    assert hub._wake.is_set()
    await hub.stop()
