"""Alarm fan-out: POST -> receipt latency at every WebSocket client, Responder vs a reference.

    DATABASE_URL=.../responder_bench REDIS_URL=... python -m bench.alarm_fanout [--clients 100 1000]

DATABASE_URL's database is migrated and emptied (its name must contain "bench"); without
it, a fresh SQLite file. Without REDIS_URL an embedded Redis.
Loopback only; every phase is bounded and the program stops by itself.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import itertools
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from bench.alarm_fanout.district import SLUG, Audience, Bench, bench_setup
from bench.common import bench_services, calibration, throwaway_vapid_key, wait_for_port
from responder.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
SINGLE_EVENTS, SINGLE_GAP = 20, 0.5
BURST_EVENTS, BURST_RATE = 50, 10
FLOOD_EVENTS, FLOOD_THREADS = 400, 8
DISTRICT_EVENTS, DISPATCH_SHARE = 1200, 0.1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--socket-processes", type=int, default=1)
    # gunicorn: one process of 8 threads per 2 cores, as deploy/ runs it (two processes cost
    # an ingest a third more CPU here: docs/BENCHMARKS.md). --api-server daphne: that many
    # daphnes, as one runs a sync view's database waits one GIL at a time.
    parser.add_argument("--api-processes", type=int, default=1)
    parser.add_argument("--api-threads", type=int, default=8, help="gunicorn's, per process")
    # gunicorn (WSGI) serves HTTP, daphne the sockets, as the README deploys them.
    parser.add_argument("--api-server", choices=["gunicorn", "daphne"], default="gunicorn")
    parser.add_argument("--client-processes", type=int, default=0, help="0: 1 per 500")
    parser.add_argument(
        "--flood-rate", type=float, default=0, help="events/s of the floods (0: as fast as posted)"
    )
    args = parser.parse_args()
    print(f"CPU calibration: SHA-256 of 64 MiB in {calibration():.0f} ms", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="alarm-fanout-") as tmp,
        bench_services(
            Path(tmp),
            # Not persistent: under daphne every request runs in a thread of its own, and
            # each would keep a connection open (the flood ran PostgreSQL out of them).
            DB_CONN_MAX_AGE=os.environ.get("DB_CONN_MAX_AGE", "0"),
            # A pool instead, where psycopg's pool is installed: 100 -> 150 ingests/s.
            DB_POOL_SIZE=os.environ.get("DB_POOL_SIZE", "4" if pool_installed() else "0"),
            # Push on, as in a district: every alarm queues its push task (no worker runs).
            VAPID_PRIVATE_KEY=os.environ.get("VAPID_PRIVATE_KEY") or throwaway_vapid_key(),
        ) as redis,
    ):
        if redis:  # the bench's own: other Redis servers on the machine are not counted
            SERVERS[redis.pid] = "Redis"
        run(args, Path(tmp))


def pool_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("psycopg_pool") is not None


def run(args: argparse.Namespace, tmp: Path) -> None:
    empty_database()
    bench = bench_setup()
    api_ports = [free_port() for _ in range(args.api_processes)]
    socket_ports = [free_port() for _ in range(args.socket_processes)]
    if args.api_server == "gunicorn":
        api_ports = api_ports[:1]  # one master, its workers share the port
        api = [gunicorn(api_ports[0], args.api_processes, args.api_threads, tmp)]
    else:
        api = [daphne(port, tmp) for port in api_ports]
    for process in api:
        SERVERS[process.pid] = f"API ({args.api_server})"
    sockets = [daphne(port, tmp) for port in socket_ports]
    for process in sockets:
        SERVERS[process.pid] = "socket daphnes"
    daphnes = [*api, *sockets]
    reference_port = free_port()
    reference = subprocess.Popen(
        [PYTHON, "-m", "bench.alarm_fanout.reference", str(reference_port)]
    )
    results = []
    try:
        # A loaded machine takes its time to import Django in every process.
        wait_for_port(*api_ports, *socket_ports, reference_port, seconds=180)
        poster = Poster(api_ports, bench.secret)
        for count in args.clients:
            urls = [f"ws://127.0.0.1:{port}/ws/events" for port in socket_ports]
            results += measure(
                "Responder", count, urls, poster.post, cookie=bench.everyone.cookie,
                flood=poster.post, processes=args.client_processes, pace=args.flood_rate,
            )  # fmt: skip
            results.append(rss_row(count, sockets))
            results += measure_district(count, urls, poster.post, bench, args.flood_rate)
            publish = ReferencePublisher(reference_port)
            results += measure(
                "reference", count, [f"ws://127.0.0.1:{reference_port}/"], publish.post,
                processes=args.client_processes,
            )  # fmt: skip
            publish.close()
    finally:
        for process in [*daphnes, reference]:
            process.terminate()
        for process in [*daphnes, reference]:
            process.wait(timeout=60)
    report(results, args)


def empty_database() -> None:
    """Each run from a migrated, empty database, so runs compare: the clients resume from seq 0, and
    over the events of earlier runs (~1,700 each) the third run's 1,000 sockets did not go
    live in 2 minutes. Emptied only if its name says it is a bench's."""
    name = os.environ["DATABASE_URL"].rsplit("/", 1)[-1]
    if "bench" not in name:
        raise SystemExit(f"The bench empties its database: {name!r} is not named *bench*")
    for command in (["migrate"], ["flush", "--no-input"]):
        subprocess.run([PYTHON, "manage.py", *command, "-v", "0"], cwd=ROOT, check=True)


def daphne(port: int, tmp: Path) -> subprocess.Popen:
    command = [
        PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0",
        "--websocket_connect_timeout", "60", "responder.asgi:application",
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, stdout=(tmp / f"daphne-{port}.log").open("w"))


def gunicorn(port: int, workers: int, threads: int, tmp: Path) -> subprocess.Popen:
    command = [
        PYTHON, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "--workers", str(workers),
        "--worker-class", "gthread", "--threads", str(threads), "--keep-alive", "75",
        "responder.wsgi:application",
    ]  # fmt: skip
    log = (tmp / f"gunicorn-{port}.log").open("w")
    return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log)


# --- Posting events ----------------------------------------------------------------


class Poster:
    """Signed POSTs to the ingest endpoints, one connection per thread, the threads
    spread over the API processes in turn (as a proxy would)."""

    def __init__(self, ports: list[int], secret: str) -> None:
        self.ports, self.secret, self.local = ports, secret, threading.local()
        self.turn = itertools.count()

    def post(self, event: dict | None = None) -> tuple[int, float]:
        """Posts `event` (default: a door forced at Bench High); its seq and when sent."""
        event = event or {
            "source_event_id": secrets.token_hex(8),
            "type": "door_forced",
            "door": "door-1",
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        body = json.dumps(event).encode()
        stamp = str(int(time.time()))
        digest = hmac.new(self.secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
        headers = {
            "Content-Type": "application/json",
            "X-Responder-Signature": f"t={stamp},v1={digest.hexdigest()}",
        }
        if not hasattr(self.local, "connection"):
            port = self.ports[next(self.turn) % len(self.ports)]
            self.local.connection = http.client.HTTPConnection("127.0.0.1", port)
        sent = time.time()
        try:
            self.local.connection.request("POST", f"/api/v1/access/{SLUG}/events", body, headers)
        except ConnectionError:  # the server closed an idle keep-alive connection
            self.local.connection.close()
            self.local.connection.request("POST", f"/api/v1/access/{SLUG}/events", body, headers)
        response = self.local.connection.getresponse()
        answer = response.read()
        if response.status != 202:
            raise SystemExit(f"Ingest answered {response.status}: {answer[:200]!r}")
        return json.loads(answer)["seq"], sent


class ReferencePublisher:
    def __init__(self, port: int) -> None:
        from websockets.sync.client import connect

        self.ws, self.seq = connect(f"ws://127.0.0.1:{port}/publish"), 0
        self.payload = {"id": 0, "type": "door_forced", "severity": "alarm", "cameras": [1, 2]}

    def post(self) -> tuple[int, float]:
        self.seq += 1
        sent = time.time()
        self.ws.send(json.dumps({"type": "event", "seq": self.seq, "event": self.payload}))
        return self.seq, sent

    def close(self) -> None:
        self.ws.close()


# --- One server, one client count ------------------------------------------------------


def measure(
    server: str, count: int, urls: list[str], post, *, cookie="", flood=None, processes=0, pace=0.0
) -> list:
    clients = start_clients(count, urls, cookie, processes or -(-count // 500))
    post()  # warm-up, not counted: first imports, first database connections
    time.sleep(1)
    phases = {"single alarm": [], "burst 10/s": []}
    for _ in range(SINGLE_EVENTS):
        phases["single alarm"].append(post())
        time.sleep(SINGLE_GAP)
    start = time.monotonic()
    for index in range(BURST_EVENTS):
        time.sleep(max(0, start + index / BURST_RATE - time.monotonic()))
        phases["burst 10/s"].append(post())
    rate = cpu = None
    if flood:
        before = cpu_seconds(clients)
        start = time.monotonic()
        phases["flood"] = flood_posts(flood, rate=pace)
        rate = FLOOD_EVENTS / (time.monotonic() - start)
        last = max(seq for seq, _ in phases["flood"])
        wait_received(clients, [last] * len(clients))
        cpu = {k: v - before.get(k, 0) for k, v in cpu_seconds(clients).items()}
    last = max(seq for sent in phases.values() for seq, _ in sent)
    logs, dead = stop_clients(clients, [last] * len(clients))
    received = [log for process in logs for log in process]
    rows = []
    for phase, sent in phases.items():
        sent_at = dict(sent)
        expected = [(log, set(sent_at)) for log in received]
        rows.append(row(server, count, phase, sent_at, expected, dead))
        rows[-1]["ingest_per_s"] = rate if phase == "flood" else None
    if cpu:
        rows.append({"server": server, "clients": count, "phase": "cpu", "cpu": cpu})
    return rows


def measure_district(count: int, urls: list[str], post, bench: Bench, pace: float) -> list:
    """A flood of the simulator's mix of events (mostly badges) at the schools' doors, each
    going to the sockets that may see it: dispatch (a tenth of the clients) sees every
    school, the rest are spread over the schools, each seeing its own."""
    import random

    from responder.demo.management.commands.simulate_doors import simulated_event

    dispatch = round(count * DISPATCH_SHARE)
    shares = [dispatch] + [
        (count - dispatch) // len(bench.schools) + (i < (count - dispatch) % len(bench.schools))
        for i in range(len(bench.schools))
    ]
    audiences = [bench.dispatch, *bench.schools]
    clients = [
        client
        for audience, share in zip(audiences, shares, strict=True)
        for client in start_clients(share, urls, audience.cookie, 1)
    ]
    post()  # warm-up, not counted
    time.sleep(1)
    rng = random.Random(7)
    doors = [rng.choice(bench.doors) for _ in range(DISTRICT_EVENTS)]
    events = [simulated_event(SimpleNamespace(external_id=door), rng) for door, _ in doors]
    building_of = {
        event["source_event_id"]: building
        for event, (_, building) in zip(events, doors, strict=True)
    }
    before = cpu_seconds(clients)
    start = time.monotonic()
    posted = flood_posts(post, events, rate=pace)
    rate = len(events) / (time.monotonic() - start)
    sent = [(seq, at, building_of[event["source_event_id"]]) for (seq, at), event in posted]
    expected = [_visible(sent, audience) for audience in audiences]
    lasts = [max(seqs, default=0) for seqs in expected]
    wait_received(clients, lasts)
    cpu = {k: v - before.get(k, 0) for k, v in cpu_seconds(clients).items()}
    logs, dead = stop_clients(clients, lasts)
    receipts = [
        (log, seqs) for process, seqs in zip(logs, expected, strict=True) for log in process
    ]
    result = row(
        "Responder", count, "district flood", {seq: at for seq, at, _ in sent}, receipts, dead
    )
    result["ingest_per_s"] = rate
    result["per_event"] = sum(
        len(seqs) * share for seqs, share in zip(expected, shares, strict=True)
    ) / len(sent)
    return [
        result,
        {
            "server": "Responder",
            "clients": count,
            "phase": "district cpu",
            "cpu": cpu,
            "events": len(sent),
        },
    ]


def _visible(sent: list[tuple[int, float, int]], audience: Audience) -> set[int]:
    return {
        seq
        for seq, _, building in sent
        if audience.buildings is None or building in audience.buildings
    }


def flood_posts(post, events: list[dict] | None = None, *, rate: float = 0) -> list:
    """FLOOD_EVENTS of the default kind, or `events`, posted from FLOOD_THREADS threads, as
    fast as they go or, with `rate`, each at its turn (the n-th at n / rate s); with
    `events`, each result comes with its event."""
    sent: list = []
    queue = enumerate(events if events is not None else [None] * FLOOD_EVENTS)
    lock = threading.Lock()
    start = time.monotonic()

    def work() -> None:
        while True:
            with lock:
                index, event = next(queue, (None, None))
            if index is None:
                return
            if rate:
                time.sleep(max(0, start + index / rate - time.monotonic()))
            result = post(event)
            sent.append(result if events is None else (result, event))

    threads = [threading.Thread(target=work) for _ in range(FLOOD_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent


def start_clients(
    count: int, urls: list[str], cookie: str, processes: int
) -> list[subprocess.Popen]:
    clients = []
    for index in range(processes):
        share = count // processes + (1 if index < count % processes else 0)
        command = [PYTHON, "-m", "bench.alarm_fanout.clients", "--count", str(share), *urls]
        if cookie:
            command += ["--cookie", cookie, "--resume"]
        clients.append(
            subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        )
    for client in clients:
        line = client.stdout.readline()
        if line.strip() != "ready":
            raise SystemExit("A load process failed to connect its clients")
    return clients


def wait_received(clients: list[subprocess.Popen], lasts: list[int]) -> None:
    for client, last in zip(clients, lasts, strict=True):
        client.stdin.write(f"wait {last}\n")
        client.stdin.flush()
    for client in clients:
        if client.stdout.readline().strip() != "done":
            raise SystemExit("A load process stopped while waiting for events")


def cpu_seconds(clients: list[subprocess.Popen]) -> dict[str, float]:
    """CPU time so far (user + system) of each part on this machine, by /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    mine = os.times()
    parts = {"posting threads": mine.user + mine.system, "load clients": 0.0}
    client_pids = {client.pid for client in clients}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" (", 1)
        except OSError:
            continue
        name, fields = rest.rsplit(") ", 1)
        fields = fields.split()
        seconds = sum(int(f) for f in fields[11:13]) / tick
        part = _part(int(pid), int(fields[1]), name, client_pids)
        if part:
            parts[part] = parts.get(part, 0.0) + seconds
        if part in SERVER_PARTS:  # of which the kernel's (for a socket daphne: its sends)
            kernel = f"{part}, kernel"
            parts[kernel] = parts.get(kernel, 0.0) + int(fields[12]) / tick
    return parts


SERVERS: dict[int, str] = {}  # pid -> part, for the CPU figures
# What a district's servers spend (the load clients and posting threads are the bench's).
SERVER_PARTS = ("API (gunicorn)", "API (daphne)", "socket daphnes", "PostgreSQL", "Redis")


def _part(pid: int, ppid: int, name: str, client_pids: set[int]) -> str | None:
    if pid in client_pids:
        return "load clients"
    if pid in SERVERS:
        return SERVERS[pid]
    if ppid in SERVERS:  # gunicorn's workers
        return SERVERS[ppid]
    if name.startswith("postgres"):
        return "PostgreSQL" if _bench_database(pid) else None
    if name.startswith("redis") and "Redis" not in SERVERS.values():
        return "Redis"
    return None


def _bench_database(pid: int) -> bool:
    """A backend of the bench's database, or one of the server's own processes (WAL
    writer, checkpointer): not a backend of another database on a shared machine."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split()
    except OSError:
        return False
    # A backend: "postgres: 15/main: <user> <database> <host(port)> <state>".
    for index, word in enumerate(words):
        if word == "[local]" or (word.endswith(")") and "(" in word):
            return words[index - 1] == os.environ["DATABASE_URL"].rsplit("/", 1)[-1]
    return True


def stop_clients(
    clients: list[subprocess.Popen], lasts: list[int]
) -> tuple[list[list[list]], int]:
    """Each process's clients' logs, once each has its last seq (or 60 s passed)."""
    received, dead = [], 0
    for client, last in zip(clients, lasts, strict=True):
        client.stdin.write(f"stop {last}\n")
        client.stdin.flush()
    for client in clients:
        result = json.loads(client.stdout.readline())
        received.append(result["received"])
        dead += result["dead"]
        client.wait(timeout=30)
    return received, dead


def row(server, count, phase, sent_at: dict[int, float], receipts, dead) -> dict:
    """Latency, lost, doubled and leaked (received but not the client's to see) over the
    receipts: each client's log with the seqs it should have got."""
    latencies, lost, doubled, leaked = [], 0, 0, 0
    for log, expected in receipts:
        seen = Counter(seq for seq, _ in log if seq in sent_at)
        lost += sum(1 for seq in expected if seq not in seen)
        doubled += sum(n - 1 for n in seen.values())
        leaked += sum(1 for seq in seen if seq not in expected)
        latencies += [(at - sent_at[seq]) * 1000 for seq, at in log if seq in expected]
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:  # --clients 0: ingest alone
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]

    return {
        "server": server, "clients": count, "phase": phase, "events": len(sent_at),
        "p50": pct(50), "p95": pct(95), "p99": pct(99), "max": pct(100),
        "lost": lost, "doubled": doubled, "leaked": leaked, "dead": dead,
    }  # fmt: skip


def rss_row(count: int, processes: list[subprocess.Popen]) -> dict:
    rss = hwm = 0
    for process in processes:
        status = Path(f"/proc/{process.pid}/status").read_text().splitlines()
        fields = dict(line.split(":", 1) for line in status)
        rss += int(fields["VmRSS"].split()[0]) // 1024
        hwm += int(fields["VmHWM"].split()[0]) // 1024
    return {"server": "Responder", "clients": count, "phase": "rss", "rss": rss, "hwm": hwm}


def report(results: list[dict], args: argparse.Namespace) -> None:
    print(
        f"\nAPI {args.api_server} processes: {args.api_processes}, socket daphne processes: "
        f"{args.socket_processes}, database pool: {os.environ['DB_POOL_SIZE']}, "
        f"load average: {os.getloadavg()[0]:.1f}, CPU calibration at the end: "
        f"{calibration():.0f} ms (the machine's speed may move during a run)\n"
    )
    print(
        "| server | clients | phase | events | p50 ms | p95 ms | p99 ms | max ms | lost | doubled |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    reference = {(r["clients"], r["phase"]): r for r in results if r["server"] == "reference"}
    extras = []
    for r in results:
        if r["phase"].endswith("cpu"):
            events = r.get("events", FLOOD_EVENTS)
            spent = ", ".join(
                f"{part} {seconds / events * 1000:.1f}"
                for part, seconds in sorted(r["cpu"].items(), key=lambda item: -item[1])
            )
            flood = r["phase"].removesuffix(" cpu").replace("cpu", "flood")
            extras.append(f"CPU ms per event, {flood} at {r['clients']} clients: {spent}")
            server = sum(r["cpu"].get(part, 0.0) for part in SERVER_PARTS) / events * 1000
            extras.append(
                f"server's own CPU per event, {flood} at {r['clients']} clients "
                f"(API, socket daphnes, PostgreSQL, Redis): {server:.1f} ms"
            )
            continue
        if r["phase"] == "rss":
            extras.append(
                f"daphne RSS at {r['clients']} clients: {r['rss']} MiB (peak {r['hwm']})"
            )
            continue
        print(
            f"| {r['server']} | {r['clients']} | {r['phase']} | {r['events']} | {r['p50']:.0f} "
            f"| {r['p95']:.0f} | {r['p99']:.0f} | {r['max']:.0f} | {r['lost']} | {r['doubled']} |"
        )
        if r.get("ingest_per_s"):
            extras.append(
                f"ingested in the {r['phase']} at {r['clients']} clients: "
                f"{r['ingest_per_s']:.0f} events/s"
            )
        if "per_event" in r:
            extras.append(
                f"{r['phase']}: {r['per_event']:.0f} sockets per event on average, "
                f"{r['leaked']} frames to a socket that may not see them"
            )
        ref = reference.get((r["clients"], r["phase"]))
        if r["server"] == "Responder" and ref:
            extras.append(
                f"p99 ratio to reference, {r['clients']} clients, {r['phase']}: "
                f"{r['p99'] / max(ref['p99'], 1):.1f}x"
            )
        if r["dead"]:
            extras.append(f"{r['server']} {r['clients']}: {r['dead']} clients disconnected")
    print()
    for line in extras:
        print(f"- {line}")


if __name__ == "__main__":
    main()
