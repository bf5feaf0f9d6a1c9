# SPDX-License-Identifier: MIT
"""Scenario 7: a ring being created, a damaged one, a foreign file (§12).

A creator holds the creation lock until READY (§12.1). While it is at work
an attacher in L waits (and here, with the creator stuck, times out after
the 1 s attach timeout); once it is dead the ring will never be ready and
L's command must call it damaged at once, with the way out. A truncated
ring is damaged too, and a file with a foreign magic is "not a pbring
ring", both at once -- never "timed out".

ids: the attaching language.
"""
import os

import pytest

from scenlib import ACTING

DAMAGED = ("ring is damaged (unfinished creation, truncated, or "
           "inconsistent geometry); remove it with 'pbring rm {ring}'")


def attach_fails(scen, lang, ring, want):
    r = scen.run(lang, "consume", ring, "--count", 1, "--timeout", 5)
    assert r.returncode == 1, (lang, r.returncode, r.stderr)
    assert r.stderr.strip().endswith(want), (lang, r.stderr)
    return r


@pytest.mark.parametrize("lang", ACTING)
def test_damaged_and_being_created(scen, lang):
    ring = scen.ring("dmg", slots=16)
    creator, _ = scen.forge(ring, "unfinished")
    t0 = os.times().elapsed
    r = scen.run(lang, "consume", ring, "--count", 1)
    took = os.times().elapsed - t0
    assert r.returncode == 1, r.stderr
    assert "timed out" in r.stderr, (lang, r.stderr)
    assert took >= 0.9, f"{lang} gave up on a live creator after {took:.2f} s"

    creator.kill()
    t0 = os.times().elapsed
    attach_fails(scen, lang, ring, DAMAGED.format(ring=ring))
    assert os.times().elapsed - t0 < 0.5, "damaged ring not said at once"

    path = f"/dev/shm/pbring.{ring}"
    os.truncate(path, 100)
    t0 = os.times().elapsed
    attach_fails(scen, lang, ring, DAMAGED.format(ring=ring))
    assert os.times().elapsed - t0 < 0.5, "truncated ring not said at once"

    with open(path, "r+b") as f:
        f.truncate(8192)
        f.write(b"NOTARING")
    t0 = os.times().elapsed
    attach_fails(scen, lang, ring, "not a pbring ring (bad magic)")
    assert os.times().elapsed - t0 < 0.5, "foreign file not said at once"
