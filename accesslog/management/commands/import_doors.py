"""Create and update an access system's doors from its own list (OnGuard readers, NetBox
portals), so district IT does not type keys by hand. The admin's *Import doors…* runs the
same service (accesslog.door_import)."""

from __future__ import annotations

import os

from django.core.management.base import CommandError, CommandParser
from django.db.models import Q

from accesslog.connectors.clients import Connection
from accesslog.door_import import DoorImportRefused, doors_import
from accesslog.management.commands.connect_lenels2 import Command as ConnectCommand
from accesslog.models import AccessSystem
from maps.models import Building


class Command(ConnectCommand):
    help = (
        "Import an access system's doors (OnGuard readers, NetBox portals) through its API. "
        "--dry-run shows what would be created or changed. Connection options as for "
        "connect_lenels2."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--dry-run", action="store_true", help="Change nothing.")
        parser.add_argument(
            "--building",
            help="Id or exact name of the building new doors go to (IT places them after).",
        )

    def handle(self, *args: object, **options: object) -> None:
        try:
            system = AccessSystem.objects.get(slug=options["system"])
        except AccessSystem.DoesNotExist:
            raise CommandError(f"No access system with slug {options['system']!r}") from None
        building = _building(options["building"])
        dry_run = bool(options["dry_run"])
        try:
            plan = doors_import(
                system=system, building=building, dry_run=dry_run, connection=_connection(options)
            )
        except DoorImportRefused as exc:
            raise CommandError(str(exc)) from None
        for line in plan.lines():
            self.stdout.write(line)
        would = "would " if dry_run else ""
        self.stdout.write(
            f"{system.slug}: {would}create{'' if dry_run else 'd'} {len(plan.created)}, "
            f"{would}change{'' if dry_run else 'd'} {len(plan.changed)}, "
            f"kept {len(plan.unchanged)}"
        )


def _building(given: object) -> Building | None:
    if not given:
        return None
    given = str(given)
    match = Q(id=int(given)) if given.isdigit() else Q(name=given)
    building = Building.objects.filter(match).first()
    if building is None:
        raise CommandError(f"No building {given!r}")
    return building


def _connection(options: dict) -> Connection:
    if not options["url"] or not options["username"]:
        raise CommandError("Set --url and --username (or LENELS2_URL, LENELS2_USERNAME).")
    return Connection(
        url=options["url"],
        username=options["username"],
        password=os.environ.get(options["password_env"], ""),
        directory_id=options["directory_id"],
        application_id=options["application_id"],
        ca_file=options["ca_file"],
    )
