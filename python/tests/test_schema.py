# SPDX-License-Identifier: MIT
"""Canonical schema bytes (docs/FORMAT.md §3.2) from generated code, and
the .proto text printer of `pbring schema`.

The schema a Python-made ring stores must be byte for byte what `protoc
--include_imports --descriptor_set_out` writes (C embeds that; Go's
pbring.SchemaOf rebuilds it), so that the three languages compute the
same schema_hash from the same .proto files.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
from google.protobuf import descriptor_pb2

import pbring
from conftest import (ACME_READING, PROTO_DIR, PY_CMD, WKT_INCLUDE,
                      protoc_bin, protoc_set)
from pbring import schema
from pbring.prototext import proto_text


def _names(fds: bytes):
    return [f.name for f in
            descriptor_pb2.FileDescriptorSet.FromString(fds).file]


def _diff(want: bytes, got: bytes) -> str:
    """Which files of two serialized sets differ, and how (for messages)."""
    a = descriptor_pb2.FileDescriptorSet.FromString(want).file
    b = descriptor_pb2.FileDescriptorSet.FromString(got).file
    out = [f"protoc {[f.name for f in a]}", f"python {[f.name for f in b]}"]
    for x, y in zip(a, b):
        if x.SerializeToString() != y.SerializeToString(deterministic=True):
            out.append(f"{x.name} differs:\n--- protoc\n{x}\n--- python\n{y}")
    return "\n".join(out)


def test_json_name_is_protocs(tmp_path):
    """schema.json_name() against protoc's own json_name for awkward
    field names."""
    names = ["f_int32", "a__b", "x_1", "_lead", "trail_", "FOO_bar",
             "already_camelCase", "a_b_c", "a1_b2", "u__", "x_y_Z"]
    body = "\n".join(f"  int32 {n} = {i};" for i, n in enumerate(names, 1))
    (tmp_path / "j.proto").write_text(
        f'syntax = "proto3";\npackage jn;\nmessage M {{\n{body}\n}}\n')
    fds = protoc_set(tmp_path, [tmp_path], "j.proto")
    got = descriptor_pb2.FileDescriptorSet.FromString(fds)
    for f in got.file[0].message_type[0].field:
        assert schema.json_name(f.name) == f.json_name, f.name


def test_generated_code_gives_protocs_bytes(acme):
    """The helper, on protoc-generated Python code of reading.proto (which
    imports common.proto and five well-known types), gives protoc's
    --include_imports bytes exactly: the same files in the same order,
    json_name on every field, no source info."""
    got = pbring.file_descriptor_set(acme.Reading)
    assert _names(got) == _names(acme.fds) == [
        "acme/telemetry/v1/common.proto", "google/protobuf/any.proto",
        "google/protobuf/duration.proto", "google/protobuf/struct.proto",
        "google/protobuf/timestamp.proto", "google/protobuf/wrappers.proto",
        ACME_READING]
    assert got == acme.fds, _diff(acme.fds, got)
    # instances and descriptors too; and a type of a dependency
    assert pbring.file_descriptor_set(acme.Reading()) == got
    assert pbring.file_descriptor_set(acme.Reading.DESCRIPTOR) == got
    assert pbring.file_descriptor_set(acme.Location) == \
        protoc_set(acme.gen, [PROTO_DIR], "acme/telemetry/v1/common.proto")


def test_ring_from_generated_code_hashes_as_protoc(acme, name):
    with pbring.Ring.create(name, slots=4, slot_size=256,
                            schema=acme.Reading) as r:
        assert r.info.msg_type == "acme.telemetry.v1.Reading"
        assert r.info.schema == acme.fds
        assert r.info.schema_hash == pbring.schema_hash(acme.fds)
        # a class built from the stored set serializes back to it
        assert pbring.file_descriptor_set(r.message_class) == acme.fds


def test_set_round_trips_through_message_class(acme):
    cls = pbring.message_class(acme.fds, "acme.telemetry.v1.Reading")
    assert pbring.file_descriptor_set(cls) == acme.fds


def test_demo_schema_from_generated_code(tmp_path):
    """protoc-generated Python code of the demo's device.proto gives the
    bytes the C library embeds (pbr_demo_schema(), the build's protoc
    output), and so does the demo class pbring builds from them."""
    protoc = protoc_bin()
    subprocess.run([protoc, f"-I{PROTO_DIR}", f"--python_out={tmp_path}",
                    "pbring/demo/v1/device.proto"], check=True)
    # Not importable as pbring.demo.v1 (the package is pbring): load the
    # file under a name of its own (it imports nothing).
    path = tmp_path / "pbring" / "demo" / "v1" / "device_pb2.py"
    spec = importlib.util.spec_from_file_location("_pbt_device_pb2", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    demo = pbring.demo_schema()
    assert pbring.file_descriptor_set(mod.DeviceEvent) == demo
    assert demo == protoc_set(tmp_path, [PROTO_DIR],
                              "pbring/demo/v1/device.proto")
    assert pbring.file_descriptor_set(pbring.DeviceEvent) == demo


# ------------------------------------------------------------ .proto text

PROTO2 = r'''
syntax = "proto2";
package pt.v2;
import "google/protobuf/descriptor.proto";
option java_package = "org.pt";
option optimize_for = CODE_SIZE;

enum Color { option allow_alias = true; RED = 1; CRIMSON = 1;
             BLUE = 2 [deprecated = true]; reserved 10 to 20, 30;
             reserved "GREEN"; }

message Outer {
  message Before { optional int32 a = 1; }
  map<string, Before> m1 = 1;
  message Middle { optional string s = 1 [default = "q\"uo\\te\n\001é"]; }
  map<int32, string> m2 = 2;
  required int64 id = 3 [default = -5];
  optional bytes b = 4 [default = "\000\377a"];
  optional Color c = 5 [default = BLUE];
  optional double d = 6 [default = inf];
  optional float f = 7 [default = -1.5e-7];
  repeated int32 packed_ints = 8 [packed = true];
  optional string renamed = 9 [json_name = "otherName", deprecated = true];
  oneof choice { string x = 10; Middle y = 11; }
  optional bool flag_ = 12;
  extensions 100 to 199, 1000 to max;
  reserved 50 to 60, 70;
  reserved "gone", "old";
  extend Outer { optional int32 inner_ext = 150; }
}

extend Outer { repeated string tags = 100; optional Outer.Before nb = 101; }
extend google.protobuf.FieldOptions { optional string my_opt = 51234; }

service Svc {
  rpc Get(Outer) returns (Outer.Before);
  rpc Stream(stream Outer) returns (stream Outer) { option deprecated = true; }
}
'''

PROTO3 = r'''
syntax = "proto3";
package pt.v3;
import public "p2.proto";
message Msg {
  optional int32 maybe = 1;
  oneof o { int32 a = 2; string b = 3; }
  optional string later = 4;
  map<string, pt.v2.Outer> outers = 5;
  repeated uint32 loose = 6 [packed = false];
  Msg self = 7;
  enum Inner { INNER_UNSPECIFIED = 0; INNER_ONE = 1; }
  Inner inner = 8;
  message Deep { message Deeper { map<int64, Deep> back = 1; } }
  Deep.Deeper deeper = 9;
}
'''


def _recompile(tmp_path, fds: bytes, sub: str) -> bytes:
    """Print every file of @fds as .proto text into tmp_path/sub, compile
    the last with protoc, return protoc's set."""
    root = tmp_path / sub
    files = descriptor_pb2.FileDescriptorSet.FromString(fds).file
    for f in files:
        p = root / f.name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(proto_text(f))
    return protoc_set(tmp_path, [root], files[-1].name)


def test_proto_text_round_trips_acme(acme, tmp_path):
    """The printed text of every file of the acme set (WKTs included)
    compiles back to the same descriptors, byte for byte."""
    got = _recompile(tmp_path, acme.fds, "acme")
    assert got == acme.fds, _diff(acme.fds, got)


@pytest.mark.parametrize("wkt", ["google/protobuf/descriptor.proto",
                                 "google/protobuf/type.proto",
                                 "google/protobuf/api.proto"])
def test_proto_text_round_trips_wkt(wkt, tmp_path):
    fds = protoc_set(tmp_path, [WKT_INCLUDE], wkt)
    got = _recompile(tmp_path, fds, "wkt")
    assert got == fds, _diff(fds, got)


def test_proto_text_round_trips_proto2_and_proto3(tmp_path):
    """proto2 (defaults, required, extensions, extension ranges, reserved,
    services, enum aliases and options, json_name) and proto3 (optional,
    oneofs, maps among nested types, public imports, unpacked)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "p2.proto").write_text(PROTO2)
    (src / "p3.proto").write_text(PROTO3)
    fds = protoc_set(tmp_path, [src, WKT_INCLUDE], "p3.proto")
    got = _recompile(tmp_path, fds, "out")
    assert got == fds, _diff(fds, got)
    text = proto_text(descriptor_pb2.FileDescriptorSet.FromString(
        fds).file[-1])
    assert "map<string, .pt.v2.Outer> outers = 5;" in text
    assert "optional int32 maybe = 1;" in text
    assert "oneof o {" in text


def test_schema_command(acme, name, tmp_path):
    """`python -m pbring schema`: the stored bytes exactly, or .proto text
    that protoc compiles back to the same set."""
    with pbring.Ring.create(name, slots=4, slot_size=256,
                            schema=acme.Reading):
        r = subprocess.run(PY_CMD + ["schema", name, "--descriptor-set",
                                     "-"], capture_output=True)
        assert r.returncode == 0 and r.stdout == acme.fds
        out = tmp_path / "set.fds"
        r = subprocess.run(PY_CMD + ["schema", name,
                                     f"--descriptor-set={out}"],
                           capture_output=True)
        assert r.returncode == 0 and out.read_bytes() == acme.fds
        r = subprocess.run(PY_CMD + ["schema", name], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
    text = r.stdout
    assert text.startswith("// message: acme.telemetry.v1.Reading\n\n"
                           "// file: acme/telemetry/v1/common.proto\n")
    root = tmp_path / "printed"
    chunks = text.split("// file: ")[1:]
    assert len(chunks) == 7
    for chunk in chunks:
        fname, body = chunk.split("\n", 1)
        p = root / fname
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body)
    assert protoc_set(tmp_path, [root], ACME_READING) == acme.fds


def test_schema_command_errors(ring_name):
    untyped, nameless = ring_name(), ring_name()
    pbring.Ring.create(untyped, slots=4, slot_size=128).close()
    pbring.Ring.create(nameless, slots=4, slot_size=128,
                       msg_type="x.v1.Y").close()
    for n, line in [
            (untyped, f"pbring: {untyped}: ring is untyped (no schema)"),
            (nameless, f"pbring: {nameless}: ring holds x.v1.Y without "
                       "its schema")]:
        r = subprocess.run(PY_CMD + ["schema", n], capture_output=True,
                           text=True)
        assert (r.returncode, r.stdout, r.stderr) == (1, "", line + "\n")
    r = subprocess.run(PY_CMD + ["schema"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr == (
        "pbring schema: expects exactly one RING (see 'pbring schema "
        "--help')\n")
    r = subprocess.run(PY_CMD + ["schema", "--help"], capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout.startswith(
        "usage: pbring schema RING [--descriptor-set FILE|-]\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([os.path.abspath(__file__)]))
