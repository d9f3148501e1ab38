"""Shared by the cluster tests: a real redis-server, three examples/chat_server nodes on it and
a real nginx in front of them (examples/nginx/cluster.conf with the test's ports), all on
127.0.0.1 with free ports and stopped by the test; and chat members over Python websockets.

    with Cluster(args) as c:                     # redis, node1-3, nginx
        m = await Member.join(c.url, "alice")    # through nginx: lands on some node
        await m.say("hi"); ...
"""

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
import processes  # noqa: E402
from nginx import Nginx  # noqa: E402
from redis_server import RedisServer  # noqa: E402

TIMEOUT = 10
ROOM = "general"
TEMPLATE = os.path.join(ROOT, "examples", "nginx", "cluster.conf")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def add_arguments(parser):
    """The command line every cluster test takes."""
    parser.add_argument("--chat-server", required=True)
    parser.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    parser.add_argument("--redis-server", default=shutil.which("redis-server") or
                        "/usr/bin/redis-server")


class Node:
    """examples/chat_server on 127.0.0.1 with --redis; `lines` collects its stdout; `node_id`
    names it in the test's messages."""

    def __init__(self, path, redis_url, node_id, extra=()):
        self.node_id = node_id
        self.argv = [path, "--address", "127.0.0.1", "--port", "0", "--redis", redis_url,
                     "--trusted-proxy", "127.0.0.1",
                     # every member of the test comes from 127.0.0.1, nginx as well
                     "--max-connections-per-address", "10000",
                     "--max-messages-per-second", "0"] + list(extra)
        self.proc = processes.track(subprocess.Popen(self.argv, stdout=subprocess.PIPE,
                                                     text=True))
        self.out = processes.LineReader(self.proc.stdout)
        self.lines = self.out.lines
        first = self.out.next(TIMEOUT)
        m = re.fullmatch(r"listening on ws://127\.0\.0\.1:(\d+)/", first or "")
        if not m:
            processes.stop(self.proc)
            raise RuntimeError(f"chat_server {node_id} said {first!r}")
        self.port = int(m.group(1))
        self.url = f"ws://127.0.0.1:{self.port}/"

    def kill(self):
        """SIGKILL: no close frames, no goodbye to Redis."""
        self.proc.kill()
        self.proc.wait()
        self.out.join()

    def stop(self):
        """SIGTERM; the exit status (None when it had to be killed)."""
        status = processes.stop(self.proc)
        self.out.join()
        return status

    def metrics(self):
        """/metrics as {'name{labels}': value}."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def local_members(self, room=ROOM):
        return int(self.metrics().get(f'wschat_room_members{{room="{room}"}}', 0))


def start_nginx(binary, listen_port, node_ports):
    """nginx running examples/nginx/cluster.conf in front of the test's nodes."""
    swaps = [("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{listen_port};")]
    swaps += [(f"server 127.0.0.1:{8081 + i} ", f"server 127.0.0.1:{port} ")
              for i, port in enumerate(node_ports)]
    return Nginx(binary, TEMPLATE, swaps, listen_port, TIMEOUT)


class Cluster:
    """redis-server, three nodes on it and nginx in front; `url` is nginx's. Stops them all on
    the way out of the `with` block, whatever happened."""

    def __init__(self, args, node_flags=(), nodes=3):
        self.args = args
        self.node_flags = list(node_flags)
        self.count = nodes
        self.redis = None
        self.nodes = []
        self.nginx = None

    def __enter__(self):
        try:
            os.environ["WSCHAT_REDIS_SERVER"] = self.args.redis_server  # the fixture's binary
            self.redis = RedisServer()
            self.nodes = [Node(self.args.chat_server, self.redis.url, f"node{i + 1}",
                               self.node_flags) for i in range(self.count)]
            self.port = free_port()
            self.url = f"ws://127.0.0.1:{self.port}/"
            self.nginx = start_nginx(self.args.nginx, self.port, [n.port for n in self.nodes])
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, kind, value, tb):
        if kind is not None and self.nginx:
            print(self.nginx.error_log(), file=sys.stderr)
        if self.nginx:
            self.nginx.stop()
        for node in self.nodes:
            node.stop()
        if self.redis:
            self.redis.stop()
        return False


# --- members -------------------------------------------------------------------------------------

class Member:
    """A chat member on one WebSocket; a reader task keeps what arrives: the room's messages
    (epoch, seq, from, text) in arrival order, the latest presence count, errors."""

    def __init__(self, name):
        self.name = name
        self.ws = None
        self.reader = None
        self.token = None
        self.welcomes = []
        self.messages = []  # (epoch, seq, from, text)
        self.online = None  # the latest count from joined/presence/roster
        self.joined = None  # the `joined` envelope of the room
        self.errors = []
        self.resumed = []
        self.rosters = []
        self.closed = asyncio.Event()
        self.changed = asyncio.Event()

    @classmethod
    async def join(cls, url, name, room=ROOM):
        m = cls(name)
        await m.connect(f"{url}rooms/{room}?name={name}")
        await m.wait_for(lambda: m.position() is not None, f"{name} joined")
        return m

    async def connect(self, url):
        self.closed.clear()
        self.ws = await asyncio.wait_for(websockets.connect(url, max_queue=None), TIMEOUT)
        self.reader = asyncio.ensure_future(self.read(self.ws))

    async def read(self, ws):
        try:
            async for raw in ws:
                e = json.loads(raw)
                kind = e.get("type")
                if kind == "welcome":
                    self.welcomes.append(e)
                    self.token = e["token"]
                    self.name = e["name"]
                elif kind == "message":
                    self.messages.append((e["epoch"], e["seq"], e["from"], e["text"]))
                elif kind in ("joined", "presence", "roster"):
                    self.online = e["online"]
                    if kind == "joined":
                        self.joined = e
                    elif kind == "roster":
                        self.rosters.append(e)
                elif kind == "resumed":
                    self.resumed.append(e)
                elif kind == "error":
                    self.errors.append(e)
                self.changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()
            self.changed.set()

    def position(self):
        """(epoch, seq) of the last message seen, or of the room when joined; None before."""
        if self.messages:
            return self.messages[-1][:2]
        return (self.joined["epoch"], self.joined["seq"]) if self.joined else None

    async def wait_for(self, predicate, what, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: {what} not within {timeout} s")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 0.2))
            except asyncio.TimeoutError:
                pass

    async def say(self, text, room=ROOM, client_id=None):
        envelope = {"type": "message", "room": room, "text": text}
        if client_id:
            envelope["id"] = client_id
        await self.ws.send(json.dumps(envelope))

    async def resume(self, url, room=ROOM):
        """A new connection (through `url`) that resumes this member from its last position."""
        epoch, seq = self.position()
        await self.connect(f"{url}rooms/{room}?name={self.name}&resume=1")
        before = len(self.resumed)
        await self.ws.send(json.dumps({"type": "resume", "token": self.token,
                                       "rooms": [{"room": room, "epoch": epoch, "seq": seq}]}))
        await self.wait_for(lambda: len(self.resumed) > before, "resumed")
        return self.resumed[-1]

    async def close(self):
        if self.ws:
            await self.ws.close()
        if self.reader:
            await asyncio.wait([self.reader], timeout=TIMEOUT)


async def join_all(url, names, batch=50):
    """Members `names` joined through `url`, `batch` connecting at a time."""
    members = []
    for start in range(0, len(names), batch):
        members += await asyncio.gather(*(Member.join(url, n) for n in names[start:start + batch]))
    return members


async def until(predicate, what, timeout=TIMEOUT):
    """Polls `predicate` (a plain function) every 50 ms; raises TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout} s")
        await asyncio.sleep(0.05)


def joined_on(node):
    """The names that joined on `node` (from its log: `join NAME from ADDR`), or resumed there."""
    names = set()
    for line in node.lines:
        m = re.fullmatch(r"(?:join|resume) (\S+) from \S+", line)
        if m:
            names.add(m.group(1))
    return names


def in_one_order(members, skip=0):
    """'' when every member holds the same messages (after its first `skip`) in the same
    order, numbered one after the other in one epoch (so none twice, none missing); else what
    is wrong."""
    reference = members[0].messages[skip:]
    seqs = [(epoch, seq) for epoch, seq, *_ in reference]
    if seqs and seqs != [(seqs[0][0], seqs[0][1] + i) for i in range(len(seqs))]:
        return f"{members[0].name}'s messages are not numbered one after the other: {seqs}"
    for m in members[1:]:
        got = m.messages[skip:]
        if got != reference:
            at = next((i for i, (a, b) in enumerate(zip(got, reference)) if a != b),
                      min(len(got), len(reference)))
            return (f"{m.name} got {len(got)} messages, {members[0].name} {len(reference)}; "
                    f"they differ at #{at}: {got[at:at + 1]} against {reference[at:at + 1]}")
    return ""
