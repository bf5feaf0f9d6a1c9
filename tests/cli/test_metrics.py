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

from cliutil import (SB_SLOT_SIZE, SB_SLOTS_OFF, SLOT_HDR, Shm,
                     consume_summary, stat_json, wait_for, wait_reader)

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


# --- reader metrics (format 1.2: FORMAT.md §5.4-§5.6) ---------------------

# The histogram's upper bounds in seconds (FORMAT.md §5.5), then +Inf.
LATENCY_LE = [100e-9, 200e-9, 500e-9, 1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5,
              1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.2,
              0.5, 1.0]
READER_COUNTERS = ("pbring_reader_bad_total", "pbring_reader_crc_errors_total",
                   "pbring_reader_decode_errors_total")


def families(text):
    """{name: type} from the # TYPE lines."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))


def histogram(text, ring, participant, mode):
    """One reader's pbring_reader_latency_seconds: ([(le, cumulative)...]
    in exposition order, sum, count), checked for its shape."""
    name = "pbring_reader_latency_seconds"
    want = {("ring", ring), ("participant", str(participant)),
            ("mode", mode)}
    buckets, total, count = [], None, None
    for line in text.splitlines():
        m = re.fullmatch(name + r'(_bucket|_sum|_count)\{(.*)\} (\S+)', line)
        if not m:
            continue
        labels = dict(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"',
                                 m.group(2)))
        le = labels.pop("le", None)
        if set(labels.items()) != want:
            continue
        if m.group(1) == "_bucket":
            buckets.append((float(le), float(m.group(3))))
        elif m.group(1) == "_sum":
            total = float(m.group(3))
        else:
            count = float(m.group(3))
    assert buckets, f"no {name} for reader {participant} of {ring}:\n{text}"
    assert [le for le, _ in buckets] == LATENCY_LE + [float("inf")]
    cum = [v for _, v in buckets]
    assert cum == sorted(cum), f"buckets not cumulative: {cum}"
    assert cum[-1] == count, (cum, count)
    return buckets, total, count


def reader_entry(pbring, name, pid):
    st = stat_json(pbring, name)
    (p,) = [p for p in st["participants"]
            if p["role"] != "producer" and p["pid"] == pid]
    return p


def wait_delivered(pbring, name, pid, n):
    """Wait until reader pid has released n messages."""
    return wait_for(
        pbring, name,
        lambda st: any(p["pid"] == pid and p["delivered"] == n
                       for p in st["participants"]),
        what=f"reader pid {pid} to deliver {n}")


def corrupt_payload(name, seq):
    """Flip the last payload byte of committed message seq."""
    with Shm(name) as m:
        slot = m.u64(SB_SLOTS_OFF) + seq * m.u32(SB_SLOT_SIZE)
        assert m.u64(slot) == (seq << 2) | 1  # DONE(seq)
        length = m.u32(slot + 8)
        assert 0 < length <= m.u32(SB_SLOT_SIZE) - SLOT_HDR
        m.m[slot + SLOT_HDR + length - 1] ^= 0xFF


def test_reader_metrics_families(pbring, ring, procs):
    """A gating and a lossy `pbring consume` (which records latency) and
    50 messages: the reader counters are 0, each reader has a latency
    histogram with the bounds of FORMAT.md §5.5, cumulative, whose count
    is what it received, in `stat --prometheus` and from the exporter,
    and promtool accepts both."""
    name, n = ring(), 50
    assert pbring("create", name, "--slots", 64, "--slot-size", 256).rc == 0
    gating = procs("consume", name, "--quiet", "--timeout", 60)
    wait_reader(pbring, name, gating.pid)
    lossy = procs("consume", name, "--quiet", "--lossy", "--timeout", 60)
    wait_reader(pbring, name, lossy.pid, role="lossy")
    assert pbring("produce", name, "--count", n).rc == 0
    wait_delivered(pbring, name, gating.pid, n)
    wait_delivered(pbring, name, lossy.pid, n)
    r = pbring("stat", name, "--prometheus")
    assert r.rc == 0 and r.err == "", r
    promtool_check(r.out)
    fam = families(r.out)
    for c in READER_COUNTERS:
        assert fam[c] == "counter"
    assert fam["pbring_reader_latency_seconds"] == "histogram"
    s = samples(r.out)
    for pid, mode in ((gating.pid, "gating"), (lossy.pid, "lossy")):
        idx = str(reader_entry(pbring, name, pid)["index"])
        for c in READER_COUNTERS:
            assert value(s, c, ring=name, participant=idx, mode=mode) == 0
        assert value(s, "pbring_reader_delivered_total", ring=name,
                     participant=idx, mode=mode) == n
        buckets, total, count = histogram(r.out, name, idx, mode)
        assert count == n
        # each latency is > 0 and, on an idle host, far below a minute
        assert 0 < total < n * 60, total
        assert buckets[0][1] < n  # not all within 100 ns
    # the exporter serves the same families
    port = free_port()
    procs("exporter", "--listen", f"127.0.0.1:{port}", name)
    deadline = time.monotonic() + 10
    while True:
        try:
            status, _, body = get(f"http://127.0.0.1:{port}/metrics")
            break
        except (ConnectionError, urllib.error.URLError):
            assert time.monotonic() < deadline, "the exporter never served"
            time.sleep(0.05)
    assert status == 200
    promtool_check(body)
    idx = str(reader_entry(pbring, name, gating.pid)["index"])
    assert histogram(body, name, idx, "gating")[2] == n
    assert families(body)["pbring_reader_latency_seconds"] == "histogram"
    for c in READER_COUNTERS:
        assert value(samples(body), c, ring=name, participant=idx,
                     mode="gating") == 0


def test_latency_of_queued_messages(pbring, ring, procs):
    """Messages that waited in the ring about 0.3 s before a consumer
    joined (--from oldest) are counted with that age: every one above
    0.2 s and, on any sane host, below 60 s."""
    name, n = ring(), 5
    assert pbring("create", name, "--slots", 16).rc == 0
    assert pbring("produce", name, "--no-wait", "--count", n).rc == 0
    time.sleep(0.3)
    c = procs("consume", name, "--quiet", "--timeout", 60)
    wait_delivered(pbring, name, c.pid, n)
    r = pbring("stat", name, "--prometheus")
    assert r.rc == 0, r
    promtool_check(r.out)
    idx = str(reader_entry(pbring, name, c.pid)["index"])
    buckets, total, count = histogram(r.out, name, idx, "gating")
    assert count == n
    assert dict(buckets)[0.2] == 0, buckets
    assert 0.3 * n <= total < 60 * n, total


def test_crc_error_counted_in_ring(pbring, ring, procs):
    """One payload with a bad CRC: `pbring consume` counts it in the
    ring's pbring_reader_crc_errors_total (once), not as a decode error
    nor a bad slot; the histogram still counts every message received."""
    name, n, bad_seq = ring(), 10, 3
    assert pbring("create", name, "--slots", 64).rc == 0
    assert pbring("produce", name, "--no-wait", "--count", n,
                  "--size", 16).rc == 0
    corrupt_payload(name, bad_seq)
    c = procs("consume", name, "--quiet", "--timeout", 60)
    wait_delivered(pbring, name, c.pid, n)
    r = pbring("stat", name, "--prometheus")
    assert r.rc == 0, r
    promtool_check(r.out)
    s = samples(r.out)
    idx = str(reader_entry(pbring, name, c.pid)["index"])
    lab = dict(ring=name, participant=idx, mode="gating")
    assert value(s, "pbring_reader_crc_errors_total", **lab) == 1
    assert value(s, "pbring_reader_decode_errors_total", **lab) == 0
    assert value(s, "pbring_reader_bad_total", **lab) == 0
    assert histogram(r.out, name, idx, "gating")[2] == n
    c.p.send_signal(signal.SIGINT)
    c.wait()
    assert consume_summary(c.err)["crc errors"] == 1, c.err


def test_decode_error_counted_in_ring(pbring, ring, procs):
    """On a ring without CRCs a damaged payload fails the demo checks:
    a content error for `pbring consume`, counted in the ring's
    pbring_reader_decode_errors_total, not as a CRC error."""
    name, n, bad_seq = ring(), 10, 4
    assert pbring("create", name, "--slots", 64, "--crc", "none").rc == 0
    assert pbring("produce", name, "--no-wait", "--count", n,
                  "--size", 16).rc == 0
    corrupt_payload(name, bad_seq)
    c = procs("consume", name, "--quiet", "--timeout", 60)
    wait_delivered(pbring, name, c.pid, n)
    r = pbring("stat", name, "--prometheus")
    assert r.rc == 0, r
    promtool_check(r.out)
    s = samples(r.out)
    idx = str(reader_entry(pbring, name, c.pid)["index"])
    lab = dict(ring=name, participant=idx, mode="gating")
    assert value(s, "pbring_reader_decode_errors_total", **lab) == 1
    assert value(s, "pbring_reader_crc_errors_total", **lab) == 0
    assert value(s, "pbring_reader_bad_total", **lab) == 0
    c.p.send_signal(signal.SIGINT)
    c.wait()
    summary = consume_summary(c.err)
    assert (summary["content errors"], summary["crc errors"]) == (1, 0), \
        c.err


def test_bad_slot_counted_in_ring(pbring, ring, procs):
    """A slot header whose length is impossible is passed over: counted in
    pbring_reader_bad_total, and not observed in the histogram (it is not
    a message)."""
    name, n, bad_seq = ring(), 6, 2
    assert pbring("create", name, "--slots", 16, "--slot-size", 256).rc == 0
    assert pbring("produce", name, "--no-wait", "--count", n).rc == 0
    with Shm(name) as m:
        slot = m.u64(SB_SLOTS_OFF) + bad_seq * m.u32(SB_SLOT_SIZE)
        m.put("<I", slot + 8, 0xFFFFFFF0)
    c = procs("consume", name, "--quiet", "--timeout", 60)
    wait_delivered(pbring, name, c.pid, n - 1)
    # the cursor passed the bad slot too
    wait_for(pbring, name,
             lambda st: any(p["pid"] == c.pid and p["lag"] == 0
                            for p in st["participants"]),
             what="the consumer to catch up")
    r = pbring("stat", name, "--prometheus")
    assert r.rc == 0, r
    promtool_check(r.out)
    s = samples(r.out)
    idx = str(reader_entry(pbring, name, c.pid)["index"])
    lab = dict(ring=name, participant=idx, mode="gating")
    assert value(s, "pbring_reader_bad_total", **lab) == 1
    assert value(s, "pbring_reader_crc_errors_total", **lab) == 0
    assert value(s, "pbring_reader_decode_errors_total", **lab) == 0
    assert histogram(r.out, name, idx, "gating")[2] == n - 1
