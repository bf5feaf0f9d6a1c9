# SPDX-License-Identifier: MIT
"""`pbring stat`, `pbring ls`, `pbring rm`, and `pbring demo`."""
import json
import os
import re
import signal
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
    assert r.out.splitlines() == [
        f"name {name}",
        f"format 1.3, total_size {js['total_size']}",
        "slot_count 16, slot_size 256, payload_cap 192, single_producer false, "
        "seq_base 0",
        "max_producers 8, max_readers 8",
        "crc full, crc_limit 0",
        f"msg_type {DEMO_TYPE}, schema_len {js['schema_len']}, "
        f"schema_hash {js['schema_hash']}",
        "claimed 0, abandoned 0, producers_reaped 0, readers_reaped 0",
        "participants 0"]


def test_stat_text_single_producer(pbring, ring):
    name = ring()
    assert pbring("create", name, "--single-producer").rc == 0
    r = pbring("stat", name)
    assert r.rc == 0, r
    assert ("slot_count 1024, slot_size 1024, payload_cap 960, "
            "single_producer true, seq_base 0\n") in r.out


def parse_stat_text(out):
    """`pbring stat` text -> (ring fields, [participant fields]): every
    line is "field value" pairs joined by ", "; participants are the
    indented lines."""
    top, parts = {}, []
    for line in out.splitlines():
        fields = dict(kv.split(" ", 1) for kv in line.strip().split(", "))
        if line.startswith("  "):
            parts.append(fields)
        else:
            assert not set(fields) & set(top), line
            top.update(fields)
    return top, parts


# What the text shows of each role; the JSON's other fields are 0 for it.
TEXT_FIELDS = {
    "producer": ["role", "index", "pid", "alive", "position", "pending"],
    "gating": ["role", "index", "pid", "alive", "position", "lag",
               "delivered", "lost", "abandoned"],
}
TEXT_FIELDS["lossy"] = TEXT_FIELDS["gating"]


def text_value(key, v):
    """A JSON value as the text writes it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if key == "msg_type" and v == "":
        return "(raw bytes)"
    if key == "pending":  # the raw word (FORMAT.md): idle, claiming, seq
        return {0: "idle", 1: "claiming"}.get(v, f"seq {v >> 2}")
    return str(v)


def check_text_matches_json(text, js):
    top, parts = parse_stat_text(text)
    for key, v in js.items():
        if key == "participants":
            assert top.pop(key) == str(len(v))
            continue
        assert key in top, f"JSON field {key} has no text label: {text}"
        assert top.pop(key) == text_value(key, v), key
    assert top == {}, f"text fields that --json lacks: {top}"
    assert len(parts) == len(js["participants"])
    for tp, jp in zip(parts, js["participants"]):
        shown = TEXT_FIELDS[jp["role"]]
        assert list(tp) == shown, tp
        for key, v in jp.items():
            if key in shown:
                assert tp[key] == text_value(key, v), (key, tp, jp)
            else:
                assert v == 0, (key, jp)  # nothing hidden
    # every participant field of the JSON is a text label for some role
    labels = set().union(*TEXT_FIELDS.values())
    for jp in js["participants"]:
        assert set(jp) == labels, jp


@pytest.fixture
def forge():
    """forge(ring, what) -> (Popen, sequence): tests/scenarios/forge plays
    a producer stopped at an exact step (it pauses until killed; killing
    it is how a producer dies). Killed at the end of the test."""
    path = os.environ.get("PBRING_FORGE")
    if not path:
        pytest.skip("PBRING_FORGE is not set (plain builds set it)")
    started = []

    def start(ring_name, what):
        p = subprocess.Popen([path, ring_name, what], stdout=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True)
        started.append(p)
        line = p.stdout.readline()
        assert line.strip().isdigit(), f"forge {what}: {line!r}"
        return p, int(line)

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


def test_stat_text_matches_json(pbring, ring, procs, forge):
    """Every JSON field has its text label, with the same value, for a
    ring with a producer and a gating and a lossy reader."""
    name = ring()
    assert pbring("create", name, "--slots", "16", "--producers", "4").rc == 0
    g = procs("consume", name, "--quiet", "--timeout", 30)
    wait_reader(pbring, name, g.pid)
    lossy = procs("consume", name, "--lossy", "--quiet", "--timeout", 30)
    wait_reader(pbring, name, lossy.pid, role="lossy")
    assert pbring("produce", name, "--count", 3).rc == 0
    wait_for(pbring, name, lambda st: all(p["delivered"] == 3
                                          for p in st["participants"]),
             what="both readers at 3")
    for c in (g, lossy):  # hold still while stat looks twice
        os.kill(c.pid, signal.SIGSTOP)
    forge(name, "claim-busy")  # a live producer with a pending sequence
    js = stat_json(pbring, name)
    assert [p["role"] for p in js["participants"]] == \
        ["producer", "gating", "lossy"]
    r = pbring("stat", name)
    assert r.rc == 0 and r.err == "", r
    check_text_matches_json(r.out, js)
    assert "  role producer, index 0, pid " in r.out and "pending seq 3" in r.out


def test_stat_recovered_dead_producer(pbring, ring, procs, forge):
    """A producer killed in the middle of a message: pending seq s while
    it is dead and s unfinished; once the gating reader recovered s (an
    abandoned record), the entry still lists it, dead, but nothing is
    pending any more."""
    name = ring()
    assert pbring("create", name, "--slots", "16", "--producers", "4").rc == 0
    c = procs("consume", name, "--quiet", "--timeout", 30)
    wait_reader(pbring, name, c.pid)
    assert pbring("produce", name, "--count", 5).rc == 0
    wait_for(pbring, name, lambda st: st["participants"][0]["delivered"] == 5,
             what="5 delivered")
    os.kill(c.pid, signal.SIGSTOP)  # no recovery until we have looked
    fp, s = forge(name, "claim-busy")
    assert s == 5
    line = re.compile(r"^  role producer, index (\d+), pid (\d+), alive "
                      r"(true|false), position 0, pending (.*)$", re.M)
    m = line.search(pbring("stat", name).out)
    assert m and m.group(2, 3, 4) == (str(fp.pid), "true", "seq 5"), m
    fp.kill()
    fp.wait()
    st = stat_json(pbring, name)
    (p,) = [x for x in st["participants"] if x["role"] == "producer"]
    assert (p["alive"], p["pending"]) == (False, 5 << 2 | 2)
    m = line.search(pbring("stat", name).out)
    assert m and m.group(3, 4) == ("false", "seq 5"), m
    os.kill(c.pid, signal.SIGCONT)
    st = wait_for(pbring, name,
                  lambda st: any(x["abandoned"] == 1
                                 for x in st["participants"]),
                  what="the reader recovering seq 5")
    assert st["abandoned"] == 1
    (p,) = [x for x in st["participants"] if x["role"] == "producer"]
    assert (p["alive"], p["pending"]) == (False, 0), p
    out = pbring("stat", name).out
    m = line.search(out)
    assert m and m.group(3, 4) == ("false", "idle"), out
    assert "pending seq" not in out and "mod 2^62" not in out


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
    assert re.search(rf"^  role gating, index {rd['index']}, pid {c.pid}, "
                     r"alive true, position 0, lag 0, delivered 0, lost 0, "
                     r"abandoned 0$", txt, re.M), txt
    # a slow producer shows up while it runs
    p = procs("produce", name, "--count", 50, "--rate", 100)
    st = wait_for(pbring, name,
                  lambda s: any(x["role"] == "producer" and x["pid"] == p.pid
                                and x["alive"] for x in s["participants"]),
                  what="live producer")
    (pr,) = [x for x in st["participants"] if x["role"] == "producer"]
    assert pr["lag"] == 0 and 0 <= pr["position"] <= 50
    txt = pbring("stat", name).out
    assert re.search(rf"^  role producer, index {pr['index']}, pid {p.pid}, "
                     r"alive true, position \d+, pending (idle|claiming|seq \d+)$",
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
    assert re.search(rf"^  role lossy, index \d+, pid {c.pid}, alive true,",
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


def test_ls_header_and_columns(pbring, ring):
    """A header names the columns, and they stay aligned under it however
    long a ring's name or type (names go up to 63 bytes)."""
    short = ring("s")
    long = (ring("l") + "-" + "x" * 63)[:63]
    raw = ring("r")
    assert pbring("create", short, "--slots", "16", "--slot-size", "256").rc == 0
    assert pbring("create", long).rc == 0
    assert pbring("create", raw, "--schema", "none", "--slots", "2").rc == 0
    try:
        r = pbring("ls")
        assert r.rc == 0 and r.err == "", r
        lines = r.out.splitlines()
        head = lines[0]
        assert head.split() == ["NAME", "SLOTS", "TYPE", "SIZE"], head
        mine = {ln.split()[0]: ln for ln in lines[1:]
                if ln.split()[0] in (short, long, raw)}
        assert set(mine) == {short, long, raw}, r.out
        for name, ln in mine.items():
            # the type starts under TYPE, the size ends under SIZE
            t = ln.index(" pbring.demo" if name != raw else " (raw bytes)") + 1
            assert t == head.index("TYPE"), (head, ln)
            assert len(ln) == len(head) and ln.endswith(" B"), (head, ln)
            assert ln[head.index("SLOTS") - 1] == " "
        # sorted by name
        names = [ln.split()[0] for ln in lines[1:]]
        assert names == sorted(names)
    finally:
        pbring("rm", long)


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
    """A ring in use is kept, naming who uses it, unless --force; then its
    consumer stops, saying why."""
    name = ring()
    assert pbring("create", name).rc == 0
    c = procs("consume", name, "--quiet", "--timeout", "5")
    st = wait_reader(pbring, name, c.pid)
    (rd,) = st["participants"]
    r = pbring("rm", name)
    assert (r.rc, r.out, r.err) == (
        1, "", f"pbring: {name}: in use by gating reader {rd['index']} "
        f"(pid {c.pid}); not removed (stop them first, or use --force)\n")
    assert os.path.exists(shm_path(name))
    assert pbring("rm", "--force", name).rc == 0
    assert not os.path.exists(shm_path(name))
    assert c.wait() == 1, c
    assert "ring was removed while in use" in c.err, c


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
