"""A hold on 150 cameras × 24 h (issue 17: ≤ 1 s), and the held bytes the admin shows.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python -m bench.holds [--trials 7]

150 cameras with a day of one-minute segments indexed (216,000 rows), then, each trial:
- service: hold_create (one INSERT of the hold, one of its 150 camera rows, the audit row);
- api: POST /api/v1/holds through Django's test client as a verified district user
  (scope query, validation, service, the answer);
- held bytes: the camera admin's column (Segment.bytes overlapping active holds, per camera).
Uses DATABASE_URL (migrated and emptied) and REDIS_URL; imports tests.* (dev dependencies).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import calibration

ROOT = Path(__file__).resolve().parents[1]
CAMERAS, HOURS = 150, 24


def segments_index(cameras: list, origin: dt.datetime) -> int:
    from responder.recording.models import Segment

    rows = [
        Segment(
            camera=camera,
            path=f"{camera.pk}/{minute:05d}.ts",
            start=origin + dt.timedelta(minutes=minute),
            end=origin + dt.timedelta(minutes=minute + 1),
            bytes=30_000_000,
            sha256="0" * 64,
            codec="h264",
            recorder="bench",
        )  # fmt: skip
        for camera in cameras
        for minute in range(HOURS * 60)
    ]
    Segment.objects.bulk_create(rows, batch_size=5000)
    return len(rows)


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return (time.perf_counter() - started) * 1000


def report(name: str, samples: list[float]) -> None:
    print(f"{name}: median {statistics.median(samples):.0f} ms, max {max(samples):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=7)
    args = parser.parse_args()
    os.environ.update(DJANGO_SETTINGS_MODULE="responder.settings", DEBUG="true")
    print(f"calibration: sha256 of 64 MiB in {calibration():.0f} ms")
    import django

    django.setup()
    from django.utils import timezone

    from responder.recording.services import hold_create
    from responder.recording.status import held_bytes_by_camera
    from tests.factories import BuildingFactory, CameraFactory, UserFactory
    from tests.recording.playback_helpers import verified_client

    for command in (["migrate"], ["flush"]):
        subprocess.run([sys.executable, "manage.py", *command, "--noinput", "-v0"], check=True)
    building = BuildingFactory()
    cameras = [CameraFactory(building=building) for _ in range(CAMERAS)]
    origin = (timezone.now() - dt.timedelta(hours=HOURS)).replace(second=0, microsecond=0)
    made = time.perf_counter()
    print(f"indexed {segments_index(cameras, origin)} segments in "
          f"{time.perf_counter() - made:.0f} s")  # fmt: skip
    user = UserFactory(is_superuser=True)
    client = verified_client(user)
    end = origin + dt.timedelta(hours=HOURS)
    body = {"cameras": [c.pk for c in cameras], "start": origin.isoformat(),
            "end": end.isoformat(), "reason": "bench", "until": None}  # fmt: skip

    def service() -> None:
        hold_create(cameras=cameras, start=origin, end=end, reason="bench", by=user)

    def api() -> None:
        response = client.post("/api/v1/holds", body, content_type="application/json")
        assert response.status_code == 201, response.content

    camera_ids = [c.pk for c in cameras]
    api()  # warm-up: the first request imports and builds what every later one reuses
    report(
        f"hold_create, {CAMERAS} cameras × {HOURS} h", [timed(service) for _ in range(args.trials)]
    )
    report(
        f"POST /api/v1/holds, {CAMERAS} cameras × {HOURS} h",
        [timed(api) for _ in range(args.trials)],
    )
    report("held bytes of 150 cameras (admin column)",
           [timed(lambda: held_bytes_by_camera(camera_ids)) for _ in range(args.trials)])  # fmt: skip


if __name__ == "__main__":
    main()
