"""The API's CPU per ingested event, in process: signed POSTs through Django's WSGI handler
and the real view, production settings, PostgreSQL and Redis, no HTTP server.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_x REDIS_URL=redis://127.0.0.1:6379/12 \\
      .venv/bin/python -W ignore -m bench.ingest_cpu [--tree /tmp/old] [--rounds 2] \\
      [--events 400] [--mix flood] [--profile 200]

Each code tree (this one, and `--tree`s: a checkout of the code to compare, e.g.
`git archive main | tar -x -C /tmp/old`) runs in a process of its own, in turns (old, new,
old, new): the machine is shared, so only ratios within one run say much. Per tree and
turn: the median and best CPU time of the process per event over blocks, the queries and
Redis round trips (commands) of one event, and PostgreSQL's backends' CPU per event.
`--profile N`: cProfile on CPU time over N more events, saved per tree for pstats.
Without REDIS_URL an embedded Redis; the database is migrated, its events kept.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
WARM_UP, COUNTED = 40, 10


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", type=Path, action="append", default=[])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--block", type=int, default=25)
    parser.add_argument("--mix", choices=["flood", "badges"], default="flood")
    parser.add_argument("--threads", type=int, default=1, help="concurrent POSTs, as gthread")
    parser.add_argument("--profile", type=int, default=0)
    parser.add_argument(
        "--gunicorn", action="store_true", help="also through gunicorn, as alarm_fanout runs it"
    )
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    sys.path.insert(0, str(ROOT))
    from bench.common import bench_services, calibration, throwaway_vapid_key

    print(f"CPU calibration: SHA-256 of 64 MiB in {calibration():.0f} ms", flush=True)
    trees = [*[tree.resolve() for tree in args.tree], ROOT]
    with (
        tempfile.TemporaryDirectory(prefix="ingest-cpu-") as tmp,
        # As bench.alarm_fanout runs gunicorn: push on, a pool of connections.
        bench_services(
            Path(tmp),
            DB_CONN_MAX_AGE="0",
            DB_POOL_SIZE="4",
            VAPID_PRIVATE_KEY=throwaway_vapid_key(),
        ) as redis,
    ):
        subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True)
        os.environ["BENCH_REDIS_PID"] = str(redis.pid if redis else "")
        print(
            f"{args.mix}, {args.events} events per turn in blocks of {args.block},"
            f" {args.threads} thread(s)",
            flush=True,
        )
        print(_HEADER)
        try:
            for turn in range(args.rounds):
                for tree in trees:
                    _turn(tree, args, profile=args.profile if turn == 0 else 0)
        finally:
            # The push tasks queued (settings' route for responder.tasks.push_*), which no
            # worker runs here: a later test's worker on this Redis would run them all.
            import redis as redis_client

            redis_client.Redis.from_url(os.environ["REDIS_URL"]).delete("push")
    print(f"CPU calibration: SHA-256 of 64 MiB in {calibration():.0f} ms")
    print(f"load average: {os.getloadavg()[0]:.1f}")


_HEADER = (
    "tree                      | CPU ms/event median (best) | PostgreSQL trips (statements) "
    "| Redis trips (commands) | PostgreSQL ms/event | Redis server ms/event"
)


def _turn(tree: Path, args: argparse.Namespace, *, profile: int) -> None:
    command = [PYTHON, "-W", "ignore", str(Path(__file__).resolve()), "--worker", str(tree),
               "--events", str(args.events), "--block", str(args.block), "--mix", args.mix,
               "--threads", str(args.threads), "--profile", str(profile)]  # fmt: skip
    answer = subprocess.run(command, cwd=tree, check=True, capture_output=True, text=True)
    result = json.loads(answer.stdout.strip().splitlines()[-1])
    blocks = result["blocks"]
    redis = f"{result['redis_ms']:.2f}" if result["redis_ms"] is not None else "(shared)"
    print(
        f"{str(tree)[-25:]:25} | {statistics.median(blocks):6.2f} ({min(blocks):5.2f})"
        f"{'':14} | {result['pg_trips']:5.1f} ({result['statements']:4.1f}){'':17}"
        f" | {result['trips']:5.1f} ({result['commands']:4.1f}){'':10}"
        f" | {result['postgres_ms']:19.2f} | {redis:>21}",
        flush=True,
    )
    if profile:
        print(f"  profile: {result['profile']}", flush=True)
    if args.gunicorn:
        cpu, rate = _through_gunicorn(tree, result["slug"], result["secret"], args)
        print(f"  through gunicorn: {cpu:.2f} ms CPU per event, {rate:.0f} events/s", flush=True)


def _through_gunicorn(
    tree: Path, slug: str, secret: str, args: argparse.Namespace
) -> tuple[float, float]:
    """The tree's gunicorn as bench.alarm_fanout starts it (2 workers of 4 threads), POSTs
    over HTTP from `--threads` connections: its processes' CPU per event, and the rate."""
    import http.client
    import threading

    sys.path.insert(0, str(ROOT))
    from bench.common import wait_for_port
    from responder.embedded_redis import free_port

    port = free_port()
    command = [PYTHON, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "--workers", "2",
               "--worker-class", "gthread", "--threads", "4", "--keep-alive", "75",
               "responder.wsgi:application"]  # fmt: skip
    server = subprocess.Popen(
        command, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, seconds=120)

        def post_all(count: int) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port)
            for number in range(count):
                body, headers = _signed(slug, secret, args.mix, number)
                connection.request("POST", f"/api/v1/access/{slug}/events", body, headers)
                answer = connection.getresponse()
                answer.read()
                assert answer.status == 202, answer.status
            connection.close()

        def run(count: int) -> float:
            threads = [
                threading.Thread(target=post_all, args=(count // args.threads,))
                for _ in range(args.threads)
            ]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return time.perf_counter() - started

        run(max(200, 25 * args.threads))  # both workers warm (their URLconf loads lazily)
        processes = [server.pid, *_children(server.pid)]
        before = sum(_process_cpu(pid) for pid in processes)
        elapsed = run(args.events)
        events = args.events // args.threads * args.threads
        return (sum(_process_cpu(pid) for pid in processes) - before) / events, events / elapsed
    finally:
        server.terminate()
        server.wait(timeout=30)


def _children(pid: int) -> list[int]:
    listed = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(child) for child in listed.split()]


def _signed(slug: str, secret: str, mix: str, number: int) -> tuple[bytes, dict[str, str]]:
    """A new event's body and headers, as bench.alarm_fanout posts them."""
    import secrets
    from datetime import UTC, datetime

    from accesslog.signatures import HEADER, sign  # no Django in it: the driver uses it too

    event = {
        "source_event_id": secrets.token_hex(8),
        "type": "door_forced" if mix == "flood" else "access_granted",
        "door": "door-1",
        "occurred_at": datetime.now(UTC).isoformat(),
        "person": f"Person {number}",
    }
    body = json.dumps(event).encode()
    return body, {"Content-Type": "application/json", HEADER: sign(body, secret)}


# --- In each tree's process -----------------------------------------------------------------


def worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(args.worker))
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    handler, slug, secret = WSGIHandler(), *_door()
    _posted(handler, [_post(slug, secret, args.mix, n) for n in range(WARM_UP)], args.threads)
    blocks, postgres, redis = [], _backends_cpu(), _redis_cpu()
    for _ in range(args.events // args.block):
        posts = [_post(slug, secret, args.mix, number) for number in range(args.block)]
        started = time.process_time()  # every thread's
        _posted(handler, posts, args.threads)
        blocks.append((time.process_time() - started) * 1000 / args.block)
    events = len(blocks) * args.block
    postgres = (_backends_cpu() - postgres) / events
    redis = None if redis is None else (_redis_cpu() - redis) / events  # type: ignore[operator]
    statements, pg_trips, trips, commands = _counted(handler, slug, secret, args.mix)
    profile = _profiled(handler, slug, secret, args) if args.profile else ""
    result = {"blocks": blocks, "postgres_ms": postgres, "redis_ms": redis,
              "statements": statements, "pg_trips": pg_trips, "trips": trips,
              "commands": commands, "profile": profile, "slug": slug,
              "secret": secret}  # fmt: skip
    print(json.dumps(result))


def _door() -> tuple[str, str]:
    """The alarm_fanout bench's door: `door-1` of system `bench` at Bench High."""
    from accesslog.models import AccessSystem, Door
    from maps.models import Building, Campus, District

    district, _ = District.objects.get_or_create(name="Bench District")
    campus, _ = Campus.objects.get_or_create(district=district, name="Bench Campus")
    high, _ = Building.objects.get_or_create(campus=campus, name="Bench High")
    system, _ = AccessSystem.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    Door.objects.get_or_create(
        system=system, external_id="door-1", defaults={"building": high, "name": "Gym"}
    )
    return system.slug, system.webhook_secret


def _post(slug: str, secret: str, mix: str, number: int):  # noqa: ANN202
    """A signed POST of a new event, made before the clock runs (the sender's work)."""
    import io

    body, headers = _signed(slug, secret, mix, number)
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": f"/api/v1/access/{slug}/events",
        "SCRIPT_NAME": "", "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_RESPONDER_SIGNATURE": headers["X-Responder-Signature"],  # signatures.HEADER
        "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }  # fmt: skip

    def post(handler) -> None:  # noqa: ANN001
        statuses = []
        response = handler(environ, lambda status, headers: statuses.append(status))
        b"".join(response)
        response.close()  # request_finished: the connection goes back, as under gunicorn
        assert statuses[0].startswith("202"), statuses

    return post


def _posted(handler, posts: list, threads: int) -> None:  # noqa: ANN001
    if threads == 1:
        for post in posts:
            post(handler)
        return
    import threading

    from django.db import connection

    def share(mine: list) -> None:
        for post in mine:
            post(handler)
        connection.close()

    workers = [threading.Thread(target=share, args=(posts[i::threads],)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def _counted(handler, slug: str, secret: str, mix: str) -> tuple[float, ...]:  # noqa: ANN001
    """Per event, over COUNTED events: SQL statements, round trips to PostgreSQL (psycopg
    sends BEGIN and COMMIT as statements of their own), Redis round trips and commands."""
    import redis
    from django.db import connection
    from django.db.backends.base.base import BaseDatabaseWrapper

    counts = {"statements": 0, "transactions": 0, "trips": 0, "commands": 0}

    def query(execute, sql, params, many, context):  # noqa: ANN001, ANN202
        counts["statements"] += 1
        return execute(sql, params, many, context)

    commit, rollback = BaseDatabaseWrapper.commit, BaseDatabaseWrapper.rollback

    def ended(end):  # noqa: ANN001, ANN202
        def wrapper(self) -> None:  # noqa: ANN001
            counts["transactions"] += 1
            end(self)

        return wrapper

    single, pipelined = redis.Redis.execute_command, redis.client.Pipeline.execute

    def command(self, *args, **options):  # noqa: ANN001, ANN202
        counts["trips"] += 1
        counts["commands"] += 1
        return single(self, *args, **options)

    def execute(self, *args, **options):  # noqa: ANN001, ANN202
        counts["trips"] += 1
        counts["commands"] += len(self.command_stack) + (2 if self.transaction else 0)
        return pipelined(self, *args, **options)

    redis.Redis.execute_command, redis.client.Pipeline.execute = command, execute
    BaseDatabaseWrapper.commit, BaseDatabaseWrapper.rollback = ended(commit), ended(rollback)
    try:
        with connection.execute_wrapper(query):
            for number in range(COUNTED):
                _post(slug, secret, mix, number)(handler)
    finally:
        redis.Redis.execute_command, redis.client.Pipeline.execute = single, pipelined
        BaseDatabaseWrapper.commit, BaseDatabaseWrapper.rollback = commit, rollback
    statements = counts["statements"]
    pg_trips = statements + 2 * counts["transactions"]
    return tuple(n / COUNTED for n in (statements, pg_trips, counts["trips"], counts["commands"]))


def _profiled(handler, slug: str, secret: str, args: argparse.Namespace) -> str:  # noqa: ANN001
    import cProfile

    posts = [_post(slug, secret, args.mix, number) for number in range(args.profile)]
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for post in posts:
        post(handler)
    profiler.disable()
    path = Path(tempfile.gettempdir()) / f"ingest-cpu-{args.worker.name}-{os.getpid()}.prof"
    profiler.dump_stats(path)
    return str(path)


def _backends_cpu() -> float:
    """CPU ms of this database's PostgreSQL backends so far, where they run on this machine."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        pids = [pid for (pid,) in cursor.fetchall()]
    connection.close()
    return sum(_process_cpu(pid) for pid in pids)


def _redis_cpu() -> float | None:
    pid = os.environ.get("BENCH_REDIS_PID")
    return _process_cpu(int(pid)) if pid else None


def _process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
