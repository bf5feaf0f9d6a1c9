# SPDX-License-Identifier: MIT
"""pbring.metrics.RingCollector (prometheus_client): the same names,
labels and values as the C command's `pbring stat --prometheus` for the
same ring, and an exposition that Prometheus's promtool accepts."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from pbring import DeviceEvent, Reader, Ring
from pbring.metrics import RingCollector


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


def exposition(collector: RingCollector) -> str:
    reg = CollectorRegistry()
    reg.register(collector)
    return generate_latest(reg).decode()


@pytest.fixture
def busy(name):
    """A demo ring with a gating and a lossy reader and a producer that
    sent 20 messages, 12 of them read by the gating reader."""
    with Ring.create(name, slots=32, slot_size=256, schema="demo") as r, \
            Reader(r, timeout=1) as gating, \
            Reader(r, lossy=True, timeout=1), r.producer() as p:
        for i in range(20):
            p.send(DeviceEvent(id="m", seq=i))
        for _ in range(12):
            gating.recv()
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
    assert cs[("pbring_ring_claimed_total", frozenset({("ring", name)}))] \
        == 20


def test_promtool_accepts_it(busy, name):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed (./dev deps installs it)"
    r = subprocess.run([promtool, "check", "metrics"],
                       input=exposition(RingCollector([name])),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_ring(busy, name):
    s = samples(exposition(RingCollector()))
    assert s[("pbring_ring_up", frozenset({("ring", name)}))] == 1
