#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A Redis consumer-group worker for a stream that `pbring bridge to-redis`
fills, decoding each message generically: the entry's `schema` field names
the hash pbring:schema:<hash>, whose `fds` is a FileDescriptorSet and
`type` the message's full name (docs/REDIS.md). Nothing here knows the
message type in advance.

    python3 examples/redis_worker.py --redis redis://127.0.0.1:6379 \\
        --stream events --group workers --consumer w1 [--json] [--count N]

Needs redis-py and protobuf (pip install redis protobuf). Prints each
message as one line of proto3 JSON with --json, and a summary on stderr.
"""
import argparse
import sys
import time

import redis
from google.protobuf import descriptor_pb2, descriptor_pool, json_format
from google.protobuf import message_factory


class Schemas:
    """Message classes by schema hash, each loaded from Redis once."""

    def __init__(self, r):
        self.r = r
        self.classes = {}

    def message_class(self, schema_hash):
        cls = self.classes.get(schema_hash)
        if cls is None:
            h = self.r.hgetall(b"pbring:schema:" + schema_hash)
            if b"fds" not in h or b"type" not in h:
                raise LookupError("no schema pbring:schema:%s in Redis"
                                  % schema_hash.decode())
            fds = descriptor_pb2.FileDescriptorSet.FromString(h[b"fds"])
            pool = descriptor_pool.DescriptorPool()
            for f in fds.file:
                pool.Add(f)
            desc = pool.FindMessageTypeByName(h[b"type"].decode())
            cls = message_factory.GetMessageClass(desc)
            self.classes[schema_hash] = cls
        return cls


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--redis", default="redis://127.0.0.1:6379")
    ap.add_argument("--stream", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--consumer", required=True)
    ap.add_argument("--count", type=int, default=0,
                    help="stop after N messages")
    ap.add_argument("--timeout", type=float, default=0,
                    help="stop when nothing arrives for SEC seconds")
    ap.add_argument("--json", action="store_true",
                    help="print each message as proto3 JSON")
    a = ap.parse_args()

    r = redis.Redis.from_url(a.redis)
    try:
        r.xgroup_create(a.stream, a.group, id="0", mkstream=True)
    except redis.ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise
    schemas = Schemas(r)
    out = sys.stdout
    done = bad = 0
    idle_since = time.monotonic()
    # own pending entries first (after a crash), then new ones
    start = "0"
    while not a.count or done < a.count:
        want = 256 if not a.count else min(256, a.count - done)
        res = r.xreadgroup(a.group, a.consumer, {a.stream: start},
                           count=want, block=None if start == "0" else 100)
        entries = res[0][1] if res else []
        if not entries:
            if start == "0":
                start = ">"
                continue
            if a.timeout and time.monotonic() - idle_since > a.timeout:
                break
            continue
        idle_since = time.monotonic()
        for entry_id, fields in entries:
            if fields and b"data" in fields and b"schema" in fields:
                msg = schemas.message_class(fields[b"schema"])()
                msg.ParseFromString(fields[b"data"])
                if a.json:
                    out.write(json_format.MessageToJson(msg, indent=None))
                    out.write("\n")
                done += 1
            else:
                bad += 1
        r.xack(a.stream, a.group, *[e[0] for e in entries])
    out.flush()
    print(f"redis_worker.py: decoded {done} messages, {bad} without data "
          f"or schema", file=sys.stderr)
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
