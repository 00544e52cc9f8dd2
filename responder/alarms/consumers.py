"""`/ws/events`: the alarm feed.

Client → server: the last seq seen as `/ws/events?after=N` (the replay starts at the accept),
or optionally first `{"type": "resume", "after": N}`; at any time `{"type": "ping"}`,
answered `{"type": "pong"}` at once (the PWA's probe of its link).
Server → client: `{"type": "event", "seq": N, "event": {...}}` in seq order, each once
(the event's `cameras`: only those of its door the user may watch);
`{"type": "live", "seq": N}` once the replay is done (everything up to N sent);
`{"type": "reset", "seq": N}` when the client must reload over REST (resumed from too far
back, its scope shrank, or its resume came after the socket had gone live without one and
it missed events), live from N on; `{"type": "ping"}` every 5 s (daphne also
pings at the protocol level after 20 s of client silence and drops a peer silent for 30 s).
Notices, without a seq, only after `live`, not replayed (REST has the same facts):
`{"type": "ack", "seq": N, "event": <id>, "acks": [{"user", "name", "at"}, ...]}` everyone
who has acknowledged event N so far, once the client has event N;
`{"type": "incident", "incident": {...}}` an incident the user runs or responds to changed;
`{"type": "camera", "severity": "warning", "state": "offline", "camera": {"id", "name",
"building", "floor"}, "stream": "main" | "sub", "reason": "...", "at": "..."}` a camera the
user may watch went offline;
`{"type": "warning", "kind": "...", "text": "...", "details": {...}, "at": "..."}` to
district IT only: something they must act on (responder.core.announce.it_warn). Shapes: the TypedDicts in responder/alarms/events.py.
Close codes: 4401 not signed in / no verified second factor / disabled / signed out /
session ended (the PWA asks to sign in again), 4403 Origin not allowed, 4404 no alarms in the
user's scope (or revoked) (neither retried at once), 4503 the server could not check the
session (the PWA reconnects, and is checked afresh).

A socket's right to alarms is checked at connect and again: at once when a grant,
membership, password, device or sign-out says so (responder/alarms/scope_notices.py), at the moment its
session or a grant runs out, and every SOCKET_RECHECK_SECONDS for what nothing announces (a
deleted session). Idle rule: the socket's own traffic is not activity. The session is the
HTTP session (responder.core.middleware.session_valid_until): it ends SESSION_IDLE_MINUTES after
its last HTTP request, and at SESSION_MAX_HOURS in any case. The browser drops the cookie
when the session idles out, so a socket kept alive by its traffic could not reconnect nor
load anything: a tablet that only watches the feed keeps its session with REST requests,
or signs in again after 4401.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils import timezone
from django.utils.http import is_same_domain

from responder.alarms import fanout
from responder.alarms.events import EVERYWHERE, Access, AlarmScope, CameraScope, CloseCode
from responder.alarms.wire import Frame, direct_writer
from responder.core.announce import encode

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from responder.alarms.fanout import Fanout
    from responder.incidents.services import IncidentScope

# A client that resumes sends `resume` first; one that doesn't starts live after this.
RESUME_WAIT_SECONDS = 0.5
# A connect's reads (its access, its replay) in threads of their own, on connections of the
# pool (DB_POOL_SIZE), not queued on the process's one thread for database work: when a
# daphne dies, hundreds of its tablets reconnect to the others within a second or two.
connect_reads = partial(database_sync_to_async, thread_sensitive=False)
PONG = json.dumps({"type": "pong"})
# A client sends only `ping` and `resume`, a few dozen bytes. Anything longer is ignored
# unread: parsing a deep one would raise RecursionError in the socket's task.
MAX_CLIENT_FRAME = 1024


class EventsConsumer(AsyncJsonWebsocketConsumer):
    # Frames come from the process's fan-out, not the channel layer: no channel per socket.
    channel_layer_alias = "none"
    _direct: Callable[[bytes], bool] | None = None
    fanout: fanout.Fanout | None = None  # set once joined
    _recheck_timer: asyncio.TimerHandle | None = None
    # Set by _take (and cursor by the fan-out's join) before anything reads them.
    user: User
    user_id: int
    alarm_scope: AlarmScope
    incident_scope: IncidentScope | None
    camera_scope: CameraScope
    is_it: bool
    cursor: int

    async def connect(self) -> None:
        self.session_key: str | None = self.scope["session"].session_key
        self.live = self._started = False
        self._live_from: int | None = None  # the seq a start without a resume went live at
        self._timers: list[asyncio.TimerHandle] = []
        access = await connect_reads(fanout.fresh_access)(self.session_key)
        if access.close_code:
            # Accept first: a handshake refused before accepting carries no code.
            await self.accept()
            await self.close(int(access.close_code))
            return
        self._take(access)
        self._direct = direct_writer(self.base_send)
        self.fanout = await fanout.join(self)
        await self.accept()
        after = _resumed_after(self.scope)
        if after is not None:
            await self._start(after)
            return
        self._after(RESUME_WAIT_SECONDS, lambda: asyncio.ensure_future(self._start(None)))

    async def disconnect(self, code: int) -> None:
        for timer in [*self._timers, self._recheck_timer]:
            if timer is not None:
                timer.cancel()
        await fanout.leave(self)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if not text_data or len(text_data) > MAX_CLIENT_FRAME:
            return  # binary, or far more than a ping or a resume: nothing we could read
        try:
            message = json.loads(text_data)
        except (ValueError, RecursionError):
            return
        if isinstance(message, dict) and message.get("type") == "ping":
            # The client's own probe: a link that answers nothing within its limit is shown
            # offline at once, not after the server's 20 s heartbeat and daphne's 30 s.
            await self.base_send({"type": "websocket.send", "text": PONG})  # type: ignore[arg-type]
            return
        if isinstance(message, dict) and message.get("type") == "resume":
            after = message.get("after")
            if isinstance(after, int) and not isinstance(after, bool) and after >= 0:
                await (self._resumed_late(after) if self._started else self._start(after))
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
            # asgiref's TypedDict wants both text and bytes; ASGI itself wants either.
            await self.base_send({"type": "websocket.send", "text": frame.text})  # type: ignore[arg-type]

    async def apply(self, access: Access | None) -> None:
        """A re-check's verdict: close, or carry on with the new scope. None: no verdict."""
        code = CloseCode.UNCHECKED if access is None else access.close_code
        if code or access is None:  # code is UNCHECKED when access is None
            self.live = False
            self._joined.discard(self)
            await self.close(int(code or CloseCode.UNCHECKED))
            return
        narrowed = not _covers(access.scope, self.alarm_scope)
        self._take(access)
        if narrowed:
            if self.live:
                # The fan-out leaves a cursor behind over seqs the old scope does not see,
                # but the new one may: the REST reload must reach the head.
                self.cursor = max(self.cursor, self._joined.head)
            # The client may hold events it can no longer see: it reloads over REST.
            await self.write([Frame(encode({"type": "reset", "seq": self.cursor}))])

    # --- Start: replay, then live --------------------------------------------------

    async def _start(self, after: int | None) -> None:
        if self._started:
            return
        self._started = True
        if after is None:
            self._live_from = self.cursor
        else:
            if await connect_reads(fanout.beyond_window)(self.user, after):
                self.cursor = max(self.cursor, self._joined.head)
                await self.write([Frame(encode({"type": "reset", "seq": self.cursor}))])
            else:
                self.cursor = after
        while self.cursor < self._joined.head:
            recent = await self._joined.recent_or_read(
                self.cursor, self.alarm_scope, self.camera_scope
            )
            if recent is not None:
                frames, self.cursor = recent, self._joined.head
            else:
                frames, self.cursor = await connect_reads(fanout.replay)(
                    self.user, self.cursor, self._joined.head, fanout.BATCH
                )
            await self.write(frames)
        # No await since the loop's last check: the fan-out serves everything above cursor.
        self.live = True
        await self.write([Frame(encode({"type": "live", "seq": self.cursor}))])

    async def _resumed_late(self, after: int) -> None:
        """A resume that came after the start without one (a busy server or link took longer
        than RESUME_WAIT_SECONDS): what the client missed up to the start was not replayed,
        and cannot be now in seq order, so it reloads over REST."""
        live_from, self._live_from = self._live_from, None  # one answer to late resumes
        if live_from is None or after >= live_from:
            return
        missed, _ = await connect_reads(fanout.replay)(self.user, after, live_from, 1)
        if missed:
            await self.write([Frame(encode({"type": "reset", "seq": self.cursor}))])

    @property
    def _joined(self) -> Fanout:
        """The fan-out, for what only runs once `connect` has joined it."""
        assert self.fanout is not None
        return self.fanout

    def _take(self, access: Access) -> None:
        assert access.user is not None  # an Access without a close code names its user
        self.user, self.user_id, self.alarm_scope = access.user, access.user.pk, access.scope
        self.incident_scope, self.camera_scope = access.incidents, access.cameras
        self.is_it = access.it
        if self.fanout is not None:
            self.fanout.regroup()
        if self._recheck_timer is not None:
            self._recheck_timer.cancel()  # one timer: every re-check schedules the next
            self._recheck_timer = None
        if access.recheck_at:
            seconds = _seconds_until(access.recheck_at)
            self._recheck_timer = asyncio.get_running_loop().call_later(seconds, self._recheck_me)

    def _recheck_me(self) -> None:
        if self.fanout is not None:
            self.fanout.recheck([self.user_id])

    def _after(self, seconds: float, callback: Callable[[], object]) -> None:
        self._timers.append(asyncio.get_running_loop().call_later(seconds, callback))


def _resumed_after(scope: Any) -> int | None:
    """`?after=N`: the resume in the URL, so the replay needs no message after the accept
    (a busy daphne or a slow link took that message past RESUME_WAIT_SECONDS, and the
    client reloaded everything over REST)."""
    values = parse_qs(scope.get("query_string", b"").decode("latin1")).get("after", [])
    if (
        len(values) != 1
        or not (values[0].isascii() and values[0].isdigit())
        or len(values[0]) > 18
    ):
        return None
    return int(values[0])


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
        await self.close(int(CloseCode.BAD_ORIGIN))


class AllowedOriginValidator:
    """Sockets from the site's own origins only; others are closed with 4403."""

    # ASGI's application, scope, receive and send, passed through untouched.
    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await OriginDenier()(scope, receive, send)


def origin_allowed(scope: dict) -> bool:
    """As Django's CSRF check of an Origin: scheme, host and port equal to the request's own
    (its Host on ALLOWED_HOSTS, https when the proxy says so), to SITE_URL's, or to one of
    CSRF_TRUSTED_ORIGINS (`https://*.example.org`: its subdomains)."""
    headers = dict(scope.get("headers", []))
    origin = headers.get(b"origin", b"").decode("latin1")
    if not origin or origin == "null":
        return False
    host = headers.get(b"host", b"").decode("latin1")
    domain, _ = split_domain_port(host)
    own = f"{_scheme(scope, headers)}://{host}"
    if domain and validate_host(domain, settings.ALLOWED_HOSTS) and origin == own:
        return True
    trusted = [*settings.CSRF_TRUSTED_ORIGINS, settings.SITE_URL]
    if origin in {_origin_of(url) for url in trusted if "*" not in url}:
        return True
    parsed = urlsplit(origin)
    return any(
        urlsplit(url).scheme == parsed.scheme
        and is_same_domain(parsed.netloc, urlsplit(url).netloc.split("*", 1)[1])
        for url in trusted
        if "*" in url
    )


def _scheme(scope: dict, headers: dict[bytes, bytes]) -> str:
    # As HttpRequest.is_secure(): TLS ends at the proxy, which says so in a header.
    if scope.get("scheme") in ("wss", "https"):
        return "https"
    if settings.SECURE_PROXY_SSL_HEADER:
        name, secure = settings.SECURE_PROXY_SSL_HEADER
        header = name.removeprefix("HTTP_").lower().replace("_", "-").encode()
        if headers.get(header, b"").decode("latin1").split(",", 1)[0].strip() == secure:
            return "https"
    return "http"


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
