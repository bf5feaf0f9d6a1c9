#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A short pbring-bench run, as ctest's bench_run_clean: its JSON records
the command line exactly as given (--sizes is split on a copy), and the
run leaves nothing behind: no ring, queue or iceoryx segment in /dev/shm,
no iceoryx socket or lock file in /tmp (when the bench was built with the
iceoryx baseline, which then runs too).

usage: bench/check_run.py PBRING-BENCH WORK_DIR
"""
import grp
import json
import os
import subprocess
import sys


def fail(msg):
    print(f"bench_run_clean: {msg}", file=sys.stderr)
    sys.exit(1)


def iceoryx_names():
    """/dev/shm and /tmp names that RouDi and its runtimes make
    (tr_iceoryx.c): not there after the run, whoever else runs."""
    group = grp.getgrgid(os.getegid()).gr_name
    return ({f"/dev/shm/{n}" for n in ("iceoryx_mgmt", group)} |
            {f"/tmp/{n}" for n in ("roudi", "roudi.lock",
                                   "iox-unique-roudi.lock")})


def leftovers(pid):
    """What this run (pid) left: names with its run id, iceoryx's names."""
    found = set()
    for d in ("/dev/shm", "/dev/mqueue", "/tmp"):
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            continue
        found |= {f"{d}/{n}" for n in names
                  if f".{pid}." in n or n.startswith(f"pbrbench_{pid}_")}
    return found | {n for n in iceoryx_names() if os.path.exists(n)}


def main():
    bench, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    out = os.path.join(work, "run.json")
    before = {n for n in iceoryx_names() if os.path.exists(n)}
    if before:
        print(f"bench_run_clean: already there, not checked: {sorted(before)}")
    argv = [bench, "--quick", "--methods", "pingpong", "--transports",
            "pbring,mqueue,iceoryx", "--sizes", "64,65536", "--samples",
            "300", "--json", out]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, stdin=subprocess.DEVNULL)
    try:
        stdout, stderr = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    print(stdout, end="")
    if p.returncode != 0:
        fail(f"pbring-bench exited {p.returncode}: {stderr}")
    with open(out) as f:
        js = json.load(f)
    m = js["machine"]
    if m.get("command") != " ".join(argv):
        fail(f"JSON command {m.get('command')!r}, want {' '.join(argv)!r}")
    if m.get("argv") != argv:
        fail(f"JSON argv {m.get('argv')}, want {argv}")
    sizes = {r["msg_bytes"] for r in js["results"]}
    if sizes != {64, 65536}:
        fail(f"--sizes 64,65536 ran sizes {sorted(sizes)}")
    ran = sorted({r["transport"] for r in js["results"]
                  if not r.get("error")})
    print(f"bench_run_clean: ran {ran}")
    left = leftovers(p.pid) - before
    if left:
        fail(f"left behind: {sorted(left)}")
    print("bench_run_clean: ok")


if __name__ == "__main__":
    main()
