#!/usr/bin/env python3
"""Interop test: the independent `websockets` (Python) client against wschat's example servers.

Run with Debian's interpreter, which has python3-websockets (10.4, asyncio API):

    /usr/bin/python3 tests/interop/python_interop.py \
        --minimal-chat build/.../minimal_chat --echo-server build/.../echo_server

With `--deflate shared` or `--deflate per-connection` the servers are started with that flag
and the client offers permessage-deflate (its default offer): every connection must have
negotiated the extension with the parameters of that mode, and every scenario runs compressed.

Each server is started here with `--address 127.0.0.1 --port 0`; the script waits for its
`listening on ws://HOST:PORT/` line, runs its scenario, then stops it with SIGTERM and expects
exit status 0. One line is printed per check, then `N passed, M failed`; exit status 1 on any
failure.
"""

import argparse
import asyncio
import os
import re
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))
import processes  # noqa: E402

try:
    import websockets
except ImportError:  # pragma: no cover - environment problem, reported clearly
    sys.stderr.write(
        "python_interop.py: cannot import 'websockets' (python3-websockets). "
        "Run it with Debian's /usr/bin/python3 (apt-get install python3-websockets).\n"
    )
    sys.exit(2)

LISTEN_TIMEOUT = 10.0  # seconds to wait for the "listening on" line
STOP_TIMEOUT = 5.0  # seconds to wait for exit after SIGTERM
RECV_TIMEOUT = 5.0  # seconds to wait for an expected message
QUIET_PERIOD = 0.3  # seconds of silence used to detect duplicate / unexpected messages

LISTEN_RE = re.compile(r"^listening on (ws://\S+:(\d+)/)$")

WELCOME = "Welcome to the chat room!"
SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 1048576]

CONNECT_KW = dict(max_size=None, compression=None, open_timeout=10, close_timeout=5)

# The Sec-WebSocket-Extensions answer to websockets' default offer
# ("permessage-deflate; client_max_window_bits") in each mode of the examples' --deflate.
DEFLATE_ANSWERS = {
    "shared": "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    "per-connection": "permessage-deflate; server_max_window_bits=11; client_max_window_bits=11",
}
DEFLATE_MODE = None  # set from --deflate


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, name, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS {name}", flush=True)
        else:
            self.failed += 1
            suffix = f": {detail}" if detail else ""
            print(f"FAIL {name}{suffix}", flush=True)
        return ok


class CheckFailed(Exception):
    """A check failed in a way that makes the rest of the scenario meaningless."""


def short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"...(len {len(value)})"


class Server:
    """An example server process started by this script."""

    def __init__(self, name, path):
        self.name = name
        self.path = path
        self.proc = None
        self.url = None
        self._drain = None

    async def start(self):
        self.proc = processes.track(await asyncio.create_subprocess_exec(
            self.path,
            *(["--deflate", DEFLATE_MODE] if DEFLATE_MODE else []),
            "--address",
            "127.0.0.1",
            "--port",
            "0",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,  # inherited: the server's diagnostics show up in our output
        ))
        seen = []

        async def wait_line():
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    return None
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                seen.append(line)
                m = LISTEN_RE.match(line)
                if m:
                    return m.group(1)

        try:
            self.url = await asyncio.wait_for(wait_line(), LISTEN_TIMEOUT)
        except asyncio.TimeoutError:
            self.url = None
        if self.url is None:
            status = self.proc.returncode
            raise CheckFailed(
                f"{self.name} did not print 'listening on ws://HOST:PORT/' within "
                f"{LISTEN_TIMEOUT:.0f} s (exit status {status}, stdout so far: {seen!r})"
            )
        # Keep reading stdout so a chatty server never blocks on a full pipe.
        self._drain = asyncio.ensure_future(self._drain_stdout())

    async def _drain_stdout(self):
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                return
            sys.stdout.write(f"[{self.name} stdout] {raw.decode('utf-8', 'replace')}")

    async def stop(self):
        """SIGTERM, wait up to STOP_TIMEOUT, SIGKILL if still running. Returns (ok, detail)."""
        if self.proc is None:
            return True, "not started"
        if self.proc.returncode is not None:
            return False, f"had already exited with status {self.proc.returncode}"
        self.proc.send_signal(signal.SIGTERM)
        try:
            status = await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            return False, f"did not exit within {STOP_TIMEOUT:.0f} s of SIGTERM; killed"
        finally:
            if self._drain is not None:
                try:
                    await asyncio.wait_for(self._drain, 1.0)
                except (asyncio.TimeoutError, Exception):
                    self._drain.cancel()
        if status != 0:
            return False, f"exit status {status} after SIGTERM (negative = killed by signal)"
        return True, "exit status 0"


async def connect(url, r):
    """Opens a client connection; under --deflate, checks what was negotiated."""
    ws = await websockets.connect(url, **CONNECT_KW)
    if DEFLATE_MODE:
        answer = ws.response_headers.get("Sec-WebSocket-Extensions")
        if not r.check(answer == DEFLATE_ANSWERS[DEFLATE_MODE],
                       f"deflate {DEFLATE_MODE}: negotiated",
                       f"Sec-WebSocket-Extensions: {answer!r}"):
            await ws.close()
            raise CheckFailed("permessage-deflate not negotiated as expected")
    return ws


async def recv(ws, timeout=RECV_TIMEOUT):
    return await asyncio.wait_for(ws.recv(), timeout)


async def recv_quiet(ws, period=QUIET_PERIOD):
    """Everything that arrives within `period` seconds (to catch duplicates / extras)."""
    got = []
    while True:
        try:
            got.append(await asyncio.wait_for(ws.recv(), period))
        except asyncio.TimeoutError:
            return got


def utf8_text(n):
    """A str whose UTF-8 encoding is exactly n bytes, mixing 1-, 2-, 3- and 4-byte characters."""
    pattern = ["a", "é", "€", "中", "😀", "z", "ß", "文", "🎉"]
    parts = []
    size = 0
    i = 0
    while size < n:
        ch = pattern[i % len(pattern)]
        i += 1
        blen = len(ch.encode("utf-8"))
        if size + blen > n:
            ch, blen = "x", 1
        parts.append(ch)
        size += blen
    text = "".join(parts)
    assert len(text.encode("utf-8")) == n
    return text


def binary_payload(n):
    pattern = bytes((i * 37 + 11) & 0xFF for i in range(256))
    return (pattern * (n // 256 + 1))[:n]


# --------------------------------------------------------------------------------------------
# minimal_chat
# --------------------------------------------------------------------------------------------


async def chat_scenario(url, r):
    names = ["alice", "bob", "carol"]
    clients = {}
    try:
        # Join one after another; each must see the welcome then its own count, and every
        # earlier member must see the new count.
        for idx, name in enumerate(names):
            count = idx + 1
            ws = await connect(url, r)
            clients[name] = ws
            first = await recv(ws)
            if not r.check(first == WELCOME, f"chat: {name} first receives the welcome",
                           f"got {short(first)}"):
                raise CheckFailed("no welcome")
            second = await recv(ws)
            if not r.check(second == f"Online users: {count}",
                           f"chat: {name} then receives 'Online users: {count}'",
                           f"got {short(second)}"):
                raise CheckFailed("bad count")
            for other in names[:idx]:
                got = await recv(clients[other])
                if not r.check(got == f"Online users: {count}",
                               f"chat: {other} sees 'Online users: {count}' when {name} joins",
                               f"got {short(got)}"):
                    raise CheckFailed("bad count")

        # Each member sends distinct non-ASCII messages; all are relayed to everyone.
        per_sender = 3
        sent = {
            name: [f"{name} #{k}: 你好，世界 🌍🎉 — ünïcödé ✓ {'ж' * k}" for k in range(per_sender)]
            for name in names
        }
        for k in range(per_sender):
            for name in names:
                await clients[name].send(sent[name][k])
        expected_total = per_sender * len(names)
        all_sent = {m: name for name in names for m in sent[name]}

        for name in names:
            ws = clients[name]
            got = []
            try:
                while len(got) < expected_total:
                    got.append(await recv(ws))
            except asyncio.TimeoutError:
                pass
            got += await recv_quiet(ws)
            not_text = [m for m in got if not isinstance(m, str)]
            r.check(not not_text, f"chat: {name} receives the relayed messages as text",
                    f"{len(not_text)} binary message(s), first {short(not_text[:1])}")
            texts = [m for m in got if isinstance(m, str)]
            missing = [m for m in all_sent if texts.count(m) == 0]
            dups = sorted({m for m in texts if m in all_sent and texts.count(m) > 1})
            extra = [m for m in texts if m not in all_sent]
            r.check(not missing and not dups and not extra,
                    f"chat: {name} receives all {expected_total} messages exactly once",
                    f"missing {len(missing)} {short(missing[:2])}, duplicated {short(dups[:2])}, "
                    f"unexpected {short(extra[:3])}")
            order_ok = all(
                [m for m in texts if all_sent.get(m) == sender] == sent[sender]
                for sender in names
            ) if not missing and not dups else False
            r.check(order_ok, f"chat: {name} sees each sender's messages in send order",
                    "per-sender order differs (or messages missing/duplicated)")

        # Leave one by one (normal close 1000); the remaining members see the new count.
        remaining = list(names)
        for leaver in names[:2]:
            ws = clients[leaver]
            await ws.close(code=1000, reason="leaving")
            r.check(ws.close_code == 1000,
                    f"chat: {leaver} closes normally (server answers with 1000)",
                    f"observed close code {ws.close_code}, reason {ws.close_reason!r}")
            remaining.remove(leaver)
            count = len(remaining)
            for other in remaining:
                try:
                    got = await recv(clients[other])
                except asyncio.TimeoutError:
                    got = "<nothing within 5 s>"
                r.check(got == f"Online users: {count}",
                        f"chat: {other} sees 'Online users: {count}' after {leaver} leaves",
                        f"got {short(got)}")
        last = clients[remaining[0]]
        await last.close(code=1000)
        r.check(last.close_code == 1000, f"chat: {remaining[0]} closes normally",
                f"observed close code {last.close_code}")
    finally:
        for ws in clients.values():
            if not ws.closed:
                try:
                    await asyncio.wait_for(ws.close(), 5)
                except Exception:
                    pass


# --------------------------------------------------------------------------------------------
# echo_server
# --------------------------------------------------------------------------------------------


async def echo_scenario(url, r):
    ws = await connect(url, r)
    try:
        for kind in ("text", "binary"):
            for n in SIZES:
                payload = utf8_text(n) if kind == "text" else binary_payload(n)
                await ws.send(payload)
                try:
                    got = await recv(ws, 10)
                except asyncio.TimeoutError:
                    r.check(False, f"echo: {kind} {n} bytes", "no echo within 10 s")
                    raise CheckFailed("echo timeout")
                want_type = str if kind == "text" else bytes
                if not isinstance(got, want_type):
                    r.check(False, f"echo: {kind} {n} bytes",
                            f"echoed as {type(got).__name__} instead of {want_type.__name__}")
                elif got != payload:
                    glen = len(got.encode("utf-8")) if isinstance(got, str) else len(got)
                    r.check(False, f"echo: {kind} {n} bytes",
                            f"echo differs (got {glen} bytes)")
                else:
                    r.check(True, f"echo: {kind} {n} bytes")
        # A message in fragments (compressed as one stream under --deflate, RSV1 on the
        # first frame only) comes back whole.
        pieces = [utf8_text(3000), utf8_text(1), utf8_text(70000)]
        await ws.send(iter(pieces))
        got = await recv(ws, 10)
        r.check(got == "".join(pieces), "echo: a text message sent in three fragments",
                f"got {short(got)}")
        extra = await recv_quiet(ws)
        r.check(not extra, "echo: no unexpected extra messages",
                f"{len(extra)} extra, first {short(extra[:1])}")
        await ws.close(code=1000, reason="bye")
        r.check(ws.close_code == 1000,
                f"echo: close 1000 'bye' answered with close code 1000 "
                f"(server reason {ws.close_reason!r})",
                f"observed close code {ws.close_code}, reason {ws.close_reason!r}")
    finally:
        if not ws.closed:
            try:
                await asyncio.wait_for(ws.close(), 5)
            except Exception:
                pass


async def run_with_server(name, path, scenario, r):
    server = Server(name, path)
    try:
        await server.start()
        r.check(True, f"{name}: started, {server.url}")
        await scenario(server.url, r)
    except CheckFailed as e:
        r.check(False, f"{name}: scenario aborted", str(e))
    except Exception as e:  # connection errors, unexpected closes, timeouts
        r.check(False, f"{name}: scenario aborted", f"{type(e).__name__}: {e}")
    finally:
        ok, detail = await server.stop()
        r.check(ok, f"{name}: exits with status 0 on SIGTERM", detail)


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minimal-chat", required=True, help="path to the minimal_chat binary")
    ap.add_argument("--echo-server", required=True, help="path to the echo_server binary")
    ap.add_argument("--deflate", choices=sorted(DEFLATE_ANSWERS),
                    help="start the servers with --deflate MODE and offer permessage-deflate")
    args = ap.parse_args()
    global DEFLATE_MODE
    DEFLATE_MODE = args.deflate
    if DEFLATE_MODE:
        CONNECT_KW["compression"] = "deflate"
    processes.deadline(200, "python_interop.py")

    r = Results()
    print(f"python websockets {websockets.__version__}", flush=True)
    for name, path in (("minimal_chat", args.minimal_chat), ("echo_server", args.echo_server)):
        if not os.access(path, os.X_OK):
            r.check(False, f"{name}: executable exists", f"{path!r} is not an executable file")
            continue
        scenario = chat_scenario if name == "minimal_chat" else echo_scenario
        await run_with_server(name, path, scenario, r)

    print(f"{r.passed} passed, {r.failed} failed", flush=True)
    return 0 if r.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
