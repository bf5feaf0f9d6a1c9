# SPDX-License-Identifier: MIT
"""Per-message cost of the Python producer: send(msg) of a small
DeviceEvent, and a 64 KiB blob sent by send() (serialized, then copied)
against the same blob written in place (reserve_message(), field_span(),
commit(msg)), under the CRC policies full and none.

    python benchmarks/send_cost.py [--repeat R] [--small N] [--large N]

No reader is attached, so nothing waits: this is the producer's own cost
(one thread, wall time per message, the best of R runs). "fill" is the
in-place path with the 64 KiB written into the view by one memoryview
assignment (a memcpy, as a producer copying from elsewhere would); "no
fill" leaves the bytes as they are, the cost of pbring alone (a camera or
NumPy writing into the view costs what it costs anyway).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable

from google.protobuf.internal import api_implementation

import pbring
from pbring import DeviceEvent, Ring

BLOB = 5  # DeviceEvent.blob


def best(repeat: int, n: int, body: Callable[[int], None]) -> float:
    """Seconds per call of @body(i), the best of @repeat runs of @n."""
    body(0)  # warm up: the mapping, the class check, the caches
    t_best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for i in range(n):
            body(i)
        t_best = min(t_best, (time.perf_counter() - t) / n)
    return t_best


def small_event() -> DeviceEvent:
    """A DeviceEvent of 64 bytes serialized, with typical values."""
    ev = DeviceEvent(id=f"{os.getpid()}-0", status=1, seq=123456,
                     sent_ns=time.monotonic_ns())
    ev.blob = pbring.demo.blob_pattern(64 - 2 - ev.ByteSize())
    assert ev.ByteSize() == 64, ev.ByteSize()
    return ev


def report(label: str, secs: float, size: int) -> None:
    print(f"{label:<44} {secs * 1e6:8.2f} us/msg  "
          f"{1 / secs / 1e3:9.1f} k msg/s  {size * (1 / secs) / 1e9:6.2f} "
          f"GB/s")


def measure(crc: str, a: argparse.Namespace) -> None:
    """The four measures on a ring of CRC policy @crc."""
    big = 64 * 1024
    pattern = pbring.demo.blob_pattern(big)
    name = f"bench-cost-{os.getpid()}"
    pbring.unlink(name, missing_ok=True)
    with Ring.create(name, slots=64, slot_size=128 * 1024, schema="demo",
                     crc=crc) as ring, ring.producer() as p:
        try:
            ev = small_event()

            def send_small(i: int) -> None:
                ev.seq = i
                p.send(ev)

            report(f"send(DeviceEvent) 64 B, crc {crc}",
                   best(a.repeat, a.small, send_small), 64)

            head = DeviceEvent(id=f"{os.getpid()}-0", status=1, seq=1,
                               sent_ns=time.monotonic_ns())
            whole = DeviceEvent()
            whole.CopyFrom(head)
            whole.blob = pattern
            size = whole.ByteSize()

            def send_big(i: int) -> None:
                whole.seq = i
                p.send(whole)

            def in_place(i: int) -> None:
                with p.reserve_message() as r:
                    r.field_span(BLOB, big)
                    head.seq = i
                    r.commit(head)

            def in_place_fill(i: int) -> None:
                with p.reserve_message() as r:
                    r.field_span(BLOB, big)[:] = pattern
                    head.seq = i
                    r.commit(head)

            report(f"send(DeviceEvent) 64 KiB blob, crc {crc}",
                   best(a.repeat, a.large, send_big), size)
            report(f"in place 64 KiB, fill, crc {crc}",
                   best(a.repeat, a.large, in_place_fill), size)
            report(f"in place 64 KiB, no fill, crc {crc}",
                   best(a.repeat, a.large, in_place), size)
        finally:
            ring.unlink()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--small", type=int, default=200_000)
    ap.add_argument("--large", type=int, default=5_000)
    a = ap.parse_args()
    print(f"protobuf {api_implementation.Type()} backend, "
          f"libpbring {pbring.version()}, Python {sys.version.split()[0]}")
    for crc in ("full", "none"):
        measure(crc, a)


if __name__ == "__main__":
    main()
