# SPDX-License-Identifier: MIT
"""Scenario 16: a reader's metrics in the ring (FORMAT.md §5.5, §5.6,
format 1.2), kept alike by every language's `consume` and read alike by
every exporter (docs/METRICS.md).

A gating `consume` in L joins a ring and is stopped (SIGSTOP). C commits 4
demo events, Python one payload that is not a DeviceEvent; forge spoils
the stored CRC of the second message. The reader is resumed; while it
still holds its entry, C's `stat --prometheus` must show for it 5
delivered (the ring handed over all five; the two bad ones are counted
again as errors), 1 CRC error, 1 decode (content) error, nothing
malformed, and a latency histogram of all 5 messages whose
buckets are cumulative and whose sum is plausible; `promtool check
metrics` passes on it, and the Python collector reads the same samples
from the same ring (Go's collector is held to C's by go/prom's tests).
The reader's own summary agrees: crc errors 1, content errors 1.

ids: L.
"""
import re
import shutil
import subprocess
import time

import pytest

from scenlib import ACTING, commands

SEND_BAD = """
import sys
from pbring import Ring
with Ring.attach(sys.argv[1]) as r, r.producer() as p:
    p.send_bytes(bytes.fromhex("0a05612202fffe621801"))
"""

PY_EXPOSITION = """
import sys
from prometheus_client import CollectorRegistry, generate_latest
from pbring.metrics import RingCollector
reg = CollectorRegistry()
reg.register(RingCollector([sys.argv[1]]))
sys.stdout.write(generate_latest(reg).decode())
"""

SAMPLE = re.compile(r'^(\w+)\{([^}]*)\} (\S+)$')


def samples(text, prefix="pbring_reader_"):
    """{(name, sorted labels): value} of the samples named prefix*."""
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m and m.group(1).startswith(prefix):
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"',
                                             m.group(2))))
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(s, name, **want):
    got = [v for (n, labels), v in s.items()
           if n == name and set(want.items()) <= set(labels)]
    assert len(got) == 1, (name, want, sorted(s))
    return got[0]


def wait_position(scen, ring, actor, pos, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = scen.participant(ring, actor.pid)
        if p is not None and p["position"] >= pos:
            return
        time.sleep(0.02)
    pytest.fail(f"the reader did not reach {pos}", pytrace=False)


def check_histogram(s, pid, count):
    name = "pbring_reader_latency_seconds"
    buckets = sorted(((float(dict(lb)["le"]), v) for (n, lb), v in s.items()
                      if n == name + "_bucket"
                      and dict(lb)["participant"] == str(pid)))
    assert len(buckets) == 23, buckets
    assert [v for _, v in buckets] == sorted(v for _, v in buckets), (
        f"buckets are not cumulative: {buckets}")
    assert buckets[-1] == (float("inf"), count), buckets
    assert value(s, name + "_count", participant=str(pid)) == count
    total = value(s, name + "_sum", participant=str(pid))
    # queued for the time the reader was stopped, and less than this test
    assert 0 < total < count * 60, total


@pytest.mark.parametrize("lang", [pytest.param(x, id=x) for x in ACTING])
def test_reader_metrics_alike(scen, lang):
    ring = scen.ring("rmetrics", slots=16, slot_size=256)
    rd = scen.spawn(lang, "reader", "consume", ring, "--quiet", "--timeout",
                    20)
    pid = scen.wait_joined(ring, rd, "gating")["index"]
    rd.stop()
    assert scen.run("c", "produce", ring, "--count", 4, "--size",
                    16).returncode == 0
    py = commands()["py"][0]
    b = subprocess.run([py, "-c", SEND_BAD, ring], capture_output=True,
                       text=True, timeout=60)
    assert b.returncode == 0, b.stderr
    sp = subprocess.run([scen.forge_bin, ring, "spoil", "1"],
                        capture_output=True, text=True, timeout=10)
    assert sp.returncode == 0, sp.stderr
    assert scen.slot_crc(ring, 1) == "crc-bad"
    rd.cont()
    wait_position(scen, ring, rd, 5)
    time.sleep(0.1)  # counts are published before the position moves on
    r = scen.run("c", "stat", ring, "--prometheus")
    assert r.returncode == 0, r.stderr
    c = samples(r.stdout)
    who = {"participant": str(pid), "mode": "gating"}
    got = {n: value(c, f"pbring_reader_{n}_total", **who)
           for n in ("delivered", "crc_errors", "decode_errors", "bad")}
    assert got == {"delivered": 5, "crc_errors": 1, "decode_errors": 1,
                   "bad": 0}, f"the {lang} reader left {got}"
    check_histogram(c, pid, 5)
    if shutil.which("promtool"):
        pt = subprocess.run(["promtool", "check", "metrics"], input=r.stdout,
                            capture_output=True, text=True, timeout=60)
        assert pt.returncode == 0, pt.stdout + pt.stderr
    e = subprocess.run([py, "-c", PY_EXPOSITION, ring], capture_output=True,
                       text=True, timeout=60)
    assert e.returncode == 0, e.stderr
    assert samples(e.stdout) == c, "the Python collector reads otherwise"
    rd.interrupt()
    sm = rd.summary
    assert sm is not None and (sm.get("crc errors"),
                               sm.get("content errors")) == (1, 1), sm
