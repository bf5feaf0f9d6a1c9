# SPDX-License-Identifier: MIT
"""What `consume`'s summary and `pbring demo` say about latency and rate:
the latency is from each message's commit to its receipt, queueing
included, and says so; each figure has a unit of its own; replayed
backlog (committed before the consumer started) is counted, not timed;
a rate is never 0 for messages received."""
import os
import re
import subprocess

import pytest

from cliutil import shm_path, wait_reader

DURATION = r"(?:\d+ ns|\d+\.\d (?:us|ms|s))"
SUMMARY_END = re.compile(
    rf", rate (?P<rate>\d+) msg/s, latency p50 (?P<p50>-|{DURATION}) "
    rf"p99 (?P<p99>-|{DURATION}) max (?P<max>-|{DURATION}) \(commit to "
    r"receive, including time queued in the ring"
    r"(?P<replayed>; \d+ replayed messages not timed)?\)$", re.M)


def test_replayed_backlog_is_not_timed(pbring, ring):
    """Messages already in the ring when the consumer starts (the default
    --from oldest replays them) would show their age as latency: they
    are counted instead, and the rate of one batch is not 0."""
    name = ring()
    assert pbring("create", name).rc == 0
    assert pbring("produce", name, "--no-wait", "--count", 5).rc == 0
    r = pbring("consume", name, "--quiet", "--count", 5)
    assert r.rc == 0, r
    m = SUMMARY_END.search(r.err)
    assert m, r.err
    assert (m["p50"], m["p99"], m["max"]) == ("-", "-", "-"), r.err
    assert m["replayed"] == "; 5 replayed messages not timed", r.err
    assert int(m["rate"]) > 0, r.err
    # one message: a rate still, not 0
    r = pbring("consume", name, "--quiet", "--count", 1)
    m = SUMMARY_END.search(r.err)
    assert r.rc == 0 and m and int(m["rate"]) > 0, r.err


def test_live_messages_timed_in_their_units(pbring, ring, procs):
    name = ring()
    assert pbring("create", name).rc == 0
    c = procs("consume", name, "--quiet", "--count", 50, "--timeout", 10)
    wait_reader(pbring, name, c.pid)
    p = pbring("produce", name, "--count", 50, "--rate", 2000)
    assert p.rc == 0, p
    assert c.wait() == 0, c
    m = SUMMARY_END.search(c.err)
    assert m, c.err
    assert m["p50"] != "-" and m["max"] != "-" and m["replayed"] is None
    # the figures are in order, whatever their units
    ns = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}

    def value(d):
        v, unit = d.split(" ")
        return float(v) * ns[unit]
    assert value(m["p50"]) <= value(m["p99"]) * 1.04 <= value(m["max"]) * 1.08


def test_mixed_backlog_and_live(pbring, ring, procs):
    """Backlog replayed, then live messages: only the live ones timed."""
    name = ring()
    assert pbring("create", name).rc == 0
    assert pbring("produce", name, "--no-wait", "--count", 3).rc == 0
    c = procs("consume", name, "--quiet", "--count", 13, "--timeout", 10)
    wait_reader(pbring, name, c.pid)
    assert pbring("produce", name, "--count", 10, "--rate", 1000).rc == 0
    assert c.wait() == 0, c
    m = SUMMARY_END.search(c.err)
    assert m and m["p50"] != "-", c.err
    assert m["replayed"] == "; 3 replayed messages not timed", c.err


def test_demo_says_what_its_latency_measures(pbring_path):
    """The demo's consumers run at full speed, which fills the ring: it
    says that this latency is mostly queueing, and measures the transport
    alone with a paced producer."""
    n = 5000
    p = subprocess.Popen([pbring_path, "demo", "--count", str(n)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True)
    demo_ring = f"demo-{p.pid}"
    try:
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if os.path.exists(shm_path(demo_ring)):
            os.unlink(shm_path(demo_ring))
            pytest.fail(f"demo left its ring {demo_ring} behind")
    assert p.returncode == 0, (out, err)
    lines = err.splitlines()
    assert "demo: at full speed the ring fills, so most of that latency is " \
           "time queued in it" in lines, err
    assert "demo: now 2000 DeviceEvents at 10000 msg/s, slower than a " \
           "reader takes them: none waits in the ring" in lines, err
    assert re.search(rf"^demo: transport latency \(commit to receive, nothing "
                     rf"queued\) p50 {DURATION} p99 {DURATION} max {DURATION} "
                     r"over 2000 messages$", err, re.M), err
    gating = [l for l in lines if l.startswith("consume (gating): ")]
    assert len(gating) == 1 and SUMMARY_END.search(gating[0]), err
