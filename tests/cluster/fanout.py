#!/usr/bin/env python3
"""One room across three chat_server nodes on Redis, behind nginx: 300 members join through
nginx (round robin spreads them over the nodes), one sender on each node speaks at once, and
every member must hear every message exactly once and in one order; every member's presence
count, and the three nodes' local counts summed, must say 300.

    /usr/bin/python3 tests/cluster/fanout.py --chat-server PATH [--nginx PATH] [--redis-server PATH]
"""
import argparse
import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import (Cluster, add_arguments, in_one_order, join_all, joined_on,  # noqa: E402
                     processes, until)
from checks import check, summary  # noqa: E402

MEMBERS = 300
MESSAGES_PER_SENDER = 20


async def scenario(c):
    members = await join_all(c.url, [f"m{i:03d}" for i in range(MEMBERS)])
    by_name = {m.name: m for m in members}
    check(len(by_name) == MEMBERS, f"{MEMBERS} members joined through nginx")

    local = [node.local_members() for node in c.nodes]
    check(all(n > 0 for n in local) and sum(local) == MEMBERS,
          "nginx spread the members over the three nodes, whose local counts sum to 300",
          f"local members {local}")
    print(f"# members per node: {local}", flush=True)

    try:
        await until(lambda: all(m.online == MEMBERS for m in members),
                    "every member's presence count at 300", timeout=15)
        check(True, "every member, on every node, hears that 300 are online")
    except TimeoutError:
        counts = sorted({m.online for m in members}, key=lambda v: (v is None, v))
        check(False, "every member, on every node, hears that 300 are online",
              f"counts seen: {counts}")
    # A roster asked on each node tells the cluster's count, not the node's.
    askers = [by_name[sorted(joined_on(node))[0]] for node in c.nodes]
    for asker in askers:
        await asker.ws.send(json.dumps({"type": "roster", "room": "general"}))
    await until(lambda: all(a.rosters for a in askers), "roster answers")
    check(all(a.rosters[-1]["online"] == MEMBERS for a in askers),
          "a roster asked on each node counts 300",
          f"{[a.rosters[-1]['online'] for a in askers]}")

    # One sender on each node, all speaking at once.
    senders = [by_name[sorted(joined_on(node))[-1]] for node in c.nodes]

    async def speak(sender):
        for k in range(MESSAGES_PER_SENDER):
            await sender.say(f"{sender.name} says {k}")
            await asyncio.sleep(0.01)

    await asyncio.gather(*(speak(s) for s in senders))
    total = MESSAGES_PER_SENDER * len(senders)
    try:
        await until(lambda: all(len(m.messages) >= total for m in members),
                    "every message at every member", timeout=20)
    except TimeoutError:
        pass
    counts = sorted({len(m.messages) for m in members})
    check(counts == [total], f"each member received the {total} messages",
          f"messages per member: {counts}")
    problem = in_one_order(members)
    check(not problem, "every member got every message exactly once, in one order", problem)
    for s in senders:
        own = [t for *_, t in members[0].messages if t.startswith(s.name + " ")]
        check(own == [f"{s.name} says {k}" for k in range(MESSAGES_PER_SENDER)],
              f"{s.name}'s messages keep their order", f"{own}")
    check(not any(m.errors for m in members), "no error envelope",
          f"{[m.errors for m in members if m.errors][:3]}")
    await asyncio.gather(*(m.close() for m in members))


def main():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args()
    processes.deadline(90, "fanout.py")
    try:
        with Cluster(args) as c:
            asyncio.run(scenario(c))
            for node in c.nodes:
                check(node.stop() == 0, f"{node.node_id} exits 0 on SIGTERM")
    except Exception as e:  # noqa: BLE001 - any failure is reported, then cleanup has run
        check(False, "unexpected error", repr(e))
    return summary()


if __name__ == "__main__":
    sys.exit(main())
