"""nginx for the script tests: one of examples/nginx's configs with the test's ports swapped
in, run as an unprivileged process with everything under a temp prefix, and stopped
gracefully by the test."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import processes


class Nginx:
    def __init__(self, binary, template, swaps, listen_port, timeout=10):
        """Starts `binary` on `template` with each (old, new) of `swaps` replaced (each must be
        there: a config that changed under the test is an error, not a silent no-op), and
        returns once it accepts connections on 127.0.0.1:`listen_port`."""
        self.dir = tempfile.mkdtemp(prefix="wschat-nginx-")
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(self.dir, "tmp", sub))
        with open(template, encoding="utf-8") as f:
            conf = f.read()
        for old, new in swaps:
            if old not in conf:
                raise RuntimeError(f"{template} no longer contains {old!r}")
            conf = conf.replace(old, new)
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write(conf)
        self.proc = processes.track(subprocess.Popen(
            [binary, "-p", self.dir, "-e", os.path.join(self.dir, "error.log"), "-c", self.conf,
             "-g", "daemon off;"]))
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", listen_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    log = self.error_log()
                    self.stop()
                    raise RuntimeError("nginx did not start: " + log)
                time.sleep(0.05)

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log"), encoding="utf-8") as f:
                return f.read()[-2000:]
        except OSError:
            return "(no error.log)"

    def stop(self):
        processes.stop(self.proc, signal.SIGQUIT)  # graceful
        shutil.rmtree(self.dir, ignore_errors=True)
