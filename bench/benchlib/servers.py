"""Starting, pinning, measuring and always stopping the processes of a benchmark run."""

import atexit
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time

_started = []  # every Popen this driver started and has not reaped yet


def stop_all():
    """Stops every process the driver started (SIGTERM, then SIGKILL after 3 s), by pid."""
    for proc in list(_started):
        stop(proc)


def _on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


atexit.register(stop_all)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def pinned(command, core):
    """`command` under `taskset -c core`, or unchanged when core is None."""
    return command if core is None else ["taskset", "-c", str(core)] + command


def start(command, cwd=None):
    proc = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _started.append(proc)
    return proc


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()
    if proc in _started:
        _started.remove(proc)


def read_line(proc, timeout):
    """The next stdout line of `proc`, or None when it exits or `timeout` s pass."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            return None
        line = proc.stdout.readline()
        return line or None
    finally:
        sel.close()


def start_server(command, core, cwd=None, timeout=15):
    """Starts a server that prints `listening on ws://HOST:PORT/`; returns (proc, port)."""
    proc = start(pinned(command, core), cwd=cwd)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = read_line(proc, deadline - time.monotonic())
        if line is None:
            break
        if line.startswith("listening on ws://"):
            return proc, int(line.strip().rstrip("/").rsplit(":", 1)[1])
    err = proc.stderr.read() if proc.poll() is not None else ""
    stop(proc)
    raise RuntimeError("%s did not start: %s" % (" ".join(command), err.strip()[:300]))


def start_cluster(command, nodes, core, redis_server, timeout=15):
    """redis-server on a free port, then `nodes` servers `command --redis URL` on it, all on
    `core`; returns (processes, the nodes' ports), redis-server's process first. Whatever
    started is stopped again when one of them does not start."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    try:
        # Warnings only: its log goes to a pipe nobody reads after this, which must not fill.
        redis = start(pinned([redis_server, "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--daemonize", "no",
                              "--loglevel", "warning"], core))
        procs.append(redis)
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or redis.poll() is not None:
                    raise RuntimeError("redis-server did not start on port %d" % port)
                time.sleep(0.05)
        ports = []
        for _ in range(nodes):
            proc, node_port = start_server(command + ["--redis", "redis://127.0.0.1:%d" % port],
                                           core, timeout=timeout)
            procs.append(proc)
            ports.append(node_port)
        return procs, ports
    except BaseException:
        for proc in procs:
            stop(proc)
        raise


def memory_kib(pid):
    """{'VmRSS': kB, 'RssAnon': kB} from /proc/PID/status."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid):
    """User + system CPU seconds of process `pid` (all its threads)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds():
    """CPU seconds all cores have spent busy (not idle or iowait) since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_loadgen(command, core, timeout, on_line=None):
    """Runs the load generator; returns its last JSON line as a dict (with 'error' on
    failure). `on_line(obj)` sees every JSON line as it arrives (W4's ready line)."""
    proc = start(pinned(command, core))
    last = None
    deadline = time.monotonic() + timeout
    try:
        while True:
            line = read_line(proc, max(0.0, deadline - time.monotonic()))
            if line is None:
                break
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if on_line:
                on_line(obj)
            last = obj
        if proc.poll() is None:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    timed_out = proc.poll() is None
    err = ""
    if not timed_out:
        err = proc.stderr.read().strip()
    stop(proc)
    if timed_out:
        return {"error": "loadgen timed out"}
    if last is None:
        return {"error": "loadgen printed no result (exit %s): %s" % (proc.returncode, err[:300])}
    if proc.returncode != 0:
        last.setdefault("error", "loadgen exit %d: %s" % (proc.returncode, err[:300]))
    return last
