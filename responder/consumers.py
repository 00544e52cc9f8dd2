"""`/ws/events`: the alarm feed.

Client → server: optionally first `{"type": "resume", "after": <last seq seen>}`.
Server → client: `{"type": "event", "seq": N, "event": {...}}` in seq order, each once;
`{"type": "live", "seq": N}` once the replay is done (everything up to N sent);
`{"type": "reset", "seq": N}` when the client must reload over REST (resumed from too far
back, or its scope shrank), live from N on; `{"type": "ping"}` every 20 s (daphne also
pings at the protocol level after 20 s of client silence and drops a peer silent for 30 s).
Notices, without a seq, only after `live`, not replayed (REST has the same facts):
`{"type": "ack", "seq": N, "event": <id>, "acks": [{"user", "name", "at"}, ...]}` everyone
who has acknowledged event N so far, once the client has event N;
`{"type": "incident", "incident": {...}}` an incident the user runs or responds to changed;
`{"type": "camera", "severity": "warning", "state": "offline", "camera": {"id", "name",
"building", "floor"}, "stream": "main" | "sub", "reason": "...", "at": "..."}` a camera the
user may watch went offline;
`{"type": "warning", "kind": "...", "text": "...", "details": {...}, "at": "..."}` to
district IT only: something they must act on (responder.events.it_warn). Shapes: the TypedDicts in responder/events.py.
Close codes: 4401 not signed in / no verified second factor / disabled / signed out,
4403 Origin not allowed, 4404 no alarms in the user's scope (or revoked).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlparse

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.utils import timezone

from responder import fanout
from responder.events import EVERYWHERE, Access, AlarmScope, CloseCode, encode
from responder.wire import Frame, direct_writer

# A client that resumes sends `resume` first; one that doesn't starts live after this.
RESUME_WAIT_SECONDS = 0.5


class EventsConsumer(AsyncJsonWebsocketConsumer):
    # Frames come from the process's fan-out, not the channel layer: no channel per socket.
    channel_layer_alias = "none"
    _direct: Callable[[bytes], bool] | None = None
    fanout: fanout.Fanout | None = None  # set once joined

    async def connect(self) -> None:
        self.session_key: str | None = self.scope["session"].session_key
        self.live = self._started = False
        self._timers: list[asyncio.TimerHandle] = []
        access = await database_sync_to_async(fanout.fresh_access)(self.session_key)
        if access.close_code:
            # Accept first: a handshake refused before accepting carries no code.
            await self.accept()
            await self.close(access.close_code)
            return
        self._take(access)
        self._direct = direct_writer(self.base_send)
        self.fanout = await fanout.join(self)
        await self.accept()
        self._after(RESUME_WAIT_SECONDS, lambda: asyncio.ensure_future(self._start(None)))

    async def disconnect(self, code: int) -> None:
        for timer in self._timers:
            timer.cancel()
        await fanout.leave(self)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json.loads(text_data or "")
        except ValueError:
            return
        if isinstance(message, dict) and message.get("type") == "resume":
            after = message.get("after")
            if isinstance(after, int) and not isinstance(after, bool) and after >= 0:
                await self._start(after)
                return
        await self._start(None)

    # --- Called by the fan-out -------------------------------------------------------

    def send_now(self, wire: bytes) -> bool:
        """Whole frames straight to daphne's socket, if it can take them now."""
        return self._direct is not None and self._direct(wire)

    async def write(self, frames: list[Frame]) -> None:
        if self.send_now(b"".join(frame.wire for frame in frames)):
            return
        for frame in frames:
            await self.base_send({"type": "websocket.send", "text": frame.text})

    async def apply(self, access: Access) -> None:
        """A re-check's verdict: close, or carry on with the new scope."""
        if access.close_code:
            self.live = False
            self.fanout.discard(self)
            await self.close(access.close_code)
            return
        narrowed = not _covers(access.scope, self.alarm_scope)
        self._take(access)
        if narrowed:
            if self.live:
                # The fan-out leaves a cursor behind over seqs the old scope does not see,
                # but the new one may: the REST reload must reach the head.
                self.cursor = max(self.cursor, self.fanout.head)
            # The client may hold events it can no longer see: it reloads over REST.
            await self.write([Frame(encode({"type": "reset", "seq": self.cursor}))])

    # --- Start: replay, then live --------------------------------------------------

    async def _start(self, after: int | None) -> None:
        if self._started:
            return
        self._started = True
        if after is not None:
            if await database_sync_to_async(fanout.beyond_window)(self.user, after):
                self.cursor = max(self.cursor, self.fanout.head)
                await self.write([Frame(encode({"type": "reset", "seq": self.cursor}))])
            else:
                self.cursor = after
        while self.cursor < self.fanout.head:
            frames, self.cursor = await database_sync_to_async(fanout.replay)(
                self.user, self.cursor, self.fanout.head, fanout.BATCH
            )
            await self.write(frames)
        # No await since the loop's last check: the fan-out serves everything above cursor.
        self.live = True
        await self.write([Frame(encode({"type": "live", "seq": self.cursor}))])

    def _take(self, access: Access) -> None:
        self.user, self.user_id, self.alarm_scope = access.user, access.user.pk, access.scope
        self.incident_scope, self.camera_scope = access.incidents, access.cameras
        self.is_it = access.it
        if self.fanout is not None:
            self.fanout.regroup()
        if access.recheck_at:
            self._after(_seconds_until(access.recheck_at), self._recheck_me)

    def _recheck_me(self) -> None:
        self.fanout.recheck([self.user_id])

    def _after(self, seconds: float, callback: object) -> None:
        self._timers.append(asyncio.get_running_loop().call_later(seconds, callback))


def _covers(new: AlarmScope, old: AlarmScope) -> bool:
    if new is EVERYWHERE:
        return True
    return old is not EVERYWHERE and old <= new


def _seconds_until(moment: datetime) -> float:
    return max((moment - timezone.now()).total_seconds(), 0) + 0.5


# --- Origin ------------------------------------------------------------------------


class OriginDenier(AsyncWebsocketConsumer):
    channel_layer_alias = "none"

    async def connect(self) -> None:
        # channels' own denier refuses the handshake, which a browser sees as a network
        # error (1006); accepting and closing tells the PWA not to retry.
        await self.accept()
        await self.close(CloseCode.BAD_ORIGIN)


class AllowedOriginValidator(OriginValidator):
    """Origins on ALLOWED_HOSTS or CSRF_TRUSTED_ORIGINS; others closed with 4403."""

    def __init__(self, application: object) -> None:
        trusted = [origin.replace("://*.", "://.") for origin in settings.CSRF_TRUSTED_ORIGINS]
        super().__init__(application, [*settings.ALLOWED_HOSTS, *trusted])

    async def __call__(self, scope: dict, receive: object, send: object) -> None:
        origin = dict(scope.get("headers", [])).get(b"origin")
        parsed = urlparse(origin.decode("latin1")) if origin else None
        if self.valid_origin(parsed):
            return await self.application(scope, receive, send)
        return await OriginDenier()(scope, receive, send)
