# Incidents: a reach (campus or one building), an end their extensions move, and the
# responder roles IT marks for emergency access.

from datetime import timedelta

import django.db.models.deletion
from django.db import migrations, models

# The names of responder/roles.py; IT may have renamed them, then it flags them itself.
EMERGENCY_ROLES = ["Police responders", "Fire responders"]


def grants_end_fill(apps, schema_editor) -> None:
    Incident = apps.get_model("responder", "Incident")
    Grant = apps.get_model("responder", "Grant")
    for incident in Incident.objects.filter(grants_end_at__isnull=True):
        ends = Grant.objects.filter(incident=incident).values_list("ends_at", flat=True)
        fallback = incident.opened_at + timedelta(hours=incident.grant_hours)
        incident.grants_end_at = max((end for end in ends if end), default=fallback)
        incident.save(update_fields=["grants_end_at"])


def emergency_roles_flag(apps, schema_editor) -> None:
    Group = apps.get_model("auth", "Group")
    ResponderRole = apps.get_model("responder", "ResponderRole")
    for group in Group.objects.filter(name__in=EMERGENCY_ROLES):
        ResponderRole.objects.get_or_create(group=group, defaults={"emergency_access": True})


class Migration(migrations.Migration):
    # PostgreSQL refuses to ALTER a table with updates pending in the same transaction.
    atomic = False

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("maps", "0001_initial"),
        ("responder", "0003_pending_push"),
    ]

    operations = [
        migrations.CreateModel(
            name="ResponderRole",
            fields=[
                ("group", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name="responder_role", serialize=False, to="auth.group")),
                ("emergency_access", models.BooleanField(default=False, help_text="Incidents may name this group, and assign its members, for time-boxed live and recorded video.")),
            ],
        ),
        migrations.CreateModel(
            name="EmergencyGrant",
            fields=[],
            options={
                "ordering": ["-starts_at", "-id"],
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("responder.grant",),
        ),
        migrations.AddField(
            model_name="incident",
            name="building",
            field=models.ForeignKey(blank=True, help_text="Empty: the whole campus.", null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="maps.building"),
        ),
        migrations.AddField(
            model_name="incident",
            name="grants_end_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(grants_end_fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="incident",
            name="grants_end_at",
            field=models.DateTimeField(help_text="When its emergency access ends, unless it closes first (extensions move it)."),
        ),
        migrations.AlterField(
            model_name="incidentrule",
            name="responder_groups",
            field=models.ManyToManyField(blank=True, help_text="Only responder roles with emergency access receive grants.", related_name="+", to="auth.group"),
        ),
        migrations.RunPython(emergency_roles_flag, migrations.RunPython.noop),
    ]
