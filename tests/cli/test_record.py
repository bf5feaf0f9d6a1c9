# SPDX-License-Identifier: MIT
"""`pbring record` and `pbring info`: rings to MCAP files, read back with
the official Python packages (mcap, mcap-protobuf-support): every message
decodes with the schema the file carries, in order, none lost; several
rings in one file; --tap; --max-size; Ctrl-C; `info` on good, cut and
foreign files; usage errors; and a throughput figure."""
import os
import re
import resource
import signal
import struct
import subprocess
import time

import pytest

from cliutil import RUN_TIMEOUT, stat_json, wait_reader

# Not in Debian: tests/cli/run_record.sh runs this file in a venv that
# has them (ctest's cli_record); the plain `cli` test leaves it out.
import mcap.reader as mcap_reader  # noqa: E402
import mcap_protobuf.decoder as mcap_protobuf  # noqa: E402

DEMO_TYPE = "pbring.demo.v1.DeviceEvent"


def read_mcap(path):
    """[(topic, schema name, Message, decoded)] in file order, and the
    summary; via the summary's chunk indexes (a seeking reader)."""
    with open(path, "rb") as f:
        r = mcap_reader.make_reader(
            f, decoder_factories=[mcap_protobuf.DecoderFactory()])
        summary = r.get_summary()
        assert summary is not None, f"{path}: no summary"
        out = [(ch.topic, sch.name, m, d)
               for sch, ch, m, d in r.iter_decoded_messages(
                   log_time_order=False)]
    return out, summary


def stream_count(path):
    """Messages read front to back without the summary (a stream reader,
    which also checks the records' framing)."""
    with open(path, "rb") as f:
        r = mcap_reader.NonSeekingReader(f)
        return sum(1 for _ in r.iter_messages())


def record_summary(err):
    lines = [l for l in err.splitlines() if l.startswith("record: ")]
    assert len(lines) == 1, err
    return lines[0]


def start_recorder(pbring, procs, names, out, *args):
    rec = procs("record", *names, "-o", out, *args, tag="rec")
    if "--tap" not in args:
        for name in names:
            wait_reader(pbring, name, rec.pid)
    return rec


def test_record_100k_gating(pbring, ring, procs, tmp_path):
    n = 100_000
    name = ring()
    out = tmp_path / "rec.mcap"
    assert pbring("create", name, "--slots", 4096).rc == 0
    t0 = time.time_ns()
    rec = start_recorder(pbring, procs, [name], out, "--count", n)
    p = pbring("produce", name, "--count", n, "--size", 16)
    assert p.rc == 0, p
    assert rec.wait() == 0, rec
    t1 = time.time_ns()
    assert f"{name} {n} messages (lost 0)" in record_summary(rec.err)
    msgs, summary = read_mcap(out)
    assert len(msgs) == n
    assert summary.statistics.message_count == n
    assert len(summary.chunk_indexes) >= 2
    assert all(ci.compression == "zstd" for ci in summary.chunk_indexes)
    assert {(t, s) for t, s, _, _ in msgs} == {(name, DEMO_TYPE)}
    assert [m.sequence for _, _, m, _ in msgs] == list(range(n))
    assert [d.seq for _, _, _, d in msgs] == list(range(n))
    assert all(len(d.blob) == 16 for _, _, _, d in msgs)
    times = [m.log_time for _, _, m, _ in msgs]
    assert times == sorted(times)
    assert t0 <= times[0] and times[-1] <= t1
    assert all(m.publish_time == m.log_time for _, _, m, _ in msgs)
    assert stream_count(out) == n


def test_record_two_rings(pbring, ring, procs, tmp_path):
    n = 3000
    a, b = ring("a"), ring("b")
    out = tmp_path / "two.mcap"
    for name in (a, b):
        assert pbring("create", name, "--slots", 1024).rc == 0
    rec = start_recorder(pbring, procs, [a, b], out, "--count", 2 * n)
    pa = procs("produce", a, "--count", n, tag="pa")
    pb = procs("produce", b, "--count", n, "--size", 8, tag="pb")
    assert pa.wait() == 0, pa
    assert pb.wait() == 0, pb
    assert rec.wait() == 0, rec
    line = record_summary(rec.err)
    assert f"{a} {n} messages (lost 0), {b} {n} messages (lost 0)" in line
    msgs, summary = read_mcap(out)
    assert len(summary.channels) == 2
    per = {}
    for topic, schema, m, d in msgs:
        assert schema == DEMO_TYPE
        per.setdefault(topic, []).append((m.sequence, d.seq))
    assert sorted(per) == sorted([a, b])
    for topic, got in per.items():
        assert got == [(i, i) for i in range(n)], topic
    assert summary.statistics.channel_message_counts == {1: n, 2: n}


def test_record_tap_beside_gating_consumer(pbring, ring, procs, tmp_path):
    n = 300
    name = ring()
    out = tmp_path / "tap.mcap"
    assert pbring("create", name, "--slots", 512).rc == 0
    g = procs("consume", name, "--quiet", "--count", n, "--timeout", 10)
    wait_reader(pbring, name, g.pid)
    rec = start_recorder(pbring, procs, [name], out, "--tap", "--count", n,
                         "--duration", 20)
    time.sleep(0.5)  # the tap attaches, reads from the oldest message on
    st = stat_json(pbring, name)  # a tap is not a participant
    assert [p["pid"] for p in st["participants"]] == [g.pid], st
    p = pbring("produce", name, "--count", n, "--size", 16)
    assert p.rc == 0, p
    assert g.wait() == 0, g
    assert rec.wait() == 0, rec
    assert f"{name} {n} messages (lost 0)" in record_summary(rec.err)
    msgs, _ = read_mcap(out)
    assert [d.seq for _, _, _, d in msgs] == list(range(n))


def test_record_max_size_splits(pbring, ring, procs, tmp_path):
    n, max_size = 30_000, 65536
    name = ring()
    out = tmp_path / "split.mcap"
    assert pbring("create", name, "--slots", 4096).rc == 0
    rec = start_recorder(pbring, procs, [name], out, "--count", n,
                         "--max-size", max_size)
    p = pbring("produce", name, "--count", n, "--size", 32)
    assert p.rc == 0, p
    assert rec.wait() == 0, rec
    files = sorted(tmp_path.glob("split-*.mcap"))
    assert len(files) >= 2, files
    assert [f.name for f in files] == [
        f"split-{i:04d}.mcap" for i in range(1, len(files) + 1)]
    assert not out.exists()
    seqs = []
    for f in files:
        assert f.stat().st_size <= max_size, f
        msgs, summary = read_mcap(f)
        assert summary.statistics.message_count == len(msgs)
        seqs += [m.sequence for _, _, m, _ in msgs]
    assert seqs == list(range(n))
    assert f"in {len(files)} files" in record_summary(rec.err)


@pytest.mark.parametrize("sig,status", [(signal.SIGINT, 130),
                                        (signal.SIGTERM, 143)])
def test_record_signal_writes_valid_file(pbring, ring, procs, tmp_path, sig,
                                         status):
    n = 5000
    name = ring()
    out = tmp_path / "sig.mcap"
    assert pbring("create", name, "--slots", 1024).rc == 0
    rec = start_recorder(pbring, procs, [name], out)
    p = pbring("produce", name, "--count", n)
    assert p.rc == 0, p
    time.sleep(1.0)  # the recorder takes the last messages
    rec.p.send_signal(sig)
    assert rec.wait() == status, rec
    assert f"{name} {n} messages (lost 0)" in record_summary(rec.err)
    assert rec.err.splitlines()[-1].endswith("interrupted"), rec.err
    msgs, summary = read_mcap(out)
    assert [m.sequence for _, _, m, _ in msgs] == list(range(n))
    assert summary.statistics.message_count == n


@pytest.fixture
def recorded(pbring, ring, procs, tmp_path):
    """A file of 20 000 messages on one ring: (path, ring name, n)."""
    n = 20_000
    name = ring()
    out = tmp_path / "info.mcap"
    assert pbring("create", name, "--slots", 4096).rc == 0
    rec = start_recorder(pbring, procs, [name], out, "--count", n)
    assert pbring("produce", name, "--count", n, "--size", 64).rc == 0
    assert rec.wait() == 0, rec
    return out, name, n


def test_info_good_file(pbring, recorded):
    out, name, n = recorded
    r = pbring("info", out)
    assert r.rc == 0, r
    assert r.err == ""
    lines = r.out.splitlines()
    assert f"channel 1: topic {name}, schema {DEMO_TYPE}, {n} messages" \
        in lines, r.out
    assert f"messages: {n}" in lines
    chunks = len(read_mcap(out)[1].chunk_indexes)
    assert f"chunks: {chunks} (zstd)" in lines
    assert any(l.startswith("time: ") and l.endswith(" s)") for l in lines)
    assert "summary" in lines[0]


def test_info_truncated_file(pbring, recorded, tmp_path):
    out, name, n = recorded
    cut = tmp_path / "cut.mcap"
    data = out.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    r = pbring("info", cut)
    assert r.rc == 1, r
    assert len(r.err_lines) == 1 and "truncated" in r.err, r
    got = int(next(l for l in r.out.splitlines()
                   if l.startswith("messages: ")).split()[1])
    assert 0 < got < n, r.out


@pytest.mark.parametrize("kind", ["png", "passwd", "empty", "missing"])
def test_info_foreign_and_missing(pbring, tmp_path, kind):
    path = tmp_path / f"{kind}.bin"
    if kind == "png":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    elif kind == "passwd":
        path = "/etc/passwd"
    elif kind == "empty":
        path.write_bytes(b"")
    r = pbring("info", path)
    assert r.rc == 1, r
    assert len(r.err_lines) == 1, r
    assert r.out == ""
    assert ("No such file" if kind == "missing" else "not an MCAP file") \
        in r.err


MAGIC = b"\x89MCAP0\r\n"


def record(op, body):
    return bytes([op]) + struct.pack("<Q", len(body)) + body


def chunk(inner, compression=b"", usize=None):
    """A Chunk record around @inner (claimed uncompressed size @usize)."""
    usize = len(inner) if usize is None else usize
    return record(0x06, struct.pack("<QQQI", 0, 0, usize, 0)
                  + struct.pack("<I", len(compression)) + compression
                  + struct.pack("<Q", len(inner)) + inner)


@pytest.mark.parametrize("kind", ["nested", "bomb", "record_past_end"])
def test_info_hostile(pbring, tmp_path, kind):
    """Files made to hurt a reader: chunks in chunks (unbounded recursion
    if followed), a few bytes claiming 2 GiB uncompressed, a record longer
    than the file: one line, exit 1, at once."""
    header = record(0x01, struct.pack("<I", 0) + struct.pack("<I", 0))
    if kind == "nested":
        body = b""
        for _ in range(50):
            body = chunk(body)
    elif kind == "bomb":
        body = chunk(b"\x28\xb5\x2f\xfd" + bytes(16), b"zstd", 1 << 31)
    else:
        body = record(0x05, bytes(30))[:-10]
    path = tmp_path / f"{kind}.mcap"
    path.write_bytes(MAGIC + header + body)
    r = pbring("info", path)
    assert r.rc == 1, r
    assert len(r.err_lines) == 1, r
    assert ("corrupt MCAP file" in r.err if kind != "record_past_end"
            else "truncated" in r.err), r.err


def test_record_write_error_keeps_complete_chunks(pbring, pbring_path, ring,
                                                  tmp_path):
    """A write error mid-recording (here the file size limit, as a full
    disk would): exit 1 with one error line, the file cut back to its last
    complete chunk and closed (DataEnd, footer), every message it says it
    holds readable by the official stream reader, and `info` content."""
    name = ring()
    out = tmp_path / "full.mcap"
    limit = 300_000
    assert pbring("create", name, "--slots", 4096).rc == 0

    def cap():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    rec = subprocess.Popen([pbring_path, "record", name, "-o", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True, preexec_fn=cap)
    try:
        wait_reader(pbring, name, rec.pid)
        p = pbring("produce", name, "--count", 200_000, "--size", 64)
        assert p.rc == 0, p
        err = rec.communicate(timeout=RUN_TIMEOUT)[1]
    finally:
        if rec.poll() is None:
            rec.kill()
    assert rec.returncode == 1, err
    errors = [x for x in err.splitlines() if x.startswith("pbring: ")]
    assert len(errors) == 1 and "messages not written" in errors[0], err
    held = int(re.search(r"^record: \S+ (\d+) messages", err, re.M).group(1))
    assert 0 < held < 200_000, err
    assert out.stat().st_size <= limit
    assert stream_count(out) == held
    r = pbring("info", out)
    assert r.rc == 0 and f"messages: {held}" in r.out, r


def test_record_errors(pbring, ring, tmp_path):
    name = ring()
    assert pbring("create", name).rc == 0
    for args in (["record"], ["record", name], ["record", "-o", "x.mcap"],
                 ["record", name, "-o", "x", "--max-size", "10"],
                 ["record", name, "-o", "x", "--count", "0"],
                 ["record", name, "-o", "x", "--duration", "soon"],
                 ["record", name, "-o", "x", "--bogus"],
                 ["info"], ["info", "a", "b"]):
        r = pbring(*args, cwd=tmp_path)
        assert r.rc == 2, (args, r)
        assert len(r.err_lines) == 1, (args, r)
    r = pbring("record", "clit-no-such-ring", "-o", tmp_path / "x.mcap")
    assert r.rc == 1 and len(r.err_lines) == 1, r
    r = pbring("record", name, "-o", tmp_path / "no" / "dir.mcap")
    assert r.rc == 1 and len(r.err_lines) == 1 and "cannot write" in r.err, r
    # a full disk: /dev/full takes the open, fails every write
    r = pbring("record", name, "-o", "/dev/full", "--duration", "0.1")
    assert r.rc == 1 and "No space left on device" in r.err, r
    untyped = ring("u")
    assert pbring("create", untyped, "--schema", "none").rc == 0
    r = pbring("record", untyped, "-o", tmp_path / "u.mcap")
    assert r.rc == 1 and len(r.err_lines) == 1 and "untyped" in r.err, r
    for args in (["record", "--help"], ["info", "--help"]):
        r = pbring(*args)
        assert r.rc == 0 and r.out.startswith("usage: pbring"), r


def test_record_throughput(pbring, ring, procs, tmp_path):
    """1 000 000 messages of about 64 bytes, recorded by a gating reader:
    the rate (not asserted) is printed with -s."""
    n = 1_000_000
    name = ring()
    out = tmp_path / "tp.mcap"
    assert pbring("create", name, "--slots", 8192).rc == 0
    rec = start_recorder(pbring, procs, [name], out, "--count", n)
    t0 = time.monotonic()
    # id "NNNNN-0", seq, sent_ns and a 40-byte blob: 64 bytes a message
    p = pbring("produce", name, "--count", n, "--size", 40,
               timeout=RUN_TIMEOUT * 3)
    assert p.rc == 0, p
    assert rec.wait(timeout=RUN_TIMEOUT * 3) == 0, rec
    dt = time.monotonic() - t0
    size = os.path.getsize(out)
    print(f"\nrecord throughput: {n} messages of ~64 B in {dt:.2f} s = "
          f"{n / dt:,.0f} msg/s; file {size / 1e6:.1f} MB "
          f"({size / n:.1f} B/message)")
    assert f"{name} {n} messages (lost 0)" in record_summary(rec.err)
