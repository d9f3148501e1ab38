#!/usr/bin/env python3
"""How many room messages one Redis can number, store and publish per second for a cluster of
wschat nodes (chat::redis_bus), and what each subscribed node adds: the figures docs/scaling.md
extrapolates from.

    /usr/bin/python3 bench/redis_capacity.py [--subscribers 0,3,10,30] [--requests 100000] [--runs 3]

For each count S it starts a fresh redis-server on 127.0.0.1 (no persistence), S subscribers
on the room's channel (redis-cli processes, as S nodes that have members in the room), and runs
redis-benchmark with 3 clients, 32 commands pipelined each (three nodes publishing), twice:
plain PUBLISH of a 200-byte envelope body, and the bus's own publish script (taken from
include/wschat/chat/redis_bus.hpp: INCR, XADD to the capped stream, PUBLISH, EXPIRE) with
EVALSHA, as the bus runs it. Prints the median of `--runs` requests per second. Everything
it starts is stopped. Python 3 standard library only.
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUS = os.path.join(ROOT, "include", "wschat", "chat", "redis_bus.hpp")
BODY = ',"from":"user-000042","text":"' + "x" * 166 + '","time":1796325126622}'  # 200 bytes


def publish_script():
    """The bus's publish script, as the header holds it."""
    with open(BUS, encoding="utf-8") as f:
        m = re.search(r'redis_script publish\{R"lua\((.*?)\)lua"\}', f.read(), re.S)
    if not m:
        sys.exit("redis_capacity.py: no publish script found in " + BUS)
    return m.group(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc):
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)


def rate(benchmark, port, requests, command):
    """requests/s redis-benchmark reports for `command` (3 clients, 32 pipelined each)."""
    out = subprocess.run([benchmark, "-p", str(port), "-c", "3", "-P", "32", "-n", str(requests),
                          "-q"] + command, capture_output=True, text=True, timeout=300)
    # -q: "COMMAND ...: 123456.78 requests per second, p50=..." (progress lines end in \r).
    found = re.findall(r"([\d.]+) requests per second", out.stdout)
    if found:
        return float(found[-1])
    raise RuntimeError("redis-benchmark printed no figure: " + (out.stdout + out.stderr)[-300:])


def measure(server, cli, benchmark, subscribers, requests, script, runs):
    port = free_port()
    redis = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--loglevel", "warning"],
                             stdout=subprocess.DEVNULL)
    subs = []
    try:
        wait_for_port(port, redis)
        subs = [subprocess.Popen([cli, "-p", str(port), "subscribe", "wschat:{general}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for _ in range(subscribers)]
        time.sleep(0.3 + 0.01 * subscribers)
        sha = subprocess.run([cli, "-p", str(port), "SCRIPT", "LOAD", script], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        publish = statistics.median(
            rate(benchmark, port, requests, ["PUBLISH", "wschat:{general}", BODY])
            for _ in range(runs))
        numbered = statistics.median(
            rate(benchmark, port, requests,
                 ["EVALSHA", sha, "3", "wschat:{general}:seq", "wschat:{general}:epoch",
                  "wschat:{general}:stream", BODY, "0123456789abcdef", "500", "600",
                  "wschat:{general}"])
            for _ in range(runs))
        alive = sum(1 for p in subs if p.poll() is None)
        return publish, numbered, alive
    finally:
        for p in subs + [redis]:
            p.kill()
            p.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", default="0,3,10,30",
                        help="subscribed nodes to try, comma-separated (default 0,3,10,30)")
    parser.add_argument("--requests", type=int, default=100000,
                        help="requests per redis-benchmark run (default 100000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (default 3)")
    args = parser.parse_args()
    tools = {name: shutil.which(name) or "/usr/bin/" + name
             for name in ("redis-server", "redis-cli", "redis-benchmark")}
    missing = [n for n, p in tools.items() if not os.access(p, os.X_OK)]
    if missing:
        sys.exit("redis_capacity.py: missing %s (Debian: redis-server, redis-tools)" %
                 ", ".join(missing))
    script = publish_script()
    print("subscribed nodes | PUBLISH 200 B /s | bus publish script /s | subscribers still "
          "connected")
    for count in (int(s) for s in args.subscribers.split(",")):
        publish, numbered, alive = measure(tools["redis-server"], tools["redis-cli"],
                                           tools["redis-benchmark"], count, args.requests, script,
                                           args.runs)
        print("%16d | %16.0f | %21.0f | %d of %d" % (count, publish, numbered, alive, count),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
