# SPDX-License-Identifier: MIT
"""Scenario 15: structured logs, the same in every language
(`--log-format json` before the command; docs/CLI.md, "Logs").

With --log-format json every line a command writes on stderr is one JSON
object: ts (RFC 3339, UTC, milliseconds), level, service "pbring", event
(COMMAND.KIND), ring when there is one, trace_id when the message
concerned carries a trace context, and message. For the same situations
the three commands write the same objects, ts aside: a missing ring, a
usage error, an unknown command, the summaries of a produce/consume run,
and a corrupt message that carries a traceparent (its trace id in the
line). A bad --log-format is a usage error.

ids: L.
"""
import json
import os
import re
import subprocess

import pytest

from scenlib import ACTING, commands

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SEND_BAD = """
import sys
from pbring import Ring
with Ring.attach(sys.argv[1]) as r, r.producer() as p:
    p.send_bytes(bytes.fromhex("0a05612202fffe621801"), traceparent=sys.argv[2])
"""


def objects(stderr):
    """Each stderr line as an object, ts checked and dropped."""
    out = []
    for line in stderr.splitlines():
        obj = json.loads(line)  # every line is JSON
        assert TS.match(obj.pop("ts")), line
        assert obj.pop("service") == "pbring", line
        out.append(obj)
    return out


def numbers_out(msg):
    return re.sub(r"\d+(\.\d+)?", "N", msg)


@pytest.mark.parametrize("lang", [pytest.param(x, id=x) for x in ACTING])
def test_errors_alike(scen, lang):
    want = [
        (("produce", "nosuch-ring-x", "--no-wait"), 1,
         {"level": "error", "event": "produce.error",
          "ring": "nosuch-ring-x", "message": "no such ring"}),
        (("produce",), 2,
         {"level": "error", "event": "produce.usage",
          "message": "expects exactly one RING"}),
        (("bogus",), 2,
         {"level": "error", "event": "pbring.usage",
          "message": "unknown command 'bogus'"}),
    ]
    for args, rc, obj in want:
        r = scen.run(lang, "--log-format", "json", *args)
        assert r.returncode == rc, (args, r.returncode, r.stderr)
        assert objects(r.stderr) == [obj], r.stderr
    r = scen.run(lang, "--log-format", "xml", "produce", "x")
    assert r.returncode == 2 and "--log-format" in r.stderr


@pytest.mark.parametrize("lang", [pytest.param(x, id=x) for x in ACTING])
def test_run_logs_alike(scen, lang):
    ring = scen.ring("logs", slots=16, slot_size=512)
    r = scen.run(lang, "--log-format", "json", "produce", ring, "--count", 3,
                 "--no-wait")
    assert r.returncode == 0, r.stderr
    assert [(o["level"], o["event"], o["ring"], numbers_out(o["message"]))
            for o in objects(r.stderr)] == [
        ("info", "produce.summary", ring,
         "N messages from N producer in N s, N msg/s")]
    py = commands()["py"][0]
    b = subprocess.run([py, "-c", SEND_BAD, ring, TP], capture_output=True,
                       text=True, timeout=60)
    assert b.returncode == 0, b.stderr
    r = scen.run(lang, "--log-format", "json", "consume", ring, "--timeout",
                 0.5, "--quiet")
    assert r.returncode == 1, r.stderr  # the corrupt one
    objs = objects(r.stderr)
    assert objs[0] == {
        "level": "error", "event": "consume.corrupt", "ring": ring,
        "trace_id": TP[3:35],
        "message": "seq 3 (producer 0): payload is not a valid "
                   "pbring.demo.v1.DeviceEvent"}, r.stderr
    assert objs[1]["event"] == "consume.summary" and \
        objs[1]["level"] == "info" and objs[1]["ring"] == ring
    assert objs[1]["message"].startswith(
        "(gating): received 3, lost 0, missed 0, gaps 0, duplicates 0, "
        "crc errors 0, content errors 1, abandoned 0, rate "), objs[1]
    assert objs[2:] == [{"level": "error", "event": "consume.error",
                         "ring": ring, "message": "1 corrupt messages"}]


@pytest.mark.parametrize("lang", [pytest.param(x, id=x) for x in ("c", "go", "py")
                                  if x in ACTING])
def test_bytes_that_are_not_utf8(scen, lang):
    """A ring name from argv that is not UTF-8: a usage error whose JSON is
    still JSON, the bad byte as \\ufffd, the same in C, Go and Python (and
    no traceback)."""
    argv = [os.fsencode(a) for a in scen.cmd[lang]] + [
        b"--log-format", b"json", b"consume", b"ab\xff"]
    r = subprocess.run(argv, capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    line = r.stderr.decode("utf-8")  # valid UTF-8
    assert objects(line) == [{
        "level": "error", "event": "consume.usage",
        "message": "invalid ring name 'ab\ufffd' (use 1-63 of "
                   "[A-Za-z0-9_.-])"}]
    assert "\\ufffd" in line
