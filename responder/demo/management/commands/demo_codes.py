import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django_otp.plugins.otp_totp.models import TOTPDevice

from responder.demo.management.commands.seed_demo import DEFAULT_PASSWORD
from responder.demo.users import DEMO_USERS, DEVICE_NAME, totp_now


class Command(BaseCommand):
    help = "Print each demo user's password and current TOTP code, and where to sign in."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password", default=DEFAULT_PASSWORD, help="The password seed_demo was given."
        )

    def handle(self, *args: object, password: str, **options: object) -> None:
        devices = {
            device.user.username: device
            for device in TOTPDevice.objects.filter(
                name=DEVICE_NAME, user__username__in=[demo.username for demo in DEMO_USERS]
            ).select_related("user")
        }
        if not devices:
            self.stderr.write("No demo users yet: run manage.py seed_demo first.")
            return
        step = next(iter(devices.values())).step
        left = step - int(time.time()) % step
        self.stdout.write(f"Sign in at {settings.SITE_URL}/ (it-admin also at /admin/).")
        self.stdout.write(f"Codes valid for {left} s more; run this again for fresh ones.")
        for demo in DEMO_USERS:
            device = devices.get(demo.username)
            if device is None:
                continue
            known = password if _has_password(demo.username, password) else "(changed)"
            self.stdout.write(
                f"  {demo.username:<16} {totp_now(device)}  password {known}  {demo.role}"
            )


def _has_password(username: str, password: str) -> bool:
    user = get_user_model().objects.filter(username=username).first()
    return bool(user and user.check_password(password))
