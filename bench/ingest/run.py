"""Events ingested per second through the real view, against a view that only answers 202.

    DATABASE_URL=postgres://…/h_x .venv/bin/python bench/ingest/run.py [--events 2000] [--threads 4]

Both go through Django's full handler and middleware (in process, no HTTP server), with
the same signed bodies, in the same run. Uses the database in DATABASE_URL (migrated);
it adds a `bench` access system and its events there.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "responder.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from accesslog.models import AccessSystem, Door, Event, SystemKind  # noqa: E402
from maps.models import Building  # noqa: E402
from responder.demo.management.commands.simulate_doors import simulated_event  # noqa: E402

settings.ALLOWED_HOSTS = ["*"]
settings.ROOT_URLCONF = "bench.ingest.urls"


def run(path: str, system: AccessSystem, door: Door, args: argparse.Namespace) -> float:
    from accesslog.signatures import HEADER, sign

    events, threads, rng = args.events, args.threads, random.Random(1)
    bodies = [json.dumps(_event(door, rng, args.mix)) for _ in range(events)]
    answers: list[int] = []

    def work(share: list[str]) -> None:
        client = Client()
        for body in share:
            raw = body.encode()
            response = client.post(
                path, raw, content_type="application/json",
                headers={HEADER: sign(raw, system.webhook_secret)},
            )  # fmt: skip
            answers.append(response.status_code)
        connection.close()

    workers = [threading.Thread(target=work, args=(bodies[i::threads],)) for i in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    assert answers.count(202) == events, {code: answers.count(code) for code in set(answers)}
    return events / elapsed


def _event(door: Door, rng: random.Random, mix: str) -> dict:
    """The simulator's realistic mix (mostly badges), or only door_forced alarms, which
    also open or join an incident and queue pushes: the dearest kind."""
    event = simulated_event(door, rng)
    return event if mix == "realistic" else {**event, "type": "door_forced"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--mix", choices=["realistic", "alarms"], default="realistic")
    args = parser.parse_args()
    system, _ = AccessSystem.objects.get_or_create(
        slug="bench", defaults={"name": "Bench", "kind": SystemKind.GENERIC}
    )
    building = Building.objects.first()
    door = Door.objects.filter(system=system).first() or Door.objects.create(
        system=system, external_id="bench-door", name="Bench door", building=building
    )
    before = Event.objects.count()
    reference = run("/bench/accepted", system, door, args)
    real = run(f"/api/v1/access/{system.slug}/events", system, door, args)
    assert Event.objects.count() == before + args.events
    print(
        f"{connection.vendor}, {args.mix} mix, {args.threads} threads, {args.events} events each"
    )  # noqa: T201
    print(f"reference (202 only): {reference:8.0f} events/s")  # noqa: T201
    print(f"real ingest view:     {real:8.0f} events/s ({real / reference:.0%})")  # noqa: T201


if __name__ == "__main__":
    main()
