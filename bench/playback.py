"""Recorded playback over real HTTP: POST /playback -> playlist -> first segment fetched.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python -m bench.playback [--trials 5]

From a 1080p30 H.264 recording (~4 Mbps, 1 s GOP, 20 s files indexed as the recorder
indexes them), through daphne and a prefork video worker (concurrency 2), as a PWA does:
- low: a first start, nothing running for the camera (the worker's processes warm);
- seek: a new `start` while the previous low playback still runs (the PWA's seek);
- source: the recorded byte ranges, no worker.
The reference in the same run: the same first segment fetched by a plain GET of the
`source` playlist's first byte range (what a disk + daphne round trip costs here).
Uses DATABASE_URL (migrated and emptied) and REDIS_URL; imports tests.* (dev dependencies).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.cookiejar
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from bench.common import calibration, h264_1080p

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
FPS = 30


def recording_1080p(camera, start: dt.datetime, seconds: int) -> None:
    from tests.recording.playback_helpers import _segment_write

    packets = h264_1080p(seconds, FPS)
    groups: list[list] = []
    for packet in packets:
        if not groups or (packet.is_keyframe and len(groups[-1]) >= 20 * FPS):
            groups.append([])
        groups[-1].append(packet)
    for group in groups:
        _segment_write(camera, start, group, fps=FPS, codec="h264", recorder="bench",
                       kind="continuous", width=1920, height=1080)  # fmt: skip


def post(opener, url: str, data: dict, headers: dict | None = None) -> dict:
    request = urllib.request.Request(
        url, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})}
    )
    with opener.open(request, timeout=60) as response:
        return json.load(response)


def first_segment(playlist_url: str) -> bytes:
    lines = urllib.request.urlopen(playlist_url, timeout=60).read().decode().splitlines()
    for number, line in enumerate(lines):
        if line and not line.startswith("#"):
            headers = {}
            byterange = lines[number - 1]
            if byterange.startswith("#EXT-X-BYTERANGE:"):
                length, offset = (int(x) for x in byterange.split(":")[1].split("@"))
                headers["Range"] = f"bytes={offset}-{offset + length - 1}"
            request = urllib.request.Request(
                urllib.parse.urljoin(playlist_url, line), None, headers
            )
            data = urllib.request.urlopen(request, timeout=60).read()
            assert data[:1] == b"G", "not an MPEG-TS segment"
            return data
    raise AssertionError("an empty playlist")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-playback-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="responder.settings", DEBUG="true",
        RECORDINGS_ROOT=str(work / "recordings"), LIVE_ROOT=str(work / "live"),
        LIVE_IDLE_SECONDS="5", PYTHONPATH=str(ROOT),
    )  # fmt: skip
    print(f"calibration: sha256 of 64 MiB in {calibration():.0f} ms")
    import django

    django.setup()
    from tests.factories import PASSWORD, CameraFactory, GrantFactory, UserFactory
    from tests.signin_helpers import code_for, usable_device

    for command in (["migrate"], ["flush"]):
        subprocess.run([PY, "manage.py", *command, "--noinput", "-v0"], cwd=ROOT, check=True)
    camera = CameraFactory()
    seconds = 20 * (args.trials + 1) + 20
    origin = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(microsecond=0)
    made = time.monotonic()
    recording_1080p(camera, origin, seconds)
    print(f"recorded {seconds} s of 1080p30 in {time.monotonic() - made:.0f} s")
    port = 18000 + os.getpid() % 1000
    servers = [
        subprocess.Popen(
            [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "responder.asgi:application"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [PY, "-m", "celery", "-A", "responder", "worker", "-Q", "video", "--pool", "prefork",
             "--concurrency", "2", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
    ]  # fmt: skip
    try:
        site = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{site}/manifest.webmanifest", timeout=2)
                break
            except OSError:
                time.sleep(0.1)
        user = UserFactory()
        GrantFactory(user=user, capabilities=["recorded"])
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        login = {
            "username": user.username,
            "password": PASSWORD,
            "otp": code_for(usable_device(user)),
        }
        signed_in = post(opener, f"{site}/api/v1/auth/login", login)
        headers = {"X-CSRFToken": signed_in["csrf_token"], "Referer": site}
        url = f"{site}/api/v1/cameras/{camera.pk}/playback"

        def timed(start: dt.datetime, profile: str) -> float:
            started = time.monotonic()
            body = post(opener, url, {"start": start.isoformat(), "profile": profile}, headers)
            first_segment(body["playlist"])
            return round(time.monotonic() - started, 3)

        results: dict[str, list[float]] = {"low": [], "seek": [], "source": [], "reference": []}
        for trial in range(args.trials + 1):  # trial 0 warms the worker's processes
            at = origin + dt.timedelta(seconds=2 + trial * 20)
            low = timed(at, "low")
            seek = timed(at + dt.timedelta(seconds=9.5), "low")
            source = timed(at + dt.timedelta(seconds=5.5), "source")
            body = post(opener, url, {"start": at.isoformat(), "profile": "source"}, headers)
            started = time.monotonic()
            first_segment(body["playlist"])
            reference = round(time.monotonic() - started, 3)
            if trial:
                for name, value in zip(results, (low, seek, source, reference), strict=True):
                    results[name].append(value)
            time.sleep(6)  # the sessions' leases lapse: the next start finds the worker idle
        for name, values in results.items():
            print(f"{name:>9}: median {statistics.median(values):.3f} s  runs {values}")
    finally:
        for server in servers:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
