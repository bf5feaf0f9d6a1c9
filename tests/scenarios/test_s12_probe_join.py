# SPDX-License-Identifier: MIT
"""Scenario 12: probes do not divert a joining producer (FORMAT §5.1, §7.0,
§8.3).

`forge probe` lists the ring's participants through libpbring in a tight
loop (what `pbring stat`, and every produce command's own watch, do now and
then). Meanwhile, round after round, forge dies in BUSY(s) holding the
first producer entry, and a producer in L joins: it must take that entry,
reap it and so recover s (ABANDONED(s)) before its own message, every
round. A probe that took the entry's lock, even for a moment, would send
the joiner to the next entry and leave s BUSY.

ids: LANG.
"""
import json

import pytest

from scenlib import ACTING

ROUNDS = 8


@pytest.mark.parametrize("lang", [pytest.param(x, id=x) for x in ACTING])
def test_probe_does_not_divert_joiner(scen, lang):
    ring = scen.ring("probe", slots=64)
    prober, _ = scen.forge(ring, "probe")
    scen.note(f"C probes in a loop; the joining producer is in {lang}")
    for k in range(ROUNDS):
        forge, s = scen.forge(ring, "claim-busy")
        forge.kill()
        r = scen.run(lang, "produce", ring, "--count", 1, "--no-wait",
                     "--timeout", 5)
        assert r.returncode == 0, f"round {k}: {lang} produce: {r.stderr}"
        got = scen.slot(ring, s)
        assert got == f"ABANDONED {s}", (
            f"round {k}: the {lang} producer did not take and reap the dead "
            f"entry while a probe ran (§5.1): slot {s} reads '{got}'")
    assert prober.alive(), f"the prober stopped: {prober.err}"
    prober.kill()
    st = scen.run("c", "stat", ring, "--json")
    assert st.returncode == 0, st.stderr
    info = json.loads(st.stdout)
    assert info["producers_reaped"] == ROUNDS
    assert info["abandoned"] == ROUNDS
