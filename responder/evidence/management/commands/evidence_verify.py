"""manage.py evidence_verify <zip>: exit 0 when every hash and the signature hold, else 1,
naming each file that differs."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from responder.evidence.verify import zip_verify


class Command(BaseCommand):
    help = "Checks an evidence export's zip: signatures, and every file's SHA-256."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("zip", type=Path)

    def handle(self, *args: object, **options: object) -> None:
        path = options["zip"]
        assert isinstance(path, Path)
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        report = zip_verify(path)
        for problem in report.problems:
            self.stderr.write(f"DIFFERS {problem}")
        if report.problems:
            raise CommandError(f"{len(report.problems)} problem(s) in {path.name}.", returncode=1)
        self.stdout.write(
            f"OK: {report.checked} files and the signature (key {report.key_id}) hold."
        )
