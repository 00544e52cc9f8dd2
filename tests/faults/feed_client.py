"""A tablet's alarm feed, as frontend/src/feed.js runs it: resume from the last seq seen,
reconnect after the PWA's own backoff (frontend/src/link.js, run by node), call a link dead
after the PWA's silence, reload over REST on `reset`, keep each event once."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import websockets

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
# As feed.js's reset: the list is reloaded from this many seqs before the reset's one.
RESET_RELOAD = 1000


def pwa_link(expression: str) -> object:
    """The value of `expression` over frontend/src/link.js's exports, computed by node."""
    script = (
        "import('./src/link.js').then(({ reconnectDelay, SILENT_LIMIT }) => "
        f"console.log(JSON.stringify({expression})))"
    )
    result = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        cwd=FRONTEND,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def pwa_reconnect_delays(attempt: int, count: int) -> list[float]:
    """`count` waits (seconds) the PWA's rule draws before reconnect number `attempt`."""
    return pwa_link(f"Array.from({{ length: {count} }}, () => reconnectDelay({attempt}))")


def pwa_silent_limit() -> float:
    """Seconds without a frame after which the PWA calls its link dead."""
    return pwa_link("SILENT_LIMIT") / 1000


class FeedClient:
    """Holds one socket at a time to ws://host:port/ws/events (wss with `tls`); on a close,
    a failed connect or `silent_limit` seconds without a frame, waits `backoff(attempt)`
    seconds (attempt 0 first, back to 0 once live, as the PWA counts) and resumes after its
    last seq. On `reset` it reloads its list over REST from the same address."""

    def __init__(
        self,
        port: int,
        cookie: str,
        backoff: Callable[[int], float] | None = None,
        *,
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
        silent_limit: float | None = None,
        note: Callable[[str, int | None], None] | None = None,
    ) -> None:
        self.host, self.port, self.cookie, self.tls = host, port, cookie, tls
        self.backoff = backoff or (lambda attempt: 1.0)
        self.silent_limit = silent_limit
        self.note = note or (lambda what, seq: None)  # each happening, as it happens
        self.attempt = 0
        self.seqs: list[int] = []
        self.tried: list[float] = []  # when each connect began (time.monotonic)
        self.due: list[float] = []  # when each reconnect was due: its loss plus the wait drawn
        self.opened: list[float] = []  # when each socket was opened
        self.lost: list[float] = []  # when each was found closed, or called dead
        self.resets: list[int] = []  # the seq of each `reset` answered
        self.closes: list[int | None] = []  # each socket's close code (None: none came)
        self.live = asyncio.Event()
        self.grew = asyncio.Event()  # set when `seqs` changes
        self.task: asyncio.Task | None = None
        self.ws: websockets.ClientConnection | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.ws is not None:
            self.ws.transport.abort()

    async def has(self, seq: int, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while not (self.seqs and self.seqs[-1] >= seq):
            self.grew.clear()
            try:
                await asyncio.wait_for(self.grew.wait(), deadline - time.monotonic())
            except TimeoutError:
                return False
        return True

    async def _run(self) -> None:
        while True:
            try:
                await self._session()
            except websockets.ConnectionClosed as closed:
                self.closes.append(closed.rcvd.code if closed.rcvd else None)
            except (OSError, websockets.WebSocketException, TimeoutError):
                self.closes.append(None)
            self.lost.append(time.monotonic())
            self.note("lost", None)
            self.live.clear()
            wait = self.backoff(self.attempt)
            self.due.append(time.monotonic() + wait)
            await asyncio.sleep(wait)
            self.attempt += 1

    @property
    def origin(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    async def _session(self) -> None:
        # The last seq in the URL: the server replays from it at the accept. feed.js still
        # says it only in the message below, which a busy daphne may read too late (then a
        # `reset`, a reload over REST: docs/RELIABILITY.md, the daphne kill).
        after = self.seqs[-1] if self.seqs else 0
        url = f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}/ws/events?after={after}"
        self.tried.append(time.monotonic())
        headers = {"Origin": self.origin, "Cookie": self.cookie}
        # As a browser: no protocol pings of our own, and no deadline on the handshake (the
        # PWA's silence watch starts once the socket is open); a busy daphne answers late.
        ws = await websockets.connect(
            url, additional_headers=headers, open_timeout=None, ping_interval=None, ssl=self.tls
        )
        self.ws = ws
        try:
            self.opened.append(time.monotonic())
            self.note("opened", None)
            await ws.send(json.dumps({"type": "resume", "after": after}))  # as feed.js
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), self.silent_limit))
                if frame["type"] == "event":
                    self.seqs.append(frame["seq"])
                    self.grew.set()
                    self.note("event", frame["seq"])
                elif frame["type"] == "live":
                    self.attempt = 0
                    self.live.set()
                    self.note("live", frame["seq"])
                elif frame["type"] == "reset":
                    await self._reload(frame["seq"])
        finally:
            # A dead link never finishes a closing handshake: drop it, as a browser does.
            ws.transport.abort()

    async def _reload(self, seq: int) -> None:
        """As feed.js's `reset`: what is held may be stale, the list is what REST has up to
        `seq` (the socket goes on above it). Frames that come meanwhile wait unread, so the
        order holds. A failed load drops the socket (an OSError), and the next one resumes
        from the list as it was; feed.js keeps an emptied list then."""
        loaded = await asyncio.to_thread(self._events_until, max(0, seq - RESET_RELOAD), seq)
        self.seqs = loaded
        self.grew.set()
        self.resets.append(seq)
        self.note("reset", seq)

    def _events_until(self, after: int, upto: int) -> list[int]:
        seqs: list[int] = []
        path: str | None = f"/api/v1/events/?after={after}&limit=500"
        while path:
            request = urllib.request.Request(self.origin + path, headers={"Cookie": self.cookie})
            with urllib.request.urlopen(request, timeout=30, context=self.tls) as response:
                body = json.load(response)
            seqs += [record["seq"] for record in body["results"] if record["seq"] <= upto]
            path = body["next"] if body["next"] and body["last_seq"] < upto else None
        return seqs
