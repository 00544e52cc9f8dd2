"""Sends signed door events for the demo district to the ingest endpoint, like a panel."""

from __future__ import annotations

import json
import os
import random
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accesslog.models import AccessSystem, Door, EventType
from accesslog.signatures import HEADER, sign

# Roughly what a school district's panels report in a day: mostly badges at doors.
FREQUENCY = {
    EventType.ACCESS_GRANTED: 70,
    EventType.ACCESS_DENIED: 10,
    EventType.DOOR_HELD: 8,
    EventType.INTERCOM_CALL: 6,
    EventType.DOOR_FORCED: 3,
    EventType.TAMPER: 2,
    EventType.DURESS: 1,
}
PEOPLE = ["Avery Brooks", "Jordan Lee", "Sam Ortiz", "Riley Chen", "Morgan Patel"]


def simulated_event(door: Door, rng: random.Random) -> dict:
    kind = rng.choices(list(FREQUENCY), weights=list(FREQUENCY.values()))[0]
    event: dict[str, Any] = {
        "source_event_id": f"sim-{uuid.uuid4().hex}",
        "type": kind.value,
        "door": door.external_id,
        "occurred_at": timezone.localtime().isoformat(timespec="seconds"),
        "details": {"simulated": True},
    }
    if kind in (EventType.ACCESS_GRANTED, EventType.ACCESS_DENIED, EventType.DURESS):
        event["credential"] = str(rng.randrange(10_000, 99_999))
        event["person"] = rng.choice(PEOPLE)
    return event


def event_send(url: str, secret: str, event: dict) -> int:
    body = json.dumps(event).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", HEADER: sign(body, secret)},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


class Command(BaseCommand):
    help = "Send realistic signed door events for the demo district's doors."

    def add_arguments(self, parser: Any) -> None:
        port = os.environ.get("PORT", "8000")
        parser.add_argument("--system", help="Access system slug (default: the first with doors)")
        parser.add_argument("--url", default=f"http://127.0.0.1:{port}", help="Server base URL")
        parser.add_argument("--rate", type=float, default=0.2, help="Events per second")
        parser.add_argument("--count", type=int, default=0, help="Stop after N (0: never)")
        parser.add_argument("--seed", type=int, default=None, help="Random seed")

    def handle(self, *args: Any, **options: Any) -> None:
        system = self._system(options["system"])
        doors = list(system.doors.all())
        url = f"{options['url'].rstrip('/')}/api/v1/access/{system.slug}/events"
        rng, sent = random.Random(options["seed"]), 0
        self.stdout.write(f"Sending to {url}: {len(doors)} doors, {options['rate']}/s")
        while not options["count"] or sent < options["count"]:
            event = simulated_event(rng.choice(doors), rng)
            try:
                status = event_send(url, system.webhook_secret, event)
            except OSError as error:  # the server is starting or restarting: try again
                self.stderr.write(f"{url}: {error}")
                time.sleep(2)
                continue
            sent += 1
            self.stdout.write(f"{status} {event['type']} at {event['door']}")
            time.sleep(rng.expovariate(options["rate"]))

    def _system(self, slug: str | None) -> AccessSystem:
        systems = AccessSystem.objects.filter(doors__isnull=False).distinct()
        system = systems.filter(slug=slug).first() if slug else systems.first()
        if system is None:
            raise CommandError("No access system with doors: run `manage.py seed_demo` first.")
        return system
