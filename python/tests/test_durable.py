# SPDX-License-Identifier: MIT
"""Durable readers and source ids (format 1.3, FORMAT.md §6.3, §9.6):
``Ring.create(durable_readers=True)``, ``Reader(ring, durable=NAME)``
(``resumed``), ``Reader.drop()``, ``Ring.drop_reader()``, source ids on
``send``/``commit`` and in ``SlotInfo.source``, and ``python -m pbring
consume --durable``."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import pbring
from conftest import PY_CMD
from pbring import Reader, Ring

TIMEOUT = 60


def tag(i: int) -> bytes:
    return i.to_bytes(8, "little")


def durable_of(ring: Ring, name: str) -> pbring.Participant:
    ps = [p for p in ring.participants() if p.durable and p.name == name]
    assert len(ps) == 1, ring.participants()
    return ps[0]


def test_create_detach_resume(name):
    with Ring.create(name, slots=16, slot_size=128,
                     durable_readers=True) as ring:
        assert ring.info.durable_readers and ring.info.format_minor == 3
        p = ring.producer()
        rd = Reader(ring, durable="bridge.a")
        assert rd.durable == "bridge.a" and not rd.resumed
        for i in range(5):
            p.send_bytes(tag(i))
        for i in range(2):
            assert bytes(rd.peek()) == tag(i)
            rd.release()
        rd.peek()  # held, not released: comes again
        rd.close()
        pt = durable_of(ring, "bridge.a")
        assert (pt.alive, pt.detached, pt.position) == (False, True, 2)
        rd = Reader(ring, durable="bridge.a", start="latest", timeout=0)
        assert rd.resumed
        assert [rd.recv_bytes() for _ in range(3)] == [tag(i)
                                                       for i in (2, 3, 4)]
        with pytest.raises(pbring.RingEmpty):
            rd.recv_bytes()
        rd.drop()
        assert ring.participants() == [
            x for x in ring.participants() if not x.is_reader]


def test_refusals(name, ring_name):
    with Ring.create(name, slots=4, slot_size=128) as plain:
        with pytest.raises(pbring.PbringError) as e:
            Reader(plain, durable="x")
        assert e.value.errno == errno.EOPNOTSUPP
        assert "durable_readers=True" in str(e.value)
        with pytest.raises(pbring.PbringError) as e:
            plain.drop_reader("x")
        assert e.value.errno == errno.EOPNOTSUPP
    with Ring.create(ring_name(), slots=4, slot_size=128,
                     durable_readers=True) as ring:
        for bad in ("", "a b", "x" * 32, "é"):
            with pytest.raises(pbring.InvalidArgument):
                Reader(ring, durable=bad)
        with pytest.raises(pbring.InvalidArgument):
            Reader(ring, durable="ok", lossy=True)
        with pytest.raises(pbring.InvalidArgument):
            Reader(ring, durable="ok", tap=True)
        with pytest.raises(pbring.RingNotFound) as e:
            ring.drop_reader("nobody")
        assert "no durable reader nobody" in str(e.value)
        held = Reader(ring, durable="held")
        # a second open of a live reader's name, even in this process
        with pytest.raises(pbring.Busy) as e:
            Reader(ring, durable="held")
        assert "in use by a live process" in str(e.value)
        with pytest.raises(pbring.Busy):
            ring.drop_reader("held")
        held.close()
        ring.drop_reader("held")
        assert not [p for p in ring.participants() if p.is_reader]


CHILD = r"""
import sys, time
from pbring import Reader, Ring
ring = Ring.attach(sys.argv[1])
rd = Reader(ring, durable=sys.argv[2], timeout=10)
for i in range(int(sys.argv[3])):
    assert rd.recv_bytes() == i.to_bytes(8, "little")
rd.release()
rd.peek_batch(4)  # held, unreleased
print("held", rd.stats().cursor, flush=True)
time.sleep(3600)
"""


def test_killed_reader_resumes(name):
    """A durable reader SIGKILLed holding peeks while a producer goes on:
    the producer waits (nothing reaped); a new open resumes at the dead
    one's cursor and gets every later message exactly once, in order."""
    total, released = 200, 10
    with Ring.create(name, slots=8, slot_size=128,
                     durable_readers=True) as ring:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, name, "victim", str(released)],
            stdout=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 10
            while not [p for p in ring.participants() if p.durable]:
                assert time.monotonic() < deadline, "child did not open"
                time.sleep(0.01)
            p = ring.producer()
            errs = []

            def produce() -> None:
                try:
                    for i in range(total):
                        p.send_bytes(tag(i), timeout=20)
                except Exception as e:  # reported by the test thread
                    errs.append(e)

            t = threading.Thread(target=produce)
            t.start()
            assert child.stdout is not None
            assert child.stdout.readline() == f"held {released}\n"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        time.sleep(0.15)  # several liveness periods
        st = ring.stats()
        assert st.readers_reaped == 0 and st.claimed <= released + 9, st
        pt = durable_of(ring, "victim")
        assert pt.detached and pt.position == released
        rd = Reader(ring, durable="victim", timeout=10)
        assert rd.resumed
        got = [int.from_bytes(rd.recv_bytes(), "little")
               for _ in range(total - released)]
        t.join(TIMEOUT)
        assert not errs, errs
        assert got == list(range(released, total))
        with pytest.raises(pbring.RingEmpty):
            rd.recv_bytes(timeout=0)
        rd.drop()


def test_source_ids(name):
    with Ring.create(name, slots=8, slot_size=128) as ring:  # cap 64
        p = ring.producer()
        rd = Reader(ring, timeout=0)
        p.send_bytes(b"12345", source=(1733456789012, 7))
        p.send_bytes(b"x" * 64)
        with pytest.raises(pbring.MessageTooLarge):
            p.send_bytes(b"x" * 49, source=(1, 2))
        with pytest.raises(ValueError):
            p.send_bytes(b"x", source=(-1, 2))
        with p.reserve(48) as buf:
            buf[:] = b"y" * 48
        r = p.reserve(49)
        with pytest.raises(pbring.MessageTooLarge):
            r.commit(source=(1, 2))
        r.commit(48, source=(2**64 - 1, 0x0102030405060708))
        assert ring.stats().claimed == 4
        want = [(1733456789012, 7), None, None, (2**64 - 1,
                                                 0x0102030405060708)]
        for w in want:
            rd.recv_bytes()
            assert rd.last is not None and rd.last.source == w, rd.last


def test_cli_consume_durable(name):
    with Ring.create(name, slots=16, slot_size=128, schema="demo",
                     durable_readers=True) as ring:
        p = ring.producer()
        for i in range(6):
            p.send(pbring.DeviceEvent(id="d", seq=i))
        env = dict(os.environ)
        args = [*PY_CMD, "consume", name, "--durable", "py1", "--json",
                "--timeout", "5"]
        r = subprocess.run([*args, "--count", "2"], capture_output=True,
                           text=True, timeout=TIMEOUT, env=env)
        assert r.returncode == 0, r.stderr
        assert "consume: durable reader py1 created at seq 0\n" in r.stderr
        r = subprocess.run([*args, "--count", "4"], capture_output=True,
                           text=True, timeout=TIMEOUT, env=env)
        assert r.returncode == 0, r.stderr
        assert "consume: durable reader py1 resumed at seq 2\n" in r.stderr
        seqs = [int(json.loads(line).get("seq", 0))
                for line in r.stdout.splitlines()]
        assert seqs == [2, 3, 4, 5], r.stdout
        bad = subprocess.run([*PY_CMD, "consume", name, "--durable", "a b"],
                             capture_output=True, text=True, timeout=TIMEOUT)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad
