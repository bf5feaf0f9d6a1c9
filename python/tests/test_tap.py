# SPDX-License-Identifier: MIT
"""Tap readers (FORMAT.md §9.5): ``Ring.attach(read_only=True)`` and
``Reader(ring, tap=True)``, and ``python -m pbring consume --tap``.

A tap reads as a lossy reader does but writes nothing to the ring: it is
not a participant, never holds producers back, counts what it loses when
lapped, leaves the ring's bytes as they were, and needs read permission
only. A ring attached read-only refuses everything that would write
(ReadOnly, EROFS)."""
from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List

import pytest

import pbring
from conftest import PY_CMD
from pbring import DeviceEvent, Producer, Reader, Ring

NOBODY = 65534  # nobody on Debian
TIMEOUT = 60


def shm_path(name: str) -> str:
    return f"/dev/shm/pbring.{name}"


def ev(i: int) -> DeviceEvent:
    return DeviceEvent(id="tap", seq=i, status=i % 3)


def read_maps(name: str) -> List[str]:
    """This process's mappings of ring @name, by their permissions."""
    want = " " + shm_path(name)
    with open("/proc/self/maps") as f:
        return [line.split()[1] for line in f if line.rstrip().endswith(want)]


# ------------------------------------------------------------------ API


def test_tap_reads_every_message_beside_a_gating_reader(name):
    """A producer sends into a ring that a gating reader (in a thread)
    holds back; the tap, opened on the same mapping, reads every message
    in order, is not among the participants and has no index."""
    n = 2000
    with Ring.create(name, slots=4096, slot_size=256, schema="demo") as ring:
        gating = Reader(ring, start="latest", timeout=10)
        tap = Reader(ring, tap=True, start="latest", timeout=10)
        assert tap.tap and tap.lossy and tap.index is None
        assert repr(tap) == f"<pbring.Reader {name!r} tap>"
        parts = ring.participants()
        assert [(p.is_reader, p.index, p.pid) for p in parts] == \
            [(True, gating.index, os.getpid())], parts
        got_gating: List[int] = []

        def consume() -> None:
            for _ in range(n):
                got_gating.append(gating.recv().seq)

        def produce() -> None:
            with ring.producer() as p:
                for i in range(n):
                    p.send(ev(i))

        threads = [threading.Thread(target=consume),
                   threading.Thread(target=produce)]
        for t in threads:
            t.start()
        got = []
        try:
            for _ in range(n):
                got.append(tap.recv().seq)
            # while all run: still no second reader
            assert [p.index for p in ring.participants()
                    if p.is_reader] == [gating.index]
        finally:
            for t in threads:
                t.join(TIMEOUT)
        assert got == list(range(n))
        assert got_gating == list(range(n))
        st = tap.stats()
        assert (st.delivered, st.lost, st.missed, st.abandoned, st.bad) == \
            (n, 0, 0, 0, 0), st
        tap.close()
        gating.close()


def test_tap_on_read_only_ring_not_a_participant(name):
    """A tap through a read-only mapping: in no participant list, not a
    gating reader (a producer does not wait for it), and the mapping is
    read-only in /proc/self/maps."""
    with Ring.create(name, slots=16, slot_size=256, schema="demo") as ring:
        assert read_maps(name) == ["rw-s"]
        with Ring.attach(name, read_only=True) as ro:
            assert ro.read_only and not ring.read_only
            assert "read-only" in repr(ro)
            assert sorted(read_maps(name)) == ["r--s", "rw-s"]
            with Reader(ro, tap=True, timeout=0.2) as tap, \
                    ro.reader(tap=True, timeout=0.2) as tap2:
                assert tap2.tap and tap2.index is None
                assert ring.participants() == ro.participants() == []
                assert not ring.has_gating_reader()
                with ring.producer() as p:
                    for i in range(5):
                        p.send(ev(i))
                assert [m.seq for m in tap] == list(range(5))
                assert [m.seq for m in tap2] == list(range(5))
                assert [p.is_reader for p in ring.participants()] == []


def test_lapped_tap_counts_lost_and_missed_and_resumes(name):
    """A 16-slot ring: a tap opened from the oldest with 10 messages of
    backlog is lapped by 100 more. It passes over what was overwritten:
    the backlog as missed, the rest as lost; it reads the newest messages
    in order, then everything sent after it caught up."""
    with Ring.create(name, slots=16, slot_size=256, schema="demo") as ring, \
            Producer(ring, timeout=10) as p:
        for i in range(10):
            p.send(ev(i))
        tap = Reader(ring, tap=True, start="oldest", timeout=0.2)
        for i in range(10, 110):
            p.send(ev(i))  # no gating reader: never waits for the tap
        got = [m.seq for m in tap]
        st = tap.stats()
        assert 0 < len(got) <= 16, got
        assert got == list(range(110 - len(got), 110)), got
        assert st.missed == 10, st
        assert st.lost > 0 and st.lost + st.missed + len(got) == 110, st
        assert st.delivered == len(got) and st.cursor == 110, st
        # it resumes: what comes now it reads, every message
        for i in range(110, 120):
            p.send(ev(i))
        assert [m.seq for m in tap] == list(range(110, 120))
        assert tap.stats().lost == st.lost
        # a tap's counters are its own: nothing of it in the ring
        assert ring.participants()[0].is_reader is False
        assert len(ring.participants()) == 1
        tap.close()


def test_tap_writes_nothing(name):
    """The whole shared memory object is byte for byte the same after a
    read-only attach, a tap that reads every message (and looks at the
    ring), and their close, when no producer runs; and after a tap on the
    creator's own read-write mapping too."""
    path = shm_path(name)
    with Ring.create(name, slots=16, slot_size=256, schema="demo") as ring:
        with ring.producer() as p:
            for i in range(12):
                p.send(ev(i))
        with open(path, "rb") as f:
            before = f.read()
        with Ring.attach(name, read_only=True) as ro:
            with Reader(ro, tap=True, timeout=0.05) as tap:
                assert [m.seq for m in tap] == list(range(12))
                assert tap.stats().delivered == 12
                ro.stats()
                ro.participants()
                ro.check()
                ro.check_type(pbring.DEMO_MSG_TYPE)
            with ro.reader(tap=True, start="latest", timeout=0) as tap:
                with pytest.raises(pbring.RingEmpty):
                    tap.recv()
        with Reader(ring, tap=True, timeout=0.05) as tap:
            assert len(tap.peek_batch(4)) == 1  # one at a time, as lossy
            tap.verify()
            tap.release()
            assert [m.seq for m in tap] == list(range(1, 12))
        with open(path, "rb") as f:
            after = f.read()
        assert len(after) == len(before) == ring.info.total_size
        diff = [i for i in range(len(before)) if before[i] != after[i]]
        assert not diff, f"{len(diff)} bytes changed, from offset {diff[0]}"


def test_read_only_ring_refuses_writers(name):
    """On a ring attached read-only, a producer, a gating or lossy reader
    and reclaim raise ReadOnly (EROFS, the library's text); a tap with
    latency raises InvalidArgument there and on any ring."""
    with Ring.create(name, slots=16, slot_size=256, schema="demo") as ring, \
            Ring.attach(name, read_only=True) as ro:
        calls = {
            "open producer": lambda: Producer(ro),
            "open reader": lambda: Reader(ro),
            "reclaim": ro.reclaim,
        }
        for what, call in calls.items():
            with pytest.raises(pbring.ReadOnly) as ei:
                call()
            e = ei.value
            assert e.errno == errno.EROFS and e.what == what, e
            assert str(e) == (f"{name}: {what}: ring attached read-only: "
                              "only tap readers can use it"), e
        with pytest.raises(pbring.ReadOnly):
            Reader(ro, lossy=True)
        with pytest.raises(pbring.ReadOnly):
            ro.producer()
        for r in (ro, ring):
            with pytest.raises(pbring.InvalidArgument) as ei:
                Reader(r, tap=True, latency=True)
            assert ei.value.errno == errno.EINVAL
            assert "a tap records no latency" in str(ei.value)
        assert ring.participants() == []
        # the read-write mapping is not affected
        with ring.producer(), Reader(ring, latency=True):
            assert len(ring.participants()) == 2


# The process that may only read: it attaches for writing (denied) and
# read-only, then taps every message. argv: ring name. One line of result
# per check on stdout.
READER_ONLY = r"""
import errno, sys
import pbring
name = sys.argv[1]
try:
    pbring.Ring.attach(name, any_owner=True).close()
    print("attached read-write")
except pbring.PermissionDenied as e:
    print("read-write", errno.errorcode.get(e.errno, e.errno))
with pbring.Ring.attach(name, read_only=True, any_owner=True) as ring:
    print("read_only", ring.read_only)
    with ring.reader(tap=True, timeout=0.3) as rd:
        print("seqs", ",".join(str(m.seq) for m in rd))
        st = rd.stats()
        print("stats", st.delivered, st.lost, st.missed)
    try:
        ring.producer()
        print("producer opened")
    except pbring.ReadOnly as e:
        print("producer", errno.errorcode.get(e.errno, e.errno))
"""


def _as_reader_only(name: str) -> subprocess.CompletedProcess:
    """Run READER_ONLY as uid nobody, gid root, no other groups: a child
    Python process, or, when this interpreter cannot be run as nobody (it
    lives under a directory only root may enter), a forked child that
    drops its privileges and runs the same code in the pbring already
    loaded."""
    src = os.path.dirname(os.path.dirname(os.path.abspath(pbring.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [src] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    for k in ("PBRING_LIBRARY",):
        if k in env:
            env[k] = os.path.abspath(env[k])
    ids = dict(user=NOBODY, group=0, extra_groups=[])
    try:
        probe = subprocess.run([sys.executable, "-c", "import pbring"],
                               capture_output=True, text=True, cwd="/",
                               env=env, timeout=TIMEOUT, **ids)
        runnable = probe.returncode == 0
    except PermissionError:
        runnable = False
    if runnable:
        return subprocess.run([sys.executable, "-c", READER_ONLY, name],
                              capture_output=True, text=True, cwd="/",
                              env=env, timeout=TIMEOUT, **ids)
    return _forked_reader_only(name)


def _forked_reader_only(name: str) -> subprocess.CompletedProcess:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(out_r)
            os.close(err_r)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            os.setgroups([])
            os.setgid(0)
            os.setuid(NOBODY)
            sys.stdout = os.fdopen(1, "w", closefd=False)
            sys.stderr = os.fdopen(2, "w", closefd=False)
            sys.argv = ["-c", name]
            try:
                exec(compile(READER_ONLY, "<reader-only>", "exec"),
                     {"__name__": "__main__"})
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except BaseException:
                import traceback
                traceback.print_exc()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    os.close(out_w)
    os.close(err_w)
    with os.fdopen(out_r) as o, os.fdopen(err_r) as e:
        out, err = o.read(), e.read()
    _, status = os.waitpid(pid, 0)
    return subprocess.CompletedProcess(["fork"], os.waitstatus_to_exitcode(
        status), out, err)


def test_read_permission_is_enough(name):
    """Root: a ring of mode 0640 is read by a process of uid nobody in
    group root only, which may not open it for writing. Otherwise: the
    ring's file is made 0440, and this process does the same. Either way
    the read-write attach is denied (EACCES), the read-only one works and
    its tap reads every message, and producers are refused (EROFS)."""
    n = 20
    with Ring.create(name, slots=64, slot_size=256, schema="demo",
                     mode=0o640) as ring:
        with ring.producer() as p:
            for i in range(n):
                p.send(ev(i))
        if os.geteuid() == 0:
            r = _as_reader_only(name)
            assert r.returncode == 0, r.stderr
            assert r.stdout.splitlines() == [
                "read-write EACCES",
                "read_only True",
                "seqs " + ",".join(map(str, range(n))),
                f"stats {n} 0 0",
                "producer EROFS",
            ], (r.stdout, r.stderr)
        else:
            os.chmod(shm_path(name), 0o440)
            with pytest.raises(pbring.PermissionDenied) as ei:
                Ring.attach(name)
            assert ei.value.errno == errno.EACCES
            with Ring.attach(name, read_only=True) as ro, \
                    ro.reader(tap=True, timeout=0.3) as rd:
                assert [m.seq for m in rd] == list(range(n))
                assert rd.stats().lost == 0
                with pytest.raises(pbring.ReadOnly):
                    ro.producer()
        assert ring.participants() == []


# ------------------------------------------------------------------ CLI


def consume_summary(err: str, kind: str) -> Dict[str, int]:
    """The counts of the one "consume (KIND): ..." summary line."""
    lines = [ln for ln in err.splitlines() if ln.startswith("consume (")]
    assert len(lines) == 1, err
    head = f"consume ({kind}): "
    assert lines[0].startswith(head), err
    out = {}
    for part in lines[0][len(head):].split(", "):
        m = re.fullmatch(r"([a-z ]+) (\d+)", part)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def json_seqs(out: str) -> List[int]:
    """The demo seq of each --json line (proto3 JSON leaves out a 0)."""
    return [int(json.loads(ln).get("seq", 0)) for ln in out.splitlines()]


def tapping(pid: int, name: str, timeout: float = 20.0) -> str:
    """Wait until process @pid has ring @name mapped and sleeps between
    polls for messages (so its tap is open); the mapping's permissions.
    Where the kernel hides wchan (it reads 0), the mapping and a moment
    for the reader to open are all there is."""
    want = " " + shm_path(name)
    deadline = time.monotonic() + timeout
    mapped_at = None
    while True:
        with open(f"/proc/{pid}/maps") as f:
            perms = [ln.split()[1] for ln in f if ln.rstrip().endswith(want)]
        with open(f"/proc/{pid}/wchan") as f:
            wchan = f.read()
        if perms and mapped_at is None:
            mapped_at = time.monotonic()
        if perms and mapped_at is not None and (
                "nanosleep" in wchan or
                (wchan == "0" and time.monotonic() - mapped_at > 1.5)):
            return perms[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"pid {pid} is not tapping {name}: "
                                 f"{perms} {wchan!r}")
        time.sleep(0.01)


def _popen(args: List[str]) -> subprocess.Popen:
    return subprocess.Popen(PY_CMD + args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_cli_tap_reads_c_producer(name, c_bin):
    """python -m pbring consume --tap takes every message the C producer
    sends (beside a gating C consumer), read-only and not a participant,
    and says "(tap)" in its summary."""
    n = 300
    with Ring.create(name, slots=512, slot_size=256, schema="demo") as ring:
        g = subprocess.Popen([c_bin, "consume", name, "--quiet", "--count",
                              str(n), "--timeout", "20"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        t = _popen(["consume", name, "--tap", "--json", "--count", str(n),
                    "--timeout", "20"])
        try:
            assert ring.wait_gating_reader(20)
            assert tapping(t.pid, name) == "r--s"  # mapped read-only
            assert [p.pid for p in ring.participants()] == [g.pid]
            p = subprocess.run([c_bin, "produce", name, "--count", str(n),
                                "--size", "16"], capture_output=True,
                               text=True, timeout=TIMEOUT)
            assert p.returncode == 0, p.stderr
            out, err = t.communicate(timeout=TIMEOUT)
            assert t.returncode == 0, err
            g_out, g_err = g.communicate(timeout=TIMEOUT)
            assert g.returncode == 0, g_err
        finally:
            for proc in (t, g):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        seqs = json_seqs(out)
        assert seqs == list(range(n)), out[-2000:]
        s = consume_summary(err, "tap")
        assert (s["received"], s["lost"], s["missed"], s["gaps"],
                s["crc errors"], s["content errors"]) == \
            (n, 0, 0, 0, 0, 0), err
        assert consume_summary(g_err, "gating")["received"] == n


def test_cli_lapped_tap_exits_0(name, c_bin):
    """A stopped tap on a 16-slot ring is lapped by 3000 messages of the C
    producer: it counts them lost, reads the end of the stream in order,
    and exits 0 (a tap expects gaps)."""
    n = 3000
    with Ring.create(name, slots=16, slot_size=256, schema="demo"):
        t = _popen(["consume", name, "--tap", "--json", "--timeout", "1"])
        try:
            tapping(t.pid, name)
            os.kill(t.pid, signal.SIGSTOP)
            try:
                p = subprocess.run([c_bin, "produce", name, "--count",
                                    str(n), "--no-wait"],
                                   capture_output=True, text=True,
                                   timeout=TIMEOUT)
            finally:
                os.kill(t.pid, signal.SIGCONT)
            assert p.returncode == 0, p.stderr
            out, err = t.communicate(timeout=TIMEOUT)
        finally:
            if t.poll() is None:
                t.kill()
                t.wait()
        assert t.returncode == 0, err
        s = consume_summary(err, "tap")
        assert s["lost"] > 0 and 0 < s["received"] <= 16, err
        assert s["received"] + s["lost"] == n, err
        assert s["crc errors"] == s["content errors"] == \
            s["duplicates"] == 0, err
        got = json_seqs(out)
        assert got == list(range(n - len(got), n)), got


def test_cli_tap_gaps_do_not_fail(name):
    """A demo producer's seq jumps (0-4, then 10-14): a gating consumer
    fails on the gap, a tap counts it and exits 0, as the C command's tap
    does."""
    with Ring.create(name, slots=64, slot_size=256, schema="demo") as ring:
        with ring.producer() as p:
            for i in [*range(5), *range(10, 15)]:
                p.send(ev(i))
        args = ["consume", name, "--quiet", "--timeout", "0.3"]
        r = subprocess.run(PY_CMD + args, capture_output=True, text=True,
                           timeout=TIMEOUT)
        assert r.returncode == 1, r.stderr
        assert r.stderr.splitlines()[-1] == (
            f"pbring: {name}: 1 gaps and 0 duplicates in producer sequences")
        runs = [PY_CMD]
        c_bin = os.environ.get("PBRING_BIN")
        if c_bin and os.access(c_bin, os.X_OK):
            runs.append([c_bin])
        for cmd in runs:
            r = subprocess.run(cmd + args + ["--tap"], capture_output=True,
                               text=True, timeout=TIMEOUT)
            assert r.returncode == 0, (cmd, r.stderr)
            s = consume_summary(r.stderr, "tap")
            assert (s["received"], s["lost"], s["gaps"], s["duplicates"]) \
                == (10, 5, 1, 0), (cmd, r.stderr)
            assert len(r.stderr.splitlines()) == 1, (cmd, r.stderr)


@pytest.mark.parametrize("args", [["--tap", "--lossy"], ["--lossy", "--tap"]])
def test_cli_tap_and_lossy_usage_error(name, args):
    line = ("pbring consume: --tap and --lossy exclude each other (a tap is "
            "lossy already) (see 'pbring consume --help')\n")
    r = subprocess.run(PY_CMD + ["consume", name] + args,
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", line)
    c_bin = os.environ.get("PBRING_BIN")
    if c_bin and os.access(c_bin, os.X_OK):
        c = subprocess.run([c_bin, "consume", name] + args,
                           capture_output=True, text=True, timeout=TIMEOUT)
        assert (c.returncode, c.stdout, c.stderr) == (2, "", line)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the "
                    "ring to another user")
def test_cli_tap_accepts_any_owner(name):
    """The owner check protects what participants write; a tap writes
    nothing, so consume --tap reads another user's ring without
    --any-owner, which a plain consume refuses."""
    with Ring.create(name, slots=16, slot_size=256, schema="demo") as ring:
        with ring.producer() as p:
            for i in range(3):
                p.send(ev(i))
        os.chown(shm_path(name), NOBODY, -1)
        r = subprocess.run(PY_CMD + ["consume", name, "--count", "1",
                                     "--timeout", "0.2"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        assert r.returncode == 1 and r.stderr == (
            f"pbring: {name}: ring owned by another user (uid {NOBODY}): "
            "use --any-owner to accept it\n"), r.stderr
        r = subprocess.run(PY_CMD + ["consume", name, "--tap", "--quiet",
                                     "--count", "3", "--timeout", "2"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        assert consume_summary(r.stderr, "tap")["received"] == 3
