# SPDX-License-Identifier: MIT
"""`pbring` on any typed ring (docs/CLI.md): `create --schema FILE --type`
from a .proto or a FileDescriptorSet (the canonical schema bytes of
FORMAT.md 3.2, byte for byte protoc's), `produce --from-json` and
`consume` (proto3 JSON) round trips with a user schema that has every
field kind, `consume --raw`, `schema`, and every bad input with its exit
status, in one line, with nothing committed."""
import base64
import json
import os
import random
import shutil
import struct
import subprocess
import sys

import pytest

from cliutil import (DEMO_TYPE, SB_SCHEMA_OFF, SB_SLOT_SIZE, SB_SLOTS_OFF,
                     SLOT_HDR, Shm, consume_summary, shm_path, stat_json,
                     without_waiting)

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
READING_REL = "acme/telemetry/v1/reading.proto"
READING = os.path.join(PROTO_DIR, READING_REL)
TYPE = "acme.telemetry.v1.Reading"
HINT = " (see 'pbring create --help')\n"
PROTOC = shutil.which("protoc")
needs_protoc = pytest.mark.skipif(PROTOC is None, reason="protoc not found")


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h or 1


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def protoc_set(tmp_path, *extra, name="protoc.fds"):
    out = tmp_path / name
    subprocess.run([PROTOC, "-I", PROTO_DIR, "-I", "/usr/include", *extra,
                    f"--descriptor_set_out={out}", READING_REL], check=True,
                   cwd=PROTO_DIR)
    return out


def stored_schema(pbring_path, name):
    cp = subprocess.run([pbring_path, "schema", name, "--descriptor-set", "-"],
                        capture_output=True, timeout=60)
    assert cp.returncode == 0, cp
    return cp.stdout


def create_reading(pbring, name, *geometry):
    r = pbring("create", name, "--schema", READING, "--type", TYPE,
               "-I", PROTO_DIR, "--slot-size", 4096, *geometry)
    assert (r.rc, r.out, r.err) == (0, "", ""), r


# --- create -----------------------------------------------------------------

@needs_protoc
def test_create_from_proto_is_protocs_bytes(pbring, pbring_path, ring,
                                            tmp_path):
    name = ring()
    create_reading(pbring, name)
    s = stat_json(pbring, name)
    assert s["msg_type"] == TYPE
    stored = stored_schema(pbring_path, name)
    assert stored == protoc_set(tmp_path, "--include_imports").read_bytes()
    assert s["schema_len"] == len(stored)
    assert s["schema_hash"] == "%016x" % fnv1a64(stored)
    with Shm(name) as m:
        off = m.u64(SB_SCHEMA_OFF)
        assert bytes(m.m[off:off + len(stored)]) == stored


@needs_protoc
def test_create_without_include_dir_uses_the_package_layout(
        pbring, pbring_path, ring, tmp_path):
    """No -I: a .proto under a directory path spelling its package (as
    proto/acme/telemetry/v1/ for acme.telemetry.v1) is named, and its
    imports found, from that root, as protoc -I proto would."""
    name = ring()
    r = pbring("create", name, "--schema",
               os.path.join(PROTO_DIR, "acme/telemetry/v1/reading.proto"),
               "--type", TYPE)
    assert r.rc == 0, r
    stored = stored_schema(pbring_path, name)
    assert stored == protoc_set(tmp_path, "--include_imports").read_bytes()


@needs_protoc
@pytest.mark.parametrize("extra", [[], ["--include_source_info"]],
                         ids=["plain", "source-info"])
def test_create_from_descriptor_set(pbring, pbring_path, ring, tmp_path,
                                    extra):
    """Any protoc's set becomes the canonical bytes (source info dropped)."""
    fds = protoc_set(tmp_path, "--include_imports", *extra)
    name, ref = ring(), ring()
    r = pbring("create", name, "--schema", fds, "--type", TYPE)
    assert (r.rc, r.out, r.err) == (0, "", ""), r
    create_reading(pbring, ref)
    assert stored_schema(pbring_path, name) == stored_schema(pbring_path, ref)
    assert stat_json(pbring, name)["schema_hash"] == \
        stat_json(pbring, ref)["schema_hash"]


def test_create_from_proto_with_imports_under_its_directory(pbring, ring,
                                                            tmp_path):
    """Without -I, imports are looked for under the file's directory."""
    (tmp_path / "dep.proto").write_text(
        'syntax = "proto3";\npackage t;\nmessage D { int32 x = 1; }\n')
    (tmp_path / "top.proto").write_text(
        'syntax = "proto3";\npackage t;\nimport "dep.proto";\n'
        'message Top { D d = 1; }\n')
    name = ring()
    r = pbring("create", name, "--schema", tmp_path / "top.proto",
               "--type", "t.Top")
    assert (r.rc, r.err) == (0, ""), r
    assert stat_json(pbring, name)["msg_type"] == "t.Top"


@needs_protoc
@pytest.mark.parametrize("source", ["proto", "fds"])
def test_create_unknown_type(pbring, ring, tmp_path, source):
    path = READING if source == "proto" else \
        protoc_set(tmp_path, "--include_imports")
    name = ring()
    r = pbring("create", name, "--schema", path, "--type", "acme.Nope",
               "-I", PROTO_DIR)
    assert r.rc == 2, r
    assert r.out == "" and len(r.err_lines) == 1, r
    assert r.err.startswith(f"pbring create: --type: no message 'acme.Nope' "
                            f"in {path} (its messages: "), r.err
    assert "acme.telemetry.v1.Reading" in r.err
    assert "acme.telemetry.v1.Tree" in r.err
    assert r.err.endswith(")" + HINT)
    assert not os.path.exists(shm_path(name))


@needs_protoc
def test_create_descriptor_set_missing_dependency(pbring, ring, tmp_path):
    fds = protoc_set(tmp_path)  # without --include_imports
    name = ring()
    r = pbring("create", name, "--schema", fds, "--type", TYPE)
    assert r.rc == 2, r
    assert (r.out, r.err) == ("", (
        "pbring create: acme/telemetry/v1/reading.proto: Import "
        "\"acme/telemetry/v1/common.proto\" was not found or had errors."
        + HINT))
    assert not os.path.exists(shm_path(name))


def test_create_proto_syntax_error(pbring, ring, tmp_path):
    bad = tmp_path / "bad.proto"
    bad.write_text('syntax = "proto3";\nmessage A { int32 x = 1 }\n')
    name = ring()
    r = pbring("create", name, "--schema", bad, "--type", "A")
    assert r.rc == 2, r
    assert (r.out, r.err) == (
        "", 'pbring create: bad.proto:2:25: Expected ";".' + HINT)
    assert not os.path.exists(shm_path(name))


def test_create_proto_missing_import(pbring, ring, tmp_path):
    """reading.proto away from its package layout, without -I: its imports
    are found nowhere."""
    name = ring()
    moved = tmp_path / "reading.proto"
    moved.write_bytes(open(READING, "rb").read())
    r = pbring("create", name, "--schema", moved, "--type", TYPE)
    assert r.rc == 2, r
    assert (r.out, r.err) == ("", "pbring create: acme/telemetry/v1/"
                              "common.proto: File not found." + HINT)
    assert not os.path.exists(shm_path(name))


def test_create_not_a_schema(pbring, ring, tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\xff\xff\xff")
    name = ring()
    r = pbring("create", name, "--schema", junk, "--type", TYPE)
    assert r.rc == 2, r
    assert (r.out, r.err) == ("", (
        f"pbring create: --schema: '{junk}' is not a serialized "
        "FileDescriptorSet (a .proto file's name ends in .proto)" + HINT))
    assert not os.path.exists(shm_path(name))


# --- messages for the round trip --------------------------------------------

LOC_URL = "type.googleapis.com/acme.telemetry.v1.Location"
I64 = (-2**63, 2**63 - 1, 0, -1, 1)
U64 = (2**64 - 1, 0, 1)


def tree(rng, depth):
    t = {"name": f"n{depth}-{rng.randrange(100)}"}
    if depth > 0:
        t["children"] = [tree(rng, depth - 1)
                         for _ in range(rng.randrange(1, 3))]
    return t


def location(rng):
    loc = {"lat": rng.choice([0.5, -12.25, 48.125]),
           "lon": rng.choice([1.5, 2.75, -179.5])}
    if rng.random() < 0.5:
        loc["siteName"] = rng.choice(["site", "Zürich", "東京", "a\u0000b"])
    return loc


def reading(rng, i):
    """A varied Reading in canonical proto3 JSON (as protobuf prints it:
    defaults left out, 64-bit integers as strings, enums by name unless
    unknown)."""
    m = {}
    pick = lambda: rng.random() < 0.45  # noqa: E731
    if pick():
        m["fDouble"] = rng.choice([1.5, -2.25, 3.141592653589793, 1e+100,
                                   "Infinity", "-Infinity", 5e-324])
    if pick():
        m["fFloat"] = rng.choice([0.5, -3.75, 1024.0, "Infinity"])
    if pick():
        m["fInt32"] = rng.choice([-2**31, 2**31 - 1, 7, -1])
    if pick():
        m["fInt64"] = str(rng.choice(I64[:2] + I64[3:]))
    if pick():
        m["fUint32"] = rng.choice([2**32 - 1, 1, 99])
    if pick():
        m["fUint64"] = str(rng.choice([2**64 - 1, 1, 12345678901234567890]))
    if pick():
        m["fSint32"] = rng.choice([-2**31, 2**31 - 1, -5])
    if pick():
        m["fSint64"] = str(rng.choice([-2**63, 2**63 - 1, -5]))
    if pick():
        m["fFixed32"] = rng.choice([2**32 - 1, 3])
    if pick():
        m["fFixed64"] = str(rng.choice([2**64 - 1, 3]))
    if pick():
        m["fSfixed32"] = rng.choice([-2**31, 2**31 - 1])
    if pick():
        m["fSfixed64"] = str(rng.choice([-2**63, 2**63 - 1]))
    if pick():
        m["fBool"] = True
    if pick():
        m["deviceId"] = rng.choice(["dev-1", "h\u00e9llo", "\u0000", "nul\u0000in",
                                    "emoji \U0001F600", "quote\"back\\slash",
                                    "tab\tnl\n", "\u2028ctl\u0001"])
    if pick():
        raw = bytes(rng.choice([b"\0\0\0", b"\0\x01\0\xff", bytes(range(256)),
                                b"\xfe"]))
        m["raw"] = base64.b64encode(raw).decode()
    if pick():
        m["unit"] = rng.choice(["UNIT_CELSIUS", "UNIT_VOLT", 7, -3])
    if pick():
        m["where"] = location(rng)
    if pick():
        m["tree"] = tree(rng, rng.randrange(0, 5))
    if pick():
        m["samples"] = [rng.randrange(-2**31, 2**31) for _ in range(5)]
    if pick():
        m["unpacked"] = [rng.randrange(0, 2**32) for _ in range(3)]
    if pick():
        m["tags"] = ["a", "", "c\u0000"]
    if pick():
        m["path"] = [location(rng) for _ in range(2)]
    if pick():
        m["units"] = ["UNIT_UNSPECIFIED", "UNIT_VOLT", 42]
    if pick():
        m["gauges"] = {"t": 21.5, "": -1.0, "ü": 0.25}
    if pick():
        m["byId"] = {str(k): location(rng) for k in (-2**63, 2**63 - 1, 0)}
    if pick():
        which = rng.randrange(3)
        if which == 0:
            m["note"] = rng.choice(["", "note"])
        elif which == 1:
            m["code"] = str(rng.choice(I64))
        else:
            m["fix"] = location(rng)
    if pick():
        m["takenAt"] = rng.choice(["1970-01-01T00:00:00Z",
                                   "2024-02-29T23:59:59.123Z",
                                   "2038-01-19T03:14:08.000001Z",
                                   "1900-01-01T00:00:00.999999999Z"])
    if pick():
        m["exposure"] = rng.choice(["0s", "1.500s", "-2.000001s",
                                    "315576000000s"])
    if pick():
        m["extra"] = {"k": [1, "two", None, True, {"n": -2.5}], "e": {}}
    if pick():
        m["maybeCount"] = str(rng.choice(I64))
    if pick():
        m["maybeLabel"] = rng.choice(["", "label"])
    if pick():
        m["detail"] = rng.choice([
            {"@type": LOC_URL, "lat": 3.5, "siteName": "any"},
            {"@type": LOC_URL},
            {"@type": "type.googleapis.com/google.protobuf.Duration",
             "value": "1s"},
            {"@type": "type.googleapis.com/acme.telemetry.v1.Reading",
             "fInt64": "-9223372036854775808", "tree": {"name": "x"}}])
    if pick():
        m["explicitZero"] = 0
    if pick():
        m["renamedInJson"] = f"renamed {i}"
    return m


def messages(n=60):
    rng = random.Random(20240611)
    msgs = [{}, {"explicitZero": 0},
            {"fInt64": "-9223372036854775808", "fUint64": "18446744073709551615",
             "deviceId": "\u0000\u00e9\u4e2d", "raw": "AAAA",
             "unit": 99, "tree": tree(rng, 6),
             "detail": {"@type": LOC_URL, "lat": 1.25}}]
    while len(msgs) < n:
        msgs.append(reading(rng, len(msgs)))
    return msgs


def python_with_protobuf():
    """An interpreter that has google.protobuf, or None."""
    for exe in (sys.executable, "/usr/bin/python3"):
        if exe and os.access(exe, os.X_OK) and subprocess.run(
                [exe, "-c", "import google.protobuf"],
                capture_output=True).returncode == 0:
            return exe
    return None


def normalise(v):
    """JSON values compared as protobuf's JSON means them: key order
    aside, numbers by value (1 and 1.0 alike)."""
    if isinstance(v, dict):
        return {k: normalise(x) for k, x in v.items()}
    if isinstance(v, list):
        return [normalise(x) for x in v]
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    return float(v)


def compare_as_messages(pbring_path, name, tmp_path, sent, got):
    """sent and got (lists of JSON lines) as messages of the ring's type:
    by google.protobuf if some Python here has it, and as normalised JSON
    (the sent lines are canonical) in any case."""
    assert len(got) == len(sent)
    for a, b in zip(sent, got):
        assert normalise(json.loads(a)) == normalise(json.loads(b)), (a, b)
    exe = python_with_protobuf()
    assert exe, ("comparing as messages needs google.protobuf in some "
                 "python3 here (./dev installs Debian's python3-protobuf)")
    fds = tmp_path / "ring.fds"
    fds.write_bytes(stored_schema(pbring_path, name))
    (tmp_path / "a.jsonl").write_text("\n".join(sent) + "\n", "utf-8")
    (tmp_path / "b.jsonl").write_text("\n".join(got) + "\n", "utf-8")
    cp = subprocess.run([exe, os.path.join(HERE, "pbcompare.py"), fds, TYPE,
                         tmp_path / "a.jsonl", tmp_path / "b.jsonl"],
                        capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert cp.stdout == f"ok {len(sent)}\n"
    return True


# --- produce --from-json and consume ----------------------------------------

def test_round_trip(pbring, pbring_path, ring, procs, tmp_path):
    name = ring()
    create_reading(pbring, name)
    msgs = messages()
    lines = [json.dumps(m, ensure_ascii=(i % 2 == 0))
             for i, m in enumerate(msgs)]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines[:10]) + "\n\n   \n" +
                   "\r\n".join(lines[10:]) + "\n", "utf-8")
    c = procs("consume", name, "--count", len(lines), "--timeout", 30)
    p = procs("produce", name, "--from-json", src)
    assert p.wait() == 0, p
    assert p.out == ""
    err = without_waiting(p.err)
    assert err.startswith(f"produce: {len(lines)} messages from {src} in ")
    assert err.endswith(" msg/s\n") and len(err.splitlines()) == 1
    assert c.wait() == 0, c
    s = consume_summary(c.err)
    assert (s["received"], s["crc errors"], s["content errors"], s["gaps"]) \
        == (len(lines), 0, 0, 0), c.err
    got = c.out_path.read_text("utf-8").split("\n")
    assert got[-1] == ""
    got = got[:-1]
    assert got[0] == "{}" and got[1] == '{"explicitZero":0}'  # compact
    compare_as_messages(pbring_path, name, tmp_path, lines, got)
    # --json prints the same; with the stored schema from stdin too
    r = pbring("consume", name, "--json", "--count", len(lines),
               "--timeout", 5)
    assert r.rc == 0, r
    assert r.out.split("\n")[:-1] == got


def test_non_canonical_json_in(pbring, pbring_path, ring, tmp_path):
    """What the JSON parser accepts beyond the canonical form, and how it
    comes back out."""
    cases = [
        ('{"f_int64": 5, "fUint64": 7}', {"fInt64": "5", "fUint64": "7"}),
        ('{"unit": 2, "units": [1, "UNIT_VOLT"]}',
         {"unit": "UNIT_VOLT", "units": ["UNIT_CELSIUS", "UNIT_VOLT"]}),
        ('{"json_renamed": "x"}', {"renamedInJson": "x"}),
        ('{"exposure": "1.5s", "takenAt": "2024-01-01T01:00:00+01:00"}',
         {"exposure": "1.500s", "takenAt": "2024-01-01T00:00:00Z"}),
        ('{"fInt32": "12", "fDouble": "2.5", "fBool": false}',
         {"fInt32": 12, "fDouble": 2.5}),
        ('{"raw": "_-8"}', {"raw": "/+8="}),  # URL-safe base64 accepted
        ('{"fInt32": 0, "deviceId": "", "samples": []}', {}),
    ]
    name = ring()
    create_reading(pbring, name)
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(c for c, _ in cases) + "\n")
    r = pbring("produce", name, "--from-json", src, "--no-wait")
    assert r.rc == 0, r
    r = pbring("consume", name, "--count", len(cases), "--timeout", 5)
    assert r.rc == 0, r
    got = [json.loads(l) for l in r.out.splitlines()]
    assert got == [want for _, want in cases]


BAD_LINES = [
    ('{"nope": 1}', "nope: Cannot find field."),
    ('{"fInt32": "abc"}', None),
    ('{"fInt32": 1.5}', None),
    ('{"deviceId": 5}', None),
    ('{"unit": "UNIT_NOPE"}', None),
    ('{"fInt32": 1', None),
    ('not json', None),
    ('[1, 2]', None),
    ('{"detail": {"@type": "type.googleapis.com/x.Unknown"}}', None),
    ('{"where": {"lat": "north"}}', None),
]


@pytest.mark.parametrize("bad,reason", BAD_LINES,
                         ids=[b for b, _ in BAD_LINES])
@pytest.mark.parametrize("before", [0, 2])
def test_bad_json_line(pbring, ring, tmp_path, bad, reason, before):
    """Exit 1, one line naming the line; every line before committed,
    nothing of it or after it."""
    name = ring()
    create_reading(pbring, name)
    src = tmp_path / "in.jsonl"
    good = [f'{{"fInt32": {i}}}' for i in range(before)]
    src.write_text("\n".join(good + ["", bad, '{"fInt32": 99}']) + "\n")
    r = pbring("produce", name, "--from-json", src, "--no-wait")
    assert r.rc == 1, r
    assert r.out == "" and len(r.err_lines) == 1, r
    prefix = f"pbring: {name}: line {before + 2}: "
    assert r.err.startswith(prefix), r.err
    if reason:
        assert r.err == prefix + reason + "\n"
    assert stat_json(pbring, name)["claimed"] == before


def test_from_json_stdin_and_summary(pbring_path, pbring, ring):
    name = ring()
    create_reading(pbring, name)
    cp = subprocess.run([pbring_path, "produce", name, "--from-json", "-",
                         "--no-wait"], input='{"fInt32": 1}\n{}\n',
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp
    assert cp.stderr.startswith("produce: 2 messages from - in "), cp.stderr
    assert stat_json(pbring, name)["claimed"] == 2


def test_from_json_waits_for_a_gating_reader(pbring, ring, tmp_path):
    name = ring()
    create_reading(pbring, name)
    src = tmp_path / "in.jsonl"
    src.write_text("{}\n")
    r = pbring("produce", name, "--from-json", src, "--timeout", "0.2")
    assert (r.rc, r.out, r.err) == (1, "", (
        f"pbring: waiting for a gating reader on {name} (start a consumer, "
        "or use --no-wait)\n"
        f"pbring: {name}: no gating reader attached (start a consumer "
        "first, or use --no-wait)\n"))
    assert stat_json(pbring, name)["claimed"] == 0


def test_from_json_missing_file(pbring, ring, tmp_path):
    name = ring()
    create_reading(pbring, name)
    r = pbring("produce", name, "--from-json", tmp_path / "nope", "--no-wait")
    assert (r.rc, r.out, r.err) == (
        1, "", f"pbring: {name}: {tmp_path / 'nope'}: No such file or "
        "directory\n")


def test_from_json_message_too_large(pbring, ring, tmp_path):
    name = ring()
    r = pbring("create", name, "--schema", READING, "--type", TYPE,
               "-I", PROTO_DIR, "--slot-size", 128)
    assert r.rc == 0, r
    src = tmp_path / "in.jsonl"
    src.write_text('{"fInt32": 1}\n{"deviceId": "%s"}\n' % ("x" * 100))
    r = pbring("produce", name, "--from-json", src, "--no-wait")
    assert (r.rc, r.out, r.err) == (1, "", (
        f"pbring: {name}: line 2: a message of 102 bytes does not fit in "
        "a slot (payload capacity 64 bytes of --slot-size 128)\n"))
    assert stat_json(pbring, name)["claimed"] == 1
    # With a trace context too: refused before anything is claimed.
    r = pbring("produce", name, "--from-json", src, "--no-wait",
               "--traceparent",
               "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    assert r.rc == 1 and "does not fit" in r.err, r
    assert stat_json(pbring, name)["claimed"] == 2


def test_from_json_on_demo_ring(pbring, ring, tmp_path):
    """The demo ring is a typed ring like any: its consumer checks what
    the JSON lines carry (seq continuity per id, the blob pattern)."""
    name = ring()
    assert pbring("create", name).rc == 0
    src = tmp_path / "in.jsonl"
    blob = base64.b64encode(bytes((i * 131 + 7) & 0xFF
                                  for i in range(5))).decode()
    src.write_text("".join(
        json.dumps({"id": "json-0", "seq": str(i), "blob": blob}) + "\n"
        for i in range(3)))
    r = pbring("produce", name, "--from-json", src, "--no-wait")
    assert r.rc == 0, r
    r = pbring("consume", name, "--json", "--count", 3, "--timeout", 5)
    assert r.rc == 0, r
    assert [json.loads(l) for l in r.out.splitlines()] == [
        {"id": "json-0", **({"seq": str(i)} if i else {}), "blob": blob}
        for i in range(3)]
    # a wrong blob is a content error of the demo check
    src.write_text(json.dumps({"id": "json-1", "blob": "AAAA"}) + "\n")
    assert pbring("produce", name, "--from-json", src, "--no-wait").rc == 0
    r = pbring("consume", name, "--quiet", "--timeout", "0.3")
    assert r.rc == 1, r
    assert r.err_lines[0] == (f"pbring: {name}: seq 3 (producer 0): payload "
                              f"is not a valid {DEMO_TYPE}")
    s = consume_summary(r.err_lines[1])
    assert (s["received"], s["crc errors"], s["content errors"]) == (3, 0, 1)


def test_untyped_ring(pbring, ring, tmp_path):
    name = ring()
    assert pbring("create", name, "--schema", "none").rc == 0
    src = tmp_path / "in.jsonl"
    src.write_text("{}\n")
    r = pbring("produce", name, "--from-json", src, "--no-wait")
    assert (r.rc, r.out, r.err) == (1, "", (
        f"pbring: {name}: ring is untyped: it has no schema to parse JSON "
        "with\n"))
    for args in ([], ["--json"], ["--quiet"]):
        r = pbring("consume", name, "--timeout", "0.1", *args)
        assert (r.rc, r.out, r.err) == (
            1, "", f"pbring: {name}: ring is untyped: use --raw\n"), args
    r = pbring("schema", name)
    assert (r.rc, r.out, r.err) == (
        1, "", f"pbring: {name}: ring is untyped (no schema)\n")
    assert stat_json(pbring, name)["participants"] == []


def test_consume_raw_frames(pbring, pbring_path, ring, tmp_path):
    name = ring()
    create_reading(pbring, name)
    src = tmp_path / "in.jsonl"
    src.write_text('{}\n{"fInt32": 1}\n{"deviceId": "\\u0000"}\n')
    assert pbring("produce", name, "--from-json", src, "--no-wait").rc == 0
    cp = subprocess.run([pbring_path, "consume", name, "--raw", "--count", "3",
                         "--timeout", "5"], capture_output=True, timeout=60)
    assert cp.returncode == 0, cp
    assert cp.stdout == (b"\0\0\0\0" + b"\2\0\0\0\x18\x01" +
                         b"\3\0\0\0\x72\x01\0")


def _slot(m, seq):
    return m.u64(SB_SLOTS_OFF) + seq * m.u32(SB_SLOT_SIZE)


def test_undecodable_and_crc_errors(pbring, ring, tmp_path):
    """A payload that is not a Reading (good CRC) is a content error; a
    payload whose CRC does not match is a CRC error; both exit 1."""
    name = ring()
    create_reading(pbring, name, "--slots", 16)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(f'{{"fInt32": {i + 1}}}\n' for i in range(5)))
    assert pbring("produce", name, "--from-json", src, "--no-wait").rc == 0
    with Shm(name) as m:
        bad = b"\x0a\x05ab"  # field 1 as a truncated length-delimited
        slot = _slot(m, 1)
        m.put("<I", slot + 8, len(bad))
        m.m[slot + SLOT_HDR:slot + SLOT_HDR + len(bad)] = bad
        m.put("<I", slot + 0x0C, crc32c(bad))
        m.m[_slot(m, 3) + SLOT_HDR] ^= 0x40  # CRC now wrong
    for args in ([], ["--quiet"]):
        r = pbring("consume", name, "--timeout", "0.3", *args)
        assert r.rc == 1, r
        # each named by its ring seq, once
        assert r.err_lines[:2] == [
            f"pbring: {name}: seq 1 (producer 0): payload is not a valid "
            f"{TYPE}",
            f"pbring: {name}: seq 3 (producer 0): CRC mismatch"], r.err
        s = consume_summary(r.err_lines[2])
        assert (s["received"], s["crc errors"], s["content errors"]) \
            == (3, 1, 1), r.err
        assert r.err_lines[3] == f"pbring: {name}: 2 corrupt messages"
        if not args:
            assert [json.loads(l) for l in r.out.splitlines()] == [
                {"fInt32": 1}, {"fInt32": 3}, {"fInt32": 5}]
    # --raw does not decode: only the CRC error
    r = pbring("consume", name, "--raw", "--timeout", "0.3")
    assert r.err_lines[0] == f"pbring: {name}: seq 3 (producer 0): CRC mismatch"
    s = consume_summary(r.err_lines[1])
    assert (r.rc, s["received"], s["crc errors"], s["content errors"]) \
        == (1, 4, 1, 0), r.err


@pytest.mark.parametrize("cmd", ["consume", "produce", "schema"])
def test_schema_not_matching_its_hash(pbring, ring, tmp_path, cmd):
    name = ring()
    create_reading(pbring, name)
    with Shm(name) as m:
        m.m[m.u64(SB_SCHEMA_OFF) + 10] ^= 0x01
    src = tmp_path / "in.jsonl"
    src.write_text("{}\n")
    args = {"consume": ["--timeout", "0.1"],
            "produce": ["--from-json", src, "--no-wait"], "schema": []}[cmd]
    r = pbring(cmd, name, *args)
    assert r.rc == 1, r
    assert r.out == "" and len(r.err_lines) == 1, r
    assert r.err.startswith(f"pbring: {name}: ring is damaged "), r.err
    assert r.err.endswith(f"; remove it with 'pbring rm {name}'\n")


# --- schema -----------------------------------------------------------------

def split_files(text):
    """`pbring schema` output -> ({file name: text}, first line)."""
    lines = text.split("\n")
    head, files, cur = lines[0], {}, None
    for line in lines[1:]:
        if line.startswith("// file: "):
            cur = line[len("// file: "):]
            files[cur] = []
        elif cur is not None:
            files[cur].append(line)
    return {k: "\n".join(v) for k, v in files.items()}, head


@needs_protoc
def test_schema_text_compiles_back(pbring, pbring_path, ring, tmp_path):
    name = ring()
    create_reading(pbring, name)
    r = pbring("schema", name)
    assert (r.rc, r.err) == (0, ""), r
    files, head = split_files(r.out)
    assert head == f"// message: {TYPE}"
    assert list(files) == [  # dependencies first, protoc's order
        "acme/telemetry/v1/common.proto", "google/protobuf/any.proto",
        "google/protobuf/duration.proto", "google/protobuf/struct.proto",
        "google/protobuf/timestamp.proto", "google/protobuf/wrappers.proto",
        READING_REL]
    assert 'json_name = "renamedInJson"' in files[READING_REL]
    src = tmp_path / "src"
    for fname, text in files.items():
        if fname.startswith("google/protobuf/"):
            continue
        (src / fname).parent.mkdir(parents=True, exist_ok=True)
        (src / fname).write_text(text)
    out = tmp_path / "back.fds"
    subprocess.run([PROTOC, "-I", src, "-I", "/usr/include",
                    "--include_imports", f"--descriptor_set_out={out}",
                    READING_REL], check=True, cwd=src)
    # the same messages: the set compiled from the text is the same schema
    back = ring()
    r = pbring("create", back, "--schema", out, "--type", TYPE)
    assert r.rc == 0, r
    assert stored_schema(pbring_path, back) == \
        stored_schema(pbring_path, name)
    assert pbring("schema", back).out == pbring("schema", name).out


def test_schema_of_demo_ring(pbring, pbring_path, ring):
    name = ring()
    assert pbring("create", name).rc == 0
    r = pbring("schema", name)
    assert r.rc == 0, r
    files, head = split_files(r.out)
    assert head == f"// message: {DEMO_TYPE}"
    assert list(files) == ["pbring/demo/v1/device.proto"]
    assert "message DeviceEvent {" in files["pbring/demo/v1/device.proto"]
    assert len(stored_schema(pbring_path, name)) == \
        stat_json(pbring, name)["schema_len"]


def test_schema_descriptor_set_to_file(pbring, pbring_path, ring, tmp_path):
    name = ring()
    create_reading(pbring, name)
    out = tmp_path / "out.fds"
    r = pbring("schema", name, "--descriptor-set", out)
    assert (r.rc, r.out, r.err) == (0, "", ""), r
    assert out.read_bytes() == stored_schema(pbring_path, name)
    r = pbring("schema", name, "--descriptor-set", tmp_path / "no" / "x")
    assert r.rc == 1 and len(r.err_lines) == 1, r
