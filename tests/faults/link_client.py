"""A tablet in a process of its own (run inside a network namespace by test_silent_link):
`python -m tests.faults.link_client HOST PORT COOKIE`. It follows the PWA's rules
(frontend/src/link.js) and prints one JSON line per happening: {"what", "seq", "at"}, `at`
on the machine's monotonic clock, which every process shares."""

from __future__ import annotations

import asyncio
import json
import sys
import time

from tests.faults.feed_client import FeedClient, pwa_reconnect_delays, pwa_silent_limit


def note(what: str, seq: int | None) -> None:
    sys.stdout.write(json.dumps({"what": what, "seq": seq, "at": time.monotonic()}) + "\n")
    sys.stdout.flush()


async def main(host: str, port: int, cookie: str) -> None:
    draws = [pwa_reconnect_delays(attempt, 1)[0] for attempt in range(6)]
    tablet = FeedClient(
        port,
        cookie,
        lambda attempt: draws[min(attempt, 5)],
        host=host,
        silent_limit=pwa_silent_limit(),
        note=note,
    )
    tablet.start()
    await asyncio.Event().wait()  # until the test ends this process


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
