# SPDX-License-Identifier: MIT
"""`python -m pbring produce|consume|schema`: the C command's flags, messages and
exit status (0 success, 1 runtime error, 2 usage error, one line on
stderr). Where the C command is available, both are run on the same case
and must print the same."""
from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

import pbring
from conftest import PY_CMD, _c_bin


def run(cmd, timeout=60, **kw):
    return subprocess.run(cmd, capture_output=True, text=True,
                          timeout=timeout, **kw)


def both(args, **kw):
    """Run the Python command, and the C one if there is one."""
    py = run(PY_CMD + args, **kw)
    c_bin = _c_bin()
    c = run([c_bin] + args, **kw) if c_bin else None
    return py, c


USAGE_CASES = [
    ["consume"],
    ["consume", "a", "b"],
    ["consume", "r", "--count", "0"],
    ["consume", "r", "--count", "-3"],
    ["consume", "r", "--count", "12x"],
    ["consume", "r", "--timeout", "soon"],
    ["consume", "r", "--from", "middle"],
    ["consume", "r", "--json", "--quiet"],
    ["produce"],
    ["produce", "r", "--rate", "0"],
    ["produce", "r", "--size", "2000000000"],
    ["produce", "r", "--producers", "0"],
    ["produce", "r", "--producers", "1025"],
    ["produce", "r", "--timeout", "-1"],
    ["produce", "r", "--bogus"],
    ["produce", "r", "-x"],
    ["produce", "r", "--raw=1"],
    ["consume", "r", "--count"],
    ["consume", "r", "--count=abc"],
    ["consume", "r", "--co", "x"],   # a unique prefix, as getopt_long
    ["consume", "bad/name"],
    ["produce", ".hidden"],
]


@pytest.mark.parametrize("args", USAGE_CASES, ids=" ".join)
def test_usage_errors(args):
    py, c = both(args)
    assert py.returncode == 2, py.stderr
    assert py.stdout == ""
    assert len(py.stderr.splitlines()) == 1, py.stderr
    cmd = args[0]
    assert py.stderr.startswith(f"pbring {cmd}: ")
    assert py.stderr.rstrip().endswith(f"(see 'pbring {cmd} --help')")
    if c is not None:
        assert (c.returncode, c.stderr) == (py.returncode, py.stderr)


def _flags(text):
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))


def test_help_and_unknown_command():
    for cmd in ("produce", "consume", "schema"):
        for args in ([cmd, "--help"], [cmd, "r", "-h"], [cmd, "--he"]):
            py, c = both(args)
            assert py.returncode == 0 and py.stdout.startswith(
                f"usage: pbring {cmd} RING ")
            if c is not None and c.returncode == 0 and \
                    c.stdout.startswith("usage:"):
                # the same options (the wording may lag while one of the
                # commands is being changed)
                assert _flags(c.stdout) <= _flags(py.stdout), c.stdout
    r = run(PY_CMD + ["frobnicate"])
    assert r.returncode == 2 and "unknown command" in r.stderr
    r = run(PY_CMD)
    assert r.returncode == 2 and r.stderr.startswith("usage:")


def test_runtime_errors_match_c(ring_name):
    missing = ring_name()
    raw = ring_name()
    typed = ring_name()
    pbring.Ring.create(raw, slots=4, slot_size=128).close()
    pbring.Ring.create(typed, slots=4, slot_size=128, schema="demo").close()
    cases = [
        (["consume", missing], f"pbring: {missing}: no such ring"),
        (["produce", missing], f"pbring: {missing}: no such ring"),
        (["consume", raw], f"pbring: {raw}: ring is untyped: use --raw"),
        (["produce", typed, "--timeout", "0.2", "--count", "1"],
         f"pbring: {typed}: no gating reader attached (start a consumer "
         "first, or use --no-wait)"),
        (["consume", typed, "--count", "5", "--timeout", "0.3"],
         f"pbring: {typed}: timed out after 0 of 5 messages"),
    ]
    # what a C command from before docs/CLI.md said instead
    before = {f"pbring: {raw}: ring is untyped: use --raw":
              f"pbring: {raw}: ring holds raw bytes, not "
              "pbring.demo.v1.DeviceEvent (use --raw)"}
    for args, line in cases:
        py, c = both(args)
        assert py.returncode == 1, (args, py.stderr)
        assert py.stderr.splitlines()[-1] == line, (args, py.stderr)
        if c is not None:
            assert c.returncode == 1 and c.stderr.splitlines()[-1] in \
                (line, before.get(line)), (args, c.stderr)


def test_raw_flag_and_text_output(ring_name):
    """produce --raw sends DeviceEvents into an untyped ring; consume --raw
    writes each payload as a 4-byte little-endian length and its bytes;
    a demo ring prints text lines."""
    n = ring_name()
    with pbring.Ring.create(n, slots=16, slot_size=256) as ring:  # untyped
        p = run(PY_CMD + ["produce", n, "--raw", "--no-wait", "--count",
                          "3", "--size", "5"])
        assert p.returncode == 0, p.stderr
        r = subprocess.run(PY_CMD + ["consume", n, "--raw", "--count", "3"],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        out, events = r.stdout, []
        while out:
            size = int.from_bytes(out[:4], "little")
            events.append(pbring.DeviceEvent.FromString(out[4:4 + size]))
            out = out[4 + size:]
        assert [(e.seq, e.status, len(e.blob)) for e in events] == \
            [(0, 0, 5), (1, 1, 5), (2, 2, 5)]
        assert ring.stats().claimed == 3
    d = ring_name()
    with pbring.Ring.create(d, slots=16, slot_size=256, schema="demo"):
        p = run(PY_CMD + ["produce", d, "--no-wait", "--count", "3",
                          "--size", "5"])
        assert p.returncode == 0, p.stderr
        r = run(PY_CMD + ["consume", d, "--count", "3"])
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert len(lines) == 3
        assert re.fullmatch(r"seq 0 id \d+-0 status 0 blob 5 B "
                            r"\(ring seq 0, producer 0\)", lines[0])
        assert re.fullmatch(r"seq 2 id \d+-0 status 2 blob 5 B "
                            r"\(ring seq 2, producer 0\)", lines[2])


def test_consume_detects_corruption(ring_name):
    """A payload whose CRC does not match: counted, and exit 1."""
    n = ring_name()
    with pbring.Ring.create(n, slots=16, slot_size=256,
                            schema="demo") as ring, ring.producer() as p:
        p.send(pbring.DeviceEvent(id="x-0", seq=0))
        with p.reserve(4) as buf:  # CRC of these bytes...
            buf[:] = b"\x10\x01\x18\x01"
        # ...then one changed behind its back
        import mmap
        import struct
        with open(f"/dev/shm/pbring.{n}", "r+b") as f:
            m = mmap.mmap(f.fileno(), 0)
            slots_off = struct.unpack_from("<Q", m, 0x70)[0]
            m[slots_off + 256 + 64 + 1] = 2
            m.close()
        p.send(pbring.DeviceEvent(id="x-0", seq=2))
        py, c = both(["consume", n, "--count", "2", "--quiet",
                      "--timeout", "0.5"])
        for r in filter(None, (py, c)):
            assert r.returncode == 1, r.stderr
            # named once, by its ring seq and producer
            assert r.stderr.splitlines()[0] == \
                f"pbring: {n}: seq 1 (producer 0): CRC mismatch", r.stderr
            # counted once: a crc error, not also a gap and a lost message
            assert re.search(r"received 2, lost 0, missed 0, gaps 0, "
                             r"duplicates 0, crc errors 1, "
                             r"content errors 0, abandoned 0",
                             r.stderr), r.stderr
            assert r.stderr.splitlines()[-1] == \
                f"pbring: {n}: 1 corrupt messages"


def test_produce_rate_and_interrupt(ring_name):
    """--rate paces; SIGINT stops the producer cleanly with its summary."""
    n = ring_name()
    with pbring.Ring.create(n, slots=64, slot_size=256, schema="demo"):
        t0 = time.monotonic()
        r = run(PY_CMD + ["produce", n, "--no-wait", "--count", "20",
                          "--rate", "100"])
        assert r.returncode == 0 and time.monotonic() - t0 >= 0.18
        p = subprocess.Popen(PY_CMD + ["produce", n, "--no-wait"],
                             stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        p.send_signal(2)
        _, err = p.communicate(timeout=30)
        assert p.returncode == 130, err
        assert re.fullmatch(r"produce: \d+ messages from 1 producer in "
                            r"[\d.]+ s, \d+ msg/s\n"
                            f"pbring: {n}: interrupted\n", err), err


@pytest.mark.parametrize("after", [0.045, 0.09, 0.15])
def test_early_ctrl_c_is_no_traceback(ring_name, after):
    """Ctrl-C while Python and protobuf still load (before the command's
    own handler): exit 130, as later, never a traceback."""
    n = ring_name()
    with pbring.Ring.create(n, slots=64, slot_size=256, schema="demo"):
        p = subprocess.Popen(PY_CMD + ["produce", n, "--timeout", "30"],
                             stderr=subprocess.PIPE, text=True)
        time.sleep(after)
        p.send_signal(2)
        _, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    assert "Traceback" not in err, err


LATENCY = (r"latency p50 (?P<p50>-|\d+ ns|\d+\.\d (?:us|ms|s)) "
           r"p99 (?P<p99>-|\d+ ns|\d+\.\d (?:us|ms|s)) "
           r"max (?P<max>-|\d+ ns|\d+\.\d (?:us|ms|s)) "
           r"\(commit to receive, including time queued in the ring"
           r"(?P<replayed>; \d+ replayed messages not timed)?\)$")
SUMMARY_END = re.compile(r", rate (?P<rate>\d+) msg/s, " + LATENCY, re.M)


def test_replayed_backlog_not_timed(ring_name):
    """Messages committed before the consumer started are counted as
    replayed, not timed (their age is no latency); the rate of messages
    that all came in one batch is not 0."""
    n = ring_name()
    with pbring.Ring.create(n, slots=16, slot_size=256, schema="demo"):
        p = run(PY_CMD + ["produce", n, "--no-wait", "--count", "5"])
        assert p.returncode == 0, p.stderr
        for r in filter(None, both(["consume", n, "--quiet", "--count", "5"])):
            assert r.returncode == 0, r.stderr
            m = SUMMARY_END.search(r.stderr)
            assert m, r.stderr
            assert (m["p50"], m["p99"], m["max"], m["replayed"]) == \
                ("-", "-", "-", "; 5 replayed messages not timed"), r.stderr
            assert int(m["rate"]) > 0, r.stderr


def test_latency_timed_with_units(ring_name):
    """A consumer that starts first times every message, each figure in
    a unit of its own, and says what it measured."""
    for cmd in [PY_CMD] + ([[_c_bin()]] if _c_bin() else []):
        n = ring_name()
        with pbring.Ring.create(n, slots=64, slot_size=256,
                                schema="demo") as ring:
            c = subprocess.Popen(cmd + ["consume", n, "--quiet", "--count",
                                        "20", "--timeout", "10"],
                                 stderr=subprocess.PIPE, text=True)
            try:
                assert ring.wait_gating_reader(10)
                p = run(PY_CMD + ["produce", n, "--count", "20", "--rate",
                                  "1000"])
                assert p.returncode == 0, p.stderr
                _, err = c.communicate(timeout=60)
            finally:
                c.kill()
                c.wait()
        assert c.returncode == 0, err
        assert "received 20," in err
        m = SUMMARY_END.search(err)
        assert m and m["p50"] != "-" and m["replayed"] is None, (cmd, err)


def test_latency_units():
    from pbring.cli import duration
    assert [duration(v) for v in (0, 999, 1000, 12345, 999949, 999950,
                                  2612345, 999949999, 999950000,
                                  41854400700000)] == [
        "0 ns", "999 ns", "1.0 us", "12.3 us", "999.9 us", "1.0 ms",
        "2.6 ms", "999.9 ms", "1.0 s", "41854.4 s"]


def test_size_error_names_sizes(ring_name):
    typed = ring_name()
    pbring.Ring.create(typed, slots=4, slot_size=128, schema="demo").close()
    for r in filter(None, both(["produce", typed, "--no-wait", "--count",
                                "1", "--size", "100"])):
        assert r.returncode == 1, r.stderr
        m = re.fullmatch(
            rf"pbring: {typed}: a message of (\d+) bytes does not fit in a "
            r"slot \(payload capacity 64 bytes of --slot-size 128\): use a "
            r"smaller --size or a larger --slot-size",
            r.stderr.splitlines()[-1])
        assert m and int(m[1]) > 100, r.stderr


def test_any_owner(ring_name):
    """A ring owned by another user is refused, with what accepts it, by
    every command that attaches; --any-owner accepts it; a ring writable
    by everyone is refused whatever the flag."""
    if os.geteuid() != 0:
        pytest.skip("giving a ring to another user needs root (tests/cli "
                    "runs the same check as different users)")
    n = ring_name()
    pbring.Ring.create(n, slots=16, slot_size=256, schema="demo").close()
    os.chown(f"/dev/shm/pbring.{n}", 65534, -1)
    refused = (f"pbring: {n}: ring owned by another user (uid 65534): use "
               "--any-owner to accept it\n")
    for args in (["produce", n, "--no-wait", "--count", "1"],
                 ["consume", n, "--count", "1", "--timeout", "1"],
                 ["schema", n]):
        for r in filter(None, both(args)):
            assert (r.returncode, r.stdout, r.stderr) == (1, "", refused), args
    for r in filter(None, both(["produce", n, "--no-wait", "--count", "2",
                                "--any-owner"])):
        assert r.returncode == 0, r.stderr
    for r in filter(None, both(["schema", n, "--any-owner"])):
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("// message: pbring.demo.v1.DeviceEvent\n")
    for r in filter(None, both(["consume", n, "--any-owner", "--quiet",
                                "--count", "2", "--timeout", "5"])):
        assert r.returncode == 0 and "received 2," in r.stderr, r.stderr
    os.chmod(f"/dev/shm/pbring.{n}", 0o666)
    for r in filter(None, both(["consume", n, "--any-owner"])):
        assert (r.returncode, r.stderr) == (
            1, f"pbring: {n}: ring writable by everyone (mode 0666): refused "
            "(see SECURITY.md)\n")
