# SPDX-License-Identifier: MIT
"""Scenario 11: the CRC policy (FORMAT.md §6.2, format 1.1).

C creates a ring with `--crc 100` (UPTO 100 bytes), `--crc none` or
`--crc full` (only the C command creates rings; rings made by the Go and
Python libraries are checked against C's `stat` by their own tests); a
producer in the acting language sends demo messages of
64 and 300 bytes (`produce --size`); forge reads each slot's flag and
checks its CRC32C; a reader in the third language takes them all with no
CRC or content error. Every producer must follow the ring's policy, not
its own default, and every reader must accept payloads without a CRC.

ids: LANG-POLICY (LANG produces; the reader is the next language).
"""
import json

import pytest

from scenlib import ACTING, rotate

CASES = [
    # policy, per message size: the flag forge must find
    ("100", {64: "crc", 300: "none"}),
    ("none", {64: "none", 300: "none"}),
    ("full", {64: "crc", 300: "crc"}),
]


@pytest.mark.parametrize("lang", [pytest.param(x, id=x) for x in ACTING])
@pytest.mark.parametrize("policy,want", [pytest.param(p, w, id=p)
                                         for p, w in CASES])
def test_producers_follow_the_policy(scen, lang, policy, want):
    reader = rotate(lang, 1)
    ring = scen.ring(f"crc{policy}", slot_size=512, crc=policy)
    st = scen.run("c", "stat", ring, "--json")
    assert st.returncode == 0, st.stderr
    assert json.loads(st.stdout)["crc"] == (
        "upto" if policy.isdigit() else policy)
    sizes = list(want)
    for size in sizes:
        p = scen.spawn(lang, f"produce-{size}", "produce", ring, "--count",
                       1, "--size", size, "--no-wait", "--timeout", 5)
        assert p.wait() == 0, f"the {lang} producer failed"
    got = {size: scen.slot_crc(ring, k) for k, size in enumerate(sizes)}
    assert got == want, (
        f"ring made with --crc {policy}: the {lang} producer "
        f"left CRC flags {got}, want {want} (§6.2)")
    rd = scen.spawn(reader, "reader", "consume", ring, "--from", "oldest",
                    "--count", len(sizes), "--quiet", "--timeout", 5)
    assert rd.wait() == 0, f"the {reader} reader failed"
    sm = rd.summary
    assert sm is not None, f"no consume summary from the {reader} reader"
    assert (sm.get("received"), sm.get("crc errors"),
            sm.get("content errors")) == (len(sizes), 0, 0), sm
