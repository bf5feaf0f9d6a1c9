# SPDX-License-Identifier: MIT
"""The interop matrix: C, Go and Python producers x C, Go and Python
consumers, 100 000 DeviceEvents per pair, every seq and field checked.

For each producer, one ring gets a gating consumer of every language at
once, then the producer runs; so each producer's stream reaches all three
consumers, and the 9 (producer, consumer) pairs are 9 tests over 3 runs.
Each consumer's --json output is checked line by line, byte for byte,
against the canonical JSON of the DeviceEvent the producer must have sent
(id "<pid>-0", seq 0..N-1 in order, status seq % 3, sent_ns nondecreasing,
blob the demo pattern), and the consumers of one producer must print
byte-identical output.

PBRING_INTEROP_COUNT overrides the count (default 100000).
"""
from __future__ import annotations

import base64
import os
import re
import subprocess
import time
from typing import Dict, List, Optional, Tuple

import pytest

import pbring
from conftest import PY_CMD, _c_bin, go_bin

N = int(os.environ.get("PBRING_INTEROP_COUNT", "100000"))
SIZE = 64
KINDS = ["c", "go", "py"]
NAMES = {"c": "C", "go": "Go", "py": "Python"}
RUN_TIMEOUT = 300

CONSUME_SUMMARY = re.compile(
    r"consume \(gating\): received (\d+), lost 0, missed 0, gaps 0, duplicates 0, "
    # `content errors` optional: a C command from before docs/CLI.md
    r"crc errors 0, (?:content errors 0, )?abandoned 0, rate \d+ msg/s, "
    r"latency p50 (?:-|[\d.]+ [nmu]?s) p99 (?:-|[\d.]+ [nmu]?s) "
    r"max (?:-|[\d.]+ [nmu]?s) \(commit to receive, including time queued in "
    r"the ring(?:; \d+ replayed messages not timed)?\)")
PRODUCE_SUMMARY = re.compile(
    r"produce: (\d+) messages from 1 producer in [\d.]+ s, \d+ msg/s")


def peer(kind: str, tmp_root: str) -> List[str]:
    """argv prefix of a peer's command; pytest.skip if unavailable."""
    if kind == "py":
        return list(PY_CMD)
    if kind == "c":
        b = _c_bin()
        if not b:
            pytest.skip("C peer unavailable: PBRING_BIN is not set to the "
                        "built `pbring` command")
        return [b]
    return [go_bin(tmp_root)]


def available(tmp_root: str) -> Dict[str, List[str]]:
    out = {}
    for k in KINDS:
        try:
            out[k] = peer(k, tmp_root)
        except pytest.skip.Exception:
            pass
    return out


def expected_line(pid: int, k: int, sent: str, blob: str) -> str:
    parts = [f'"id":"{pid}-0"']
    if k % 3:
        parts.append(f'"status":{k % 3}')
    if k:
        parts.append(f'"seq":"{k}"')
    parts.append(f'"sentNs":"{sent}"')
    if blob:
        parts.append(f'"blob":"{blob}"')
    return "{" + ",".join(parts) + "}"


def check_stream(out: bytes, pid: int, n: int, size: int) -> None:
    """Every line, byte for byte, in order."""
    text = out.decode("utf-8")
    assert text.endswith("\n"), "output does not end with a newline"
    lines = text[:-1].split("\n")
    assert len(lines) == n, f"{len(lines)} lines, expected {n}"
    blob = base64.b64encode(pbring.demo.blob_pattern(size)).decode()
    prev = 0
    for k, line in enumerate(lines):
        i = line.find('"sentNs":"')
        assert i > 0, f"line {k}: no sentNs: {line[:120]}"
        j = line.index('"', i + 10)
        sent = line[i + 10:j]
        assert sent.isdigit() and int(sent) >= prev, \
            f"line {k}: sentNs {sent} after {prev}"
        prev = int(sent)
        exp = expected_line(pid, k, sent, blob)
        assert line == exp, f"line {k}:\n  got      {line[:200]}\n" \
                            f"  expected {exp[:200]}"
    # and it is JSON that protobuf's own parser reads back
    from google.protobuf import json_format
    m = json_format.Parse(lines[-1], pbring.DeviceEvent())
    assert m.seq == n - 1 and m.id == f"{pid}-0"
    assert m.blob == pbring.demo.blob_pattern(size)


class Run:
    def __init__(self) -> None:
        self.pid = 0
        self.prod: Optional[subprocess.CompletedProcess] = None
        self.cons: Dict[str, Tuple[int, bytes, str]] = {}
        self.error: Optional[str] = None


_runs: Dict[str, Run] = {}


def run_producer(kind: str, tmp_root: str) -> Run:
    """Run producer @kind once, into one gating consumer of every
    available language; cached for the session."""
    if kind in _runs:
        return _runs[kind]
    peers = available(tmp_root)
    prod_cmd = peer(kind, tmp_root)
    run = _runs[kind] = Run()
    name = f"pyt-mx-{kind}-{os.getpid()}"
    pbring.unlink(name, missing_ok=True)
    procs: Dict[str, subprocess.Popen] = {}
    files = {}
    try:
        with pbring.Ring.create(name, slots=4096, slot_size=256,
                                schema="demo") as ring:
            for q, cmd in peers.items():
                f = open(os.path.join(tmp_root, f"{kind}-{q}.out"), "w+b")
                files[q] = f
                procs[q] = subprocess.Popen(
                    cmd + ["consume", name, "--count", str(N), "--json",
                           "--timeout", "60"],
                    stdout=f, stderr=subprocess.PIPE)
            # every consumer attached as a gating reader before we send
            deadline = time.monotonic() + 30
            while sum(p.gating and p.alive for p in ring.participants()) \
                    < len(procs):
                if time.monotonic() > deadline or any(
                        p.poll() is not None for p in procs.values()):
                    run.error = "consumers did not all attach"
                    break
                time.sleep(0.01)
            if run.error is None:
                p = subprocess.Popen(
                    prod_cmd + ["produce", name, "--count", str(N),
                                "--size", str(SIZE)],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                run.pid = p.pid
                out, err = p.communicate(timeout=RUN_TIMEOUT)
                run.prod = subprocess.CompletedProcess(
                    p.args, p.returncode, out, err.decode())
            for q, pr in procs.items():
                try:
                    _, err = pr.communicate(timeout=RUN_TIMEOUT)
                except subprocess.TimeoutExpired:
                    pr.kill()
                    _, err = pr.communicate()
                files[q].seek(0)
                run.cons[q] = (pr.returncode, files[q].read(),
                               err.decode())
    finally:
        for pr in procs.values():
            if pr.poll() is None:
                pr.kill()
                pr.wait()
        for f in files.values():
            f.close()
        pbring.unlink(name, missing_ok=True)
    return run


@pytest.fixture(scope="module")
def tmp_root(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("interop"))


@pytest.mark.parametrize("consumer", KINDS, ids=lambda k: NAMES[k])
@pytest.mark.parametrize("producer", KINDS, ids=lambda k: NAMES[k])
def test_pair(producer: str, consumer: str, tmp_root: str) -> None:
    peer(producer, tmp_root)
    peer(consumer, tmp_root)
    run = run_producer(producer, tmp_root)
    assert run.error is None, run.error
    assert run.prod is not None
    assert run.prod.returncode == 0, run.prod.stderr
    assert PRODUCE_SUMMARY.fullmatch(run.prod.stderr.strip()), \
        run.prod.stderr
    assert int(PRODUCE_SUMMARY.fullmatch(
        run.prod.stderr.strip()).group(1)) == N
    rc, out, err = run.cons[consumer]
    assert rc == 0, err
    m = CONSUME_SUMMARY.fullmatch(err.strip())
    assert m and int(m.group(1)) == N, err
    check_stream(out, run.pid, N, SIZE)


@pytest.mark.parametrize("producer", KINDS, ids=lambda k: NAMES[k])
def test_consumers_agree(producer: str, tmp_root: str) -> None:
    """All consumers of one stream print byte-identical JSON (the same
    messages, sent_ns included)."""
    peer(producer, tmp_root)
    run = run_producer(producer, tmp_root)
    outs = {q: c[1] for q, c in run.cons.items() if c[0] == 0}
    if len(outs) < 2:
        pytest.skip("fewer than two consumers ran")
    first = next(iter(outs.values()))
    for q, o in outs.items():
        assert o == first, f"{NAMES[q]} consumer's output differs"


def test_python_threads_to_c(ring_name, c_bin) -> None:
    """Three Python producer threads, each its own id and seq; the C
    consumer checks every producer's continuity."""
    n = ring_name()
    with pbring.Ring.create(n, slots=1024, slot_size=256, schema="demo"):
        c = subprocess.Popen([c_bin, "consume", n, "--count", "30000",
                              "--quiet", "--timeout", "30"],
                             stderr=subprocess.PIPE, text=True)
        p = subprocess.run(PY_CMD + ["produce", n, "--count", "10000",
                                     "--producers", "3", "--size", "16"],
                           capture_output=True, text=True, timeout=120)
        _, err = c.communicate(timeout=120)
    assert p.returncode == 0, p.stderr
    assert "produce: 30000 messages from 3 producers in" in p.stderr
    assert c.returncode == 0, err
    assert re.search(r"received 30000, lost 0, missed 0, gaps 0, "
                     r"duplicates 0, crc errors 0, (content errors 0, )?"
                     r"abandoned", err), err


def test_c_threads_to_python(ring_name, c_bin, tmp_path) -> None:
    """Four C producer threads; the Python consumer's JSON shows every
    producer's seq complete and in order."""
    n = ring_name()
    with pbring.Ring.create(n, slots=1024, slot_size=256, schema="demo"), \
            open(tmp_path / "out", "w+") as f:
        c = subprocess.Popen(PY_CMD + ["consume", n, "--count", "40000",
                                       "--json", "--timeout", "30"],
                             stdout=f, stderr=subprocess.PIPE, text=True)
        p = subprocess.run([c_bin, "produce", n, "--count", "10000",
                            "--producers", "4"],
                           capture_output=True, text=True, timeout=120)
        _, err = c.communicate(timeout=120)
        f.seek(0)
        out = f.read()
    assert p.returncode == 0, p.stderr
    assert c.returncode == 0, err
    seen: Dict[str, int] = {}
    import json
    for line in out.splitlines():
        d = json.loads(line)
        seq = int(d.get("seq", "0"))
        assert seq == seen.get(d["id"], 0), (d, seen)
        seen[d["id"]] = seq + 1
    assert sorted(seen.values()) == [10000] * 4


def test_lossy_python_consumer(ring_name, c_bin) -> None:
    """A lossy Python consumer never holds the C producer back."""
    n = ring_name()
    with pbring.Ring.create(n, slots=64, slot_size=256, schema="demo"):
        c = subprocess.Popen(PY_CMD + ["consume", n, "--lossy", "--quiet",
                                       "--timeout", "1"],
                             stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)
        p = subprocess.run([c_bin, "produce", n, "--count", "200000",
                            "--no-wait"], capture_output=True, text=True,
                           timeout=120)
        _, err = c.communicate(timeout=120)
    assert p.returncode == 0, p.stderr
    assert c.returncode == 0, err
    m = re.search(r"consume \(lossy\): received (\d+), lost (\d+), .*"
                  r"crc errors 0, (content errors 0, )?abandoned", err)
    assert m, err
    assert int(m.group(1)) > 0
