"""One load process: COUNT WebSocket clients that record when each event frame arrives.

Prints "ready" once every client is connected (and, with --resume, live), then reads
"stop LAST_SEQ" from stdin and prints {"received": [[seq, unix time], ...] per client} as JSON.
"""

import argparse
import asyncio
import json
import sys
import time

import websockets


async def client(url: str, headers: dict, resume: bool, log: list, ready: asyncio.Event) -> None:
    async with websockets.connect(
        url, additional_headers=headers, max_queue=None, ping_interval=None, open_timeout=60
    ) as ws:
        if resume:
            await ws.send(json.dumps({"type": "resume", "after": 0}))
        else:
            ready.set()
        async for text in ws:
            now = time.time()
            frame = json.loads(text)
            kind = frame.get("type")
            if kind == "event":
                log.append((frame["seq"], now))
            elif kind == "live":
                ready.set()


async def main(args: argparse.Namespace) -> None:
    headers = {"Origin": args.origin}
    if args.cookie:
        headers["Cookie"] = args.cookie
    logs = [[] for _ in range(args.count)]
    readies = [asyncio.Event() for _ in range(args.count)]
    tasks = []
    for index in range(args.count):
        url = args.urls[index % len(args.urls)]
        tasks.append(
            asyncio.create_task(client(url, headers, args.resume, logs[index], readies[index]))
        )
        if index % 50 == 49:
            await asyncio.sleep(0.05)  # don't overrun the listen backlog
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    # "stop LAST_SEQ": wait (bounded) until every client has LAST_SEQ, so a backlog still
    # draining counts as latency, not as loss.
    last = int((await loop.run_in_executor(None, sys.stdin.readline)).split()[1])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(not log or log[-1][0] < last for log in logs):
        await asyncio.sleep(0.2)
    dead = sum(task.done() for task in tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"received": logs, "dead": dead}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--origin", default="http://127.0.0.1")
    parser.add_argument("--cookie", default="")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("urls", nargs="+")
    asyncio.run(main(parser.parse_args()))
