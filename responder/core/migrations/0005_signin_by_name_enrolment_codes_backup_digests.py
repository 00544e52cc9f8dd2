import hashlib

import django.db.models.deletion
import django.utils.timezone
import django_otp.models
from django.conf import settings
from django.db import migrations, models


def names_from_users(apps, schema_editor):
    SignInState = apps.get_model("responder", "SignInState")
    for state in SignInState.objects.select_related("user"):
        state.username = state.user.username
        state.save(update_fields=["username"])


def backup_codes_to_digests(apps, schema_editor):
    """Clear-text static tokens become digests of their own device; the tokens go."""
    StaticDevice = apps.get_model("otp_static", "StaticDevice")
    BackupCodeDevice = apps.get_model("responder", "BackupCodeDevice")
    BackupCode = apps.get_model("responder", "BackupCode")
    for static in StaticDevice.objects.all():
        device = BackupCodeDevice.objects.create(
            user_id=static.user_id, name=static.name, confirmed=static.confirmed
        )
        BackupCode.objects.bulk_create(
            BackupCode(
                device=device,
                digest=hashlib.sha256(
                    token.token.strip().lower().replace(" ", "").replace("-", "").encode()
                ).hexdigest(),
            )
            for token in static.token_set.all()
        )
        static.delete()


def unconfirmed_secrets_dropped(apps, schema_editor):
    """Secrets of devices never confirmed went to anyone with the password: none is kept."""
    apps.get_model("otp_totp", "TOTPDevice").objects.filter(confirmed=False).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("otp_static", "0003_add_timestamps"),
        ("otp_totp", "0003_add_timestamps"),
        ("responder", "0004_incident_reach_and_responder_roles"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RenameField("signinstate", "failures", "password_failures"),
        migrations.AddField(
            model_name="signinstate",
            name="code_failures",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="signinstate",
            name="username",
            field=models.CharField(max_length=150, null=True),
        ),
        migrations.RunPython(names_from_users, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="signinstate",
            name="username",
            field=models.CharField(max_length=150, unique=True),
        ),
        migrations.AlterField(
            model_name="signinstate",
            name="user",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="sign_in_states",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.CreateModel(
            name="EnrolmentCode",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("digest", models.CharField(max_length=64, unique=True)),
                ("issued_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("expires_at", models.DateTimeField()),
                ("used_at", models.DateTimeField(blank=True, null=True)),
                ("issued_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
                ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="enrolment_codes", to=settings.AUTH_USER_MODEL)),
            ],
            options={"ordering": ["-issued_at"]},
        ),
        migrations.CreateModel(
            name="BackupCodeDevice",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(help_text="The human-readable name of this device.", max_length=64)),
                ("confirmed", models.BooleanField(default=True, help_text="Is this device ready for use?")),
                ("created_at", models.DateTimeField(auto_now_add=True, help_text="The date and time when this device was initially created in the system.", null=True)),
                ("last_used_at", models.DateTimeField(blank=True, help_text="The most recent date and time this device was used.", null=True)),
                ("user", models.ForeignKey(help_text="The user that this device belongs to.", on_delete=django.db.models.deletion.CASCADE, to=settings.AUTH_USER_MODEL)),
            ],
            options={"verbose_name": "backup codes", "verbose_name_plural": "backup codes"},
        ),
        migrations.CreateModel(
            name="BackupCode",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("digest", models.CharField(max_length=64)),
                ("device", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="codes", to="responder.backupcodedevice")),
            ],
        ),
        migrations.RunPython(backup_codes_to_digests, migrations.RunPython.noop),
        migrations.RunPython(unconfirmed_secrets_dropped, migrations.RunPython.noop),
    ]
