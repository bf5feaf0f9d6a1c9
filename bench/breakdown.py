#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Where a DeviceEvent's time goes, per size: a Markdown table from one
pbring-micro JSON run (instruction paths, hot caches, medians if it was run
with repetitions) and one pbring-bench JSON run (cross-process one-way
p50, spin).

    pbring-micro --benchmark_format=json --benchmark_repetitions=3 \\
        > micro.json
    pbring-bench --transports floor,pbring-raw,pbring,pbring-inplace,\\
        pbring-nocrc --methods pingpong --json run.json
    python3 bench/breakdown.py micro.json run.json
"""
import json
import sys

SIZES = (64, 4096, 65536, 1048576)


def micro_times(path):
    """name -> ns (the median aggregate when there is one)."""
    out, medians = {}, {}
    for b in json.load(open(path))["benchmarks"]:
        name = b.get("run_name", b["name"]).replace("/manual_time", "")
        ns = b["real_time"] * {"ns": 1, "us": 1e3, "ms": 1e6}[b["time_unit"]]
        if b.get("aggregate_name") == "median":
            medians[name] = ns
        elif b.get("run_type", "iteration") == "iteration":
            out.setdefault(name, ns)
    out.update(medians)
    return out


def one_way(path):
    """(transport, size) -> spin one-way p50 ns."""
    out = {}
    for r in json.load(open(path))["results"]:
        if (r.get("method") == "one-way" and r.get("mode") == "spin"
                and r.get("p50_ns") is not None):
            out[(r["transport"], r["msg_bytes"])] = r["p50_ns"]
    return out


def fmt(ns):
    if ns is None:
        return "-"
    return f"{ns / 1000:.1f} µs" if ns >= 10000 else f"{ns:.0f} ns"


def size_name(s):
    return f"{s // 1048576} MiB" if s >= 1048576 else (
        f"{s // 1024} KiB" if s >= 1024 else f"{s} B")


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    m, w = micro_times(argv[1]), one_way(argv[2])
    print("| size | reserve + commit | encode | CRC32C | clock | "
          "peek + release | decode | wake | one-way: raw | pbring | "
          "in place | in place, CRC none | pbring ÷ raw | in place ÷ raw "
          "| none ÷ raw |")
    print("|" + "---|" * 15)
    for s in SIZES:
        rc = m.get(f"reserve_commit/{s}")
        pr = m.get(f"peek_release/{s}")
        raw = w.get(("pbring-raw", s))
        wake = raw - rc - pr if raw and rc and pr else None
        row = [size_name(s), fmt(rc), fmt(m.get(f"pieces/fast_encode/{s}")),
               fmt(m.get(f"crc32c/{s}")), fmt(m.get("pieces/clock_gettime")),
               fmt(pr), fmt(m.get(f"pieces/decode_noverify/{s}")),
               fmt(wake), fmt(raw)]
        for t in ("pbring", "pbring-inplace", "pbring-nocrc"):
            row.append(fmt(w.get((t, s))))
        for t in ("pbring", "pbring-inplace", "pbring-nocrc"):
            v = w.get((t, s))
            row.append(f"{v / raw:.2f}" if v and raw else "-")
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main(sys.argv)
