from django.core.management.base import BaseCommand, CommandParser

from responder.core.roles import roles_ensure


class Command(BaseCommand):
    help = (
        "Create the role groups (district office, school administrators, facilities, police "
        "and fire responders, district IT) with their default grants. Existing groups keep "
        "the grants IT gave them unless --reset."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Bring the groups' standing grants back to the defaults.",
        )

    def handle(self, *args: object, reset: bool, **options: object) -> None:
        for group in roles_ensure(reset=reset):
            self.stdout.write(f"{group.name}: {group.grants.count()} standing grants")
