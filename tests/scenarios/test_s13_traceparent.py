# SPDX-License-Identifier: MIT
"""Scenario 13: a W3C trace context through the ring, every language pair
(FORMAT §6: trace_id, span_id, trace_flags with flag TRACE).

A producer in P sends into a demo ring: two demo events with
`produce --traceparent TP` (the encoder's path), one event from JSON with
`produce --from-json --traceparent TP2` (the copy path; flags 00, not
sampled) and one with no context. A consumer in Q reads them with `consume --json --envelope`, and each line must
carry the ring's seq, the producer id, a timestamp, the traceparent
unchanged (none on the last) and the message itself. All nine P x Q
pairs; bad `--traceparent` values are refused by every producer with
exit 2 and nothing sent.

ids: PRODUCER_LANG-CONSUMER_LANG.
"""
import json
import subprocess

import pytest

from scenlib import ACTING, commands

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TP2 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
EVENT = '{"id": "json-1", "status": 2, "seq": "7"}\n'
CASES = [pytest.param(p, q, id=f"{p}-{q}") for p in ACTING for q in ACTING]


@pytest.mark.parametrize("plang,qlang", CASES)
def test_traceparent_every_pair(scen, tmp_path, plang, qlang):
    ring = scen.ring("trace", slots=16, slot_size=512)
    r = scen.run(plang, "produce", ring, "--count", 2, "--no-wait",
                 "--traceparent", TP)
    assert r.returncode == 0, f"{plang} produce --traceparent: {r.stderr}"
    src = tmp_path / "one.jsonl"
    src.write_text(EVENT)
    r = scen.run(plang, "produce", ring, "--from-json", src, "--no-wait",
                 "--traceparent", TP2)
    assert r.returncode == 0, f"{plang} produce --from-json: {r.stderr}"
    r = scen.run(plang, "produce", ring, "--count", 1, "--no-wait")
    assert r.returncode == 0, r.stderr

    r = scen.run(qlang, "consume", ring, "--json", "--envelope", "--count",
                 4, "--timeout", 5)
    assert r.returncode == 0, f"{qlang} consume --envelope: {r.stderr}"
    lines = [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip()]
    assert [ln.get("traceparent") for ln in lines] == [TP, TP, TP2, None], \
        r.stdout
    assert [ln["seq"] for ln in lines] == ["0", "1", "2", "3"]
    for ln in lines:
        assert set(ln) <= {"seq", "producer", "timestamp_ns",
                           "traceparent", "message"}, ln
        assert isinstance(ln["producer"], int)
        assert int(ln["timestamp_ns"]) > 0
    assert [ln["message"].get("seq", "0") for ln in lines] == \
        ["0", "1", "7", "0"]
    assert lines[2]["message"]["id"] == "json-1"


@pytest.mark.parametrize("lang", [pytest.param(x, id=x) for x in ACTING])
@pytest.mark.parametrize("bad", [
    "nonsense", TP.upper(), "ff" + TP[2:], TP + "-",
    "00-" + "0" * 32 + TP[35:]], ids=["word", "upper", "ff", "long", "zero"])
def test_bad_traceparent_refused(scen, lang, bad):
    ring = scen.ring("badtp")
    r = scen.run(lang, "produce", ring, "--count", 1, "--no-wait",
                 "--traceparent", bad)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "--traceparent" in r.stderr and "W3C traceparent" in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2, r.stderr
    r = scen.run("c", "consume", ring, "--count", 1, "--timeout", 0.2,
                 "--quiet")
    assert "received 0" in r.stderr, r.stderr
    # nothing claimed either: a refusal is not a reserve and an abort
    assert scen.stat(ring)["claimed"] == 0


SEND_RAW = """
import sys
from pbring import Ring
with Ring.attach(sys.argv[1]) as r, r.producer() as p:
    p.send_bytes(bytes.fromhex(sys.argv[2]), traceparent=sys.argv[3])
    p.send_bytes(bytes.fromhex(sys.argv[4]))
"""


@pytest.mark.parametrize("lang", [pytest.param(x, id=x) for x in ACTING])
def test_invalid_utf8_id_is_a_content_error(scen, lang):
    """A demo event whose id is not UTF-8 (a proto3 string must be) is a
    content error in every consumer, envelope or not, never a line of
    JSON that is not JSON; the next message still arrives."""
    ring = scen.ring("utf8", slots=16, slot_size=512)
    bad = b'\x0a\x05a"\xff\xfeb\x18\x01'.hex()
    good = b"\x0a\x01y\x18\x03".hex()
    py = commands()["py"][0]
    r = subprocess.run([py, "-c", SEND_RAW, ring, bad, TP, good],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for extra in ([], ["--envelope"]):
        r = scen.run(lang, "consume", ring, "--json", *extra, "--count", 1,
                     "--timeout", 1)
        assert r.returncode == 1, (extra, r.returncode, r.stderr)
        assert "content errors 1" in r.stderr, r.stderr
        lines = r.stdout.splitlines()
        assert len(lines) == 1, r.stdout
        js = json.loads(lines[0])
        msg = js["message"] if extra else js
        assert msg["id"] == "y", lines[0]
