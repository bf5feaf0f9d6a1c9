# SPDX-License-Identifier: MIT
"""What ends a wait besides its condition and its timeout (as C's
check_wait): Ring.interrupt(), a signal handler, and the ring removed or
shrunk under the waiter."""
from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any, Iterator

import pytest

import pbring

PROMPT = 1.0


@pytest.fixture
def ring() -> Iterator[pbring.Ring]:
    name = f"pytest-wait-{os.getpid()}-{time.monotonic_ns()}"
    r = pbring.Ring.create(name, slots=4, slot_size=256)
    yield r
    r.close()
    pbring.unlink(name, missing_ok=True)


@pytest.mark.parametrize("wait", ["block", "spin", "yield"])
def test_interrupt_ends_reserve(ring: pbring.Ring, wait: str) -> None:
    rd = ring.reader(wait=wait)
    p = ring.producer(wait=wait)
    for i in range(4):
        p.send_bytes(bytes([i]))
    threading.Timer(0.05, ring.interrupt).start()
    t0 = time.monotonic()
    with pytest.raises(pbring.Interrupted) as ei:
        p.send_bytes(b"x", timeout=None)
    assert time.monotonic() - t0 < PROMPT
    assert str(ei.value) == f"{ring.name}: reserve: interrupted"
    assert ring.interrupted
    # Nothing committed is lost; calls that do not wait still work.
    assert [rd.recv_bytes(timeout=0) for _ in range(4)] == [
        bytes([i]) for i in range(4)]


@pytest.mark.parametrize("wait", ["block", "spin"])
def test_interrupt_ends_peek(ring: pbring.Ring, wait: str) -> None:
    rd = ring.reader(wait=wait)
    threading.Timer(0.05, ring.interrupt).start()
    t0 = time.monotonic()
    with pytest.raises(pbring.Interrupted):
        rd.peek(timeout=None)
    assert time.monotonic() - t0 < PROMPT


def test_signal_handler_runs_during_wait(ring: pbring.Ring) -> None:
    """Ctrl-C during a wait without limit: the handler's exception comes
    out of peek at once, and the ring is not interrupted by it."""
    class Stop(Exception):
        pass

    def handler(sig: int, frame: Any) -> None:
        raise Stop()

    rd = ring.reader()
    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        t0 = time.monotonic()
        with pytest.raises(Stop):
            rd.peek(timeout=None)
        assert time.monotonic() - t0 < PROMPT
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert not ring.interrupted
    with pytest.raises(pbring.RingEmpty):
        rd.peek(timeout=0.02)


def test_removed_while_waiting(ring: pbring.Ring) -> None:
    rd = ring.reader()
    ring.check()
    fresh: list[pbring.Ring] = []

    def remove() -> None:
        pbring.unlink(ring.name)
        fresh.append(pbring.Ring.create(ring.name, slots=4, slot_size=256))

    threading.Timer(0.05, remove).start()
    t0 = time.monotonic()
    with pytest.raises(pbring.RingRemoved) as ei:
        rd.peek(timeout=None)
    assert time.monotonic() - t0 < PROMPT
    assert str(ei.value) == f"{ring.name}: peek: ring was removed while in use"
    with pytest.raises(pbring.RingRemoved):
        ring.check()
    fresh[0].check()
    fresh[0].close()


def test_truncated_while_waiting(ring: pbring.Ring) -> None:
    ring.reader()
    p = ring.producer()
    for i in range(4):
        p.send_bytes(bytes([i]))
    path = f"/dev/shm/pbring.{ring.name}"
    os.truncate(path, os.path.getsize(path) // 2)
    t0 = time.monotonic()
    with pytest.raises(pbring.IncompatibleRing) as ei:
        p.send_bytes(b"x", timeout=5)
    assert ei.value.errno == 117  # EUCLEAN
    assert time.monotonic() - t0 < PROMPT
