#!/usr/bin/env python3
"""Runs one script test so that nothing it started outlives it, within a deadline.

    python3 tests/support/guard.py --timeout 240 [--ipv6-first-localhost LIBNSS_WRAPPER] -- CMD ARGS...

Every script test in tests/CMakeLists.txt runs under this. The scripts stop their own servers,
browsers and proxies on every path they can see (finally, exit and signal handlers); this is
the net under them for the paths they cannot: a script killed, hung or crashed, or a child
that slipped out of its parent's hands. Such a leftover keeps ctest's output pipe open, and
ctest then waits for it long after the test is over.

- The command runs in a process group of its own, and this process is the "child subreaper"
  (Linux): whatever the command starts and orphans is re-parented here instead of to init.
- When the command exits, everything still running below it is reported ("left running"),
  killed (SIGTERM, then SIGKILL) and reaped; a command that passed but left processes behind
  fails, because it does not stop what it starts.
- At --timeout seconds (keep it under ctest's TIMEOUT, so ctest never has to kill this
  process, which would leave the orphans to init), or on SIGTERM/SIGINT/SIGHUP, the command
  and everything below it get SIGTERM, then SIGKILL after a grace period.
- --ipv6-first-localhost makes `localhost` resolve to ::1 first, then 127.0.0.1, as on a stock
  Debian 12 (whose /etc/hosts has both, and whose Node 18 and Python try ::1 first), for the
  command and all it starts, without touching /etc/hosts: the named libnss_wrapper.so is
  preloaded with a hosts file of its own. A test that connects to `localhost` while its server
  listens on 127.0.0.1 only then fails here as it would there.

Exit status: the command's (128 + N when killed by signal N), 1 when it left processes
running, 124 on timeout. Python 3 standard library only.
"""

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time

GRACE = 5.0  # seconds between SIGTERM and SIGKILL
PR_SET_CHILD_SUBREAPER = 36
HOSTS = "::1 localhost ip6-localhost ip6-loopback\n127.0.0.1 localhost\n"


def say(text):
    print(f"guard: {text}", file=sys.stderr, flush=True)


class Interrupted(Exception):
    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def on_signal(signum, _frame):
    for other in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(other, signal.SIG_IGN)  # one stop, however many signals follow
    raise Interrupted(signum)


def become_subreaper():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def proc_table():
    """{pid: (ppid, pgid, state, command line)} from /proc (empty where there is none)."""
    table = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(entry)] = (int(fields[1]), int(fields[2]), fields[0], cmdline or stat)
    return table


def leftovers(pgid):
    """Live processes below this one, or in the command's process group: {pid: command line}."""
    table = proc_table()
    me = os.getpid()
    below = set()
    frontier = [me]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _, _, _) in table.items():
            if ppid == parent and pid not in below:
                below.add(pid)
                frontier.append(pid)
    found = {}
    for pid, (_, group, state, cmdline) in table.items():
        if pid != me and state != "Z" and (pid in below or group == pgid):
            found[pid] = cmdline
    return found


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def settle():
    """Reaps the last orphans, which reach this process a moment after their parent died
    (left to init they would stay zombies where init does not reap)."""
    time.sleep(0.1)
    reap()


def signal_all(pgid, pids, signum):
    """`signum` once to each: the process group, then those outside it."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in pids:
        try:
            if os.getpgid(pid) != pgid:
                os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def stop_all(pgid):
    """SIGTERM to everything below, SIGKILL to what is left after GRACE; returns what was found."""
    reap()  # orphans that already died, re-parented here
    found = leftovers(pgid)
    if not found:
        return found
    signal_all(pgid, found, signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    while time.monotonic() < deadline:
        reap()
        if not leftovers(pgid):
            return found
        time.sleep(0.05)
    rest = leftovers(pgid)
    say("still running %.0f s after SIGTERM, killed: %s" % (GRACE, ", ".join(map(str, rest))))
    signal_all(pgid, rest, signal.SIGKILL)
    deadline = time.monotonic() + GRACE
    while leftovers(pgid) and time.monotonic() < deadline:
        reap()
        time.sleep(0.05)
    reap()
    return found


def ipv6_first_env(library, directory):
    """The environment that makes `localhost` resolve to ::1 first, checked before use."""
    if not os.path.isfile(library):
        sys.exit(f"guard: {library} not found (Debian: libnss-wrapper)")
    hosts = os.path.join(directory, "hosts")
    with open(hosts, "w", encoding="utf-8") as f:
        f.write(HOSTS)
    env = dict(os.environ)
    env["LD_PRELOAD"] = " ".join(filter(None, [library, env.get("LD_PRELOAD", "")]))
    env["NSS_WRAPPER_HOSTS"] = hosts
    # Sanitized builds: ASan insists on coming first in the preload list, and need not.
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS", ""),
                                                 "verify_asan_link_order=0"]))
    probe = subprocess.run(
        [sys.executable, "-c",
         "import socket; print(socket.getaddrinfo('localhost', 80, type=socket.SOCK_STREAM)[0][4][0])"],
        env=env, stdout=subprocess.PIPE, text=True, check=False)
    if probe.stdout.strip() != "::1":
        sys.exit(f"guard: localhost still resolves to {probe.stdout.strip()!r} first "
                 f"with {library} preloaded")
    say("localhost resolves to ::1 first, then 127.0.0.1 (as on a stock Debian 12)")
    return env


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, required=True, help="seconds")
    parser.add_argument("--ipv6-first-localhost", metavar="LIBNSS_WRAPPER")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")

    subreaper = become_subreaper()
    with tempfile.TemporaryDirectory(prefix="wschat-guard-") as directory:
        env = ipv6_first_env(args.ipv6_first_localhost, directory) if args.ipv6_first_localhost else None
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, on_signal)
        status = None
        try:
            proc = subprocess.Popen(command, env=env, start_new_session=True)
        except OSError as e:
            sys.exit(f"guard: cannot start {command[0]}: {e}")
        pgid = proc.pid
        try:
            status = proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            say(f"TIMEOUT: {command[0]} still running after {args.timeout:.0f} s; stopping it "
                "and everything it started")
        except Interrupted as e:
            say(f"got signal {e.signum}; stopping {command[0]} and everything it started")
            stop_all(pgid)
            return 128 + e.signum
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(signum, signal.SIG_DFL)
        if status is None:
            stop_all(pgid)
            proc.wait()
            settle()
            return 124
        left = stop_all(pgid)
        settle()
        if left:
            say("left running by the test, now stopped:")
            for pid, cmdline in sorted(left.items()):
                say(f"  {pid} {cmdline[:200]}")
        elif not subreaper:
            say("(no child subreaper here: only the test's process group was checked)")
        if status < 0:
            return 128 - status
        if status == 0 and left:
            say("FAIL: the test passed but did not stop everything it started")
            return 1
        return status


if __name__ == "__main__":
    sys.exit(main())
