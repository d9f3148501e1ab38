#!/usr/bin/env python3
"""W1's cost in instructions: minimal_chat under callgrind, W1's fan-out (1000 members, 16 in
flight) for a short and a long window, and the user-space instructions the server executed per
delivery between the two (the handshakes and start-up cancel out). Instructions do not depend
on what else the machine runs, so two servers' figures compare where deliveries/s on a shared
machine cannot (the kernel's share of each send is not counted; it is the same for both).

    /usr/bin/python3 bench/callgrind_w1.py                  # wschat against --history 1000
    /usr/bin/python3 bench/callgrind_w1.py --reps 3 --variant "--history 50"

Needs valgrind; builds nothing (loadgen and minimal_chat from build/release).
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile

from benchlib import servers
from run import ROOT, WSCHAT_FLAGS


def instructions(minimal, extra, loadgen, duration, out_file):
    """(user-space instructions of the whole server run, deliveries) for one W1 run."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out_file, minimal,
               "--port", "0"] + WSCHAT_FLAGS + ["--threads", "1"] + extra
    proc, port = servers.start_server(command, None, timeout=60)
    try:
        result = servers.run_loadgen(
            [loadgen, "w1", "--port", str(port), "--members", "1000", "--in-flight", "16",
             "--warmup", "0.5", "--duration", str(duration), "--grace", "10"], None, 180)
    finally:
        # SIGTERM: minimal_chat stops gracefully, then callgrind writes its file (slowly).
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            servers.stop(proc)
    if "error" in result:
        raise RuntimeError("loadgen: " + result["error"])
    with open(out_file) as f:
        total = re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M)
    if not total:
        raise RuntimeError("no totals in " + out_file)
    return int(total.group(1)), result["delivered"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build-dir", default=os.path.join(ROOT, "build", "release"))
    p.add_argument("--reps", type=int, default=2, help="pairs of runs per server (default 2)")
    p.add_argument("--variant", default="--history 1000",
                   help="minimal_chat flags of the server compared with plain wschat")
    p.add_argument("--short", type=float, default=2, help="short window, s (default 2)")
    p.add_argument("--long", type=float, default=6, help="long window, s (default 6)")
    args = p.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("bench/callgrind_w1.py: needs valgrind")
    minimal = os.path.join(args.build_dir, "minimal_chat")
    loadgen = os.path.join(args.build_dir, "loadgen")
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for name, extra in (("wschat", []), (args.variant, args.variant.split())):
                short = instructions(minimal, extra, loadgen, args.short,
                                     os.path.join(tmp, "short.out"))
                long = instructions(minimal, extra, loadgen, args.long,
                                    os.path.join(tmp, "long.out"))
                per = (long[0] - short[0]) / (long[1] - short[1])
                figures.setdefault(name, []).append(per)
                print("rep %d %-16s %.1f instructions per delivery (%d and %d deliveries)" %
                      (rep + 1, name, per, short[1], long[1]), flush=True)
    plain = statistics.median(figures["wschat"])
    variant = statistics.median(figures[args.variant])
    print("median: wschat %.1f, %s %.1f instructions per delivery: %.4fx" %
          (plain, args.variant, variant, variant / plain))
    return 0


if __name__ == "__main__":
    sys.exit(main())
