# SPDX-License-Identifier: MIT
"""Reader and producer throughput of the Python binding.

    python benchmarks/bench.py [--messages N] [--size BYTES]

A gating reader is opened first; the ring (2^20 slots) is then filled by
the C `pbring produce` ($PBRING_BIN) or, without it, by a Python producer,
and only the reading is timed. Prints one line per measure and the
protobuf backend in use.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from google.protobuf.internal import api_implementation

import pbring


def fill(name: str, n: int, size: int) -> str:
    c = os.environ.get("PBRING_BIN")
    if c:
        subprocess.run([c, "produce", name, "--count", str(n), "--size",
                        str(size), "--no-wait"], check=True,
                       stderr=subprocess.DEVNULL)
        return "C"
    with pbring.Ring.attach(name) as r, r.producer() as p:
        ev = pbring.DeviceEvent(id=f"{os.getpid()}-0",
                                blob=pbring.demo.blob_pattern(size))
        for i in range(n):
            ev.seq = i
            ev.status = i % 3
            ev.sent_ns = time.monotonic_ns()
            p.send_bytes(ev.SerializeToString())
    return "Python"


ROUND = 1 << 16  # messages per fill; the ring holds them all


def run(label: str, n: int, size: int, body) -> None:
    """Time @body draining @n messages, ROUND at a time: the ring is filled
    (untimed), then read; the first round only warms the mapping up."""
    name = f"bench-{os.getpid()}"
    pbring.unlink(name, missing_ok=True)
    rounds = max(1, n // ROUND)
    with pbring.Ring.create(name, slots=ROUND, slot_size=256,
                            schema="demo") as r:
        try:
            with pbring.Reader(r, timeout=0) as rd:
                dt = cpu = 0.0
                for k in range(rounds + 1):
                    who = fill(name, ROUND, size)
                    t, c = time.perf_counter(), time.process_time()
                    got = body(rd)
                    if k:
                        dt += time.perf_counter() - t
                        cpu += time.process_time() - c
                    assert got == ROUND, (got, ROUND)
        finally:
            r.unlink()
    n = rounds * ROUND
    print(f"{label:<34} {n / dt / 1e6:7.3f} M msg/s wall, "
          f"{n / cpu / 1e6:7.3f} M msg/s per CPU second  "
          f"({n} msgs, {size}-byte blob, filled by {who})")


def views(rd):
    k = 0
    for _ in rd.views():
        k += 1
    return k


def peek_batch(rd):
    k = 0
    try:
        while True:
            k += len(rd.peek_batch(64))
            rd.release()
    except pbring.RingEmpty:
        return k


def peek_release(rd):
    k = 0
    try:
        while True:
            rd.peek()
            rd.release()
            k += 1
    except pbring.RingEmpty:
        return k


def recv(rd):
    cls = pbring.DeviceEvent
    k = 0
    try:
        while True:
            rd.recv(cls)
            k += 1
    except pbring.RingEmpty:
        return k


def recv_noverify(rd):
    rd.verify_crc = False
    return recv(rd)


def send(n: int, size: int) -> None:
    name = f"bench-{os.getpid()}"
    pbring.unlink(name, missing_ok=True)
    with pbring.Ring.create(name, slots=1 << 20, slot_size=256,
                            schema="demo") as r:
        try:
            ev = pbring.DeviceEvent(id="bench-0",
                                    blob=pbring.demo.blob_pattern(size))
            with r.producer() as p:
                t, c = time.perf_counter(), time.process_time()
                for i in range(n):
                    ev.seq = i
                    ev.sent_ns = time.monotonic_ns()
                    p.send(ev)
                dt = time.perf_counter() - t
                cpu = time.process_time() - c
        finally:
            r.unlink()
    print(f"{'send(DeviceEvent)':<34} {n / dt / 1e6:7.3f} M msg/s wall, "
          f"{n / cpu / 1e6:7.3f} M msg/s per CPU second  "
          f"({n} msgs, {size}-byte blob, no reader)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=16)
    a = ap.parse_args()
    print(f"protobuf {api_implementation.Type()} backend, "
          f"libpbring {pbring.version()}, Python {sys.version.split()[0]}")
    run("views() [peek+release, batched]", a.messages, a.size, views)
    run("peek_batch(64)+release()", a.messages, a.size, peek_batch)
    run("peek()+release() [one at a time]", a.messages // 4, a.size,
        peek_release)
    run("recv(DeviceEvent) [CRC checked]", a.messages // 2, a.size, recv)
    run("recv(DeviceEvent) [verify=False]", a.messages // 2, a.size,
        recv_noverify)
    send(a.messages // 4, a.size)


if __name__ == "__main__":
    main()
