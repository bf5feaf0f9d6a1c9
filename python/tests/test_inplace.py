# SPDX-License-Identifier: MIT
"""Large fields written in place (C's pbr_slot_pb_span() and
pbr_producer_commit_pb(), Go's FieldSpan and CommitProto):
Producer.reserve_message(), field_span() and commit(msg). The slot's
bytes, the message every reader decodes, the view aliasing the slot and
released after it, the CRC policy, the errors, the abort of a rest that
does not fit, and the C consumer on the same ring."""
from __future__ import annotations

import ctypes
import errno
import json
import os
import pickle
import re
import subprocess
import sys
import time

import pytest
from google.protobuf import descriptor_pb2

import pbring
from pbring import DeviceEvent, Producer, Reader, Ring

HERE = os.path.dirname(os.path.abspath(__file__))
FIELD_MAX = 2**29 - 1
BLOB = 5  # DeviceEvent.blob
ID = 1    # DeviceEvent.id


def slot_bytes(p: Producer, n: int) -> bytes:
    """The first @n bytes of @p's reserved slot, read from its address
    (not through any view)."""
    return ctypes.string_at(p._slot.data, n)


@pytest.fixture
def demo(name):
    with Ring.create(name, slots=16, slot_size=1024, schema="demo") as r:
        yield r


# --------------------------------------------------------------------------
# The slot, the message, the view


def test_slot_bytes_and_message(demo):
    blob = pbring.demo.blob_pattern(300)
    with Reader(demo, timeout=1) as rd, demo.producer() as p:
        with p.reserve_message() as r:
            assert r.used == 0 and p.reservation is r
            frame = r.field_span(BLOB, 300)
            assert isinstance(frame, memoryview)
            assert (len(frame), frame.readonly, frame.nbytes) == (300, False,
                                                                   300)
            assert r.used == 303
            frame[:] = blob
            # tag 5<<3|2 = 0x2A, length 300 = AC 02; the view is the slot
            assert slot_bytes(p, 303) == b"\x2a\xac\x02" + blob
            rest = DeviceEvent(id="cam-1", status=1, seq=7, sent_ns=123)
            seq = r.commit(rest)
        assert p.reservation is None
        view = rd.peek()
        assert rd.last.seq == seq == r.seq
        payload = bytes(view)
        rd.release()
    assert payload[:3] == bytes([0x2A, 0xAC, 0x02])
    assert payload[3:303] == blob
    assert payload[303:] == rest.SerializeToString()
    want = DeviceEvent(id="cam-1", status=1, seq=7, sent_ns=123, blob=blob)
    got = DeviceEvent()
    got.ParseFromString(payload)
    assert got == want
    assert (got.id, got.status, got.seq, got.sent_ns, got.blob) == (
        "cam-1", 1, 7, 123, blob)


def test_readers_decode_it(demo):
    """recv() with the ring's own class and with DeviceEvent, and a
    message sent by send() with the blob set decodes the same."""
    blob = pbring.demo.blob_pattern(300)
    with Reader(demo, timeout=1) as rd, demo.producer() as p:
        for _ in range(2):
            with p.reserve_message() as r:
                r.field_span(BLOB, 300)[:] = blob
                r.commit(DeviceEvent(id="x", seq=1))
        p.send(DeviceEvent(id="x", seq=1, blob=blob))
        a = rd.recv()
        b = rd.recv(DeviceEvent)
        c = rd.recv(DeviceEvent)
    assert type(a).DESCRIPTOR.full_name == "pbring.demo.v1.DeviceEvent"
    assert (a.id, a.seq, a.blob) == ("x", 1, blob)
    assert b == c


def test_view_aliases_the_slot(demo):
    with demo.producer() as p, p.reserve_message() as r:
        v = r.field_span(BLOB, 10)
        v[:] = b"\x00" * 10
        v[4] = 0xEE  # a write through the view lands in the slot
        assert slot_bytes(p, 2 + 10)[2 + 4] == 0xEE
        # and the slot's bytes are the view's
        ctypes.memmove(p._slot.data + 2, b"abcdefghij", 10)
        assert bytes(v) == b"abcdefghij"
        r.commit()


def test_view_released_after_commit_and_abort(demo):
    with demo.producer() as p:
        with p.reserve_message() as r:
            v = r.field_span(BLOB, 8)
            v[:] = b"12345678"
            r.commit(DeviceEvent(seq=1))
        with pytest.raises(ValueError, match="released"):
            v[0]
        with p.reserve_message() as r:
            w = r.field_span(BLOB, 8)
            r.abort()
        with pytest.raises(ValueError, match="released"):
            w[0] = 1


def test_several_fields_then_the_rest(demo):
    """id (a string field) and blob both in place, then the rest."""
    blob = pbring.demo.blob_pattern(200)
    with Reader(demo, timeout=1) as rd, demo.producer() as p:
        with p.reserve_message() as r:
            ident = r.field_span(ID, 5)
            ident[:] = b"cam-9"
            assert r.used == 7
            r.field_span(BLOB, 200)[:] = blob
            assert r.used == 7 + 3 + 200
            r.commit(DeviceEvent(status=2, seq=3))
        payload = bytes(rd.peek())
        rd.release()
    assert payload[:7] == b"\x0a\x05cam-9"
    assert payload[7:10] == b"\x2a\xc8\x01"
    assert DeviceEvent.FromString(payload) == DeviceEvent(
        id="cam-9", status=2, seq=3, blob=blob)


def test_only_in_place_fields_and_bytes_rest(name):
    """commit() with nothing (the fields alone) or with bytes already
    serialized; an untyped ring takes either."""
    with Ring.create(name, slots=8, slot_size=512) as ring, \
            Reader(ring, timeout=1) as rd, ring.producer() as p:
        with p.reserve_message() as r:
            r.field_span(BLOB, 3)[:] = b"abc"
            r.commit()
        with p.reserve_message() as r:
            r.field_span(BLOB, 0)
            r.commit(DeviceEvent(seq=5).SerializeToString())
        with p.reserve_message() as r:
            r.commit(bytearray(b"\x18\x06"))  # nothing in place: seq = 6
        assert rd.recv_bytes() == b"\x2a\x03abc"
        assert DeviceEvent.FromString(rd.recv_bytes()) == DeviceEvent(seq=5)
        assert DeviceEvent.FromString(rd.recv_bytes()) == DeviceEvent(seq=6)


def test_biggest_field_number_and_whole_slot(name):
    with Ring.create(name, slots=8, slot_size=512) as ring, \
            Reader(ring, timeout=1) as rd, ring.producer() as p:
        cap = p.payload_cap
        with p.reserve_message() as r:
            # tag of 2^29-1: 5 bytes; length cap-7 < 16384: 2 bytes
            r.field_span(FIELD_MAX, cap - 7)[:] = b"z" * (cap - 7)
            assert r.used == cap
            r.commit(b"")
        data = rd.recv_bytes()
        assert len(data) == cap
        assert data[:5] == bytes([0xFA, 0xFF, 0xFF, 0xFF, 0x0F])
        assert rd.last.has_crc and rd.last.crc32c == pbring.crc32c(data)


# --------------------------------------------------------------------------
# The CRC policy and the timestamp


def send_in_place(p: Producer, n: int, crc=None) -> None:
    with p.reserve_message(crc=crc) as r:
        r.field_span(BLOB, n)[:] = b"q" * n
        r.commit(DeviceEvent(seq=n))


@pytest.mark.parametrize("policy,want", [
    ("full", [True, True]), ("none", [False, False]), (100, [True, False])])
def test_crc_follows_policy(name, policy, want):
    with Ring.create(name, slots=8, slot_size=1024, schema="demo",
                     crc=policy) as ring, \
            Reader(ring, timeout=1) as rd, ring.producer() as p:
        before = time.monotonic_ns()
        send_in_place(p, 10)   # 14 bytes
        send_in_place(p, 300)  # 306 bytes
        after = time.monotonic_ns()
        views = rd.peek_batch(8)
        info = rd.peeked_info()
        assert [i.has_crc for i in info] == want
        for v, i in zip(views, info):
            assert i.crc32c == (pbring.crc32c(v) if i.has_crc else 0)
            assert before <= i.timestamp_ns <= after
        rd.verify()
        rd.release()


def test_crc_forced_per_reservation_and_producer(name):
    with Ring.create(name, slots=8, slot_size=1024, schema="demo",
                     crc="none") as ring, Reader(ring, timeout=1) as rd:
        with ring.producer() as p:
            send_in_place(p, 20, crc=True)
            send_in_place(p, 20)
        with Producer(ring, crc=True) as p:
            send_in_place(p, 20)
            send_in_place(p, 20, crc=False)
        rd.peek_batch(8)
        assert [i.has_crc for i in rd.peeked_info()] == [
            True, False, True, False]
        rd.verify()
        rd.release()


# --------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("number", [0, -1, FIELD_MAX + 1, 2**32])
def test_bad_field_number(demo, number):
    with demo.producer() as p, p.reserve_message() as r:
        with pytest.raises(pbring.InvalidArgument) as ei:
            r.field_span(number, 4)
        assert ei.value.errno == errno.EINVAL
        assert ei.value.strerror == (f"field number {number} is not in "
                                     f"1..{FIELD_MAX}")
        assert str(ei.value) == (f"{demo.name}: field span: "
                                 f"{ei.value.strerror}")
        assert r.used == 0 and p.reservation is r  # still open
        r.commit(DeviceEvent(seq=1))


def test_bad_length_and_types(demo):
    with demo.producer() as p, p.reserve_message() as r:
        with pytest.raises(pbring.InvalidArgument, match="negative"):
            r.field_span(BLOB, -1)
        with pytest.raises(TypeError):
            r.field_span(BLOB, 1.5)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            r.field_span("5", 1)  # type: ignore[arg-type]
        r.abort()


def test_field_does_not_fit(demo):
    with Reader(demo, timeout=1) as rd, demo.producer() as p:
        cap = p.payload_cap  # 960
        with p.reserve_message() as r:
            for n in (cap, cap - 2, 2**40):  # the tag and length need 3
                with pytest.raises(pbring.MessageTooLarge) as ei:
                    r.field_span(BLOB, n)
                assert ei.value.errno == errno.EMSGSIZE
                assert r.used == 0
            r.field_span(BLOB, cap - 3)[:] = b"f" * (cap - 3)  # just fits
            with pytest.raises(pbring.MessageTooLarge):
                r.field_span(BLOB, 0)  # not even a tag is left
            assert r.used == cap and p.reservation is r
            r.commit()
        assert rd.recv(DeviceEvent).blob == b"f" * (cap - 3)


def test_rest_that_does_not_fit_aborts(demo):
    with Reader(demo, timeout=1) as rd, demo.producer() as p:
        cap = p.payload_cap
        with p.reserve_message() as r:
            v = r.field_span(BLOB, cap - 3 - 4)  # 4 bytes left
            v[:] = b"o" * len(v)
            with pytest.raises(pbring.MessageTooLarge) as ei:
                r.commit(DeviceEvent(id="too long"))
            assert ei.value.errno == errno.EMSGSIZE
            assert "aborted" in ei.value.strerror
            assert p.reservation is None
        aborted = r.seq
        with pytest.raises(ValueError):
            v[0]  # released
        with pytest.raises(pbring.RingEmpty):
            rd.peek(timeout=0)  # nothing delivered
        with pytest.raises(pbring.InvalidArgument, match="not open"):
            r.commit()
        with pytest.raises(pbring.InvalidArgument, match="not open"):
            r.field_span(BLOB, 1)
        seq = p.send(DeviceEvent(id="next"))
        assert seq == aborted + 1
        assert rd.recv().id == "next" and rd.last.seq == seq


def test_wrong_message_aborts(demo):
    with Reader(demo, timeout=1) as rd, demo.producer() as p:
        with p.reserve_message() as r:
            r.field_span(BLOB, 4)[:] = b"wxyz"
            with pytest.raises(pbring.WrongType):
                r.commit(pbring.SyncAck(event_id="a"))
            assert p.reservation is None
        with p.reserve_message() as r:
            with pytest.raises(TypeError):
                r.commit(42)  # type: ignore[arg-type]
            assert p.reservation is None
        with pytest.raises(pbring.RingEmpty):
            rd.peek(timeout=0)


def test_unserializable_message_aborts(name):
    """A proto2 message missing a required field: InvalidArgument with
    protobuf's reason, the reservation aborted."""
    f = descriptor_pb2.FileDescriptorProto(name="req.proto", package="t",
                                           syntax="proto2")
    m = f.message_type.add(name="Req")
    m.field.add(name="a", number=1, type=5, label=2)   # required int32
    m.field.add(name="b", number=2, type=12, label=1)  # optional bytes
    fds = descriptor_pb2.FileDescriptorSet(file=[f]).SerializeToString()
    Req = pbring.message_class(fds, "t.Req")
    with Ring.create(name, slots=8, slot_size=512, schema=fds,
                     msg_type="t.Req") as ring, \
            Reader(ring, timeout=1) as rd, ring.producer() as p:
        with p.reserve_message() as r:
            r.field_span(2, 3)[:] = b"abc"
            with pytest.raises(pbring.InvalidArgument,
                               match="cannot serialize t.Req") as ei:
                r.commit(Req())
            assert ei.value.errno == errno.EINVAL
            assert p.reservation is None
        with pytest.raises(pbring.RingEmpty):
            rd.peek(timeout=0)
        with p.reserve_message() as r:
            r.field_span(2, 3)[:] = b"abc"
            r.commit(Req(a=1))
        assert rd.recv() == Req(a=1, b=b"abc")


def test_block_left_without_commit(demo):
    with Reader(demo, timeout=1) as rd, demo.producer() as p:
        with pytest.raises(pbring.InvalidArgument, match="without commit"):
            with p.reserve_message() as r:
                r.field_span(BLOB, 4)[:] = b"lost"
        assert p.reservation is None
        with pytest.raises(KeyError):  # an exception: aborted, quietly
            with p.reserve_message() as r:
                r.field_span(BLOB, 4)
                raise KeyError("camera")
        assert p.reservation is None
        with p.reserve_message() as r:
            r.abort()  # aborted by hand: leaving says nothing
        with pytest.raises(pbring.RingEmpty):
            rd.peek(timeout=0)
        assert rd.stats().delivered == 0


def test_one_reservation_at_a_time(demo):
    with demo.producer() as p:
        r = p.reserve_message()
        with pytest.raises(pbring.Busy):
            p.reserve_message()
        with pytest.raises(pbring.Busy):
            p.reserve(4)
        with pytest.raises(pbring.Busy):
            p.send(DeviceEvent())
        r.abort()
        with p.reserve(2) as buf:
            with pytest.raises(pbring.Busy):
                p.reserve_message()
            buf[:] = b"\x18\x01"


def test_derived_view_keeps_reservation_open(demo):
    """A view derived from a span (or exported, as NumPy's frombuffer
    does) must go before the slot is published: ViewInUse, the
    reservation open, then commit succeeds."""
    with Reader(demo, timeout=1) as rd, demo.producer() as p:
        with p.reserve_message() as r:
            frame = r.field_span(BLOB, 16)
            frame[:] = b"e" * 16
            exported = pickle.PickleBuffer(frame)  # holds a buffer export
            with pytest.raises(pbring.ViewInUse, match="exported"):
                r.commit(DeviceEvent(seq=1))
            assert p.reservation is r
            del exported
            derived = frame[2:6]  # frame itself can be released now...
            with pytest.raises(pbring.ViewInUse, match="derived"):
                r.commit(DeviceEvent(seq=1))
            assert p.reservation is r
            derived[0] = ord("E")  # ...but not what came of it
            del derived
            r.commit(DeviceEvent(seq=1))
        m = rd.recv(DeviceEvent)
        assert (m.seq, m.blob) == (1, b"eeEeeeeeeeeeeeee")


def test_close_aborts_it(demo):
    with Reader(demo, timeout=1) as rd:
        p = demo.producer()
        r = p.reserve_message()
        v = r.field_span(BLOB, 4)
        p.close()
        assert p.reservation is None
        with pytest.raises(ValueError):
            v[0]
        with pytest.raises(pbring.RingEmpty):
            rd.peek(timeout=0)


def test_readme_snippet_runs():
    with open(os.path.join(HERE, "..", "README.md")) as f:
        text = f.read()
    code = re.search(r"\*\*Large fields in place\.\*\*.*?```python\n(.*?)```",
                     text, re.S)
    assert code, "no in-place example in README.md"
    p = subprocess.Popen([sys.executable, "-c", code.group(1)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        out, err = p.communicate(timeout=60)
    finally:
        pbring.unlink(f"frames-{p.pid}", missing_ok=True)
    assert p.returncode == 0, err
    assert out.splitlines() == ["cam-1 0 65536 True"]


# --------------------------------------------------------------------------
# The C consumer


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("policy", ["full", "none", "4096"])
def test_c_consumer_accepts_it(c_bin, name, policy):
    """Demo messages (id, seq, status, sent_ns; the demo blob pattern
    written in place) read by the C `pbring consume`: every one received,
    no CRC or content error, no gap; its JSON is the message's."""
    r = run([c_bin, "create", name, "--slots", "64", "--slot-size", "16384",
             "--crc", policy])
    assert r.returncode == 0, r
    sizes = [0, 1, 127, 128, 300, 4096, 10000]
    ident = f"{os.getpid()}-0"
    want = []
    with Ring.attach(name) as ring, ring.producer() as p:
        for k, n in enumerate(sizes):
            with p.reserve_message() as res:
                res.field_span(BLOB, n)[:] = pbring.demo.blob_pattern(n)
                ev = DeviceEvent(id=ident, seq=k, status=k % 3,
                                 sent_ns=time.monotonic_ns())
                res.commit(ev)
            ev.blob = pbring.demo.blob_pattern(n)
            want.append(ev)
    c = run([c_bin, "consume", name, "--count", str(len(sizes)),
             "--timeout", "1", "--json"])
    assert c.returncode == 0, c
    assert re.search(r"received 7, lost 0, missed 0, gaps 0, duplicates 0, "
                     r"crc errors 0, content errors 0, abandoned 0", c.stderr), c
    lines = c.stdout.splitlines()
    assert lines == [pbring.demo.canonical_json(m) for m in want]
    assert [json.loads(x).get("seq", "0") for x in lines] == [
        str(k) for k in range(len(sizes))]


def test_c_consumer_quiet_many(c_bin, name):
    """1000 in-place messages of 1000 bytes, gating C consumer, --quiet."""
    r = run([c_bin, "create", name, "--slots", "1024", "--slot-size", "2048"])
    assert r.returncode == 0, r
    blob = pbring.demo.blob_pattern(1000)
    ident = f"{os.getpid()}-0"
    with Ring.attach(name) as ring, ring.producer() as p:
        for k in range(1000):
            with p.reserve_message() as res:
                res.field_span(BLOB, 1000)[:] = blob
                res.commit(DeviceEvent(id=ident, seq=k, status=k % 3,
                                       sent_ns=time.monotonic_ns()))
    c = run([c_bin, "consume", name, "--count", "1000", "--timeout", "1",
             "--quiet"])
    assert c.returncode == 0, c
    assert "received 1000," in c.stderr, c
    assert "crc errors 0, content errors 0" in c.stderr, c
