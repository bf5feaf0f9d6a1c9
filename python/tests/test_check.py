# SPDX-License-Identifier: MIT
"""`python -m pbring check`: the C command's health check, the same flags,
lines and exit status. The participants are real: this test process's
own producers and readers (held by their locks) and child processes, and
the check runs in a process of its own. Where the C command is there,
both run on the same case and must print the same."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

import pbring
from conftest import PY_CMD, _c_bin


def run(cmd, timeout=60, **kw):
    return subprocess.run(cmd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, **kw)


def check(*args, **kw):
    return run(PY_CMD + ["check", *map(str, args)], **kw)


def both(*args):
    """The Python command, and the C one if there is one."""
    py = check(*args)
    c_bin = _c_bin()
    c = run([c_bin, "check", *map(str, args)]) if c_bin else None
    return py, c


def same(py, c):
    if c is not None:
        assert (c.returncode, c.stdout, c.stderr) == (
            py.returncode, py.stdout, py.stderr), (py, c)


def fail_line(name, why):
    return f"pbring check: {name}: {why}\n"


USAGE = [
    ([], "expects exactly one RING"),
    (["r", "r2"], "expects exactly one RING"),
    (["r", "--bogus"], "unknown option '--bogus'"),
    (["r", "--producers"], "option '--producers' needs a value"),
    (["r", "--producers", "-1"],
     "--producers: '-1' is not a count (0 .. 1024)"),
    (["r", "--readers", "1025"],
     "--readers: '1025' is not a count (0 .. 1024)"),
    (["r", "--max-lag", "1.5"],
     "--max-lag: '1.5' is not a number of messages"),
    (["r", "--max-age", "soon"],
     "--max-age: 'soon' is not a number of seconds"),
    (["r", "--wait", "-2"], "--wait: '-2' is not a number of seconds"),
    (["bad/name"],
     "invalid ring name 'bad/name' (use 1-63 of [A-Za-z0-9_.-])"),
]


@pytest.mark.parametrize("args,msg", USAGE, ids=lambda a: " ".join(a)
                         if isinstance(a, list) else "")
def test_check_usage(args, msg):
    py, c = both(*args)
    assert (py.returncode, py.stdout) == (2, ""), py
    assert py.stderr == f"pbring check: {msg} (see 'pbring check --help')\n"
    same(py, c)


def test_check_help():
    py, c = both("--help")
    assert py.returncode == 0 and py.stdout.startswith(
        "usage: pbring check RING"), py
    same(py, c)
    r = run(PY_CMD + ["--help"])
    assert "  check RING " in r.stdout


def test_check_missing(name):
    py, c = both(name)
    assert (py.returncode, py.stdout, py.stderr) == (
        1, "", fail_line(name, "no such ring")), py
    same(py, c)


def test_check_idle(name):
    pbring.Ring.create(name, slots=16).close()
    py, c = both(name)
    assert (py.returncode, py.stderr) == (0, ""), py
    assert py.stdout == (f"ok: {name}: producers 0, readers 0, lag 0, "
                         "nothing committed yet\n")
    same(py, c)
    py, c = both(name, "-q", "--producers", "1")
    assert (py.returncode, py.stdout, py.stderr) == (
        1, "", fail_line(name, "no live producer (want 1, found 0)")), py
    same(py, c)
    time.sleep(0.3)
    r = check(name, "--max-age", "0.2")
    assert r.returncode == 1 and re.fullmatch(
        rf"pbring check: {name}: nothing committed since the ring was "
        r"created \d+\.\d (ms|s) ago \(max 0\.2 s\)\n", r.stderr), r


def test_check_participants_and_lag(name):
    """This process holds a producer and a gating reader that reads
    nothing: counts, lag and the order of the conditions."""
    with pbring.Ring.create(name, slots=1024) as ring:
        p = ring.producer()
        rd = ring.reader()
        for i in range(500):
            p.send_bytes(b"x%d" % i)
        py, c = both(name, "--producers", 1, "--readers", 1, "--max-lag",
                      500, "--max-age", 30)
        assert py.returncode == 0, py
        assert re.fullmatch(rf"ok: {name}: producers 1, readers 1, lag 500, "
                            r"last commit \d+(\.\d)? (ns|us|ms|s) ago\n",
                            py.stdout), py
        if c is not None:
            assert c.returncode == 0, c
        py, c = both(name, "--max-lag", 100)
        assert (py.returncode, py.stdout, py.stderr) == (1, "", fail_line(
            name, f"reader {rd.index}"
                  f" (pid {os.getpid()}) lags by 500 messages (max 100)")), py
        same(py, c)
        py, c = both(name, "--producers", 2, "--max-lag", 0)
        assert py.stderr == fail_line(
            name, "too few live producers (want 2, found 1)"), py
        same(py, c)
        py, c = both(name, "--readers", 3)
        assert py.stderr == fail_line(
            name, "too few live readers (want 3, found 1)"), py
        same(py, c)
        rd.close()
        p.close()


def test_check_dead_producer(name, c_bin):
    """A producer process killed: its entry stays, its lock is gone."""
    with pbring.Ring.create(name, slots=64) as ring:
        rd = ring.reader()  # a gating reader, so that produce starts
        pr = subprocess.Popen([c_bin, "produce", name, "--rate", "100",
                               "--count", "100000", "--raw"],
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while check(name, "--producers", 1).returncode:
                assert time.monotonic() < deadline, "producer not seen"
                time.sleep(0.05)
        finally:
            pr.kill()
            pr.wait()
        py, c = both(name, "--producers", 1)
        assert py.stderr == fail_line(
            name, "no live producer (want 1, found 0)"), py
        same(py, c)
        assert any(not x.alive for x in ring.participants()
                   if not x.is_reader)  # not reclaimed by the checks
        rd.close()


def test_check_stale(name):
    with pbring.Ring.create(name, slots=16) as ring:
        with ring.producer() as p:
            p.send_bytes(b"hello")
        assert check(name, "--max-age", 5).returncode == 0
        time.sleep(0.3)
        r = check(name, "--max-age", 0.2)
        m = re.fullmatch(rf"pbring check: {name}: nothing committed for "
                         r"(\d+\.\d) (ms|s) \(max 0\.2 s\)\n", r.stderr)
        assert r.returncode == 1 and m, r
        assert float(m[1]) / (1000 if m[2] == "ms" else 1) >= 0.3
        last = ring.last_commit()
        assert last is not None and last[0] == 0
        assert 0.3e9 <= time.monotonic_ns() - last[1] < 60e9


def test_last_commit_api(name):
    """Ring.last_commit(): None before any message and for messages
    without a timestamp; the newest stamped message otherwise."""
    with pbring.Ring.create(name, slots=8) as ring:
        assert ring.last_commit() is None
        with ring.producer() as p:
            for i in range(20):  # laps the ring
                p.send_bytes(b"m")
        seq, ts = ring.last_commit()
        assert seq == 19 and 0 < time.monotonic_ns() - ts < 10e9
        ro = pbring.Ring.attach(name, read_only=True)
        assert ro.last_commit() == (seq, ts)
        ro.close()


def test_check_damaged(name, ring_name):
    pbring.Ring.create(name, slots=16).close()
    with open(f"/dev/shm/pbring.{name}", "r+b") as f:
        f.write(b"garbage!")
    py, c = both(name)
    assert (py.returncode, py.stdout, py.stderr) == (1, "", fail_line(
        name, "damaged ring: not a pbring ring (bad magic)")), py
    same(py, c)
    other = ring_name()
    pbring.Ring.create(other, slots=16).close()
    os.truncate(f"/dev/shm/pbring.{other}", 4096)
    py, c = both(other)
    assert py.stderr == fail_line(
        other, "damaged ring: ring is damaged (unfinished creation, "
               "truncated, or inconsistent geometry)"), py
    same(py, c)


def test_check_world_writable(name):
    pbring.Ring.create(name, slots=16).close()
    os.chmod(f"/dev/shm/pbring.{name}", 0o666)
    py, c = both(name)
    assert (py.returncode, py.stderr) == (1, fail_line(
        name, "ring writable by everyone: refused (see SECURITY.md)")), py
    same(py, c)


def test_check_writes_nothing(name):
    """The segment is byte for byte the same after checks of every kind."""
    with pbring.Ring.create(name, slots=64) as ring:
        p = ring.producer()
        rd = ring.reader()
        for _ in range(10):
            p.send_bytes(b"abc")
        path = f"/dev/shm/pbring.{name}"
        before = open(path, "rb").read()
        for args in ([], ["--producers", 3], ["--max-lag", 0],
                     ["--max-age", 0.000001], ["--readers", 1,
                                               "--max-age", 60],
                     ["--wait", 0.2, "--readers", 2]):
            r = check(name, *args)
            assert r.returncode in (0, 1), r
        assert open(path, "rb").read() == before
        rd.close()
        p.close()


def test_check_wait(name):
    r = check(name, "--wait", 0.3)
    assert (r.returncode, r.stderr) == (1, fail_line(name, "no such ring"))
    w = subprocess.Popen(PY_CMD + ["check", name, "--wait", "30",
                                   "--producers", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        time.sleep(0.5)
        assert w.poll() is None
        with pbring.Ring.create(name, slots=16) as ring:
            with ring.producer():
                out, err = w.communicate(timeout=20)
                assert w.returncode == 0, err
                assert out.startswith(f"ok: {name}: producers 1, "), out
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()
    # Ctrl-C ends the wait at once: 130, "interrupted"
    w = subprocess.Popen(PY_CMD + ["check", name, "--wait", "60",
                                   "--readers", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        time.sleep(1.0)  # the interpreter up, the handler installed
        w.send_signal(signal.SIGINT)
        out, err = w.communicate(timeout=10)
        assert w.returncode == 128 + signal.SIGINT, err
        assert err == f"pbring: {name}: interrupted\n", err
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()


def test_check_timing(name):
    """Not a timed assertion: one check's cost, for the record."""
    pbring.Ring.create(name, slots=1024).close()
    n, t0 = 10, time.monotonic()
    for _ in range(n):
        assert check(name, "-q").returncode == 0
    print(f"\npython -m pbring check: {(time.monotonic() - t0) / n * 1e3:.0f}"
          " ms per run (interpreter start included)", file=sys.stderr)
