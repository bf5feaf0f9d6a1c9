# SPDX-License-Identifier: MIT
"""`pbring consume --tap`: a read-only observer (FORMAT.md §9.5). It maps
the ring read-only, reads what a gating consumer reads without being a
participant (absent from `stat`, not a gating reader for `produce`),
counts what it loses when lapped, says "(tap)" in its summary, needs
only read permission, and refuses --lossy."""
import json
import os
import signal
import time

import pytest

from cliutil import (RUN_TIMEOUT, consume_summary, shm_path, stat_json,
                     wait_reader)

NOBODY = 65534  # nobody on Debian


def tapping(pid, name, timeout=10.0):
    """Wait until process pid has ring name mapped and is asleep between
    polls for messages in it (so it opened its tap); return the mapping's
    permissions, e.g. 'r--s'. Where the kernel hides wchan (it reads 0),
    the mapping and a moment for the reader to open are all there is."""
    want = " " + shm_path(name)
    deadline = time.monotonic() + timeout
    mapped_at = None
    while True:
        with open(f"/proc/{pid}/maps") as f:
            perms = [line.split()[1] for line in f
                     if line.rstrip().endswith(want)]
        with open(f"/proc/{pid}/wchan") as f:
            wchan = f.read()
        if perms and mapped_at is None:
            mapped_at = time.monotonic()
        if perms and ("nanosleep" in wchan or
                      (wchan == "0" and time.monotonic() - mapped_at > 0.5)):
            return perms[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"pid {pid} is not tapping {name}: "
                                 f"{perms} {wchan!r}")
        time.sleep(0.01)


def seqs(out):
    """The demo seq of each --json line, per producer id."""
    per_id = {}
    for line in out.splitlines():
        obj = json.loads(line)
        per_id.setdefault(obj["id"], []).append(int(obj.get("seq", 0)))
    return per_id


def test_tap_reads_alongside_gating_consumer(pbring, ring, procs):
    n = 300
    name = ring()
    assert pbring("create", name, "--slots", 512).rc == 0
    g = procs("consume", name, "--quiet", "--count", n, "--timeout", 10)
    wait_reader(pbring, name, g.pid)
    t = procs("consume", name, "--tap", "--json", "--count", n,
              "--timeout", 10)
    assert tapping(t.pid, name) == "r--s"  # mapped read-only
    # not a participant: stat lists the gating consumer only
    st = stat_json(pbring, name)
    assert [p["pid"] for p in st["participants"]] == [g.pid], st
    p = procs("produce", name, "--count", n, "--size", 16)
    assert p.wait() == 0, p
    assert g.wait() == 0, g
    assert t.wait() == 0, t
    (got,) = seqs(t.out).values()
    assert got == list(range(n)), t.out[-2000:]
    s = consume_summary(t.err, "tap")
    assert (s["received"], s["lost"], s["gaps"], s["crc errors"],
            s["content errors"]) == (n, 0, 0, 0, 0), t.err
    assert consume_summary(g.err)["received"] == n


def test_tap_is_not_a_gating_reader(pbring, ring, procs):
    name = ring()
    assert pbring("create", name, "--slots", 16).rc == 0
    t = procs("consume", name, "--tap", "--quiet", "--timeout", 2)
    tapping(t.pid, name)
    r = pbring("produce", name, "--count", 5, "--timeout", "0.3")
    assert r.rc == 1, r
    assert "no gating reader attached" in r.err, r
    assert stat_json(pbring, name)["participants"] == []
    t.kill()


def test_lapped_tap_reports_lost(pbring, ring, procs):
    """A stopped tap on a 16-slot ring is lapped by 5000 messages: it
    passes over what was overwritten, counts it lost, reads the rest and
    exits 0 (losses are what a tap expects)."""
    name = ring()
    assert pbring("create", name, "--slots", 16).rc == 0
    t = procs("consume", name, "--tap", "--json", "--timeout", "0.5")
    tapping(t.pid, name)
    os.kill(t.pid, signal.SIGSTOP)
    try:
        r = pbring("produce", name, "--count", 5000, "--no-wait",
                   "--timeout", 2)
    finally:
        os.kill(t.pid, signal.SIGCONT)
    assert r.rc == 0, r
    assert t.wait() == 0, t
    lines = [l for l in t.err.splitlines() if l.startswith("consume (")]
    assert len(lines) == 1 and lines[0].startswith("consume (tap): "), t.err
    s = consume_summary(t.err, "tap")
    assert s["lost"] > 0, t.err
    assert 0 < s["received"] <= 16, t.err
    assert s["received"] + s["lost"] == 5000, t.err
    assert s["crc errors"] == s["content errors"] == s["duplicates"] == 0
    (got,) = seqs(t.out).values()
    # what it read is the end of the stream, in order
    assert got == list(range(5000 - len(got), 5000)), got


def as_reader_only():
    """Root: become nobody in root's group only, so that a 0640 ring of
    root's can be read and not written."""
    os.setgroups([0])
    os.setgid(0)
    os.setuid(NOBODY)


def test_tap_needs_read_permission_only(pbring, ring):
    """As root: the ring is 0640 and the command runs as nobody in group
    root. Otherwise: the ring is made 0440, so that nobody may write it.
    Either way a normal consumer is denied and a tap reads every message."""
    name = ring()
    assert pbring("create", name, "--slots", 64, "--mode", "0640").rc == 0
    r = pbring("produce", name, "--count", 20, "--no-wait")
    assert r.rc == 0, r
    kw = {}
    if os.geteuid() == 0:
        kw["preexec_fn"] = as_reader_only
    else:
        os.chmod(shm_path(name), 0o440)
    r = pbring("consume", name, "--any-owner", "--count", 1, "--timeout",
               "0.2", **kw)
    assert (r.rc, r.out, r.err) == (1, "", f"pbring: {name}: permission "
                                           "denied\n")
    r = pbring("consume", name, "--tap", "--json", "--timeout", "0.3", **kw)
    assert r.rc == 0, r
    (got,) = seqs(r.out).values()
    assert got == list(range(20)), r.out
    s = consume_summary(r.err, "tap")
    assert (s["received"], s["lost"]) == (20, 0), r.err


def test_tap_usage_errors(pbring, ring):
    name = ring()
    assert pbring("create", name, "--slots", 16).rc == 0
    for args in (["--tap", "--lossy"], ["--lossy", "--tap"]):
        r = pbring("consume", name, *args, timeout=RUN_TIMEOUT)
        assert (r.rc, r.out) == (2, ""), r
        assert r.err == ("pbring consume: --tap and --lossy exclude each "
                         "other (a tap is lossy already) (see 'pbring "
                         "consume --help')\n"), r
    r = pbring("consume", "--help")
    assert r.rc == 0 and "  --tap " in r.out, r


def test_tap_no_such_ring(pbring, ring):
    name = ring()
    r = pbring("consume", name, "--tap", "--timeout", "0.1")
    assert (r.rc, r.out, r.err) == (1, "", f"pbring: {name}: no such "
                                           "ring\n")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the "
                    "ring to another user")
def test_tap_accepts_any_owner(pbring, ring):
    """The owner check protects what participants write; a tap writes
    nothing, so it reads another user's ring without --any-owner."""
    name = ring()
    assert pbring("create", name, "--slots", 16).rc == 0
    assert pbring("produce", name, "--count", 3, "--no-wait").rc == 0
    os.chown(shm_path(name), NOBODY, -1)
    r = pbring("consume", name, "--count", 1, "--timeout", "0.2")
    assert r.rc == 1 and "owned by another user" in r.err, r
    r = pbring("consume", name, "--tap", "--quiet", "--count", 3,
               "--timeout", 2)
    assert r.rc == 0, r
    assert consume_summary(r.err, "tap")["received"] == 3
