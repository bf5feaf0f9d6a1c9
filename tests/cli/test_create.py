# SPDX-License-Identifier: MIT
"""`pbring create`: defaults, every option as `stat --json` and the
superblock see it, and every bad input with its exact message."""
import os
import stat as st_mod

import pytest

from cliutil import (DEMO_TYPE, SB_MAX_PRODUCERS, SB_MAX_READERS,
                     SB_SCHEMA_LEN, SB_SCHEMA_OFF, Shm, shm_path, stat_json)

HINT = " (see 'pbring create --help')\n"


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h or 1


def test_defaults(pbring, ring):
    name = ring()
    r = pbring("create", name)
    assert (r.rc, r.out, r.err) == (0, "", "")
    s = stat_json(pbring, name)
    assert s["name"] == name
    assert s["format"] == "1.3"
    assert (s["crc"], s["crc_limit"]) == ("full", 0)
    assert s["slot_count"] == 1024
    assert s["slot_size"] == 1024
    assert s["payload_cap"] == 1024 - 64
    assert s["single_producer"] is False
    assert s["seq_base"] == 0
    assert s["msg_type"] == DEMO_TYPE
    assert s["schema_len"] > 0
    assert s["claimed"] == 0 and s["abandoned"] == 0
    assert s["producers_reaped"] == 0 and s["readers_reaped"] == 0
    assert s["participants"] == []
    info = os.stat(shm_path(name))
    assert st_mod.S_IMODE(info.st_mode) == 0o600
    assert info.st_size == s["total_size"]
    assert s["total_size"] % 4096 == 0
    assert s["total_size"] >= 1024 * 1024 + 4 * 4096
    with Shm(name) as m:
        assert m.u32(SB_MAX_PRODUCERS) == 8
        assert m.u32(SB_MAX_READERS) == 8
        # schema_hash is FNV-1a 64 of the stored FileDescriptorSet (FORMAT 3.2)
        off, n = m.u64(SB_SCHEMA_OFF), m.u32(SB_SCHEMA_LEN)
        assert n == s["schema_len"]
        schema = bytes(m.m[off:off + n])
    assert s["schema_hash"] == "%016x" % fnv1a64(schema)
    assert DEMO_TYPE.split(".")[-1].encode() in schema


def test_geometry_mode_and_flags(pbring, ring):
    name = ring()
    r = pbring("create", name, "--slots", "16", "--slot-size", "256",
               "--mode", "0640", "--single-producer")
    assert (r.rc, r.out, r.err) == (0, "", "")
    s = stat_json(pbring, name)
    assert (s["slot_count"], s["slot_size"], s["payload_cap"]) == (16, 256, 192)
    assert s["single_producer"] is True
    assert st_mod.S_IMODE(os.stat(shm_path(name)).st_mode) == 0o640
    assert os.stat(shm_path(name)).st_size == s["total_size"]
    with Shm(name) as m:
        assert m.u32(SB_MAX_PRODUCERS) == 1  # single-producer: one entry


def test_large_slots_and_world_readable_mode(pbring, ring):
    name = ring()
    r = pbring("create", name, "--slots", "2", "--slot-size", "65536",
               "--mode", "644")
    assert r.rc == 0, r
    s = stat_json(pbring, name)
    assert (s["slot_count"], s["slot_size"], s["payload_cap"]) == (2, 65536, 65472)
    assert st_mod.S_IMODE(os.stat(shm_path(name)).st_mode) == 0o644


def test_producers_and_readers_in_superblock(pbring, ring):
    name = ring()
    r = pbring("create", name, "--producers", "3", "--readers", "5")
    assert r.rc == 0, r
    with Shm(name) as m:
        assert m.u32(SB_MAX_PRODUCERS) == 3
        assert m.u32(SB_MAX_READERS) == 5
    assert stat_json(pbring, name)["single_producer"] is False


def test_producers_and_readers_in_stat_json(pbring, ring):
    name = ring()
    assert pbring("create", name, "--producers", "3", "--readers", "5").rc == 0
    s = stat_json(pbring, name)
    assert s["max_producers"] == 3
    assert s["max_readers"] == 5


def test_schema_demo(pbring, ring):
    name = ring()
    assert pbring("create", name, "--schema", "demo").rc == 0
    s = stat_json(pbring, name)
    assert s["msg_type"] == DEMO_TYPE
    assert s["schema_len"] > 0
    assert s["schema_hash"] != "0" * 16


def test_schema_none(pbring, ring):
    name = ring()
    assert pbring("create", name, "--schema", "none").rc == 0
    s = stat_json(pbring, name)
    assert s["msg_type"] == ""
    assert s["schema_len"] == 0
    assert s["schema_hash"] == "0" * 16


BAD = [
    (["--slots", "3"], "--slots: '3' is not a power of two in 2..16777216"),
    (["--slots", "0"], "--slots: '0' is not a power of two in 2..16777216"),
    (["--slots", "1"], "--slots: '1' is not a power of two in 2..16777216"),
    (["--slots", "33554432"],
     "--slots: '33554432' is not a power of two in 2..16777216"),
    (["--slots", "-4"], "--slots: '-4' is not a power of two in 2..16777216"),
    (["--slots", "many"],
     "--slots: 'many' is not a power of two in 2..16777216"),
    (["--slot-size", "100"],
     "--slot-size: '100' is not a multiple of 128 in 128..1073741824"),
    (["--slot-size", "1000"],
     "--slot-size: '1000' is not a multiple of 128 in 128..1073741824"),
    (["--slot-size", "0"],
     "--slot-size: '0' is not a multiple of 128 in 128..1073741824"),
    (["--slot-size", "2147483648"],
     "--slot-size: '2147483648' is not a multiple of 128 in 128..1073741824"),
    (["--mode", "0666"],
     "--mode: '0666' is not an octal mode without world-write"),
    (["--mode", "0602"],
     "--mode: '0602' is not an octal mode without world-write"),
    (["--mode", "9"], "--mode: '9' is not an octal mode without world-write"),
    (["--mode", "01640"],
     "--mode: '01640' is not an octal mode without world-write"),
    (["--mode", "rw"], "--mode: 'rw' is not an octal mode without world-write"),
    (["--producers", "0"], "--producers: '0' is not in 1..1024"),
    (["--producers", "1025"], "--producers: '1025' is not in 1..1024"),
    (["--readers", "0"], "--readers: '0' is not in 1..1024"),
    (["--readers", "1025"], "--readers: '1025' is not in 1..1024"),
    (["--schema", "other"], "--type NAME is required with --schema FILE"),
    (["--schema", "other", "--type", "a.B"],
     "--schema: cannot read 'other': No such file or directory"),
    (["--schema", "none", "--type", "a.B"],
     "--schema none is untyped: it takes no --type"),
    (["--schema", "demo", "--type", "a.B"],
     "--type: the demo schema's type is pbring.demo.v1.DeviceEvent, not 'a.B'"),
    (["--crc", "some"],
     "--crc: 'some' is not full, none or a byte count in 0..4294967295"),
    (["--crc", "4294967296"],
     "--crc: '4294967296' is not full, none or a byte count in 0..4294967295"),
    (["--crc", "-1"],
     "--crc: '-1' is not full, none or a byte count in 0..4294967295"),
]


@pytest.mark.parametrize("arg,crc,limit", [
    ("full", "full", 0), ("none", "none", 0), ("4096", "upto", 4096),
    ("0", "upto", 0), ("4294967295", "upto", 4294967295)])
def test_crc_policy(pbring, ring, arg, crc, limit):
    """FORMAT.md §6.2: the policy is stored and shown; C producers follow
    it (the scenario suite checks Go and Python producers)."""
    name = ring()
    assert pbring("create", name, "--crc", arg).rc == 0
    s = stat_json(pbring, name)
    assert (s["crc"], s["crc_limit"]) == (crc, limit)
    assert f"crc {crc}, crc_limit {limit}\n" in pbring("stat", name).out


@pytest.mark.parametrize("args,msg", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_option_value(pbring, ring, args, msg):
    name = ring()
    r = pbring("create", name, *args)
    assert r.rc == 2, r
    assert r.out == ""
    assert r.err == "pbring create: " + msg + HINT
    assert not os.path.exists(shm_path(name))


NAME_MSG = "invalid ring name '{}' (use 1-63 of [A-Za-z0-9_.-])"


@pytest.mark.parametrize("bad", ["a/b", "", ".hidden", "sp ace", "x" * 64,
                                 "caf\u00e9"])
def test_bad_ring_name(pbring, bad):
    r = pbring("create", bad)
    assert r.rc == 2, r
    assert r.out == ""
    assert r.err == "pbring create: " + NAME_MSG.format(bad) + HINT
    assert not os.path.exists(shm_path(bad))


def test_longest_name(pbring, ring):
    name = ring()
    name = name + "x" * (63 - len(name))
    try:
        r = pbring("create", name)
        assert r.rc == 0, r
        assert stat_json(pbring, name)["name"] == name
    finally:
        if os.path.exists(shm_path(name)):
            os.unlink(shm_path(name))


@pytest.mark.parametrize("args", [[], ["{r}", "extra"], ["{r}", "{r}"]],
                         ids=["missing", "extra", "twice"])
def test_ring_count(pbring, ring, args):
    name = ring()
    r = pbring("create", *[a.format(r=name) for a in args])
    assert r.rc == 2, r
    assert r.out == ""
    assert r.err == "pbring create: expects exactly one RING" + HINT
    assert not os.path.exists(shm_path(name))


def test_option_without_value(pbring, ring):
    name = ring()
    r = pbring("create", name, "--slots")
    assert r.rc == 2, r
    assert r.err == "pbring create: option '--slots' needs a value" + HINT


@pytest.mark.parametrize("cmd", ["create", "produce", "consume"])
def test_unknown_option_one_line(pbring, ring, cmd):
    name = ring()
    r = pbring(cmd, name, "--bogus")
    assert r.rc == 2, r
    assert len(r.err_lines) == 1, r.err
    assert r.err.startswith(f"pbring {cmd}: ") and "--bogus" in r.err


def test_create_twice(pbring, ring):
    name = ring()
    assert pbring("create", name, "--slots", "16").rc == 0
    before = stat_json(pbring, name)
    r = pbring("create", name, "--slots", "32")
    assert r.rc == 1, r
    assert r.out == ""
    assert r.err == f"pbring: {name}: ring already exists\n"
    # the existing ring is left as it was
    assert stat_json(pbring, name) == before


def test_single_producer_excludes_more_producers(pbring, ring):
    name = ring()
    r = pbring("create", name, "--single-producer", "--producers", "3")
    assert r.rc == 2, r
    assert r.err == ("pbring create: --single-producer allows one producer, "
                     "not --producers 3" + HINT)
    assert not os.path.exists(shm_path(name))
