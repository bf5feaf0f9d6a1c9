# SPDX-License-Identifier: MIT
"""`pbring replay` and `pbring cat`: 1 000 000 DeviceEvents produced at
full speed, recorded by a gating recorder (none lost, the official Python
reader decodes them all, in order, as produced), replayed into a ring
that replay creates, where `consume --json` gives what `cat --json` and
the original `consume --json` give; a typed (non-demo) ring likewise;
--map, --loop, --rate timing, several files merged, Ctrl-C, and every
bad input with its exit status and one line. Run by tests/cli/
run_record.sh (ctest cli_record), in the venv that has the MCAP readers."""
import json
import os
import re
import signal
import struct
import time

import pytest

from cliutil import RUN_TIMEOUT, consume_summary, stat_json, wait_reader

import mcap.reader as mcap_reader  # noqa: E402
import mcap.writer as mcap_writer  # noqa: E402
import mcap_protobuf.decoder as mcap_protobuf  # noqa: E402

DEMO_TYPE = "pbring.demo.v1.DeviceEvent"
HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
READING = os.path.join(PROTO_DIR, "acme/telemetry/v1/reading.proto")
READING_TYPE = "acme.telemetry.v1.Reading"
# The acceptance run: PBRING_REPLAY_N=1000000 (the default) or fewer.
BIG_N = int(os.environ.get("PBRING_REPLAY_N", "1000000"))


def wait_ring(name, proc, timeout=10.0):
    """Wait until ring @name exists (replay made it), or @proc ended."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(f"/dev/shm/pbring.{name}"):
        assert proc.p.poll() is None, proc
        assert time.monotonic() < deadline, f"no ring {name}"
        time.sleep(0.02)


def summary_line(err, cmd):
    lines = [x for x in err.splitlines() if x.startswith(cmd + ": ")]
    assert len(lines) == 1, err
    return lines[0]


def errors(err):
    return [x for x in err.splitlines() if x.startswith("pbring")]


def record(pbring, procs, names, out, n, *produce_args, want=False):
    """Record @n messages produced here into ring @names[0] into @out
    with a gating recorder: the recorder, and with @want also what a
    second gating consumer printed of them (consume --json lines)."""
    orig = None
    if want:
        orig = procs("consume", names[0], "--json", "--count", n,
                     "--timeout", 60, tag="orig")
        wait_reader(pbring, names[0], orig.pid)
    rec = procs("record", *names, "-o", out, "--count", n, tag="rec")
    for name in names:
        wait_reader(pbring, name, rec.pid)
    p = pbring("produce", names[0], "--count", n, *produce_args,
               timeout=RUN_TIMEOUT * 3)
    assert p.rc == 0, p
    assert rec.wait(timeout=RUN_TIMEOUT * 3) == 0, rec
    if not want:
        return rec
    assert orig.wait(timeout=RUN_TIMEOUT * 3) == 0, orig
    lines = orig.out_path.read_text().splitlines()
    assert len(lines) == n
    return rec, lines


def replay_into_new(pbring, procs, files, new, n, *args, consume=("--json",)):
    """Replay @files into ring @new (made by replay, which waits for a
    gating reader), read by a consumer: (replay, consumer)."""
    rp = procs("replay", *files, *args, tag="replay")
    wait_ring(new, rp)
    c = procs("consume", new, *consume, "--count", n, "--timeout", 30,
              tag="replayed")
    assert rp.wait(timeout=RUN_TIMEOUT * 3) == 0, rp
    assert c.wait(timeout=RUN_TIMEOUT * 3) == 0, c
    return rp, c


def test_replay_acceptance(pbring, ring, procs, tmp_path):
    """The issue's acceptance: BIG_N DeviceEvents at full speed, recorded
    with nothing lost; the Python reader decodes them all in order equal
    to what was produced (as a second gating consumer printed them);
    replayed into a new ring, consume --json == cat --json == the
    original consume --json."""
    n = BIG_N
    name, new = ring(), ring("new")
    out = tmp_path / "big.mcap"
    assert pbring("create", name, "--slots", 8192).rc == 0
    rec, want = record(pbring, procs, [name], out, n, "--size", 16,
                       want=True)
    assert f"{name} {n} messages (lost 0)" in summary_line(rec.err, "record")

    with open(out, "rb") as f:
        r = mcap_reader.make_reader(
            f, decoder_factories=[mcap_protobuf.DecoderFactory()])
        k = 0
        for sch, ch, m, d in r.iter_decoded_messages(log_time_order=False):
            assert (sch.name, ch.topic, m.sequence, d.seq) == \
                (DEMO_TYPE, name, k, k)
            j = json.loads(want[k])
            assert (d.id, str(d.seq), d.status, len(d.blob)) == \
                (j["id"], j.get("seq", "0"), j.get("status", 0), 16)
            k += 1
    assert k == n

    cat = pbring("cat", "--json", out, timeout=RUN_TIMEOUT * 3)
    assert cat.rc == 0 and cat.err == "", cat
    assert cat.out.splitlines() == want

    rp, c = replay_into_new(pbring, procs, [out], new, n, "--map",
                            f"{name}={new}")
    assert c.out_path.read_text().splitlines() == want
    s = consume_summary(c.err)
    assert (s["received"], s["gaps"], s["duplicates"]) == (n, 0, 0), c.err
    line = summary_line(rp.err, "replay")
    assert f"{n} messages into 1 ring ({new} {n} (created))" in line, line
    st = stat_json(pbring, new)
    orig_st = stat_json(pbring, name)
    assert st["schema_hash"] == orig_st["schema_hash"], (st, orig_st)
    assert st["msg_type"] == DEMO_TYPE


@pytest.fixture
def small(pbring, ring, procs, tmp_path):
    """A recording of 2000 demo messages: (path, ring name, n, the
    original consume --json lines)."""
    n = 2000
    name = ring()
    out = tmp_path / "small.mcap"
    assert pbring("create", name, "--slots", 4096).rc == 0
    record(pbring, procs, [name], out, n, "--size", 8)
    c = pbring("consume", name, "--json", "--count", n, "--timeout", 5)
    assert c.rc == 0, c
    return out, name, n, c.out.splitlines()


def test_cat_text(pbring, small):
    out, name, n, _ = small
    r = pbring("cat", out)
    assert r.rc == 0 and r.err == "", r
    lines = r.out.splitlines()
    assert len(lines) == n
    pat = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (\S+) "
                     r"seq (\d+) (\d+) B$")
    got = [pat.match(x) for x in lines]
    assert all(got), lines[:3]
    assert [(m.group(1), int(m.group(2))) for m in got] == \
        [(name, i) for i in range(n)]
    assert sorted(lines) == lines  # log time order


def test_replay_loop_gating(pbring, ring, procs, small):
    out, name, n, want = small
    dst = ring("dst")
    assert pbring("create", dst, "--slots", 256).rc == 0
    c = procs("consume", dst, "--json", "--count", 2 * n, "--timeout", 30)
    wait_reader(pbring, dst, c.pid)
    r = pbring("replay", out, "--map", f"{name}={dst}", "--loop", 2)
    assert r.rc == 0, r
    # the demo checks see each producer's seq start again: duplicates
    assert c.wait() == 1, c
    assert f"0 gaps and {n} duplicates" in c.err, c
    assert c.out.splitlines() == want + want
    assert f"{2 * n} messages into 1 ring" in summary_line(r.err, "replay")


def test_replay_rate_timing(pbring, ring, procs, tmp_path):
    """100 messages recorded at 1 kHz (about 99 ms from first to last, as
    the file says): replayed in about that time, in half of it at --rate
    2, at once with --fast; 30 ms of slack for a busy machine."""
    n = 100
    name = ring()
    out = tmp_path / "paced.mcap"
    assert pbring("create", name).rc == 0
    record(pbring, procs, [name], out, n, "--rate", 1000)
    with open(out, "rb") as f:
        times = [m.log_time for _, _, m in
                 mcap_reader.make_reader(f).iter_messages()]
    span = (times[-1] - times[0]) / 1e9
    assert 0.095 <= span <= 0.2, span
    for args, want in ((["--rate", "2"], span / 2), ([], span),
                       (["--fast"], 0.0)):
        dst = ring("dst")
        r = pbring("replay", out, "--map", f"{name}={dst}", "--no-wait",
                   *args)
        assert r.rc == 0, r
        secs = float(re.search(r" in ([\d.]+) s$",
                               summary_line(r.err, "replay")).group(1))
        assert want * 0.97 <= secs <= want + 0.030, (args, secs, span)


def test_replay_typed_ring(pbring, ring, procs, tmp_path):
    """A user's type (not the demo): created by replay with the same
    schema hash; consume --json == cat --json == the original's."""
    name, new = ring(), ring("new")
    out = tmp_path / "typed.mcap"
    assert pbring("create", name, "--schema", READING, "--type",
                  READING_TYPE, "-I", PROTO_DIR).rc == 0
    src = tmp_path / "in.jsonl"
    msgs = [{"deviceId": f"dev-{i}", "fInt32": i, "tags": ["a", "b"],
             "raw": "AAEC"} for i in range(50)]
    src.write_text("".join(json.dumps(m) + "\n" for m in msgs))
    rec = procs("record", name, "-o", out, "--count", 50, tag="rec")
    wait_reader(pbring, name, rec.pid)
    assert pbring("produce", name, "--from-json", src).rc == 0
    assert rec.wait() == 0, rec
    orig = pbring("consume", name, "--json", "--count", 50, "--timeout", 5)
    assert orig.rc == 0, orig
    cat = pbring("cat", "--json", out)
    assert cat.rc == 0 and cat.out == orig.out, cat
    rp, c = replay_into_new(pbring, procs, [out], new, 50, "--map",
                            f"{name}={new}")
    assert c.out == orig.out
    a = stat_json(pbring, name)
    b = stat_json(pbring, new)
    assert (a["msg_type"], a["schema_hash"]) == (b["msg_type"],
                                                 b["schema_hash"])


def test_several_files_merged(pbring, ring, procs, tmp_path):
    """record --max-size's files, given in any order: cat and replay merge
    them by log time, back to the ring's order."""
    n = 20_000
    name, new = ring(), ring("new")
    out = tmp_path / "split.mcap"
    assert pbring("create", name, "--slots", 4096).rc == 0
    orig = procs("consume", name, "--json", "--count", n, "--timeout", 60,
                 tag="orig")
    wait_reader(pbring, name, orig.pid)
    rec = procs("record", name, "-o", out, "--count", n, "--max-size",
                65536, tag="rec")
    wait_reader(pbring, name, rec.pid)
    assert pbring("produce", name, "--count", n, "--size", 32).rc == 0
    assert rec.wait() == 0, rec
    assert orig.wait() == 0, orig
    files = sorted(tmp_path.glob("split-*.mcap"))
    assert len(files) >= 3
    mixed = files[::-1]
    cat = pbring("cat", "--json", *mixed)
    assert cat.rc == 0 and cat.out == orig.out, cat.err
    rp, c = replay_into_new(pbring, procs, mixed, new, n, "--map",
                            f"{name}={new}", "--fast")
    assert c.out == orig.out


def test_two_rings_topic_filter(pbring, ring, procs, tmp_path):
    """A recording of two rings: replay recreates both (by topic); cat
    --topic prints one."""
    a, b = ring("a"), ring("b")
    out = tmp_path / "two.mcap"
    for x in (a, b):
        assert pbring("create", x).rc == 0
    rec = procs("record", a, b, "-o", out, "--count", 600, tag="rec")
    wait_reader(pbring, a, rec.pid)
    wait_reader(pbring, b, rec.pid)
    assert pbring("produce", a, "--count", 300).rc == 0
    assert pbring("produce", b, "--count", 300, "--size", 4).rc == 0
    assert rec.wait() == 0, rec
    want = {x: pbring("consume", x, "--json", "--count", 300,
                      "--timeout", 5).out for x in (a, b)}
    for x in (a, b):
        r = pbring("cat", "--json", "--topic", x, out)
        assert r.rc == 0 and r.out == want[x], r
    r = pbring("cat", out)
    assert r.rc == 0 and len(r.out.splitlines()) == 600
    assert pbring("rm", a, b).rc == 0
    rp = procs("replay", out, "--fast", tag="replay")
    for x in (a, b):
        wait_ring(x, rp)
    cs = {x: procs("consume", x, "--json", "--count", 300, "--timeout", 30,
                   tag=f"c-{x}") for x in (a, b)}
    assert rp.wait() == 0, rp
    for x in (a, b):
        assert cs[x].wait() == 0, cs[x]
        assert cs[x].out == want[x]
    assert "600 messages into 2 rings" in summary_line(rp.err, "replay")


@pytest.mark.parametrize("sig,status", [(signal.SIGINT, 130),
                                        (signal.SIGTERM, 143)])
def test_replay_signal(pbring, ring, procs, small, sig, status):
    """--loop 0 plays until stopped: summary, one 'interrupted', 130/143."""
    out, name, n, _ = small
    dst = ring("dst")
    rp = procs("replay", out, "--map", f"{name}={dst}", "--loop", 0,
               "--no-wait", tag="replay")
    wait_ring(dst, rp)
    time.sleep(0.5)
    rp.p.send_signal(sig)
    assert rp.wait() == status, rp
    assert "messages into 1 ring" in summary_line(rp.err, "replay")
    assert rp.err.splitlines()[-1].endswith("interrupted"), rp.err


# --- bad input --------------------------------------------------------------

def test_schema_clash_refused(pbring, ring, small):
    """A ring of another type, and an untyped one: refused in one line
    before anything is sent."""
    out, name, n, _ = small
    other, raw = ring("o"), ring("u")
    assert pbring("create", other, "--schema", READING, "--type",
                  READING_TYPE, "-I", PROTO_DIR).rc == 0
    assert pbring("create", raw, "--schema", "none").rc == 0
    for dst, what in ((other, "schema hash"), (raw, "untyped")):
        r = pbring("replay", out, "--map", f"{name}={dst}", "--no-wait")
        assert r.rc == 1, r
        assert len(r.err_lines) == 1 and what in r.err, r
        assert stat_json(pbring, dst)["claimed"] == 0


def test_truncated_file(pbring, ring, procs, small, tmp_path):
    """Cut mid-file: cat and replay give the messages of its complete
    chunks, in order, then say so; exit 1."""
    out, name, n, want = small
    # several chunks of about 1 MiB
    big = tmp_path / "multi.mcap"
    src = ring("src")
    assert pbring("create", src, "--slots", 4096).rc == 0
    _, want = record(pbring, procs, [src], big, 30_000, "--size", 64,
                     want=True)
    data = big.read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[:len(data) * 2 // 3])
    r = pbring("cat", "--json", cut)
    assert r.rc == 1, r
    assert len(r.err_lines) == 1 and "truncated" in r.err, r
    got = r.out.splitlines()
    assert 0 < len(got) < len(want) and got == want[:len(got)]
    assert f"printed the {len(got)} messages" in r.err
    dst = ring("dst")
    rp = procs("replay", cut, "--map", f"{src}={dst}", tag="replay")
    wait_ring(dst, rp)
    c = procs("consume", dst, "--json", "--timeout", 2, tag="c")
    assert rp.wait() == 1, rp
    assert c.wait() == 0, c
    assert c.out.splitlines() == got
    assert "truncated" in errors(rp.err)[-1]
    assert f"{len(got)} messages into 1 ring" in summary_line(rp.err,
                                                              "replay")


def json_channel_file(path):
    """An MCAP file (the official writer's) with a JSON channel."""
    with open(path, "wb") as f:
        w = mcap_writer.Writer(f)
        w.start()
        sid = w.register_schema(name="x", encoding="jsonschema", data=b"{}")
        cid = w.register_channel(topic="js", message_encoding="json",
                                 schema_id=sid)
        w.add_message(channel_id=cid, log_time=1, publish_time=1,
                      data=b"{}", sequence=0)
        w.finish()


@pytest.mark.parametrize("cmd", ["replay", "cat"])
@pytest.mark.parametrize("kind", ["png", "passwd", "empty", "missing",
                                  "json_channel", "directory"])
def test_bad_files(pbring, tmp_path, cmd, kind):
    path = tmp_path / f"{kind}.mcap"
    if kind == "png":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    elif kind == "passwd":
        path = "/etc/passwd"
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "json_channel":
        json_channel_file(path)
    elif kind == "directory":
        path = tmp_path
    r = pbring(cmd, path, "--no-wait") if cmd == "replay" else \
        pbring(cmd, path)
    assert r.rc == 1, r
    assert len(r.err_lines) == 1, r
    assert r.out == ""
    want = {"missing": "No such file", "json_channel": "not protobuf",
            "directory": "Is a directory"}.get(kind, "not an MCAP file")
    assert want in r.err, r


def test_corrupt_chunk(pbring, small, tmp_path):
    """A chunk whose zstd bytes are damaged: nothing from it, one line."""
    out, name, n, _ = small
    data = bytearray(out.read_bytes())
    at = data.index(b"zstd") + 4 + 8 + 40  # inside the compressed bytes
    for i in range(at, at + 64):
        data[i] ^= 0x5A
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(bytes(data))
    r = pbring("cat", bad)
    assert r.rc == 1, r
    assert len(r.err_lines) == 1 and "corrupt" in r.err, r


def test_unknown_map_topic(pbring, ring, small):
    out, name, n, _ = small
    r = pbring("replay", out, "--map", f"nosuch={ring('x')}", "--no-wait")
    assert r.rc == 1 and len(r.err_lines) == 1, r
    assert "no channel has topic 'nosuch'" in r.err
    r = pbring("cat", out, "--topic", "nosuch")
    assert r.rc == 1 and len(r.err_lines) == 1 and r.out == "", r


def test_usage_errors(pbring, small):
    out = small[0]
    for args in (["replay"], ["cat"], ["replay", out, "--rate", "0"],
                 ["replay", out, "--rate", "x"],
                 ["replay", out, "--rate", "2", "--fast"],
                 ["replay", out, "--map", "noequals"],
                 ["replay", out, "--map", "t=bad/name"],
                 ["replay", out, "--map", "t=a", "--map", "t=b"],
                 ["replay", out, "--loop", "-1"],
                 ["replay", out, "--bogus"], ["cat", out, "--bogus"],
                 ["cat", out, "--topic"]):
        r = pbring(*args)
        assert r.rc == 2, (args, r)
        assert len(r.err_lines) == 1, (args, r)
    for args in (["replay", "--help"], ["cat", "--help"]):
        r = pbring(*args)
        assert r.rc == 0 and r.out.startswith("usage: pbring"), r


@pytest.mark.parametrize("compression", ["NONE", "ZSTD", "LZ4"])
def test_official_writer_files(pbring, small, tmp_path, compression):
    """A recording rewritten by the official Python writer (its CRCs,
    repeated schemas and channels, indexes): cat prints the same; an LZ4
    chunk (not supported) is one line, exit 1."""
    out, name, n, want = small
    copy = tmp_path / f"{compression}.mcap"
    with open(out, "rb") as f, open(copy, "wb") as g:
        r = mcap_reader.make_reader(f)
        w = mcap_writer.Writer(
            g, chunk_size=16384,
            compression=getattr(mcap_writer.CompressionType, compression))
        w.start()
        ids = {}
        for sch, ch, m in r.iter_messages(log_time_order=False):
            if ch.id not in ids:
                sid = w.register_schema(name=sch.name, encoding=sch.encoding,
                                        data=sch.data)
                ids[ch.id] = w.register_channel(
                    topic=ch.topic, message_encoding=ch.message_encoding,
                    schema_id=sid)
            w.add_message(channel_id=ids[ch.id], log_time=m.log_time,
                          publish_time=m.publish_time, data=m.data,
                          sequence=m.sequence)
        w.finish()
    r = pbring("cat", "--json", copy)
    if compression == "LZ4":
        assert r.rc == 1 and len(r.err_lines) == 1, r
        assert "not supported" in r.err
    else:
        assert r.rc == 0 and r.err == "", r
        assert r.out.splitlines() == want


MAGIC = b"\x89MCAP0\r\n"


def rec(op, body):
    return bytes([op]) + struct.pack("<Q", len(body)) + body


def chunk(inner, compression=b"", usize=None):
    usize = len(inner) if usize is None else usize
    return rec(0x06, struct.pack("<QQQI", 0, 0, usize, 0)
               + struct.pack("<I", len(compression)) + compression
               + struct.pack("<Q", len(inner)) + inner)


@pytest.mark.parametrize("cmd", ["replay", "cat"])
@pytest.mark.parametrize("kind", ["nested", "bomb", "record_past_end",
                                  "unknown_channel", "short_message"])
def test_hostile_files(pbring, tmp_path, cmd, kind):
    """Files made to hurt a reader: chunks in chunks, a few bytes claiming
    2 GiB, a record longer than the file, a message on a channel never
    defined, a message record too short for its fields: one line, exit 1,
    nothing sent or printed."""
    header = rec(0x01, struct.pack("<I", 0) + struct.pack("<I", 0))
    msg = struct.pack("<HIQQ", 7, 0, 1, 1) + b"\x08\x01"
    if kind == "nested":
        body = b""
        for _ in range(50):
            body = chunk(body)
    elif kind == "bomb":
        body = chunk(b"\x28\xb5\x2f\xfd" + bytes(16), b"zstd", 1 << 31)
    elif kind == "record_past_end":
        body = rec(0x05, bytes(30))[:-10]
    elif kind == "unknown_channel":
        body = chunk(rec(0x05, msg))
    else:
        body = chunk(rec(0x05, msg[:10]))
    path = tmp_path / f"{kind}.mcap"
    path.write_bytes(MAGIC + header + body)
    r = pbring(cmd, path, "--no-wait") if cmd == "replay" else \
        pbring(cmd, path)
    assert r.rc == 1, r
    assert len(r.err_lines) == 1 and r.out == "", r
    assert ("truncated" if kind == "record_past_end" else
            "corrupt") in r.err, r


def test_cat_undecodable_message(pbring, small, tmp_path):
    """A payload that is not a DeviceEvent: cat --json names it and
    prints the others, exit 1; the text form prints every message."""
    out, name, n, want = small
    copy = tmp_path / "garbage.mcap"
    with open(out, "rb") as f, open(copy, "wb") as g:
        r = mcap_reader.make_reader(f)
        w = mcap_writer.Writer(g)
        w.start()
        cid = None
        for k, (sch, ch, m) in enumerate(r.iter_messages(
                log_time_order=False)):
            if cid is None:
                sid = w.register_schema(name=sch.name, encoding=sch.encoding,
                                        data=sch.data)
                cid = w.register_channel(topic=ch.topic,
                                         message_encoding="protobuf",
                                         schema_id=sid)
            w.add_message(channel_id=cid, log_time=m.log_time,
                          publish_time=m.publish_time,
                          data=b"\xff\xff\xff" if k == 3 else m.data,
                          sequence=m.sequence)
        w.finish()
    r = pbring("cat", "--json", copy)
    assert r.rc == 1, r
    assert r.out.splitlines() == want[:3] + want[4:]
    assert r.err_lines == [
        f"pbring: {copy}: topic {name}, sequence 3: payload is not a "
        f"valid {DEMO_TYPE}",
        f"pbring: {copy}: 1 messages do not decode"], r
    r = pbring("cat", copy)
    assert r.rc == 0 and len(r.out.splitlines()) == n, r


def test_clash_creates_nothing(pbring, ring, procs, tmp_path):
    """Two topics: one ring missing, the other clashing: refused before
    the missing one is made."""
    a, b = ring("a"), ring("b")
    out = tmp_path / "two.mcap"
    for x in (a, b):
        assert pbring("create", x).rc == 0
    rec = procs("record", a, b, "-o", out, "--count", 20, tag="rec")
    wait_reader(pbring, a, rec.pid)
    wait_reader(pbring, b, rec.pid)
    assert pbring("produce", a, "--count", 10).rc == 0
    assert pbring("produce", b, "--count", 10).rc == 0
    assert rec.wait() == 0, rec
    assert pbring("rm", a, b).rc == 0
    assert pbring("create", b, "--schema", "none").rc == 0
    r = pbring("replay", out, "--no-wait")
    assert r.rc == 1 and len(r.err_lines) == 1 and "untyped" in r.err, r
    assert not os.path.exists(f"/dev/shm/pbring.{a}")
