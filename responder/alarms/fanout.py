"""The per-process fan-out: one Redis subscriber, one database read per event, every socket.

Per-socket delivery through the channel layer costs 10-30x a plain broadcast and drops
messages over capacity (shared/notes/fanout-baselines.md). So each daphne process keeps
its sockets here, grouped by alarm and camera scope (held in memory), reads each new event
from the database once, encodes it once, and writes the frame to the sockets whose scope
covers the event's building; a group with nothing to see in a batch is not visited. A frame
names only the door's cameras its group may watch: re-encoded, once per event and subset of
cameras, only for a group that may watch some of them but not all. A socket's
`cursor` is the seq up to which it is served: frames go out only above it, so nothing is
sent twice or out of order, and replay from the database fills any gap. A live socket's
cursor may stay behind the head, over seqs its scope did not see.

Notices (acknowledgements, incidents, cameras offline) come encoded, or are encoded here
once, and go to the live sockets whose scopes, also held in memory, cover them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections import defaultdict, deque
from collections.abc import Iterable
from datetime import timedelta
from importlib import import_module
from typing import TYPE_CHECKING, Protocol

import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Max
from django.utils import timezone

from accesslog.models import Event, EventQuerySet
from accesslog.rendering import event_payloads, with_payload_relations
from responder.alarms.events import (
    EVERYWHERE,
    HEARTBEAT_SECONDS,
    REPLAY_MAX_EVENTS,
    REPLAY_MAX_HOURS,
    Access,
    AlarmScope,
    CameraScope,
    in_scope,
    session_access,
)
from responder.alarms.wire import Frame
from responder.core.announce import ChannelKind, channel, encode
from responder.core.redis import async_redis

if TYPE_CHECKING:
    from collections.abc import Callable

    from responder.incidents.services import IncidentScope

logger = logging.getLogger(__name__)

BATCH = 500
# Seqs are handed out in commit order, so a hole is an ingest still committing; past
# this long it was rolled back and is skipped.
HOLE_GRACE_SECONDS = 1.0
# Announcements from several API processes can reach Redis out of order: one ahead of a
# missing seq waits this long for it, before the missing one is read from the database.
ANNOUNCE_GAP_SECONDS = 0.2
# The doorbell can ring unheard (Redis down, a dropped subscription): poll anyway.
POLL_SECONDS = 5.0
POLL_SECONDS_WITHOUT_REDIS = 1.0
# Rows kept after delivery, for sockets that resume from a seq this process served lately.
RECENT_ROWS = 1000
# In a flood (a write pass less than FLOOD_SECONDS ago), a pass waits this long for more
# rows: each socket then gets several events in one send, and the sends are most of the
# fan-out's CPU (at 1,000 sockets, 1.5 -> 0.8 ms per event; 20 ms saved no more:
# docs/BENCHMARKS.md). A lone alarm, or a burst's at 10 a second, goes at once.
COALESCE_SECONDS = 0.010
FLOOD_SECONDS = 0.02
PING = Frame(encode({"type": "ping"}))


class Socket(Protocol):
    session_key: str | None
    user_id: int
    alarm_scope: AlarmScope
    incident_scope: IncidentScope | None
    camera_scope: CameraScope
    is_it: bool
    cursor: int
    live: bool

    def send_now(self, wire: bytes) -> bool: ...
    async def write(self, frames: list[Frame]) -> None: ...
    async def apply(self, access: Access | None) -> None: ...


GroupKey = tuple[AlarmScope, CameraScope]


class Fanout:
    def __init__(self) -> None:
        self.sockets: set[Socket] = set()
        # `sockets` by scopes, built on the next write after any change (_grouped).
        self._by_scope: dict[GroupKey, list[Socket]] | None = None
        self.head = 0
        self.redis_up = False
        self._wake = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._hole_since: float | None = None
        # One delivery at a time: frames reach each socket in seq order.
        self._delivery = asyncio.Lock()
        # Announced rows above the head, until the seqs before them are announced too.
        self._announced_rows: dict[int, Row] = {}
        self._draining: asyncio.Task | None = None
        # The rows delivered lately: every one above `_recent_after`, up to the head.
        self._recent: deque[Row] = deque()
        self._recent_after = 0
        self._reading_back = asyncio.Lock()  # one read back at a time, shared by resumers
        self._gap_check: asyncio.TimerHandle | None = None
        self._last_pass = 0.0
        self._tasks: list[asyncio.Task] = []
        self._routes = self._handlers()

    def add(self, sock: Socket) -> None:
        self.sockets.add(sock)
        self._by_scope = None

    def discard(self, sock: Socket) -> None:
        self.sockets.discard(sock)
        self._by_scope = None

    def regroup(self) -> None:
        """A socket's alarm or camera scope changed."""
        self._by_scope = None

    def _grouped(self) -> dict[GroupKey, list[Socket]]:
        # Replaced, never changed in place: a write under way keeps the groups it began with.
        if self._by_scope is None:
            self._by_scope = defaultdict(list)
            for sock in self.sockets:
                self._by_scope[sock.alarm_scope, sock.camera_scope].append(sock)
        return self._by_scope

    async def start(self) -> None:
        self.head = await database_sync_to_async(stored_head)()
        self._tasks = [
            asyncio.create_task(self._listen(), name="fanout-listen"),
            asyncio.create_task(self._pump(), name="fanout-pump"),
            asyncio.create_task(self._heartbeat(), name="fanout-heartbeat"),
            asyncio.create_task(self._recheck_every(), name="fanout-recheck"),
        ]
        # Wait for the subscription, so the first announcements are heard; but not long:
        # with Redis down the sockets still work, by polling.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 2)

    async def stop(self) -> None:
        if self._gap_check is not None:
            self._gap_check.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- Events ---------------------------------------------------------------------

    async def _pump(self) -> None:
        while True:
            timeout = POLL_SECONDS if self.redis_up else POLL_SECONDS_WITHOUT_REDIS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            try:
                more = await self.catch_up()
            except Exception:
                logger.exception("Fan-out could not read new events; retrying")
                await asyncio.sleep(1)
                more = True
            if more:
                self._wake.set()

    async def catch_up(self) -> bool:
        """Deliver stored events above the head. True if there may be more to read."""
        rows = await database_sync_to_async(stored_after)(self.head, BATCH)
        # Announcements may have delivered some of these while we read.
        rows = [row for row in rows if row.seq > self.head]
        ready = self._settled(rows)
        if ready:
            await self._deliver(ready)
        if len(ready) < len(rows):
            await asyncio.sleep(0.05)
            return True
        return len(rows) == BATCH

    def _settled(self, rows: list[Row]) -> list[Row]:
        """The rows before the first hole; all of them once a hole outlives its grace."""
        expected = self.head + 1
        for index, row in enumerate(rows):
            if row.seq != expected:
                now = time.monotonic()
                self._hole_since = self._hole_since or now
                if now - self._hole_since < HOLE_GRACE_SECONDS:
                    return rows[:index]
                logger.warning("Skipping seq %s..%s: never committed", expected, row.seq - 1)
                self._hole_since = None
                return rows
            expected += 1
        self._hole_since = None
        return rows

    async def _deliver(self, rows: list[Row]) -> None:
        async with self._delivery:
            rows = [row for row in rows if row.seq > self.head]
            if rows:
                await self._write(rows)

    async def _drain(self) -> None:
        """Announced rows go out in seq order, as long as they follow the head."""
        async with self._delivery:
            if time.monotonic() - self._last_pass < FLOOD_SECONDS:
                await asyncio.sleep(COALESCE_SECONDS)
            while rows := self._announced_in_order():
                await self._write(rows)
                self._last_pass = time.monotonic()
        # No await since the last look: a row still here waits behind a missing seq.
        if self._announced_rows and self._gap_check is None:
            loop = asyncio.get_running_loop()
            self._gap_check = loop.call_later(ANNOUNCE_GAP_SECONDS, self._gap_expired)

    def _announced_in_order(self) -> list[Row]:
        rows, seq = [], self.head + 1
        while row := self._announced_rows.pop(seq, None):
            rows.append(row)
            seq += 1
        return rows

    def _gap_expired(self) -> None:
        self._gap_check = None
        if self._announced_rows:
            self._wake.set()  # the missing seq's announcement is lost: read the database

    def recent(self, after: int, scope: AlarmScope, cameras: CameraScope) -> list[Frame] | None:
        """The frames above `after` up to the head, from memory; None if it does not reach back
        that far. When a daphne dies its tablets resume here from nearly the same seq: read
        from the database each, they kept this process busy while alarms moved the head on."""
        if not self._recent or after < self._recent_after:
            return None
        return _frames([row for row in self._recent if row.seq > after], scope, cameras)

    async def recent_or_read(
        self, after: int, scope: AlarmScope, cameras: CameraScope
    ) -> list[Frame] | None:
        """`recent`, first reading the rows back to `after` into memory if they are few: a
        daphne just started holds none, and each of its tablets resuming at once read and
        rendered the same rows for itself (1,000 sockets over 900 missed events: not all live
        in 2 minutes, 126 s of CPU; shared, 19 s and 14 s: bench.alarm_fanout.resume). The
        first resumer reads, the others wait and share."""
        frames = self.recent(after, scope, cameras)
        if frames is not None or self.head - after > RECENT_ROWS:
            return frames
        async with self._reading_back:
            if self.recent(after, scope, cameras) is None:
                await self._read_back(after)
        return self.recent(after, scope, cameras)

    async def _read_back(self, after: int) -> None:
        upto = self._recent_after if self._recent else self.head
        if after >= upto:
            return
        rows = await database_sync_to_async(stored_between)(after, upto)
        # Writes went on during the read: the rows join the held ones only if they still meet
        # (a first write since empty starts at the head read here; a trim moves the start).
        if (self._recent and self._recent_after != upto) or (
            not self._recent and self.head != upto
        ):
            return
        self._recent.extendleft(reversed(rows))
        self._recent_after = after

    async def _write(self, rows: list[Row]) -> None:
        if not self._recent:
            self._recent_after = self.head
        first, self.head = rows[0].seq, rows[-1].seq
        self._recent.extend(rows)
        while len(self._recent) > RECENT_ROWS:
            self._recent_after = self._recent.popleft().seq
        for seq in [seq for seq in self._announced_rows if seq <= self.head]:
            del self._announced_rows[seq]  # delivered from the database meanwhile
        # A group that sees none of these rows is not visited, and its cursors stay behind:
        # every seq they lag by is one their scope did not see. So the next batch has
        # nothing for them between cursor and `first`; an ack (`_acked`) still finds the
        # sockets that have its event, since their group was served with it, cursor and
        # all; and `_start` is unaffected, as cursors move here only once live. A `reset`
        # is the exception: it needs the head (EventsConsumer.apply).
        for key, group in self._grouped().items():
            frames = _frames(rows, *key)
            if not frames:
                continue
            wire = b"".join(frame.wire for frame in frames)  # the group's bytes, joined once
            for sock in group:
                if not sock.live or sock.cursor >= self.head:
                    continue
                if sock.cursor < first and (sock.alarm_scope, sock.camera_scope) == key:
                    sock.cursor = self.head
                    if not sock.send_now(wire):
                        await sock.write(frames)
                    continue
                # Resumed from a seq another process had already served, or the scope changed
                # (an `apply`) while this write was under way.
                later = [r for r in rows if r.seq > sock.cursor]
                own = _frames(later, sock.alarm_scope, sock.camera_scope)
                sock.cursor = self.head
                if own:
                    await sock.write(own)

    # --- Redis --------------------------------------------------------------------

    async def _listen(self) -> None:
        delay = 0.2
        while True:
            client = async_redis()
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(*self._routes)
                    self.redis_up, delay = True, 0.2
                    self._subscribed.set()
                    # Announcements and scope notices sent while unsubscribed are lost.
                    self._wake.set()
                    self.recheck(None)
                    async for message in pubsub.listen():
                        self._on_message(message)
            except (aioredis.RedisError, OSError) as error:
                logger.warning("Fan-out lost Redis (%s); polling the database", error)
            finally:
                self.redis_up = False
                await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5)

    def _handlers(self) -> dict[str, Callable[[dict], None]]:
        kinds: dict[ChannelKind, Callable[[dict], None]] = {
            "events": self._announced,
            "scope": lambda notice: self.recheck(notice["users"]),
            "acks": self._acked,
            "incidents": self._incident_changed,
            "cameras": self._camera_offline,
            "it": lambda notice: self._notify(Frame(notice["frame"]), lambda sock: sock.is_it),
            "users": self._to_users,
        }
        return {channel(kind): handler for kind, handler in kinds.items()}

    def _on_message(self, message: dict) -> None:
        if message["type"] != "message":
            return
        handler = self._routes.get(message["channel"].decode())
        if handler is None:
            return
        try:
            handler(json.loads(message["data"]))
        except (ValueError, KeyError, TypeError):
            # A malformed message must not end the subscription for everything else.
            logger.exception("Fan-out ignored a malformed message on %s", message["channel"])

    def _announced(self, announcement: dict) -> None:
        seq = announcement["seq"]
        if seq <= self.head:
            return
        if "frame" not in announcement or "cameras" not in announcement:
            self._wake.set()  # ingest could not render it: read it from the database
            return
        # Straight from the announcement, no database read, in seq order (_drain).
        self._announced_rows[seq] = Row(
            seq, announcement["building"], Frame(announcement["frame"]), announcement["cameras"]
        )
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain())
            self._tasks.append(self._draining)
            self._draining.add_done_callback(self._tasks.remove)

    # --- Notices: no seq, live sockets only ----------------------------------------------

    def _acked(self, notice: dict) -> None:
        # A socket below the seq hasn't got the event yet; its event frame comes later.
        seq, building = notice["seq"], notice["building"]
        self._notify(
            Frame(notice["frame"]),
            lambda sock: sock.cursor >= seq and in_scope(sock.alarm_scope, building),
        )

    def _incident_changed(self, notice: dict) -> None:
        payload = notice["incident"]
        frame = Frame(encode({"type": "incident", "incident": payload}))
        self._notify(
            frame,
            lambda sock: sock.incident_scope is not None and sock.incident_scope.covers(payload),
        )

    def _to_users(self, notice: dict) -> None:
        users = set(notice["users"])
        self._notify(Frame(notice["frame"]), lambda sock: sock.user_id in users)

    def _camera_offline(self, notice: dict) -> None:
        camera = notice["camera"]
        self._notify(Frame(notice["frame"]), lambda sock: in_scope(sock.camera_scope, camera))

    def _notify(self, frame: Frame, audience: Callable[[Socket], bool]) -> None:
        task = asyncio.create_task(self._notice_write(frame, audience))
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    async def _notice_write(self, frame: Frame, audience: Callable[[Socket], bool]) -> None:
        # Behind any event delivery under way: an ack never overtakes its event's frame.
        async with self._delivery:
            for sock in [s for s in self.sockets if s.live and audience(s)]:
                await sock.write([frame])

    # --- Access -------------------------------------------------------------------

    def recheck(self, user_ids: Iterable[int] | None) -> None:
        users = None if user_ids is None else set(user_ids)
        sockets = [s for s in self.sockets if users is None or s.user_id in users]
        if sockets:
            task = asyncio.create_task(self._recheck(sockets))
            self._tasks.append(task)
            task.add_done_callback(self._tasks.remove)

    async def _recheck(self, sockets: list[Socket]) -> None:
        by_session: dict[str | None, list[Socket]] = defaultdict(list)
        for sock in sockets:
            by_session[sock.session_key].append(sock)
        for session_key, group in by_session.items():
            try:
                access = await database_sync_to_async(fresh_access)(session_key)
            except Exception:
                # No verdict: those sockets close (4503) and their clients reconnect, checked
                # afresh. A failure must not spare the rest of the batch its re-check.
                logger.exception("Could not re-check a socket's session; closing it")
                access = None
            for sock in group:
                if sock not in self.sockets:
                    continue
                try:
                    await sock.apply(access)
                except Exception:
                    logger.exception("Could not apply a re-check to a socket; dropping it")
                    self.discard(sock)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            for sock in list(self.sockets):
                await sock.write([PING])

    async def _recheck_every(self) -> None:
        # The safety net for what no signal announces: bulk updates, missed notices,
        # deleted sessions.
        while True:
            await asyncio.sleep(settings.SOCKET_RECHECK_SECONDS)
            self.recheck(None)


class Row:
    """An event's frame naming all its door's cameras, and the same narrowed to fewer."""

    __slots__ = ("seq", "building_id", "frame", "cameras", "_narrowed")

    def __init__(
        self, seq: int, building_id: int | None, frame: Frame, cameras: Iterable[int]
    ) -> None:
        self.seq, self.building_id, self.frame = seq, building_id, frame
        self.cameras = tuple(cameras)
        self._narrowed: dict[tuple[int, ...], Frame] = {}

    def frame_for(self, cameras: CameraScope) -> Frame:
        if cameras is EVERYWHERE or cameras.issuperset(self.cameras):
            return self.frame
        visible = tuple(camera for camera in self.cameras if camera in cameras)
        frame = self._narrowed.get(visible)
        if frame is None:
            message = json.loads(self.frame.text)
            message["event"]["cameras"] = list(visible)
            frame = self._narrowed[visible] = Frame(encode(message))
        return frame


def _frames(rows: list[Row], scope: AlarmScope, cameras: CameraScope) -> list[Frame]:
    return [row.frame_for(cameras) for row in rows if in_scope(scope, row.building_id)]


# --- One fan-out per event loop (daphne runs one; each test gets its own) -------------

_fanouts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Fanout] = (
    weakref.WeakKeyDictionary()
)
_lock: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


async def join(sock: Socket) -> Fanout:
    """Register the socket, starting this process's fan-out if it is the first."""
    loop = asyncio.get_running_loop()
    async with _lock.setdefault(loop, asyncio.Lock()):
        fanout = _fanouts.get(loop)
        if fanout is None:
            fanout = Fanout()
            await fanout.start()
            _fanouts[loop] = fanout
        fanout.add(sock)
        sock.cursor = fanout.head
        return fanout


async def leave(sock: Socket) -> None:
    loop = asyncio.get_running_loop()
    async with _lock.setdefault(loop, asyncio.Lock()):
        fanout = _fanouts.get(loop)
        if fanout is None:
            return
        fanout.discard(sock)
        if not fanout.sockets:
            # No sockets, no subscriber: idle processes (and finished tests) hold nothing.
            del _fanouts[loop]
            await fanout.stop()


# --- Database helpers (run in the thread of database_sync_to_async) -------------------


def stored_head() -> int:
    return Event.objects.aggregate(head=Max("seq"))["head"] or 0


def stored_after(after: int, limit: int) -> list[Row]:
    return _rows(Event.objects.filter(seq__gt=after), limit)


def stored_between(after: int, upto: int) -> list[Row]:
    return _rows(Event.objects.filter(seq__gt=after, seq__lte=upto), upto - after)


def _rows(stored: EventQuerySet, limit: int) -> list[Row]:
    # Every camera of each door: the fan-out narrows the frame per scope group.
    events = list(with_payload_relations(stored)[:limit])
    return [
        Row(
            event.seq,
            event.door and event.door.building_id,
            _event_frame(event, payload),
            payload["cameras"],
        )
        for event, payload in zip(events, event_payloads(events), strict=True)
    ]


def replay(user: User, after: int, upto: int, limit: int) -> tuple[list[Frame], int]:
    """The user's frames in (after, upto], and the seq they reach."""
    visible = Event.objects.visible_to(user).filter(seq__gt=after, seq__lte=upto)
    events = list(with_payload_relations(visible, viewer=user)[:limit])
    frames = [_event_frame(e, p) for e, p in zip(events, event_payloads(events), strict=True)]
    return frames, events[-1].seq if len(events) == limit else upto


def beyond_window(user: User, after: int) -> bool:
    """Too far back to replay: the client reloads over REST instead."""
    if after > stored_head():
        return True  # a seq from another database (restored, rebuilt): start afresh
    missed = Event.objects.visible_to(user).filter(seq__gt=after)
    oldest = missed.values_list("received_at", flat=True).first()
    if oldest and timezone.now() - oldest > timedelta(hours=REPLAY_MAX_HOURS):
        return True
    return missed[REPLAY_MAX_EVENTS : REPLAY_MAX_EVENTS + 1].exists()


def fresh_access(session_key: str | None) -> Access:
    # A fresh session object: the socket's one may hold a stale copy of the row.
    return session_access(import_module(settings.SESSION_ENGINE).SessionStore(session_key))


def _event_frame(event: Event, payload: dict) -> Frame:
    return Frame(encode({"type": "event", "seq": event.seq, "event": payload}))
