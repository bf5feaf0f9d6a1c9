# SPDX-License-Identifier: MIT
"""`pbring produce` and `pbring consume`: round trips checked message by
message in canonical proto3 JSON, pacing, waiting, timeouts, lossy and
gating readers, type checks, corruption, and every bad input."""
import base64
import json
import os
import re
import signal
import struct
import subprocess

import pytest

from cliutil import (DEMO_TYPE, SB_MAJOR, SB_MSG_TYPE, SB_MSG_TYPE_LEN,
                     SB_SCHEMA_HASH, SB_SCHEMA_LEN, SB_SLOT_SIZE,
                     SB_SLOTS_OFF, SLOT_HDR, Shm, consume_summary, shm_path,
                     stat_json, wait_reader, without_waiting)

DIGITS = re.compile(r"[1-9][0-9]*")
# The summary's end: durations with their own units, and what they measure.
DURATION = r"(?:\d+ ns|\d+\.\d (?:us|ms|s))"
LATENCY = re.compile(
    rf"rate [1-9]\d* msg/s, latency p50 ({DURATION}) p99 ({DURATION}) "
    rf"max ({DURATION}) \(commit to receive, including time queued in the "
    r"ring\)$")
KEY_ORDER = ["id", "status", "seq", "sentNs", "blob"]  # field number order


def blob_b64(size):
    return base64.b64encode(bytes((i * 131 + 7) & 0xFF
                                  for i in range(size))).decode()


def check_json_lines(text, size, ids=None):
    """Parse consumer --json output; check each object's canonical form.
    Returns {id: [seq, ...]} in arrival order."""
    want_blob = blob_b64(size) if size else None
    per_id = {}
    last_sent = {}
    for n, line in enumerate(text.splitlines()):
        obj = json.loads(line)
        # compact, fields in number order, nothing unknown
        assert line == json.dumps(obj, separators=(",", ":")), line
        keys = list(obj)
        assert keys == [k for k in KEY_ORDER if k in obj], line
        ident = obj["id"]
        assert isinstance(ident, str) and ident, line
        # uint64 as JSON strings; proto3 defaults (0, empty) left out
        if "seq" in obj:
            assert isinstance(obj["seq"], str) and DIGITS.fullmatch(obj["seq"]), line
            seq = int(obj["seq"])
        else:
            seq = 0
        assert isinstance(obj["sentNs"], str) and DIGITS.fullmatch(obj["sentNs"]), line
        sent = int(obj["sentNs"])
        # int32 status as a JSON number; the demo producer sends seq % 3
        if "status" in obj:
            assert type(obj["status"]) is int and obj["status"] != 0, line
        assert obj.get("status", 0) == seq % 3, line
        if want_blob is None:
            assert "blob" not in obj, line
        else:
            assert obj["blob"] == want_blob, line
        # CLOCK_MONOTONIC per producer: never goes back
        assert sent >= last_sent.get(ident, 0), line
        last_sent[ident] = sent
        per_id.setdefault(ident, []).append(seq)
    if ids is not None:
        assert sorted(per_id) == sorted(ids)
    return per_id


def produce_summary_re(n, k=1):
    s = "" if k == 1 else "s"
    return re.compile(rf"produce: {n} messages from {k} producer{s} in "
                      rf"(\d+\.\d{{3}}) s, \d+ msg/s")


def test_round_trip_json(pbring, ring, procs):
    """Consumer first (in the background), producer second; 20000 messages
    with a 37-byte blob (not a multiple of 3: base64 padding)."""
    n, size = 20000, 37
    name = ring()
    assert pbring("create", name).rc == 0
    c = procs("consume", name, "--count", n, "--json")
    p = procs("produce", name, "--count", n, "--size", size)
    assert p.wait() == 0, p
    assert p.out == ""
    err = without_waiting(p.err)
    assert produce_summary_re(n).fullmatch(err.strip()), p.err
    assert c.wait() == 0, c
    per_id = check_json_lines(c.out, size, ids=[f"{p.pid}-0"])
    assert per_id[f"{p.pid}-0"] == list(range(n))
    summary = c.err.splitlines()
    assert len(summary) == 1, c.err
    assert summary[0].startswith(f"consume (gating): received {n}, lost 0, missed 0, "
                                 "gaps 0, duplicates 0, crc errors 0, "
                                 "content errors 0, abandoned 0, rate "), c.err
    assert LATENCY.search(summary[0]), c.err


def test_round_trip_id_is_producer_pid(pbring, ring, procs):
    """DeviceEvent.id is "<producer pid>-<k>"; without --size no blob."""
    name = ring()
    assert pbring("create", name).rc == 0
    c = procs("consume", name, "--count", 10, "--json")
    p = procs("produce", name, "--count", 10)
    assert p.wait() == 0, p
    assert c.wait() == 0, c
    per_id = check_json_lines(c.out, 0, ids=[f"{p.pid}-0"])
    assert per_id[f"{p.pid}-0"] == list(range(10))
    first = json.loads(c.out.splitlines()[0])
    assert list(first) == ["id", "sentNs"]  # seq 0 and status 0 left out


def test_text_output(pbring, ring, procs):
    name = ring()
    assert pbring("create", name).rc == 0
    c = procs("consume", name, "--count", 3)
    p = procs("produce", name, "--count", 3, "--size", 5)
    assert p.wait() == 0 and c.wait() == 0, (p, c)
    assert c.out.splitlines() == [
        f"seq {i} id {p.pid}-0 status {i % 3} blob 5 B "
        f"(ring seq {i}, producer 0)" for i in range(3)]


def test_three_producers(pbring, ring, procs):
    n, k = 3000, 3
    name = ring()
    assert pbring("create", name, "--slots", "64").rc == 0
    c = procs("consume", name, "--count", n * k, "--json")
    p = procs("produce", name, "--count", n, "--producers", k)
    assert p.wait() == 0, p
    assert produce_summary_re(n * k, k).fullmatch(
        without_waiting(p.err).strip()), p.err
    assert c.wait() == 0, c
    per_id = check_json_lines(c.out, 0,
                              ids=[f"{p.pid}-{i}" for i in range(k)])
    for ident, seqs in per_id.items():
        assert seqs == list(range(n)), ident
    s = consume_summary(c.err)
    assert (s["received"], s["lost"], s["gaps"], s["duplicates"]) == (n * k, 0, 0, 0)


def test_rate(pbring, ring, procs):
    """--rate 2000 --count 200: the last message is due at 0.0995 s."""
    name = ring()
    assert pbring("create", name).rc == 0
    c = procs("consume", name, "--count", 200, "--quiet")
    wait_reader(pbring, name, c.pid)
    p = pbring("produce", name, "--rate", 2000, "--count", 200)
    assert p.rc == 0, p
    secs = float(produce_summary_re(200).fullmatch(p.err.strip()).group(1))
    assert 0.09 <= secs <= 1.0, p.err
    assert 0.09 <= p.elapsed <= 3.0, p
    assert c.wait() == 0, c
    assert consume_summary(c.err)["received"] == 200


def test_rate_is_total_over_producers(pbring, ring, procs):
    """--rate is the total: 2 producers x 100 at 2000/s take ~0.1 s."""
    name = ring()
    assert pbring("create", name).rc == 0
    c = procs("consume", name, "--count", 200, "--quiet")
    wait_reader(pbring, name, c.pid)
    p = pbring("produce", name, "--rate", 2000, "--count", 100,
               "--producers", 2)
    assert p.rc == 0, p
    secs = float(produce_summary_re(200, 2).fullmatch(p.err.strip()).group(1))
    assert 0.09 <= secs <= 1.0, p.err
    assert c.wait() == 0, c


def test_size_does_not_fit(pbring, ring):
    name = ring()
    assert pbring("create", name).rc == 0  # payload 960 B
    for size in (2000, 960):
        r = pbring("produce", name, "--no-wait", "--count", 1, "--size", size)
        assert r.rc == 1, r
        assert r.out == ""
        lines = r.err_lines
        assert len(lines) == 2, r.err
        assert produce_summary_re(0).fullmatch(lines[0]), r.err
        # the sizes: the encoded message, and the slot's
        assert re.fullmatch(
            rf"pbring: {name}: a message of (\d+) bytes does not fit in a "
            r"slot \(payload capacity 960 bytes of --slot-size 1024\): use "
            r"a smaller --size or a larger --slot-size", lines[1]), r.err
        assert int(re.search(r"of (\d+) bytes", lines[1]).group(1)) > size
    # nothing was committed: a consumer from the oldest finds nothing
    r = pbring("consume", name, "--timeout", "0.3", "--quiet")
    assert r.rc == 0, r
    assert consume_summary(r.err)["received"] == 0
    # and a message that fits still goes through
    r = pbring("produce", name, "--no-wait", "--count", 1, "--size", 900)
    assert r.rc == 0, r


@pytest.mark.parametrize("cmd", ["produce", "consume"])
def test_missing_ring(pbring, ring, cmd):
    name = ring()
    r = pbring(cmd, name, "--count", 1, "--timeout", "0.3")
    assert r.rc == 1, r
    assert (r.out, r.err) == ("", f"pbring: {name}: no such ring\n")


def test_produce_waits_for_gating_reader(pbring, ring):
    name = ring()
    assert pbring("create", name).rc == 0
    r = pbring("produce", name, "--count", 5, "--timeout", "0.3")
    assert r.rc == 1, r
    assert r.out == ""
    # says once what it waits for, then why it gave up
    assert r.err == (f"pbring: waiting for a gating reader on {name} (start "
                     "a consumer, or use --no-wait)\n"
                     f"pbring: {name}: no gating reader attached (start a "
                     "consumer first, or use --no-wait)\n")
    assert 0.25 <= r.elapsed < 5, r
    assert stat_json(pbring, name)["claimed"] == 0


def test_no_wait_then_consume_oldest(pbring, ring):
    name = ring()
    assert pbring("create", name).rc == 0
    r = pbring("produce", name, "--count", 5, "--no-wait")
    assert r.rc == 0, r
    assert produce_summary_re(5).fullmatch(r.err.strip()), r.err
    assert stat_json(pbring, name)["claimed"] == 5
    # default start is the oldest message still in the ring
    r = pbring("consume", name, "--count", 5, "--json", "--timeout", 5)
    assert r.rc == 0, r
    (seqs,) = check_json_lines(r.out, 0).values()
    assert seqs == [0, 1, 2, 3, 4]
    r = pbring("consume", name, "--count", 5, "--from", "oldest",
               "--quiet", "--timeout", 5)
    assert r.rc == 0, r
    assert consume_summary(r.err)["received"] == 5


def test_consume_output_write_error_fails(pbring, pbring_path, ring):
    """Messages taken but not written out (here: /dev/full, as a full disk)
    are lost: consume says so and fails instead of exiting 0."""
    name = ring()
    assert pbring("create", name).rc == 0
    assert pbring("produce", name, "--count", 5, "--no-wait").rc == 0
    with open("/dev/full", "w") as full:
        cp = subprocess.run([pbring_path, "consume", name, "--count", "5",
                             "--json", "--timeout", "5"], stdout=full,
                            stderr=subprocess.PIPE, text=True, timeout=30,
                            stdin=subprocess.DEVNULL)
    assert cp.returncode == 1, cp
    last = cp.stderr.strip().splitlines()[-1]
    assert last == f"pbring: {name}: cannot write the output: No space left on device", cp.stderr
    # The same run to a working stdout succeeds (the messages are still
    # there: a reader's cursor is its own).
    r = pbring("consume", name, "--count", 5, "--json", "--timeout", 5)
    assert r.rc == 0, r


def test_consume_timeout_on_empty_ring(pbring, ring):
    name = ring()
    assert pbring("create", name).rc == 0
    r = pbring("consume", name, "--timeout", "0.3", "--count", 5)
    assert r.rc == 1, r
    assert r.out == ""
    lines = r.err_lines
    assert len(lines) == 2, r.err
    assert consume_summary(lines[0])["received"] == 0
    assert lines[1] == f"pbring: {name}: timed out after 0 of 5 messages"
    assert 0.25 <= r.elapsed < 5, r


def test_consume_timeout_without_count_is_success(pbring, ring):
    name = ring()
    assert pbring("create", name).rc == 0
    r = pbring("consume", name, "--timeout", "0.2", "--quiet")
    assert r.rc == 0, r
    assert len(r.err_lines) == 1 and consume_summary(r.err)["received"] == 0


def test_consume_from_latest(pbring, ring, procs):
    name = ring()
    assert pbring("create", name).rc == 0
    first = procs("produce", name, "--count", 5, "--no-wait")
    assert first.wait() == 0, first
    c = procs("consume", name, "--from", "latest", "--count", 3, "--json",
              "--timeout", 10)
    wait_reader(pbring, name, c.pid)
    second = procs("produce", name, "--count", 3)
    assert second.wait() == 0, second
    assert c.wait() == 0, c
    per_id = check_json_lines(c.out, 0, ids=[f"{second.pid}-0"])
    assert per_id[f"{second.pid}-0"] == [0, 1, 2]
    s = consume_summary(c.err)
    assert (s["received"], s["lost"]) == (3, 0)


def test_lossy_consumer_never_blocks_producer(pbring, ring, procs):
    name = ring()
    assert pbring("create", name, "--slots", "16").rc == 0
    c = procs("consume", name, "--lossy", "--quiet", "--timeout", "0.5")
    wait_reader(pbring, name, c.pid, role="lossy")
    # a lossy reader is not a gating one: the producer will not wait for it
    r = pbring("produce", name, "--count", 5, "--timeout", "0.2")
    assert r.rc == 1, r
    assert "no gating reader attached" in r.err
    # stopped lossy reader, 16 slots, 5000 messages: the producer laps it
    os.kill(c.pid, signal.SIGSTOP)
    try:
        r = pbring("produce", name, "--count", 5000, "--no-wait",
                   "--timeout", 2)
    finally:
        os.kill(c.pid, signal.SIGCONT)
    assert r.rc == 0, r
    assert produce_summary_re(5000).fullmatch(r.err.strip()), r.err
    assert r.elapsed < 2, r
    assert c.wait() == 0, c  # losses are fine for a lossy reader
    s = consume_summary(c.err, "lossy")
    assert s["lost"] > 0, c.err
    assert 0 < s["received"] <= 5000 - s["lost"], c.err
    assert s["crc errors"] == 0 and s["duplicates"] == 0, c.err


def test_stuck_gating_consumer_blocks_producer(pbring, ring, procs):
    name = ring()
    assert pbring("create", name, "--slots", "16").rc == 0
    c = procs("consume", name, "--quiet")
    wait_reader(pbring, name, c.pid)
    os.kill(c.pid, signal.SIGSTOP)
    r = pbring("produce", name, "--count", 100, "--timeout", "0.3")
    assert r.rc == 1, r
    lines = r.err_lines
    assert len(lines) == 2, r.err
    assert produce_summary_re(16).fullmatch(lines[0]), r.err
    assert lines[1] == (f"pbring: {name}: ring stayed full for the timeout "
                        "(is a gating reader stuck?)")
    assert 0.25 <= r.elapsed < 5, r


def test_dead_gating_consumer_is_reaped(pbring, ring, procs):
    name = ring()
    assert pbring("create", name, "--slots", "16").rc == 0
    c = procs("consume", name, "--quiet")
    wait_reader(pbring, name, c.pid)
    c.p.kill()
    c.p.wait(timeout=10)
    st = stat_json(pbring, name)
    (rd,) = [p for p in st["participants"] if p["pid"] == c.pid]
    assert rd["role"] == "gating" and rd["alive"] is False
    # a dead gating reader does not count as one ...
    r = pbring("produce", name, "--count", 5, "--timeout", "0.2")
    assert r.rc == 1 and "no gating reader attached" in r.err, r
    # ... and it stops gating: the producer reaps it and runs free
    r = pbring("produce", name, "--count", 100, "--no-wait", "--timeout", 2)
    assert r.rc == 0, r
    st = stat_json(pbring, name)
    assert st["readers_reaped"] == 1
    assert st["claimed"] == 100


def test_reader_capacity(pbring, ring, procs):
    name = ring()
    assert pbring("create", name, "--readers", "1").rc == 0
    c = procs("consume", name, "--quiet")
    wait_reader(pbring, name, c.pid)
    r = pbring("consume", name, "--count", 1, "--timeout", "0.2")
    assert r.rc == 1, r
    assert r.err == f"pbring: {name}: open reader: no free participant entry\n"


def test_producer_capacity(pbring, ring, procs):
    """--producers 2 ring, 3 producer threads: one cannot join. --rate keeps
    the two others running (0.5 s) while the third tries."""
    name = ring()
    assert pbring("create", name, "--producers", "2").rc == 0
    c = procs("consume", name, "--count", 200, "--quiet", "--timeout", 10)
    wait_reader(pbring, name, c.pid)
    r = pbring("produce", name, "--count", 100, "--producers", 3,
               "--rate", 600)
    assert r.rc == 1, r
    lines = r.err_lines
    assert len(lines) == 2, r.err
    assert produce_summary_re(200, 3).fullmatch(lines[0]), r.err
    assert lines[1] == f"pbring: {name}: open producer: no free participant entry"
    assert c.wait() == 0, c
    s = consume_summary(c.err)
    assert (s["received"], s["lost"], s["gaps"]) == (200, 0, 0)


def _make_untyped(name):
    """Turn a demo ring into an untyped one, as a raw-bytes creator would
    write it: empty msg_type, no schema (FORMAT.md 3.2)."""
    with Shm(name) as m:
        m.m[SB_MSG_TYPE:SB_MSG_TYPE + SB_MSG_TYPE_LEN] = bytes(SB_MSG_TYPE_LEN)
        m.put("<Q", SB_SCHEMA_HASH, 0)
        m.put("<I", SB_SCHEMA_LEN, 0)


def raw_frames(data):
    """consume --raw output: 4-byte little-endian length, then the bytes."""
    frames = []
    while data:
        assert len(data) >= 4, data
        n = struct.unpack_from("<I", data)[0]
        assert len(data) >= 4 + n, data
        frames.append(data[4:4 + n])
        data = data[4 + n:]
    return frames


def test_untyped_ring_refused(pbring, pbring_path, ring):
    name = ring()
    assert pbring("create", name).rc == 0
    _make_untyped(name)
    r = pbring("consume", name, "--count", 1, "--timeout", "0.2")
    assert (r.rc, r.out, r.err) == (
        1, "", f"pbring: {name}: ring is untyped: use --raw\n")
    r = pbring("produce", name, "--count", 1, "--no-wait")
    assert (r.rc, r.out, r.err) == (
        1, "", f"pbring: {name}: ring holds raw bytes, not {DEMO_TYPE} "
        "(use --raw)\n")
    # --raw on both sides skips the check; consume --raw writes frames
    r = pbring("produce", name, "--count", 3, "--no-wait", "--raw")
    assert r.rc == 0, r
    cp = subprocess.run([pbring_path, "consume", name, "--count", "3", "--raw",
                         "--timeout", "5"], capture_output=True, timeout=60)
    assert cp.returncode == 0, cp
    frames = raw_frames(cp.stdout)
    assert len(frames) == 3
    assert all(b"-0" in f for f in frames)  # DeviceEvent.id "<pid>-0"


def test_untyped_ring_from_create_schema_none(pbring, ring):
    name = ring()
    assert pbring("create", name, "--schema", "none").rc == 0
    r = pbring("consume", name, "--count", 1, "--timeout", "0.2")
    assert r.rc == 1, r
    assert r.err == f"pbring: {name}: ring is untyped: use --raw\n"


def test_other_type_refused(pbring, ring):
    name = ring()
    assert pbring("create", name).rc == 0
    with Shm(name) as m:
        m.m[SB_MSG_TYPE:SB_MSG_TYPE + SB_MSG_TYPE_LEN] = \
            b"other.Msg".ljust(SB_MSG_TYPE_LEN, b"\0")
    msg = f"pbring: {name}: ring holds other.Msg, not {DEMO_TYPE}\n"
    r = pbring("produce", name, "--count", 1, "--timeout", "0.2", "--no-wait")
    assert (r.rc, r.out, r.err) == (1, "", msg), r
    # consume decodes any typed ring with its stored schema: this one's
    # schema (the demo's) has no other.Msg
    r = pbring("consume", name, "--count", 1, "--timeout", "0.2", "--quiet")
    assert (r.rc, r.out, r.err) == (
        1, "", f"pbring: {name}: stored schema has no message other.Msg\n")
    r = pbring("consume", name, "--raw", "--timeout", "0.1")
    assert r.rc == 0, r


@pytest.mark.parametrize("cmd", ["stat", "consume", "produce"])
def test_unsupported_major_version(pbring, ring, cmd):
    name = ring()
    assert pbring("create", name).rc == 0
    with Shm(name) as m:
        m.put("<H", SB_MAJOR, 2)
    r = pbring(cmd, name)
    assert r.rc == 1, r
    assert (r.out, r.err) == (
        "", f"pbring: {name}: ring made by format 2.x; this pbring reads format 1.x\n")


@pytest.mark.parametrize("cmd", ["stat", "consume", "produce"])
def test_world_writable_ring_refused(pbring, ring, cmd):
    name = ring()
    assert pbring("create", name).rc == 0
    os.chmod(shm_path(name), 0o666)
    for args in ([], ["--any-owner"]):  # which accepts no such ring either
        r = pbring(cmd, name, *args)
        assert r.rc == 1, r
        assert (r.out, r.err) == (
            "", f"pbring: {name}: ring writable by everyone (mode 0666): "
            "refused (see SECURITY.md)\n")


def test_permission_denied(pbring, ring):
    name = ring()
    assert pbring("create", name).rc == 0  # mode 0600
    if os.geteuid() == 0:
        kw = {"preexec_fn": lambda: (os.setgid(65534), os.setuid(65534))}
    else:
        os.chmod(shm_path(name), 0)
        kw = {}
    try:
        r = pbring("consume", name, "--count", 1, "--timeout", "0.2", **kw)
    except subprocess.SubprocessError as e:
        pytest.skip(f"cannot drop privileges here: {e}")
    assert r.rc == 1, r
    assert (r.out, r.err) == ("", f"pbring: {name}: permission denied\n")


def test_corrupted_payload_counted_and_skipped(pbring, ring):
    """One corrupted payload is one crc error, named by its ring seq, and
    nothing else: not also a gap and a lost message in its producer's seq."""
    n, bad_seq = 10, 3
    name = ring()
    assert pbring("create", name, "--slots", "64").rc == 0
    r = pbring("produce", name, "--no-wait", "--count", n, "--size", 16)
    assert r.rc == 0, r
    corrupt_payload(name, bad_seq)
    r = pbring("consume", name, "--from", "oldest", "--count", n - 1,
               "--timeout", 1, "--json")
    assert r.rc == 1, r
    (seqs,) = check_json_lines(r.out, 16).values()
    assert seqs == [s for s in range(n) if s != bad_seq]
    lines = r.err_lines
    assert len(lines) == 3, r.err
    assert lines[0] == f"pbring: {name}: seq {bad_seq} (producer 0): CRC mismatch"
    s = consume_summary(lines[1])
    assert s["received"] == n - 1 and s["crc errors"] == 1, r.err
    assert (s["lost"], s["gaps"], s["content errors"]) == (0, 0, 0), r.err
    assert lines[2] == f"pbring: {name}: 1 corrupt messages"
    # asking for all n: the corrupt one never arrives
    r = pbring("consume", name, "--count", n, "--timeout", "0.5", "--quiet")
    assert r.rc == 1, r
    s = consume_summary(r.err_lines[1])
    assert s["received"] == n - 1 and s["crc errors"] == 1, r.err
    assert (s["lost"], s["gaps"]) == (0, 0), r.err
    assert r.err_lines[2] == f"pbring: {name}: timed out after {n - 1} of {n} messages"


def corrupt_payload(name, seq):
    """Flip the last byte (a blob byte) of committed message seq."""
    with Shm(name) as m:
        slots_off, slot_size = m.u64(SB_SLOTS_OFF), m.u32(SB_SLOT_SIZE)
        slot = slots_off + seq * slot_size
        assert m.u64(slot) == (seq << 2) | 1  # DONE(seq)
        length = m.u32(slot + 8)
        assert 16 < length <= slot_size - SLOT_HDR
        m.m[slot + SLOT_HDR + length - 1] ^= 0xFF


def test_corrupt_messages_each_counted_once(pbring, ring):
    """Two producers, two corrupt payloads of one and one of the other, in
    a row or apart: three crc errors, each named, and no gap; a real gap
    after them still counts."""
    n = 12
    name = ring()
    assert pbring("create", name, "--slots", "64").rc == 0
    for _ in range(2):  # producer 0 then producer 0 again: two ids
        assert pbring("produce", name, "--no-wait", "--count", n // 2,
                      "--size", 16).rc == 0
    for seq in (2, 3, 8):
        corrupt_payload(name, seq)
    r = pbring("consume", name, "--quiet", "--timeout", "0.3")
    assert r.rc == 1, r
    lines = r.err_lines
    assert lines[:3] == [f"pbring: {name}: seq {q} (producer 0): CRC mismatch"
                         for q in (2, 3, 8)], r.err
    s = consume_summary(lines[3])
    assert (s["received"], s["crc errors"], s["gaps"], s["lost"]) \
        == (n - 3, 3, 0, 0), r.err


def test_many_corrupt_messages_named_up_to_ten(pbring, ring):
    n = 14
    name = ring()
    assert pbring("create", name, "--slots", "64").rc == 0
    assert pbring("produce", name, "--no-wait", "--count", n,
                  "--size", 16).rc == 0
    for seq in range(n):
        corrupt_payload(name, seq)
    r = pbring("consume", name, "--quiet", "--timeout", "0.3")
    assert r.rc == 1, r
    lines = r.err_lines
    assert lines[:11] == [
        f"pbring: {name}: seq {q} (producer 0): CRC mismatch"
        for q in range(10)] + [f"pbring: {name}: more corrupt messages: "
                               "not named"], r.err
    s = consume_summary(lines[11])
    assert (s["received"], s["crc errors"], s["gaps"]) == (0, n, 0), r.err
    assert lines[12:] == [f"pbring: {name}: {n} corrupt messages"]


def test_corrupted_length_counted_and_skipped(pbring, ring):
    """A length beyond the payload capacity is corrupt, not a crash."""
    n, bad_seq = 6, 2
    name = ring()
    assert pbring("create", name, "--slots", "16", "--slot-size", "256").rc == 0
    assert pbring("produce", name, "--no-wait", "--count", n).rc == 0
    with Shm(name) as m:
        slot = m.u64(SB_SLOTS_OFF) + bad_seq * m.u32(SB_SLOT_SIZE)
        m.put("<I", slot + 8, 0xFFFFFFF0)
    r = pbring("consume", name, "--timeout", "0.5", "--json")
    assert r.rc == 1, r
    (seqs,) = check_json_lines(r.out, 0).values()
    assert seqs == [s for s in range(n) if s != bad_seq]
    # its producer is not known: named by its seq alone
    assert r.err_lines[0] == f"pbring: {name}: seq {bad_seq}: corrupt slot header"
    s = consume_summary(r.err_lines[1])
    # a corrupt slot header is a content error, not a CRC mismatch, and
    # not a gap either
    assert s["received"] == n - 1, r.err
    assert (s["crc errors"], s["content errors"]) == (0, 1), r.err
    assert (s["gaps"], s["lost"]) == (0, 0), r.err
    assert r.err_lines[2] == f"pbring: {name}: 1 corrupt messages"


CONSUME_HINT = " (see 'pbring consume --help')\n"
CONSUME_BAD = [
    (["--json", "--quiet"], "--json and --quiet exclude each other"),
    (["--json", "--raw"], "--json and --raw exclude each other"),
    (["--quiet", "--raw"], "--quiet and --raw exclude each other"),
    (["--count", "0"], "--count: '0' is not a positive number"),
    (["--count", "-1"], "--count: '-1' is not a positive number"),
    (["--count", "ten"], "--count: 'ten' is not a positive number"),
    (["--timeout", "soon"], "--timeout: 'soon' is not a number of seconds"),
    (["--timeout", "-1"], "--timeout: '-1' is not a number of seconds"),
    (["--timeout", "nan"], "--timeout: 'nan' is not a number of seconds"),
    (["--from", "newest"], "--from: 'newest' is not oldest or latest"),
]


@pytest.mark.parametrize("args,msg", CONSUME_BAD,
                         ids=[" ".join(a) for a, _ in CONSUME_BAD])
def test_consume_bad_input(pbring, ring, args, msg):
    name = ring()
    assert pbring("create", name).rc == 0
    r = pbring("consume", name, *args)
    assert r.rc == 2, r
    assert (r.out, r.err) == ("", "pbring consume: " + msg + CONSUME_HINT)
    assert stat_json(pbring, name)["participants"] == []


PRODUCE_HINT = " (see 'pbring produce --help')\n"
PRODUCE_BAD = [
    (["--count", "0"], "--count: '0' is not a positive number"),
    (["--count", "x"], "--count: 'x' is not a positive number"),
    (["--rate", "0"], "--rate: '0' is not a positive rate"),
    (["--rate", "-5"], "--rate: '-5' is not a positive rate"),
    (["--rate", "fast"], "--rate: 'fast' is not a positive rate"),
    (["--size", "-1"], "--size: '-1' is not a size in bytes"),
    (["--size", "big"], "--size: 'big' is not a size in bytes"),
    (["--size", "2147483648"], "--size: '2147483648' is not a size in bytes"),
    (["--producers", "0"], "--producers: '0' is not in 1..1024"),
    (["--producers", "1025"], "--producers: '1025' is not in 1..1024"),
    (["--timeout", "x"], "--timeout: 'x' is not a number of seconds"),
    (["--from-json", "-", "--count", "3"],
     "--from-json and --count exclude each other"),
    (["--size", "3", "--from-json", "-"],
     "--from-json and --size exclude each other"),
    (["--from-json", "-", "--raw"], "--from-json and --raw exclude each other"),
    (["--from-json"], "option '--from-json' needs a value"),
]


@pytest.mark.parametrize("args,msg", PRODUCE_BAD,
                         ids=[" ".join(a) for a, _ in PRODUCE_BAD])
def test_produce_bad_input(pbring, ring, args, msg):
    name = ring()
    assert pbring("create", name).rc == 0
    r = pbring("produce", name, "--no-wait", *args)
    assert r.rc == 2, r
    assert (r.out, r.err) == ("", "pbring produce: " + msg + PRODUCE_HINT)
    assert stat_json(pbring, name)["claimed"] == 0


@pytest.mark.parametrize("cmd", ["produce", "consume"])
@pytest.mark.parametrize("args", [[], ["{r}", "extra"]],
                         ids=["missing", "extra"])
def test_ring_count(pbring, ring, cmd, args):
    name = ring()
    assert pbring("create", name).rc == 0
    r = pbring(cmd, *[a.format(r=name) for a in args])
    assert r.rc == 2, r
    assert (r.out, r.err) == (
        "", f"pbring {cmd}: expects exactly one RING (see 'pbring {cmd} --help')\n")


@pytest.mark.parametrize("cmd", ["produce", "consume", "stat"])
def test_bad_ring_name_is_usage_error(pbring, cmd):
    r = pbring(cmd, "a/b")
    assert r.rc == 2, r
    assert len(r.err_lines) == 1 and "invalid ring name" in r.err
    assert "a/b" in r.err


@pytest.mark.parametrize("cmd", ["produce", "consume", "stat"])
def test_bad_ring_name_message(pbring, cmd):
    """Whatever the exit code, one line naming the ring and the reason."""
    r = pbring(cmd, "a/b")
    assert r.rc in (1, 2), r
    assert r.err == (f"pbring {cmd}: invalid ring name 'a/b' (use 1-63 of "
                     f"[A-Za-z0-9_.-]) (see 'pbring {cmd} --help')\n")
