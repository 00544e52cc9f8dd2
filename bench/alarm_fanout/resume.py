"""Tablets resuming at once on a daphne just started (a restart, or a daphne lost behind the
balancer): the time until every one of N sockets is live, each resuming from seq 0 over
EVENTS stored alarms it may see, and the socket daphne's CPU for it.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/responder_bench \\
      .venv/bin/python -W ignore -m bench.alarm_fanout.resume --clients 1000 --events 900 \\
      [--tree /tmp/old]

Each code tree (this one, and `--tree`s: e.g. `git archive main | tar -x -C /tmp/old`) gets
a daphne of its own over the same stored events, in turns. The database is emptied (its
name must contain "bench"); without REDIS_URL an embedded Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.alarm_fanout.__main__ import PYTHON, ROOT, empty_database
from bench.alarm_fanout.district import bench_setup
from bench.common import bench_services, calibration, wait_for_port
from responder.embedded_redis import free_port

LIVE_SECONDS = 120  # the load clients' own limit (bench.alarm_fanout.clients)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--events", type=int, default=900)
    parser.add_argument("--tree", type=Path, action="append", default=[])
    args = parser.parse_args()
    print(f"CPU calibration: SHA-256 of 64 MiB in {calibration():.0f} ms", flush=True)
    with tempfile.TemporaryDirectory(prefix="alarm-resume-") as tmp, bench_services(Path(tmp)):
        empty_database()
        bench = bench_setup()
        last = _store(args.events)
        for tree in [*[tree.resolve() for tree in args.tree], ROOT]:
            _turn(tree, bench.everyone.cookie, args.clients, last, Path(tmp))
    print(f"CPU calibration at the end: {calibration():.0f} ms", flush=True)


def _store(count: int) -> int:
    """`count` alarms at the door every client may see; the last seq."""
    from accesslog.models import Door
    from tests.factories import event_store

    door = Door.objects.get(external_id="door-1")
    return [event_store(door) for _ in range(count)][-1].seq


def _turn(tree: Path, cookie: str, count: int, last: int, tmp: Path) -> None:
    port = free_port()
    command = [
        PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0",
        "--websocket_connect_timeout", "60", "responder.asgi:application",
    ]  # fmt: skip
    log = (tmp / f"daphne-{port}.log").open("w")
    daphne = subprocess.Popen(command, cwd=tree, stdout=log, stderr=log)
    try:
        wait_for_port(port, seconds=180)
        before, started = _cpu(daphne.pid), time.monotonic()
        clients = subprocess.Popen(
            [PYTHON, "-m", "bench.alarm_fanout.clients", "--count", str(count),
             "--cookie", cookie, "--resume", f"ws://127.0.0.1:{port}/ws/events?after=0"],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        live = clients.stdout.readline().strip() == "ready"
        seconds, cpu = time.monotonic() - started, _cpu(daphne.pid) - before
        lost = doubled = 0
        if live:
            clients.stdin.write(f"stop {last}\n")
            clients.stdin.flush()
            for log_of in json.loads(clients.stdout.readline())["received"]:
                seqs = [seq for seq, _ in log_of]
                lost += last - len(set(seqs))
                doubled += len(seqs) - len(set(seqs))
        clients.kill()
        clients.wait()
        state = f"all live in {seconds:.1f} s" if live else f"NOT all live in {LIVE_SECONDS} s"
        print(
            f"{str(tree)[-25:]:25} | {count} sockets over {last} events: {state}; socket "
            f"daphne CPU {cpu:.1f} s; lost {lost}, doubled {doubled}; load average "
            f"{os.getloadavg()[0]:.1f}",
            flush=True,
        )
    finally:
        daphne.terminate()
        daphne.wait(timeout=60)


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return sum(int(f) for f in fields[11:13]) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    sys.exit(main())
