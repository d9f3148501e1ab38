#!/usr/bin/env python3
"""A node of the cluster killed (SIGKILL) while its room is busy: its members reconnect
through nginx, which passes over the dead node, and resume on the others without loss or
duplicates; the dead node's presence is gone within the presence TTL.

300 members join through nginx (100 per node); a member of node1 speaks every 20 ms; node2 is
killed mid-way. 90 of its members reconnect through nginx and resume from the last message
they saw; 10 stay away (closed tabs). Every member still connected at the end must hold every
message exactly once, in one order, and the cluster must count 290 online within the TTL.

    /usr/bin/python3 tests/cluster/node_killed.py --chat-server PATH [--nginx PATH] [--redis-server PATH]
"""
import argparse
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import (Cluster, add_arguments, in_one_order, join_all, joined_on,  # noqa: E402
                     processes, until)
from checks import check, summary  # noqa: E402

MEMBERS = 300
STAY_AWAY = 10
MESSAGES = 80
KILL_AFTER = 20  # messages
PRESENCE_TTL_S = 3  # the nodes' --presence-ttl-ms, short for the test
NODE_FLAGS = ["--presence-ttl-ms", str(PRESENCE_TTL_S * 1000)]
# The roster polls every 0.1 s, each a round trip through a loaded machine.
SLACK_S = 1.0


async def roster_count(member):
    """The online count a roster asked through `member` answers."""
    before = len(member.rosters)
    await member.ws.send(json.dumps({"type": "roster", "room": "general"}))
    await member.wait_for(lambda: len(member.rosters) > before, "roster answer")
    return member.rosters[-1]["online"]


async def scenario(c):
    members = await join_all(c.url, [f"m{i:03d}" for i in range(MEMBERS)])
    by_name = {m.name: m for m in members}
    await until(lambda: all(m.online == MEMBERS for m in members), "presence at 300", 15)
    node1, node2, node3 = c.nodes
    on_node2 = [by_name[n] for n in sorted(joined_on(node2))]
    check(len(on_node2) > STAY_AWAY, "node2 has members", f"{len(on_node2)}")
    sender = by_name[sorted(joined_on(node1))[0]]

    killed = asyncio.Event()

    async def speak():
        for k in range(MESSAGES):
            if k == KILL_AFTER:
                killed.set()
            await sender.say(f"message {k}")
            await asyncio.sleep(0.02)

    speaking = asyncio.ensure_future(speak())
    await killed.wait()
    node2.kill()
    killed_at = time.monotonic()
    # The live nodes' counts from the kill on: (seconds after the kill, [node1's, node3's]).
    askers = [by_name[sorted(joined_on(n))[0]] for n in (node1, node3)]
    presence_log = []

    async def poll_presence():
        while True:
            seen = [await roster_count(a) for a in askers]
            presence_log.append((time.monotonic() - killed_at, seen))
            await asyncio.sleep(0.1)

    polling = asyncio.ensure_future(poll_presence())
    await until(lambda: all(m.closed.is_set() for m in on_node2),
                "node2's members see their connection end", 10)
    check(True, "node2's members see their connections end when it is killed")
    others = [m for m in members if m not in on_node2]
    check(not any(m.closed.is_set() for m in others), "the other nodes' members stay connected")

    returning = on_node2[STAY_AWAY:]  # the first STAY_AWAY closed their tabs
    answers = await asyncio.gather(*(m.resume(c.url) for m in returning),
                                   return_exceptions=True)
    failed = [(m.name, a) for m, a in zip(returning, answers)
              if isinstance(a, BaseException) or not a.get("recovered")]
    check(not failed, f"{len(returning)} members reconnect through nginx and resume recovered",
          f"{len(failed)} did not: {failed[:3]}")
    check(all(m.welcomes[-1].get("resumed") for m in returning),
          "each keeps its name and is welcomed back as resumed")
    landed = joined_on(node1) | joined_on(node3)
    check(all(m.name in landed for m in returning), "nginx sent them all to the live nodes",
          f"{[(m.name, m.welcomes) for m in returning if m.name not in landed][:2]}")

    await speaking
    present = others + returning
    try:
        await until(lambda: all(len(m.messages) >= MESSAGES for m in present),
                    "every message at every member", 20)
    except TimeoutError:
        pass
    counts = sorted({len(m.messages) for m in present})
    check(counts == [MESSAGES], f"each of the {len(present)} members holds the {MESSAGES} messages",
          f"messages per member: {counts}")
    problem = in_one_order(present)
    check(not problem, "exactly once and in one order, resumed members included", problem)
    check(not any(m.errors for m in present), "no error envelope",
          f"{[m.errors for m in present if m.errors][:3]}")

    # The 10 who stayed away were counted by the dead node only: its presence expires.
    expected = MEMBERS - STAY_AWAY
    try:
        await until(lambda: presence_log and presence_log[-1][0] > PRESENCE_TTL_S + 1,
                    "the TTL passing", 10)
    finally:
        polling.cancel()
    settled = next((t for t, seen in presence_log if seen == [expected, expected]), None)
    check(settled is not None and settled <= PRESENCE_TTL_S + SLACK_S and
          presence_log[-1][1] == [expected, expected],
          f"the dead node's presence is gone within the TTL ({PRESENCE_TTL_S} s, + {SLACK_S} s "
          "to see it): "
          f"both live nodes count {expected} and stay there",
          f"counts after the kill: {[(round(t, 1), seen) for t, seen in presence_log][::5]}")
    print(f"# presence settled at {expected} {settled:.2f} s after the kill" if settled else
          "# presence did not settle", flush=True)
    await asyncio.gather(*(m.close() for m in present))


def main():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args()
    processes.deadline(90, "node_killed.py")
    try:
        with Cluster(args, NODE_FLAGS) as c:
            asyncio.run(scenario(c))
    except Exception as e:  # noqa: BLE001 - any failure is reported, then cleanup has run
        check(False, "unexpected error", repr(e))
    return summary()


if __name__ == "__main__":
    sys.exit(main())
