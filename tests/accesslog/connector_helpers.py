"""What the connector tests share: a served fake, a bounded run, what got stored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from accesslog.connectors.base import Backoff, Connector, Stopper, connector_run
from tests.accesslog.fakes.server import FakeHTTPServer

CHICAGO = ZoneInfo("America/Chicago")


class Servable(Protocol):
    url: str

    def serve(self) -> FakeHTTPServer: ...


class StoppableConnector(Connector, Protocol):
    stopper: Stopper


F = TypeVar("F", bound=Servable)


def served(fake: F) -> Iterator[F]:
    """For a fixture: the fake behind a real HTTP server on a free port, url set."""
    with fake.serve() as server:
        fake.url = server.url
        yield fake


def run(
    connector: StoppableConnector,
    *,
    steps: int,
    sleeps: list[float] | None = None,
    backoff: Backoff | None = None,
) -> None:
    """A bounded run; its sleeps are recorded in sleeps, not slept."""
    connector_run(
        connector,
        stopper=connector.stopper,
        max_steps=steps,
        sleep=(sleeps if sleeps is not None else []).append,
        backoff=backoff,
    )
