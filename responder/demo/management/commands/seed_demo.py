from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from maps.models import Campus
from responder.core.roles import roles_ensure
from responder.demo.district import HIGH_SCHOOL
from responder.demo.seed import district_seed, incident_rule_seed
from responder.demo.users import totp_now, totp_secret, users_seed
from responder.recording.demo import recording_demo_seed

DEFAULT_PASSWORD = "responder-demo"


class Command(BaseCommand):
    help = (
        "Build the demo district (3 campuses, 8 buildings, 150 cameras, 42 doors, one LenelS2 "
        "system) and one user per role with a TOTP device. Running it again changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password", default=DEFAULT_PASSWORD, help="The demo users' password."
        )
        parser.add_argument(
            "--camera-base-url",
            default=settings.DEMO_CAMERA_BASE_URL,
            help="Where the cameras' streams are (the camera simulator); empty: camera-style "
            "RTSP addresses on the district network.",
        )

    def handle(
        self, *args: object, password: str, camera_base_url: str, **options: object
    ) -> None:
        roles_ensure(reset=True)
        district_seed(camera_base_url=camera_base_url)
        incident_rule_seed()
        recorded = recording_demo_seed()
        seeded = users_seed(
            password=password, high_school=Campus.objects.get(name=HIGH_SCHOOL.name)
        )
        if options["verbosity"] == 0:
            return  # make demo prints demo_codes' shorter block once everything runs
        self.stdout.write(self.style.SUCCESS("Demo district ready. Sign in as:"))
        for demo, device in seeded:
            self.stdout.write(
                f"  {demo.username:<16} password {password!r}  {demo.role}\n"
                f"  {'':<16} TOTP secret {totp_secret(device)} (code now: {totp_now(device)})\n"
                f"  {'':<16} {device.config_url}"
            )
        self.stdout.write(
            f"Recording: {', '.join(c.name for c in recorded)} continuously, the other "
            "cameras around door events (the recorder process of `make demo`)."
        )
        self.stdout.write(
            "Add a secret to an authenticator app (or scan the otpauth URI), then sign in "
            f"at {settings.SITE_URL}/ (the app) or {settings.SITE_URL}/admin/ (it-admin).\n"
            "Fresh codes any time: manage.py demo_codes"
        )
