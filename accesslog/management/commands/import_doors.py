"""Create and update an access system's doors from its own list (OnGuard readers, NetBox
portals), so district IT does not type keys by hand."""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser
from django.db.models import Q

from accesslog.connectors.base import Stopper
from accesslog.connectors.netbox import NetBoxConnector, netbox_doors
from accesslog.connectors.onguard import OnGuardConnector, onguard_doors
from accesslog.management.commands.connect_lenels2 import Command as ConnectCommand
from accesslog.models import AccessSystem
from accesslog.services import doors_import
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
        building = None
        if options["building"]:
            given = str(options["building"])
            match = Q(id=int(given)) if given.isdigit() else Q(name=given)
            building = Building.objects.filter(match).first()
            if building is None:
                raise CommandError(f"No building {given!r}")
        connector = self.connector(system, Stopper(), options)
        if isinstance(connector, OnGuardConnector):
            found = onguard_doors(connector.client)
        elif isinstance(connector, NetBoxConnector):
            found = netbox_doors(connector.client)
        else:  # pragma: no cover - connector() refuses every other kind
            raise CommandError(f"{system} has no door list to import")
        try:
            outcome = doors_import(
                system=system, found=found, building=building, dry_run=options["dry_run"]
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        for line in outcome.lines():
            self.stdout.write(line)
        verb = "would create" if options["dry_run"] else "created"
        self.stdout.write(
            f"{system.slug}: {verb} {len(outcome.created)}, "
            f"{'would change' if options['dry_run'] else 'changed'} {len(outcome.changed)}, "
            f"kept {len(outcome.unchanged)}"
        )
