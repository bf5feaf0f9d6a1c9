# SPDX-License-Identifier: MIT
"""pbring.metrics.RingCollector (prometheus_client): the same names,
labels and values as the C command's `pbring stat --prometheus` for the
same ring, the reader metrics of format 1.2 (error counters, the latency
histogram) included, and an exposition that Prometheus's promtool
accepts."""
from __future__ import annotations

import mmap
import re
import shutil
import struct
import subprocess
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest

import pbring
from pbring import DeviceEvent, Reader, Ring
from pbring.metrics import RingCollector

LATENCY = "pbring_reader_latency_seconds"
#: the le labels, as C's "%g" of the bounds in seconds
LE = ["1e-07", "2e-07", "5e-07", "1e-06", "2e-06", "5e-06", "1e-05",
      "2e-05", "5e-05", "0.0001", "0.0002", "0.0005", "0.001", "0.002",
      "0.005", "0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1", "+Inf"]


def samples(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r'([a-z_]+)\{(.*)\} (\S+)', line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"',
                                      m.group(2)))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def families(text: str) -> dict:
    """{name: type} from the # TYPE lines."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))


def helps(text: str) -> dict:
    """{name: help} from the # HELP lines."""
    return dict(re.findall(r"^# HELP (\S+) (.*)$", text, re.M))


def family_order(text: str) -> list:
    return re.findall(r"^# TYPE (\S+) ", text, re.M)


def flip(ring: Ring, seq: int) -> None:
    """Change a payload byte of message @seq: its CRC no longer matches."""
    with open(f"/dev/shm/pbring.{ring.name}", "r+b") as f:
        m = mmap.mmap(f.fileno(), 0)
        slots_off = struct.unpack_from("<Q", m, 0x70)[0]
        m[slots_off + seq * ring.info.slot_size + 64 + 1] ^= 0xFF
        m.close()


def refuse_seq_5(msg) -> None:
    if msg.seq == 5:
        raise ValueError("refused")


def exposition(collector: RingCollector) -> str:
    reg = CollectorRegistry()
    reg.register(collector)
    return generate_latest(reg).decode()


@pytest.fixture
def busy(name):
    """A demo ring with a gating and a lossy reader and a producer that
    sent 20 messages, 12 of them read by the gating reader, which records
    their latency: one failed its CRC, one its content check."""
    with Ring.create(name, slots=32, slot_size=256, schema="demo") as r, \
            Reader(r, timeout=1, latency=True) as gating, \
            Reader(r, lossy=True, timeout=1), r.producer() as p:
        for i in range(20):
            p.send(DeviceEvent(id="m", seq=i))
        flip(r, 3)
        for _ in range(12):
            try:
                gating.recv(check=refuse_seq_5)
            except pbring.Corrupt:
                pass
        gating.release()
        yield r


def test_same_as_the_c_command(busy, name, c_bin):
    py = exposition(RingCollector([name, "nosuch-ring-x"]))
    c = subprocess.run([c_bin, "stat", name, "--prometheus"],
                       capture_output=True, text=True, timeout=30)
    assert c.returncode == 0, c.stderr
    ps, cs = samples(py), samples(c.stdout)
    up_missing = ("pbring_ring_up", frozenset({("ring", "nosuch-ring-x")}))
    assert ps.pop(up_missing) == 0
    assert ps == cs  # every name, every label set, every value
    assert families(py) == families(c.stdout)
    assert helps(py) == helps(c.stdout)
    assert family_order(py) == family_order(c.stdout)
    assert cs[("pbring_ring_claimed_total", frozenset({("ring", name)}))] \
        == 20
    gating = {("ring", name), ("participant", "0"), ("mode", "gating")}
    lossy = {("ring", name), ("participant", "1"), ("mode", "lossy")}
    for fam, want in (("pbring_reader_crc_errors_total", 1),
                      ("pbring_reader_decode_errors_total", 1),
                      ("pbring_reader_bad_total", 0),
                      ("pbring_reader_delivered_total", 12)):
        assert cs[(fam, frozenset(gating))] == want, fam
    # the gating reader's histogram: the 20 messages, timed at its first
    # peek; the lossy reader does not record latency: no histogram
    assert cs[(LATENCY + "_count", frozenset(gating))] == 20
    assert cs[(LATENCY + "_sum", frozenset(gating))] > 0
    assert (LATENCY + "_count", frozenset(lossy)) not in cs
    got = {dict(ls)["le"]: v for (n, ls), v in cs.items()
           if n == LATENCY + "_bucket" and ls >= gating}
    assert sorted(got, key=LE.index) == LE
    counts = [got[le] for le in LE]
    assert counts == sorted(counts) and counts[-1] == 20  # cumulative


def test_histogram_above_a_second(name, c_bin):
    """A message received after more than 1 s: only the +Inf bucket, and a
    sum of seconds, the same in both."""
    with Ring.create(name, slots=8, slot_size=256, schema="demo") as r, \
            Reader(r, timeout=1, latency=True) as rd, r.producer() as p:
        p.send(DeviceEvent(id="slow"))
        time.sleep(1.05)
        rd.recv()
        py = exposition(RingCollector([name]))
        c = subprocess.run([c_bin, "stat", name, "--prometheus"],
                           capture_output=True, text=True, timeout=30)
    assert c.returncode == 0, c.stderr
    ps, cs = samples(py), samples(c.stdout)
    assert ps == cs
    rd_labels = {("ring", name), ("participant", "0"), ("mode", "gating")}
    for le in LE:
        n = cs[(LATENCY + "_bucket", frozenset(rd_labels | {("le", le)}))]
        assert n == (1 if le == "+Inf" else 0), le
    assert 1.05 <= cs[(LATENCY + "_sum", frozenset(rd_labels))] < 60


def test_no_histogram_for_an_earlier_readers_block(name, c_bin):
    """A reader entry whose metrics block is stamped by another joined_ns
    (an earlier reader took the entry, FORMAT.md §5.5) has no histogram,
    but its counters."""
    with Ring.create(name, slots=8, slot_size=256, schema="demo") as r, \
            Reader(r, timeout=1, latency=True):
        with open(f"/dev/shm/pbring.{name}", "r+b") as f:
            m = mmap.mmap(f.fileno(), 0)
            poff = struct.unpack_from("<Q", m, 0x50)[0]
            np, nr = struct.unpack_from("<II", m, 0x38)
            block = poff + (np + nr) * 128
            struct.pack_into("<Q", m, block, 12345)  # another joined_ns
            m.close()
        (p,) = [p for p in r.participants() if p.is_reader]
        assert not p.has_latency and p.latency_count == 0
        py = exposition(RingCollector([name]))
        c = subprocess.run([c_bin, "stat", name, "--prometheus"],
                           capture_output=True, text=True, timeout=30)
    assert samples(py) == samples(c.stdout)
    assert LATENCY + "_count" not in py
    assert re.search(r'^pbring_reader_decode_errors_total\{.*\} 0\.0$', py,
                     re.M)


def test_promtool_accepts_it(busy, name):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed (./dev deps installs it)"
    text = exposition(RingCollector([name]))
    assert f"# TYPE {LATENCY} histogram" in text
    r = subprocess.run([promtool, "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_ring(busy, name):
    s = samples(exposition(RingCollector()))
    assert s[("pbring_ring_up", frozenset({("ring", name)}))] == 1
