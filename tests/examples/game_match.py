#!/usr/bin/env python3
"""examples/game_server with bots: two matches played at once by game_bot processes, checked
from both sides, and what the server refuses.

    /usr/bin/python3 tests/examples/game_match.py --game-server PATH --game-bot PATH

- Two game_bot runs (6 bots in match `a`, 3 in match `b`) play at 30 Hz for 3 s on one
  game_server: every bot saw every tick from its first to its last in order, none missing;
  every bot's position in every snapshot was where its own inputs put it (game_bot checks
  that and exits 0); each saw exactly its own match's players; about 30 snapshots a second.
- The server's state reflects the bots' inputs: the position, last acknowledged seq and
  count of inputs the server logs for each leaving player are those its bot computed.
- Refusals (Python `websockets`): a wrong path (HTTP 404), text (1003), a malformed input
  (1007, the reason names the problem), a seq that does not grow (1007), a full match
  (1013), a tick rate outside 20-60 (exit 2).
- game_server exits 0 on SIGTERM.

Exit status 1 on any failure.
"""

import argparse
import asyncio
import os
import re
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
import processes  # noqa: E402
from checks import check, summary  # noqa: E402

try:
    import websockets
except ImportError:
    sys.exit("game_match.py: needs python3-websockets: run it with /usr/bin/python3")

TIMEOUT = 10
SECONDS = 3
HZ = 30
BOT_RE = re.compile(r"^bot (\d+): player (\d+) ticks (\d+)\.\.(\d+) \((\d+) snapshots, (\d+) missing, "
                    r"(\d+) out of order\) players up to (\d+) inputs (\d+) acked (\d+) "
                    r"final \((-?\d+), (-?\d+)\) mismatches (\d+) (ok|FAILED)$")
LEFT_RE = re.compile(r"^match (\w+): player (\d+) left at \((-?\d+), (-?\d+)\) ack (\d+) "
                     r"inputs (\d+) tick (\d+)$")


def start_server(path, *extra):
    proc = processes.track(subprocess.Popen(
        [path, "--address", "127.0.0.1", "--port", "0", "--tick-hz", str(HZ), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    lines = processes.LineReader(proc.stdout)
    m = re.match(r"^listening on ws://127\.0\.0\.1:(\d+)/$", lines.next(TIMEOUT) or "")
    if not m:
        processes.stop(proc)
        raise SystemExit(f"game_server did not start: {proc.stderr.read()}")
    return proc, lines, int(m.group(1))


def play(args, port):
    """Two matches at once; returns {match: (status, stdout)}."""
    runs = {}
    for match, bots in (("a", 6), ("b", 3)):
        runs[match] = (bots, processes.track(subprocess.Popen(
            [args.game_bot, "--url", f"ws://127.0.0.1:{port}/match/{match}", "--bots", str(bots),
             "--seconds", str(SECONDS)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)))
    results = {}
    for match, (bots, proc) in runs.items():
        out, _ = proc.communicate(timeout=SECONDS + 20)
        print(f"# game_bot in match {match}:\n" + "\n".join("  " + line for line in out.splitlines()))
        results[match] = (bots, proc.returncode, out)
    return results


def check_bots(results):
    """Checks game_bot's lines; returns {(match, player): (x, y, acked, inputs)}."""
    finals = {}
    for match, (bots, status, out) in results.items():
        check(status == 0 and out.rstrip().endswith("all bots ok"),
              f"match {match}: game_bot exits 0, every bot ok", f"status {status}")
        lines = [BOT_RE.match(line) for line in out.splitlines() if line.startswith("bot ")]
        check(len(lines) == bots and all(lines), f"match {match}: a summary line per bot",
              f"{len(lines)} lines")
        for m in filter(None, lines):
            (bot, player, first, last, snapshots, missing, disorder, players, inputs, acked,
             x, y, mismatches, verdict) = m.groups()
            name = f"match {match} bot {bot}"
            check(int(missing) == 0 and int(disorder) == 0 and
                  int(snapshots) == int(last) - int(first) + 1,
                  f"{name}: every tick from {first} to {last}, in order, none missing",
                  m.group(0))
            check(int(players) == bots, f"{name}: saw its match's {bots} players, no other's",
                  f"up to {players}")
            check(int(mismatches) == 0 and int(acked) == int(inputs) and verdict == "ok",
                  f"{name}: every position where its inputs put it, all {inputs} acknowledged",
                  m.group(0))
            # One input per snapshot for SECONDS at HZ, give or take scheduling (a server far
            # behind slows its ticks down rather than skip their numbers).
            check(0.6 * SECONDS * HZ <= int(inputs) <= 1.2 * SECONDS * HZ + 2,
                  f"{name}: about {HZ} ticks a second", f"{inputs} inputs in {SECONDS} s")
            finals[(match, int(player))] = (int(x), int(y), int(acked), int(inputs))
        latency = [line for line in out.splitlines() if line.startswith("latency")]
        check(len(latency) == 1, f"match {match}: latency p50/p99 reported", out[-300:])
    return finals


def check_server_state(lines, finals):
    left = {}
    for line in lines.lines:
        m = LEFT_RE.match(line)
        if m and m.group(1) in ("a", "b"):
            match, player, x, y, ack, inputs, _ = m.groups()
            left[(match, int(player))] = (int(x), int(y), int(ack), int(inputs))
    check(set(left) == set(finals), "the server logged every bot's player leaving",
          f"server {sorted(left)}, bots {sorted(finals)}")
    for key, bot in sorted(finals.items()):
        check(left.get(key) == bot,
              f"match {key[0]} player {key[1]}: the server's final state (position, last seq, "
              "inputs) is what the bot's inputs make", f"server {left.get(key)}, bot {bot}")


def input_frame(seq, dx=1, dy=1):
    return struct.pack("<BBHIIbbBB", 0x01, 1, 0, 0, seq, dx, dy, 0, 0)


async def closed_with(url, send):
    """Connects, sends `send` after the welcome, returns (code, reason) of the server's close."""
    async with websockets.connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        await asyncio.wait_for(ws.recv(), TIMEOUT)  # the welcome
        for message in send:
            await ws.send(message)
        try:
            while True:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
        except websockets.ConnectionClosed as e:
            return (e.rcvd.code, e.rcvd.reason) if e.rcvd else (None, "")


async def refusals(port):
    url = f"ws://127.0.0.1:{port}/match/refusals"
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/lobby", open_timeout=TIMEOUT):
            status = 101
    except websockets.InvalidStatusCode as e:
        status = e.status_code
    check(status == 404, "a path other than /match/NAME: HTTP 404", f"status {status}")
    code, reason = await closed_with(url, ["hello"])
    check(code == 1003, "text instead of an input: closed with 1003", f"{code} {reason!r}")
    code, reason = await closed_with(url, [input_frame(1)[:12]])
    check(code == 1007 and "12 bytes" in reason, "a short input: 1007, the reason says its size",
          f"{code} {reason!r}")
    code, reason = await closed_with(url, [input_frame(1, dx=100)])
    check(code == 1007 and "beyond" in reason, "a step out of range: 1007 with the reason",
          f"{code} {reason!r}")
    code, reason = await closed_with(url, [input_frame(5), input_frame(5)])
    check(code == 1007 and "seq must grow" in reason, "a repeated seq: 1007 with the reason",
          f"{code} {reason!r}")


async def full_match(port):
    url = f"ws://127.0.0.1:{port}/match/small"
    async with websockets.connect(url, open_timeout=TIMEOUT) as first:
        await asyncio.wait_for(first.recv(), TIMEOUT)
        async with websockets.connect(url, open_timeout=TIMEOUT) as second:
            try:
                while True:
                    await asyncio.wait_for(second.recv(), TIMEOUT)
            except websockets.ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd else None
                reason = e.rcvd.reason if e.rcvd else ""
        check(code == 1013 and "full" in reason, "a player beyond --max-players: 1013",
              f"{code} {reason!r}")
        snapshot = await asyncio.wait_for(first.recv(), TIMEOUT)
        check(snapshot[0] == 0x82 and struct.unpack_from("<H", snapshot, 2)[0] == 1,
              "the match goes on with its one player", snapshot[:8].hex())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--game-server", required=True)
    ap.add_argument("--game-bot", required=True)
    args = ap.parse_args()
    processes.deadline(50, "game_match.py")

    bad = subprocess.run([args.game_server, "--tick-hz", "10"], capture_output=True, text=True,
                         timeout=TIMEOUT)
    check(bad.returncode == 2 and "20 to 60" in bad.stderr, "--tick-hz 10: refused, exit 2",
          bad.stderr[:200])

    server, lines, port = start_server(args.game_server)
    try:
        finals = check_bots(play(args, port))
        asyncio.run(refusals(port))
    finally:
        status = processes.stop(server)
    check(status == 0, "game_server exits 0 on SIGTERM", f"status {status}")
    lines.join()
    check_server_state(lines, finals)

    small, _, port = start_server(args.game_server, "--max-players", "1")
    try:
        asyncio.run(full_match(port))
    finally:
        processes.stop(small)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
