"""The loop every connector runs: steps, a persistent cursor, backoff, a clean stop."""

from __future__ import annotations

import json
import logging
import random
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import Protocol

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, close_old_connections, transaction
from rest_framework.exceptions import ValidationError as DRFValidationError

from accesslog.connectors.health import health_contact, health_error, health_event
from accesslog.models import AccessSystem, ConnectorCursor, Event

log = logging.getLogger("accesslog.connectors")

Sleep = Callable[[float], object]


class TransientError(Exception):
    """The access system is unreachable, answers an error or garbage: back off, reconnect."""


class SessionExpired(TransientError):
    """The access system no longer knows our session: sign in again."""


class ConnectorStopped(Exception):
    """Raised out of a blocking read when SIGTERM or SIGINT arrives."""


@dataclass
class Backoff:
    base: float = 1.0
    cap: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2**self.attempt)
        self.attempt += 1
        # "Equal jitter": never under half the ceiling, so a failing server is not hammered,
        # while connectors restarted together (after a network outage) spread out.
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.attempt = 0


class Stopper:
    """SIGTERM/SIGINT set a flag; a read blocked on the network is interrupted at once."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._blocking = 0

    @property
    def stopped(self) -> bool:
        return self.event.is_set()

    @property
    def waiting(self) -> bool:
        """Whether the connector is blocked on the network (and a signal interrupts it)."""
        return self._blocking > 0

    def stop(self, signum: int | None = None, frame: object = None) -> None:
        self.event.set()
        # Raising from the handler is only safe while waiting on a socket; during a
        # database transaction the flag alone stops the loop after the current event.
        if self._blocking:
            raise ConnectorStopped

    @contextmanager
    def blocking(self) -> Iterator[None]:
        if self.stopped:
            raise ConnectorStopped
        self._blocking += 1
        try:
            yield
        finally:
            self._blocking -= 1

    @contextmanager
    def installed(self) -> Iterator[Stopper]:
        previous = {sig: signal.signal(sig, self.stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class Connector(Protocol):
    system: AccessSystem
    idle_delay: float

    def step(self) -> int:
        """One poll or one stream connection; returns how many events it saw."""

    def reset(self) -> None:
        """Forget the connection (and session) after an error."""


def connector_run(
    connector: Connector,
    *,
    stopper: Stopper,
    sleep: Sleep | None = None,
    backoff: Backoff | None = None,
    max_steps: int | None = None,
) -> None:
    sleep = sleep or stopper.event.wait
    backoff = backoff or Backoff()
    slug = connector.system.slug
    steps = 0
    while not stopper.stopped and (max_steps is None or steps < max_steps):
        steps += 1
        try:
            seen = connector.step()
        except ConnectorStopped:
            break
        except (TransientError, OSError, HTTPException, DatabaseError) as exc:
            delay = backoff.next_delay()
            log.warning(
                "%s: %s: %s; reconnecting in %.1f s (attempt %d)",
                slug,
                type(exc).__name__,
                exc,
                delay,
                backoff.attempt,
            )
            connector.reset()
            if isinstance(exc, DatabaseError):
                close_old_connections()
            else:
                _health_error(connector.system, f"{type(exc).__name__}: {exc}")
            sleep(delay)
            continue
        _health_contact(connector.system)
        backoff.reset()
        if not seen and not stopper.stopped:
            sleep(connector.idle_delay)
    log.info("%s: connector stopped", slug)


def _health_error(system: AccessSystem, text: str) -> None:
    try:
        health_error(system=system, text=text)
    except DatabaseError:
        close_old_connections()  # the next step's own error is logged anyway


def _health_contact(system: AccessSystem) -> None:
    try:
        health_contact(system=system)
    except DatabaseError:
        close_old_connections()


# --- Cursor and ingest --------------------------------------------------------------------


def cursor_position(system: AccessSystem) -> str:
    cursor = ConnectorCursor.objects.filter(system=system).first()
    return cursor.position if cursor else ""


def cursor_document(system: AccessSystem) -> dict | None:
    """The cursor as the JSON object connectors keep; None before the first start, and
    for a cursor written by an older version (the connector says how it reads that)."""
    try:
        document = json.loads(cursor_position(system) or "null")
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def cursor_dump(document: dict) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def cursor_save(system: AccessSystem, document: dict) -> None:
    _cursor_move(system, cursor_dump(document))


def _cursor_move(system: AccessSystem, position: str) -> None:
    ConnectorCursor.objects.update_or_create(system=system, defaults={"position": position})


def stored_ids(system: AccessSystem, source_ids: list[str]) -> set[str]:
    """Which of these ids are stored already: one query for a page read again (overlap)."""
    found = Event.objects.filter(system=system, source_event_id__in=source_ids)
    return set(found.values_list("source_event_id", flat=True))


class Tally(Counter):
    """What a connector did with the events it saw, logged so nothing is dropped silently."""

    def summary(self) -> str:
        return ", ".join(f"{count} {what}" for what, count in sorted(self.items())) or "nothing"


# The service that stores an event and sets off its effects is above the devices
# (responder.alarms.services.event_ingest): AlarmsConfig.ready registers it here.
Ingest = Callable[..., tuple[Event, bool]]
_ingest: list[Ingest] = []


def ingest_register(ingest: Ingest) -> None:
    _ingest[:] = [ingest]


def event_feed(
    *,
    system: AccessSystem,
    position: str,
    tally: Tally,
    raw: dict,
    build: Callable[[], dict | None],
) -> None:
    """Map one raw event, ingest it and move the cursor past it, in ONE transaction.

    A crash before the commit leaves both the event and the cursor as they were, so the
    event is fetched again after a restart (not missed); a crash after it finds the cursor
    past the event (not repeated). Ingest also drops a source_event_id it has seen, so
    even a cursor restored from an older backup cannot double an alarm.
    """
    try:
        payload = build()
    except (KeyError, ValueError, TypeError) as exc:
        # A field missing or unreadable: retrying cannot help and would block the feed,
        # so the raw event is logged in full, counted and stepped over.
        _event_skip(system, position, tally, "unreadable", f"{type(exc).__name__}: {exc}", raw)
        return
    if payload is None:
        # A kind of event we do not map (a restore, a system message): logged, counted and
        # stepped over. The raw text in the log is what a new mapping rule is written from.
        _event_skip(system, position, tally, "unmapped", "no event type", raw)
        return
    try:
        with transaction.atomic():
            event, created = _ingest[0](system=system, payload=payload)
            _cursor_move(system, position)
            if created:
                health_event(system=system, occurred_at=event.occurred_at)
    except (DjangoValidationError, DRFValidationError) as exc:
        _event_skip(system, position, tally, "rejected", str(exc), raw)
        return
    tally["new" if created else "duplicate"] += 1


def _event_skip(
    system: AccessSystem, position: str, tally: Tally, why: str, detail: str, raw: dict
) -> None:
    tally[why] += 1
    log.warning(
        "%s: %s event skipped at %s (%s); raw: %s", system.slug, why, position, detail, raw
    )
    _cursor_move(system, position)
