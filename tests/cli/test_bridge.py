# SPDX-License-Identifier: MIT
"""`pbring bridge` (issue 17): ring -> Redis stream -> ring.

Each test starts its own redis-server (Debian's) on a unix socket and a
loopback port in its tmp dir and stops it afterwards; Redis is queried
with redis-cli. The example workers (Go, Python) are run by
tests/cli/run_bridge_workers.sh, which has the client libraries.
"""
import os
import random
import shutil
import socket
import subprocess
import time

import pytest

from cliutil import stat_json


REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(
    REDIS is None, reason="redis-server missing: ./dev installs it")
if REDIS is None and os.environ.get("PBRING_REQUIRE_REDIS"):
    raise RuntimeError("redis-server is required (PBRING_REQUIRE_REDIS)")

N = 100_000
STREAM_DUP_BOUND = 0  # docs/REDIS.md: no duplicates while the last entry stays


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    def __init__(self, tmp_path, port=None, password=None):
        self.dir = tmp_path
        self.sock = str(tmp_path / "redis.sock")
        self.port = port or free_port()
        self.password = password
        args = [REDIS, "--port", str(self.port), "--bind", "127.0.0.1",
                "--unixsocket", self.sock, "--save", "", "--appendonly",
                "no", "--dir", str(tmp_path)]
        if password:
            args += ["--requirepass", password]
        self.log = open(tmp_path / f"redis-{self.port}.log", "wb")
        self.p = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                  stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            if os.path.exists(self.sock):
                try:
                    if self.cli("PING").strip() in ("PONG", "NOAUTH"):
                        break
                except subprocess.CalledProcessError:
                    pass
            assert self.p.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)

    @property
    def url(self):
        return f"unix://{self.sock}"

    @property
    def tcp_url(self):
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}"

    def cli(self, *args):
        env = dict(os.environ)
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        return subprocess.run(["redis-cli", "-s", self.sock, *map(str, args)],
                              capture_output=True, text=True, check=True, errors="replace",
                              env=env, timeout=30).stdout

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            self.p.wait(timeout=10)
        self.log.close()


@pytest.fixture
def redis(tmp_path):
    started = []

    def start(**kw):
        d = tmp_path / f"redis{len(started)}"
        d.mkdir()
        r = Redis(d, **kw)
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


SEQS_LUA = """
local out = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  local f = e[2]
  for j = 1, #f, 2 do
    if f[j] == 'seq' then out[#out + 1] = f[j + 1] end
  end
end
return out
"""


def stream_seqs(r, key):
    """The seq field of every entry of stream @key, in stream order."""
    return [int(x) for x in r.cli("--raw", "EVAL", SEQS_LUA, 1,
                                  key).split()]


def test_help_and_url_errors(pbring):
    r = pbring("bridge", "--help")
    assert r.rc == 0 and "to-redis" in r.out and "from-redis" in r.out
    r = pbring("bridge", "to-redis", "--help")
    assert r.rc == 0 and "--maxlen" in r.out
    r = pbring("bridge", "from-redis", "--help")
    assert r.rc == 0 and "--group" in r.out
    r = pbring("bridge", "sideways")
    assert r.rc == 2 and len(r.err_lines) == 1
    r = pbring("bridge", "to-redis", "x", "--redis", "rediss://h:1",
               "--stream", "s")
    assert r.rc == 2 and "TLS" in r.err and len(r.err_lines) == 1
    for bad in ("http://h", "redis://h:0", "redis://h:99999", "unix://rel",
                "redis://h/notadb"):
        r = pbring("bridge", "to-redis", "x", "--redis", bad, "--stream", "s")
        assert r.rc == 2 and len(r.err_lines) == 1, (bad, r)
    r = pbring("bridge", "from-redis", "x", "--redis", "redis://h")
    assert r.rc == 2 and "required" in r.err


def test_round_trip_100k_identical_and_in_order(pbring, procs, ring, redis):
    """100 000 messages ring -> Redis -> ring arrive identical, in order."""
    rd = redis()
    a, b = ring("a"), ring("b")
    assert pbring("create", a, "--durable-readers").rc == 0
    assert pbring("create", b).rc == 0
    out_b = procs("consume", b, "--raw", "--count", N, "--timeout", 60,
                  tag="rawb")
    chk_b = procs("consume", b, "--count", N, "--quiet", "--timeout", 60,
                  tag="chkb")
    out_a = procs("consume", a, "--raw", "--count", N, "--timeout", 60,
                  tag="rawa")
    frm = procs("bridge", "from-redis", "--redis", rd.url, "--stream", "st",
                "--group", "g", "--consumer", "c1", b, "--count", N,
                tag="from")
    to = procs("bridge", "to-redis", a, "--redis", rd.tcp_url, "--stream",
               "st", "--count", N, tag="to")
    prod = procs("produce", a, "--count", N, "--size", 16, tag="prod")
    for p in (prod, to, frm, out_a, out_b, chk_b):
        assert p.wait(120) == 0, p
    assert "100000 messages to" in to.err, to
    assert "100000 messages from" in frm.err and "0 lost" in frm.err, frm
    assert ("received 100000, lost 0" in chk_b.err
            and "gaps 0, duplicates 0" in chk_b.err), chk_b
    ra = out_a.out_path.read_bytes()
    rb = out_b.out_path.read_bytes()
    assert len(ra) > N * 4 and ra == rb
    assert int(rd.cli("XLEN", "st")) == N
    seqs = stream_seqs(rd, "st")
    assert seqs == list(range(N))
    # the schema, once, under the documented key
    keys = rd.cli("KEYS", "pbring:schema:*").split()
    assert len(keys) == 1
    assert rd.cli("HGET", keys[0], "type").strip() == \
        "pbring.demo.v1.DeviceEvent"
    assert int(rd.cli("HSTRLEN", keys[0], "fds")) > 100


def _restarting(procs, args, tag, stop_at, rng, kills):
    """Run args, SIGKILL it after a random 20..250 ms, restart; until
    stop_at() says the run is over. Returns the last process."""
    n = 0
    while True:
        p = procs(*args, tag=f"{tag}{n}")
        n += 1
        deadline = time.monotonic() + rng.uniform(0.02, 0.25)
        while time.monotonic() < deadline and not stop_at():
            time.sleep(0.005)
        if stop_at():
            return p
        p.p.kill()
        p.p.wait()
        kills.append(tag)


def test_crash_sigkill_both_directions(pbring, procs, ring, redis):
    """The bridges are SIGKILLed >= 50 times each during a 100 000-message
    run and restarted: 0 lost, 0 duplicated into the ring, duplicates into
    the stream within the documented bound."""
    import threading

    rd = redis()
    a, b = ring("ca"), ring("cb")
    assert pbring("create", a, "--durable-readers", "--slots", 256).rc == 0
    assert pbring("create", b, "--slots", 256).rc == 0
    chk = procs("consume", b, "--count", N, "--quiet", "--timeout", 60,
                tag="chk")
    raw_b = procs("consume", b, "--raw", "--count", N, "--timeout", 60,
                  tag="rawb")
    raw_a = procs("consume", a, "--raw", "--count", N, "--timeout", 60,
                  tag="rawa")
    to_args = ("bridge", "to-redis", a, "--redis", rd.url, "--stream",
               "cs", "--batch", 64)
    from_args = ("bridge", "from-redis", "--redis", rd.url, "--stream", "cs",
                 "--group", "g", "--consumer", "c1", b, "--batch", 64)
    # the durable reader exists before the producer starts
    first = procs(*to_args, tag="to-first")
    deadline = time.monotonic() + 10
    while "bridge." not in pbring("stat", a).out:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    first.p.kill()
    first.p.wait()
    prod = procs("produce", a, "--count", N, "--size", 16, "--rate", 4000,
                 "--timeout", 60, tag="prod")
    done = threading.Event()
    kills, last = [], {}
    rng = random.Random(os.environ.get("PBRING_CRASH_SEED", 17))

    def run(tag, args):
        last[tag] = _restarting(procs, args, tag, done.is_set,
                                random.Random(rng.random()), kills)

    ts = [threading.Thread(target=run, args=("to", to_args)),
          threading.Thread(target=run, args=("from", from_args))]
    for t in ts:
        t.start()
    try:
        assert chk.wait(120) == 0, chk
        assert raw_b.wait(60) == 0 and raw_a.wait(60) == 0
        assert prod.wait(60) == 0, prod
    finally:
        done.set()
        for t in ts:
            t.join()
    assert kills.count("to") >= 50 and kills.count("from") >= 50, kills
    assert ("received 100000, lost 0" in chk.err
            and "gaps 0, duplicates 0" in chk.err), chk
    assert raw_a.out_path.read_bytes() == raw_b.out_path.read_bytes()
    seqs = stream_seqs(rd, "cs")
    assert sorted(set(seqs)) == list(range(N))  # 0 lost into the stream
    dups = len(seqs) - N
    print(f"kills: to {kills.count('to')}, from {kills.count('from')}; "
          f"duplicates into the stream: {dups}")
    assert dups <= STREAM_DUP_BOUND


def test_redis_down_retries_and_holds_producer(pbring, procs, ring, redis,
                                               tmp_path):
    a = ring("down")
    assert pbring("create", a, "--durable-readers", "--slots", 64).rc == 0
    port = free_port()
    to = procs("bridge", "to-redis", a, "--redis", f"redis://127.0.0.1:{port}",
               "--stream", "ds", "--count", 2000, tag="to")
    deadline = time.monotonic() + 10
    while "bridge." not in pbring("stat", a).out:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    prod = procs("produce", a, "--count", 2000, "--timeout", 30, tag="prod")
    time.sleep(1.6)
    lines = [ln for ln in to.err.splitlines() if "retry" in ln]
    assert len(lines) >= 3, to.err  # 0.1 + 0.2 + 0.4 + 0.8 s
    assert all(f"127.0.0.1:{port}" in ln and "refused" in ln.lower()
               for ln in lines), lines
    assert prod.p.poll() is None  # held back by the ring
    st = stat_json(pbring, a)
    assert st["claimed"] == 64  # the ring is full, nothing overwritten
    gating = [p for p in st["participants"] if p["role"] == "gating"]
    assert [(g["durable"], g["position"]) for g in gating] == \
        [("bridge.ds", 0)]
    rd = redis(port=port)
    assert prod.wait(30) == 0, prod
    assert to.wait(30) == 0, to
    assert int(rd.cli("XLEN", "ds")) == 2000


def test_tap_counts_losses_while_redis_away(pbring, procs, ring, redis):
    """A --tap bridge never holds producers back; what it loses while
    Redis is away is counted and reported: sent + lost = produced."""
    a = ring("tap")
    assert pbring("create", a, "--slots", 64).rc == 0
    port = free_port()
    to = procs("bridge", "to-redis", a, "--tap", "--redis",
               f"redis://127.0.0.1:{port}", "--stream", "ts", tag="to")
    time.sleep(0.3)
    r = pbring("produce", a, "--count", 1000, "--no-wait")
    assert r.rc == 0, r  # a tap never holds the producer back
    assert "retry" in to.err
    rd = redis(port=port)
    deadline = time.monotonic() + 15
    while "tap: " not in to.err:
        assert time.monotonic() < deadline, to
        time.sleep(0.05)
    time.sleep(0.3)
    to.p.terminate()
    assert to.wait(10) == 143, to
    lost = [ln for ln in to.err.splitlines() if "tap: " in ln]
    total = int(lost[-1].split(", ")[-1].split()[0])
    sent = int(rd.cli("XLEN", "ts"))
    assert total > 0 and sent + total == 1000, (sent, total, to.err)


def test_wrong_password_is_permanent(pbring, ring, redis):
    rd = redis(password="s3cret")
    a, b = ring("pw"), ring("pwb")
    assert pbring("create", a, "--durable-readers").rc == 0
    assert pbring("create", b).rc == 0
    url = f"redis://:wrong@127.0.0.1:{rd.port}"
    r = pbring("bridge", "to-redis", a, "--redis", url, "--stream", "s",
               timeout=20)
    assert r.rc == 1 and "WRONGPASS" in r.err, r
    assert "wrong@" not in r.err  # the password is not shown
    assert sum("WRONGPASS" in ln for ln in r.err_lines) == 1
    r = pbring("bridge", "from-redis", "--redis", url, "--stream", "s",
               "--group", "g", "--consumer", "c", b, timeout=20)
    assert r.rc == 1 and "WRONGPASS" in r.err, r
    # the right one works
    r = pbring("bridge", "to-redis", a, "--redis", rd.tcp_url, "--stream",
               "s", "--timeout", 0.3, timeout=20)
    assert r.rc == 0, r


def test_key_of_wrong_type(pbring, ring, redis):
    rd = redis()
    a, b = ring("wt"), ring("wtb")
    assert pbring("create", a, "--durable-readers").rc == 0
    assert pbring("create", b).rc == 0
    rd.cli("SET", "k", "v")
    r = pbring("bridge", "to-redis", a, "--redis", rd.url, "--stream", "k",
               timeout=20)
    assert r.rc == 1 and "holds a string, not a stream" in r.err, r
    r = pbring("bridge", "from-redis", "--redis", rd.url, "--stream", "k",
               "--group", "g", "--consumer", "c", b, timeout=20)
    assert r.rc == 1 and "holds a string, not a stream" in r.err, r


def test_stream_trimmed_under_from_redis(pbring, procs, ring, redis):
    """Entries trimmed before from-redis read them: reported, no hang."""
    rd = redis()
    a, b = ring("tr"), ring("trb")
    assert pbring("create", a, "--durable-readers", "--slots", 4096).rc == 0
    assert pbring("create", b, "--slots", 4096).rc == 0
    to = procs("bridge", "to-redis", a, "--redis", rd.url, "--stream", "ts",
               "--count", 1000, tag="to")
    assert pbring("produce", a, "--count", 1000, "--timeout", 10).rc == 0
    assert to.wait(30) == 0, to
    r = pbring("bridge", "from-redis", "--redis", rd.url, "--stream", "ts",
               "--group", "g", "--consumer", "c", b, "--count", 100,
               timeout=30)
    assert r.rc == 0 and "100 messages from" in r.err, r
    rd.cli("XTRIM", "ts", "MAXLEN", "500")
    r = pbring("bridge", "from-redis", "--redis", rd.url, "--stream", "ts",
               "--group", "g", "--consumer", "c", b, "--timeout", 1,
               timeout=30)
    assert r.rc == 0, r
    assert "400 stream entries after" in r.err and "trimmed" in r.err, r
    assert "500 messages from" in r.err and "400 lost" in r.err, r


def test_pending_claimed_and_trimmed_pending(pbring, procs, ring, redis):
    """Own pending entries come first; a dead consumer's idle entries are
    claimed (XAUTOCLAIM); pending entries trimmed away are reported."""
    rd = redis()
    a, b = ring("pa"), ring("pb")
    assert pbring("create", a, "--durable-readers", "--slots", 4096).rc == 0
    assert pbring("create", b, "--slots", 4096).rc == 0
    to = procs("bridge", "to-redis", a, "--redis", rd.url, "--stream", "ps",
               "--count", 1000, tag="to")
    assert pbring("produce", a, "--count", 1000, "--timeout", 10).rc == 0
    assert to.wait(30) == 0, to
    rd.cli("XGROUP", "CREATE", "ps", "g", "0")
    # 'old' got 10 and died; 'c' (this bridge's name) got 50 and died;
    # 'dead' got the next 50
    for consumer, n in (("old", 10), ("c", 50), ("dead", 50)):
        rd.cli("XREADGROUP", "GROUP", "g", consumer, "COUNT", n, "STREAMS",
               "ps", ">")
    # 'old's 10 and the first 10 of c's are trimmed away before it is back
    rd.cli("XTRIM", "ps", "MINID", _nth_id(rd, "ps", 20))
    time.sleep(0.05)
    chk = procs("consume", b, "--count", 980, "--quiet", "--timeout", 20,
                "--from", "oldest", tag="chk")
    time.sleep(0.2)
    r = pbring("bridge", "from-redis", "--redis", rd.url, "--stream", "ps",
               "--group", "g", "--consumer", "c", b, "--claim-idle", 10,
               "--timeout", 1, timeout=30)
    assert r.rc == 0, r
    assert "10 pending stream entries from" in r.err, r
    assert ("10 stream entries pending for other consumers were trimmed"
            in r.err), r
    assert "980 messages from" in r.err and "20 lost" in r.err, r
    assert chk.wait(30) == 0, chk
    assert "received 980" in chk.err and "duplicates 0" in chk.err, chk
    assert rd.cli("XPENDING", "ps", "g").split()[0] == "0"


def _nth_id(rd, key, n):
    """The id of entry n (0-based) of stream key."""
    out = rd.cli("EVAL", "return redis.call('XRANGE', KEYS[1], '-', '+', "
                 "'COUNT', ARGV[1])[tonumber(ARGV[1])][1]", 1, key, n + 1)
    return out.strip()


def test_from_redis_down_retries_and_sigterm_stops(pbring, procs, ring,
                                                   redis):
    b = ring("fdown")
    assert pbring("create", b).rc == 0
    port = free_port()
    frm = procs("bridge", "from-redis", "--redis",
                f"redis://127.0.0.1:{port}", "--stream", "fs", "--group",
                "g", "--consumer", "c", b, tag="from")
    time.sleep(0.9)
    lines = [ln for ln in frm.err.splitlines() if "retry" in ln]
    assert len(lines) >= 2 and all("refused" in ln.lower() for ln in lines)
    rd = redis(port=port)
    rd.cli("XADD", "fs", "*", "data", "x")
    deadline = time.monotonic() + 15
    while "entries-read\n1\n" not in rd.cli("XINFO", "GROUPS", "fs"):
        assert time.monotonic() < deadline, frm
        time.sleep(0.05)
    time.sleep(0.2)  # delivered: committed and acknowledged right after
    rd.stop()  # away again: it retries; SIGTERM ends the backoff at once
    time.sleep(0.5)
    t0 = time.monotonic()
    frm.p.terminate()
    assert frm.wait(10) == 143, frm
    assert time.monotonic() - t0 < 2
    assert "1 messages from" in frm.err, frm


def test_redelivered_entries_are_recognised(pbring, procs, ring, redis):
    """Entries committed, then delivered again (as after a kill between
    commit and XACK), are acknowledged without a second commit: the ring's
    source ids say they are in it."""
    rd = redis()
    a, b = ring("ra"), ring("rb")
    assert pbring("create", a, "--durable-readers").rc == 0
    assert pbring("create", b).rc == 0
    to = procs("bridge", "to-redis", a, "--redis", rd.url, "--stream", "rs",
               "--count", 100, tag="to")
    assert pbring("produce", a, "--count", 100, "--timeout", 10).rc == 0
    assert to.wait(30) == 0, to
    args = ("bridge", "from-redis", "--redis", rd.url, "--stream", "rs",
            "--group", "g", "--consumer", "c", b)
    r = pbring(*args, "--count", 100, timeout=30)
    assert r.rc == 0 and "100 messages from" in r.err, r
    # deliver the same 100 to 'c' again, unacknowledged
    rd.cli("XGROUP", "SETID", "rs", "g", "0")
    rd.cli("XREADGROUP", "GROUP", "g", "c", "COUNT", 100, "STREAMS", "rs",
           ">")
    assert rd.cli("XPENDING", "rs", "g").split()[0] == "100"
    r = pbring(*args, "--timeout", 0.5, timeout=30)
    assert r.rc == 0, r
    assert "0 messages from" in r.err and "(100 already in the ring" in r.err
    assert stat_json(pbring, b)["claimed"] == 100
    assert rd.cli("XPENDING", "rs", "g").split()[0] == "0"


def test_to_redis_skips_what_the_stream_has(pbring, procs, ring, redis):
    """A reader whose cursor is behind what the stream already holds of its
    ring (XADDed, killed before the release) sends only the rest."""
    a = ring("sk")
    assert pbring("create", a, "--durable-readers").rc == 0
    port = free_port()
    url = f"redis://127.0.0.1:{port}"
    # two durable readers at seq 0, detached (Redis is not there yet)
    for name in ("first", "second"):
        p = procs("bridge", "to-redis", a, "--redis", url, "--stream", "rs",
                  "--name", name, tag=name)
        deadline = time.monotonic() + 10
        while f"durable {name}" not in pbring("stat", a).out:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        p.p.kill()
        p.p.wait()
    assert pbring("produce", a, "--count", 100, "--timeout", 10).rc == 0
    rd = redis(port=port)
    r = pbring("bridge", "to-redis", a, "--redis", url, "--stream", "rs",
               "--name", "first", "--count", 50, timeout=30)
    assert r.rc == 0 and "resumed durable reader first" in r.err, r
    assert stream_seqs(rd, "rs") == list(range(50))
    # 'second' is still at seq 0: as a bridge killed after its XADDs
    r = pbring("bridge", "to-redis", a, "--redis", url, "--stream", "rs",
               "--name", "second", "--count", 100, timeout=30)
    assert r.rc == 0, r
    assert "50 messages to" in r.err and "(50 already there)" in r.err, r
    assert stream_seqs(rd, "rs") == list(range(100))
    for name in ("first", "second"):
        assert pbring("rm", a, "--reader", name).rc == 0
