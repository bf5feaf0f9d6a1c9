# SPDX-License-Identifier: MIT
"""Scenario 4: a dead gating reader stops gating (§8.4, §7.2).

A gating reader in L joins and is SIGKILLed at cursor 0. A producer in the
next language sends 4 laps of a 16-slot ring: blocked at the limit, it must
find the reader dead, reap it and go on, well within its --timeout.

ids: READER_LANG-PRODUCER_LANG.
"""
import pytest

from scenlib import ACTING, rotate

N = 16
COUNT = 4 * N
CASES = [pytest.param(x, rotate(x, 1), id=f"{x}-{rotate(x, 1)}")
         for x in ACTING]


@pytest.mark.parametrize("rlang,plang", CASES)
def test_dead_gating_reader(scen, rlang, plang):
    ring = scen.ring("deadrd", slots=N)
    rd = scen.spawn(rlang, "reader", "consume", ring, "--quiet",
                    "--timeout", 30)
    scen.wait_joined(ring, rd, "gating")
    rd.kill()

    p = scen.participant(ring, rd.pid)
    assert p is not None and not p["alive"], (
        f"stat should still list the dead {rlang} reader, not alive: {p}")

    prod = scen.spawn(plang, "producer", "produce", ring, "--count", COUNT,
                      "--no-wait", "--timeout", 3)
    rc = prod.wait(timeout=10)
    assert rc == 0, (f"the {plang} producer did not get past the dead "
                     f"{rlang} gating reader (exit {rc})")
    assert prod.elapsed < 3, f"it took {prod.elapsed:.2f} s"

    st = scen.stat(ring)
    assert st["claimed"] == COUNT
    assert st["readers_reaped"] == 1, (
        f"readers_reaped {st['readers_reaped']}, want 1")
    readers = [x for x in st["participants"] if x["role"] != "producer"]
    assert readers == [], f"the dead reader's entry was not freed: {readers}"
