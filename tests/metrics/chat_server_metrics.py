#!/usr/bin/env python3
"""examples/chat_server's GET /metrics: Python `websockets` clients join, chat and leave in
known ways (closing with 1000, with an application code, and with a message past the size
limit), and the counts the page shows are checked against what they did; every page is also
checked by Prometheus' own `promtool check metrics`.

    /usr/bin/python3 tests/metrics/chat_server_metrics.py --chat-server PATH --promtool PATH

Exit status 1 on any failure.
"""

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
import processes  # noqa: E402
from checks import check, summary  # noqa: E402

try:
    import websockets
except ImportError:
    sys.exit("chat_server_metrics.py: needs python3-websockets: run it with /usr/bin/python3")

TIMEOUT = 10
MAX_MESSAGE = 4096  # chat_server --max-message-size: a larger message is closed with 1009
LISTEN_RE = re.compile(r"^listening on ws://127\.0\.0\.1:(\d+)/$")
SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$")


class Scraper:
    def __init__(self, port, promtool):
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.promtool = promtool
        self.scrapes = 0

    def scrape(self):
        """GETs the page, checks its Content-Type and runs promtool on it; returns the samples
        as {"name{labels}": value}."""
        with urllib.request.urlopen(self.url, timeout=TIMEOUT) as response:
            body = response.read().decode("utf-8")
            content_type = response.headers.get("Content-Type")
        self.scrapes += 1
        first = self.scrapes == 1
        if first:
            check(response.status == 200, "GET /metrics answers 200", response.status)
            check(content_type == "text/plain; version=0.0.4; charset=utf-8",
                  "GET /metrics has Prometheus' Content-Type", repr(content_type))
        lint = subprocess.run([self.promtool, "check", "metrics"], input=body, text=True,
                              capture_output=True, timeout=TIMEOUT)
        if lint.returncode != 0 or first:
            check(lint.returncode == 0, f"promtool check metrics accepts scrape {self.scrapes}",
                  lint.stdout + lint.stderr + "\n" + body)
        samples = {}
        for line in body.splitlines():
            match = SAMPLE_RE.match(line)
            if match:
                samples[match.group(1)] = float(match.group(2))
            elif not line.startswith("# "):
                check(False, "every line is a comment or a sample", repr(line))
        return samples

    def until(self, condition, what):
        """Scrapes until `condition(samples)` holds (the server counts a close once the
        connection has ended, a moment after the client saw the Close); returns the samples."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            samples = self.scrape()
            if condition(samples) or time.monotonic() > deadline:
                check(condition(samples), what, repr(samples))
                return samples
            time.sleep(0.05)


def closed(samples, code):
    return samples.get(f'wschat_connections_closed_total{{code="{code}"}}')


async def envelope(ws, kind):
    """The next JSON envelope of type `kind`, skipping others."""

    async def wait():
        while True:
            e = json.loads(await ws.recv())
            if e["type"] == kind:
                return e

    return await asyncio.wait_for(wait(), TIMEOUT)


async def scenario(port, scraper):
    url = f"ws://127.0.0.1:{port}/rooms/general"
    kw = dict(open_timeout=TIMEOUT, close_timeout=TIMEOUT, ping_interval=None)
    alice = await websockets.connect(f"{url}?name=alice", **kw)
    bob = await websockets.connect(f"{url}?name=bob", **kw)
    carol = await websockets.connect(f"{url}?name=carol", **kw)
    try:
        for ws in (alice, bob, carol):
            await envelope(ws, "welcome")
        sent = [json.dumps({"type": "message", "text": f"line {i} 你好"}) for i in range(3)]
        sent.append(json.dumps({"type": "message", "text": "from bob"}))
        for text in sent[:3]:
            await alice.send(text)
        await bob.send(sent[3])
        for _ in sent:  # once carol has every message, the server has read them all
            await envelope(carol, "message")
        received_bytes = sum(len(text.encode("utf-8")) for text in sent)

        samples = scraper.until(lambda s: s.get("wschat_connections_open") == 3,
                                "three connections open")
        check(samples.get("wschat_connections_opened_total") == 3, "three connections opened",
              samples.get("wschat_connections_opened_total"))
        check(samples.get('wschat_room_members{room="general"}') == 3, "three members in the room",
              samples.get('wschat_room_members{room="general"}'))
        check(samples.get("wschat_messages_received_total") == len(sent),
              f"{len(sent)} messages received", samples.get("wschat_messages_received_total"))
        check(samples.get("wschat_received_bytes_total") == received_bytes,
              f"{received_bytes} bytes received", samples.get("wschat_received_bytes_total"))
        room = '{room="general"}'
        check(samples.get("wschat_room_messages_received_total" + room) == len(sent),
              f"the room counted {len(sent)} messages",
              samples.get("wschat_room_messages_received_total" + room))
        check(samples.get("wschat_room_joins_total" + room) == 3, "the room counted three joins",
              samples.get("wschat_room_joins_total" + room))
        # Each message went to three members, besides the presence deltas and the replies.
        check((samples.get("wschat_room_messages_sent_total" + room) or 0) >= 3 * len(sent),
              "the room counted every delivery",
              samples.get("wschat_room_messages_sent_total" + room))

        await carol.close(code=4001, reason="going home")
        await bob.close(code=1000)
        await alice.send("x" * (MAX_MESSAGE + 1))  # past the limit: the server closes 1009
        await asyncio.wait_for(alice.wait_closed(), TIMEOUT)
        check(alice.close_code == 1009, "a message past the limit is closed with 1009",
              alice.close_code)
    finally:
        for ws in (alice, bob, carol):
            await ws.close()

    samples = scraper.until(
        lambda s: s.get("wschat_connections_open") == 0 and closed(s, 1009) == 1,
        "every connection counted closed")
    check(closed(samples, 1000) == 1, "one close with 1000", closed(samples, 1000))
    check(closed(samples, "other") == 1, "one close with an application code (4001)",
          closed(samples, "other"))
    check(closed(samples, 1006) == 0, "no connection ended without a Close frame",
          closed(samples, 1006))
    check(samples.get('wschat_limit_hits_total{limit="message_size"}') == 1,
          "the size limit counted once",
          samples.get('wschat_limit_hits_total{limit="message_size"}'))
    check(samples.get('wschat_limit_hits_total{limit="message_rate"}') == 0,
          "no rate limit hit", samples.get('wschat_limit_hits_total{limit="message_rate"}'))
    check(samples.get("wschat_messages_received_total") == len(sent),
          "the refused message was not counted as received",
          samples.get("wschat_messages_received_total"))
    check(samples.get('wschat_room_members{room="general"}') == 0, "nobody left in the room",
          samples.get('wschat_room_members{room="general"}'))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--chat-server", required=True)
    parser.add_argument("--promtool", required=True)
    args = parser.parse_args()
    processes.deadline(120, "chat_server_metrics.py")

    server = processes.track(subprocess.Popen(
        [args.chat_server, "--address", "127.0.0.1", "--port", "0",
         "--max-message-size", str(MAX_MESSAGE)],
        stdout=subprocess.PIPE, text=True))
    try:
        out = processes.LineReader(server.stdout)
        first = out.next(TIMEOUT)
        match = LISTEN_RE.match(first or "")
        if not check(match is not None, "chat_server announces ws://127.0.0.1", repr(first)):
            return 1
        port = int(match.group(1))
        scraper = Scraper(port, args.promtool)

        samples = scraper.scrape()
        check(samples.get("wschat_connections_opened_total") == 0
              and samples.get("wschat_connections_open") == 0
              and not any(name.startswith("wschat_room_") for name in samples),
              "a fresh server's page counts nothing and lists no room", repr(samples))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=TIMEOUT) as page:
            check(page.status == 200 and b"app.js" in page.read(), "the chat page is still served")

        asyncio.run(scenario(port, scraper))
        status = processes.stop(server)
        check(status == 0, "chat_server exits 0 after SIGTERM", f"status {status}")
    except Exception as e:  # noqa: BLE001 - reported, then the server is stopped
        check(False, "scenario", f"{type(e).__name__}: {e}")
    finally:
        processes.stop(server)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
