"""What ingest reads for every event, held per process: access systems by slug, mapped
doors with their building and cameras, the enabled incident rules.

Read from the database they were half the CPU of an ingest (docs/BENCHMARKS.md), and
they change rarely. Every change sets a new version token in Redis and publishes it, by
signal: at once (for the transaction making it) and again at its commit (for every
process). A thread per process listens (`Watch`): while it is subscribed, an ingest
trusts what the process holds until a message comes, and asks Redis nothing; otherwise
(the watch starting, or Redis away) each ingest reads the token (one GET) and drops what
the process holds when it moved. Without Redis, or past MAX_AGE_SECONDS (a change no
signal saw: a bulk update), it reads the database.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import cast

import redis
from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accesslog.models import AccessSystem, Door, DoorCamera
from maps.models import Building
from responder.core.models import IncidentRule
from responder.core.redis import quick_redis

logger = logging.getLogger(__name__)

MAX_AGE_SECONDS = 60.0
VERSION_KEY = "responder.directory"
# A silent watch is pinged this often; unanswered for as long, it is dropped and renewed.
PING_SECONDS = 5.0


@dataclass
class Directory:
    version: bytes | None
    generation: int = -1  # the watch's, when the version was read
    loaded_at: float = field(default_factory=time.monotonic)
    systems: dict[str, AccessSystem] = field(default_factory=dict)
    doors: dict[tuple[int, str], Door] = field(default_factory=dict)
    rules: list[IncidentRule] | None = None

    def access_system(self, slug: str) -> AccessSystem | None:
        if slug not in self.systems:
            system = AccessSystem.objects.filter(slug=slug).first()
            if system is None:
                return None
            self.systems[slug] = system
        return self.systems[slug]

    def door(self, system: AccessSystem, external_id: str) -> Door | None:
        """The mapped door; an unknown one is looked up each time (IT may map it now)."""
        key = (system.pk, external_id)
        if key not in self.doors:
            door = (
                # The campus and floor: the event's payload names them (rendering.py).
                Door.objects.select_related("building__campus", "floor")
                .prefetch_related("door_cameras")
                .filter(system=system, external_id=external_id)
                .first()
            )
            if door is None:
                return None
            self.doors[key] = door
        return self.doors[key]

    def incident_rules(self) -> list[IncidentRule]:
        if self.rules is None:
            self.rules = list(IncidentRule.objects.filter(enabled=True))
        return self.rules


_held = Directory(version=None)


def directory() -> Directory:
    """The process's directory if it is current, else a fresh one to fill.

    Shared by the threads of a process: entries are only ever added, and a stale
    directory is replaced whole, never emptied under a reader.
    """
    global _held
    held, generation = _held, watch().generation  # read before the version: a change
    fresh = time.monotonic() - held.loaded_at <= MAX_AGE_SECONDS  # heard after it counts
    if generation is not None and held.generation == generation and fresh:
        return held  # nothing published since its version was read: no round trip
    version = _version()
    if version is None or version != held.version or not fresh:
        _held = Directory(version, -1 if generation is None else generation)
        return _held  # without Redis: filled for this request only, replaced by the next
    held.generation = -1 if generation is None else generation
    return held


@receiver([post_save, post_delete], sender=AccessSystem)
@receiver([post_save, post_delete], sender=Door)
@receiver([post_save, post_delete], sender=DoorCamera)
@receiver([post_save, post_delete], sender=Building)
@receiver([post_save, post_delete], sender=IncidentRule)
def directory_changed(**_: object) -> None:
    """A system, door, door's camera, building or rule was saved or deleted."""
    global _held
    _held = Directory(version=None)
    _bump()  # this transaction's own later ingests
    transaction.on_commit(_bump)  # every process, once the change is visible to them


def _version() -> bytes | None:
    try:
        client = quick_redis(settings.REDIS_URL)
        version = client.get(VERSION_KEY)
        if version is None:  # never set, or Redis restarted: a token no process holds
            client.set(VERSION_KEY, secrets.token_hex(8), nx=True)
            version = client.get(VERSION_KEY)
        return cast(bytes | None, version)  # quick_redis answers bytes (no decoding)
    except redis.RedisError:
        return None


def _bump() -> None:
    try:
        pipe = quick_redis(settings.REDIS_URL).pipeline(transaction=True)
        pipe.set(VERSION_KEY, secrets.token_hex(8))
        pipe.publish(_channel(settings.REDIS_URL), b"1")
        pipe.execute()
    except redis.RedisError as error:
        # Every process reads the database again within MAX_AGE_SECONDS anyway.
        logger.warning("Could not announce a directory change (%s)", error)


def _channel(url: str) -> str:
    # Pub/sub ignores Redis db numbers: name the db, as the version's key is per db.
    return f"{VERSION_KEY}.{redis.connection.parse_url(url).get('db', 0)}"


class Watch:
    """A daemon thread subscribed to the directory's changes, one per process and URL.

    `generation` moves on every message and every (re)subscription, and is None while
    not subscribed: a directory read at generation g is current while it stays g. A
    link that goes silent is pinged, and dropped when no answer comes; a change made
    while no watch listened is found by the GET that every ingest makes meanwhile.
    """

    def __init__(self, url: str) -> None:
        self.url, self.pid = url, os.getpid()
        self.name = f"{VERSION_KEY}.watch.{self.pid}"  # in CLIENT LIST
        self.generation: int | None = None
        self._count = 0

    def start(self) -> Watch:
        threading.Thread(target=self._run, name="directory-watch", daemon=True).start()
        return self

    def _run(self) -> None:
        while True:  # for the process's life (a fork's child starts its own)
            try:
                self._listen()
            except (redis.RedisError, OSError) as error:
                if self.generation is not None:  # once per loss, not per failed retry
                    logger.info("Directory watch lost (%s); ingests read the version", error)
            self.generation = None
            time.sleep(1)

    def _listen(self) -> None:
        client = redis.Redis.from_url(
            self.url, socket_connect_timeout=2, socket_timeout=None, client_name=self.name
        )
        with client, client.pubsub() as pubsub:
            pubsub.subscribe(_channel(self.url))
            pinged = False
            while True:
                message = pubsub.get_message(timeout=PING_SECONDS)
                if message is None:
                    if pinged:
                        raise redis.ConnectionError(f"no answer to a ping in {PING_SECONDS} s")
                    pubsub.ping()
                    pinged = True
                    continue
                pinged = False
                if message["type"] in ("subscribe", "message"):
                    self._count += 1  # a change, or listening from now on: read anew
                    self.generation = self._count


_watches: dict[str, Watch] = {}
_watch_lock = threading.Lock()


def watch() -> Watch:
    """The process's watch of REDIS_URL, started on first use (and anew after a fork)."""
    url = settings.REDIS_URL
    current = _watches.get(url)
    if current is None or current.pid != os.getpid():
        with _watch_lock:
            current = _watches.get(url)
            if current is None or current.pid != os.getpid():
                current = _watches[url] = Watch(url).start()
    return current
