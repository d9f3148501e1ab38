#!/usr/bin/env python3
"""wschat's benchmark driver: runs workloads W1-W5 against wschat and two peers (a Boost.Beast
room in the usual one-write-per-message style, and the seed's Node `ws` chat server), and W1 with
chat JSON envelopes against wschat with permessage-deflate off, shared and per-connection, each
server pinned to core 0 and the load generator to core 1, repeats each run, and prints a table
of medians with wschat's ratios to the peers; writes results.json, table.md and chart.png.

    /usr/bin/python3 bench/run.py                      # binaries from build/release
    /usr/bin/python3 bench/run.py --quick              # one short repetition of everything
    /usr/bin/python3 bench/run.py --servers wschat,beast --workloads w1,w5 --reps 3
    /usr/bin/python3 bench/run.py --servers wschat,wschat-deflate-shared,wschat-deflate-conn \
        --workloads w1-json                            # deflate off / shared / per-connection
    /usr/bin/python3 bench/run.py --servers wschat,wschat-noroom --workloads w5-storm
                                                       # a join storm, with and without a room
    /usr/bin/python3 bench/run.py --servers wschat,wschat-history,lobby \
        --workloads w1,w1-64,rooms,rooms-1x1000        # history on/off; the lobby's rooms
    /usr/bin/python3 bench/run.py --servers lobby,lobby-redis,cluster \
        --workloads cross-node                         # one room over 3 nodes on Redis vs 1

It builds nothing: bash bench/run.sh builds the release preset and runs this. Every process it
starts is stopped by pid at exit, on Ctrl-C and on errors. Python 3 standard library only.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time

from benchlib import report, servers, workloads

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The deflate variants are minimal_chat with permessage-deflate (`--deflate shared`: a broadcast
# compressed once for all, no context kept; `--deflate per-connection`: context takeover, a zlib
# stream per connection), the load generator offering it as a browser does. They run only the
# workloads in workloads.DEFLATE_WORKLOADS.
DEFLATE_SERVERS = {"wschat-deflate-shared": "shared", "wschat-deflate-conn": "per-connection"}
# wschat-history is minimal_chat keeping its last 1000 messages (`--history 1000`), run only on
# the workloads in HISTORY_WORKLOADS: the cost of history on the fan-out.
HISTORY_SERVERS = {"wschat-history": 1000}
HISTORY_WORKLOADS = {"w1", "w1-64"}
# "lobby" (bench/servers/lobby_server.cpp) is chat::lobby: it speaks JSON envelopes, so it runs
# the workloads in workloads.LOBBY_WORKLOADS, and they run only on it.
LOBBY_SERVERS = {"lobby"}
# The same lobby_server on a fresh redis-server (`--redis`): "lobby-redis" one node, "cluster"
# three, all on the server's core. They run only workloads.CLUSTER_WORKLOADS, and are run only
# when asked for (they need redis-server and a lobby_server built with hiredis).
CLUSTER_SERVERS = {"lobby-redis": 1, "cluster": 3}
DEFAULT_SERVERS = ["wschat", "wschat-2t", "beast", "node"] + list(DEFLATE_SERVERS) + \
    list(HISTORY_SERVERS) + list(LOBBY_SERVERS)
# "wschat-noroom" is minimal_chat with `--room off`: the same binary, options and event loop,
# the page served, connections accepted, but no room (no welcome, relay or presence). Beside
# plain wschat it shows what the room costs; it runs only the workloads in NOROOM_WORKLOADS
# (elsewhere there is no room traffic to compare).
NOROOM_WORKLOADS = {"w5", "w5-storm"}
# "ceiling" (bench/servers/ceiling_server.cpp) is a calibration, run only when asked for: a
# bare epoll broadcaster that shows how far the load generator can go.
# "baseline" is minimal_chat from another build (--baseline-server), e.g. the previous main,
# run only when asked for: a change's before/after figures from one run.
ALL_SERVERS = DEFAULT_SERVERS + ["wschat-noroom", "ceiling", "baseline"] + list(CLUSTER_SERVERS)
# examples/minimal_chat with the limits a load test needs lifted (the benchmark opens up to
# 1000 connections from one address and sends as fast as the room delivers).
WSCHAT_FLAGS = ["--max-connections", "100000", "--max-connections-per-address", "100000",
                "--max-messages-per-second", "0"]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build-dir", default=os.path.join(ROOT, "build", "release"),
                   help="where loadgen, beast_server, parser_bench, loopback_bench "
                        "and minimal_chat were built (default build/release)")
    p.add_argument("--out", default=os.path.join(ROOT, "build", "bench-results"),
                   help="output directory (default build/bench-results)")
    p.add_argument("--reps", type=int, default=5, help="repetitions per run (default 5)")
    p.add_argument("--quick", action="store_true",
                   help="one short repetition with small rooms (a smoke test, not a measurement)")
    p.add_argument("--servers", default=",".join(DEFAULT_SERVERS),
                   help="comma-separated subset of " + ",".join(ALL_SERVERS))
    p.add_argument("--workloads", default=",".join(list(workloads.WORKLOADS) + ["micro"]),
                   help="comma-separated subset of %s,micro" % ",".join(workloads.WORKLOADS))
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    p.add_argument("--skip-missing", action="store_true",
                   help="leave out servers whose binary or runtime is missing instead of failing")
    for name in ("loadgen", "wschat-server", "beast-server", "ceiling-server", "parser-bench",
                 "loopback-bench", "lobby-server"):
        p.add_argument("--" + name, help="path of the %s binary" % name)
    p.add_argument("--baseline-server",
                   help="minimal_chat built from other sources (e.g. the previous commit), run "
                        "as the server 'baseline' with wschat's flags and one thread, so that a "
                        "change's before and after come from one run")
    args = p.parse_args(argv)
    if args.quick:
        args.reps = 1
    return args


def find(args, option, names):
    explicit = getattr(args, option.replace("-", "_"))
    if explicit:
        return explicit
    for name in names:
        path = os.path.join(args.build_dir, name)
        if os.access(path, os.X_OK):
            return path
    return None


def built_with_deflate(minimal):
    """Whether minimal_chat takes --deflate (it refuses it when built without zlib)."""
    probe = subprocess.run([minimal, "--deflate", "shared", "--help"], capture_output=True,
                           text=True, timeout=30)
    return "no permessage-deflate" not in probe.stderr


def redis_server():
    """redis-server's path (Debian puts it in /usr/bin), or None."""
    return shutil.which("redis-server") or next(
        (p for p in ["/usr/bin/redis-server"] if os.access(p, os.X_OK)), None)


def server_commands(args):
    """{server: command} for the servers that can run here, and {server: why not} for the rest."""
    commands, missing = {}, {}
    minimal = find(args, "wschat-server", ["minimal_chat"])
    if minimal:
        base = [minimal, "--port", "0"] + WSCHAT_FLAGS
        commands["wschat"] = base + ["--threads", "1"]
        commands["wschat-2t"] = base + ["--threads", "2"]
        commands["wschat-noroom"] = base + ["--threads", "1", "--room", "off"]
        deflate = built_with_deflate(minimal)
        for name, mode in DEFLATE_SERVERS.items():
            if deflate:
                commands[name] = base + ["--threads", "1", "--deflate", mode]
            else:
                missing[name] = "minimal_chat built without zlib (zlib1g-dev)"
        for name, messages in HISTORY_SERVERS.items():
            commands[name] = base + ["--threads", "1", "--history", str(messages)]
    else:
        for name in ["wschat", "wschat-2t", "wschat-noroom"] + list(DEFLATE_SERVERS) + \
                list(HISTORY_SERVERS):
            missing[name] = "no minimal_chat in " + args.build_dir
    lobby = find(args, "lobby-server", ["lobby_server"])
    if lobby:
        commands["lobby"] = [lobby, "--port", "0"] + WSCHAT_FLAGS + ["--threads", "1"]
    else:
        missing["lobby"] = "lobby_server not built (needs nlohmann-json3-dev)"
    redis = redis_server()
    for name in CLUSTER_SERVERS:
        if not lobby:
            missing[name] = missing["lobby"]
        elif not redis:
            missing[name] = "redis-server not installed (Debian: redis-server)"
        elif "--redis" not in subprocess.run([lobby, "--help"], capture_output=True, text=True,
                                             timeout=30).stdout:
            missing[name] = "lobby_server built without hiredis (libhiredis-dev)"
        else:
            commands[name] = commands["lobby"]
    if args.baseline_server:
        commands["baseline"] = [args.baseline_server, "--port", "0"] + WSCHAT_FLAGS + \
            ["--threads", "1"]
    else:
        missing["baseline"] = "no --baseline-server given"
    beast = find(args, "beast-server", ["beast_server"])
    if beast:
        commands["beast"] = [beast, "--port", "0"]
    else:
        missing["beast"] = "beast_server not built (needs libboost-dev)"
    ceiling = find(args, "ceiling-server", ["ceiling_server"])
    if ceiling:
        commands["ceiling"] = [ceiling, "--port", "0"]
    else:
        missing["ceiling"] = "ceiling_server not built"
    node = shutil.which("node")
    if node and os.path.isdir(os.path.join(ROOT, "node_modules", "ws")):
        commands["node"] = [node, os.path.join(ROOT, "bench", "peers", "node_seed_server.mjs"),
                            "--port", "0"]
    else:
        missing["node"] = "node or node_modules/ws missing (npm ci)"
    return commands, missing


def runs_on(server, workload):
    """Whether `server` runs `workload`: the history variant only the fan-outs it is compared
    on, the room-less variant only the joins, the lobby only the workloads in its envelopes, and they only on it."""
    if server in HISTORY_SERVERS:
        return workload in HISTORY_WORKLOADS
    if server in CLUSTER_SERVERS:
        return workload in workloads.CLUSTER_WORKLOADS
    if server == "wschat-noroom":
        return workload in NOROOM_WORKLOADS
    return (server in LOBBY_SERVERS) == (workload in workloads.LOBBY_WORKLOADS)


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)}


def main(argv=None):
    args = parse_args(argv)
    # One descriptor per connection in the servers and the load generator (inherited).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cores = (None, None) if args.no_pin or (os.cpu_count() or 1) < 2 else (0, 1)

    loadgen = find(args, "loadgen", ["loadgen"])
    wanted = [s for s in args.servers.split(",") if s]
    chosen = [w for w in args.workloads.split(",") if w]
    unknown = [s for s in wanted if s not in ALL_SERVERS] + \
        [w for w in chosen if w not in workloads.WORKLOADS and w != "micro"]
    if unknown:
        sys.exit("bench/run.py: unknown server or workload: " + ", ".join(unknown))
    commands, missing = server_commands(args)
    absent = [s for s in wanted if s not in commands]
    if absent and not args.skip_missing:
        sys.exit("bench/run.py: cannot run " + "; ".join("%s: %s" % (s, missing[s]) for s in absent))
    wanted = [s for s in wanted if s in commands]
    if not loadgen and any(w != "micro" for w in chosen):
        sys.exit("bench/run.py: no loadgen in %s (build the bench targets)" % args.build_dir)

    os.makedirs(args.out, exist_ok=True)
    results, failures = {}, []
    for workload in (w for w in chosen if w != "micro"):
        # Repetitions go round the servers (rep 1 of each, then rep 2, ...): on a machine
        # shared with other work, load that comes and goes then falls on every server alike
        # instead of on whichever ran its repetitions at the time.
        for rep in range(args.reps):
            for server in wanted:
                if server in DEFLATE_SERVERS and workload not in workloads.DEFLATE_WORKLOADS:
                    continue  # its messages stay uncompressed: it would measure plain wschat
                if not runs_on(server, workload):
                    continue
                cluster = None
                if server in CLUSTER_SERVERS:
                    cluster = (CLUSTER_SERVERS[server], redis_server())
                try:
                    r = workloads.run_once(workload, commands[server], loadgen, cores,
                                           args.quick, ROOT, deflate=server in DEFLATE_SERVERS,
                                           cluster=cluster)
                except (RuntimeError, OSError) as e:
                    r = {"error": str(e)}
                lacking = [k for k, *_ in workloads.METRICS[workload] if k not in r]
                if lacking and "error" not in r:
                    r["error"] = "no figure for " + ", ".join(lacking)
                results.setdefault(server, {}).setdefault(workload, []).append(r)
                status = r.get("error") or ", ".join(
                    "%s=%s" % (k, report.fmt(r.get(k), u))
                    for k, _, u, _ in workloads.METRICS[workload] if k in r)
                if "error" not in r and "loadgen_cpu" in r:
                    status += " (CPU: server %.0f %%, loadgen %.0f %%, machine %.0f %%)" % (
                        100 * r.get("server_cpu", 0), 100 * r["loadgen_cpu"],
                        100 * r.get("machine_cpu", 0))
                print("%-7s %-21s rep %d: %s" % (workload, server, rep + 1, status), flush=True)
                if "error" in r:
                    failures.append("%s %s: %s" % (workload, server, r["error"]))

    micro = None
    if "micro" in chosen:
        bench = find(args, "parser-bench", ["parser_bench"])
        if bench:
            micro = workloads.run_micro(bench, cores[0])
            print(micro.pop("output"), flush=True)
            if "error" in micro:
                failures.append("micro: " + micro["error"])
        else:
            failures.append("micro: no parser_bench in " + args.build_dir)
        bench = find(args, "loopback-bench", ["loopback_bench"])
        if bench:
            micro = micro or {}
            micro["loopback"] = workloads.run_loopback(bench, cores)
            print(micro["loopback"].pop("output"), flush=True)
            if "error" in micro["loopback"]:
                failures.append("micro: " + micro["loopback"]["error"])
        else:
            failures.append("micro: no loopback_bench in " + args.build_dir)

    text, med = report.table(results, micro, wanted)
    targets = report.targets_text(med, micro)
    if micro:
        text += "\n\n" + report.micro_text(micro)
    info = machine()
    header = ("Machine: %s, %s cores, %s GiB, Linux %s; server pinned to core %s, load generator "
              "to core %s; medians of %d repetition(s)%s. Ratios: wschat's figure divided by "
              "the peer's; for the deflate and history variants, theirs divided by plain "
              "wschat's. W4 counts the %s; W1 JSON the same after the fan-out." %
              (info["cpu"] or "unknown CPU", info["cores"], info["memory_gib"], info["kernel"],
               cores[0], cores[1], args.reps, " (--quick: small rooms, short runs)"
               if args.quick else "", workloads.MEMORY_METHOD))
    busy = [(r["machine_cpu"], r["server_cpu"] + r.get("loadgen_cpu", 0))
            for per in results.values() for runs in per.values() for r in runs
            if "machine_cpu" in r and "loadgen_cpu" in r]
    if busy:
        header += (" During the runs the machine's cores were busy %.2f cores' worth on average, "
                   "the server and load generator %.2f of it." %
                   (sum(b[0] for b in busy) / len(busy), sum(b[1] for b in busy) / len(busy)))
    print("\n" + header + "\n\n" + text + "\n\n" + targets)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(header + "\n\n" + text + "\n\n" + targets + "\n")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"machine": info, "cores": cores, "reps": args.reps, "quick": args.quick,
                   "servers": {s: commands[s] for s in wanted}, "skipped": missing,
                   "memory_method": workloads.MEMORY_METHOD, "runs": results,
                   "medians": {s: {"%s.%s" % k: v for k, v in m.items()} for s, m in med.items()},
                   "micro": micro, "failures": failures,
                   "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}, f, indent=1)
    try:
        png = report.chart(med, wanted, args.out)
        print("chart: %s" % (png or "not drawn (gnuplot missing)"))
    except Exception as e:  # a chart is a convenience; the figures are already written
        print("chart: not drawn: %s" % e)
    print("results: %s" % args.out)
    if failures:
        print("FAILED runs:\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
