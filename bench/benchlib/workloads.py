"""The workloads W1-W5, W1 JSON and the parser micro-benchmark: how each is run and what it
yields."""

import re
import subprocess
import time

from . import servers

# name -> loadgen mode and arguments (full run; QUICK_ARGS override them for --quick).
WORKLOADS = {
    "w1": ("w1", {"members": 1000, "in-flight": 16, "warmup": 1, "duration": 5, "grace": 2}),
    "w1-64": ("w1", {"members": 1000, "in-flight": 64, "warmup": 1, "duration": 5, "grace": 2}),
    "w2": ("w2", {"members": 1000, "senders": 100, "rate": 10, "warmup": 1, "duration": 5,
                  "grace": 2}),
    "w3": ("w3", {"members": 100, "senders": 10, "rate": 10, "warmup": 1, "duration": 5,
                  "grace": 1}),
    "w4": ("w4", {"members": 1000, "hold": 1}),
    # The same members all in their handshake at once (W4 keeps 128 at a time): what the
    # heap keeps of a join storm's transient allocations.
    "w4-burst": ("w4", {"members": 1000, "hold": 1, "connect-batch": 1000}),
    "w5": ("w5", {"concurrency": 32, "duration": 5}),
    # A join storm: 5000 members connect at once, 256 in their handshake at a time (a proxy's
    # reconnect wave), and stay, reading the welcome and every presence announcement. W5's
    # loops leave the room at a few members; here it grows to 5000, so what presence costs
    # the server while members join shows in joins/s.
    # `grace`: how long the count may take to converge after the last join (a room spreads
    # its announcements: 5000 members / 2000 frames per second).
    "w5-storm": ("storm", {"members": 5000, "connect-batch": 256, "grace": 5}),
    # W1's fan-out with chat JSON envelopes (150-250 bytes of varied text): what
    # permessage-deflate is measured on. The members stay open for `hold` s after the run, so
    # the memory per connection is taken after they have received compressed traffic.
    "w1-json": ("w1", {"members": 1000, "in-flight": 16, "warmup": 1, "duration": 5, "grace": 2,
                       "payload": "json", "hold": 1}),
}
# Rooms of a chat::lobby (bench/servers/lobby_server.cpp, loadgen mode `rooms`): R rooms of M
# members joined by URL, one sender per room in a closed loop, every member checking each
# message of its room (seq, text). The members idle `hold` s after joining and after the run,
# while the server's memory is taken (memory per room).
WORKLOADS.update({
    "rooms": ("rooms", {"rooms": 100, "members": 10, "in-flight": 16, "warmup": 1,
                        "duration": 5, "grace": 2, "hold": 1}),
    # One room of 1000: the lobby on W1's shape (JSON envelopes, seq, history), to compare.
    "rooms-1x1000": ("rooms", {"rooms": 1, "members": 1000, "in-flight": 16, "warmup": 1,
                               "duration": 5, "grace": 2, "hold": 1}),
})
# Scale-out (issue 18): one room of 1000 spread over the nodes of a cluster on Redis
# (lobby_server --redis, loadgen --ports): member i on node i mod n, the sender on the first,
# so on three nodes two thirds of the deliveries reach their node through Redis. Run on
# `lobby` (one node, the in-process bus: the figure a cluster is compared with), `lobby-redis`
# (one node on Redis: what the bus costs) and `cluster` (three nodes on one Redis).
WORKLOADS["cross-node"] = ("rooms", {"rooms": 1, "members": 1000, "in-flight": 16, "warmup": 1,
                                     "duration": 5, "grace": 2})
# The workloads the cluster servers run, and only those.
CLUSTER_WORKLOADS = {"cross-node"}
# The workloads the lobby server runs, and the only ones it runs (it speaks envelopes).
LOBBY_WORKLOADS = {"rooms", "rooms-1x1000"} | CLUSTER_WORKLOADS
# The workloads whose messages a deflate server compresses (it leaves messages under 128 bytes
# as they are): the only ones its variants run, elsewhere they would measure plain wschat.
DEFLATE_WORKLOADS = {"w1-json"}
QUICK_ARGS = {
    "w1": {"members": 200, "warmup": 0.2, "duration": 1, "grace": 1},
    "w1-64": {"members": 200, "warmup": 0.2, "duration": 1, "grace": 1},
    "w2": {"members": 200, "senders": 20, "warmup": 0.2, "duration": 1, "grace": 1},
    "w3": {"members": 50, "senders": 5, "warmup": 0.2, "duration": 1, "grace": 1},
    "w4": {"members": 200, "hold": 0.3},
    "w4-burst": {"members": 200, "hold": 0.3, "connect-batch": 200},
    "w5": {"concurrency": 8, "duration": 1},
    "w5-storm": {"members": 1000},
    "w1-json": {"members": 200, "warmup": 0.2, "duration": 1, "grace": 1, "hold": 0.8},
}
# `hold` outlasts the driver's 0.5 s wait after a ready line, or it measures the run's start.
QUICK_ARGS.update({
    "rooms": {"rooms": 20, "members": 10, "warmup": 0.2, "duration": 1, "grace": 1, "hold": 0.8},
    "rooms-1x1000": {"members": 200, "warmup": 0.2, "duration": 1, "grace": 1, "hold": 0.8},
    "cross-node": {"members": 300, "warmup": 0.2, "duration": 1, "grace": 1},
})

# The figures each workload yields, in table order: (key, label, unit, higher_is_better).
METRICS = {
    "w1": [("deliveries_per_s", "W1 fan-out, 16 in flight: deliveries/s", "/s", True)],
    "w1-64": [("deliveries_per_s", "W1 fan-out, 64 in flight: deliveries/s", "/s", True)],
    "w2": [("deliveries_per_s", "W2 100 senders x 10/s: deliveries/s", "/s", True),
           ("undelivered_pct", "W2 undelivered", "%", False),
           ("p99_us", "W2 latency p99", "us", False)],
    "w3": [("p50_us", "W3 latency p50", "us", False),
           ("p99_us", "W3 latency p99", "us", False)],
    "w4": [("bytes_per_conn", "W4 memory per idle connection", "B", False)],
    "w4-burst": [("bytes_per_conn", "W4, all joining at once: memory per idle connection", "B",
                  False)],
    "w5": [("handshakes_per_s", "W5 handshakes/s", "/s", True)],
    "w5-storm": [("joins_per_s", "W5 storm, 5000 joining at once: joins/s", "/s", True),
                 ("frames_per_member", "W5 storm: frames received per member while joining",
                  "frames", False),
                 ("bytes_per_member", "W5 storm: bytes received per member while joining", "B",
                  False),
                 ("total_frames_per_member", "W5 storm: frames per member until settled",
                  "frames", False),
                 ("server_cpu_storm", "W5 storm: server CPU while joining", "cores", False),
                 ("server_us_per_join", "W5 storm: server CPU per join", "us", False)],
    "w1-json": [("deliveries_per_s", "W1 JSON envelopes: deliveries/s", "/s", True),
                ("wire_bytes_per_delivery", "W1 JSON: bytes on the wire per delivery", "B",
                 False),
                ("server_cpu_window", "W1 JSON: server CPU in the window", "cores", False),
                ("server_ns_per_delivery", "W1 JSON: server CPU per delivery", "ns", False),
                ("bytes_per_conn", "W1 JSON: memory per connection after the fan-out", "B",
                 False)],
}

METRICS.update({
    "rooms": [("deliveries_per_s", "Lobby 100 rooms x 10, 16 in flight each: deliveries/s", "/s",
               True),
              ("bytes_per_room_joined", "Lobby 100 x 10: memory per room, joined", "B", False),
              ("bytes_per_room_after", "Lobby 100 x 10: memory per room after the run", "B",
               False),
              ("server_ns_per_delivery", "Lobby 100 x 10: server CPU per delivery", "ns", False)],
    "rooms-1x1000": [("deliveries_per_s", "Lobby 1 room x 1000, 16 in flight: deliveries/s",
                      "/s", True),
                     ("bytes_per_room_after", "Lobby 1 x 1000: memory of the room after the run",
                      "B", False),
                     ("server_ns_per_delivery", "Lobby 1 x 1000: server CPU per delivery", "ns",
                      False)],
})
METRICS["cross-node"] = [
    ("deliveries_per_s", "Cross-node fan-out, 1 room x 1000 spread over the nodes: deliveries/s",
     "/s", True),
    ("p50_us", "Cross-node fan-out: latency p50", "us", False),
    ("p99_us", "Cross-node fan-out: latency p99", "us", False),
    ("server_cpu", "Cross-node fan-out: CPU of the nodes and redis-server (whole run)", "cores",
     False)]
# What a room's history costs W1 (wschat-history against wschat): the server's CPU per
# delivery, which other load on the machine disturbs less than the rate, and its memory when
# the run is over.
METRICS["w1"] = METRICS["w1"] + [
    ("server_ns_per_delivery", "W1: server CPU per delivery", "ns", False),
    ("server_rss_anon_end", "W1: server memory (RssAnon) after the run", "B", False)]

MEMORY_METHOD = ("increase of the server's resident anonymous memory (RssAnon in "
                 "/proc/PID/status: heap, stacks, anonymous mmaps; not kernel socket buffers) "
                 "from before the first connection to after every member has joined and the "
                 "room is idle, divided by the number of members")


def loadgen_args(name, quick):
    mode, args = WORKLOADS[name]
    args = dict(args)
    if quick:
        args.update(QUICK_ARGS[name])
    flat = [mode]
    for key, value in args.items():
        flat += ["--" + key, str(value)]
    return flat, args


def run_once(name, server_command, loadgen, cores, quick, cwd, deflate=False, cluster=None):
    """One repetition of workload `name` against a fresh server; a dict of figures. With
    `deflate` the load generator offers permessage-deflate (and requires it). With `cluster`
    ((nodes, redis-server's path)) the server is that many nodes of `server_command` on a fresh
    redis-server, all on the server's core, and its CPU is theirs together."""
    args, values = loadgen_args(name, quick)
    if cluster:
        procs, ports = servers.start_cluster(server_command, cluster[0], cores[0], cluster[1])
        args += ["--ports", ",".join(str(p) for p in ports)]
    else:
        proc, port = servers.start_server(server_command, cores[0], cwd=cwd)
        procs = [proc]
        args += ["--port", str(port)]
        if WORKLOADS[name][0] != "w5":
            args += ["--server-pid", str(proc.pid)]  # its CPU inside the measured window
    try:
        command = [loadgen] + args
        if deflate:
            command += ["--deflate", "on"]
        timeout = 90 + sum(float(values.get(k, 0)) for k in ("warmup", "duration", "grace", "hold"))
        cpu_before = sum(servers.cpu_seconds(p.pid) for p in procs)
        wall_before = time.monotonic()
        busy_before = servers.machine_busy_seconds()
        if WORKLOADS[name][0] == "rooms" and "hold" in values:
            result = _memory_per_room(procs[0], command, cores[1], timeout, values["rooms"])
        elif "hold" in values:
            result = _memory_when_ready(procs[0], command, cores[1], timeout, values["members"])
        else:
            result = servers.run_loadgen(command, cores[1], timeout)
        exited = [p for p in procs if p.poll() is not None]
        if exited:
            result.setdefault("error", "server exited with %s" % exited[0].returncode)
        else:
            wall = time.monotonic() - wall_before
            cpu = sum(servers.cpu_seconds(p.pid) for p in procs)
            result["server_cpu"] = (cpu - cpu_before) / wall
            # Cores' worth of CPU the whole machine was busy with during the run: well above
            # server + load generator means other processes competed for the cores.
            result["machine_cpu"] = (servers.machine_busy_seconds() - busy_before) / wall
            result["server_rss_anon_end"] = sum(servers.memory_kib(p.pid)["RssAnon"]
                                                for p in procs) * 1024.0
    finally:
        for p in procs:
            servers.stop(p)
    if "error" not in result and name in ("w2",):
        result["undelivered_pct"] = 100.0 * (1.0 - result["delivered_fraction"])
    if "error" not in result and result.get("server_cpu_window") is not None and \
            result.get("deliveries_per_s"):
        result["server_ns_per_delivery"] = 1e9 * result["server_cpu_window"] / \
            result["deliveries_per_s"]
    if "error" not in result and result.get("server_cpu_storm") is not None and \
            result.get("joins_per_s"):
        # What a join costs the server, whatever share of its core other processes left it.
        result["server_us_per_join"] = 1e6 * result["server_cpu_storm"] / result["joins_per_s"]
    return result


def _memory_when_ready(proc, command, core, timeout, members):
    """Runs the load generator and takes the server's memory when it says the members are
    ready (W4: joined; W1 JSON: after the fan-out), against before the first connection."""
    time.sleep(0.3)  # let the server finish starting up
    before = servers.memory_kib(proc.pid)
    after = {}

    def on_line(obj):
        if obj.get("event") == "ready":
            time.sleep(0.5)  # the last presence frames leave the queues
            after.update(servers.memory_kib(proc.pid))

    result = servers.run_loadgen(command, core, timeout, on_line)
    if "error" not in result and after:
        result["bytes_per_conn"] = (after["RssAnon"] - before["RssAnon"]) * 1024.0 / members
        result["rss_bytes_per_conn"] = (after["VmRSS"] - before["VmRSS"]) * 1024.0 / members
        result["rss_anon_kib_before"] = before["RssAnon"]
        result["rss_anon_kib_after"] = after["RssAnon"]
    elif "error" not in result:
        result["error"] = "loadgen never reported ready"
    return result


def _memory_per_room(proc, command, core, timeout, rooms):
    """Runs the lobby workload and takes the server's memory at its two ready lines (every
    member joined; the run over and its messages in the rooms' histories), against before the
    first connection, per room."""
    time.sleep(0.3)  # let the server finish starting up
    before = servers.memory_kib(proc.pid)
    at = {}

    def on_line(obj):
        if obj.get("event") == "ready":
            time.sleep(0.5)  # the last presence frames leave the queues
            at[obj.get("phase")] = servers.memory_kib(proc.pid)

    result = servers.run_loadgen(command, core, timeout, on_line)
    if "error" in result:
        return result
    if set(at) != {"joined", "after"}:
        result["error"] = "loadgen did not report both ready phases"
        return result
    for phase, kib in at.items():
        result["bytes_per_room_" + phase] = (kib["RssAnon"] - before["RssAnon"]) * 1024.0 / rooms
        result["rss_anon_kib_" + phase] = kib["RssAnon"]
    result["rss_anon_kib_before"] = before["RssAnon"]
    return result


def run_micro(parser_bench, core):
    """Runs bench/micro/parser_bench; returns its figures (parse vs memcpy, handshakes)."""
    out = subprocess.run(servers.pinned([parser_bench], core), capture_output=True, text=True,
                         timeout=600)
    figures = {"output": out.stdout}
    for line in out.stdout.splitlines():
        m = re.match(r"(.+?)\s+([\d.]+) GB/s .*memcpy\s+([\d.]+) GB/s", line)
        if m:
            figures[m.group(1).strip()] = {"parse_gbps": float(m.group(2)),
                                           "memcpy_gbps": float(m.group(3)),
                                           "parse_vs_memcpy": float(m.group(2)) / float(m.group(3))}
        m = re.match(r"(handshake [^ ]+)\s+([\d.]+) k requests/s", line)
        if m:
            figures[m.group(1)] = {"requests_per_s": float(m.group(2)) * 1e3}
    if out.returncode != 0:
        figures["error"] = "parser_bench exit %d" % out.returncode
    return figures


def run_loopback(loopback_bench, cores):
    """Runs bench/micro/loopback_bench with the server's and the load generator's cores;
    returns what one small loopback send costs here and the W2 floor it sets."""
    command = [loopback_bench]
    if cores[0] is not None:
        command += ["--sender-core", str(cores[0]), "--receiver-core", str(cores[1])]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120)
    figures = {"output": out.stdout + out.stderr}
    send = re.search(r"loopback send, (\d+) B frame, (\d+) connections\s+([\d.]+) us per send",
                     out.stdout)
    floor = re.search(r"one write to (\d+) of \d+ members\s+([\d.]+) ms", out.stdout)
    if out.returncode != 0 or not send or not floor:
        figures["error"] = ("loopback_bench exit %d" % out.returncode if out.returncode != 0
                            else "loopback_bench printed no figures")
        return figures
    figures.update({"frame_bytes": int(send.group(1)), "connections": int(send.group(2)),
                    "us_per_send": float(send.group(3)), "floor_members": int(floor.group(1)),
                    "floor_ms": float(floor.group(2))})
    return figures
