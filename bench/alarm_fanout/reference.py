"""The reference: a minimal `websockets` broadcast server. `/publish` clients' messages go
to every other client as they are."""

import asyncio
import sys

import websockets

clients: set = set()


async def handler(ws) -> None:
    if ws.request.path == "/publish":
        async for message in ws:
            websockets.broadcast(clients, message)
        return
    clients.add(ws)
    try:
        await ws.wait_closed()
    finally:
        clients.discard(ws)


async def main(port: int) -> None:
    async with websockets.serve(handler, "127.0.0.1", port, ping_interval=20, backlog=2048):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
