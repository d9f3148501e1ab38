"""Medians, ratios, the issue's targets, the printed table and the gnuplot chart."""

import math
import os
import shutil
import statistics
import subprocess

from .workloads import METRICS

SERVER_LABELS = {"wschat": "wschat", "wschat-2t": "wschat 2 threads", "beast": "Beast",
                 "node": "Node ws", "ceiling": "ceiling (bare epoll)",
                 "baseline": "baseline wschat", "wschat-noroom": "wschat without a room",
                 "wschat-deflate-shared": "wschat deflate shared",
                 "wschat-deflate-conn": "wschat deflate per-connection"}
# Shorter, for the chart's bars: five long labels under a panel run into each other.
CHART_LABELS = dict(SERVER_LABELS, **{"wschat-2t": "wschat 2t", "ceiling": "bare epoll",
                                      "wschat-noroom": "no room",
                                      "wschat-deflate-shared": "defl shared",
                                      "wschat-deflate-conn": "defl conn"})
SERVER_LABELS.update({"wschat-history": "wschat history 1000", "lobby": "lobby",
                      "lobby-redis": "lobby on Redis, 1 node",
                      "cluster": "lobby on Redis, 3 nodes"})
CHART_LABELS.update({"wschat-history": "history 1000", "lobby": "lobby",
                     "lobby-redis": "Redis 1 node", "cluster": "Redis 3 nodes"})
# The lobby on Redis, compared with the lobby on one node (their figure divided by its).
CLUSTER_VARIANTS = ("lobby-redis", "cluster")
# The variants compared with plain wschat (their figure divided by its).
DEFLATE_VARIANTS = ("wschat-deflate-shared", "wschat-deflate-conn")
HISTORY_VARIANTS = ("wschat-history",)


def medians(results):
    """{server: {(workload, key): median}} over the repetitions that succeeded."""
    out = {}
    for server, per_workload in results.items():
        for workload, runs in per_workload.items():
            for key, *_ in METRICS.get(workload, []):
                # A latency the loadgen reports as null never arrived: infinitely late.
                values = [math.inf if r[key] is None else r[key]
                          for r in runs if "error" not in r and key in r]
                if values:
                    out.setdefault(server, {})[(workload, key)] = statistics.median(values)
    return out


def fmt(value, unit):
    if value is None:
        return "-"
    if value == math.inf:
        return "not delivered"
    if unit == "/s":
        if value >= 999.5e3:
            return "%.2f M" % (value / 1e6)
        return "%.0f k" % (value / 1e3) if value >= 9.95e3 else "%.1f k" % (value / 1e3)
    if unit == "%":
        return "%.1f %%" % value
    if unit == "us":
        return "%.0f us" % value
    if unit == "B":
        return "%.0f B" % value if value < 10240 else "%.1f KB" % (value / 1024)
    if unit == "ns":
        return "%.0f ns" % value
    if unit == "cores":
        return "%.2f cores" % value
    return "%.3g" % value


def _ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def targets(med, micro):
    """[(description, measured text, True/False/None)] for the issue's targets."""
    w = med.get("wschat", {})
    beast, node = med.get("beast", {}), med.get("node", {})
    out = []

    def check(text, value, ok):
        out.append((text, value, ok))

    w1 = w.get(("w1", "deliveries_per_s"))
    r = _ratio(w1, beast.get(("w1", "deliveries_per_s")))
    check("W1 >= 14x Beast", "%.2fx" % r if r else "-", r >= 14 if r else None)
    r = _ratio(w1, node.get(("w1", "deliveries_per_s")))
    check("W1 >= 18x Node ws", "%.2fx" % r if r else "-", r >= 18 if r else None)
    r = _ratio(w.get(("w1-64", "deliveries_per_s")), w1)
    check("W1 64 in flight >= 16 in flight", "%.2fx" % r if r else "-", r >= 1 if r else None)
    lost, p99 = w.get(("w2", "undelivered_pct")), w.get(("w2", "p99_us"))
    measured = "-" if lost is None else "%.2f %% lost, p99 %s" % (lost, fmt(p99, "us"))
    loopback = (micro or {}).get("loopback", {})
    if "floor_ms" in loopback:
        measured += " (floor on this machine: %.1f ms, see the loopback row)" % (
            loopback["floor_ms"])
    check("W2 all delivered, p99 < 8 ms", measured,
          None if lost is None else lost == 0 and p99 < 8000)
    for key in ("p50_us", "p99_us"):
        r = _ratio(w.get(("w3", key)), beast.get(("w3", key)))
        check("W3 %s <= 0.75x Beast" % key[:3], "%.2fx" % r if r else "-",
              r <= 0.75 if r else None)
    mem = w.get(("w4", "bytes_per_conn"))
    check("W4 <= 450 B per idle connection", fmt(mem, "B"), mem <= 450 if mem is not None else None)
    r = _ratio(w.get(("w5", "handshakes_per_s")), beast.get(("w5", "handshakes_per_s")))
    check("W5 >= Beast", "%.2fx" % r if r else "-", r >= 1 if r else None)
    r = _ratio(w.get(("w5-storm", "joins_per_s")),
               med.get("wschat-noroom", {}).get(("w5-storm", "joins_per_s")))
    check("W5 storm with presence >= 0.8x without a room", "%.2fx" % r if r else "-",
          r >= 0.8 if r else None)
    shared = med.get("wschat-deflate-shared", {})
    r = _ratio(shared.get(("w1-json", "deliveries_per_s")), w.get(("w1-json", "deliveries_per_s")))
    check("shared deflate fan-out >= 0.75x deflate off (W1 JSON)", "%.2fx" % r if r else "-",
          r >= 0.75 if r else None)
    out += history_targets(med)
    big = (micro or {}).get("64 KiB masked text, ASCII")
    if big:
        share = big["parse_vs_memcpy"]
        check("parse 64 KiB text >= 50 % of memcpy", "%.0f %%" % (100 * share), share >= 0.5)
    return out


def history_targets(med):
    """Issue 17's targets: history costs W1 at most 5 % (one run), and the lobby's figures."""
    w, hist, lobby = med.get("wschat", {}), med.get("wschat-history", {}), med.get("lobby", {})
    out = []
    for workload in ("w1", "w1-64"):
        r = _ratio(hist.get((workload, "deliveries_per_s")), w.get((workload, "deliveries_per_s")))
        out.append(("%s with history >= 0.95x without" % workload.upper(),
                    "%.3fx" % r if r else "-", r >= 0.95 if r else None))
    key = ("w1", "server_ns_per_delivery")
    r = _ratio(hist.get(key), w.get(key))
    out.append(("W1 server CPU per delivery with history <= 1.05x without",
                "%.3fx" % r if r else "-", r <= 1.05 if r else None))
    rate = lobby.get(("rooms", "deliveries_per_s"))
    if rate is not None:
        out.append(("lobby 100 rooms x 10 reports deliveries/s and memory per room",
                    "%s, %s per room joined, %s after the run" % (
                        fmt(rate, "/s"), fmt(lobby.get(("rooms", "bytes_per_room_joined")), "B"),
                        fmt(lobby.get(("rooms", "bytes_per_room_after")), "B")), None))
    return out


def table(results, micro, servers):
    """The Markdown table of medians with wschat's ratios to Beast, Node ws and the baseline,
    and the deflate variants' ratios to plain wschat."""
    med = medians(results)
    cols = [s for s in servers if s in results]
    head = ["workload"] + [SERVER_LABELS[s] for s in cols]
    ratio_peers = [p for p in ("beast", "node", "baseline", "wschat-noroom")
                   if p in cols and "wschat" in cols]
    head += ["wschat / %s" % SERVER_LABELS[p] for p in ratio_peers]
    variants = [v for v in DEFLATE_VARIANTS + HISTORY_VARIANTS if v in cols and "wschat" in cols]
    head += ["%s / wschat" % SERVER_LABELS[v] for v in variants]
    scaled = [v for v in CLUSTER_VARIANTS if v in cols and "lobby" in cols]
    head += ["%s / lobby" % SERVER_LABELS[v] for v in scaled]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for workload, metrics in METRICS.items():
        for key, label, unit, _ in metrics:
            if not any((workload, key) in med.get(s, {}) for s in cols):
                continue
            row = [label] + [fmt(med.get(s, {}).get((workload, key)), unit) for s in cols]
            plain = med.get("wschat", {}).get((workload, key))
            for peer in ratio_peers:
                r = _ratio(plain, med.get(peer, {}).get((workload, key)))
                row.append("%.2fx" % r if r else "-")
            for variant in variants:
                r = _ratio(med.get(variant, {}).get((workload, key)), plain)
                row.append("%.2fx" % r if r else "-")
            one_node = med.get("lobby", {}).get((workload, key))
            for variant in scaled:
                r = _ratio(med.get(variant, {}).get((workload, key)), one_node)
                row.append("%.2fx" % r if r else "-")
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines), med


def targets_text(med, micro):
    rows = targets(med, micro)
    lines = ["| target | measured | |", "|---|---|---|"]
    for text, value, ok in rows:
        lines.append("| %s | %s | %s |" % (text, value,
                                           {True: "met", False: "NOT met", None: "n/a"}[ok]))
    return "\n".join(lines)


def chart(med, servers, out_dir):
    """Draws chart.png (one panel per figure, one bar per server) with gnuplot; returns its
    path, or None when gnuplot is missing."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return None
    cols = [s for s in servers if s in med]
    panels = [(w, key, label, unit) for w, metrics in METRICS.items()
              for key, label, unit, _ in metrics
              if any((w, key) in med[s] for s in cols)]
    if not panels:
        return None
    script = ["set terminal pngcairo size 1500,%d font 'sans,9'" % (330 * ((len(panels) + 2) // 3)),
              "set output '%s'" % os.path.join(out_dir, "chart.png"),
              "set multiplot layout %d,3 title 'wschat benchmark (medians)'" %
              ((len(panels) + 2) // 3),
              "set style data histograms", "set style fill solid 0.8 border -1",
              "set boxwidth 0.7", "set yrange [0:*]", "unset key", "set grid ytics",
              "set xtics nomirror", "set format y '%.1s%c'"]
    for i, (w, key, label, unit) in enumerate(panels):
        data = os.path.join(out_dir, "chart_%d.dat" % i)
        with open(data, "w") as f:
            # Servers that did not run the workload (the deflate variants outside W1 JSON)
            # get no empty slot.
            for s in (s for s in cols if any(k[0] == w for k in med[s])):
                value = med[s].get((w, key))
                drawable = value is not None and value != math.inf
                f.write('"%s" %s\n' % (CHART_LABELS[s], value if drawable else "NaN"))
        better = "higher" if METRICS[w][[m[0] for m in METRICS[w]].index(key)][3] else "lower"
        script.append("set title '%s (%s, %s is better)'" % (label.replace("'", ""), unit, better))
        script.append("plot '%s' using 2:xtic(1) linecolor rgb '#3b75af'" % data)
    script.append("unset multiplot")
    path = os.path.join(out_dir, "chart.gp")
    with open(path, "w") as f:
        f.write("\n".join(script) + "\n")
    subprocess.run([gnuplot, path], check=True, capture_output=True)
    return os.path.join(out_dir, "chart.png")


def micro_text(micro):
    """The micro-benchmarks' figures as a Markdown table (empty without them)."""
    if not micro:
        return ""
    lines = ["| micro-benchmark (one core; loopback: two) | figure |", "|---|---|"]
    for name, fig in micro.items():
        if not isinstance(fig, dict):
            continue
        if "parse_gbps" in fig:
            lines.append("| %s | %.2f GB/s = %.0f %% of memcpy (%.2f GB/s) |" % (
                name, fig["parse_gbps"], 100 * fig["parse_vs_memcpy"], fig["memcpy_gbps"]))
        elif "requests_per_s" in fig:
            lines.append("| %s | %s requests/s |" % (name, fmt(fig["requests_per_s"], "/s")))
        elif "us_per_send" in fig:
            lines.append("| loopback send of a %d B frame, %d connections (the kernel's cost, "
                         "paid by every server) | %.2f us per send; one write to %d members: "
                         "%.1f ms |" % (fig["frame_bytes"], fig["connections"],
                                        fig["us_per_send"], fig["floor_members"],
                                        fig["floor_ms"]))
    return "\n".join(lines)
