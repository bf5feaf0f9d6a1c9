# SPDX-License-Identifier: MIT
"""Prometheus metrics: `pbring stat --prometheus` (checked by Prometheus's
own `promtool check metrics`, values against `stat --json`), `pbring
exporter` over HTTP (its errors too), and the real Prometheus server,
started here on loopback with a scrape config for the exporter, reading
back the ring's counters through its HTTP query API. Names and labels:
docs/METRICS.md."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from cliutil import stat_json, wait_reader

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")


def samples(text):
    """{(name, frozenset(labels)): value} of an exposition."""
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


def value(s, name, **labels):
    key = (name, frozenset(labels.items()))
    assert key in s, f"no {name}{labels} in {sorted(s)[:40]}"
    return s[key]


def free_port():
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def promtool_check(text):
    assert PROMTOOL, "promtool is not installed (./dev deps installs it)"
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr


def test_stat_prometheus(pbring, ring, procs):
    """A gating and a lossy reader and a producer that sent 50: every
    family passes promtool, and the values are stat --json's."""
    name = ring()
    assert pbring("create", name, "--slots", 64, "--slot-size", 256).rc == 0
    gating = procs("consume", name, "--quiet", "--count", 50)
    wait_reader(pbring, name, gating.pid)
    lossy = procs("consume", name, "--quiet", "--lossy")
    wait_reader(pbring, name, lossy.pid, role="lossy")
    assert pbring("produce", name, "--count", 50).rc == 0
    assert gating.wait() == 0
    r = pbring("stat", name, "--prometheus")
    assert r.rc == 0 and r.err == "", r
    promtool_check(r.out)
    js = stat_json(pbring, name)
    s = samples(r.out)
    assert value(s, "pbring_ring_up", ring=name) == 1
    assert value(s, "pbring_ring_info", ring=name,
                 msg_type="pbring.demo.v1.DeviceEvent", crc="full") == 1
    assert value(s, "pbring_ring_slots", ring=name) == 64
    assert value(s, "pbring_ring_slot_bytes", ring=name) == 256
    assert value(s, "pbring_ring_claimed_total", ring=name) == 50
    assert value(s, "pbring_ring_readers_reaped_total", ring=name) == \
        js["readers_reaped"]
    assert value(s, "pbring_participants", ring=name, role="lossy",
                 state="alive") == 1
    assert value(s, "pbring_participants", ring=name, role="producer",
                 state="alive") == 0
    lossy_entry = [p for p in js["participants"] if p["role"] == "lossy"]
    assert len(lossy_entry) == 1
    idx = str(lossy_entry[0]["index"])
    assert value(s, "pbring_reader_up", ring=name, participant=idx,
                 mode="lossy") == 1
    assert value(s, "pbring_reader_delivered_total", ring=name,
                 participant=idx, mode="lossy") == \
        lossy_entry[0]["delivered"]
    assert value(s, "pbring_reader_lag_messages", ring=name, participant=idx,
                 mode="lossy") == lossy_entry[0]["lag"]
    r2 = pbring("stat", name, "--prometheus", "--json")
    assert r2.rc == 2 and "exclude each other" in r2.err


def test_exporter_http(pbring, ring, procs):
    name = ring()
    assert pbring("create", name, "--slots", 16).rc == 0
    assert pbring("produce", name, "--count", 7, "--no-wait").rc == 0
    port = free_port()
    ex = procs("exporter", "--listen", f"127.0.0.1:{port}", name,
               "nosuchring-x")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            status, ctype, body = get(url + "/metrics")
            break
        except (ConnectionError, urllib.error.URLError):
            assert time.monotonic() < deadline, ex.err
            time.sleep(0.05)
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    promtool_check(body)
    s = samples(body)
    assert value(s, "pbring_ring_claimed_total", ring=name) == 7
    assert value(s, "pbring_ring_up", ring="nosuchring-x") == 0
    assert get(url + "/")[0] == 404
    req = urllib.request.Request(url + "/metrics", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 405
    # Another exporter on the same port: one line, exit 1.
    r = pbring("exporter", "--listen", f"127.0.0.1:{port}")
    assert r.rc == 1 and len(r.err_lines) == 1 and "cannot serve" in r.err
    ex.p.send_signal(signal.SIGINT)
    assert ex.wait() == 130
    assert f"serving http://127.0.0.1:{port}/metrics" in ex.err


@pytest.mark.parametrize("bad", ["nope", "127.0.0.1", "127.0.0.1:0",
                                 "127.0.0.1:70000", "host.example:80"])
def test_exporter_bad_listen(pbring, bad):
    r = pbring("exporter", "--listen", bad)
    assert r.rc == 2 and "--listen" in r.err and len(r.err_lines) == 1, r


def test_exporter_every_ring(pbring, ring, procs):
    """Without names: every ring on the host, found at each scrape."""
    port = free_port()
    procs("exporter", "--listen", f"127.0.0.1:{port}")
    name = ring()
    assert pbring("create", name, "--slots", 16).rc == 0
    deadline = time.monotonic() + 10
    while True:
        try:
            body = get(f"http://127.0.0.1:{port}/metrics")[2]
            if f'pbring_ring_up{{ring="{name}"}} 1' in body:
                break
        except (ConnectionError, urllib.error.URLError):
            pass
        assert time.monotonic() < deadline, "the new ring never showed"
        time.sleep(0.05)
    promtool_check(body)


def test_prometheus_scrapes_the_exporter(pbring, ring, procs, tmp_path):
    """The real Prometheus server scrapes `pbring exporter` every 0.5 s;
    after a produce/consume of 1000 messages its query API returns the
    ring's claimed counter, a new reader's delivered counter and the
    participant gauge."""
    assert PROMETHEUS, "prometheus is not installed (./dev deps installs it)"
    name = ring()
    assert pbring("create", name, "--slots", 256).rc == 0
    eport, pport = free_port(), free_port()
    procs("exporter", "--listen", f"127.0.0.1:{eport}", name)
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global:\n  scrape_interval: 500ms\n  evaluation_interval: 500ms\n"
        "scrape_configs:\n  - job_name: pbring\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{eport}']\n")
    prom = subprocess.Popen(
        [PROMETHEUS, f"--config.file={cfg}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{pport}"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prom.log", "wb"),
        stdin=subprocess.DEVNULL)
    try:
        consumer = procs("consume", name, "--quiet", "--count", 1000)
        wait_reader(pbring, name, consumer.pid)
        assert pbring("produce", name, "--count", 1000).rc == 0
        assert consumer.wait() == 0
        # the consumer has left: read a reader that stays
        stay = procs("consume", name, "--quiet", "--from", "oldest")
        wait_reader(pbring, name, stay.pid)
        # it replays the 256 messages the ring still holds
        wanted = {
            f'pbring_ring_claimed_total{{ring="{name}"}}': 1000.0,
            f'sum(pbring_reader_delivered_total{{ring="{name}"}})': 256.0,
            f'pbring_participants{{ring="{name}",role="gating",'
            f'state="alive"}}': 1.0,
        }
        got = {}
        deadline = time.monotonic() + 30
        while got != wanted and time.monotonic() < deadline:
            time.sleep(0.25)
            for q in wanted:
                try:
                    _, _, body = get(
                        f"http://127.0.0.1:{pport}/api/v1/query?query="
                        + urllib.request.quote(q))
                except (ConnectionError, urllib.error.URLError):
                    continue
                res = json.loads(body)["data"]["result"]
                if res:
                    got[q] = float(res[0]["value"][1])
        assert got == wanted, (got, (tmp_path / "prom.log").read_text()[-2000:])
    finally:
        prom.send_signal(signal.SIGTERM)
        try:
            prom.wait(timeout=20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
