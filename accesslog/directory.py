"""What ingest reads for every event, held per process: access systems by slug, mapped
doors with their building and cameras, the enabled incident rules.

Read from the database they were half the CPU of an ingest (docs/BENCHMARKS.md), and
they change rarely. Every change sets a new version token in Redis, by signal: at once
(for the transaction making it) and again at its commit (for every process). Each ingest
reads the token (one GET) and drops what the process holds when it moved. Without Redis,
or past MAX_AGE_SECONDS (a change no signal saw: a bulk update), it reads the database.
"""

from __future__ import annotations

import logging
import secrets
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


@dataclass
class Directory:
    version: bytes | None
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
    version = _version()
    if (
        version is None
        or version != _held.version
        or time.monotonic() - _held.loaded_at > MAX_AGE_SECONDS
    ):
        _held = Directory(version)
        if version is None:
            return _held  # Redis is out: filled for this request only, replaced by the next
    return _held


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
        quick_redis(settings.REDIS_URL).set(VERSION_KEY, secrets.token_hex(8))
    except redis.RedisError as error:
        # Every process reads the database again within MAX_AGE_SECONDS anyway.
        logger.warning("Could not announce a directory change (%s)", error)
