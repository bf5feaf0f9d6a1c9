# SPDX-License-Identifier: MIT
"""Ring.create refuses bad geometry and names with the reason, as the C
command does, instead of ctypes truncating to 32 bits (2**40 slots became
1024, 2**32+16 bytes became 16) or a bare "Invalid argument"."""
from __future__ import annotations

import errno

import pytest

import pbring
from pbring import Ring

CASES = [
    (dict(slots=2**40), "slots: 1099511627776 is not a power of two in "
                        "2..16777216"),
    (dict(slots=0), "slots: 0 is not a power of two in 2..16777216"),
    (dict(slots=24), "slots: 24 is not a power of two in 2..16777216"),
    (dict(slots=True), "slots: True is not a power of two in 2..16777216"),
    (dict(slot_size=2**32 + 128), "slot_size: 4294967424 is not a multiple "
                                  "of 128 in 128..1073741824"),
    (dict(slot_size=200), "slot_size: 200 is not a multiple of 128 in "
                          "128..1073741824"),
    (dict(slot_size=0), "slot_size: 0 is not a multiple of 128 in "
                        "128..1073741824"),
    (dict(max_producers=0), "max_producers: 0 is not in 1..1024"),
    (dict(max_readers=2**32 + 1), "max_readers: 4294967297 is not in "
                                  "1..1024"),
    (dict(mode=0o666), "mode: 438 is not an octal mode without "
                       "world-write"),
    (dict(seq_base=-1), "seq_base: -1 is not in 0..2^64-1"),
]


@pytest.mark.parametrize("kw,msg", CASES, ids=[m.split(":")[0] + str(i)
                                               for i, (_, m) in
                                               enumerate(CASES)])
def test_bad_geometry_says_why(ring_name, kw, msg):
    n = ring_name()
    with pytest.raises(pbring.InvalidArgument) as ei:
        Ring.create(n, **kw)
    assert ei.value.errno == errno.EINVAL
    assert ei.value.strerror == msg
    with pytest.raises(pbring.RingNotFound):
        Ring.attach(n, timeout=0.01)


@pytest.mark.parametrize("bad", ["", "a/b", ".hidden", "x" * 64, "sp ace"])
def test_bad_name_says_why(bad):
    with pytest.raises(pbring.InvalidArgument) as ei:
        Ring.create(bad)
    assert ei.value.strerror == (f"invalid ring name {bad!r} (use 1-63 of "
                                 "[A-Za-z0-9_.-])")
