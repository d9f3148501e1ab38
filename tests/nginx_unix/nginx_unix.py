#!/usr/bin/env python3
"""The chat through nginx to a Unix domain socket: minimal_chat --unix PATH behind an
unprivileged nginx (every path in a temporary directory, 127.0.0.1 and a free port).

    /usr/bin/python3 tests/nginx_unix/nginx_unix.py --minimal-chat PATH [--nginx /usr/sbin/nginx]

Checks the page over HTTP through nginx, two Python `websockets` clients chatting through it,
and that the socket file is gone once minimal_chat has stopped. Exit status 1 on any failure.
"""

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))
import processes  # noqa: E402
from checks import check, summary  # noqa: E402

try:
    import websockets
except ImportError:
    sys.exit("nginx_unix.py: needs python3-websockets: run it with /usr/bin/python3")

TIMEOUT = 10

CONF = """
{user}
worker_processes 1;
pid {dir}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream chat {{ server unix:{sock}; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://chat;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 120s;
        }}
    }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, what):
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"nginx_unix.py: {what} did not happen within {TIMEOUT} s")
        time.sleep(0.05)


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), TIMEOUT)


async def chat(url):
    kw = dict(open_timeout=TIMEOUT, close_timeout=TIMEOUT)
    async with websockets.connect(url, **kw) as alice:
        check(await recv(alice) == "Welcome to the chat room!", "alice is welcomed through nginx")
        check(await recv(alice) == "Online users: 1", "alice sees 1 online")
        async with websockets.connect(url, **kw) as bob:
            await recv(bob)
            check(await recv(bob) == "Online users: 2", "bob sees 2 online")
            check(await recv(alice) == "Online users: 2", "alice sees bob arrive")
            await bob.send("hello via nginx and a Unix socket")
            check(await recv(alice) == "hello via nginx and a Unix socket", "alice gets bob's line")
            check(await recv(bob) == "hello via nginx and a Unix socket", "bob gets his own line")
        check(await recv(alice) == "Online users: 1", "alice sees bob leave")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minimal-chat", required=True)
    parser.add_argument("--nginx", default="/usr/sbin/nginx")
    args = parser.parse_args()
    processes.deadline(100, "nginx_unix.py")
    with tempfile.TemporaryDirectory() as d:
        sock = os.path.join(d, "chat.sock")
        port = free_port()
        chat_proc = processes.track(subprocess.Popen([args.minimal_chat, "--unix", sock],
                                                     stdout=subprocess.PIPE, text=True))
        nginx = None
        try:
            line = processes.LineReader(chat_proc.stdout).next(TIMEOUT)
            check(line == f"listening on unix:{sock}", "minimal_chat announces its socket", line)
            with open(os.path.join(d, "nginx.conf"), "w") as f:
                # Started as root, nginx would run its workers as `nobody`, which may not
                # connect to a socket file in root's private temporary directory.
                user = "user root;" if os.geteuid() == 0 else ""
                f.write(CONF.format(user=user, dir=d, sock=sock, port=port))
            nginx = processes.track(subprocess.Popen(
                [args.nginx, "-p", d, "-e", os.path.join(d, "error.log"),
                 "-c", os.path.join(d, "nginx.conf"), "-g", "daemon off;"]))
            wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, "nginx start")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=TIMEOUT) as page:
                check(page.status == 200 and b"<!DOCTYPE html>" in page.read(),
                      "the chat page through nginx")
            asyncio.run(chat(f"ws://127.0.0.1:{port}/"))
        except Exception:
            if os.path.exists(os.path.join(d, "error.log")):
                print(open(os.path.join(d, "error.log")).read()[-2000:])
            raise
        finally:
            if nginx:
                processes.stop(nginx, signal.SIGQUIT)
            status = processes.stop(chat_proc)
        check(status == 0, "minimal_chat exits 0 after SIGTERM", f"status {status}")
        check(not os.path.exists(sock), "the socket file is removed on stop")
    return summary()


if __name__ == "__main__":
    sys.exit(main())
