# SPDX-License-Identifier: MIT
"""Scenario 14: a producer's statistics in its entry, kept by every
language (FORMAT §5.3, format 1.1: bytes, aborts, blocked_ns), read by
the C command's metrics (docs/METRICS.md).

A C gating consumer joins a 4-slot ring and is stopped (SIGSTOP); a
producer in L sends 6 demo events with 16-byte blobs: 4 fill the ring,
the 5th waits. While it waits, `pbring stat --prometheus` must show its
4 messages committed, their payload bytes (each at least 16), no abort,
and a blocked time that grows with the wait; the consumer is resumed and
both finish with all 6 delivered.

ids: L.
"""
import re
import time

import pytest

from scenlib import ACTING


def metric(text, name, participant):
    m = re.search(rf'^{name}{{ring="[^"]*",participant="{participant}"}} '
                  r'(\S+)$', text, re.M)
    return None if m is None else float(m.group(1))


@pytest.mark.parametrize("lang", [pytest.param(x, id=x) for x in ACTING])
def test_producer_statistics(scen, lang):
    ring = scen.ring("pstats", slots=4, slot_size=256)
    rd = scen.spawn("c", "reader", "consume", ring, "--count", 6, "--quiet",
                    "--timeout", 20)
    scen.wait_joined(ring, rd, "gating")
    rd.stop()
    p = scen.spawn(lang, "producer", "produce", ring, "--count", 6, "--size",
                   16, "--timeout", 20)
    pid = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        st = scen.stat(ring)
        prods = [x for x in st["participants"] if x["role"] == "producer"]
        if prods and prods[0]["position"] == 4:
            pid = prods[0]["index"]
            break
        time.sleep(0.02)
    assert pid is not None, f"the {lang} producer did not fill the ring"
    time.sleep(0.5)
    r = scen.run("c", "stat", ring, "--prometheus")
    assert r.returncode == 0, r.stderr
    committed = metric(r.stdout, "pbring_producer_committed_total", pid)
    size = metric(r.stdout, "pbring_producer_bytes_total", pid)
    aborts = metric(r.stdout, "pbring_producer_aborts_total", pid)
    blocked = metric(r.stdout, "pbring_producer_blocked_seconds_total", pid)
    assert committed == 4, r.stdout
    assert size is not None and 4 * 16 <= size <= 4 * 100, r.stdout
    assert aborts == 0, r.stdout
    assert blocked is not None and blocked >= 0.3, (
        f"the {lang} producer, waiting for space for 0.5 s, reports "
        f"{blocked} s blocked")
    time.sleep(0.2)
    r2 = scen.run("c", "stat", ring, "--prometheus")
    later = metric(r2.stdout, "pbring_producer_blocked_seconds_total", pid)
    # the time is published when a wait ends, or while it goes on
    assert later is not None and later >= blocked
    rd.cont()
    assert p.wait() == 0, f"{lang} produce: {p.err}"
    assert rd.wait() == 0, rd.err
