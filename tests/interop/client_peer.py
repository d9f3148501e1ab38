#!/usr/bin/env python3
"""A Python `websockets` server for ws::client's interop test (tests/integration/client_interop.cpp).

Prints its port, then, on every connection: echoes text and binary messages as they came,
except for these text commands:
  fragment          answers "fragmented" as three frames ("frag", "men", "ted")
  ping-me           pings the client with b"probe" and, once the pong is in, sends "pong:probe"
  close:CODE:REASON closes with that code and reason
Run with Debian's /usr/bin/python3 (python3-websockets).
"""
import asyncio

import websockets


async def handler(ws, path=None):
    async for message in ws:
        if message == "fragment":
            await ws.send(["frag", "men", "ted"])  # an iterable: one fragmented message
        elif message == "ping-me":
            await (await ws.ping(b"probe"))
            await ws.send("pong:probe")
        elif isinstance(message, str) and message.startswith("close:"):
            _, code, reason = message.split(":", 2)
            await ws.close(int(code), reason)
        else:
            await ws.send(message)


async def main():
    async with websockets.serve(
        handler, "127.0.0.1", 0, max_size=2 * 1024 * 1024, compression=None
    ) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()


asyncio.run(main())
