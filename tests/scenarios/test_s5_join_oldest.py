# SPDX-License-Identifier: MIT
"""Scenario 5: join at the oldest on a busy ring (FORMAT §9.1, §9.3, §9.4).

Two C producers run flat out, gated by one C reader that drains. A gating
consumer in L joins --from oldest, SCEN_REPEAT times (default 5). Its
backlog before `checked_from` may be overwritten while it reads it: that
is missed backlog (skipped, or discarded by the release re-check), never a
corrupt message, a duplicate or a gap. Every join must exit 0 with no crc
errors, no duplicates and no gaps.

ids: LANG (the joining consumer).
"""
import pytest

from scenlib import ACTING, repeat

N = 16
JOIN_COUNT = 3000


@pytest.mark.parametrize("lang", [pytest.param(x, id=x) for x in ACTING])
def test_join_oldest_busy(scen, lang):
    ring = scen.ring("join", slots=N)
    drain = scen.spawn("c", "drain", "consume", ring, "--quiet",
                       "--timeout", 60)
    scen.wait_joined(ring, drain, "gating")
    prods = [scen.spawn("c", f"producer{k}", "produce", ring, "--count",
                        10**9, "--size", 32, "--no-wait", "--timeout", 60)
             for k in (1, 2)]
    # Both producers running, the ring lapped a few times.
    scen.wait_joined(ring, drain, "gating",
                     pred=lambda p: p["position"] > 4 * N)

    failures = []
    for i in range(repeat()):
        for p in prods + [drain]:
            assert p.alive(), f"{p.label} exited early"
        j = scen.spawn(lang, f"join{i}", "consume", ring, "--from",
                       "oldest", "--count", JOIN_COUNT, "--quiet",
                       "--timeout", 10)
        rc, hung = j.finish(timeout=30)
        sm = j.summary or {}
        bad = {k: sm.get(k) for k in ("crc errors", "duplicates", "gaps")
               if sm.get(k) != 0}
        if rc != 0 or hung or sm.get("received") != JOIN_COUNT or bad:
            failures.append(f"join {i}: exit {rc}{' (hung)' if hung else ''}"
                            f", {j.err.strip()}")
    for p in prods:
        p.interrupt()
    drain.interrupt()
    assert not failures, (
        f"{len(failures)} of {repeat()} {lang} joins --from oldest failed "
        f"(want exit 0, received {JOIN_COUNT}, crc errors 0, duplicates 0, "
        f"gaps 0):\n  " + "\n  ".join(failures))
