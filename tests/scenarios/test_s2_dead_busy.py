# SPDX-License-Identifier: MIT
"""Scenario 2: a producer died in BUSY(s) (FORMAT §8.2, §8.3).

forge claims s, begins it (BUSY(s), some payload bytes) and is killed. The
sequence must become ABANDONED(s), exactly once, and everything sent
afterwards must arrive:

  reader-recovers    the gating reader in L, stuck at s for 20 ms, runs
                     recover(s); then a producer in the next language
                     sends more.
  producer-recovers  the gating reader (next-but-one language) is
                     stopped; a producer in L joins, takes the dead entry
                     and reaps it (§8.3), which recovers s, then sends.

ids: LANG-VARIANT.
"""
import pytest

from scenlib import ACTING, rotate

N = 16
BEFORE = 5  # messages before the dead one: s = BEFORE
AFTER = 10  # messages after it
CASES = [pytest.param(lang, v, id=f"{lang}-{v}") for lang in ACTING
         for v in ("reader", "producer")]


@pytest.mark.parametrize("lang,variant", CASES)
def test_dead_producer_busy(scen, lang, variant):
    ring = scen.ring("busy", slots=N)
    rlang = lang if variant == "reader" else rotate(lang, 2)
    plang = rotate(lang, 1) if variant == "reader" else lang
    scen.note(f"reader in {rlang}, later producer in {plang}, recoverer: "
              f"the {variant}")
    total = BEFORE + AFTER

    rd = scen.spawn(rlang, "reader", "consume", ring, "--count", total,
                    "--quiet", "--timeout", 20)
    scen.wait_joined(ring, rd, "gating")
    first = scen.spawn("c", "first", "produce", ring, "--count", BEFORE,
                       "--timeout", 5)
    assert first.wait() == 0, "the first C producer failed"
    scen.wait_joined(ring, rd, "gating",
                     pred=lambda p: p["delivered"] == BEFORE)
    if variant == "producer":
        rd.stop()

    forge, s = scen.forge(ring, "claim-busy")
    assert s == BEFORE, f"forge claimed {s}, expected {BEFORE}"
    assert scen.slot(ring, s) == f"BUSY {s}"
    forge.kill()

    if variant == "reader":
        got = scen.wait_slot(ring, s, f"ABANDONED {s}", timeout=3)
        assert got == f"ABANDONED {s}", (
            f"the {rlang} gating reader stuck at {s} (BUSY, owner dead) did "
            f"not recover it within 3 s: slot reads '{got}'")
        after = scen.spawn(plang, "after", "produce", ring, "--count", AFTER,
                           "--timeout", 5)
        arc = after.wait()
        assert arc == 0, f"the {plang} producer after the recovery failed"
    else:
        after = scen.spawn(plang, "after", "produce", ring, "--count", AFTER,
                           "--timeout", 5)
        arc = after.wait()
        assert arc == 0, f"the {plang} producer (the recoverer) failed"
        got = scen.slot(ring, s)
        assert got == f"ABANDONED {s}", (
            f"the {plang} producer took the dead entry but did not recover "
            f"its sequence {s} (§8.3): slot reads '{got}'")
        rd.cont()

    rrc = rd.wait(timeout=10)
    sm = rd.summary
    assert sm is not None, f"no consume summary from the {rlang} reader"
    assert (rrc, sm.get("received"), sm.get("abandoned"), sm.get("lost")) \
        == (0, total, 1, 0), (
        f"{rlang} reader: exit {rrc}, received {sm.get('received')}, "
        f"abandoned {sm.get('abandoned')}, lost {sm.get('lost')}; want exit "
        f"0, received {total}, abandoned 1, lost 0")
    for k in ("gaps", "duplicates", "crc errors"):
        assert sm.get(k) == 0, f"{rlang} reader: {k} {sm.get(k)}"
    st = scen.stat(ring)
    assert st["abandoned"] == 1, (
        f"ring counter abandoned {st['abandoned']}, want exactly 1")
    # The later producer took the dead entry (the first one) and reaped it.
    assert st["producers_reaped"] == 1, (
        f"producers_reaped {st['producers_reaped']}, want 1 (the {plang} "
        f"producer should have taken and reaped the dead entry, §5.2)")
