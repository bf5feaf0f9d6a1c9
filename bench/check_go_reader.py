#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ctest's bench_go_reader: `pbring-bench --reader go` runs the ping-pong
of pbring and pbring-raw with the echo side in Go (pbring-bench-go) next
to the same cases with the C echo, in one run; every Go case yields both
figures (rtt/2 and the Go side's one-way samples, through the harness's
histogram) without error, the summary compares Go with C, and nothing is
left in /dev/shm. Without pbring-bench-go, --reader go is refused with a
message that says how to build it.

usage: bench/check_go_reader.py PBRING-BENCH WORK_DIR
"""
import json
import os
import subprocess
import sys

from check_run import leftovers

SIZES = (64, 65536)
SAMPLES = 2000


def fail(msg):
    print(f"bench_go_reader: {msg}", file=sys.stderr)
    sys.exit(1)


def run(argv, env=None):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, stdin=subprocess.DEVNULL, env=env)
    try:
        out, err = p.communicate(timeout=240)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p, out, err


def main():
    bench, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    out = os.path.join(work, "run.json")
    argv = [bench, "--quick", "--reader", "go", "--methods", "pingpong",
            "--transports", "pbring,pbring-raw,pbring-go,pbring-raw-go",
            "--sizes", ",".join(map(str, SIZES)), "--samples", str(SAMPLES),
            "--json", out]
    p, stdout, stderr = run(argv)
    print(stdout, end="")
    if p.returncode != 0:
        fail(f"pbring-bench exited {p.returncode}: {stderr}")
    with open(out) as f:
        results = json.load(f)["results"]
    for tr in ("pbring-go", "pbring-raw-go"):
        for mode in ("spin", "block"):
            for size in SIZES:
                for method in ("rtt/2", "one-way"):
                    got = [r for r in results if r["transport"] == tr and
                           r["mode"] == mode and r["msg_bytes"] == size and
                           r["method"] == method]
                    what = f"{tr} {mode} {size} B {method}"
                    if len(got) != 1:
                        fail(f"{what}: {len(got)} results")
                    r = got[0]
                    if r.get("error"):
                        fail(f"{what}: {r['error']}")
                    # --quick may stop large sizes early (its budget)
                    if r["samples"] < 200 or not 0 < r["p50_ns"] <= \
                            r["max_ns"]:
                        fail(f"{what}: {r['samples']} samples, p50 "
                             f"{r['p50_ns']} max {r['max_ns']}")
    if "Go reader against C reader" not in stdout:
        fail("the summary has no Go against C section")
    left = leftovers(p.pid)
    if left:
        fail(f"left behind: {sorted(left)}")
    env = dict(os.environ, PBRING_BENCH_GO=os.path.join(work, "missing"))
    p, _, err = run([bench, "--reader", "go"], env)
    if p.returncode != 1 or "--reader go" not in err or "missing" not in err:
        fail(f"a missing pbring-bench-go: exit {p.returncode}, {err!r}")
    print("bench_go_reader: ok")


if __name__ == "__main__":
    main()
