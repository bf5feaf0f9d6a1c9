# SPDX-License-Identifier: MIT
"""`pbring top`: driven in a real terminal (tmux) and read off its screen,
a running producer's rate within 10 % of what `produce` itself reports,
a `consume` reader's latency p50 and p99 from the ring's histogram, the
sort keys and quit keys; plain lines when its output is not a terminal;
bad arguments."""
import os
import re
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from cliutil import consume_summary, wait_reader

TMUX = shutil.which("tmux")
COLUMNS = ["RING", "ROLE", "ID", "PID", "STATE", "RATE", "LAG", "TOTAL",
           "LOST", "BLOCKED", "P50", "P99"]
P50, P99 = COLUMNS.index("P50"), COLUMNS.index("P99")
UNIT_NS = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}


def tmux(*args, check=True):
    r = subprocess.run([TMUX, *args], capture_output=True, text=True,
                       timeout=10)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def screen(session):
    return tmux("capture-pane", "-p", "-t", session).stdout


def row(text, ring, role):
    """The fields of the row of @role on @ring, or None."""
    for line in text.splitlines():
        f = line.split()
        if len(f) == len(COLUMNS) and f[0] == ring and f[1] == role:
            return f
    return None


def latency_ns(cell):
    """A P50 or P99 cell ("850ns", "12.3us", "4.1ms", "1.0s") in ns;
    None for "-" (no message in the interval), inf for ">1s"."""
    if cell == "-":
        return None
    if cell == ">1s":
        return float("inf")
    m = re.fullmatch(r"(\d+(?:\.\d)?)(ns|us|ms|s)", cell)
    assert m, cell
    return float(m.group(1)) * UNIT_NS[m.group(2)]


def numeric_latency(f):
    """A reader row's (p50, p99) in ns, both numbers and p50 <= p99."""
    p50, p99 = latency_ns(f[P50]), latency_ns(f[P99])
    assert p50 is not None and p99 is not None, f
    assert 0 <= p50 <= p99 < float("inf"), f
    return p50, p99


def has_latency(text, ring):
    f = row(text, ring, "gating")
    return f is not None and f[P50] != "-"


def wait_screen(session, pred, timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        text = screen(session)
        if pred(text):
            return text
        assert time.monotonic() < deadline, text
        time.sleep(0.1)


def test_top_in_a_terminal(pbring, pbring_path, ring, procs):
    assert TMUX, "tmux is not installed (./dev deps installs it)"
    name = ring()
    assert pbring("create", name, "--slots", 256).rc == 0
    consumer = procs("consume", name, "--quiet")
    wait_reader(pbring, name, consumer.pid)
    producer = procs("produce", name, "--rate", 2000)
    session = f"pbtop-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "30",
         f"{pbring_path} top --interval 0.5 {name}")
    try:
        rates, latencies = [], []
        deadline = time.monotonic() + 15
        while len(rates) < 4 and time.monotonic() < deadline:
            time.sleep(0.5)
            text = screen(session)
            f = row(text, name, "producer")
            if f and f[5] != "-":
                rates.append(float(f[5]))
                assert f[P50] == f[P99] == "-", f  # producers: none
            f = row(text, name, "gating")
            if f and f[P50] != "-":
                latencies.append(numeric_latency(f))
        assert len(rates) >= 4, screen(session)
        assert latencies, screen(session)
        assert "sorted by ring (q quit, s sort)" in text
        assert row(text, name, "gating")[4] == "alive"
        for key in ("rate", "lag", "p99"):
            tmux("send-keys", "-t", session, "s")
            text = wait_screen(session, lambda t: f"sorted by {key}" in t)
        # by p99: the reader (a latency) above the producer (none)
        text = wait_screen(session, lambda t: has_latency(t, name))
        roles = [l.split()[1] for l in text.splitlines()
                 if l.startswith(name + " ")]
        assert roles == ["gating", "producer"], text
        producer.p.send_signal(signal.SIGINT)
        assert producer.wait() == 130
        m = re.search(r"produce: (\d+) messages from 1 producer in [\d.]+ s, "
                      r"(\d+) msg/s", producer.err)
        assert m, producer.err
        reported = float(m.group(2))
        for rate in rates[1:]:  # the first may span the start
            assert abs(rate - reported) <= 0.1 * reported, (rates, reported)
        tmux("send-keys", "-t", session, "q")
        deadline = time.monotonic() + 5
        while tmux("has-session", "-t", session, check=False).returncode \
                == 0:
            assert time.monotonic() < deadline, "q did not quit"
            time.sleep(0.1)
    finally:
        tmux("kill-session", "-t", session, check=False)
    consumer.p.send_signal(signal.SIGINT)
    consumer.wait()
    assert consume_summary(consumer.err)["received"] > 0


def test_top_plain_lines(pbring, ring, procs):
    name = ring()
    assert pbring("create", name, "--slots", 64).rc == 0
    consumer = procs("consume", name, "--quiet")
    wait_reader(pbring, name, consumer.pid)
    r = pbring("top", "--once", "--interval", 0.3, name)
    assert r.rc == 0 and r.err == "", r
    lines = r.out.splitlines()
    assert lines[0] == "pbring top: 1 participant, sorted by ring"
    assert lines[1].split() == COLUMNS
    f = lines[2].split()
    assert f[:5] == [name, "gating", "0", str(consumer.pid), "alive"]
    assert f[5] == "0" and f[9] == "-"
    # no message in the interval: no latency either
    assert f[P50] == f[P99] == "-", f
    assert "\033" not in r.out  # no terminal codes in a pipe


def test_top_plain_latency(pbring, ring, procs):
    """A producer and `pbring consume` (which records its latency): the
    plain lines show the reader's p50 and p99 over the interval."""
    name = ring()
    assert pbring("create", name, "--slots", 256).rc == 0
    consumer = procs("consume", name, "--quiet")
    wait_reader(pbring, name, consumer.pid)
    procs("produce", name, "--rate", 2000)
    for _ in range(20):  # until the producer ran the whole interval
        r = pbring("top", "--once", "--interval", 0.5, name)
        assert r.rc == 0 and r.err == "", r
        reader = row(r.out, name, "gating")
        producer = row(r.out, name, "producer")
        if reader and producer and producer[5] not in ("-", "0"):
            break
    else:
        pytest.fail(f"no producer rate in 20 refreshes: {r.out}")
    assert r.out.splitlines()[1].split() == COLUMNS, r
    assert producer[P50] == producer[P99] == "-", r.out
    numeric_latency(reader)


@pytest.mark.parametrize("args,msg", [
    (["--interval", "0"], "--interval"),
    (["--interval"], "--interval"),
    (["--bogus"], "unknown option"),
    (["bad/name"], "not a ring name"),
])
def test_top_bad_arguments(pbring, args, msg):
    r = pbring("top", *args)
    assert r.rc == 2 and msg in r.err and len(r.err_lines) == 1, r
