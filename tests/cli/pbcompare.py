# SPDX-License-Identifier: MIT
"""Compare two files of proto3 JSON lines as protobuf messages.

usage: pbcompare.py SCHEMA.fds TYPE A.jsonl B.jsonl

Run by a Python that has google.protobuf (test_typed.py finds one: its own
interpreter, or Debian's /usr/bin/python3 with python3-protobuf). Each line
of A is parsed as TYPE with the google.protobuf JSON parser, so is the line
of B, and the two messages must be equal (Any resolved through the schema).
Prints "ok N" and exits 0, or prints the first difference and exits 1.
"""
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, json_format
from google.protobuf import message_factory
# The well-known types, into the default pool (newer runtimes load them
# only when imported).
from google.protobuf import any_pb2, duration_pb2, struct_pb2  # noqa: F401
from google.protobuf import timestamp_pb2, wrappers_pb2  # noqa: F401


def message_class(fds_path, type_name):
    fds = descriptor_pb2.FileDescriptorSet()
    with open(fds_path, "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.Default()  # has the well-known types already
    for fdp in fds.file:
        if fdp.name.startswith("google/protobuf/"):
            continue
        try:
            pool.FindFileByName(fdp.name)
        except KeyError:
            pool.AddSerializedFile(fdp.SerializeToString())
    desc = pool.FindMessageTypeByName(type_name)
    get = getattr(message_factory, "GetMessageClass", None)
    if get is not None:
        return get(desc), pool
    return message_factory.MessageFactory(pool).GetPrototype(desc), pool


def main():
    fds_path, type_name, a_path, b_path = sys.argv[1:5]
    cls, pool = message_class(fds_path, type_name)
    with open(a_path, encoding="utf-8") as f:
        a_lines = [l for l in f.read().split("\n") if l.strip()]
    with open(b_path, encoding="utf-8") as f:
        b_lines = [l for l in f.read().split("\n") if l.strip()]
    if len(a_lines) != len(b_lines):
        print(f"{len(a_lines)} lines against {len(b_lines)}")
        return 1
    for i, (a, b) in enumerate(zip(a_lines, b_lines), 1):
        ma = json_format.Parse(a, cls(), descriptor_pool=pool)
        mb = json_format.Parse(b, cls(), descriptor_pool=pool)
        if ma != mb or ma.SerializeToString(deterministic=True) != \
                mb.SerializeToString(deterministic=True):
            print(f"line {i} differs:\n  {a}\n  {b}")
            return 1
    print(f"ok {len(a_lines)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
