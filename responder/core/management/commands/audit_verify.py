from django.core.management.base import BaseCommand, CommandError

from responder.core.audit import audit_verify
from responder.core.models import AuditEntry


class Command(BaseCommand):
    help = (
        "Check the audit log's hash chain. Exits 0 when every row holds, else 1 naming the "
        "first row where the chain breaks (repair or restore it, then run again for the next)."
    )

    def handle(self, *args: object, **options: object) -> None:
        broken = audit_verify()
        if broken is not None:
            raise CommandError(f"The audit chain breaks at {broken}")
        self.stdout.write(f"The audit chain holds: {AuditEntry.objects.count()} rows.")
