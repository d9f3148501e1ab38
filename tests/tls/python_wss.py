#!/usr/bin/env python3
"""wss:// with an independent client: Python `websockets` against wschat's examples over TLS.

    /usr/bin/python3 tests/tls/python_wss.py --minimal-chat PATH --echo-server PATH

Makes a certificate with tools/dev-cert.sh in a temporary directory, starts each example with
`--tls-cert/--tls-key`, and checks, trusting only that certificate: echo of 0 B to 1 MiB,
two clients chatting, a new certificate served after SIGHUP (the open client unaffected),
1001 to every client on SIGTERM and exit status 0. echo_server is reached at the address it
printed; minimal_chat listens where `localhost` resolves first and is reached as
wss://localhost, so the certificate's name is checked too. Exit status 1 on any failure.
"""

import argparse
import asyncio
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile

try:
    import websockets
except ImportError:
    sys.exit("python_wss.py: needs python3-websockets: run it with /usr/bin/python3")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
import processes  # noqa: E402
from checks import check, summary  # noqa: E402

LISTEN_RE = re.compile(r"^listening on wss://(\[[0-9a-f:.]+\]|[0-9.]+):(\d+)/$")
TIMEOUT = 10


def dev_cert(directory):
    subprocess.run(["bash", os.path.join(ROOT, "tools/dev-cert.sh"), directory], check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")


def trusting(cert):
    context = ssl.create_default_context(cafile=cert)  # verifies the chain and "localhost"
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def peer_serial(ws):
    obj = ws.transport.get_extra_info("ssl_object")
    return obj.getpeercert()["serialNumber"]


async def start(path, cert, key, address="127.0.0.1"):
    """Starts `path` on `address`; returns (process, host as printed, port)."""
    proc = processes.track(await asyncio.create_subprocess_exec(
        path, "--address", address, "--port", "0", "--tls-cert", cert, "--tls-key", key,
        stdout=asyncio.subprocess.PIPE))
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode().strip()
    except asyncio.TimeoutError:
        line = "(nothing within %d s)" % TIMEOUT
    match = LISTEN_RE.match(line)
    if not match:
        proc.kill()
        await proc.wait()
        raise SystemExit(f"{path} did not announce wss://: {line!r}")
    return proc, match.group(1), int(match.group(2))


async def stop(proc, name):
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        status = await asyncio.wait_for(proc.wait(), TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        status = await proc.wait()
    check(status == 0, f"{name} exits 0 after SIGTERM", f"status {status}")


async def echo(echo_server, cert, key):
    proc, host, port = await start(echo_server, cert, key)
    try:
        async with websockets.connect(f"wss://{host}:{port}/", ssl=trusting(cert),
                                      max_size=None, compression=None) as ws:
            version = ws.transport.get_extra_info("ssl_object").version()
            check(version in ("TLSv1.2", "TLSv1.3"), f"echo_server negotiates {version}")
            for size in (0, 1, 125, 126, 65535, 65536, 1 << 20):
                text = ("κόσμε wss " * (size // 10 + 1))[:size]
                await ws.send(text)
                got = await asyncio.wait_for(ws.recv(), TIMEOUT)
                check(got == text, f"text of {size} characters echoed over wss")
                data = os.urandom(size)
                await ws.send(data)
                got = await asyncio.wait_for(ws.recv(), TIMEOUT)
                check(got == data, f"binary of {size} bytes echoed over wss")
    finally:
        await stop(proc, "echo_server")


async def chat(minimal_chat, cert, key, directory):
    address = socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)[0][4][0]
    proc, host, port = await start(minimal_chat, cert, key, address)
    check(host.strip("[]") == address, f"minimal_chat listens on {address}, where localhost "
          "resolves first", host)
    url = f"wss://localhost:{port}/"
    try:
        alice = await websockets.connect(url, ssl=trusting(cert))
        check(await alice.recv() == "Welcome to the chat room!", "alice is welcomed over wss")
        check(await alice.recv() == "Online users: 1", "alice sees 1 online")
        bob = await websockets.connect(url, ssl=trusting(cert))
        await bob.recv()
        check(await bob.recv() == "Online users: 2", "bob sees 2 online")
        check(await alice.recv() == "Online users: 2", "alice sees bob arrive")
        await alice.send("hello from alice over TLS")
        check(await bob.recv() == "hello from alice over TLS", "bob gets alice's line")
        check(await alice.recv() == "hello from alice over TLS", "alice gets her own line")

        # A renewed certificate: the same files rewritten, then SIGHUP.
        old_serial = peer_serial(alice)
        dev_cert(directory)
        proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.5)
        carol = await websockets.connect(url, ssl=trusting(cert))
        check(peer_serial(carol) != old_serial, "after SIGHUP a new client gets the new certificate")
        await carol.recv()
        await bob.send("still here")
        check(await alice.recv() == "Online users: 3", "alice sees carol arrive")
        check(await alice.recv() == "still here", "alice's open connection is unaffected")

        proc.send_signal(signal.SIGTERM)
        for name, ws in (("alice", alice), ("bob", bob), ("carol", carol)):
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), TIMEOUT)
            except websockets.ConnectionClosed as closed:
                check(closed.rcvd is not None and closed.rcvd.code == 1001,
                      f"{name} gets 1001 when the server stops", str(closed))
        status = await asyncio.wait_for(proc.wait(), TIMEOUT)
        check(status == 0, "minimal_chat exits 0 after SIGTERM", f"status {status}")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minimal-chat", required=True)
    parser.add_argument("--echo-server", required=True)
    args = parser.parse_args()
    processes.deadline(120, "python_wss.py")
    with tempfile.TemporaryDirectory() as directory:
        cert, key = dev_cert(directory)
        await echo(args.echo_server, cert, key)
        await chat(args.minimal_chat, cert, key, directory)
    return summary()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
