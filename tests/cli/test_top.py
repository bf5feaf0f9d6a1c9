# SPDX-License-Identifier: MIT
"""`pbring top`: driven in a real terminal (tmux) and read off its screen,
a running producer's rate within 10 % of what `produce` itself reports,
the sort key and quit keys; plain lines when its output is not a
terminal; bad arguments."""
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


def tmux(*args, check=True):
    r = subprocess.run([TMUX, *args], capture_output=True, text=True,
                       timeout=10)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def screen(session):
    return tmux("capture-pane", "-p", "-t", session).stdout


def row(text, ring, role):
    """RATE and TOTAL of the row of @role on @ring, or None."""
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 10 and f[0] == ring and f[1] == role:
            return f
    return None


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
        rates = []
        deadline = time.monotonic() + 15
        while len(rates) < 4 and time.monotonic() < deadline:
            time.sleep(0.5)
            text = screen(session)
            f = row(text, name, "producer")
            if f and f[5] != "-":
                rates.append(float(f[5]))
        assert len(rates) >= 4, screen(session)
        assert "sorted by ring (q quit, s sort)" in text
        assert row(text, name, "gating")[4] == "alive"
        tmux("send-keys", "-t", session, "s")
        deadline = time.monotonic() + 5
        while "sorted by rate" not in screen(session):
            assert time.monotonic() < deadline, screen(session)
            time.sleep(0.1)
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
    assert lines[1].split() == ["RING", "ROLE", "ID", "PID", "STATE",
                                "RATE", "LAG", "TOTAL", "LOST", "BLOCKED"]
    f = lines[2].split()
    assert f[:5] == [name, "gating", "0", str(consumer.pid), "alive"]
    assert f[5] == "0" and f[9] == "-"
    assert "\033" not in r.out  # no terminal codes in a pipe


@pytest.mark.parametrize("args,msg", [
    (["--interval", "0"], "--interval"),
    (["--interval"], "--interval"),
    (["--bogus"], "unknown option"),
    (["bad/name"], "not a ring name"),
])
def test_top_bad_arguments(pbring, args, msg):
    r = pbring("top", *args)
    assert r.rc == 2 and msg in r.err and len(r.err_lines) == 1, r
