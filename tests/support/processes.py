"""Shared by the Python script tests: what a script starts is stopped on every way out of it.

    sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
    import processes
    processes.deadline(120, "my_test.py")          # the script's own time limit
    proc = processes.track(subprocess.Popen(...))  # killed if the script ends while it runs

SIGTERM and SIGHUP end the script like an exception (SystemExit), so `finally` blocks run,
and SIGINT does so already (KeyboardInterrupt); the deadline raises SystemExit the same way.
Whatever tracked process still runs when the interpreter exits is then killed.
"""

import atexit
import os
import queue
import signal
import subprocess
import sys
import threading

_live = []


def track(proc):
    """Registers a subprocess.Popen or asyncio Process; returns it."""
    _live.append(proc)
    return proc


def _running(proc):
    return (proc.poll() if hasattr(proc, "poll") else proc.returncode) is None


@atexit.register
def _kill_leftovers():
    for proc in _live:
        if _running(proc):
            try:
                proc.kill()
            except (ProcessLookupError, OSError):
                pass


def _exit_on(signum, _frame):
    for other in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(other, signal.SIG_IGN)  # let the clean-up this starts finish
    print(f"FAIL interrupted by signal {signum}: stopping what this test started", flush=True)
    sys.exit(128 + signum)


for _signum in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_signum, _exit_on)


def deadline(seconds, script):
    """Ends the script with SystemExit (status 1) if it still runs after `seconds`."""

    def expired(_signum, _frame):
        print(f"FAIL {script}: not finished within {seconds} s", flush=True)
        sys.exit(1)

    signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)


def stop(proc, sig=signal.SIGTERM, timeout=10):
    """Sends `sig` to a subprocess.Popen and waits; kills it after `timeout` seconds.
    Returns its exit status, or None when it had to be killed."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


class LineReader:
    """Reads a child's text stdout on a thread: `next(timeout)` never blocks for longer, and
    `lines` keeps every line seen."""

    def __init__(self, stream):
        self.lines = []
        self._queue = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream):
        for line in stream:
            line = line.rstrip("\r\n")
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def next(self, timeout):
        """The next line, or None at the end of the stream or after `timeout` seconds."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def join(self, timeout=5):
        self._thread.join(timeout)
