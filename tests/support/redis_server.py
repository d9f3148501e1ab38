"""A real redis-server for the script tests, the Python twin of tests/support/redis_server.hpp.

    sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
    from redis_server import RedisServer
    with RedisServer() as redis:                  # 127.0.0.1, a free port, empty, no disk
        url = redis.url                           # "redis://127.0.0.1:P"
        redis.query("SET", "k", "v")              # b"OK" (a reply, parsed)
        redis.kill()                              # SIGKILL: a crashed Redis
        redis.restart()                           # a new, empty server on the same port
    # stopped (SIGKILL) and its temporary directory removed, on every way out

`redis-server --port P --bind 127.0.0.1 --save '' --appendonly no`, its files in a fresh
temporary directory; the binary is $WSCHAT_REDIS_SERVER, else `redis-server` on PATH. The
process is registered with processes.track, so it is killed even if the script dies.

Run as a script (`python3 tests/support/redis_server.py`) it checks itself against a real
redis-server: start, query, kill, restart on the same port, a password, a Unix socket.

Python 3 standard library only.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import processes  # noqa: E402  (tests/support, next to this file)


class RedisError(Exception):
    """An error reply from Redis ("-ERR ..."), with its text."""


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def encode_command(*args):
    """The RESP encoding of a command; str arguments are UTF-8, bytes go as they are."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class _Reader:
    """Reads RESP2 replies from a blocking socket: bytes for strings and statuses, int for
    integers, None for nil, list for arrays, RedisError for an error reply (returned, not
    raised, so that a caller sees several replies in order)."""

    def __init__(self, sock):
        self._sock = sock
        self._buf = b""

    def _fill(self):
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("Redis closed the connection")
        self._buf += chunk

    def _line(self):
        while b"\r\n" not in self._buf:
            self._fill()
        line, self._buf = self._buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self._buf) < n + 2:
            self._fill()
        data, self._buf = self._buf[:n], self._buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return RedisError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ConnectionError("not RESP: %r" % line[:40])


class RedisServer:
    """A redis-server child process on 127.0.0.1 (see the module's docstring)."""

    def __init__(self, password=None, unix_socket=False, start=True):
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="wschat-redis-")
        self.unix_path = os.path.join(self.dir, "redis.sock") if unix_socket else None
        self.port = None
        self.proc = None
        if start:
            self.start()

    # --- life ------------------------------------------------------------------------------------

    def start(self):
        """Starts on a free port (retried on a new one if another process took it) and
        returns once the server answers."""
        for _ in range(5):
            self.port = _free_port()
            if self._launch():
                return self
        raise RuntimeError("redis-server did not start; see %s/redis.log" % self.dir)

    def restart(self):
        """Kills the server (if running) and starts a new, empty one on the same port."""
        self.kill()
        for _ in range(20):
            if self._launch():
                return self
            time.sleep(0.1)
        raise RuntimeError("redis-server did not restart on port %d" % self.port)

    def kill(self):
        """SIGKILL, as a crashed or OOM-killed Redis: connections are reset, nothing is saved."""
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGCONT)  # a frozen process must be able to die
            except ProcessLookupError:
                pass
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def freeze(self):
        """SIGSTOP: the server keeps its sockets but answers nothing (a hung Redis)."""
        if self.running():
            self.proc.send_signal(signal.SIGSTOP)

    def thaw(self):
        """SIGCONT after freeze()."""
        if self.running():
            self.proc.send_signal(signal.SIGCONT)

    def stop(self):
        """Kills the server and removes its directory."""
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # --- addresses -------------------------------------------------------------------------------

    @property
    def url(self):
        """redis://[:password@]127.0.0.1:P"""
        auth = ":%s@" % self.password if self.password else ""
        return "redis://%s127.0.0.1:%d" % (auth, self.port)

    @property
    def unix_url(self):
        """unix:///tmp/.../redis.sock[?password=...] (with unix_socket=True)."""
        if not self.unix_path:
            raise RuntimeError("started without unix_socket=True")
        return "unix://" + self.unix_path + ("?password=" + self.password if self.password else "")

    # --- talking to it ---------------------------------------------------------------------------

    def query(self, *args, timeout=5):
        """Sends one command on a fresh connection (with AUTH when there is a password) and
        returns its reply; raises RedisError for an error reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            wire = b""
            if self.password:
                wire += encode_command("AUTH", self.password)
            s.sendall(wire + encode_command(*args))
            reader = _Reader(s)
            if self.password:
                auth = reader.reply()
                if isinstance(auth, RedisError):
                    raise auth
            reply = reader.reply()
        if isinstance(reply, RedisError):
            raise reply
        return reply

    def _launch(self):
        command = [
            os.environ.get("WSCHAT_REDIS_SERVER") or "redis-server",
            "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--dir", self.dir, "--logfile", os.path.join(self.dir, "redis.log"),
        ]
        if self.password:
            command += ["--requirepass", self.password]
        if self.unix_path:
            command += ["--unixsocket", self.unix_path, "--unixsocketperm", "700"]
        self.proc = processes.track(subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None  # exited: the port was taken, or a bad option
                return False
            if self._answers():
                return True
            time.sleep(0.02)
        self.kill()
        return False

    def _answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                reply = _Reader(s).reply()
        except (OSError, ConnectionError):
            return False
        # +PONG, or -NOAUTH with a password; a server still loading its data is not ready.
        return not (isinstance(reply, RedisError) and str(reply).startswith("LOADING"))


def _self_test():
    from checks import check, summary

    processes.deadline(60, "redis_server.py")
    with RedisServer() as redis:
        check(redis.query("PING") == b"PONG", "PING answered")
        check(redis.query("SET", "k", b"a\0b") == b"OK", "SET a binary value")
        check(redis.query("GET", "k") == b"a\0b", "GET it back")
        check(redis.query("LRANGE", "none", 0, -1) == [], "an empty array")
        check(redis.query("GET", "none") is None, "nil")
        try:
            redis.query("NO-SUCH-COMMAND")
            check(False, "an error reply raises RedisError")
        except RedisError as e:
            check(str(e).startswith("ERR"), "an error reply raises RedisError", str(e))
        port = redis.port
        redis.kill()
        try:
            redis.query("PING", timeout=1)
            check(False, "a killed server refuses connections")
        except OSError:
            check(True, "a killed server refuses connections")
        redis.restart()
        check(redis.port == port and redis.query("EXISTS", "k") == 0,
              "restart: the same port, an empty server")
        directory = redis.dir
    check(not os.path.exists(directory), "the temporary directory is removed")
    with RedisServer(password="s3cret", unix_socket=True) as redis:
        check(redis.url == "redis://:s3cret@127.0.0.1:%d" % redis.port, "the URL carries the password")
        check(redis.query("PING") == b"PONG", "AUTH with the password")
        check(os.path.exists(redis.unix_path), "the Unix socket exists")
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(redis.unix_path)
            s.sendall(encode_command("PING"))
            check(isinstance(_Reader(s).reply(), RedisError), "the Unix socket wants AUTH too")
    return summary()


if __name__ == "__main__":
    sys.exit(_self_test())
