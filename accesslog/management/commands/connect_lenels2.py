"""Feed one LenelS2 system's events (OnGuard or NetBox) into ingest, until stopped."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accesslog.connectors.base import Backoff, Connector, Stopper, connector_run
from accesslog.connectors.http import Endpoint
from accesslog.connectors.netbox import NetBoxClient, NetBoxConnector
from accesslog.connectors.onguard import OnGuardClient, OnGuardConnector
from accesslog.models import AccessSystem, SystemKind

log = logging.getLogger("accesslog.connectors")


class Command(BaseCommand):
    help = (
        "Connect to a LenelS2 OnGuard (OpenAccess) or NetBox (NBAPI) system and feed its "
        "events to ingest. Options default to LENELS2_* environment variables; the "
        "password is read only from the environment (LENELS2_PASSWORD by default)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        env = os.environ.get
        parser.add_argument("system", help="The access system's slug.")
        parser.add_argument(
            "--url",
            default=env("LENELS2_URL"),
            help="Server root, e.g. https://onguard.district.example:8080",
        )
        parser.add_argument("--username", default=env("LENELS2_USERNAME"))
        parser.add_argument(
            "--password-env",
            default="LENELS2_PASSWORD",
            help="The environment variable that holds the password.",
        )
        parser.add_argument(
            "--directory-id",
            default=env("LENELS2_DIRECTORY_ID", "id-1"),
            help="OnGuard: the directory to sign in against.",
        )
        parser.add_argument(
            "--application-id",
            default=env("LENELS2_APPLICATION_ID", ""),
            help="OnGuard: the OpenAccess Application-Id.",
        )
        parser.add_argument(
            "--timezone",
            default=env("LENELS2_TIMEZONE", settings.TIME_ZONE),
            help="Zone of the system's clock, for times without an offset.",
        )
        parser.add_argument(
            "--ca-file",
            default=env("LENELS2_CA_FILE"),
            help="A CA bundle to trust for the server's certificate.",
        )
        parser.add_argument(
            "--poll-interval",
            type=float,
            default=2.0,
            help="OnGuard: seconds between polls when idle.",
        )
        parser.add_argument(
            "--backfill",
            type=int,
            default=settings.CONNECTOR_BACKFILL_MINUTES,
            metavar="MINUTES",
            help=(
                "First start only (no cursor yet): read this many minutes of history. "
                "0 (the default, CONNECTOR_BACKFILL_MINUTES) begins at now. Events older "
                "than ALARM_MAX_AGE_SECONDS are stored marked late and never rung."
            ),
        )
        parser.add_argument("--max-backoff", type=float, default=60.0)
        parser.add_argument(
            "--max-steps",
            type=int,
            default=None,
            help="Stop after this many polls/connections (for checks).",
        )

    def handle(self, *args: object, **options: Any) -> None:
        try:
            system = AccessSystem.objects.get(slug=options["system"])
        except AccessSystem.DoesNotExist:
            raise CommandError(f"No access system with slug {options['system']!r}") from None
        stopper = Stopper()
        connector = self.connector(system, stopper, options)
        log.info("%s: connecting to %s (%s)", system.slug, options["url"], system.kind)
        with stopper.installed():
            connector_run(
                connector,
                stopper=stopper,
                backoff=Backoff(cap=options["max_backoff"]),
                max_steps=options["max_steps"],
            )

    def connector(self, system: AccessSystem, stopper: Stopper, options: dict) -> Connector:
        if not options["url"] or not options["username"]:
            raise CommandError("Set --url and --username (or LENELS2_URL, LENELS2_USERNAME).")
        password = os.environ.get(options["password_env"], "")
        try:
            tz = ZoneInfo(options["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise CommandError(f"Unknown time zone {options['timezone']!r}") from None
        if options["backfill"] < 0:
            raise CommandError("--backfill is a number of minutes, 0 or more.")
        backfill = timedelta(minutes=options["backfill"])
        endpoint = Endpoint(options["url"], ca_file=options["ca_file"])
        if system.kind == SystemKind.ONGUARD:
            client = OnGuardClient(
                endpoint,
                options["username"],
                password,
                options["directory_id"],
                options["application_id"],
            )
            return OnGuardConnector(
                system,
                client,
                tz,
                stopper=stopper,
                idle_delay=options["poll_interval"],
                backfill=backfill,
            )
        if system.kind == SystemKind.NETBOX:
            netbox = NetBoxClient(endpoint, options["username"], password)
            return NetBoxConnector(system, netbox, tz, stopper=stopper, backfill=backfill)
        raise CommandError(f"{system} is a {system.get_kind_display()} system: it sends webhooks.")
