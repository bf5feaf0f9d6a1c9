# SPDX-License-Identifier: MIT
"""Scenario 8: a user's own schema through every command line (FORMAT
§3.2, docs/CLI.md).

The C command creates a ring of acme.telemetry.v1.Reading from its .proto
(a schema with every field kind, an import, well-known types, Any, maps,
a oneof, recursion, NUL and non-ASCII in strings). A gating consumer in
language Q reads while a producer in language P sends data/readings.jsonl
with `produce --from-json`; Q's `consume --json` lines must parse back to
the messages that were sent, compared as protobuf messages (pbcompare.py,
with the google.protobuf of the scenario's Python). All nine P x Q pairs.

ids: PRODUCER_LANG-CONSUMER_LANG.
"""
import os
import subprocess

import pytest

from scenlib import ACTING, commands

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
DATA = os.path.join(HERE, "data", "readings.jsonl")
TYPE = "acme.telemetry.v1.Reading"
CASES = [pytest.param(p, q, id=f"{p}-{q}") for p in ACTING for q in ACTING]


def lines(path):
    with open(path, encoding="utf-8") as f:
        return [ln for ln in f.read().split("\n") if ln.strip()]


@pytest.mark.parametrize("plang,qlang", CASES)
def test_user_schema_json_round_trip(scen, tmp_path, plang, qlang):
    sent = lines(DATA)
    ring = f"scen-{os.getpid()}-{plang}{qlang}-acme"
    scen.rings.append(ring)
    r = scen.run("c", "create", ring, "--schema",
                 os.path.join(ROOT, "proto/acme/telemetry/v1/reading.proto"),
                 "-I", os.path.join(ROOT, "proto"), "--type", TYPE,
                 "--slots", 16, "--slot-size", 4096)
    assert r.returncode == 0, r.stderr
    q = scen.spawn(qlang, "consumer", "consume", ring, "--json", "--count",
                   len(sent), "--timeout", 10)
    scen.wait_joined(ring, q, "gating")
    p = scen.spawn(plang, "producer", "produce", ring, "--from-json", DATA,
                   "--timeout", 10)
    assert p.wait() == 0, f"{plang} produce --from-json failed: {p.err}"
    assert q.wait() == 0, f"{qlang} consume --json failed: {q.err}"
    got = [ln for ln in q.out.split("\n") if ln.strip()]
    assert len(got) == len(sent), (len(got), len(sent))

    fds = tmp_path / "ring.fds"
    d = scen.run("c", "schema", ring, "--descriptor-set", fds)
    assert d.returncode == 0, d.stderr
    (tmp_path / "got.jsonl").write_text("\n".join(got) + "\n", "utf-8")
    py = commands()["py"][0]
    cmp = subprocess.run([py, os.path.join(ROOT, "tests/cli/pbcompare.py"),
                          fds, TYPE, DATA, tmp_path / "got.jsonl"],
                         capture_output=True, text=True, timeout=120)
    assert cmp.returncode == 0, (f"{plang} -> {qlang}: " + cmp.stdout +
                                 cmp.stderr)
    assert cmp.stdout == f"ok {len(sent)}\n"
