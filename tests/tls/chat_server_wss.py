#!/usr/bin/env python3
"""examples/chat_server over TLS: the page over https:// and two Python `websockets` clients
chatting over wss://, trusting only a fresh dev certificate (tools/dev-cert.sh).

    /usr/bin/python3 tests/tls/chat_server_wss.py --chat-server PATH

chat_server listens where `localhost` leads (the first address this machine resolves it to:
::1 on a stock Debian 12, 127.0.0.1 where /etc/hosts says only that), and the clients use
https://localhost:PORT/ and wss://localhost:PORT/, so the certificate's name is checked too.
A build without TLS support fails here: chat_server then refuses --tls-cert. Exit status 1 on
any failure.
"""

import argparse
import asyncio
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
import processes  # noqa: E402
from checks import check, summary  # noqa: E402

try:
    import websockets
except ImportError:
    sys.exit("chat_server_wss.py: needs python3-websockets: run it with /usr/bin/python3")

TIMEOUT = 10
LISTEN_RE = re.compile(r"^listening on wss://(\[[0-9a-f:.]+\]|[0-9.]+):(\d+)/$")


def localhost_address():
    """Where a client of `localhost` connects first: the resolver's first answer."""
    return socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)[0][4][0]


async def envelope(ws, kind):
    """The next JSON envelope of type `kind`, skipping others."""

    async def wait():
        while True:
            e = json.loads(await ws.recv())
            if e["type"] == kind:
                return e

    return await asyncio.wait_for(wait(), TIMEOUT)


async def chat(port, context):
    url = f"wss://localhost:{port}/rooms/general"
    kw = dict(ssl=context, open_timeout=TIMEOUT, close_timeout=TIMEOUT)
    async with websockets.connect(f"{url}?name=alice", **kw) as alice, \
            websockets.connect(f"{url}?name=bob", **kw) as bob:
        version = alice.transport.get_extra_info("ssl_object").version()
        check(version in ("TLSv1.2", "TLSv1.3"), f"wss:// negotiates {version}")
        check((await envelope(alice, "welcome"))["name"] == "alice", "alice is welcomed over wss")
        check((await envelope(bob, "welcome"))["name"] == "bob", "bob is welcomed over wss")
        line = "hello over wss 你好 🔒"
        await alice.send(json.dumps({"type": "message", "text": line}))
        got = await envelope(bob, "message")
        check(got.get("from") == "alice" and got.get("text") == line,
              "bob receives alice's message with her name", repr(got))
        got = await envelope(alice, "message")
        check(got.get("text") == line, "alice receives her own message", repr(got))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--chat-server", required=True)
    args = parser.parse_args()
    processes.deadline(120, "chat_server_wss.py")

    with tempfile.TemporaryDirectory(prefix="wschat-tls-") as directory:
        subprocess.run(["bash", os.path.join(ROOT, "tools", "dev-cert.sh"), directory],
                       check=True, stdout=subprocess.DEVNULL)
        cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
        context = ssl.create_default_context(cafile=cert)  # verifies the chain and the name
        address = localhost_address()
        print(f"localhost resolves to {address} first", flush=True)
        server = processes.track(subprocess.Popen(
            [args.chat_server, "--address", address, "--port", "0",
             "--tls-cert", cert, "--tls-key", key],
            stdout=subprocess.PIPE, text=True))
        try:
            out = processes.LineReader(server.stdout)
            first = out.next(TIMEOUT)
            match = LISTEN_RE.match(first or "")
            if not check(match is not None, "chat_server announces wss://", repr(first)):
                return 1
            port = int(match.group(2))
            check(match.group(1).strip("[]") == address, f"chat_server listens on {address}",
                  first)

            with urllib.request.urlopen(f"https://localhost:{port}/", context=context,
                                        timeout=TIMEOUT) as page:
                body = page.read()
                check(page.status == 200 and b"app.js" in body, "the page over https://localhost")
            asyncio.run(chat(port, context))
            status = processes.stop(server)
            check(status == 0, "chat_server exits 0 after SIGTERM", f"status {status}")
            out.join()
            joins = [line for line in out.lines if line.startswith("join ")]
            check(len(joins) == 2, "chat_server logs both joins", repr(out.lines))
        except Exception as e:  # noqa: BLE001 - reported, then the server is stopped
            check(False, "scenario", f"{type(e).__name__}: {e}")
        finally:
            processes.stop(server)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
