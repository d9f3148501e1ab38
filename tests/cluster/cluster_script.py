#!/usr/bin/env python3
"""tools/cluster.sh as a user runs it (with a chat_server already built, free ports and a
temp run dir): `start` starts redis-server, three nodes and nginx and prints the URL; two
members who land on different nodes through it chat; `status` lists all five; a second
`start` refuses; `stop` stops every process it started, and `status` then says so.

    /usr/bin/python3 tests/cluster/cluster_script.py --chat-server PATH
"""
import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import ROOT, Member, free_port, processes, until  # noqa: E402
from checks import check, summary  # noqa: E402

SCRIPT = os.path.join(ROOT, "tools", "cluster.sh")


def free_block(count):
    """A port P with P+1 … P+count-1 free as well (nothing listens there now)."""
    for _ in range(50):
        base = free_port()
        if base + count > 65535:
            continue
        ok = True
        for port in range(base, base + count):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no block of free ports")


def run(env, *argv):
    out = subprocess.run(["bash", SCRIPT, *argv], env=env, capture_output=True, text=True,
                         timeout=60)
    return out.returncode, out.stdout + out.stderr


def pids(run_dir):
    found = {}
    for name in ("redis", "node1", "node2", "node3", "nginx"):
        try:
            with open(os.path.join(run_dir, f"{name}.pid")) as f:
                found[name] = int(f.read().strip())
        except (OSError, ValueError):
            pass
    return found


def alive(pid):
    """Whether `pid` runs: not gone, not a zombie (the guard adopts the script's orphans)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


async def chat(url):
    first = await Member.join(url, "gina")
    second = await Member.join(url, "hal")
    await until(lambda: first.online == 2 and second.online == 2, "both count 2")
    await first.say("hello through tools/cluster.sh")
    await second.wait_for(lambda: second.messages, "gina's message")
    got = second.messages[0][2:]
    await first.close()
    await second.close()
    return got


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--chat-server", required=True)
    args = parser.parse_args()
    processes.deadline(80, "cluster_script.py")
    run_dir = tempfile.mkdtemp(prefix="wschat-cluster-run-")
    port = free_block(4)
    env = dict(os.environ, WSCHAT_CHAT_SERVER=os.path.abspath(args.chat_server),
               WSCHAT_CLUSTER_DIR=run_dir, WSCHAT_CLUSTER_PORT=str(port),
               WSCHAT_CLUSTER_REDIS_PORT=str(free_port()),
               PATH=os.environ.get("PATH", "") + ":/usr/sbin")
    started = {}
    try:
        status, out = run(env, "start")
        started = pids(run_dir)
        check(status == 0, "tools/cluster.sh start exits 0", out[-1500:])
        check(f"http://127.0.0.1:{port}/" in out, "it prints nginx's URL", out[-500:])
        check(len(started) == 5 and all(alive(p) for p in started.values()),
              "redis-server, three nodes and nginx run, each with a pid file", f"{started}")
        status, out = run(env, "status")
        check(status == 0 and len(re.findall(r"pid \d+", out)) == 5, "status lists all five",
              out)
        got = asyncio.run(chat(f"ws://127.0.0.1:{port}/"))
        check(got == ("gina", "hello through tools/cluster.sh"),
              "two members chat through its nginx", f"{got}")
        logs = [open(os.path.join(run_dir, f"node{i}.log")).read() for i in (1, 2, 3)]
        homes = [[i for i, log in enumerate(logs) if f"join {name} " in log]
                 for name in ("gina", "hal")]
        check(len(homes[0]) == 1 and len(homes[1]) == 1 and homes[0] != homes[1],
              "nginx sent them to two different nodes (logs in the run dir)", f"{homes}")
        status, out = run(env, "start")
        check(status != 0 and "running already" in out, "a second start refuses", out[-500:])
    except Exception as e:  # noqa: BLE001 - any failure is reported, then cleanup runs
        check(False, "unexpected error", repr(e))
    finally:
        status, out = run(env, "stop")
        check(status == 0, "tools/cluster.sh stop exits 0", out)
        left = {n: p for n, p in started.items() if alive(p)}
        check(not left, "every process it started is gone", f"{left}")
        for pid in left.values():  # only what the script started, by pid
            os.kill(pid, 9)
        status, out = run(env, "status")
        check(status != 0 and "not running" in out, "status then says not running", out)
        shutil.rmtree(run_dir, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
