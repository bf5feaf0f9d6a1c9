# SPDX-License-Identifier: MIT
"""Scenario 3: a single producer died between pending and claim (§7.1,
§8.3).

A single producer stores pending = (claim << 2) | 2 before it publishes
claim + 1. forge leaves exactly that state (crash point sp_pending) and is
killed. The next single producer takes entry 0, reaps it and must place
the pending sequence in (claim - 2^62, claim]: it is claim itself, not
claimed yet, so recover() leaves it alone. The sequence must then carry
the new producer's (first) message: nothing abandoned, nothing lost.

ids: LANG (the gating reader and the second producer).
"""
import pytest

from scenlib import ACTING

N = 16
FIRST = 20
SECOND = 20


@pytest.mark.parametrize("lang", [pytest.param(x, id=x) for x in ACTING])
def test_sp_pending_window(scen, lang):
    ring = scen.ring("spp", slots=N, single=True)
    total = FIRST + SECOND
    rd = scen.spawn(lang, "reader", "consume", ring, "--count", total,
                    "--quiet", "--timeout", 20)
    scen.wait_joined(ring, rd, "gating")

    first = scen.spawn("c", "first", "produce", ring, "--count", FIRST,
                       "--timeout", 5)
    assert first.wait() == 0, "the first C producer failed"

    forge, c = scen.forge(ring, "sp-pending")
    assert c == FIRST, f"forge saw claim {c}, expected {FIRST}"
    forge.kill()

    # The first message of the next producer must be sequence c itself
    # (checked before a later lap overwrites its slot), then the rest.
    second = scen.spawn(lang, "second", "produce", ring, "--count", 1,
                        "--timeout", 5)
    src = second.wait()
    got = scen.slot(ring, c)
    assert src == 0, (f"the {lang} single producer after the dead one "
                      f"failed (exit {src}); sequence {c} reads '{got}' "
                      f"(want 'DONE {c}', §8.3)")
    assert got == f"DONE {c}", (
        f"sequence {c} (the dead producer's pending, never claimed) reads "
        f"'{got}', want 'DONE {c}': the {lang} producer placed pending "
        f"outside (claim - 2^62, claim] (§8.3)")
    rest = scen.spawn(lang, "rest", "produce", ring, "--count", SECOND - 1,
                      "--timeout", 5)
    assert rest.wait() == 0, f"the next {lang} single producer failed"

    rrc = rd.wait(timeout=10)
    sm = rd.summary
    assert sm is not None, f"no consume summary from the {lang} reader"
    assert (rrc, sm.get("received"), sm.get("abandoned"), sm.get("lost")) \
        == (0, total, 0, 0), (
        f"{lang} reader: exit {rrc}, received {sm.get('received')}, "
        f"abandoned {sm.get('abandoned')}, lost {sm.get('lost')}; want exit "
        f"0, received {total}, abandoned 0, lost 0")
    st = scen.stat(ring)
    assert st["abandoned"] == 0, f"ring counter abandoned {st['abandoned']}"
    assert st["claimed"] == total, f"claimed {st['claimed']}, want {total}"
    assert st["producers_reaped"] == 1, (
        f"producers_reaped {st['producers_reaped']}: the {lang} producer "
        f"should have reaped the dead entry 0")
