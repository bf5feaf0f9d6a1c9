# SPDX-License-Identifier: MIT
"""`python -m pbring` on a user's typed ring (docs/CLI.md): produce
--from-json, consume (proto3 JSON lines, --raw frames), the summary's crc
and content errors, and the refusals. The ring carries
acme.telemetry.v1.Reading, made from protoc-generated Python code."""
from __future__ import annotations

import json
import math
import mmap
import re
import struct
import subprocess
import time
from typing import List

import pytest
from google.protobuf import json_format

import pbring
from conftest import PY_CMD

SUMMARY = re.compile(
    r"consume \((gating|lossy)\): received (\d+), lost (\d+), missed (\d+), "
    r"gaps (\d+), duplicates (\d+), crc errors (\d+), content errors (\d+), "
    r"abandoned (\d+), rate \d+ msg/s, latency p50 (?:-|[\d.]+ [nmu]?s) "
    r"p99 (?:-|[\d.]+ [nmu]?s) max (?:-|[\d.]+ [nmu]?s) \(commit to "
    r"receive, including time queued in the ring"
    r"(?:; \d+ replayed messages not timed)?\)$", re.M)


def run(args, **kw):
    kw.setdefault("capture_output", True)
    return subprocess.run(PY_CMD + args, timeout=120, **kw)


def summary(stderr: str):
    m = SUMMARY.search(stderr)
    assert m, stderr
    return m


def tree(depth: int, width: int = 1):
    t = {"name": f"level-{depth}"}
    if depth:
        t["children"] = [tree(depth - 1, 1) for _ in range(width)]
    return t


def readings(acme) -> List:
    """60 varied Readings."""
    R, L = acme.Reading, acme.Location
    out = []
    I64, U64 = 2**63, 2**64
    ints = [(0, 0), (-I64, I64 - 1), (I64 - 1, U64 - 1), (-1, 1),
            (-(2**31), 2**32 - 1), (2**31 - 1, 0)]
    strs = ["", "plain", "é ü 中文 😀", "nul\x00inside\x00", "\x00",
            "quote\" back\\slash \n\t\r\b\f \x01\x1f \x7f",
            "\u2028\u2029", "x" * 300]
    for k in range(60):
        m = R()
        i, u = ints[k % len(ints)]
        m.f_int64, m.f_sint64, m.f_sfixed64 = i, i, i
        m.f_uint64, m.f_fixed64 = u, u
        m.f_int32 = [0, -(2**31), 2**31 - 1, -7][k % 4]
        m.f_sint32 = [-(2**31), 2**31 - 1, 0, 5][k % 4]
        m.f_sfixed32 = [-(2**31), 2**31 - 1, -1, 0][k % 4]
        m.f_uint32 = m.f_fixed32 = [0, 2**32 - 1, 1, 12345][k % 4]
        m.f_double = [0.0, -0.0, 1e300, -2.5e-308, 0.1, math.pi,
                      float("inf"), float("-inf"), 5e-324][k % 9]
        # not FLT_MAX: Python's json_format prints it as 3.4028235e+38,
        # which its own parser then refuses as "too large"
        m.f_float = [0.5, -1.25, 3e38, 0.1, float("-inf"), 1e-45][k % 6]
        m.f_bool = bool(k % 2)
        m.device_id = strs[k % len(strs)]
        m.raw = bytes([0, 0, k, 0, 255, 0])[: k % 7]
        m.unit = [0, 1, 2, 7, -3, 2**31 - 1][k % 6]  # 7 and on: unknown
        if k % 3:
            m.where.lat, m.where.lon = k / 3, -k / 7
            m.where.site_name = strs[(k + 1) % len(strs)]
        if k % 5 == 0:
            json_format.ParseDict(tree(k // 5 + 1, 1 + k % 2), m.tree)
        m.samples.extend(range(-k, k, 3))
        m.unpacked.extend([0, 2**32 - 1, k][: k % 4])
        m.tags.extend(strs[: k % 4])
        for j in range(k % 3):
            m.path.add(lat=j, lon=-j, site_name=f"p{j}")
        m.units.extend([0, 1, 99, -1][: k % 5])
        for j in range(k % 4):
            m.gauges[f"g{j}\x00é"] = j * 1.5 - 2
            m.by_id[(-1) ** j * (I64 - 1 - j)].lat = j
        oneof = k % 4
        if oneof == 1:
            m.note = strs[k % len(strs)]
        elif oneof == 2:
            m.code = -I64 if k % 8 == 2 else k
        elif oneof == 3:
            m.fix.site_name = "fix"
        if k % 6 == 0:
            m.taken_at.seconds, m.taken_at.nanos = 1700000000 + k, k * 1000
            m.exposure.seconds, m.exposure.nanos = -k, -k * 7
        if k % 7 == 0:
            json_format.ParseDict({"a": [1, None, "s", {"b": True}],
                                   "n": -0.5}, m.extra)
        if k % 4 == 1:
            m.maybe_count.value = -I64 + k
            m.maybe_label.value = ""
        if k % 3 == 0:
            m.detail.Pack(L(lat=k, lon=-1.5, site_name=f"any-{k}é\x00"))
        if k % 2:
            m.explicit_zero = 0
        m.json_renamed = "renamed" * (k % 2)
        out.append(m)
    return out


def to_line(m) -> str:
    return json_format.MessageToJson(m, indent=None)


def parse_line(line: str, cls):
    """A JSON line as a message, as produce --from-json parses it: "-0"
    keeps its sign (json_format.Parse would read it as the integer 0)."""
    obj = json.loads(line, parse_int=lambda s: -0.0 if s == "-0" else int(s))
    return json_format.ParseDict(obj, cls())


def frames(data: bytes) -> List[bytes]:
    out, i = [], 0
    while i < len(data):
        n = struct.unpack_from("<I", data, i)[0]
        out.append(data[i + 4:i + 4 + n])
        i += 4 + n
    assert i == len(data)
    return out


def same(a, b) -> bool:
    """Equal messages (NaN-safe: compared as deterministic bytes)."""
    return a.SerializeToString(deterministic=True) == \
        b.SerializeToString(deterministic=True)


@pytest.fixture
def typed(acme, ring_name):
    def make(slots=128, slot_size=4096) -> str:
        n = ring_name()
        pbring.Ring.create(n, slots=slots, slot_size=slot_size,
                           schema=acme.Reading).close()
        return n
    return make


def test_round_trip_json_and_raw(acme, typed, tmp_path):
    """produce --from-json -> consume (JSON lines) and consume --raw, both
    gating readers at once: every message comes back equal."""
    msgs = readings(acme)
    n = typed()
    src = tmp_path / "in.jsonl"
    # blank lines are skipped
    src.write_text("\n".join(to_line(m) + ("\n  \t" if i == 3 else "")
                             for i, m in enumerate(msgs)) + "\n")
    args = ["--count", str(len(msgs)), "--timeout", "20"]
    cj = subprocess.Popen(PY_CMD + ["consume", n] + args,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    cr = subprocess.Popen(PY_CMD + ["consume", n, "--raw"] + args,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with pbring.Ring.attach(n) as ring:
        deadline = time.monotonic() + 20
        while sum(p.is_reader for p in ring.participants()) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    p = run(["produce", n, "--from-json", str(src)], text=True)
    out_j, err_j = cj.communicate(timeout=60)
    out_r, err_r = cr.communicate(timeout=60)
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(rf"produce: {len(msgs)} messages from "
                        rf"{re.escape(str(src))} in [\d.]+ s, \d+ msg/s\n",
                        p.stderr), p.stderr
    for rc, err in ((cj.returncode, err_j), (cr.returncode, err_r)):
        assert rc == 0, err
        m = summary(err.decode())
        assert m.group(2) == str(len(msgs))
        assert m.group(7, 8) == ("0", "0")
    # one object per "\n"-terminated line (U+2028 and the like are kept
    # as they are: not line ends for JSON lines)
    lines = out_j.decode("utf-8").split("\n")
    assert lines.pop() == ""
    assert len(lines) == len(msgs)
    for want, line in zip(msgs, lines):
        got = parse_line(line, acme.Reading)
        assert same(got, want), (line, want)
    raw = frames(out_r)
    assert len(raw) == len(msgs)
    for want, payload in zip(msgs, raw):
        assert same(acme.Reading.FromString(payload), want)
    # compact: the JSON is one object, no space after separators
    assert lines[1].startswith('{"') and '", "' not in lines[1]
    # Any resolved through the ring's schema, enums by name or number
    assert '"detail":{"@type":"type.googleapis.com/acme.telemetry.v1.' \
           'Location"' in lines[0]
    assert '"unit":7' in lines[3] and '"unit":"UNIT_CELSIUS"' in lines[1]
    assert '"renamedInJson":"renamed"' in lines[1]


def test_produce_from_stdin(acme, typed):
    n = typed()
    msgs = readings(acme)[:5]
    text = "".join(to_line(m) + "\n" for m in msgs)
    p = run(["produce", n, "--from-json", "-", "--no-wait"], input=text,
            text=True)
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(r"produce: 5 messages from - in [\d.]+ s, \d+ "
                        r"msg/s\n", p.stderr)
    with pbring.Ring.attach(n) as ring, ring.reader(timeout=1) as rd:
        for want in msgs:
            got = rd.recv()
            assert same(got, want)
            assert rd.last.has_crc and rd.last.timestamp_ns > 0


BAD = [
    ('{"bogus": 1}', r'no field named "bogus"'),
    ('{"fInt32": "abc"}', r"fInt32|f_int32"),
    ('{"fBool": 3}', r"fBool|f_bool"),
    ('{"fInt32": 1,', r"JSON"),
    ('[1, 2]', r"."),
    ('{"unit": "UNIT_NOPE"}', r"UNIT_NOPE"),
    ('{"detail": {"@type": "type.googleapis.com/x.Nope"}}', r"x\.Nope"),
    ('{"fUint32": -1}', r"fUint32|f_uint32"),
]


@pytest.mark.parametrize("bad,why", BAD, ids=[b for b, _ in BAD])
def test_bad_line_stops_with_its_number(acme, typed, bad, why):
    """Lines before the bad one are committed, nothing of it is, nothing
    after it is read; exit 1 with `pbring: RING: line N: REASON`."""
    n = typed()
    good = [to_line(m) for m in readings(acme)[:3]]
    text = "\n".join([good[0], "", good[1], good[2], bad, good[0]]) + "\n"
    p = run(["produce", n, "--from-json", "-", "--no-wait"], input=text,
            text=True)
    assert p.returncode == 1
    assert p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(f"pbring: {n}: line 5: "), p.stderr
    assert re.search(why, lines[0]), lines[0]
    with pbring.Ring.attach(n) as ring:
        assert ring.stats().claimed == 3
    c = run(["consume", n, "--raw", "--timeout", "0.3"])
    assert c.returncode == 0, c.stderr
    assert len(frames(c.stdout)) == 3


def test_not_utf8_and_missing_file(typed, tmp_path):
    n = typed()
    p = run(["produce", n, "--from-json", "-", "--no-wait"],
            input=b'{"deviceId": "\xff"}\n')
    assert p.returncode == 1
    assert p.stderr.decode() == f"pbring: {n}: line 1: not UTF-8\n"
    missing = tmp_path / "nope.jsonl"
    p = run(["produce", n, "--from-json", str(missing), "--no-wait"],
            text=True)
    assert p.returncode == 1
    assert p.stderr == f"pbring: {n}: {missing}: No such file or directory\n"


def test_produce_waits_for_a_gating_reader(typed):
    n = typed()
    p = run(["produce", n, "--from-json", "-", "--timeout", "0.2"],
            input="{}\n", text=True)
    assert p.returncode == 1
    assert p.stderr == (f"pbring: waiting for a gating reader on {n} (start "
                        "a consumer, or use --no-wait)\n"
                        f"pbring: {n}: no gating reader attached (start a "
                        "consumer first, or use --no-wait)\n")


def test_message_too_large(acme, typed):
    n = typed(slots=4, slot_size=128)
    p = run(["produce", n, "--from-json", "-", "--no-wait"],
            input='{"fInt32": 1}\n{"deviceId": "' + "x" * 200 + '"}\n',
            text=True)
    assert p.returncode == 1
    assert p.stderr == (f"pbring: {n}: line 2: a message of 203 bytes does "
                        "not fit in a slot (payload capacity 64 bytes of "
                        "--slot-size 128)\n")


def test_untyped_and_schemaless_rings(ring_name):
    untyped, nameless = ring_name(), ring_name()
    with pbring.Ring.create(untyped, slots=8, slot_size=128) as r, \
            r.producer() as p:
        p.send_bytes(b"\x00raw\xff")
        p.send_bytes(b"")
    pbring.Ring.create(nameless, slots=8, slot_size=128,
                       msg_type="x.v1.Y").close()
    c = run(["consume", untyped, "--timeout", "0.2"], text=True)
    assert (c.returncode, c.stdout, c.stderr) == (
        1, "", f"pbring: {untyped}: ring is untyped: use --raw\n")
    p = run(["produce", untyped, "--from-json", "-", "--no-wait"],
            input="{}\n", text=True)
    assert (p.returncode, p.stderr) == (
        1, f"pbring: {untyped}: ring is untyped: it has no schema to parse "
           "JSON with\n")
    c = run(["consume", untyped, "--raw", "--count", "2"])
    assert c.returncode == 0, c.stderr
    assert frames(c.stdout) == [b"\x00raw\xff", b""]
    assert c.stdout[:4] == b"\x05\x00\x00\x00"
    c = run(["consume", nameless, "--timeout", "0.2"], text=True)
    assert (c.returncode, c.stderr) == (
        1, f"pbring: {nameless}: ring holds x.v1.Y without its schema: use "
           "--raw\n")
    p = run(["produce", nameless, "--from-json", "-", "--no-wait"],
            input="{}\n", text=True)
    assert (p.returncode, p.stderr) == (
        1, f"pbring: {nameless}: ring holds x.v1.Y without its schema: "
           "cannot parse JSON\n")


def test_crc_and_content_errors_counted_apart(acme, typed):
    """One CRC mismatch and one payload that does not decode: `crc errors
    1, content errors 1`, exit 1; the good messages are printed."""
    n = typed(slots=16, slot_size=256)
    with pbring.Ring.attach(n) as ring, ring.producer() as p:
        p.send(acme.Reading(f_int32=1))
        p.send_bytes(b"\x0a\x05ab")            # truncated: does not decode
        p.send(acme.Reading(device_id="corrupt me"))
        p.send(acme.Reading(f_int32=4))
        with open(f"/dev/shm/pbring.{n}", "r+b") as f:
            m = mmap.mmap(f.fileno(), 0)
            slots_off = struct.unpack_from("<Q", m, 0x70)[0]
            m[slots_off + 2 * 256 + 64 + 5] ^= 1  # payload of seq 2
            m.close()
    c = run(["consume", n, "--timeout", "0.3"], text=True)
    assert c.returncode == 1
    m = summary(c.stderr)
    assert m.group(2, 7, 8) == ("2", "1", "1"), c.stderr
    # each named, by its ring seq and producer
    assert c.stderr.splitlines()[:2] == [
        f"pbring: {n}: seq 1 (producer 0): payload is not a valid "
        "acme.telemetry.v1.Reading",
        f"pbring: {n}: seq 2 (producer 0): CRC mismatch"], c.stderr
    assert c.stderr.splitlines()[-1] == f"pbring: {n}: 2 corrupt messages"
    assert c.stdout == '{"fInt32":1}\n{"fInt32":4}\n'
    # --raw: no decoding, so only the CRC error
    c = run(["consume", n, "--raw", "--timeout", "0.3"])
    m = summary(c.stderr.decode())
    assert m.group(2, 7, 8) == ("3", "1", "0")
    assert c.stderr.decode().splitlines()[0] == \
        f"pbring: {n}: seq 2 (producer 0): CRC mismatch"
    assert len(frames(c.stdout)) == 3


def test_usage_errors_of_new_options(typed):
    for args, msg in [
            (["consume", "r", "--json", "--raw"],
             "--json and --raw exclude each other"),
            (["consume", "r", "--quiet", "--raw"],
             "--quiet and --raw exclude each other"),
            (["consume", "r", "--json", "--quiet", "--raw"],
             "--json, --quiet and --raw exclude each other"),
            (["produce", "r", "--from-json", "f", "--count", "3"],
             "--from-json and --count exclude each other"),
            (["produce", "r", "--raw", "--from-json", "f"],
             "--from-json and --raw exclude each other"),
            (["produce", "r", "--from-json="], "--from-json: expects a FILE "
                                               "or -"),
            (["schema", "r", "--descriptor-set"],
             "option '--descriptor-set' needs a value")]:
        r = run(args, text=True)
        cmd = args[0]
        assert (r.returncode, r.stdout) == (2, ""), (args, r.stderr)
        assert r.stderr == f"pbring {cmd}: {msg} (see 'pbring {cmd} " \
                           "--help')\n", args


def test_quiet_and_json_flag_on_typed_ring(acme, typed):
    n = typed()
    with pbring.Ring.attach(n) as ring, ring.producer() as p:
        for k in range(3):
            p.send(acme.Reading(f_int64=k))
    c = run(["consume", n, "--quiet", "--count", "3"], text=True)
    assert c.returncode == 0 and c.stdout == ""
    assert summary(c.stderr).group(2) == "3"


def _c_json_peer():
    from conftest import _c_bin
    c = _c_bin()
    if not c:
        pytest.skip("C peer unavailable: PBRING_BIN is not set")
    h = subprocess.run([c, "produce", "--help"], capture_output=True,
                       text=True)
    if "--from-json" not in h.stdout:
        pytest.skip("the C command has no produce --from-json (yet)")
    return c


def test_json_between_python_and_c(acme, typed, tmp_path):
    """Python's produce --from-json read by C's consume (JSON and --raw),
    C's produce --from-json read by Python's consume: the same messages."""
    c = _c_json_peer()
    msgs = readings(acme)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(to_line(m) + "\n" for m in msgs))
    count = ["--count", str(len(msgs)), "--timeout", "20"]
    for producer, consumer in ((PY_CMD, [c]), ([c], PY_CMD)):
        n = typed()
        p = subprocess.run(producer + ["produce", n, "--no-wait",
                                       "--from-json", str(src)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        j = subprocess.run(consumer + ["consume", n] + count,
                           capture_output=True, timeout=60)
        r = subprocess.run(consumer + ["consume", n, "--raw"] + count,
                           capture_output=True, timeout=60)
        for x in (j, r):
            assert x.returncode == 0, x.stderr
            assert summary(x.stderr.decode()).group(2) == str(len(msgs))
        lines = j.stdout.decode("utf-8").split("\n")
        assert lines.pop() == "" and len(lines) == len(msgs)
        for want, line in zip(msgs, lines):
            assert same(parse_line(line, acme.Reading), want), line
        for want, payload in zip(msgs, frames(r.stdout)):
            assert same(acme.Reading.FromString(payload), want)


def test_negative_zero_keeps_its_sign(acme, typed):
    """Go and C print a negative zero double as -0; json.loads would make
    it the integer 0 and lose the sign."""
    n = typed()
    p = run(["produce", n, "--from-json", "-", "--no-wait"],
            input='{"fDouble": -0, "fInt32": -0, "fFloat": -0.0}\n',
            text=True)
    assert p.returncode == 0, p.stderr
    with pbring.Ring.attach(n) as ring, ring.reader(timeout=1) as rd:
        m = rd.recv()
    assert math.copysign(1, m.f_double) == -1
    assert math.copysign(1, m.f_float) == -1 and m.f_int32 == 0
