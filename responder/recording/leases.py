"""Which recorder records which camera: Redis leases, renewed while held.

A lease is `recording:lease:<camera>` = the recorder's name, set NX with a TTL; only its
holder renews or deletes it (compare-and-set in Lua, atomic in Redis). A recorder killed
stops renewing, so its cameras are free after one TTL. Live recorders keep a heartbeat in
one sorted set, so each can compute its fair share of the cameras.

A Keeper thread renews them on its own clock, so a recorder busy indexing, scanning or
recovering files never loses a lease it is using; only a dead or stalled process does.
Each Claim knows until when (this process's monotonic clock) the lease is surely its own,
and a capture stops writing before then unless it is renewed (fencing).

Beside each lease, `recording:held:<camera>` names its holder with no TTL and goes only with
a lease given back: a claim that finds it naming a recorder tells a lease that lapsed (its
holder was killed or stalled) from a camera released or never recorded.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import cast

import redis

PREFIX = "recording:lease:"
HELD = "recording:held:"
RECORDERS = "recording:recorders"

log = logging.getLogger("responder.recording")

# Renew (or delete) only a lease this recorder still holds.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1], KEYS[2])
end
return 0
"""
# Claim a free lease and say who held it last without giving it back ('' if nobody).
_CLAIM = """
if not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return false
end
local lapsed = redis.call('get', KEYS[2]) or ''
redis.call('set', KEYS[2], ARGV[1])
return lapsed
"""


@dataclass
class Claim:
    lapsed_from: str  # the recorder whose lease lapsed, '' if the camera was given back
    # time.monotonic() before which Redis cannot have let the lease go: the time the claim
    # (or the last renewal that held) was sent, plus the TTL. 0 once the lease is known lost.
    until: float = math.inf

    def held(self, margin: float = 0.0) -> bool:
        return time.monotonic() < self.until - margin


class Leases:
    def __init__(self, client: redis.Redis, name: str, *, ttl: float) -> None:
        self.client, self.name, self.ttl_ms = client, name, int(ttl * 1000)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._claim = client.register_script(_CLAIM)

    def heartbeat(self) -> int:
        """Say this recorder is alive; the number of live recorders."""
        now = time.time() * 1000
        pipe = self.client.pipeline()
        pipe.zadd(RECORDERS, {self.name: now + self.ttl_ms})
        pipe.zremrangebyscore(RECORDERS, "-inf", now)
        pipe.zcard(RECORDERS)
        return max(1, pipe.execute()[-1])

    def leave(self) -> None:
        self.client.zrem(RECORDERS, self.name)

    def alive(self) -> set[str]:
        # str: the client decodes answers (core.redis); redis-py's types cannot say so.
        return set(
            cast("list[str]", self.client.zrangebyscore(RECORDERS, time.time() * 1000, "+inf"))
        )

    def claim(self, camera_id: int) -> Claim | None:
        """The camera's lease if it is free; None if another recorder holds it."""
        sent = time.monotonic()
        lapsed = self._claim(keys=_keys(camera_id), args=[self.name, self.ttl_ms])
        return None if lapsed is None else Claim(cast("str", lapsed), sent + self.ttl_ms / 1000)

    def renew(self, camera_ids: list[int]) -> set[int]:
        """The cameras whose lease this recorder still holds, renewed."""
        if not camera_ids:
            return set()
        pipe = self.client.pipeline(transaction=False)
        for camera_id in camera_ids:
            self._renew(keys=[PREFIX + str(camera_id)], args=[self.name, self.ttl_ms], client=pipe)
        return {c for c, held in zip(camera_ids, pipe.execute(), strict=True) if held}

    def release(self, camera_id: int) -> None:
        self._release(keys=_keys(camera_id), args=[self.name])

    def holder(self, camera_id: int) -> str | None:
        return cast("str | None", self.client.get(PREFIX + str(camera_id)))


class Keeper(threading.Thread):
    """Renews the leases in `held` every `every` seconds, whatever else the process does.

    A thread of its own because the recorder's main thread can be held up for longer than a
    lease (indexing a burst of segments, recovering a killed recorder's files, 150 capture
    threads contending for the GIL): renewing there lost busy recorders their own cameras.
    The keeper does one round trip per round and nothing else, so it needs the GIL for
    about a millisecond every `every` seconds.
    """

    def __init__(self, leases: Leases, *, every: float) -> None:
        super().__init__(name="lease-keeper", daemon=True)
        self.leases, self.every = leases, every
        self.held: dict[int, Claim] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def keep(self, camera_id: int, claim: Claim) -> None:
        with self.lock:
            self.held[camera_id] = claim

    def forget(self, camera_id: int) -> None:
        with self.lock:
            self.held.pop(camera_id, None)

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                self.renew()
            except Exception:  # Redis away: try again next round; captures fence themselves
                log.exception("recorder %s: leases not renewed", self.leases.name)

    def renew(self) -> None:
        with self.lock:
            held = dict(self.held)
        sent = time.monotonic()
        renewed = self.leases.renew(list(held))
        until = sent + self.leases.ttl_ms / 1000
        for camera_id, claim in held.items():
            # A claim lost stays lost: only a new claim makes the camera ours again.
            claim.until = until if camera_id in renewed and claim.until else 0.0
        self.leases.heartbeat()


def _keys(camera_id: int) -> list[str]:
    return [PREFIX + str(camera_id), HELD + str(camera_id)]


def fair_share(cameras: int, recorders: int) -> int:
    return math.ceil(cameras / max(1, recorders))
