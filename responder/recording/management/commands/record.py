import signal
import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from responder.recording.capture import BACKOFF_MAX
from responder.recording.recorder import GIL_SWITCH_SECONDS, Recorder, recorder_name


class Command(BaseCommand):
    help = (
        "Record every camera whose recording mode is not off into RECORDINGS_ROOT, sharing "
        "the cameras with the other recorders by lease (run one or more; see docs/RECORDING.md)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--name", help="This recorder's name (default: host-pid).")
        parser.add_argument("--segment-seconds", type=float, default=60)
        parser.add_argument(
            "--lease-seconds",
            type=float,
            default=15,
            help="A killed recorder's cameras are taken after this plus one scan.",
        )
        parser.add_argument("--scan-seconds", type=float, default=5)
        parser.add_argument(
            "--backoff-max-seconds",
            type=float,
            default=BACKOFF_MAX,
            help="A camera that keeps failing is tried again at most this long apart.",
        )

    def handle(
        self, *args, name, segment_seconds, lease_seconds, scan_seconds, backoff_max_seconds,
        **options,
    ):  # fmt: skip
        recorder = Recorder(
            name=recorder_name(name),
            root=settings.RECORDINGS_ROOT,
            segment_seconds=segment_seconds,
            lease_seconds=lease_seconds,
            scan_seconds=scan_seconds,
            backoff_max_seconds=backoff_max_seconds,
        )
        sys.setswitchinterval(GIL_SWITCH_SECONDS)  # this process only: see recorder.py
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, lambda *_: recorder.stop.set())
        recorder.run()
