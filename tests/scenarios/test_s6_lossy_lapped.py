# SPDX-License-Identifier: MIT
"""Scenario 6: a lapped lossy reader accounts for everything (§9.4, §9.3).

A lossy reader in L joins at the latest (cursor 0) and is SIGSTOPped while
a C producer is mid-stream, long enough to be lapped many times over, then
SIGCONTed. It must exit 0 and account for every sequence it passed:
received + lost + abandoned (+ missed, where reported) = the claim, with
lost > 0, and no crc errors or duplicates; and its entry (stat), once it
caught up, must say delivered + lost + abandoned = the claim.

ids: LANG (the lossy reader).
"""
import signal
import time

import pytest

from scenlib import ACTING

N = 16
COUNT = 900
RATE = 3000  # 0.3 s of producing


@pytest.mark.parametrize("lang", [pytest.param(x, id=x) for x in ACTING])
def test_lossy_lapped(scen, lang):
    ring = scen.ring("lapped", slots=N)
    rd = scen.spawn(lang, "lossy", "consume", ring, "--lossy", "--from",
                    "latest", "--quiet", "--timeout", 1)
    scen.wait_joined(ring, rd, "lossy")
    prod = scen.spawn("c", "producer", "produce", ring, "--count", COUNT,
                      "--rate", RATE, "--no-wait", "--timeout", 5)
    scen.wait_joined(ring, rd, "lossy", pred=lambda p: p["delivered"] >= 10)
    rd.signal(signal.SIGSTOP)
    t_stop = time.monotonic()
    claimed_at_stop = scen.stat(ring)["claimed"]
    time.sleep(0.12)  # ~360 messages at RATE: many laps of 16 slots
    rd.signal(signal.SIGCONT)
    assert prod.wait() == 0, "the C producer failed"
    claimed = scen.stat(ring)["claimed"]
    assert claimed == COUNT
    assert claimed_at_stop < COUNT - 2 * N, (
        f"the producer was nearly done ({claimed_at_stop} of {COUNT}) when "
        f"the reader was stopped: the scenario did not lap it (slow host?)")

    # The reader's own entry, once it has caught up (it stays for --timeout
    # 1 s after the last message): delivered + lost + abandoned = passed.
    e = scen.wait_joined(ring, rd, "lossy",
                         pred=lambda p: p["position"] == COUNT)
    ent = {k: e[k] for k in ("delivered", "lost", "abandoned")}
    assert sum(ent.values()) == COUNT, (
        f"the {lang} lossy reader's entry at position {COUNT} accounts for "
        f"{sum(ent.values())} sequences: {ent} (FORMAT §9.4)")

    rc, hung = rd.finish(timeout=10)
    sm = rd.summary or {}
    assert not hung and rc == 0, f"the {lang} lossy reader: exit {rc}"
    got = {k: sm.get(k) for k in ("received", "lost", "abandoned", "missed",
                                  "crc errors", "duplicates")}
    accounted = sum(sm.get(k, 0) or 0 for k in ("received", "lost",
                                                "abandoned", "missed"))
    assert accounted == COUNT, (
        f"the {lang} lossy reader passed {COUNT} sequences but accounts for "
        f"{accounted}: {got} (stopped for "
        f"{time.monotonic() - t_stop:.2f} s)")
    assert sm.get("lost", 0) > 0, f"it was never lapped: {got}"
    assert sm.get("received", 0) >= 10
    assert sm.get("crc errors") == 0 and sm.get("duplicates") == 0, got
