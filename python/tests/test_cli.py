# SPDX-License-Identifier: MIT
"""`python -m pbring produce|consume|schema`: the C command's flags, messages and
exit status (0 success, 1 runtime error, 2 usage error, one line on
stderr). Where the C command is available, both are run on the same case
and must print the same."""
from __future__ import annotations

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
        (["produce", typed, "--no-wait", "--count", "1", "--size", "100"],
         f"pbring: {typed}: message does not fit in a slot (use a smaller "
         "--size or a larger --slot-size)"),
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
            # crc errors: CRC mismatches only; the C command's summary
            # may not have `content errors` yet
            assert re.search(r"received 2, lost 1, missed 0, gaps 1, "
                             r"duplicates 0, crc errors 1, "
                             r"(content errors 0, )?abandoned 0",
                             r.stderr), r.stderr
            if r is py:
                assert "crc errors 1, content errors 0," in r.stderr
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
        assert p.returncode == 0, err
        assert re.fullmatch(r"produce: \d+ messages from 1 producer in "
                            r"[\d.]+ s, \d+ msg/s\n", err), err
