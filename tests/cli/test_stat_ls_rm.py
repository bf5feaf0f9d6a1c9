# SPDX-License-Identifier: MIT
"""`pbring stat`, `pbring ls`, `pbring rm`, and `pbring demo`."""
import json
import os
import re
import subprocess
import time

import pytest

from cliutil import (DEMO_TYPE, SB_MAGIC, Shm, consume_summary, shm_path,
                     stat_json, wait_for, wait_reader)


def test_stat_text_geometry(pbring, ring):
    name = ring()
    assert pbring("create", name, "--slots", "16", "--slot-size", "256").rc == 0
    js = stat_json(pbring, name)
    r = pbring("stat", name)
    assert r.rc == 0 and r.err == "", r
    lines = r.out.splitlines()
    assert lines[0] == f"ring {name}: format 1.0, {js['total_size']} bytes"
    assert lines[1] == "  slots 16 x 256 B (payload 192 B), multi-producer, seq_base 0"
    assert lines[2] == "  entries: 8 producers, 8 readers"
    assert lines[3] == (f"  type {DEMO_TYPE}, schema {js['schema_len']} B, "
                        f"hash 0x{js['schema_hash']}")
    assert lines[4] == "  claimed 0, abandoned 0, reaped producers 0, reaped readers 0"
    assert len(lines) == 5


def test_stat_text_single_producer(pbring, ring):
    name = ring()
    assert pbring("create", name, "--single-producer").rc == 0
    r = pbring("stat", name)
    assert r.rc == 0, r
    assert "  slots 1024 x 1024 B (payload 960 B), single-producer, seq_base 0\n" in r.out


def test_stat_json_schema(pbring, ring):
    name = ring()
    assert pbring("create", name).rc == 0
    r = pbring("stat", name, "--json")
    assert r.rc == 0 and r.err == "", r
    assert r.out.endswith("}\n") and r.out.count("\n") == 1
    s = json.loads(r.out)
    assert set(s) >= {"name", "format", "total_size", "slot_count",
                      "slot_size", "payload_cap", "single_producer",
                      "seq_base", "msg_type", "schema_len", "schema_hash",
                      "claimed", "abandoned", "producers_reaped",
                      "readers_reaped", "participants"}
    assert re.fullmatch(r"[0-9a-f]{16}", s["schema_hash"])
    # the option may come first, too
    assert json.loads(pbring("stat", "--json", name).out) == s


def test_stat_live_participants(pbring, ring, procs):
    name = ring()
    assert pbring("create", name).rc == 0
    c = procs("consume", name, "--count", 50, "--quiet", "--timeout", 10)
    st = wait_reader(pbring, name, c.pid)
    (rd,) = [p for p in st["participants"] if p["pid"] == c.pid]
    assert rd["role"] == "gating" and rd["alive"] is True
    assert (rd["position"], rd["lag"], rd["delivered"], rd["lost"]) == (0, 0, 0, 0)
    txt = pbring("stat", name).out
    assert re.search(rf"^  reader {rd['index']}: gating, pid {c.pid}, alive, "
                     r"cursor 0, lag 0, delivered 0, lost 0, abandoned 0$",
                     txt, re.M), txt
    # a slow producer shows up while it runs
    p = procs("produce", name, "--count", 50, "--rate", 100)
    st = wait_for(pbring, name,
                  lambda s: any(x["role"] == "producer" and x["pid"] == p.pid
                                and x["alive"] for x in s["participants"]),
                  what="live producer")
    (pr,) = [x for x in st["participants"] if x["role"] == "producer"]
    assert pr["lag"] == 0 and 0 <= pr["position"] <= 50
    txt = pbring("stat", name).out
    assert re.search(rf"^  producer {pr['index']}: pid {p.pid}, alive, "
                     r"committed \d+, pending (idle|claiming|seq \d+ \(mod 2\^62\))$",
                     txt, re.M), txt
    assert p.wait() == 0, p
    assert c.wait() == 0, c
    st = stat_json(pbring, name)
    assert st["claimed"] == 50
    assert st["participants"] == []  # both left cleanly


def test_stat_lossy_reader(pbring, ring, procs):
    name = ring()
    assert pbring("create", name).rc == 0
    c = procs("consume", name, "--lossy", "--quiet")
    st = wait_reader(pbring, name, c.pid, role="lossy")
    assert [p["role"] for p in st["participants"]] == ["lossy"]
    assert re.search(rf"^  reader \d+: lossy, pid {c.pid}, alive,",
                     pbring("stat", name).out, re.M)


def test_stat_missing_ring(pbring, ring):
    name = ring()
    for args in (["stat", name], ["stat", name, "--json"]):
        r = pbring(*args)
        assert r.rc == 1, r
        assert (r.out, r.err) == ("", f"pbring: {name}: no such ring\n")


def test_stat_bad_magic(pbring, ring):
    name = ring()
    assert pbring("create", name).rc == 0
    with Shm(name) as m:
        m.m[SB_MAGIC:SB_MAGIC + 8] = b"NOTARING"
    for args in (["stat", name], ["stat", name, "--json"]):
        r = pbring(*args)
        assert r.rc == 1, r
        assert (r.out, r.err) == ("", f"pbring: {name}: not a pbring ring (bad magic)\n")
    # ls still lists it, with the reason, and succeeds
    r = pbring("ls")
    assert r.rc == 0, r
    assert re.search(rf"^{re.escape(name)}\s+\(not a pbring ring \(bad magic\)\)$",
                     r.out, re.M), r.out
    # and rm removes it
    assert pbring("rm", name).rc == 0
    assert not os.path.exists(shm_path(name))


@pytest.mark.parametrize("size", [0, 100, 8192])
def test_damaged_ring_said_at_once(pbring, ring, size):
    """Truncated or zeroed with no creator at work: 'damaged' at once (not
    'timed out' after the attach timeout), with the way out."""
    name = ring()
    assert pbring("create", name).rc == 0
    with open(shm_path(name), "r+b") as f:
        f.truncate(0)
        f.truncate(size)
    for args in (["stat", name], ["consume", name, "--count", "1"],
                 ["produce", name, "--count", "1"]):
        t0 = time.monotonic()
        r = pbring(*args)
        assert r.rc == 1, r
        assert r.err == (f"pbring: {name}: ring is damaged (unfinished "
                         "creation, truncated, or inconsistent geometry); "
                         f"remove it with 'pbring rm {name}'\n"), r
        assert time.monotonic() - t0 < 0.5, args
    assert pbring("rm", name).rc == 0


STAT_HINT = " (see 'pbring stat --help')\n"


@pytest.mark.parametrize("args,msg", [
    ([], "expects exactly one RING"),
    (["{r}", "{r}"], "expects exactly one RING"),
    (["{r}", "--bogus"], "unknown option '--bogus'"),
    (["-j", "{r}"], "unknown option '-j'"),
], ids=["missing", "two", "bogus", "short"])
def test_stat_usage(pbring, ring, args, msg):
    name = ring()
    assert pbring("create", name).rc == 0
    r = pbring("stat", *[a.format(r=name) for a in args])
    assert r.rc == 2, r
    assert (r.out, r.err) == ("", "pbring stat: " + msg + STAT_HINT)


def test_ls(pbring, ring):
    a, b = ring("a"), ring("b")
    assert pbring("create", a).rc == 0
    assert pbring("create", b, "--slots", "16", "--slot-size", "256").rc == 0
    r = pbring("ls")
    assert r.rc == 0 and r.err == "", r
    ta, tb = stat_json(pbring, a)["total_size"], stat_json(pbring, b)["total_size"]
    assert re.search(rf"^{a}\s+1024 x 1024\s+{re.escape(DEMO_TYPE)}\s+{ta} B$",
                     r.out, re.M), r.out
    assert re.search(rf"^{b}\s+16 x 256\s+{re.escape(DEMO_TYPE)}\s+{tb} B$",
                     r.out, re.M), r.out
    assert pbring("rm", a).rc == 0
    out = pbring("ls").out
    assert not re.search(rf"^{a}\s", out, re.M) and re.search(rf"^{b}\s", out, re.M)


def test_ls_usage(pbring):
    r = pbring("ls", "extra")
    assert r.rc == 2, r
    assert (r.out, r.err) == ("", "pbring ls: takes no arguments (see 'pbring ls --help')\n")


def test_rm(pbring, ring):
    name = ring()
    assert pbring("create", name).rc == 0
    r = pbring("rm", name)
    assert (r.rc, r.out, r.err) == (0, "", "")
    assert not os.path.exists(shm_path(name))
    r = pbring("stat", name)
    assert (r.rc, r.err) == (1, f"pbring: {name}: no such ring\n")
    # and the name is free again
    assert pbring("create", name).rc == 0


def test_rm_missing(pbring, ring):
    name = ring()
    r = pbring("rm", name)
    assert r.rc == 1, r
    assert (r.out, r.err) == ("", f"pbring: {name}: no such ring\n")


def test_rm_several(pbring, ring):
    a, b, missing = ring("a"), ring("b"), ring("m")
    assert pbring("create", a).rc == 0 and pbring("create", b).rc == 0
    # a missing one fails the command but does not stop the others
    r = pbring("rm", a, missing, b)
    assert r.rc == 1, r
    assert r.err == f"pbring: {missing}: no such ring\n"
    assert not os.path.exists(shm_path(a)) and not os.path.exists(shm_path(b))


def test_rm_while_attached(pbring, ring, procs):
    """A consumer that has the ring mapped survives its removal."""
    name = ring()
    assert pbring("create", name).rc == 0
    c = procs("consume", name, "--quiet", "--timeout", "0.3")
    wait_reader(pbring, name, c.pid)
    assert pbring("rm", name).rc == 0
    assert not os.path.exists(shm_path(name))
    assert c.wait() == 0, c


@pytest.mark.parametrize("args,msg", [
    (["a/b"], "invalid ring name 'a/b'"),
    ([".x"], "invalid ring name '.x'"),
    ([], "expects at least one RING"),
], ids=["slash", "dot", "none"])
def test_rm_usage(pbring, args, msg):
    r = pbring("rm", *args)
    assert r.rc == 2, r
    assert (r.out, r.err) == ("", f"pbring rm: {msg} (see 'pbring rm --help')\n")


def test_rm_bad_name_removes_nothing(pbring, ring):
    name = ring()
    assert pbring("create", name).rc == 0
    r = pbring("rm", "a/b", name)
    assert r.rc == 2, r
    assert os.path.exists(shm_path(name))


def test_demo(pbring_path):
    n = 20000
    p = subprocess.Popen([pbring_path, "demo", "--count", str(n)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True)
    demo_ring = f"demo-{p.pid}"
    try:
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if os.path.exists(shm_path(demo_ring)):
            os.unlink(shm_path(demo_ring))
            pytest.fail(f"demo left its ring {demo_ring} behind")
    assert p.returncode == 0, (out, err)
    assert out == (f"ring {demo_ring}: 1 producer -> 1 gating + 1 lossy "
                   f"consumer, {n} DeviceEvents\n")
    g = consume_summary(err, "gating")
    assert (g["received"], g["lost"], g["gaps"], g["crc errors"]) == (n, 0, 0, 0), err
    lossy = consume_summary(err, "lossy")
    assert lossy["crc errors"] == 0, err
    assert 0 < lossy["received"] <= n, err
    assert re.search(rf"^produce: {n} messages from 1 producer in ", err, re.M), err


@pytest.mark.parametrize("args", [["--count", "0"], ["--count"], ["extra"],
                                  ["--count", "5", "extra"]],
                         ids=["zero", "novalue", "extra", "trailing"])
def test_demo_usage(pbring, args):
    r = pbring("demo", *args)
    assert r.rc == 2, r
    assert (r.out, r.err) == (
        "", "pbring demo: takes only --count N (see 'pbring demo --help')\n")
