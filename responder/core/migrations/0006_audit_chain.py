from django.db import migrations, models

from responder.core.chain import GENESIS, chain_hash, entry_content

BATCH = 2000


def chain_existing_rows(apps, schema_editor):
    """The rows written before the chain, chained in id order; the head set to the last."""
    AuditEntry = apps.get_model("responder", "AuditEntry")
    AuditChainHead = apps.get_model("responder", "AuditChainHead")
    prev, batch = GENESIS, []
    for entry in AuditEntry.objects.order_by("id").iterator(chunk_size=BATCH):
        entry.prev_hash, entry.hash = prev, chain_hash(prev, entry_content(entry))
        prev = entry.hash
        batch.append(entry)
        if len(batch) == BATCH:
            AuditEntry.objects.bulk_update(batch, ["prev_hash", "hash"])
            batch = []
    AuditEntry.objects.bulk_update(batch, ["prev_hash", "hash"])
    AuditChainHead.objects.create(pk=1, prev_hash="", hash=prev)


class Migration(migrations.Migration):
    dependencies = [
        ("responder", "0005_signin_by_name_enrolment_codes_backup_digests"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditChainHead",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("prev_hash", models.CharField(max_length=64)),
                ("hash", models.CharField(max_length=64)),
            ],
        ),
        migrations.AddField(
            model_name="auditentry",
            name="prev_hash",
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="hash",
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        migrations.RunPython(chain_existing_rows, migrations.RunPython.noop),
    ]
