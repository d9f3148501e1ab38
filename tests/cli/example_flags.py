#!/usr/bin/env python3
"""The examples' command lines as a user meets them, on the real binaries.

    python3 tests/cli/example_flags.py --minimal-chat PATH --echo-server PATH
        [--chat-server PATH] [--game-server PATH --game-bot PATH]
        [--iot-gateway PATH --iot-devices PATH] [--ws-cat PATH] [--tls yes|no|untested]
        [--deflate yes|no] [--redis yes|no]

--tls / --deflate / --redis say whether the build linked OpenSSL / zlib / hiredis into the
examples (then --tls-cert / --deflate shared / chat_server --redis must serve; otherwise they
must be refused with a reason);
--tls untested: it did, but there is no openssl here to make a certificate with.

For every example:
- `--help` and `-h` print the complete usage to stdout (every common flag and the example's
  own), nothing to stderr, and exit 0, also after other flags;
- an unknown flag, a missing value or a bad one: the problem and the usage on stderr, exit 2,
  nothing served;
- every flag documented (the example's header comment, its --help, README.md) is accepted:
  the example starts with it, prints its `listening on` line and exits 0 on SIGTERM.
The programs that connect instead of serving (game_bot, iot_devices) take only their own
flags: the same --help and refusals, and each documented flag is accepted: game_bot plays a
short match on game_server with it and exits 0; iot_devices starts with it and exits 0 on
SIGTERM.
For chat_server: a --static-dir that is missing, a file, or a folder without index.html is
refused at startup (a message naming it, exit 2); a folder with an index.html is served.

Python 3 standard library only. One PASS/FAIL line per check; exit status 1 on any failure.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
import processes  # noqa: E402
from checks import check, summary  # noqa: E402

TIMEOUT = 10
FLAG_RE = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
# Flags README.md shows for other programs (cmake, ctest, curl, bench/run.py).
NOT_EXAMPLE_FLAGS = {"--build", "--cacert", "--install", "--preset", "--reps", "--servers",
                     "--target", "--workflow", "--workloads"}
COMMON = ["--address", "--port", "--tls-cert", "--tls-key", "--unix", "--heartbeat-ms",
          "--max-message-size", "--max-connections", "--max-connections-per-address",
          "--max-messages-per-second", "--threads", "--deflate"]
OWN = {"minimal_chat": ["--history", "--presence-ms", "--room"], "echo_server": [],
       "chat_server": ["--static-dir", "--trusted-proxy", "--presence-ms", "--redis",
                       "--presence-ttl-ms"],
       "game_server": ["--tick-hz", "--max-players", "--max-matches"],
       "iot_gateway": ["--max-devices", "--max-subscriptions"],
       "game_bot": ["--url", "--bots", "--seconds"],
       "iot_devices": ["--url", "--devices", "--prefix", "--interval-ms", "--readings"]}
# Programs that connect instead of serving: no common flags.
CLIENTS = {"game_bot", "iot_devices"}


def short(text, limit=400):
    text = text.strip()
    return repr(text if len(text) <= limit else text[:limit] + "...")


def run(path, argv):
    """Runs the example to its end (it must not serve): (status, stdout, stderr)."""
    proc = processes.track(subprocess.Popen([path] + argv, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True))
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return None, out, err
    return proc.returncode, out, err


def serve(path, argv, ready, fetch=None):
    """Starts the example, waits for a `listening on` line matching `ready`, optionally GETs
    `fetch` from it, then stops it with SIGTERM. Returns a problem, or None when all went well."""
    proc = processes.track(subprocess.Popen([path] + argv, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True))
    lines = processes.LineReader(proc.stdout)
    try:
        line = lines.next(TIMEOUT)
        m = ready.match(line or "")
        if not m:
            processes.stop(proc)
            return f"first stdout line {line!r}; stderr {short(proc.stderr.read())}"
        if fetch:
            url = f"http://127.0.0.1:{m.group(1)}{fetch[0]}"
            with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
                body = response.read().decode()
            if body != fetch[1]:
                processes.stop(proc)
                return f"GET {url} answered {short(body)}"
        status = processes.stop(proc)
        if status != 0:
            return f"exit status {status} after SIGTERM; stderr {short(proc.stderr.read())}"
        return None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def documented_in_header(name):
    """The flags named in the example's leading comment block."""
    flags = set()
    with open(os.path.join(ROOT, "examples", name, "main.cpp"), encoding="utf-8") as f:
        for line in f:
            if not line.startswith("//"):
                break
            flags.update(FLAG_RE.findall(line))
    return flags


def documented_in_readme():
    """The flags README.md shows that take a value (--help is checked on its own)."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return set(FLAG_RE.findall(f.read())) - NOT_EXAMPLE_FLAGS - {"--help"}


def help_flags(text):
    """The flags a usage text lists, one per line."""
    return {m.group(1) for m in re.finditer(r"^\s+(--[a-z][a-z0-9-]*)", text, re.M)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minimal-chat", required=True)
    ap.add_argument("--echo-server", required=True)
    ap.add_argument("--chat-server")
    ap.add_argument("--game-server")
    ap.add_argument("--game-bot")
    ap.add_argument("--iot-gateway")
    ap.add_argument("--iot-devices")
    ap.add_argument("--ws-cat")
    ap.add_argument("--tls", choices=["yes", "no", "untested"], default="no")
    ap.add_argument("--deflate", choices=["yes", "no"], default="no")
    ap.add_argument("--redis", choices=["yes", "no"], default="no")
    args = ap.parse_args()
    processes.deadline(150, "example_flags.py")

    examples = {"minimal_chat": args.minimal_chat, "echo_server": args.echo_server}
    for name in ("chat_server", "game_server", "iot_gateway"):
        if getattr(args, name):
            examples[name] = getattr(args, name)
    clients = {name: getattr(args, name) for name in sorted(CLIENTS) if getattr(args, name)}
    tmp = tempfile.mkdtemp(prefix="wschat-flags-")
    try:
        cert = key = None
        if args.tls == "yes":
            subprocess.run(["bash", os.path.join(ROOT, "tools", "dev-cert.sh"), tmp, "1"],
                           check=True, capture_output=True, timeout=60)
            cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        listed = {}
        for name, path in examples.items():
            listed[name] = check_help(name, path)
            check_bad_flags(name, path)
            check_flags_serve(name, path, listed[name], tmp, args.tls, cert, key,
                              args.deflate == "yes", args.redis == "yes")
        for name, path in clients.items():
            listed[name] = check_help(name, path)
            check_bad_flags(name, path)
        if "game_bot" in clients and args.game_server:
            check_game_bot_flags(clients["game_bot"], args.game_server, listed["game_bot"])
        if "iot_devices" in clients:
            check_iot_devices_flags(clients["iot_devices"], listed["iot_devices"])
        if args.ws_cat:
            # ws_cat has a usage line of its own (its tests are the client's).
            status, out, err = run(args.ws_cat, ["--help"])
            check(status == 0 and out.startswith("usage:") and not err,
                  "ws_cat --help: the usage on stdout, exit 0", f"status {status}, {short(err)}")
            listed["ws_cat"] = set(FLAG_RE.findall(out)) - {"--help"}
        if args.chat_server:
            check_static_dir(args.chat_server, tmp)
        every = set().union(*listed.values())
        documented = ("chat_server", "game_server", "game_bot", "iot_gateway", "iot_devices",
                      "ws_cat")
        if all(getattr(args, name) for name in documented):
            missing = sorted(documented_in_readme() - every)
            check(not missing, "every flag README.md shows for the examples is in an example's "
                  "--help (and so started above)", f"not taken by any example: {missing}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


def check_help(name, path):
    """--help and -h; returns the flags the usage lists."""
    status, out, err = run(path, ["--help"])
    expected = (set() if name in CLIENTS else set(COMMON)) | set(OWN[name]) | \
        documented_in_header(name)
    listed = help_flags(out)
    check(status == 0 and "usage:" in out and not err,
          f"{name} --help: the usage on stdout, nothing on stderr, exit 0",
          f"status {status}, stdout {short(out)}, stderr {short(err)}")
    check(expected <= listed, f"{name} --help lists every common flag, its own and those its "
          "header comment documents", f"missing {sorted(expected - listed)}; usage {short(out)}")
    status_h, out_h, err_h = run(path, ["-h"])
    check(status_h == 0 and out_h == out and not err_h, f"{name} -h: the same as --help",
          f"status {status_h}, stdout {short(out_h)}, stderr {short(err_h)}")
    before = ["--url", "ws://127.0.0.1:9/"] if name in CLIENTS else ["--port", "0"]
    status_l, out_l, _ = run(path, before + ["--help"])
    check(status_l == 0 and out_l == out, f"{name} {' '.join(before)} --help: the usage too, exit 0",
          f"status {status_l}, stdout {short(out_l)}")
    return listed


def check_bad_flags(name, path):
    if name in CLIENTS:
        cases = [(["--no-such-flag", "1"], "unknown flag"), (["--url"], "needs a value"),
                 (["--port", "8080"], "unknown flag")]
        cases += {"game_bot": [(["--bots", "0"], "--bots"), (["--seconds", "soon"], "--seconds")],
                  "iot_devices": [(["--devices", "0"], "--devices"),
                                  (["--interval-ms", "0"], "--interval-ms"),
                                  (["--prefix", "a b"], "--prefix"),
                                  (["--readings", "-1"], "--readings")]}[name]
        for argv, says in cases:
            status, out, err = run(path, argv)
            first = err.splitlines()[0] if err else ""
            check(status == 2 and not out and says in first and "usage:" in err,
                  f"{name} {' '.join(argv)}: refused on stderr ('{says}', then the usage), exit 2",
                  f"status {status}, stdout {short(out)}, stderr {short(err)}")
        return
    cases = [
        (["--no-such-flag", "1"], "unknown flag"),
        (["--port"], "needs a value"),
        (["--port", "http"], "--port"),
        (["--port", "65536"], "--port"),
        (["--port", "-1"], "--port"),
        (["--heartbeat-ms", "10s"], "--heartbeat-ms"),
        (["--max-message-size", "1e6"], "--max-message-size"),
        (["--max-messages-per-second", "fast"], "--max-messages-per-second"),
        (["--threads", "0"], "--threads"),
        (["--deflate", "max"], "--deflate"),
        (["--tls-cert", "cert.pem"], "--tls-key"),
    ]
    if name == "minimal_chat":
        cases += [(["--history", "many"], "--history"), (["--history", "100001"], "--history"),
                  (["--room", "maybe"], "--room"), (["--presence-ms", "soon"], "--presence-ms")]
    if name == "chat_server":
        cases += [(["--presence-ms", "soon"], "--presence-ms"),
                  (["--trusted-proxy"], "needs a value"),
                  (["--redis", "http://127.0.0.1:6379"], "--redis"),
                  (["--presence-ttl-ms", "10"], "--presence-ttl-ms")]
    if name == "game_server":
        cases += [(["--tick-hz", "19"], "--tick-hz"), (["--tick-hz", "61"], "--tick-hz"),
                  (["--max-players", "0"], "--max-players"), (["--max-matches", "0"], "--max-matches")]
    if name == "iot_gateway":
        cases += [(["--max-devices", "0"], "--max-devices"),
                  (["--max-subscriptions", "many"], "--max-subscriptions")]
    for argv, says in cases:
        # On a free port, should a regression serve instead of refusing.
        status, out, err = run(path, ["--address", "127.0.0.1", "--port", "0"] + argv)
        first = err.splitlines()[0] if err else ""
        check(status == 2 and not out and says in first and "usage:" in err,
              f"{name} {' '.join(argv)}: refused on stderr ('{says}', then the usage), exit 2",
              f"status {status}, stdout {short(out)}, stderr {short(err)}")


def check_flags_serve(name, path, listed, tmp, tls, cert, key, deflate, redis):
    """Starts the example once per flag its usage lists, with a sensible value."""
    ws_ready = re.compile(r"^listening on ws://127\.0\.0\.1:(\d+)/$")
    socket_path = os.path.join(tmp, f"{name}.sock")
    samples = {
        "--address": [["--address", "127.0.0.1"]],
        "--port": [["--port", "0"]],
        "--heartbeat-ms": [["--heartbeat-ms", "1000"], ["--heartbeat-ms", "0"]],
        "--max-message-size": [["--max-message-size", "65536"]],
        "--max-connections": [["--max-connections", "100"]],
        "--max-connections-per-address": [["--max-connections-per-address", "10"]],
        "--max-messages-per-second": [["--max-messages-per-second", "2.5"],
                                      ["--max-messages-per-second", "0"]],
        "--threads": [["--threads", "2"]],
        "--deflate": [["--deflate", "off"]] +
                     ([["--deflate", "shared"], ["--deflate", "per-connection"]] if deflate else []),
        "--static-dir": [["--static-dir", os.path.join(ROOT, "examples", "chat_server", "web")]],
        "--trusted-proxy": [["--trusted-proxy", "127.0.0.1", "--trusted-proxy", "::1"]],
        "--presence-ms": [["--presence-ms", "200"]],
        # Nothing listens there: the server starts anyway, its bus retrying in the background.
        "--redis": [["--redis", "redis://127.0.0.1:1"]],
        "--presence-ttl-ms": [["--presence-ttl-ms", "3000"]],
        "--history": [["--history", "50"], ["--history", "0"]],
        "--room": [["--room", "off"], ["--room", "on"]],
        "--tick-hz": [["--tick-hz", "20"], ["--tick-hz", "60"]],
        "--max-players": [["--max-players", "4"]],
        "--max-matches": [["--max-matches", "2"]],
        "--max-devices": [["--max-devices", "10"]],
        "--max-subscriptions": [["--max-subscriptions", "5"]],
    }
    for flag in sorted(listed):
        if flag == "--tls-key":
            continue  # goes with --tls-cert
        if flag == "--tls-cert":
            if tls == "untested":
                print(f"SKIP {name} --tls-cert/--tls-key: no openssl to make a certificate with")
                continue
            if tls == "no":
                status, out, err = run(path, ["--tls-cert", "c.pem", "--tls-key", "k.pem"])
                check(status == 2 and "no TLS support" in err,
                      f"{name} --tls-cert/--tls-key in a build without TLS: refused, exit 2",
                      f"status {status}, stderr {short(err)}")
                continue
            problem = serve(path, ["--address", "127.0.0.1", "--port", "0", "--tls-cert", cert,
                                   "--tls-key", key],
                            re.compile(r"^listening on wss://127\.0\.0\.1:(\d+)/$"))
            check(problem is None, f"{name} --tls-cert FILE --tls-key FILE: serves wss://",
                  problem)
            continue
        if flag == "--redis" and not redis:
            status, _, err = run(path, ["--redis", "redis://127.0.0.1:1"])
            check(status == 2 and "no Redis bus" in err,
                  f"{name} --redis in a build without hiredis: refused, exit 2",
                  f"status {status}, stderr {short(err)}")
            continue
        if flag == "--unix":
            problem = serve(path, ["--unix", socket_path],
                            re.compile(r"^listening on unix:" + re.escape(socket_path) + "$"))
            check(problem is None, f"{name} --unix PATH: listens on the socket", problem)
            continue
        if flag not in samples:
            check(False, f"{name} {flag}: a sample value in this test",
                  "its --help lists a flag this test does not know: add a sample")
            continue
        for argv in samples[flag]:
            problem = serve(path, ["--address", "127.0.0.1", "--port", "0"] + argv, ws_ready)
            check(problem is None, f"{name} {' '.join(argv)}: starts and stops cleanly", problem)
    if not deflate:
        status, _, err = run(path, ["--deflate", "shared"])
        check(status == 2 and "no permessage-deflate" in err,
              f"{name} --deflate shared in a build without zlib: refused, exit 2",
              f"status {status}, stderr {short(err)}")


def check_game_bot_flags(path, game_server, listed):
    """game_bot with every flag it lists plays a short match on a real game_server."""
    server = processes.track(subprocess.Popen(
        [game_server, "--address", "127.0.0.1", "--port", "0", "--tick-hz", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        m = re.match(r"^listening on ws://127\.0\.0\.1:(\d+)/$",
                     processes.LineReader(server.stdout).next(TIMEOUT) or "")
        if not check(m is not None, "game_server starts for game_bot", "no listening line"):
            return
        argv = ["--url", f"ws://127.0.0.1:{m.group(1)}/match/flags", "--bots", "2", "--seconds", "1"]
        check(set(argv[::2]) == listed, "game_bot: the flags tried are those --help lists",
              f"listed {sorted(listed)}")
        status, out, err = run(path, argv)
        check(status == 0 and "all bots ok" in out and "latency" in out,
              f"game_bot {' '.join(argv)}: plays, reports latency, exits 0",
              f"status {status}, stdout {short(out)}, stderr {short(err)}")
    finally:
        processes.stop(server)


def check_iot_devices_flags(path, listed):
    """iot_devices with every flag it lists starts, and stops on SIGTERM with status 0 (no
    gateway there: the devices keep trying until then)."""
    argv = ["--url", "ws://127.0.0.1:9/", "--devices", "3", "--prefix", "flags",
            "--interval-ms", "100", "--readings", "5"]
    check(set(argv[::2]) == listed, "iot_devices: the flags tried are those --help lists",
          f"listed {sorted(listed)}")
    proc = processes.track(subprocess.Popen([path] + argv, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True))
    try:
        proc.wait(0.5)
    except subprocess.TimeoutExpired:
        pass
    status = processes.stop(proc)
    out = proc.stdout.read()
    check(status == 0 and "device flags-0003" in out,
          f"iot_devices {' '.join(argv)}: runs, a line per device on SIGTERM, exit 0",
          f"status {status}, stdout {short(out)}, stderr {short(proc.stderr.read())}")


def check_static_dir(path, tmp):
    empty = os.path.join(tmp, "empty")
    os.mkdir(empty)
    a_file = os.path.join(tmp, "a-file")
    with open(a_file, "w", encoding="utf-8") as f:
        f.write("not a folder\n")
    missing = os.path.join(tmp, "nonexistent")
    for where, says in ((missing, "no such directory"), (a_file, "not a directory"),
                        (empty, "no index.html")):
        status, out, err = run(path, ["--address", "127.0.0.1", "--port", "0",
                                      "--static-dir", where])
        check(status == 2 and not out and where in err and says in err,
              f"chat_server --static-dir {os.path.basename(where)}: refused at startup "
              f"('{says}'), exit 2", f"status {status}, stdout {short(out)}, stderr {short(err)}")
    page = os.path.join(tmp, "page")
    os.mkdir(page)
    with open(os.path.join(page, "index.html"), "w", encoding="utf-8") as f:
        f.write("<!DOCTYPE html><title>another page</title>\n")
    problem = serve(path, ["--address", "127.0.0.1", "--port", "0", "--static-dir", page],
                    re.compile(r"^listening on ws://127\.0\.0\.1:(\d+)/$"),
                    fetch=("/", "<!DOCTYPE html><title>another page</title>\n"))
    check(problem is None, "chat_server --static-dir DIR with an index.html: serves it at /",
          problem)


if __name__ == "__main__":
    sys.exit(main())
