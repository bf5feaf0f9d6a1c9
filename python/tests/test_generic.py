# SPDX-License-Identifier: MIT
"""Generic decode: a reader with no generated code builds the message class
from the FileDescriptorSet the ring carries.

The schema is made at test time: two .proto files (one importing the
other) compiled by protoc into a FileDescriptorSet; the ring is created by
the C library through a bare ctypes call of pbr_ring_create() with those
bytes; messages are encoded by protoc itself (--encode, from text format)
and written raw by C (pbr_producer_send, no CRC) and by Python (with CRC).
A fresh Python process, which has never seen the schema, reads them.
"""
from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
import sys
import textwrap

import pytest

import pbring

COMMON = """\
syntax = "proto3";
package pbtest.unseen.v1;
message Point { double x = 1; double y = 2; }
enum Kind { KIND_UNSPECIFIED = 0; KIND_A = 1; KIND_B = 2; }
"""

READING = """\
syntax = "proto3";
package pbtest.unseen.v1;
import "unseen/v1/common.proto";
message Reading {
  string sensor = 1;
  sint64 delta = 2;
  repeated Point path = 3;
  Kind kind = 4;
  map<string, int32> tags = 5;
  oneof payload { bytes raw = 6; string note = 7; }
  fixed32 flags = 8;
  optional bool ok = 9;
  message Inner { repeated uint64 ids = 1; }
  Inner inner = 10;
}
"""

MSG1 = """\
sensor: "thermo-7" delta: -5
path { x: 1.5 y: -2 } path { x: 0 y: 3.25 }
kind: KIND_B tags { key: "a" value: 1 } tags { key: "b" value: -2 }
raw: "\\x00\\xff\\x10" flags: 4294967295 ok: false
inner { ids: 1 ids: 18446744073709551615 }
"""
EXPECT1 = {
    "sensor": "thermo-7", "delta": "-5",
    "path": [{"x": 1.5, "y": -2.0}, {"y": 3.25}],
    "kind": "KIND_B", "tags": {"a": 1, "b": -2}, "raw": "AP8Q",
    "flags": 4294967295, "ok": False,
    "inner": {"ids": ["1", "18446744073709551615"]},
}
MSG2 = 'sensor: "é" note: "hello" kind: KIND_A\n'
EXPECT2 = {"sensor": "é", "note": "hello", "kind": "KIND_A"}

READER = textwrap.dedent("""\
    import json, sys
    from google.protobuf import descriptor_pool, json_format
    import pbring
    try:
        descriptor_pool.Default().FindMessageTypeByName(
            "pbtest.unseen.v1.Reading")
        sys.exit("the default pool already knows the schema")
    except KeyError:
        pass
    with pbring.Ring.attach(sys.argv[1]) as ring, \\
            pbring.Reader(ring, timeout=10) as rd:
        msgs = [rd.recv() for _ in range(2)]
        print(json.dumps({
            "type": type(msgs[0]).DESCRIPTOR.full_name,
            "file": type(msgs[0]).DESCRIPTOR.file.name,
            "crc": rd.last.has_crc,
            "msgs": [json_format.MessageToDict(m) for m in msgs]}))
""")


class CreateOpts(ctypes.Structure):  # struct pbr_create_opts, by hand
    _fields_ = [("slot_count", ctypes.c_uint32),
                ("slot_size", ctypes.c_uint32),
                ("max_producers", ctypes.c_uint32),
                ("max_readers", ctypes.c_uint32),
                ("mode", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("seq_base", ctypes.c_uint64),
                ("msg_type", ctypes.c_char_p), ("schema", ctypes.c_char_p),
                ("schema_len", ctypes.c_uint32),
                ("schema_hash", ctypes.c_uint64),
                ("crc", ctypes.c_uint32), ("crc_limit", ctypes.c_uint32)]


# The copy by hand must be as long as the C struct (which test_ctypes_drift
# checks _lib's against): C reads all of it, and bytes past a short copy
# are garbage (a random crc policy, and -EINVAL, once 1.1 appended crc).
assert ctypes.sizeof(CreateOpts) == ctypes.sizeof(pbring._lib.CreateOpts)


@pytest.fixture(scope="module")
def protoc() -> str:
    p = shutil.which("protoc")
    if not p:
        pytest.skip("protoc not found (Debian package protobuf-compiler)")
    return p


def compile_schema(protoc: str, root) -> bytes:
    d = root / "unseen" / "v1"
    d.mkdir(parents=True)
    (d / "common.proto").write_text(COMMON)
    (d / "reading.proto").write_text(READING)
    out = root / "reading.fds"
    subprocess.run([protoc, f"-I{root}", "--include_imports",
                    f"--descriptor_set_out={out}", "unseen/v1/reading.proto"],
                   check=True, cwd=root)
    return out.read_bytes()


def encode(protoc: str, root, text: str) -> bytes:
    return subprocess.run(
        [protoc, f"-I{root}", "--encode=pbtest.unseen.v1.Reading",
         "unseen/v1/reading.proto"], input=text.encode(), cwd=root,
        check=True, capture_output=True).stdout


def test_generic_decode_of_unseen_schema(protoc, tmp_path, name):
    fds = compile_schema(protoc, tmp_path)
    m1 = encode(protoc, tmp_path, MSG1)
    m2 = encode(protoc, tmp_path, MSG2)

    lib = ctypes.CDLL(pbring._lib._library_path())
    lib.pbr_schema_hash.restype = ctypes.c_uint64
    lib.pbr_schema_hash.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    lib.pbr_ring_create.argtypes = [ctypes.c_char_p,
                                    ctypes.POINTER(CreateOpts),
                                    ctypes.POINTER(ctypes.c_void_p)]
    lib.pbr_producer_open.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                      ctypes.POINTER(ctypes.c_void_p)]
    lib.pbr_producer_send.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                      ctypes.c_uint32, ctypes.c_uint,
                                      ctypes.c_int64]
    lib.pbr_producer_close.argtypes = [ctypes.c_void_p]
    lib.pbr_ring_detach.argtypes = [ctypes.c_void_p]
    o = CreateOpts(slot_count=8, slot_size=512,
                   msg_type=b"pbtest.unseen.v1.Reading", schema=fds,
                   schema_len=len(fds),
                   schema_hash=lib.pbr_schema_hash(fds, len(fds)))
    ring = ctypes.c_void_p()
    assert lib.pbr_ring_create(name.encode(), ctypes.byref(o),
                               ctypes.byref(ring)) == 0
    try:
        # the reader first (gating, from the oldest)
        rd = subprocess.Popen([sys.executable, "-c", READER, name],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
        p = ctypes.c_void_p()
        assert lib.pbr_producer_open(ring, None, ctypes.byref(p)) == 0
        assert lib.pbr_producer_send(p, m1, len(m1), 0, 10**9) == 0  # no CRC
        assert lib.pbr_producer_close(p) == 0
        with pbring.Ring.attach(name) as r, r.producer() as pp:
            assert r.info.schema == fds
            assert r.info.msg_type == "pbtest.unseen.v1.Reading"
            pp.send_bytes(m2)  # with CRC
        out, err = rd.communicate(timeout=60)
    finally:
        lib.pbr_ring_detach(ring)
    assert rd.returncode == 0, err
    got = json.loads(out)
    assert got["type"] == "pbtest.unseen.v1.Reading"
    assert got["file"] == "unseen/v1/reading.proto"
    assert got["crc"] is True
    assert got["msgs"] == [EXPECT1, EXPECT2]


def test_generic_class_in_process(protoc, tmp_path, name):
    fds = compile_schema(protoc, tmp_path)
    cls = pbring.message_class(fds, "pbtest.unseen.v1.Reading")
    assert pbring.message_class(fds, "pbtest.unseen.v1.Reading") is cls
    m = cls.FromString(encode(protoc, tmp_path, MSG1))
    assert m.path[0].x == 1.5 and m.tags["b"] == -2
    with pbring.Ring.create(name, schema=fds,
                            msg_type="pbtest.unseen.v1.Reading") as r:
        assert r.info.schema_hash == pbring.schema_hash(fds)
        assert r.message_class is cls
        with r.producer() as p, r.reader(timeout=1) as rd:
            p.send(m)  # a message of the generic class
            assert rd.recv() == m
    # the same set, serialized back from the class, builds it too
    again = pbring.file_descriptor_set(cls)
    cls2 = pbring.message_class(again, "pbtest.unseen.v1.Reading")
    m2 = cls2.FromString(m.SerializeToString())
    assert m2.SerializeToString(deterministic=True) == \
        m.SerializeToString(deterministic=True)
    assert m2.inner.ids[1] == 2**64 - 1


def test_corrupt_schema_is_reported(name):
    with pbring.Ring.create(name, schema=b"\xff\xff not a descriptor set",
                            msg_type="x.Y") as r:
        with pytest.raises(pbring.Corrupt) as ei:
            r.message_class
        assert "cannot build x.Y" in str(ei.value)
        assert ei.value.ring == name
