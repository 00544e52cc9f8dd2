"""Alarm fan-out: POST -> receipt latency at every WebSocket client, Responder vs a reference.

    DATABASE_URL=... REDIS_URL=... python -m bench.alarm_fanout [--clients 100 1000]

Without DATABASE_URL it uses a fresh SQLite file; without REDIS_URL an embedded Redis.
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

from responder.embedded_redis import free_port
from responder.embedded_redis import start as start_redis

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
SINGLE_EVENTS, SINGLE_GAP = 20, 0.5
BURST_EVENTS, BURST_RATE = 50, 10
FLOOD_EVENTS, FLOOD_THREADS = 400, 8
SLUG = "bench"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--socket-processes", type=int, default=1)
    # Production runs several API processes behind the proxy; one daphne runs a sync
    # view's database waits one GIL at a time.
    parser.add_argument("--api-processes", type=int, default=2)
    parser.add_argument("--client-processes", type=int, default=0, help="0: 1 per 500")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="alarm-fanout-") as tmp:
        redis = None
        if not os.environ.get("REDIS_URL"):
            port = free_port()
            redis = start_redis(port, tmp)
            os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
        os.environ.update(
            DJANGO_SETTINGS_MODULE="responder.settings",
            DEBUG="false",
            SECRET_KEY=secrets.token_urlsafe(60),
            SECURE_SSL_REDIRECT="false",
            LOG_LEVEL="WARNING",
            # Not persistent: under daphne every request runs in a thread of its own, and
            # each would keep a connection open (the flood ran PostgreSQL out of them).
            DB_CONN_MAX_AGE=os.environ.get("DB_CONN_MAX_AGE", "0"),
            # A pool instead, where psycopg's pool is installed: 100 -> 150 ingests/s.
            DB_POOL_SIZE=os.environ.get("DB_POOL_SIZE", "4" if pool_installed() else "0"),
        )
        try:
            run(args, Path(tmp))
        finally:
            if redis:
                redis.terminate()
                redis.wait(timeout=10)


def pool_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("psycopg_pool") is not None


def run(args: argparse.Namespace, tmp: Path) -> None:
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True)
    cookie, secret = setup_district()
    api_ports = [free_port() for _ in range(args.api_processes)]
    socket_ports = [free_port() for _ in range(args.socket_processes)]
    daphnes = [daphne(port, tmp) for port in [*api_ports, *socket_ports]]
    reference_port = free_port()
    reference = subprocess.Popen(
        [PYTHON, "-m", "bench.alarm_fanout.reference", str(reference_port)]
    )
    results = []
    try:
        wait_for_port(*api_ports, *socket_ports, reference_port)
        poster = Poster(api_ports, secret)
        if not poster.available():
            print("No ingest endpoint yet: storing events through the ORM, then announce()")
            poster = OrmPoster()
        for count in args.clients:
            urls = [f"ws://127.0.0.1:{port}/ws/events" for port in socket_ports]
            results += measure(
                "Responder", count, urls, poster.post, cookie=cookie, flood=poster.post,
                processes=args.client_processes,
            )  # fmt: skip
            results.append(rss_row(count, daphnes[len(api_ports) :]))
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
            process.wait(timeout=20)
    report(results, args)


# --- The district under test ---------------------------------------------------------


def setup_district() -> tuple[str, str]:
    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accesslog.models import AccessSystem, Door
    from maps.models import Building, Campus, District
    from responder.middleware import SIGNED_IN_AT
    from responder.models import Grant

    district, _ = District.objects.get_or_create(name="Bench District")
    campus, _ = Campus.objects.get_or_create(district=district, name="Bench Campus")
    building, _ = Building.objects.get_or_create(campus=campus, name="Bench High")
    system, _ = AccessSystem.objects.get_or_create(slug=SLUG, defaults={"name": "Bench"})
    Door.objects.get_or_create(
        system=system, external_id="door-1", defaults={"building": building, "name": "Gym"}
    )
    user, _ = User.objects.get_or_create(username="bench-officer")
    Grant.objects.get_or_create(user=user, building=building, capabilities=["alarms"])
    device = TOTPDevice.objects.create(user=user, name="bench")
    session = SessionStore()
    session.update(
        {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "responder.backends.LockoutModelBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
            SIGNED_IN_AT: time.time(),
            DEVICE_ID_SESSION_KEY: device.persistent_id,
        }
    )
    session.save()
    return f"sessionid={session.session_key}", system.webhook_secret


def daphne(port: int, tmp: Path) -> subprocess.Popen:
    command = [
        PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0",
        "--websocket_connect_timeout", "60", "responder.asgi:application",
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, stdout=(tmp / f"daphne-{port}.log").open("w"))


def wait_for_port(*ports: int) -> None:
    import socket

    for port in ports:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"Nothing listens on {port}") from None
                time.sleep(0.1)


# --- Posting events ----------------------------------------------------------------


class Poster:
    """Signed POSTs to the ingest endpoints, one connection per thread, the threads
    spread over the API processes in turn (as a proxy would)."""

    def __init__(self, ports: list[int], secret: str) -> None:
        self.ports, self.secret, self.local = ports, secret, threading.local()
        self.turn = itertools.count()

    def available(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.ports[0])
        connection.request("POST", f"/api/v1/access/{SLUG}/events", b"{}")
        return connection.getresponse().status != 404

    def post(self) -> tuple[int, float]:
        body = json.dumps(
            {
                "source_event_id": secrets.token_hex(8),
                "type": "door_forced",
                "door": "door-1",
                "occurred_at": datetime.now(UTC).isoformat(),
            }
        ).encode()
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
        self.local.connection.request("POST", f"/api/v1/access/{SLUG}/events", body, headers)
        response = self.local.connection.getresponse()
        answer = response.read()
        if response.status != 202:
            raise SystemExit(f"Ingest answered {response.status}: {answer[:200]!r}")
        return json.loads(answer)["seq"], sent


class OrmPoster:
    """Stand-in for the ingest service: store with the next seq, announce after commit."""

    def post(self) -> tuple[int, float]:
        from django.db import transaction
        from django.db.models import Max
        from django.utils import timezone

        from accesslog.models import AccessSystem, Door, Event
        from responder.events import announce

        sent = time.time()
        with transaction.atomic():
            system = AccessSystem.objects.select_for_update().get(slug=SLUG)
            seq = (Event.objects.aggregate(m=Max("seq"))["m"] or 0) + 1
            event = Event.objects.create(
                seq=seq, system=system, source_event_id=secrets.token_hex(8),
                type="door_forced", severity="alarm", door=Door.objects.get(system=system),
                door_external_id="door-1", occurred_at=timezone.now(),
            )  # fmt: skip
            transaction.on_commit(lambda: announce(event))
        return seq, sent


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
    server: str, count: int, urls: list[str], post, *, cookie="", flood=None, processes=0
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
    rate = None
    if flood:
        start = time.monotonic()
        phases["flood"] = flood_posts(flood)
        rate = FLOOD_EVENTS / (time.monotonic() - start)
    last = max(seq for sent in phases.values() for seq, _ in sent)
    received, dead = stop_clients(clients, last)
    return [
        row(server, count, phase, sent, received, dead, rate if phase == "flood" else None)
        for phase, sent in phases.items()
    ]


def flood_posts(post) -> list:
    sent: list = []
    per_thread = FLOOD_EVENTS // FLOOD_THREADS

    def work() -> None:
        for _ in range(per_thread):
            sent.append(post())

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


def stop_clients(clients: list[subprocess.Popen], last: int) -> tuple[list[list], int]:
    received, dead = [], 0
    for client in clients:
        client.stdin.write(f"stop {last}\n")
        client.stdin.flush()
    for client in clients:
        result = json.loads(client.stdout.readline())
        received += result["received"]
        dead += result["dead"]
        client.wait(timeout=30)
    return received, dead


def row(server, count, phase, sent, received, dead, rate) -> dict:
    sent_at = dict(sent)
    latencies, lost, doubled = [], 0, 0
    for log in received:
        seen = Counter(seq for seq, _ in log if seq in sent_at)
        lost += sum(1 for seq in sent_at if seq not in seen)
        doubled += sum(n - 1 for n in seen.values())
        latencies += [(at - sent_at[seq]) * 1000 for seq, at in log if seq in sent_at]
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]

    return {
        "server": server, "clients": count, "phase": phase, "events": len(sent),
        "p50": pct(50), "p95": pct(95), "p99": pct(99), "max": latencies[-1],
        "lost": lost, "doubled": doubled, "dead": dead, "ingest_per_s": rate,
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
        f"\nAPI daphne processes: {args.api_processes}, socket daphne processes: "
        f"{args.socket_processes}, database pool: {os.environ['DB_POOL_SIZE']}, "
        f"load average: {os.getloadavg()[0]:.1f}\n"
    )
    print(
        "| server | clients | phase | events | p50 ms | p95 ms | p99 ms | max ms | lost | doubled |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    reference = {(r["clients"], r["phase"]): r for r in results if r["server"] == "reference"}
    extras = []
    for r in results:
        if r["phase"] == "rss":
            extras.append(
                f"daphne RSS at {r['clients']} clients: {r['rss']} MiB (peak {r['hwm']})"
            )
            continue
        print(
            f"| {r['server']} | {r['clients']} | {r['phase']} | {r['events']} | {r['p50']:.0f} "
            f"| {r['p95']:.0f} | {r['p99']:.0f} | {r['max']:.0f} | {r['lost']} | {r['doubled']} |"
        )
        if r["ingest_per_s"]:
            extras.append(f"ingested at {r['clients']} clients: {r['ingest_per_s']:.0f} events/s")
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
