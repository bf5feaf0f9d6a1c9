# SPDX-License-Identifier: MIT
"""Unit tests of the Python API: rings, producers, readers, views, errors."""
from __future__ import annotations

import errno
import mmap
import os
import pickle
import struct
import threading
import time

import pytest

import pbring
from pbring import DeviceEvent, Producer, Reader, Ring


def small(name, **kw):
    kw.setdefault("slots", 16)
    kw.setdefault("slot_size", 256)
    kw.setdefault("schema", "demo")
    return Ring.create(name, **kw)


def ev(seq, **kw):
    return DeviceEvent(id=kw.pop("id", "t-0"), seq=seq, status=seq % 3, **kw)


# ------------------------------------------------------------ library


def test_bundled_library_is_loaded():
    path = pbring._lib._library_path()
    assert os.path.isfile(path), path
    if "PBRING_LIBRARY" not in os.environ:
        # the package's own copy, next to its modules
        assert os.path.dirname(path) == os.path.dirname(pbring.__file__)
    assert pbring.version() == "0.1.0"


def test_crc32c_check_value():
    assert pbring.crc32c(b"123456789") == 0xE3069283
    assert pbring.crc32c(b"6789", pbring.crc32c(b"12345")) == 0xE3069283
    assert pbring.crc32c(memoryview(b"123456789")) == 0xE3069283


def test_schema_hash_is_fnv1a64():
    def fnv(b):
        h = 0xCBF29CE484222325
        for c in b:
            h = ((h ^ c) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        return h or 1
    fds = pbring.demo_schema()
    assert fds and pbring.schema_hash(fds) == fnv(fds)
    assert pbring.schema_hash(b"") == 0


# ------------------------------------------------------------ rings


def test_create_attach_info(name):
    with small(name, slots=32, slot_size=512, max_readers=3) as r:
        i = r.info
        assert (i.name, i.slot_count, i.slot_size, i.payload_cap) == \
            (name, 32, 512, 448)
        assert i.msg_type == pbring.DEMO_MSG_TYPE and i.typed
        assert i.schema == pbring.demo_schema()
        assert i.schema_hash == pbring.schema_hash(i.schema)
        assert i.max_readers == 3 and not i.single_producer
        assert i.creator_pid == os.getpid()
        with Ring.attach(name) as r2:
            assert r2.info == i
        assert name in pbring.list_rings()
    assert r.closed


def test_untyped_and_single_producer(name):
    with Ring.create(name, slots=4, slot_size=128,
                     single_producer=True) as r:
        assert r.info.msg_type == "" and not r.info.typed
        assert r.info.single_producer and r.info.max_producers == 1
        with pytest.raises(pbring.InvalidArgument):
            r.message_class
        with r.producer():
            with pytest.raises(pbring.Busy):
                r.producer()


def test_schema_from_message_class(name):
    from google.protobuf import descriptor_pb2
    with Ring.create(name, schema=descriptor_pb2.FileDescriptorSet) as r:
        assert r.info.msg_type == "google.protobuf.FileDescriptorSet"
        cls = r.message_class
        assert cls.DESCRIPTOR.full_name == r.info.msg_type
        assert cls is not descriptor_pb2.FileDescriptorSet  # its own pool
        with r.producer() as p, Reader(r, timeout=1) as rd:
            p.send(descriptor_pb2.FileDescriptorSet(
                file=[descriptor_pb2.FileDescriptorProto(name="a.proto")]))
            m = rd.recv()
            assert m.file[0].name == "a.proto"
            with pytest.raises(pbring.WrongType):
                p.send(DeviceEvent(id="x"))


def test_errors_carry_errno_and_ring(ring_name):
    n = ring_name()
    with pytest.raises(pbring.RingNotFound) as ei:
        Ring.attach(n)
    e = ei.value
    assert isinstance(e, FileNotFoundError) and isinstance(e, OSError)
    assert isinstance(e, pbring.PbringError)
    assert e.errno == errno.ENOENT and e.ring == n
    assert str(e) == f"{n}: attach: no such ring"
    assert pickle.loads(pickle.dumps(e)).ring == n
    with small(n):
        with pytest.raises(pbring.RingExists) as ei:
            small(n)
        assert ei.value.errno == errno.EEXIST
    with pytest.raises(pbring.InvalidArgument):
        Ring.create("bad/name")
    with pytest.raises(pbring.InvalidArgument):
        Ring.create(ring_name(), slots=3)
    pbring.unlink(n)
    with pytest.raises(pbring.RingNotFound):
        pbring.unlink(n)
    pbring.unlink(n, missing_ok=True)


def test_attach_not_a_ring(ring_name):
    n = ring_name()
    path = f"/dev/shm/pbring.{n}"
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.ftruncate(fd, 65536)
    os.write(fd, b"notaring")
    os.close(fd)
    # state 0 and a foreign magic: not a ring, said at once
    t0 = time.monotonic()
    with pytest.raises(pbring.IncompatibleRing) as ei:
        Ring.attach(n, timeout=5)
    assert ei.value.errno == errno.EPROTO
    assert time.monotonic() - t0 < 1
    fd = os.open(path, os.O_RDWR)
    os.pwrite(fd, struct.pack("<I", 1), 8)  # "ready", but bad magic
    os.close(fd)
    with pytest.raises(pbring.IncompatibleRing) as ei:
        Ring.attach(n, timeout=0.05)
    assert ei.value.errno == errno.EPROTO
    assert "not a pbring ring" in str(ei.value)


def test_attach_damaged(ring_name):
    """Zeroed or truncated, with no creator at work: damaged, said at once
    (FORMAT.md §12.2), not a timeout."""
    n = ring_name()
    Ring.create(n, slots=8, slot_size=128).close()
    path = f"/dev/shm/pbring.{n}"
    for size in (0, 100, 8192):
        with open(path, "r+b") as f:
            f.truncate(0)
            f.truncate(size)
        t0 = time.monotonic()
        with pytest.raises(pbring.IncompatibleRing) as ei:
            Ring.attach(n, timeout=5)
        assert ei.value.errno == errno.EUCLEAN, size
        assert "damaged" in str(ei.value)
        assert time.monotonic() - t0 < 1, size


def test_closed_handles(name):
    r = small(name)
    p = r.producer()
    rd = Reader(r)
    r.close()
    assert p.closed and rd.closed
    with pytest.raises(pbring.Closed):
        p.send(b"x")
    with pytest.raises(pbring.Closed):
        rd.peek(timeout=0)
    with pytest.raises(pbring.Closed):
        r.stats()
    r.close()  # idempotent


# ------------------------------------------------------------ send / recv


def test_send_recv_roundtrip(name):
    with small(name, slots=64) as r, r.producer() as p, \
            Reader(r, timeout=1) as rd:
        seqs = [p.send(ev(i, blob=bytes([i]) * i)) for i in range(40)]
        assert seqs == list(range(40))
        for i in range(40):
            m = rd.recv()
            assert isinstance(m, DeviceEvent)
            assert (m.seq, m.status, m.blob) == (i, i % 3, bytes([i]) * i)
            last = rd.last
            assert last.seq == i and last.producer == p.id
            assert last.has_crc and last.length == m.ByteSize()
            assert last.timestamp_ns <= time.monotonic_ns()
        st = rd.stats()
        assert st.cursor >= 32 and st.bad == st.lost == 0
    assert rd.closed


def test_recv_with_generated_class_and_bytes(name):
    with small(name) as r, r.producer() as p, Reader(r, timeout=1) as rd:
        p.send(ev(1))
        p.send_bytes(ev(2).SerializeToString())
        p.send(bytearray(ev(3).SerializeToString()))
        assert rd.recv(DeviceEvent).seq == 1
        assert DeviceEvent.FromString(rd.recv_bytes()).seq == 2
        assert list(rd)[0].seq == 3  # iteration ends at the timeout...
        with pytest.raises(pbring.RingEmpty) as ei:  # ...recv raises
            rd.recv(timeout=0)
        assert isinstance(ei.value, TimeoutError)
        assert ei.value.errno in (errno.EAGAIN, errno.ETIMEDOUT)


def test_recv_wrong_type(name):
    from google.protobuf import descriptor_pb2
    with small(name) as r:
        with pytest.raises(pbring.WrongType):
            Reader(r, message_type=descriptor_pb2.FileDescriptorSet)
        with Reader(r) as rd:
            with pytest.raises(pbring.WrongType):
                rd.recv(descriptor_pb2.FileDescriptorSet, timeout=0)


def test_message_too_large(name):
    with small(name, slot_size=128) as r, r.producer() as p:
        assert p.payload_cap == 64
        with pytest.raises(pbring.MessageTooLarge) as ei:
            p.send(b"x" * 65)
        assert ei.value.errno == errno.EMSGSIZE
        with pytest.raises(pbring.MessageTooLarge):
            p.reserve(65)
        p.send(b"x" * 64)
        assert r.stats().claimed == 1  # nothing was claimed for the others


def test_timeouts_ring_full(name):
    with small(name, slots=4) as r, Reader(r) as rd, \
            Producer(r, timeout=0) as p:
        for i in range(4):
            p.send(ev(i))
        with pytest.raises(pbring.RingFull) as ei:
            p.send(ev(4))
        assert isinstance(ei.value, TimeoutError)
        t0 = time.monotonic()
        with pytest.raises(pbring.RingFull):
            p.send(ev(4), timeout=0.15)
        assert time.monotonic() - t0 >= 0.14
        # the sequence claimed by the timed-out send is kept for the next
        assert rd.recv().seq == 0
        # recv() gives its batch back when the batch is used up...
        with pytest.raises(pbring.RingFull):
            p.send(ev(4))
        rd.release()  # ...or now
        p.send(ev(4), timeout=1)
        assert [rd.recv().seq for _ in range(4)] == [1, 2, 3, 4]


def test_blocking_recv_in_thread(name):
    with small(name) as r, Reader(r, timeout=5) as rd, r.producer() as p:
        got = []
        t = threading.Thread(target=lambda: got.extend(
            rd.recv().seq for _ in range(3)))
        t.start()
        for i in range(3):
            time.sleep(0.05)
            p.send(ev(i))
        t.join(5)
        assert got == [0, 1, 2]


def test_reserve_commit_and_abort(name):
    with small(name) as r, r.producer() as p, Reader(r, timeout=1) as rd:
        data = ev(7, blob=b"abc").SerializeToString()
        with p.reserve(len(data)) as buf:
            assert isinstance(buf, memoryview) and not buf.readonly
            assert len(buf) == len(data)
            buf[:] = data
            res = p.reservation
        assert p.reservation is None
        with pytest.raises(ValueError):
            buf[0]  # released on commit
        with pytest.raises(RuntimeError):
            with p.reserve(10) as buf:
                buf[:3] = b"xyz"
                raise RuntimeError("boom")  # aborted: readers skip it
        with p.reserve() as buf:  # the whole payload, committed shorter
            assert len(buf) == p.payload_cap
            buf[:2] = b"\x10\x05"  # status = 5
            p.reservation.commit(2)
        m = rd.recv()
        assert m.seq == 7 and m.blob == b"abc" and rd.last.has_crc
        assert rd.recv().status == 5
        assert r.stats().claimed == 3 and res.seq == 0


def test_reserve_view_leak_keeps_slot(name):
    with small(name) as r, r.producer() as p, Reader(r, timeout=0) as rd:
        ctx = p.reserve(4)
        buf = ctx.__enter__()
        part = buf[1:3]  # derived: would outlive the reservation
        with pytest.raises(pbring.ViewInUse):
            ctx.__exit__(None, None, None)
        assert p.reservation is ctx  # still reserved, nothing published
        with pytest.raises(pbring.RingEmpty):
            rd.peek()
        part.release()
        ctx.commit()
        assert len(rd.peek()) == 4


# ------------------------------------------------------------ peek / views


def test_peek_release_semantics(name):
    with small(name) as r, r.producer() as p, Reader(r, timeout=1) as rd:
        for i in range(3):
            p.send(bytes([i]) * 5)
        v = rd.peek()
        assert v.readonly and bytes(v) == b"\0" * 5
        assert rd.peek() is v  # a second peek: the same message
        with pytest.raises(TypeError):
            v[0] = 1  # read-only
        rd.release()
        with pytest.raises(ValueError):
            bytes(v)  # released: fails loudly
        vs = rd.peek_batch(8)
        assert [bytes(x) for x in vs] == [b"\1" * 5, b"\2" * 5]
        assert rd.last.seq == 2
        rd.release()
        for x in vs:
            with pytest.raises(ValueError):
                x[0]
        assert rd.stats().delivered == 3


def test_released_slot_not_recycled_under_derived_view(name):
    with small(name, slots=4) as r, Producer(r, timeout=0) as p, \
            Reader(r, timeout=1) as rd:
        for i in range(4):
            p.send(bytes([i]) * 8)
        v = rd.peek()
        part = v[2:6]  # a slice outlives v.release()
        with pytest.raises(pbring.ViewInUse):
            rd.release()
        # the slot was not given back: the ring is still full
        with pytest.raises(pbring.RingFull):
            p.send(b"next")
        assert bytes(part) == b"\0" * 4
        del part
        rd.release()
        p.send(b"next")  # now there is room


def test_exported_view_cannot_be_released(name):
    with small(name) as r, r.producer() as p, Reader(r, timeout=1) as rd:
        p.send(b"abcdef")
        v = rd.peek()
        pb = pickle.PickleBuffer(v)  # holds a buffer export of v
        with pytest.raises(pbring.ViewInUse):
            rd.release()
        pb.release()
        rd.release()
        with pytest.raises(ValueError):
            v[0]


def test_detach_refused_while_view_alive(name):
    r = small(name)
    p = r.producer()
    rd = Reader(r, timeout=1)
    p.send(b"abc")
    v = rd.peek()
    part = v[:]
    with pytest.raises(pbring.ViewInUse):
        r.close()
    assert bytes(part) == b"abc"  # still mapped, still ours
    del part
    r.close()
    assert r.closed and rd.closed


def test_views_iterator(name):
    with small(name, slots=64, schema=None) as r, r.producer() as p, \
            Reader(r, timeout=0.1, batch=8) as rd:
        for i in range(50):
            p.send(struct.pack("<I", i))
        got = []
        last = None
        for v in rd.views():
            if last is not None:
                with pytest.raises(ValueError):
                    last[0]  # each view is released at the next step
            got.append(struct.unpack("<I", v)[0])
            last = v
        assert got == list(range(50))
        assert rd.stats().delivered == 50


def test_views_break_then_continue(name):
    with small(name, slots=64, schema=None) as r, r.producer() as p, \
            Reader(r, timeout=0.1, batch=8) as rd:
        for i in range(20):
            p.send(bytes([i]))
        for v in rd.views():
            if v[0] == 4:
                break
        assert bytes(rd.peek()) == b"\5"
        rd.release()
        assert [v[0] for v in rd.views()] == list(range(6, 20))


def test_start_latest(name):
    with small(name) as r, r.producer() as p:
        p.send(b"old")
        with Reader(r, start="latest", timeout=0.2) as rd:
            with pytest.raises(pbring.RingEmpty):
                rd.peek()
            p.send(b"new")
            assert bytes(rd.peek()) == b"new"


def test_lossy_reader_lapped(name):
    with small(name, slots=8) as r, r.producer() as p, \
            Reader(r, lossy=True, timeout=0.2) as rd:
        for i in range(100):
            p.send(struct.pack("<I", i))  # never held back
        seqs = [rd.last.seq for _ in rd.views() if rd.last]
        assert seqs and seqs[-1] == 99
        assert rd.stats().lost > 0
        # Stale: overwritten while held
        p.send(b"x")
        v = rd.peek()
        for i in range(20):
            p.send(b"y")
        with pytest.raises(pbring.Stale) as ei:
            rd.release()
        assert ei.value.errno == errno.ESTALE
        with pytest.raises(ValueError):
            v[0]


def test_corrupt_payload_detected(name):
    with small(name, slots=4) as r, r.producer() as p, \
            Reader(r, timeout=0.5) as rd:
        p.send(ev(1, blob=b"abcdef"))
        p.send(ev(2))
        # flip a payload byte of slot 0 behind the producer's back
        with open(f"/dev/shm/pbring.{name}", "r+b") as f:
            m = mmap.mmap(f.fileno(), 0)
            slots_off = struct.unpack_from("<Q", m, 0x70)[0]
            m[slots_off + 64 + 3] ^= 0xFF
            m.close()
        with pytest.raises(pbring.Corrupt) as ei:
            rd.recv()
        assert ei.value.errno == errno.EBADMSG and ei.value.seq == 0
        assert rd.recv().seq == 2  # passed over, and on


def test_participants_and_gating_wait(name):
    with small(name) as r:
        assert not r.has_gating_reader()
        assert not r.wait_gating_reader(0.05)
        with r.producer() as p, Reader(r) as g, Reader(r, lossy=True) as l:
            ps = r.participants()
            assert [(x.is_reader, x.flags) for x in ps] == \
                [(False, 0), (True, 1), (True, 2)]
            assert all(x.alive for x in ps)
            assert r.has_gating_reader() and r.wait_gating_reader(0)
            assert g.index != l.index and p.id == 0


def test_cross_process_send(name):
    """A forked child produces; the parent reads."""
    with small(name, slots=32) as r, Reader(r, timeout=5) as rd:
        pid = os.fork()
        if pid == 0:
            try:
                with Ring.attach(name) as r2, r2.producer() as p:
                    for i in range(100):
                        p.send(ev(i, id="child"))
                os._exit(0)
            except BaseException:
                os._exit(1)
        seqs = [rd.recv().seq for _ in range(100)]
        assert os.waitpid(pid, 0)[1] == 0
        assert seqs == list(range(100))


def test_forked_child_leaves_parent_entries_alone(name):
    """A child that exits normally (finalizers run) must not close the
    parent's reader and producer: their entries and locks are the
    parent's."""
    with small(name) as r, r.producer() as p, Reader(r, timeout=1) as rd:
        pid = os.fork()
        if pid == 0:
            try:
                rd.close()
                p.close()
                r.close()
            finally:
                os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        pid = os.fork()
        if pid == 0:  # as the garbage collector would drop them
            try:
                rd.__del__()
                p.__del__()
                r.__del__()
            finally:
                os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        ps = r.participants()
        assert [(x.is_reader, x.alive) for x in ps] == [(False, True),
                                                        (True, True)]
        p.send(b"still here")
        assert bytes(rd.peek()) == b"still here"
        rd.release()


def test_verify_and_peeked_info(name):
    with small(name, schema=None) as r, r.producer() as p, \
            Reader(r, timeout=1) as rd:
        p.send(b"one")
        p.send(b"two")
        with Producer(r, crc=False) as q:
            q.send(b"three")
        vs = rd.peek_batch(8)
        assert [bytes(v) for v in vs] == [b"one", b"two", b"three"]
        info = rd.peeked_info()
        assert [i.seq for i in info] == [0, 1, 2]
        assert [i.has_crc for i in info] == [True, True, False]
        assert info[1].crc32c == pbring.crc32c(b"two")
        rd.verify()  # all good (no CRC passes)
        rd.release()
        with pytest.raises(pbring.InvalidArgument):
            rd.verify()


def test_canonical_json_escapes():
    m = DeviceEvent(id='a"b\\c\nd\x01\x7fé', seq=2**64 - 1, status=-1,
                    sent_ns=5, blob=b"\xff\x00")
    assert pbring.demo.canonical_json(m) == (
        '{"id":"a\\"b\\\\c\\nd\\u0001\x7fé","status":-1,'
        '"seq":"18446744073709551615","sentNs":"5","blob":"/wA="}')
    assert pbring.demo.canonical_json(DeviceEvent()) == "{}"
