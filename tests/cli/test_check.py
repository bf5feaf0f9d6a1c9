# SPDX-License-Identifier: MIT
"""`pbring check`: the health check for orchestrators. Exit 0 (one "ok:"
line, or nothing with --quiet), 1 with one line naming the first failed
condition, 2 for usage; read-only, so it must leave the segment as it
found it and work with read permission only."""
import json
import os
import re
import signal
import subprocess
import time

from cliutil import (SB_SLOT_COUNT, SB_SLOT_SIZE, SB_SLOTS_OFF, Shm,
                     pbring_bin, shm_path, stat_json, wait_for, wait_reader)

NOBODY = 65534


def check(pbring, name, *args, **kw):
    return pbring("check", name, *args, **kw)


def fail_line(name, why):
    return f"pbring check: {name}: {why}\n"


def test_check_help_and_usage(pbring, ring):
    r = pbring("check", "--help")
    assert r.rc == 0 and r.out.startswith("usage: pbring check RING"), r
    for flag in ("--producers N", "--readers N", "--max-lag N",
                 "--max-age SEC", "--wait SEC", "--quiet"):
        assert flag in r.out, flag
    name = ring()
    bad = [
        ([], "expects exactly one RING"),
        ([name, name], "expects exactly one RING"),
        ([name, "--bogus"], "unknown option '--bogus'"),
        ([name, "--producers"], "option '--producers' needs a value"),
        ([name, "--producers", "-1"],
         "--producers: '-1' is not a count (0 .. 1024)"),
        ([name, "--readers", "x"],
         "--readers: 'x' is not a count (0 .. 1024)"),
        ([name, "--readers", "1025"],
         "--readers: '1025' is not a count (0 .. 1024)"),
        ([name, "--max-lag", "1.5"],
         "--max-lag: '1.5' is not a number of messages"),
        ([name, "--max-age", "soon"],
         "--max-age: 'soon' is not a number of seconds"),
        ([name, "--max-age", "-1"],
         "--max-age: '-1' is not a number of seconds"),
        ([name, "--wait", "nan"],
         "--wait: 'nan' is not a number of seconds"),
        (["bad/name"],
         "invalid ring name 'bad/name' (use 1-63 of [A-Za-z0-9_.-])"),
    ]
    for args, msg in bad:
        r = pbring("check", *args)
        assert (r.rc, r.out) == (2, ""), (args, r)
        assert r.err == (f"pbring check: {msg} (see 'pbring check "
                         "--help')\n"), (args, r)


def test_check_missing_ring(pbring, ring):
    name = ring()
    r = check(pbring, name)
    assert (r.rc, r.out, r.err) == (1, "", fail_line(name, "no such ring"))
    # --log-format json: the same line as a JSON object
    r = pbring("--log-format", "json", "check", name)
    assert r.rc == 1 and r.out == "", r
    obj = json.loads(r.err)
    assert (obj["level"], obj["event"], obj["ring"], obj["message"]) == (
        "error", "check.unhealthy", name, f"{name}: no such ring"), obj


def test_check_idle_ring(pbring, ring):
    """A fresh ring: intact, no participants; what is asked of it decides."""
    name = ring()
    assert pbring("create", name, "--slots", 16).rc == 0
    r = check(pbring, name)
    assert (r.rc, r.err) == (0, ""), r
    assert r.out == (f"ok: {name}: producers 0, readers 0, lag 0, "
                     "nothing committed yet\n")
    r = check(pbring, name, "--quiet", "--producers", 0, "--max-lag", 0)
    assert (r.rc, r.out, r.err) == (0, "", ""), r
    r = check(pbring, name, "-q", "--producers", 1)
    assert (r.rc, r.out, r.err) == (1, "", fail_line(
        name, "no live producer (want 1, found 0)")), r
    r = check(pbring, name, "--readers", 2)
    assert (r.rc, r.err) == (1, fail_line(
        name, "no live reader (want 2, found 0)")), r
    # never a message: the age counts from the ring's creation
    assert check(pbring, name, "--max-age", 60).rc == 0
    time.sleep(0.3)
    r = check(pbring, name, "--max-age", 0.2)
    assert r.rc == 1 and r.out == "", r
    assert re.fullmatch(
        rf"pbring check: {name}: nothing committed since the ring was "
        r"created \d+\.\d (ms|s) ago \(max 0\.2 s\)\n", r.err), r


def test_check_healthy_then_producer_dies(pbring, ring, procs):
    name = ring()
    assert pbring("create", name, "--slots", 1024).rc == 0
    c = procs("consume", name, "--quiet", "--timeout", 60)
    wait_reader(pbring, name, c.pid)
    p = procs("produce", name, "--rate", 200, "--count", 100000)
    wait_for(pbring, name, lambda st: st["claimed"] > 0, what="a message")
    r = check(pbring, name, "--producers", 1, "--readers", 1, "--max-lag",
              1000, "--max-age", 2)
    assert (r.rc, r.err) == (0, ""), r
    assert re.fullmatch(
        rf"ok: {name}: producers 1, readers 1, lag \d+, last commit "
        r"\d+(\.\d)? (ns|us|ms) ago\n", r.out), r
    r = check(pbring, name, "--producers", 2)
    assert (r.rc, r.err) == (1, fail_line(
        name, "too few live producers (want 2, found 1)")), r
    r = check(pbring, name, "--producers", 1, "--readers", 2)
    assert (r.rc, r.err) == (1, fail_line(
        name, "too few live readers (want 2, found 1)")), r
    # killed: its entry stays until reclaimed, but its lock is gone
    p.p.kill()
    p.wait()
    r = check(pbring, name, "--producers", 1)
    assert (r.rc, r.err) == (1, fail_line(
        name, "no live producer (want 1, found 0)")), r


def test_check_lagging_reader(pbring, ring, procs):
    """A gating reader that stopped reading (SIGSTOP: alive, not reading)."""
    name = ring()
    assert pbring("create", name, "--slots", 1024).rc == 0
    c = procs("consume", name, "--quiet", "--timeout", 60)
    st = wait_reader(pbring, name, c.pid)
    (entry,) = [x for x in st["participants"] if x["pid"] == c.pid]
    os.kill(c.pid, signal.SIGSTOP)
    assert pbring("produce", name, "--count", 500).rc == 0
    r = check(pbring, name, "--readers", 1, "--max-lag", 500)
    assert r.rc == 0, r
    assert f"producers 0, readers 1, lag 500, " in r.out, r
    r = check(pbring, name, "--readers", 1, "--max-lag", 100)
    assert (r.rc, r.out, r.err) == (1, "", fail_line(
        name, f"reader {entry['index']} (pid {c.pid}) lags by 500 "
              "messages (max 100)")), r
    # a lossy reader's lag is its own loss, not a stalled stream
    lossy = procs("consume", name, "--lossy", "--quiet", "--timeout", 60)
    wait_reader(pbring, name, lossy.pid, role="lossy")
    os.kill(lossy.pid, signal.SIGSTOP)
    assert pbring("produce", name, "--count", 100).rc == 0
    r = check(pbring, name, "--readers", 2, "--max-lag", 600)
    assert r.rc == 0, r
    # the producer conditions come before the lag
    r = check(pbring, name, "--producers", 1, "--max-lag", 0)
    assert r.err == fail_line(name, "no live producer (want 1, found 0)")


def test_check_detached_durable_reader_lags(pbring, ring, procs):
    """A durable reader whose process is gone still holds producers back
    (format 1.3): --max-lag names it, though it is not a live reader."""
    name = ring()
    assert pbring("create", name, "--durable-readers", "--slots", 64).rc == 0
    c = procs("consume", name, "--durable", "keeper", "--count", 1,
              "--quiet", "--timeout", 30)
    wait_for(pbring, name,
             lambda st: any(p.get("durable") == "keeper" and p["alive"]
                            for p in st["participants"]),
             what="durable reader keeper")
    assert pbring("produce", name, "--count", 41).rc == 0
    assert c.wait() == 0, c
    r = check(pbring, name, "--max-lag", 40)
    assert r.rc == 0 and ", readers 0, lag 40, " in r.out, r
    r = check(pbring, name, "--max-lag", 39)
    assert (r.rc, r.out, r.err) == (1, "", fail_line(
        name, "durable reader keeper (detached) lags by 40 messages "
              "(max 39)")), r
    assert pbring("rm", name, "--reader", "keeper").rc == 0
    r = check(pbring, name, "--max-lag", 0)
    assert r.rc == 0 and ", lag 0, " in r.out, r


def test_check_stale_ring(pbring, ring):
    name = ring()
    assert pbring("create", name, "--slots", 64).rc == 0
    assert pbring("produce", name, "--count", 5, "--no-wait").rc == 0
    r = check(pbring, name, "--max-age", 5)
    assert r.rc == 0 and ", last commit " in r.out, r
    time.sleep(0.3)
    r = check(pbring, name, "--max-age", 0.2)
    assert r.rc == 1 and r.out == "", r
    m = re.fullmatch(rf"pbring check: {name}: nothing committed for "
                     r"(\d+\.\d) (ms|s) \(max 0\.2 s\)\n", r.err)
    assert m, r
    age = float(m[1]) / (1000 if m[2] == "ms" else 1)
    assert 0.3 <= age < 30, r
    assert check(pbring, name, "--max-age", 60).rc == 0
    # one more message: fresh again
    assert pbring("produce", name, "--count", 1, "--no-wait").rc == 0
    assert check(pbring, name, "--max-age", 0.2).rc == 0


def zero_timestamps(name):
    with Shm(name) as m:
        n, size, off = (m.u32(SB_SLOT_COUNT), m.u32(SB_SLOT_SIZE),
                        m.u64(SB_SLOTS_OFF))
        for i in range(n):
            m.put("<Q", off + i * size + 0x18, 0)


def test_check_no_timestamps(pbring, ring):
    """Messages sent without a timestamp: the age cannot be told, which
    fails --max-age (and only it)."""
    name = ring()
    assert pbring("create", name, "--slots", 16).rc == 0
    assert pbring("produce", name, "--count", 3, "--no-wait").rc == 0
    zero_timestamps(name)
    r = check(pbring, name)
    assert r.rc == 0 and r.out.endswith(", last commit time unknown\n"), r
    r = check(pbring, name, "--max-age", 60)
    assert (r.rc, r.err) == (1, fail_line(
        name, "cannot tell when the last message was committed: the "
              "newest messages carry no timestamp")), r


def test_check_damaged_ring(pbring, ring):
    name = ring()
    assert pbring("create", name, "--slots", 16).rc == 0
    path = shm_path(name)
    with open(path, "r+b") as f:  # the magic, as dd would overwrite it
        f.write(b"NOTARING")
    r = check(pbring, name)
    assert (r.rc, r.out, r.err) == (1, "", fail_line(
        name, "damaged ring: not a pbring ring (bad magic)")), r
    name = ring()
    assert pbring("create", name, "--slots", 16).rc == 0
    os.truncate(shm_path(name), 8192)
    r = check(pbring, name)
    assert (r.rc, r.out, r.err) == (1, "", fail_line(
        name, "damaged ring: ring is damaged (unfinished creation, "
              "truncated, or inconsistent geometry)")), r


def test_check_cursor_beyond_claim(pbring, ring, procs):
    """A reader cursor past the claim is not a lag: it is damage."""
    name = ring()
    assert pbring("create", name, "--slots", 16).rc == 0
    c = procs("consume", name, "--quiet", "--timeout", 60)
    st = wait_reader(pbring, name, c.pid)
    (entry,) = [x for x in st["participants"] if x["pid"] == c.pid]
    os.kill(c.pid, signal.SIGSTOP)
    with Shm(name) as m:  # FORMAT.md §5: readers after the producers
        ptab, nprod = m.u64(0x050), m.u32(0x038)
        m.put("<Q", ptab + (nprod + entry["index"]) * 128, 77)
    r = check(pbring, name)
    assert (r.rc, r.err) == (1, fail_line(
        name, f"damaged ring: reader {entry['index']}'s cursor 77 is "
              "beyond the claim 0")), r


def segment_bytes(name):
    with open(shm_path(name), "rb") as f:
        return f.read()


def as_reader_only():
    """Root: become nobody in root's group, who may read a 0640 ring of
    root's and not write it."""
    os.setgroups([0])
    os.setgid(0)
    os.setuid(NOBODY)


def test_check_writes_nothing(pbring, ring, procs):
    """Byte for byte the same segment after checks of every kind, passing
    and failing, with a (stopped) reader and a dead producer in it; and
    read permission is enough."""
    name = ring()
    assert pbring("create", name, "--slots", 64, "--mode", "0640").rc == 0
    c = procs("consume", name, "--quiet", "--timeout", 60)
    wait_reader(pbring, name, c.pid)
    os.kill(c.pid, signal.SIGSTOP)  # first: it would reclaim the producer
    p = procs("produce", name, "--rate", 1000, "--count", 100000)
    wait_for(pbring, name, lambda st: st["claimed"] >= 10, what="messages")
    p.p.kill()  # a dead producer: a check must not reclaim its entry
    p.wait()
    before = segment_bytes(name)
    runs = [[], ["--producers", 1], ["--readers", 1, "--max-lag", 0],
            ["--max-age", 0.000001], ["--max-age", 60, "--readers", 1],
            ["--wait", 0.3, "--producers", 1]]
    kw = {"preexec_fn": as_reader_only} if os.geteuid() == 0 else {}
    if not kw:
        os.chmod(shm_path(name), 0o440)
    for args in runs:
        r = check(pbring, name, *args, **kw)
        assert r.rc in (0, 1) and "permission" not in r.err, (args, r)
    r = check(pbring, name, "--readers", 1, **kw)
    assert r.rc == 0 and "readers 1" in r.out, r
    assert segment_bytes(name) == before
    st = stat_json(pbring, name)
    assert any(x["role"] == "producer" and not x["alive"]
               for x in st["participants"]), st  # still not reclaimed


def test_check_world_writable(pbring, ring):
    """Any owner is accepted (it writes nothing), a ring everyone may
    write is not (SECURITY.md)."""
    name = ring()
    assert pbring("create", name, "--slots", 16).rc == 0
    os.chmod(shm_path(name), 0o666)
    r = check(pbring, name)
    assert (r.rc, r.out, r.err) == (1, "", fail_line(
        name, "ring writable by everyone: refused (see SECURITY.md)")), r
    if os.geteuid() == 0:
        os.chmod(shm_path(name), 0o644)
        os.chown(shm_path(name), NOBODY, -1)
        r = check(pbring, name)
        assert r.rc == 0 and r.out.startswith(f"ok: {name}: "), r


def test_check_permission_denied(pbring, ring):
    if os.geteuid() != 0:
        return  # the owner can always read its own ring
    name = ring()
    assert pbring("create", name, "--slots", 16, "--mode", "0600").rc == 0
    r = check(pbring, name, preexec_fn=as_reader_only)
    assert (r.rc, r.out, r.err) == (1, "", fail_line(
        name, "permission denied")), r


def test_check_wait(pbring, ring, procs, pbring_path):
    name = ring()
    # times out: the last failure
    r = check(pbring, name, "--wait", 0.3)
    assert (r.rc, r.err) == (1, fail_line(name, "no such ring")), r
    assert r.elapsed >= 0.3, r
    # becomes healthy while it waits
    w = procs("check", name, "--wait", 30, "--producers", 1, "--max-age", 5)
    time.sleep(0.3)
    assert w.p.poll() is None
    assert pbring("create", name, "--slots", 64).rc == 0
    time.sleep(0.3)
    assert w.p.poll() is None  # no producer yet
    procs("produce", name, "--rate", 100, "--count", 100000, "--no-wait")
    assert w.wait(timeout=20) == 0, w
    assert w.out.startswith(f"ok: {name}: producers 1, "), w.out
    # Ctrl-C ends the wait at once
    w = procs("check", name, "--wait", 60, "--readers", 1)
    time.sleep(0.3)
    t0 = time.monotonic()
    w.p.send_signal(signal.SIGINT)
    assert w.wait(timeout=10) == 128 + signal.SIGINT, w
    assert time.monotonic() - t0 < 2
    assert w.err == f"pbring: {name}: interrupted\n", w.err


def test_check_timing(pbring, ring, procs):
    """Not a timed assertion: how long one check takes, for the record."""
    name = ring()
    assert pbring("create", name, "--slots", 1024).rc == 0
    c = procs("consume", name, "--quiet", "--timeout", 60)
    wait_reader(pbring, name, c.pid)
    procs("produce", name, "--rate", 1000, "--count", 100000)
    wait_for(pbring, name, lambda st: st["claimed"] > 0, what="a message")
    args = [pbring_bin(), "check", name, "--producers", "1", "--readers",
            "1", "--max-lag", "1000", "--max-age", "5", "-q"]
    n, t0 = 50, time.monotonic()
    for _ in range(n):
        assert subprocess.run(args, stdin=subprocess.DEVNULL).returncode == 0
    per = (time.monotonic() - t0) / n
    print(f"\npbring check: {per * 1e3:.2f} ms per run (process start "
          "included), mean of 50")
