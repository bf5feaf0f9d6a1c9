# SPDX-License-Identifier: MIT
"""Scenario 10: what the three command lines report, word for word alike
(docs/CLI.md, issue 13): one corrupted payload is one crc error, named by
its ring seq, never also a gap or a lost message; replayed backlog is
counted, not timed, and a rate is never 0; a message too large for a slot
names both sizes; a ring owned by another user is refused until
--any-owner accepts it.

ids: the acting language (the consumer, or the producer); its peer is the
next language.
"""
import mmap
import os
import re
import struct

import pytest

from scenlib import ACTING, SHM_DIR, rotate

SB_SLOT_SIZE, SB_SLOTS_OFF, SLOT_HDR = 0x034, 0x070, 64
DURATION = r"(?:-|\d+ ns|\d+\.\d (?:us|ms|s))"
SUMMARY = re.compile(
    r"^consume \(gating\): received (?P<received>\d+), lost (?P<lost>\d+), "
    r"missed 0, gaps (?P<gaps>\d+), duplicates 0, crc errors (?P<crc>\d+), "
    r"content errors (?P<content>\d+), abandoned 0, rate (?P<rate>\d+) "
    rf"msg/s, latency p50 (?P<p50>{DURATION}) p99 {DURATION} max {DURATION} "
    r"\(commit to receive, including time queued in the ring"
    r"(?P<replayed>; \d+ replayed messages not timed)?\)$")


def flip_payload_byte(ring, seq):
    """Flip the last payload byte (a blob byte) of committed message seq."""
    with open(os.path.join(SHM_DIR, f"pbring.{ring}"), "r+b") as f:
        m = mmap.mmap(f.fileno(), 0)
        try:
            slot_size, = struct.unpack_from("<I", m, SB_SLOT_SIZE)
            slots_off, = struct.unpack_from("<Q", m, SB_SLOTS_OFF)
            slot = slots_off + seq * slot_size
            assert struct.unpack_from("<Q", m, slot)[0] == seq << 2 | 1
            length, = struct.unpack_from("<I", m, slot + 8)
            m[slot + SLOT_HDR + length - 1] ^= 0xFF
        finally:
            m.close()


@pytest.mark.parametrize("lang", ACTING)
def test_corrupt_payload_counted_once(scen, lang):
    ring = scen.ring("crc", slots=16)
    r = scen.run(rotate(lang, 1), "produce", ring, "--no-wait", "--count", 10,
                 "--size", 16)
    assert r.returncode == 0, r.stderr
    flip_payload_byte(ring, 3)
    r = scen.run(lang, "consume", ring, "--quiet", "--timeout", "0.3")
    assert r.returncode == 1, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 3, r.stderr
    assert lines[0] == f"pbring: {ring}: seq 3 (producer 0): CRC mismatch"
    m = SUMMARY.match(lines[1])
    assert m, lines[1]
    assert (m["received"], m["lost"], m["gaps"], m["crc"], m["content"]) == \
        ("9", "0", "0", "1", "0"), lines[1]
    # all of it was there before the consumer: replayed, not timed
    assert (m["p50"], m["replayed"]) == \
        ("-", "; 9 replayed messages not timed"), lines[1]
    assert int(m["rate"]) > 0, lines[1]
    assert lines[2] == f"pbring: {ring}: 1 corrupt messages"


@pytest.mark.parametrize("lang", ACTING)
def test_size_error_names_sizes(scen, lang):
    ring = scen.ring("big", slots=16, slot_size=256)
    r = scen.run(lang, "produce", ring, "--no-wait", "--count", 1,
                 "--size", 300)
    assert r.returncode == 1, r.stderr
    m = re.fullmatch(
        rf"pbring: {ring}: a message of (\d+) bytes does not fit in a slot "
        r"\(payload capacity 192 bytes of --slot-size 256\): use a smaller "
        r"--size or a larger --slot-size", r.stderr.splitlines()[-1])
    assert m and int(m[1]) > 300, r.stderr


@pytest.mark.parametrize("lang", ACTING)
def test_any_owner(scen, lang):
    if os.geteuid() != 0:
        pytest.skip("giving a ring to another user needs root")
    ring = scen.ring("own", slots=16)
    os.chown(os.path.join(SHM_DIR, f"pbring.{ring}"), 65534, -1)
    r = scen.run(lang, "consume", ring, "--count", 1, "--timeout", "0.2")
    assert (r.returncode, r.stderr) == (1, (
        f"pbring: {ring}: ring owned by another user (uid 65534): use "
        "--any-owner to accept it\n"))
    r = scen.run(rotate(lang, 1), "produce", ring, "--any-owner", "--no-wait",
                 "--count", 4)
    assert r.returncode == 0, r.stderr
    r = scen.run(lang, "consume", ring, "--any-owner", "--quiet", "--count",
                 4, "--timeout", 5)
    assert r.returncode == 0, r.stderr
    m = SUMMARY.match(r.stderr.splitlines()[0])
    assert m and m["received"] == "4", r.stderr
