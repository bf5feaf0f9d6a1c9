# SPDX-License-Identifier: MIT
"""The CRC policy (format 1.1, FORMAT.md §6.2): Ring.create(crc=...), its
reading back in RingInfo, producers following it (and an explicit
Producer crc=True/False overriding it), the arguments refused with the
C command's words, and the C command's `create --crc` and `stat` on the
same rings."""
from __future__ import annotations

import ctypes
import errno
import json
import subprocess

import pytest

import pbring
from conftest import PY_CMD
from pbring import Producer, Reader, Ring, _lib

U32_MAX = 2**32 - 1


def flags_of(r: Ring, send) -> list:
    """Run @send(producer), then say, for each message it committed,
    whether it carries a CRC (read from the reader's slot headers)."""
    with Reader(r, start="latest", timeout=1) as rd:
        with r.producer() as p:
            send(p)
        vs = rd.peek_batch(64)
        info = rd.peeked_info()
        assert len(vs) == len(info)
        rd.verify()  # what has a CRC matches it; what has none passes
        rd.release()
    return [i.has_crc for i in info]


def send_lengths(*lengths):
    return lambda p: [p.send_bytes(b"x" * n) for n in lengths]


# --------------------------------------------------------------------------
# Creating, reading back


@pytest.mark.parametrize("crc,want", [
    ("full", ("full", 0)),
    ("none", ("none", 0)),
    (100, ("upto", 100)),
    (0, ("upto", 0)),
    (U32_MAX, ("upto", U32_MAX)),
])
def test_create_and_read_back(name, crc, want):
    with Ring.create(name, slots=8, slot_size=512, schema=None,
                     crc=crc) as r:
        assert (r.info.crc, r.info.crc_limit) == want
        # the policy is format 1.1's; creators write the latest minor
        assert r.info.format_major == 1 and r.info.format_minor >= 1
        with Ring.attach(name) as a:  # another mapping reads the same
            assert (a.info.crc, a.info.crc_limit) == want


def test_default_is_full(name):
    with Ring.create(name, slots=8, slot_size=256) as r:
        assert (r.info.crc, r.info.crc_limit) == ("full", 0)
        assert flags_of(r, send_lengths(0, 1, 192)) == [True] * 3


BAD = [
    ("fast", "crc: 'fast' is not full, none or a byte count in "
             "0..4294967295"),
    ("upto", "crc: 'upto' is not full, none or a byte count in "
             "0..4294967295"),
    ("4096", "crc: '4096' is not full, none or a byte count in "
             "0..4294967295"),
    ("FULL", "crc: 'FULL' is not full, none or a byte count in "
             "0..4294967295"),
    (-1, "crc: -1 is not full, none or a byte count in 0..4294967295"),
    (2**32, "crc: 4294967296 is not full, none or a byte count in "
            "0..4294967295"),
    (True, "crc: True is not full, none or a byte count in "
           "0..4294967295"),
    (None, "crc: None is not full, none or a byte count in "
           "0..4294967295"),
    (1.5, "crc: 1.5 is not full, none or a byte count in 0..4294967295"),
]


@pytest.mark.parametrize("crc,msg", BAD, ids=[repr(b[0]) for b in BAD])
def test_bad_crc_says_why(name, crc, msg):
    with pytest.raises(pbring.InvalidArgument) as ei:
        Ring.create(name, crc=crc)
    assert ei.value.errno == errno.EINVAL
    assert ei.value.strerror == msg
    with pytest.raises(pbring.RingNotFound):
        Ring.attach(name, timeout=0.01)


@pytest.mark.parametrize("crc,limit", [(3, 0), (0xFFFFFFFF, 0),
                                       (_lib.PBR_CRC_FULL, 10),
                                       (_lib.PBR_CRC_NONE, 10)])
def test_c_refuses_bad_policy(name, crc, limit):
    """The fields reach C where C has them: a policy > UPTO, or a limit
    without UPTO, is its -EINVAL (Ring.create never passes these)."""
    o = _lib.CreateOpts()
    o.slot_count, o.slot_size = 8, 256
    o.crc, o.crc_limit = crc, limit
    h = ctypes.c_void_p()
    assert _lib.pbr_ring_create(name.encode(), ctypes.byref(o),
                                ctypes.byref(h)) == -errno.EINVAL
    o.crc, o.crc_limit = _lib.PBR_CRC_UPTO, limit
    assert _lib.pbr_ring_create(name.encode(), ctypes.byref(o),
                                ctypes.byref(h)) == 0
    ci = _lib.RingInfoC()
    _lib.pbr_ring_info(h.value, ctypes.byref(ci))
    assert (ci.crc, ci.crc_limit) == (_lib.PBR_CRC_UPTO, limit)
    _lib.pbr_ring_detach(h.value)


# --------------------------------------------------------------------------
# Producers follow it


def test_none_ring_no_crc(name):
    with Ring.create(name, slots=16, slot_size=256, schema="demo",
                     crc="none") as r:
        DeviceEvent = r.message_class

        def send(p):
            p.send_bytes(b"raw")
            p.send(DeviceEvent(id="a", seq=1))
            with p.reserve(5) as buf:
                buf[:] = b"hello"
            res = p.reserve(100)
            res.commit(3)

        assert flags_of(r, send) == [False] * 4
        # and readers take them as they are
        with r.producer() as p, Reader(r, start="latest", timeout=1) as rd:
            p.send(DeviceEvent(id="b", seq=2))
            m = rd.recv()
            assert (m.id, m.seq) == ("b", 2) and not rd.last.has_crc
            assert rd.last.crc32c == 0


def test_upto_100(name):
    with Ring.create(name, slots=16, slot_size=512, schema=None,
                     crc=100) as r:
        assert flags_of(r, send_lengths(50, 200, 100, 101, 0)) == [
            True, False, True, False, True]

        def reserved(p):
            with p.reserve(50) as buf:   # 50 bytes: a CRC
                buf[:] = b"s" * 50
            with p.reserve(200) as buf:  # 200: none
                buf[:] = b"b" * 200
            res = p.reserve(200)         # the length committed decides
            res.commit(50)
            res = p.reserve(50)
            res.commit(0)

        assert flags_of(r, reserved) == [True, False, True, True]


def test_upto_crc_is_right(name):
    with Ring.create(name, slots=8, slot_size=512, schema=None,
                     crc=100) as r, r.producer() as p, \
            Reader(r, timeout=1) as rd:
        p.send_bytes(b"y" * 50)
        rd.peek()
        assert rd.last.has_crc
        assert rd.last.crc32c == pbring.crc32c(b"y" * 50)
        rd.release()


@pytest.mark.parametrize("crc", ["full", "none", 0, 1, 100, 448, U32_MAX])
def test_wants_crc_matches_c(name, crc):
    """The producer's cached threshold is C's pbr_producer_wants_crc()."""
    with Ring.create(name, slots=8, slot_size=512, schema=None,
                     crc=crc) as r, r.producer() as p:
        h = p._handle()
        for n in (0, 1, 2, 99, 100, 101, 447, 448, 449, U32_MAX - 1,
                  U32_MAX):
            c = bool(_lib.pbr_producer_wants_crc(h, n))
            assert p.wants_crc(n) == c, (crc, n)


def test_explicit_crc_wins(name):
    with Ring.create(name, slots=16, slot_size=512, schema=None,
                     crc="none") as r:
        with Reader(r, start="latest", timeout=1) as rd:
            with Producer(r, crc=True) as p:
                assert p.crc is True and p.wants_crc(400)
                p.send_bytes(b"forced")
                with p.reserve(3) as buf:
                    buf[:] = b"abc"
                p.crc = None  # back to the ring's policy
                p.send_bytes(b"policy")
            with r.producer() as p:
                with p.reserve(3, crc=True) as buf:  # for this one only
                    buf[:] = b"one"
                p.send_bytes(b"two")
            rd.peek_batch(8)
            assert [i.has_crc for i in rd.peeked_info()] == [
                True, True, False, True, False]
            rd.verify()
            rd.release()
    with Ring.create(name + "f", slots=16, slot_size=512, schema=None) as r:
        try:
            with Reader(r, start="latest", timeout=1) as rd:
                with Producer(r, crc=False) as p:
                    p.send_bytes(b"bare")
                    with p.reserve(3, crc=True) as buf:
                        buf[:] = b"abc"
                with r.producer() as p:
                    p.send_bytes(b"full")
                    with p.reserve(3, crc=False) as buf:
                        buf[:] = b"abc"
                rd.peek_batch(8)
                assert [i.has_crc for i in rd.peeked_info()] == [
                    False, True, True, False]
                rd.release()
        finally:
            r.unlink()


def test_crc_attribute_checked(name):
    with Ring.create(name, slots=8, slot_size=256) as r:
        with pytest.raises(TypeError):
            Producer(r, crc=1)  # type: ignore[arg-type]
        with r.producer() as p:
            assert p.crc is None
            with pytest.raises(TypeError):
                p.crc = "none"  # type: ignore[assignment]


# --------------------------------------------------------------------------
# The C command on the same rings


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                          **kw)


@pytest.mark.parametrize("arg,want", [
    ("full", ("full", 0)), ("none", ("none", 0)), ("4096", ("upto", 4096)),
    ("0x10", ("upto", 16)), ("0", ("upto", 0)),
    ("4294967295", ("upto", U32_MAX)),
])
def test_c_create_crc_read_by_python(c_bin, name, arg, want):
    r = run([c_bin, "create", name, "--slots", "8", "--slot-size", "512",
             "--schema", "none", "--crc", arg])
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    with Ring.attach(name) as ring:
        assert (ring.info.crc, ring.info.crc_limit) == want
        lengths = (0, 1, 16, 17, 448)
        policy, limit = want
        assert flags_of(ring, send_lengths(*lengths)) == [
            policy == "full" or (policy == "upto" and n <= limit)
            for n in lengths]


@pytest.mark.parametrize("arg", ["fast", "upto", "FULL", "-1", "4294967296"])
def test_c_create_refuses_as_python(c_bin, name, arg):
    """The C command's words and Ring.create's are the same reason."""
    r = run([c_bin, "create", name, "--crc", arg])
    assert r.returncode == 2
    with pytest.raises(pbring.InvalidArgument) as ei:
        Ring.create(name, crc=arg)
    assert r.stderr == (f"pbring create: --{ei.value.strerror} (see "
                        "'pbring create --help')\n")


@pytest.mark.parametrize("crc,text,js", [
    ("full", "crc full, crc_limit 0", ("full", 0)),
    ("none", "crc none, crc_limit 0", ("none", 0)),
    (100, "crc upto, crc_limit 100", ("upto", 100)),
])
def test_c_stat_of_python_ring(c_bin, name, crc, text, js):
    with Ring.create(name, slots=16, slot_size=256, crc=crc) as ring:
        r = run([c_bin, "stat", name])
        assert r.returncode == 0 and r.stderr == "", r
        lines = r.stdout.splitlines()
        assert ring.info.format_minor >= 1  # the policy is format 1.1's
        assert lines[1].startswith(f"format 1.{ring.info.format_minor}, ")
        assert lines[3] == "max_producers 8, max_readers 8"
        assert lines[4] == text
        r = run([c_bin, "stat", name, "--json"])
        assert r.returncode == 0 and r.stderr == "", r
        s = json.loads(r.stdout)
        keys = list(s)
        i = keys.index("seq_base")
        assert keys[i + 1:i + 3] == ["crc", "crc_limit"]
        assert (s["crc"], s["crc_limit"]) == js
        assert f'"seq_base":0,"crc":"{js[0]}","crc_limit":{js[1]},' \
            in r.stdout


def test_python_produce_follows_c_ring_policy(c_bin, name):
    """`python -m pbring produce` on a ring `pbring create --crc` made:
    the small messages carry a CRC, the big ones not, and `consume` (C
    and Python) counts no error."""
    r = run([c_bin, "create", name, "--slots", "64", "--slot-size", "512",
             "--crc", "100"])
    assert r.returncode == 0, r
    with Ring.attach(name) as ring, Reader(ring, timeout=1) as rd:
        for size in (0, 300):
            p = run(PY_CMD + ["produce", name, "--count", "2", "--size",
                              str(size), "--no-wait"])
            assert p.returncode == 0, p
        rd.peek_batch(8)
        assert [(i.length <= 100, i.has_crc) for i in rd.peeked_info()] == [
            (True, True)] * 2 + [(False, False)] * 2
        rd.verify()
        rd.release()
    for cmd in ([c_bin], PY_CMD):
        c = run(cmd + ["consume", name, "--count", "4", "--timeout", "1",
                       "--quiet"])
        assert c.returncode == 0, c
        assert "crc errors 0" in c.stderr, c
