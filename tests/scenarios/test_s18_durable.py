# SPDX-License-Identifier: MIT
"""Scenario 18: durable readers and source ids (format 1.3, FORMAT.md
§6.3, §8.4, §9.6), the same in every language.

- resume, ids `L-M`: a durable consumer `--durable d` in L reads a ring
  of 16 slots that a producer in L+2 fills with 400 messages; once it has
  released 100 or more it is SIGSTOPped, then SIGKILLed (so it dies
  holding the batch it peeked and had not released). The producer must
  block, not reap it: after several liveness periods stat shows `d`
  detached at its cursor P, nothing reaped, the claim no further than
  P + 16 (+ the producers' overshoot) and the producer still running. A
  consumer in M (another language) then opens `--durable d`, says
  "resumed at seq P", and receives exactly seqs P..399, in order, once
  each (no gap, no duplicate); the producer finishes. Then `pbring rm
  RING --reader d` drops it and stat lists no reader.
- source ids, ids `P`: a producer in P sends 5 demo messages with
  `--source 1733456789012-100`; a consumer in each language reads them
  with `--json --envelope` and finds `"source":"1733456789012-<100+i>"`
  on message i.
"""
import json
import time

import pytest

from scenlib import ACTING, LANGS, rotate

TOTAL = 400


def durable_entry(scen, ring, name):
    got = [p for p in scen.stat(ring)["participants"]
           if p.get("durable") == name]
    return got[0] if got else None


def demo_seqs(out):
    """The demo seq of each --json line (seq 0 is omitted by proto3 JSON)."""
    return [int(json.loads(line).get("seq", 0))
            for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize("lang", [pytest.param(x, id=f"{x}-{rotate(x, 1)}")
                                  for x in ACTING])
def test_durable_resume(scen, lang):
    resumer = rotate(lang, 1)
    ring = scen.ring("dur", slots=16, slot_size=256, durable=True)
    a = scen.spawn(lang, "durable", "consume", ring, "--durable", "d",
                   "--quiet", "--timeout", 20)
    scen.wait_joined(ring, a, "gating", pred=lambda p: p.get("durable") == "d")
    assert "durable reader d created at seq 0" in a.err, a.err
    prod = scen.spawn(rotate(lang, 2), "producer", "produce", ring,
                      "--count", TOTAL, "--size", 16, "--rate", 2000,
                      "--timeout", 20)
    deadline = time.monotonic() + 20
    while durable_entry(scen, ring, "d")["position"] < 100:
        assert time.monotonic() < deadline and a.alive(), a.err
        time.sleep(0.005)
    a.stop()
    a.kill()
    time.sleep(0.3)  # many liveness periods: a reaping producer goes on
    st = scen.stat(ring)
    d = durable_entry(scen, ring, "d")
    pos = d["position"]
    assert d["detached"] is True and d["alive"] is False, st
    assert 100 <= pos < TOTAL - 16, st
    assert st["readers_reaped"] == 0, st
    assert st["claimed"] <= pos + 16 + 1, st
    assert prod.alive(), f"the producer did not wait: {prod.err}"
    scen.note(f"killed {lang} reader at cursor {pos}, claim {st['claimed']}")
    b = scen.spawn(resumer, "resumer", "consume", ring, "--durable", "d",
                   "--json", "--count", TOTAL - pos, "--timeout", 20)
    assert b.wait() == 0, b.err
    assert f"durable reader d resumed at seq {pos}" in b.err, b.err
    assert demo_seqs(b.out) == list(range(pos, TOTAL)), b.out[-2000:]
    sm = b.summary
    assert sm is not None and (sm.get("gaps"), sm.get("duplicates"),
                               sm.get("lost")) == (0, 0, 0), b.err
    assert prod.wait() == 0, prod.err
    r = scen.run("c", "rm", ring, "--reader", "d")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert scen.stat(ring)["participants"] == []


@pytest.mark.parametrize("lang", [pytest.param(x, id=x) for x in ACTING])
def test_source_ids(scen, lang):
    ring = scen.ring("src", slots=16, slot_size=256)
    p = scen.run(lang, "produce", ring, "--count", 5, "--no-wait",
                 "--source", "1733456789012-100")
    assert p.returncode == 0, p.stderr
    for reader in LANGS:
        r = scen.run(reader, "consume", ring, "--json", "--envelope",
                     "--from", "oldest", "--count", 5, "--timeout", 5)
        assert r.returncode == 0, (reader, r.stderr)
        got = [json.loads(line).get("source")
               for line in r.stdout.splitlines()]
        assert got == [f"1733456789012-{100 + i}" for i in range(5)], (
            reader, r.stdout)
