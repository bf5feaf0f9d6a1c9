# SPDX-License-Identifier: MIT
"""Scenario 9: what stops a command line that waits (docs/CLI.md).

- Ctrl-C (SIGINT) or SIGTERM stops a producer waiting for a gating reader
  or for space in a full ring, and a consumer waiting for messages, at
  once: exit 130 / 143, "pbring: RING: interrupted", the summary printed,
  nothing committed lost.
- A producer says once what it waits for; a gating reader's death is
  reported when it is reaped.
- `pbring rm --force` under a waiting consumer or producer stops it with
  "ring was removed while in use" instead of leaving it waiting forever.

ids: the language of the command that waits.
"""
import os
import re
import signal
import time

import pytest

from scenlib import ACTING, rotate

PROMPT = 1.5  # seconds from the signal to the exit, on a loaded machine
SENT_RE = re.compile(r"^produce: (\d+) messages", re.M)


def wait_for_text(actor, text, timeout=10.0):
    deadline = time.monotonic() + timeout
    while text not in actor.err:
        if not actor.alive():
            pytest.fail(f"{actor.label} exited before saying {text!r}",
                        pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail(f"{actor.label} did not say {text!r}", pytrace=False)
        time.sleep(0.01)


def stopped_by(actor, sig):
    t0 = time.monotonic()
    actor.signal(sig)
    rc = actor.wait(timeout=10)
    took = time.monotonic() - t0
    assert took < PROMPT, f"{actor.label} took {took:.2f} s to stop"
    return rc


def sent(actor):
    m = SENT_RE.findall(actor.err)
    assert m, f"{actor.label} printed no summary: {actor.err!r}"
    return int(m[-1])


def wait_full(scen, ring, slots):
    """Until the producer has claimed every slot of the ring."""
    deadline = time.monotonic() + 10
    while scen.stat(ring)["claimed"] < slots:
        assert time.monotonic() < deadline, "the ring never filled"
        time.sleep(0.02)


def blocked_producer(scen, lang, ring, slots=16, count=100000):
    """A producer in L blocked on a full ring: its gating consumer (the
    next language) is SIGSTOPped. Returns (producer, consumer)."""
    c = scen.spawn(rotate(lang, 1), "consumer", "consume", ring)
    scen.wait_joined(ring, c, role="gating")
    c.stop()
    p = scen.spawn(lang, "producer", "produce", ring, "--count", count,
                   "--timeout", 60)
    wait_full(scen, ring, slots)
    return p, c


@pytest.mark.parametrize("lang", ACTING)
def test_interrupt_waiting_for_reader(scen, lang):
    ring = scen.ring("sig-nr")
    p = scen.spawn(lang, "producer", "produce", ring, "--count", 100,
                   "--timeout", 60)
    wait_for_text(p, f"waiting for a gating reader on {ring}")
    assert stopped_by(p, signal.SIGINT) == 130
    assert f"pbring: {ring}: interrupted" in p.err, p.err
    assert p.err.count("waiting for a gating reader") == 1, p.err
    assert sent(p) == 0


@pytest.mark.parametrize("lang", ACTING)
def test_terminate_on_full_ring_loses_nothing(scen, lang):
    ring = scen.ring("sig-full", slots=16)
    p, c = blocked_producer(scen, lang, ring)
    # a second without progress: it says what it waits for, once
    wait_for_text(p, f"(pid {c.pid}) to read")
    assert f"pbring: {ring}: ring is full: waiting for gating reader " \
        in p.err, p.err
    assert stopped_by(p, signal.SIGTERM) == 143
    assert p.err.count("ring is full") == 1, p.err
    assert f"pbring: {ring}: interrupted" in p.err, p.err
    n = sent(p)
    assert n >= 16, p.err
    c.cont()
    deadline = time.monotonic() + 10
    while scen.participant(ring, c.pid)["position"] < n:
        assert time.monotonic() < deadline, "consumer did not catch up"
        time.sleep(0.02)
    assert stopped_by(c, signal.SIGINT) == 130
    s = c.summary
    assert s and s["received"] == n, c.err
    for k in ("lost", "gaps", "duplicates", "crc errors", "abandoned"):
        assert s.get(k) == 0, (k, c.err)


@pytest.mark.parametrize("lang", ACTING)
def test_interrupt_waiting_consumer(scen, lang):
    ring = scen.ring("sig-c")
    c = scen.spawn(lang, "consumer", "consume", ring)
    scen.wait_joined(ring, c, role="gating")
    assert stopped_by(c, signal.SIGINT) == 130
    assert f"pbring: {ring}: interrupted" in c.err, c.err
    assert c.summary and c.summary["received"] == 0, c.err


@pytest.mark.parametrize("lang", ACTING)
def test_dead_gating_reader_reported(scen, lang):
    ring = scen.ring("sig-dead", slots=16)
    p, c = blocked_producer(scen, lang, ring, count=2000)
    c.kill()
    wait_for_text(p, f"gating reader 0 (pid {c.pid}) died")
    assert p.wait(timeout=20) == 0, p.err
    assert sent(p) == 2000


@pytest.mark.parametrize("lang", ACTING)
@pytest.mark.parametrize("role", ["consumer", "producer"])
def test_removed_under_a_waiter(scen, lang, role):
    ring = scen.ring("sig-rm", slots=16)
    if role == "consumer":
        w = scen.spawn(lang, "consumer", "consume", ring)
        scen.wait_joined(ring, w, role="gating")
    else:
        w, _ = blocked_producer(scen, lang, ring)
    r = scen.run("c", "rm", ring)
    assert r.returncode == 1 and "--force" in r.stderr, r.stderr
    assert f"(pid {w.pid})" in r.stderr, r.stderr
    t0 = time.monotonic()
    r = scen.run("c", "rm", "--force", ring)
    assert r.returncode == 0, r.stderr
    rc = w.wait(timeout=10)
    assert rc == 1, (rc, w.err)
    assert time.monotonic() - t0 < PROMPT
    assert "ring was removed while in use" in w.err, w.err


@pytest.mark.parametrize("lang", ACTING)
def test_truncated_under_a_blocked_producer(scen, lang):
    """Shrunk under a producer waiting for space: damaged, said at once
    with the way out, not "ring stayed full" after --timeout."""
    ring = scen.ring("sig-trunc", slots=16)
    p, _ = blocked_producer(scen, lang, ring)
    t0 = time.monotonic()
    os.truncate(f"/dev/shm/pbring.{ring}", 8192)
    assert p.wait(timeout=10) == 1, p.err
    assert time.monotonic() - t0 < PROMPT
    assert p.err.rstrip().endswith(
        "ring is damaged (unfinished creation, truncated, or inconsistent "
        f"geometry); remove it with 'pbring rm {ring}'"), p.err


@pytest.mark.parametrize("lang", ACTING)
def test_interrupt_paced_producer(scen, lang):
    """Ctrl-C while --rate paces (not blocked on the ring): the pause ends
    at once, nothing more is sent, exit 130."""
    ring = scen.ring("sig-paced")
    p = scen.spawn(lang, "producer", "produce", ring, "--no-wait",
                   "--rate", "0.5", "--count", 10)
    deadline = time.monotonic() + 10
    while scen.stat(ring)["claimed"] < 1:  # the first is due at once
        assert time.monotonic() < deadline, "nothing sent"
        time.sleep(0.02)
    assert stopped_by(p, signal.SIGINT) == 130
    assert f"pbring: {ring}: interrupted" in p.err, p.err
    assert sent(p) == 1, p.err
    assert scen.stat(ring)["claimed"] == 1


def json_fifo(scen, lang, ring, tag):
    """A producer in L reading JSON lines from a FIFO that this test holds
    open for writing (so its reads block, as on a quiet stdin)."""
    path = os.path.join(scen.tmp, f"{tag}.fifo")
    os.mkfifo(path)
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    p = scen.spawn(lang, "producer", "produce", ring, "--no-wait",
                   "--from-json", path)
    return p, fd


@pytest.mark.parametrize("lang", ACTING)
def test_terminate_while_reading_json(scen, lang):
    ring = scen.ring("sig-json")
    p, fd = json_fifo(scen, lang, ring, "term")
    try:
        os.write(fd, b"{}\n")
        deadline = time.monotonic() + 10
        while scen.stat(ring)["claimed"] < 1:
            assert time.monotonic() < deadline, p.err
            time.sleep(0.02)
        assert stopped_by(p, signal.SIGTERM) == 143
    finally:
        os.close(fd)
    assert f"pbring: {ring}: interrupted" in p.err, p.err
    assert sent(p) == 1, p.err


@pytest.mark.parametrize("lang", ACTING)
def test_json_producer_notices_removal(scen, lang):
    """A --from-json producer that never waits still notices `rm --force`
    (it looks between lines, 4 times a second)."""
    ring = scen.ring("sig-jrm")
    p, fd = json_fifo(scen, lang, ring, "rm")
    try:
        os.write(fd, b"{}\n")
        time.sleep(0.3)
        assert scen.run("c", "rm", "--force", ring).returncode == 0
        time.sleep(0.3)
        os.write(fd, b"{}\n")
        assert p.wait(timeout=10) == 1, p.err
    finally:
        os.close(fd)
    assert p.err.rstrip().endswith(
        f"pbring: {ring}: ring was removed while in use"), p.err
