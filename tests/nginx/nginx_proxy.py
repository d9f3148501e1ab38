#!/usr/bin/env python3
"""examples/chat_server behind a real nginx (examples/nginx/nginx.conf), as an ordinary user.

    /usr/bin/python3 tests/nginx/nginx_proxy.py --chat-server PATH [--nginx /usr/sbin/nginx]
                                                [--node node] [--chromium /usr/bin/chromium]

The config is the example's, with the test's ports and a temp prefix. Clients reach nginx from
distinct loopback addresses (127.0.0.2, 127.0.0.3), while nginx reaches chat_server from
127.0.0.1, so the address chat_server logs tells whose address it believed:
- with --trusted-proxy 127.0.0.1 it logs the real client address, from nginx's X-Real-IP, and
  not the one a client forges in its own X-Forwarded-For;
- without it, it logs nginx's address.
Chromium (when --node is given) chats through nginx as well. Exit status 0 when all passed.
"""
import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request

import websockets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
import processes  # noqa: E402
from checks import check, summary  # noqa: E402
from nginx import Nginx  # noqa: E402

TIMEOUT = 10
TEMPLATE = os.path.join(ROOT, "examples", "nginx", "nginx.conf")
FORGED = "203.0.113.7"  # what a client claims in its own X-Forwarded-For



def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChatServer:
    """chat_server on 127.0.0.1; `lines` collects its stdout."""

    def __init__(self, path, port, trusted):
        argv = [path, "--address", "127.0.0.1", "--port", str(port)]
        if trusted:
            argv += ["--trusted-proxy", "127.0.0.1"]
        self.proc = processes.track(subprocess.Popen(argv, stdout=subprocess.PIPE, text=True))
        self.out = processes.LineReader(self.proc.stdout)
        self.lines = self.out.lines
        first = self.out.next(TIMEOUT)
        m = re.fullmatch(r"listening on ws://127\.0\.0\.1:(\d+)/", first or "")
        if not m:
            processes.stop(self.proc)
            raise RuntimeError(f"chat_server said {first!r}")
        self.port = int(m.group(1))

    def stop(self):
        """SIGTERM; the exit status (None when it had to be killed), once stdout is read."""
        status = processes.stop(self.proc)
        self.out.join()
        return status


async def envelope(ws, type_, timeout=5):
    """The next envelope of `type_`, skipping others."""
    async def wait():
        while True:
            e = json.loads(await ws.recv())
            if e["type"] == type_:
                return e
    return await asyncio.wait_for(wait(), timeout)


async def chat_through(url):
    """alice (from 127.0.0.2, forging X-Forwarded-For) and bob (from 127.0.0.3) chat."""
    alice = await websockets.connect(f"{url}rooms/general?name=alice", local_addr=("127.0.0.2", 0),
                                     extra_headers={"X-Forwarded-For": FORGED})
    bob = await websockets.connect(f"{url}rooms/general?name=bob", local_addr=("127.0.0.3", 0))
    try:
        check((await envelope(alice, "welcome"))["name"] == "alice", "alice is welcomed through nginx")
        check((await envelope(bob, "welcome"))["name"] == "bob", "bob is welcomed through nginx")
        await alice.send(json.dumps({"type": "message", "text": "hello through nginx 你好 👋"}))
        got = await envelope(bob, "message")
        check(got["from"] == "alice" and got["text"] == "hello through nginx 你好 👋",
              "bob receives alice's message with her name", repr(got))
        await alice.send('{"type":"ping"}')
        check((await envelope(alice, "pong"))["type"] == "pong", "ping/pong through nginx")
    finally:
        await alice.close()
        await bob.close()


def joins(server):
    return {m.group(1): m.group(2) for m in (re.fullmatch(r"join (\S+) from (\S+)", l) for l in server.lines) if m}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--chat-server", required=True)
    parser.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    parser.add_argument("--node", default="")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    processes.deadline(200, "nginx_proxy.py")

    listen_port = free_port()
    url = f"ws://127.0.0.1:{listen_port}/"
    server = None
    nginx = None
    try:
        server = ChatServer(args.chat_server, 0, trusted=True)
        nginx = Nginx(args.nginx, TEMPLATE,
                      (("listen 127.0.0.1:8081;", f"listen 127.0.0.1:{listen_port};"),
                       ("server 127.0.0.1:8080;", f"server 127.0.0.1:{server.port};")),
                      listen_port, TIMEOUT)
        page = urllib.request.urlopen(f"http://127.0.0.1:{listen_port}/", timeout=5)
        check(page.status == 200 and b"app.js" in page.read(),
              "nginx serves chat_server's page")
        asyncio.run(chat_through(url))
        if args.node:
            browser = processes.track(subprocess.Popen(
                [args.node, os.path.join(ROOT, "tests", "nginx", "browser_via_nginx.mjs"),
                 "--url", f"http://127.0.0.1:{listen_port}/", "--chromium", args.chromium],
                cwd=ROOT))
            try:
                status = browser.wait(150)
            except subprocess.TimeoutExpired:  # SIGTERM: it closes its browser on the way out
                status = processes.stop(browser)
            check(status == 0, "Chromium chats through nginx", f"status {status}")
        check(server.stop() == 0, "chat_server (trusting nginx) exits 0 on SIGTERM")
        seen = joins(server)
        check(seen.get("alice") == "127.0.0.2", "trusting nginx, chat_server sees alice's real address",
              f"joins {seen}; nginx said X-Real-IP 127.0.0.2, alice forged {FORGED}")
        check(seen.get("bob") == "127.0.0.3", "trusting nginx, chat_server sees bob's real address", f"joins {seen}")
        if args.node:
            check(seen.get("carol") == "127.0.0.1", "Chromium's address (127.0.0.1) comes through", f"joins {seen}")

        # The same backend port without --trusted-proxy: nginx is just another client.
        server = ChatServer(args.chat_server, server.port, trusted=False)
        asyncio.run(chat_through(url))
        check(server.stop() == 0, "chat_server (not trusting) exits 0 on SIGTERM")
        seen = joins(server)
        check(seen.get("alice") == "127.0.0.1" and seen.get("bob") == "127.0.0.1",
              "not trusting nginx, chat_server sees nginx's address for everyone", f"joins {seen}")
    except Exception as e:  # noqa: BLE001 - any failure is reported, then cleanup runs
        check(False, "unexpected error", repr(e))
        if nginx:
            print(nginx.error_log(), file=sys.stderr)
    finally:
        if server:
            server.stop()
        if nginx:
            nginx.stop()
    return summary()


if __name__ == "__main__":
    sys.exit(main())
