# SPDX-License-Identifier: MIT
"""Reader metrics (format 1.2, FORMAT.md §5.4-§5.6): the latency histogram
a Reader(latency=True) keeps in the ring, the crc_errors / decode_errors
counted by Reader.verify(), Reader.reject() and recv(), as ReaderStats
and Ring.participants() show them, and the consume commands (Python's
and C's) leaving the same counts in the ring."""
from __future__ import annotations

import errno
import mmap
import re
import struct
import subprocess
import time
from typing import Dict, List

import pytest

import pbring
from conftest import PY_CMD, _c_bin
from pbring import DeviceEvent, Producer, Reader, Ring, _lib

BUCKETS = _lib.PBR_LATENCY_BUCKETS


def run(cmd: List[str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True,
                          timeout=timeout)


def flip(ring: Ring, seq: int, at: int = 0) -> None:
    """Change payload byte @at of message @seq behind the producer's back:
    its CRC32C no longer matches."""
    info = ring.info
    with open(f"/dev/shm/pbring.{ring.name}", "r+b") as f:
        m = mmap.mmap(f.fileno(), 0)
        slots_off = struct.unpack_from("<Q", m, 0x70)[0]
        slot = (seq - info.seq_base) % info.slot_count
        m[slots_off + slot * info.slot_size + 64 + at] ^= 0xFF
        m.close()


def send_untimed(p: Producer, data: bytes, crc: bool = False) -> None:
    """A message without timestamp (timestamp_ns 0: never timed), as C's
    pbr_producer_send() without PBR_SEND_TIMESTAMP sends it."""
    rc = _lib.pbr_producer_send(p._handle(), data, len(data),
                                1 if crc else 0, 0)  # PBR_SEND_CRC
    assert rc == 0, rc


def reader_entry(name: str, j: int) -> Dict[str, object]:
    """Reader entry @j of ring @name and its metrics block, read from the
    ring's file (FORMAT.md §5.4, §5.5): what is left once its reader is
    gone and Ring.participants() no longer lists it."""
    with open(f"/dev/shm/pbring.{name}", "rb") as f:
        b = f.read()
    poff = struct.unpack_from("<Q", b, 0x50)[0]
    np, nr = struct.unpack_from("<II", b, 0x38)
    e = poff + (np + j) * 128
    m = poff + (np + nr) * 128 + 256 * j
    u64 = lambda off: struct.unpack_from("<Q", b, off)[0]  # noqa: E731
    return {
        "flags": struct.unpack_from("<I", b, e + 0x0C)[0],
        "delivered": u64(e + 0x18), "bad": u64(e + 0x38),
        "crc_errors": u64(e + 0x40), "decode_errors": u64(e + 0x48),
        "own_block": u64(m) == u64(e + 0x30),
        "latency_sum_ns": u64(m + 0x08),
        "latency": [u64(m + 0x10 + 8 * i) for i in range(BUCKETS)],
    }


def me(ring: Ring, rd: Reader) -> pbring.Participant:
    """@rd's entry, as Ring.participants() describes it."""
    (p,) = [p for p in ring.participants()
            if p.is_reader and p.index == rd.index]
    return p


def demo_ring(name: str, slots: int = 16) -> Ring:
    return Ring.create(name, slots=slots, slot_size=256, schema="demo")


# --------------------------------------------------------------------------
# The API


def test_bounds_and_new_fields():
    assert pbring.LATENCY_BOUNDS_NS == _lib.PBR_LATENCY_BOUNDS_NS
    assert len(pbring.LATENCY_BOUNDS_NS) == BUCKETS - 1
    assert pbring.LATENCY_BOUNDS_NS[0] == 100
    assert pbring.LATENCY_BOUNDS_NS[-1] == 1_000_000_000
    p = pbring.Participant(0, True, True, 1, 1, 0, 0, 0, 0, 0)
    assert (p.bad, p.crc_errors, p.decode_errors, p.has_latency,
            p.latency_sum_ns, p.latency, p.latency_count) == \
        (0, 0, 0, False, 0, (0,) * BUCKETS, 0)
    st = pbring.ReaderStats(0, 0, 0, 0, 0)
    assert (st.missed, st.crc_errors, st.decode_errors) == (0, 0, 0)


def test_rings_are_format_1_3(name):
    """Rings are made at the newest minor (1.3), which keeps 1.2's
    reader metrics."""
    with demo_ring(name) as r:
        assert (r.info.format_major, r.info.format_minor) == (1, 3)


def test_latency_recorded_once_per_message(name):
    """Each message is timed once, when first peeked (a second peek of
    the same one is not a second observation); without latency=True the
    reader has no histogram (its block is stamped 0)."""
    with demo_ring(name) as r, Reader(r, timeout=1, latency=True) as rd, \
            Reader(r, timeout=1) as plain, r.producer() as p:
        for i in range(5):
            p.send(DeviceEvent(id="l", seq=i))
        v = rd.peek()
        assert rd.peek() is v
        first = me(r, rd)
        assert first.has_latency and first.latency_count == 5  # the batch
        rd.release()
        assert [rd.recv().seq for _ in range(4)] == [1, 2, 3, 4]
        got = me(r, rd)
        assert got.latency_count == 5 and got.latency == first.latency
        assert got.latency_sum_ns > 0
        assert [plain.recv().seq for _ in range(5)] == [0, 1, 2, 3, 4]
        q = me(r, plain)
        assert not q.has_latency and q.latency_count == 0 and \
            q.latency_sum_ns == 0


def test_latency_buckets_and_untimed(name):
    """A message waiting 1.05 s lands in the last bucket (> 1 s) and in
    the sum; one without timestamp is not timed at all."""
    with demo_ring(name) as r, Reader(r, timeout=1, latency=True) as rd, \
            r.producer() as p:
        send_untimed(p, DeviceEvent(id="u").SerializeToString())
        rd.recv()
        assert me(r, rd).latency_count == 0
        p.send(DeviceEvent(id="slow"))
        time.sleep(1.05)
        rd.recv()
        got = me(r, rd)
        assert got.latency == (0,) * (BUCKETS - 1) + (1,)
        assert 1_050_000_000 <= got.latency_sum_ns < 60_000_000_000
        assert rd.stats().delivered == 2


def test_latency_of_messages_from_the_c_producer(name, c_bin):
    """A Python reader times what `pbring produce` (C) commits."""
    with demo_ring(name, slots=256) as r, \
            Reader(r, timeout=2, latency=True) as rd:
        res = run([c_bin, "produce", name, "--count", "100", "--size",
                   "16"])
        assert res.returncode == 0, res.stderr
        for _ in range(100):
            rd.recv()
        got = me(r, rd)
        assert got.has_latency and got.latency_count == 100
        # each latency is above the bound below its bucket
        floor = sum(n * (pbring.LATENCY_BOUNDS_NS[i - 1] if i else 0)
                    for i, n in enumerate(got.latency))
        assert got.latency_sum_ns >= floor and got.latency_sum_ns > 0


def test_verify_counts_crc_errors(name):
    with demo_ring(name) as r, Reader(r, timeout=1) as rd, \
            r.producer() as p:
        p.send(DeviceEvent(id="a", seq=0))
        p.send(DeviceEvent(id="a", seq=1))
        flip(r, 1, at=1)
        v0, v1 = rd.peek_batch(2)
        rd.verify(v0)  # a good one: not counted
        with pytest.raises(pbring.Corrupt) as ei:
            rd.verify(v1)
        assert ei.value.errno == errno.EBADMSG and ei.value.seq == 1
        assert ei.value.what == "verify"
        with pytest.raises(pbring.Corrupt):
            rd.verify()  # every message peeked: the bad one again
        rd.release()
        assert rd.stats().crc_errors == 2
        assert me(r, rd).crc_errors == 2
        with pytest.raises(pbring.InvalidArgument):
            rd.verify()  # nothing peeked


def test_recv_counts_crc_and_decode_errors(name):
    with demo_ring(name) as r, Reader(r, timeout=1) as rd, \
            r.producer() as p:
        p.send(DeviceEvent(id="a", seq=0))
        send_untimed(p, b"\xff\xff\xff", crc=True)  # not a DeviceEvent
        p.send(DeviceEvent(id="a", seq=2))
        flip(r, 0, at=1)
        for seq in (0, 1):
            with pytest.raises(pbring.Corrupt) as ei:
                rd.recv()
            assert ei.value.seq == seq
        assert rd.recv().seq == 2
        st = rd.stats()
        assert (st.crc_errors, st.decode_errors, st.delivered) == (1, 1, 3)
        got = me(r, rd)
        assert (got.crc_errors, got.decode_errors, got.bad) == (1, 1, 0)


def test_recv_without_verify_counts_nothing(name):
    with demo_ring(name) as r, Reader(r, timeout=1, verify=False) as rd, \
            r.producer() as p:
        p.send(DeviceEvent(id="a", seq=0, blob=b"abcdef"))
        flip(r, 0, at=9)  # in the blob: still decodes
        assert rd.recv().seq == 0
        assert rd.stats().crc_errors == 0


def test_recv_check_rejects(name):
    """recv(check=...): an exception from the check rejects the message
    while its slot is held: Corrupt from it, counted as a decode error,
    the message passed over."""
    def odd_only(m):
        if m.seq % 2 == 0:
            raise ValueError(f"even seq {m.seq}")

    with demo_ring(name) as r, Reader(r, timeout=1) as rd, \
            r.producer() as p:
        for i in (1, 2, 3):
            p.send(DeviceEvent(id="c", seq=i))
        assert rd.recv(check=odd_only).seq == 1
        with pytest.raises(pbring.Corrupt) as ei:
            rd.recv(check=odd_only)
        assert ei.value.seq == 1 and isinstance(ei.value.__cause__,
                                                 ValueError)
        assert "even seq 2" in str(ei.value)
        assert rd.recv(check=odd_only).seq == 3
        assert rd.stats().decode_errors == 1
        assert me(r, rd).decode_errors == 1


def test_reject(name):
    with demo_ring(name) as r, Reader(r, timeout=1) as rd, \
            r.producer() as p:
        for i in range(4):
            p.send(DeviceEvent(id="r", seq=i))
        with pytest.raises(pbring.InvalidArgument):
            rd.reject()  # nothing peeked
        rd.peek()
        rd.reject()  # the message peeked
        rd.release()
        v1, v2 = rd.peek_batch(2)
        rd.reject(v2)
        with pytest.raises(pbring.InvalidArgument):
            rd.reject(memoryview(b"not a slot"))
        rd.release()
        with pytest.raises(pbring.InvalidArgument):
            rd.reject(v1)  # released
        for _ in rd.views(timeout=0):
            rd.reject()  # the one views() yielded
            rd.verify()
        assert rd.stats().decode_errors == 3
        got = me(r, rd)
        assert (got.decode_errors, got.crc_errors, got.delivered) == (3, 0, 4)


def test_overwritten_is_stale_not_corrupt(name):
    """A lossy reader's message overwritten while held: what verify() or
    reject() would judge is not the message (FORMAT.md §5.6): Stale, not
    counted; the release counts it as lost."""
    with Ring.create(name, slots=2, slot_size=256, schema="demo") as r, \
            Reader(r, lossy=True, timeout=1) as rd, r.producer() as p:
        p.send(DeviceEvent(id="s", seq=0))
        rd.peek()
        for i in range(1, 5):
            p.send(DeviceEvent(id="overwriter", seq=i, blob=b"x" * i))
        with pytest.raises(pbring.Stale) as ei:
            rd.verify()
        assert ei.value.errno == errno.ESTALE
        with pytest.raises(pbring.Stale):
            rd.reject()
        with pytest.raises(pbring.Stale):
            rd.release()
        st = rd.stats()
        assert (st.crc_errors, st.decode_errors) == (0, 0) and st.lost >= 1
        got = me(r, rd)
        assert (got.crc_errors, got.decode_errors) == (0, 0)


def test_closed_reader(name):
    with demo_ring(name) as r:
        rd = Reader(r)
        rd.close()
        with pytest.raises(pbring.Closed):
            rd.verify()
        with pytest.raises(pbring.Closed):
            rd.reject()


# --------------------------------------------------------------------------
# The consume commands


SUMMARY = re.compile(r"received (\d+), .*crc errors (\d+), "
                     r"content errors (\d+),")


def consumers(c_bin=None) -> List[List[str]]:
    out = [PY_CMD]
    c_bin = c_bin or _c_bin()
    if c_bin:
        out.append([c_bin])
    return out


@pytest.mark.parametrize("cmd", ["python", "c"])
def test_consume_demo_counts_in_ring(ring_name, cmd):
    """consume leaves in its entry what it found corrupt (crc_errors,
    decode_errors, a bad blob included) and times what it received, as
    the C command does (FORMAT.md §5.5, §5.6)."""
    c_bin = _c_bin()
    if cmd == "c" and not c_bin:
        pytest.skip("C peer unavailable: set PBRING_BIN")
    argv = PY_CMD if cmd == "python" else [c_bin]
    name = ring_name()
    with demo_ring(name) as r, r.producer() as p:
        p.send(DeviceEvent(id="x-0", seq=0))
        send_untimed(p, b"\xff\xff\xff")                 # not protobuf
        send_untimed(p, DeviceEvent(id="x-0", seq=1).SerializeToString(),
                     crc=True)
        flip(r, 2, at=1)                                  # a wrong CRC
        p.send(DeviceEvent(id="x-0", seq=1, blob=b"wrong"))  # bad blob
        p.send(DeviceEvent(id="x-0", seq=2))
        res = run(argv + ["consume", name, "--count", "2", "--quiet",
                          "--timeout", "1"])
        assert res.returncode == 1, res.stderr
        assert SUMMARY.search(res.stderr).groups() == ("2", "1", "2"), \
            res.stderr
        e = reader_entry(name, 0)
    assert (e["flags"], e["delivered"], e["crc_errors"],
            e["decode_errors"], e["bad"]) == (1, 5, 1, 2, 0), e
    assert e["own_block"]
    assert sum(e["latency"]) == 3 and e["latency_sum_ns"] > 0, e


@pytest.mark.parametrize("cmd", ["python", "c"])
def test_consume_typed_counts_in_ring(ring_name, acme, cmd):
    """The Go command's test of the same (go/cmd/pbring-go), on a typed
    ring: a payload that is not protobuf and a wrong CRC, both untimed,
    between two timed messages."""
    c_bin = _c_bin()
    if cmd == "c" and not c_bin:
        pytest.skip("C peer unavailable: set PBRING_BIN")
    argv = PY_CMD if cmd == "python" else [c_bin]
    name = ring_name()
    with Ring.create(name, slots=16, slot_size=256,
                     schema=acme.Reading) as r, r.producer() as p:
        p.send(acme.Reading(f_int32=1))
        send_untimed(p, b"\xff\xff\xff")
        send_untimed(p, b"\x18\x05", crc=True)
        flip(r, 2)
        p.send(acme.Reading(f_int32=2))
        res = run(argv + ["consume", name, "--count", "2", "--timeout",
                          "1"])
        assert res.returncode == 1, res.stderr
        assert SUMMARY.search(res.stderr).groups() == ("2", "1", "1"), \
            res.stderr
        assert len(res.stdout.splitlines()) == 2
        e = reader_entry(name, 0)
    assert (e["flags"], e["delivered"], e["crc_errors"],
            e["decode_errors"]) == (1, 4, 1, 1), e
    assert e["own_block"]
    assert sum(e["latency"]) == 2 and e["latency_sum_ns"] > 0, e


def test_consume_raw_counts_crc_errors(ring_name):
    for argv in consumers():
        name = ring_name()
        with Ring.create(name, slots=8, slot_size=256) as r, \
                r.producer() as p:
            p.send_bytes(b"one")
            p.send_bytes(b"two")
            flip(r, 0)
            res = run(argv + ["consume", name, "--raw", "--count", "1",
                              "--timeout", "1"])
            assert res.returncode == 1, (argv, res.stderr)
            assert SUMMARY.search(res.stderr).groups() == ("1", "1", "0")
            e = reader_entry(name, 0)
        assert (e["delivered"], e["crc_errors"], e["decode_errors"]) == \
            (2, 1, 0), (argv, e)
        assert sum(e["latency"]) == 2, (argv, e)
