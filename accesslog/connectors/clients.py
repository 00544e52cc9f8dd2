"""An access system's own door list, read with the settings its connector reads.

`manage.py connect_lenels2` takes its URL, user and password from the LENELS2_*
variables (/etc/responder/responder.env in production, which the web service reads too),
so the admin's door import needs nothing stored apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from accesslog.connectors.http import Endpoint
from accesslog.connectors.netbox import NetBoxClient, netbox_doors
from accesslog.connectors.onguard import OnGuardClient, onguard_doors
from accesslog.models import SystemKind
from accesslog.services import VendorDoor

# Every polled system needs these; OnGuard also its OpenAccess Application-Id.
NEEDED = ["LENELS2_URL", "LENELS2_USERNAME", "LENELS2_PASSWORD"]
NEEDED_BY_KIND: dict[str, list[str]] = {SystemKind.ONGUARD: ["LENELS2_APPLICATION_ID"]}


@dataclass(frozen=True)
class Connection:
    url: str
    username: str
    password: str = field(repr=False)
    directory_id: str = "id-1"
    application_id: str = ""
    ca_file: str | None = None
    timeout: float = 30.0


def connection_missing(kind: str, environ: Mapping[str, str]) -> list[str]:
    """The variables a system of this kind needs that are unset or empty."""
    needed = NEEDED + NEEDED_BY_KIND.get(kind, [])
    return [name for name in needed if not environ.get(name)]


def connection_from_env(environ: Mapping[str, str], *, timeout: float) -> Connection:
    return Connection(
        url=environ.get("LENELS2_URL", ""),
        username=environ.get("LENELS2_USERNAME", ""),
        password=environ.get("LENELS2_PASSWORD", ""),
        directory_id=environ.get("LENELS2_DIRECTORY_ID") or "id-1",
        application_id=environ.get("LENELS2_APPLICATION_ID", ""),
        ca_file=environ.get("LENELS2_CA_FILE") or None,
        timeout=timeout,
    )


def door_list(kind: str, connection: Connection) -> list[VendorDoor]:
    """Every door the system lists. TransientError (or OSError) when it does not answer;
    ValueError for a kind that has no list to read (webhook systems)."""
    endpoint = Endpoint(connection.url, timeout=connection.timeout, ca_file=connection.ca_file)
    if kind == SystemKind.ONGUARD:
        client = OnGuardClient(
            endpoint,
            connection.username,
            connection.password,
            connection.directory_id,
            connection.application_id,
        )
        return onguard_doors(client)
    if kind == SystemKind.NETBOX:
        return netbox_doors(NetBoxClient(endpoint, connection.username, connection.password))
    raise ValueError("it sends webhooks, so there is no door list to read from it")
