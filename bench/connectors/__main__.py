"""Connector latency: from the controller's event to the tablet's socket, per path.

    DATABASE_URL=... REDIS_URL=... python -m bench.connectors [--events 20] [--poll 1.0]

Three paths in one run, one event at a time, against one daphne and one signed-in socket:
the signed webhook (the reference: nothing between the door and ingest), a NetBox
controller's StreamEvents (the fake of tests/accesslog/fakes, held open as a controller
holds it) read by `connect_lenels2`, and an OnGuard server polled every `--poll` seconds.
The events fall at random moments of the poll, as real ones do. A fixed CPU calibration
is printed first so runs on different machines compare. Loopback only; bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import bench_services, calibration, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--poll", type=float, default=1.0, help="OnGuard's poll interval")
    args = parser.parse_args()
    print(f"CPU calibration: SHA-256 of 64 MiB in {calibration():.0f} ms")
    with (
        tempfile.TemporaryDirectory(prefix="connectors-") as tmp,
        bench_services(Path(tmp), PUSH_ENABLED="false", LENELS2_PASSWORD="s3cret"),
    ):
        run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> None:
    from bench.alarm_fanout.__main__ import daphne
    from responder.embedded_redis import free_port

    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True)
    doors, secret, cookie = setup()
    print("migrated; starting daphne and the connectors", flush=True)
    from tests.accesslog.fakes.netbox import FakeNetBox
    from tests.accesslog.fakes.onguard import FakeOnGuard

    onguard, netbox = FakeOnGuard(), FakeNetBox(hold_open=True)
    onguard.panel_add(1)
    netbox.portal_add("3", "Bench Main Entrance", ("7", "Bench Main Entrance In"))
    port = free_port()
    with onguard.serve() as og_server, netbox.serve() as nb_server:
        processes = [daphne(port, tmp)]
        common = ["--username=responder", "--max-backoff=1"]
        processes.append(connector(["bench-og", f"--url={og_server.url}", *common,
                                    f"--application-id={onguard.application_id}",
                                    f"--poll-interval={args.poll}"], tmp))  # fmt: skip
        processes.append(connector(["bench-nb", f"--url={nb_server.url}", *common], tmp))
        try:
            wait_started(port)
            print("connectors started; measuring", flush=True)
            paths: dict[str, Callable[[], None]] = {
                "webhook (reference)": lambda: post_webhook(port, secret),
                # Badge reads by distinct people: a NetBox event is known by door, second,
                # type and person, and two alarms of one door in one second are one.
                "NetBox StreamEvents": lambda: netbox.badge(
                    "3", person=secrets.token_hex(4), denied=True
                ),
                f"OnGuard, polled every {args.poll:g} s": lambda: onguard.event_add(
                    DEVICEID=1, DESCRIPTION="Door Forced Open"
                ),
            }
            results = asyncio.run(measure(port, cookie, doors, paths, args.events, args.poll))
        finally:
            netbox.release.set()
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=20)
    report(results, args.poll)


def connector(args: list[str], tmp: Path) -> subprocess.Popen:
    log = (tmp / f"{args[0]}.log").open("w")
    return subprocess.Popen(
        [PYTHON, "manage.py", "connect_lenels2", *args], cwd=ROOT, stdout=log, stderr=log
    )


def setup() -> tuple[dict[str, int], str, str]:
    """Two connector systems beside the bench's webhook system, a door each in the
    building the bench's officer sees."""
    from bench.alarm_fanout.district import bench_setup

    bench = bench_setup()
    from accesslog.models import AccessSystem, Door, SystemKind

    webhook = Door.objects.get(external_id="door-1")
    doors = {"webhook (reference)": webhook.id}
    for slug, kind, key, path in (
        ("bench-og", SystemKind.ONGUARD, "1-1", "OnGuard"),
        ("bench-nb", SystemKind.NETBOX, "3", "NetBox StreamEvents"),
    ):
        system, _ = AccessSystem.objects.get_or_create(
            slug=slug, defaults={"name": slug, "kind": kind}
        )
        door, _ = Door.objects.get_or_create(
            system=system, external_id=key, defaults={"building": webhook.building, "name": key}
        )
        doors[path] = door.id
    return doors, bench.secret, bench.everyone.cookie


def wait_started(port: int) -> None:
    """daphne listening and both connectors past their first start (slow on a loaded
    machine: each process starts Django)."""
    from accesslog.models import ConnectorCursor

    wait_for_port(port, seconds=180)
    deadline = time.monotonic() + 180
    while ConnectorCursor.objects.count() < 2:
        if time.monotonic() > deadline:
            raise SystemExit("The connectors did not start")
        time.sleep(0.2)
    time.sleep(2)  # the NetBox stream opens after its first catch-up


def post_webhook(port: int, secret: str) -> None:
    import http.client
    from datetime import UTC, datetime

    from accesslog.signatures import HEADER, sign

    body = json.dumps(
        {
            "source_event_id": secrets.token_hex(8),
            "type": "door_forced",
            "door": "door-1",
            "occurred_at": datetime.now(UTC).isoformat(),
        }
    ).encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json", HEADER: sign(body, secret)}
    connection.request("POST", "/api/v1/access/bench/events", body, headers)
    connection.getresponse().read()
    connection.close()


async def measure(
    port: int,
    cookie: str,
    doors: dict[str, int],
    paths: dict[str, Callable[[], None]],
    count: int,
    poll: float,
) -> dict[str, list[float]]:
    import websockets

    results: dict[str, list[float]] = {}
    headers = {"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"}
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/ws/events", additional_headers=headers
    ) as socket:
        for name, make in paths.items():
            door = next(door for path, door in doors.items() if name.startswith(path))
            results[name] = []
            for _ in range(count):
                # A random moment of the poll, as a door's event falls.
                await asyncio.sleep(random.uniform(0.05, poll))
                started = time.perf_counter()
                await asyncio.to_thread(make)
                while True:
                    frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=30))
                    event = frame.get("event") or {}
                    if (
                        frame.get("type") == "event"
                        and (event.get("door") or {}).get("id") == door
                    ):
                        break
                results[name].append(time.perf_counter() - started)
            print(f"{name}: done", flush=True)
    return results


def report(results: dict[str, list[float]], poll: float) -> None:
    print(f"{'path':32} {'n':>3} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, latencies in results.items():
        ordered = sorted(latencies)
        p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
        print(
            f"{name:32} {len(ordered):3d} {statistics.median(ordered) * 1000:8.0f} "
            f"{p95 * 1000:8.0f} {ordered[-1] * 1000:8.0f}"
        )
    print(f"targets: NetBox p95 <= 1000 ms; OnGuard p95 <= {poll * 1000 + 500:.0f} ms")


if __name__ == "__main__":
    main()
