#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turn pbring-bench JSON into PNG charts and a Markdown results table.

    python3 bench/plot.py RESULTS.json [--out DIR] [--markdown FILE]
                          [--summary FILE] [--no-charts]

Charts (in DIR, default: next to the JSON):
  latency_percentiles_<size>.png  latency against percentile, one curve per
                                  transport and mode (round trip / 2, one-way)
  latency_vs_size.png             p50 and p99.9 against message size
  fixed_rate.png                  fixed-rate (coordinated-omission-free)
                                  percentile curves
  throughput_vs_size.png          messages/s and bytes/s against size, per
                                  topology (1->1, 2->1, 1->3)

The Markdown tables (--markdown: every result; --summary: the condensed
ones of bench/README.md) name the machine and give every ratio against the
floor and the UNIX socket of the same run. The tables need nothing beyond
the standard library; the charts need matplotlib (pip install matplotlib).
"""
import argparse
import json
import math
import os
import sys

PCTS = [("p50_ns", 50), ("p90_ns", 90), ("p99_ns", 99), ("p999_ns", 99.9),
        ("p9999_ns", 99.99)]


def load(path):
    with open(path) as f:
        return json.load(f)


def ok(r):
    return "error" not in r and "skipped" not in r


def size_name(b):
    if b >= 1 << 20 and b % (1 << 20) == 0:
        return "%dMiB" % (b >> 20)
    if b >= 1024 and b % 1024 == 0:
        return "%dKiB" % (b >> 10)
    return "%dB" % b


def ns(v):
    if v is None:
        return "-"
    if v < 10000:
        return "%d ns" % v
    if v < 10000000:
        return "%.1f us" % (v / 1e3)
    return "%.1f ms" % (v / 1e6)


def label(r):
    return "%s/%s" % (r["transport"], r["mode"])


# One colour per transport, solid for spin and dashed for block, so that
# a curve is recognisable in every chart.
COLOURS = {"floor": "black", "pbring-raw": "tab:red", "pbring": "tab:orange",
           "pbring-inplace": "gold", "pbring-nocrc": "darkgoldenrod",
           "pbring-raw-go": "lightcoral", "pbring-go": "sandybrown",
           "iceoryx": "tab:purple", "iceoryx2": "magenta",
           "futex": "tab:gray", "pipe": "tab:green",
           "unix": "tab:blue", "unix-seqpacket": "tab:cyan",
           "mqueue": "tab:olive", "memcpy": "tab:brown"}


def style(name):
    transport, _, mode = name.partition("/")
    return {"color": COLOURS.get(transport, None),
            "linestyle": "--" if mode == "block" else "-"}


def find(res, transport, mode, method, size, np=1, nr=1):
    for r in res:
        if (r["transport"] == transport and r["mode"] == mode and
                r["method"] == method and r["msg_bytes"] == size and
                r.get("producers", 1) == np and r.get("readers", 1) == nr
                and ok(r)):
            return r
    return None


# --- Markdown ------------------------------------------------------------

def ratio(a, b):
    if a is None or b is None or not b:
        return "-"
    return "%.2f" % (a / b)


def machine_md(m):
    return ("Machine: **%s**, %s CPUs online (cores used: %s; hypervisor: "
            "%s), Linux %s, %s, build %s; CLOCK_MONOTONIC read %.1f ns; "
            "load average %s at start, %s at end; %s; run took %.0f s "
            "(`%s`).\n" % (
                m.get("cpu_model"), m.get("cpus_online"),
                ",".join(str(c) for c in m.get("cores_used", [])),
                "yes" if m.get("hypervisor") else "no", m.get("kernel"),
                m.get("compiler"), m.get("build_type"),
                m.get("clock_gettime_ns", 0),
                "/".join("%.2f" % x for x in m.get("loadavg_start", [])),
                "/".join("%.2f" % x for x in m.get("loadavg_end", [])),
                m.get("date"), m.get("duration_s", 0), m.get("command")))


def latency_md(res, method):
    out = []
    sizes = sorted({r["msg_bytes"] for r in res
                    if r["method"] == method and ok(r)})
    out.append("| size | transport | mode | samples | p50 | p90 | p99 | "
               "p99.9 | p99.99 | max | p50 / floor | p99.9 / floor | "
               "p50 / unix |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in sizes:
        floor = find(res, "floor", "spin", method, s)
        unix = find(res, "unix", "block", method, s)
        for r in res:
            if r["method"] != method or r["msg_bytes"] != s or not ok(r):
                continue
            out.append("| %s | %s | %s | %d | %s | %s | %s | %s | %s | %s "
                       "| %s | %s | %s |" % (
                           size_name(s), r["transport"], r["mode"],
                           r["samples"], ns(r["p50_ns"]), ns(r["p90_ns"]),
                           ns(r["p99_ns"]), ns(r["p999_ns"]),
                           ns(r["p9999_ns"]), ns(r["max_ns"]),
                           ratio(r["p50_ns"], floor and floor["p50_ns"]),
                           ratio(r["p999_ns"], floor and floor["p999_ns"]),
                           ratio(r["p50_ns"], unix and unix["p50_ns"])))
    return "\n".join(out)


def fixed_rate_md(res):
    out = ["| transport | mode | rate | samples | p50 | p90 | p99 | p99.9 "
           "| p99.99 | max | p50 / futex |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    futex = None
    for r in res:
        if r["method"] == "fixed-rate" and r["transport"] == "futex" and ok(r):
            futex = r
    for r in res:
        if r["method"] != "fixed-rate" or not ok(r):
            continue
        base = futex if futex and r["mode"] == "block" else None
        out.append("| %s | %s | %d Hz | %d | %s | %s | %s | %s | %s | %s | "
                   "%s |" % (r["transport"], r["mode"], r["rate_hz"] or 0,
                             r["samples"], ns(r["p50_ns"]), ns(r["p90_ns"]),
                             ns(r["p99_ns"]), ns(r["p999_ns"]),
                             ns(r["p9999_ns"]), ns(r["max_ns"]),
                             ratio(r["p50_ns"], base and base["p50_ns"])))
    return "\n".join(out)


def throughput_md(res):
    out = ["| size | topology | transport | mode | msgs/s | bytes/s | "
           "/ memcpy bytes/s | / unix msgs/s |",
           "|---|---|---|---|---|---|---|---|"]
    for r in res:
        if r["kind"] != "throughput" or not ok(r):
            continue
        mc = find(res, "memcpy", "spin", "stream", r["msg_bytes"])
        ux = find(res, "unix", "block", "stream", r["msg_bytes"],
                  r["producers"], r["readers"])
        out.append("| %s | %d->%d | %s | %s | %.3g M | %.3g GB/s | %s | "
                   "%s |" % (size_name(r["msg_bytes"]), r["producers"],
                             r["readers"], r["transport"], r["mode"],
                             r["msgs_per_s"] / 1e6, r["bytes_per_s"] / 1e9,
                             ratio(r["bytes_per_s"],
                                   mc and mc["bytes_per_s"]),
                             ratio(r["msgs_per_s"], ux and ux["msgs_per_s"])))
    return "\n".join(out)


TARGETS = [
    # what, (transport, mode, method), (base transport, mode), stat, limit
    ("raw 64 B spin p50 <= 1.3x floor (rtt/2)",
     ("pbring-raw", "spin", "rtt/2"), ("floor", "spin"), "p50_ns", 1.3),
    ("raw 64 B spin p50 <= 1.3x floor (one-way)",
     ("pbring-raw", "spin", "one-way"), ("floor", "spin"), "p50_ns", 1.3),
    ("DeviceEvent 64 B spin p50 <= 2x floor (rtt/2)",
     ("pbring", "spin", "rtt/2"), ("floor", "spin"), "p50_ns", 2.0),
    ("DeviceEvent 64 B spin p50 <= 2x floor (one-way)",
     ("pbring", "spin", "one-way"), ("floor", "spin"), "p50_ns", 2.0),
    ("raw 64 B spin p99.9 <= 4x floor p99.9 (rtt/2)",
     ("pbring-raw", "spin", "rtt/2"), ("floor", "spin"), "p999_ns", 4.0),
    ("raw 64 B spin p99.9 <= 4x floor p99.9 (one-way)",
     ("pbring-raw", "spin", "one-way"), ("floor", "spin"), "p999_ns", 4.0),
    ("raw 64 B spin p50 >= 50x lower than unix (rtt/2)",
     ("pbring-raw", "spin", "rtt/2"), ("unix", "block"), "p50_ns", 0.02),
    ("raw 64 B spin p50 >= 2x lower than iceoryx spin (rtt/2)",
     ("pbring-raw", "spin", "rtt/2"), ("iceoryx", "spin"), "p50_ns", 0.5),
    ("raw 64 B block p50 <= 1.2x futex (one-way ping-pong)",
     ("pbring-raw", "block", "one-way"), ("futex", "block"), "p50_ns", 1.2),
    ("raw 64 B block, receiver asleep, p50 <= 1.2x futex (fixed-rate)",
     ("pbring-raw", "block", "fixed-rate"), ("futex", "block"), "p50_ns",
     1.2),
]


def targets_md(res):
    out = ["| target | measured | ratio | verdict |", "|---|---|---|---|"]
    for what, (t, m, meth), (bt, bm), stat, lim in TARGETS:
        a = find(res, t, m, meth, 64)
        b = find(res, bt, bm, meth, 64)
        if not a or not b:
            out.append("| %s | not measured | - | - |" % what)
            continue
        q = a[stat] / b[stat]
        out.append("| %s | %s vs %s | %.3f | %s |" % (
            what, ns(a[stat]), ns(b[stat]), q,
            "met" if q <= lim else "**missed**"))
    for what, t, size, want in [
            ("raw 64 B 1->1 spin >= 30 M msg/s", "pbring-raw", 64, 30e6),
            ("DeviceEvent 64 B 1->1 spin >= 10 M msg/s", "pbring", 64, 10e6)]:
        a = find(res, t, "spin", "stream", size)
        if a:
            out.append("| %s | %.2f M msg/s | %.3f | %s |" % (
                what, a["msgs_per_s"] / 1e6, a["msgs_per_s"] / want,
                "met" if a["msgs_per_s"] >= want else "**missed**"))
    a = find(res, "pbring", "spin", "stream", 1 << 20)
    mc = find(res, "memcpy", "spin", "stream", 1 << 20)
    if a and mc:
        q = a["bytes_per_s"] / mc["bytes_per_s"]
        out.append("| DeviceEvent 1 MiB 1->1 (CRC both ends) >= 0.5x memcpy "
                   "| %.2f vs %.2f GB/s | %.3f | %s |" % (
                       a["bytes_per_s"] / 1e9, mc["bytes_per_s"] / 1e9, q,
                       "met" if q >= 0.5 else "**missed**"))
    return "\n".join(out)


def matrix_md(res, method, key, fmt):
    """Rows transport/mode, columns sizes: one figure per cell."""
    rows, sizes = [], sorted({r["msg_bytes"] for r in res
                              if r["method"] == method and ok(r)})
    for r in res:
        if r["method"] == method and ok(r) and (
                r["transport"], r["mode"], r["producers"],
                r["readers"]) not in rows:
            rows.append((r["transport"], r["mode"], r["producers"],
                         r["readers"]))
    out = ["| transport | mode | topology | " +
           " | ".join(size_name(s) for s in sizes) + " |",
           "|---|---|---|" + "---|" * len(sizes)]
    for t, m, np_, nr in rows:
        cells = []
        for s in sizes:
            r = find(res, t, m, method, s, np_, nr)
            cells.append(fmt(r[key]) if r else "-")
        out.append("| %s | %s | %d->%d | %s |" % (t, m, np_, nr,
                                                  " | ".join(cells)))
    return "\n".join(out)


def latency64_md(res):
    out = ["| transport | mode | method | samples | p50 | p99 | p99.9 | "
           "p99.99 | max | p50 / floor | p99.9 / floor | p50 / unix |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for method in ["rtt/2", "one-way"]:
        floor = find(res, "floor", "spin", method, 64)
        unix = find(res, "unix", "block", method, 64)
        for r in res:
            if r["method"] != method or r["msg_bytes"] != 64 or not ok(r):
                continue
            out.append("| %s | %s | %s | %d | %s | %s | %s | %s | %s | %s "
                       "| %s | %s |" % (
                           r["transport"], r["mode"], method, r["samples"],
                           ns(r["p50_ns"]), ns(r["p99_ns"]),
                           ns(r["p999_ns"]), ns(r["p9999_ns"]),
                           ns(r["max_ns"]),
                           ratio(r["p50_ns"], floor and floor["p50_ns"]),
                           ratio(r["p999_ns"], floor and floor["p999_ns"]),
                           ratio(r["p50_ns"], unix and unix["p50_ns"])))
    return "\n".join(out)


def summary(d):
    """The condensed tables that bench/README.md carries."""
    res = d["results"]
    mps = lambda v: "%.3g M" % (v / 1e6)
    gbs = lambda v: "%.3g" % (v / 1e9)
    return "\n".join([
        machine_md(d["machine"]),
        "#### Targets (ratios within this run)\n", targets_md(res),
        "\n#### Latency at 64 B (ping-pong: round trip / 2 and one-way)\n",
        latency64_md(res),
        "\n#### p50 round trip / 2 against size\n",
        matrix_md(res, "rtt/2", "p50_ns", ns),
        "\n#### p99.9 round trip / 2 against size\n",
        matrix_md(res, "rtt/2", "p999_ns", ns),
        "\n#### Fixed rate, 64 B (latency from the intended send time)\n",
        fixed_rate_md(res),
        "\n#### Throughput, messages/s (slowest reader)\n",
        matrix_md(res, "stream", "msgs_per_s", mps),
        "\n#### Throughput, GB/s\n",
        matrix_md(res, "stream", "bytes_per_s", gbs)]) + "\n"


def markdown(d):
    res = d["results"]
    parts = [machine_md(d["machine"]),
             "#### Targets (ratios within this run)\n", targets_md(res),
             "\n#### Latency, round trip / 2 (ping-pong)\n",
             latency_md(res, "rtt/2"),
             "\n#### Latency, one-way (CLOCK_MONOTONIC stamps)\n",
             latency_md(res, "one-way"),
             "\n#### Latency at a fixed rate (from the intended send time)\n",
             fixed_rate_md(res),
             "\n#### Throughput\n", throughput_md(res)]
    return "\n".join(parts) + "\n"


# --- charts ----------------------------------------------------------------

def need_matplotlib():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        sys.stderr.write(
            "plot.py: matplotlib is missing, so no charts were drawn "
            "(pip install matplotlib). The Markdown table needs only "
            "Python: use --markdown.\n")
        return None


def pct_x(p):
    # 50 -> 1, 90 -> ~3.3, 99 -> 6.6 ...: the usual HdrHistogram axis.
    return math.log10(100.0 / (100.0 - p))


def percentile_chart(plt, res, size, path):
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    for ax, method in zip(axes, ["rtt/2", "one-way"]):
        for r in res:
            if r["method"] != method or r["msg_bytes"] != size or not ok(r):
                continue
            xs = [pct_x(p) for _, p in PCTS]
            ys = [r[k] for k, _ in PCTS]
            ax.plot(xs, ys, marker="o", label=label(r), **style(label(r)))
        ax.set_yscale("log")
        ax.set_xticks([pct_x(p) for _, p in PCTS])
        ax.set_xticklabels(["p%g" % p for _, p in PCTS])
        ax.set_title("%s latency, %s" % (method, size_name(size)))
        ax.set_ylabel("ns")
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def series(res, pred, key):
    pts = {}
    for r in res:
        if pred(r) and ok(r) and r.get(key) is not None:
            pts.setdefault(label(r), []).append((r["msg_bytes"], r[key]))
    return {k: sorted(v) for k, v in pts.items()}


def size_axis(ax):
    ax.set_xscale("log", base=2)
    ticks = sorted({1 << i for i in range(6, 21, 2)})
    ax.set_xticks(ticks)
    ax.set_xticklabels([size_name(t) for t in ticks], fontsize=8)


def latency_size_chart(plt, res, path):
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, key in zip(axes, ["p50_ns", "p999_ns"]):
        for name, pts in series(res, lambda r: r["method"] == "rtt/2",
                                key).items():
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                    label=name, **style(name))
        size_axis(ax)
        ax.set_yscale("log")
        ax.set_title("round trip / 2, %s" % key[:-3])
        ax.set_ylabel("ns")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fixed_rate_chart(plt, res, path):
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in res:
        if r["method"] != "fixed-rate" or not ok(r):
            continue
        ax.plot([pct_x(p) for _, p in PCTS], [r[k] for k, _ in PCTS],
                marker="o", label="%s @%d Hz" % (label(r), r["rate_hz"]),
                **style(label(r)))
    ax.set_yscale("log")
    ax.set_xticks([pct_x(p) for _, p in PCTS])
    ax.set_xticklabels(["p%g" % p for _, p in PCTS])
    ax.set_title("fixed rate, 64 B, latency from the intended send time")
    ax.set_ylabel("ns")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def throughput_chart(plt, res, path):
    topos = [(1, 1), (2, 1), (1, 3)]
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    for col, (np_, nr) in enumerate(topos):
        for row, key in enumerate(["msgs_per_s", "bytes_per_s"]):
            ax = axes[row][col]
            pred = (lambda r, np_=np_, nr=nr: r["kind"] == "throughput" and
                    r["producers"] == np_ and r["readers"] == nr)
            for name, pts in series(res, pred, key).items():
                ax.plot([p[0] for p in pts], [p[1] for p in pts],
                        marker="o", label=name, **style(name))
            if (np_, nr) != (1, 1):  # the memcpy reference is 1->1 only
                for name, pts in series(
                        res, lambda r: r["transport"] == "memcpy",
                        key).items():
                    ax.plot([p[0] for p in pts], [p[1] for p in pts],
                            linestyle=":", color="gray", label=name)
            size_axis(ax)
            ax.set_yscale("log")
            ax.set_title("%d -> %d, %s" % (np_, nr, key))
            ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def charts(d, out):
    plt = need_matplotlib()
    if not plt:
        return False
    res = d["results"]
    os.makedirs(out, exist_ok=True)
    for s in sorted({r["msg_bytes"] for r in res if r["kind"] == "latency"
                     and r["method"] != "fixed-rate"}):
        if s in (64, 1024, 65536, 1 << 20):
            percentile_chart(plt, res, s, os.path.join(
                out, "latency_percentiles_%s.png" % size_name(s)))
    latency_size_chart(plt, res, os.path.join(out, "latency_vs_size.png"))
    fixed_rate_chart(plt, res, os.path.join(out, "fixed_rate.png"))
    throughput_chart(plt, res, os.path.join(out, "throughput_vs_size.png"))
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json")
    ap.add_argument("--out", help="chart directory (default: the JSON's)")
    ap.add_argument("--markdown", metavar="FILE",
                    help="write every result as Markdown tables here "
                    "('-': stdout)")
    ap.add_argument("--summary", metavar="FILE",
                    help="write the condensed tables of bench/README.md "
                    "here ('-': stdout)")
    ap.add_argument("--no-charts", action="store_true")
    a = ap.parse_args()
    d = load(a.json)
    for path, make in [(a.markdown, markdown), (a.summary, summary)]:
        if not path:
            continue
        text = make(d)
        if path == "-":
            sys.stdout.write(text)
        else:
            with open(path, "w") as f:
                f.write(text)
    if not a.no_charts:
        out = a.out or os.path.dirname(os.path.abspath(a.json))
        if not charts(d, out):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
