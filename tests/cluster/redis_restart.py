#!/usr/bin/env python3
"""Redis restarted under a running cluster: while it is down a message is refused with the
documented error envelope (code `bus_unavailable`, the message's id) and nobody receives it; once
it is back the nodes' buses reconnect and resubscribe by themselves, messages flow again to
every member on every node, once each and in one order, and nothing from before is delivered
twice. Redis runs without persistence here, so it comes back empty: the rooms start a new
epoch.

    /usr/bin/python3 tests/cluster/redis_restart.py --chat-server PATH [--nginx PATH] [--redis-server PATH]
"""
import argparse
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import (Cluster, add_arguments, in_one_order, join_all, joined_on,  # noqa: E402
                     processes, until)
from checks import check, summary  # noqa: E402

MEMBERS = 30
BEFORE = 5
AFTER = 10
BUS_UP = "wschat_bus_connected"


def bus_up(node):
    return node.metrics().get(BUS_UP) == 1


async def scenario(c):
    members = await join_all(c.url, [f"m{i:02d}" for i in range(MEMBERS)])
    by_name = {m.name: m for m in members}
    await until(lambda: all(m.online == MEMBERS for m in members), "presence at 30", 15)
    senders = [by_name[sorted(joined_on(node))[0]] for node in c.nodes]
    check(all(bus_up(n) for n in c.nodes), "every node's /metrics says its bus is connected")

    for k in range(BEFORE):
        await senders[0].say(f"before {k}")
    await until(lambda: all(len(m.messages) == BEFORE for m in members), "the first messages")
    problem = in_one_order(members)
    check(not problem, "before the restart: every message once, in one order", problem)

    c.redis.kill()  # as a crash: no goodbye to the nodes
    await until(lambda: not any(bus_up(n) for n in c.nodes), "the buses noticing", 10)
    check(True, "every node's /metrics says its bus is down")
    await senders[1].say("while down", client_id="down-1")
    await senders[1].wait_for(lambda: senders[1].errors, "an error envelope")
    error = senders[1].errors[-1]
    check(error.get("code") == "bus_unavailable" and error.get("id") == "down-1",
          "a message sent while Redis is down is refused: error `bus_unavailable` with its id",
          f"{error}")
    await asyncio.sleep(0.5)
    check(all(len(m.messages) == BEFORE for m in members), "and nobody receives it")

    c.redis.restart()  # empty, on the same port: the nodes reconnect with their backoff
    try:
        await until(lambda: all(bus_up(n) for n in c.nodes), "the buses reconnecting", 20)
        check(True, "every node's bus reconnects by itself")
    except TimeoutError:
        check(False, "every node's bus reconnects by itself",
              f"{[(n.node_id, n.metrics().get(BUS_UP)) for n in c.nodes]}")
        return

    # The refused message, sent again, and messages from every node, interleaved.
    await senders[1].say("while down", client_id="down-1")
    for k in range(AFTER):
        await senders[k % len(senders)].say(f"after {k}")
    total = BEFORE + 1 + AFTER
    try:
        await until(lambda: all(len(m.messages) >= total for m in members),
                    "every message after the restart", 15)
    except TimeoutError:
        pass
    counts = sorted({len(m.messages) for m in members})
    check(counts == [total], f"each member holds {total} messages: {BEFORE} before, "
          f"{AFTER + 1} after", f"messages per member: {counts}")
    problem = in_one_order(members, skip=BEFORE)  # the new epoch's, on their own
    check(not problem, "after the restart: every message once, in one order, in a new epoch",
          problem)
    epochs = {epoch for epoch, *_ in members[0].messages}
    check(len(epochs) == 2, "Redis came back empty: the room numbers from a new epoch",
          f"{epochs}")
    texts = [t for *_, t in members[0].messages[BEFORE:]]
    check(texts.count("while down") == 1, "the retried message is delivered once", f"{texts}")
    check(not [e for m in members for e in m.errors if m is not senders[1]],
          "no other error envelope")
    await asyncio.gather(*(m.close() for m in members))


def main():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args()
    processes.deadline(90, "redis_restart.py")
    try:
        with Cluster(args) as c:
            asyncio.run(scenario(c))
    except Exception as e:  # noqa: BLE001 - any failure is reported, then cleanup has run
        check(False, "unexpected error", repr(e))
    return summary()


if __name__ == "__main__":
    sys.exit(main())
