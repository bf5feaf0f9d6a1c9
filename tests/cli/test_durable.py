# SPDX-License-Identifier: MIT
"""Durable readers in the CLI (format 1.3, FORMAT.md §9.6): `create
--durable-readers`, `consume --durable NAME` (created / resumed, said on
stderr), `stat` and `top` showing the name and "detached", a killed
consumer's reader holding producers back until it is resumed, and
`rm RING --reader NAME` dropping it; one-line errors."""
import json
import signal

from cliutil import consume_summary, stat_json, wait_for


def seqs(out):
    """The demo seq of each --json line (one producer)."""
    return [int(json.loads(line).get("seq", 0)) for line in out.splitlines()]


def durable_of(st, name):
    rs = [p for p in st["participants"] if p.get("durable") == name]
    assert len(rs) == 1, st
    return rs[0]


def test_create_flag_and_stat(pbring, ring):
    name = ring()
    assert pbring("create", name, "--durable-readers", "--slots", 8).rc == 0
    st = stat_json(pbring, name)
    assert st["format"] == "1.3" and st["durable_readers"] is True, st
    r = pbring("stat", name)
    assert "durable_readers true" in r.out, r
    plain = ring()
    assert pbring("create", plain).rc == 0
    assert "durable_readers" not in stat_json(pbring, plain)
    assert "durable_readers" not in pbring("stat", plain).out


def test_resume_after_exit_and_kill(pbring, ring, procs):
    name = ring()
    assert pbring("create", name, "--durable-readers", "--slots", 8,
                  "--slot-size", 256).rc == 0
    c = procs("consume", name, "--durable", "bridge", "--count", 3,
              "--json", "--timeout", 10)
    wait_for(pbring, name,
             lambda st: any(p.get("durable") == "bridge" and p["alive"]
                            for p in st["participants"]),
             what="durable reader bridge")
    # 40 messages through 8 slots: the producer needs the reader to go on
    # slow enough that the second consumer is killed well before the end
    p = procs("produce", name, "--count", 40, "--rate", 20, "--timeout", 20)
    assert c.wait() == 0, c
    assert "durable reader bridge created at seq 0" in c.err, c.err
    assert seqs(c.out) == [0, 1, 2]
    # detached at 3: stat and top name it; the producer waits for it
    st = wait_for(pbring, name, lambda st: st["claimed"] >= 11,
                  what="the producer to fill the ring")
    r = durable_of(st, "bridge")
    assert (r["detached"], r["alive"], r["position"]) == (True, False, 3), st
    assert "durable bridge, detached true" in pbring("stat", name).out
    top = pbring("top", "--once", "--interval", 0.1, name)
    line = [l for l in top.out.splitlines() if l.startswith(name)]
    assert len(line) == 2 and any(
        " durable " in l and " detached " in l and l.endswith(" bridge")
        for l in line), top.out
    assert stat_json(pbring, name)["claimed"] == 11  # still blocked
    # a second consumer, killed while it holds messages
    k = procs("consume", name, "--durable", "bridge", "--json",
              "--timeout", 10)
    wait_for(pbring, name,
             lambda st: durable_of(st, "bridge")["position"] >= 10,
             what="the second consumer to read")
    k.p.send_signal(signal.SIGKILL)
    k.wait()
    assert "durable reader bridge resumed at seq 3" in k.err, k.err
    released = durable_of(stat_json(pbring, name), "bridge")["position"]
    assert 10 <= released < 40, released
    # the third one resumes at the dead one's cursor and gets the rest
    z = procs("consume", name, "--durable", "bridge", "--json",
              "--count", 40 - released, "--timeout", 10)
    assert z.wait() == 0, z
    assert p.wait() == 0, p
    assert f"durable reader bridge resumed at seq {released}" in z.err
    # exactly what the killed one had not released, in order
    assert seqs(z.out) == list(range(released, 40))
    assert consume_summary(z.err)["gaps"] == 0


def test_drop_and_errors(pbring, ring, procs):
    name = ring()
    assert pbring("create", name, "--durable-readers", "--slots", 4).rc == 0
    c = procs("consume", name, "--durable", "d1", "--quiet")
    wait_for(pbring, name,
             lambda st: any(p.get("durable") == "d1" and p["alive"]
                            for p in st["participants"]),
             what="durable reader d1")
    r = pbring("consume", name, "--durable", "d1", "--timeout", 0.1)
    assert r.rc == 1 and r.err_lines == [
        f"pbring: {name}: durable reader d1 is in use by a live process "
        "(or every reader entry is taken)"], r
    r = pbring("rm", name, "--reader", "d1")
    assert r.rc == 1 and r.err_lines == [
        f"pbring: {name}: durable reader d1 is in use by a live process; "
        "not dropped (stop it first)"], r
    c.p.send_signal(signal.SIGTERM)
    c.wait()
    r = pbring("rm", name, "--reader", "d1")
    assert r.rc == 0 and r.err == "", r
    assert stat_json(pbring, name)["participants"] == []
    r = pbring("rm", name, "--reader", "d1")
    assert r.rc == 1 and r.err_lines == [
        f"pbring: {name}: no durable reader d1"], r
    # the ring itself is still there
    assert pbring("stat", name).rc == 0


def test_usage_errors(pbring, ring):
    name = ring()
    assert pbring("create", name, "--slots", 4).rc == 0
    r = pbring("consume", name, "--durable", "x", "--timeout", 0.1)
    assert r.rc == 1 and r.err_lines == [
        f"pbring: {name}: ring has no durable readers (create it with "
        "--durable-readers)"], r
    r = pbring("rm", name, "--reader", "x")
    assert r.rc == 1 and r.err_lines == [
        f"pbring: {name}: ring has no durable readers"], r
    for args in (["--durable", "a b"], ["--durable", "x" * 32],
                 ["--durable", "x", "--lossy"], ["--durable", "x", "--tap"]):
        r = pbring("consume", name, *args)
        assert r.rc == 2 and len(r.err_lines) == 1, (args, r)
    for args in (["--reader", "a/b", name], ["--reader", "x", name, name],
                 ["--reader", "x", "--force", name]):
        r = pbring("rm", *args)
        assert r.rc == 2 and len(r.err_lines) == 1, (args, r)
    assert pbring("stat", name).rc == 0  # none of these removed it


def test_produce_sends_for_a_detached_reader(pbring, ring):
    """A detached durable reader counts as the gating reader produce waits
    for: what it sends is kept for it."""
    name = ring()
    assert pbring("create", name, "--durable-readers", "--slots", 8).rc == 0
    r = pbring("consume", name, "--durable", "later", "--count", 1,
               "--timeout", 0.1)
    # created, then detached at 0 (it timed out waiting: exit 1)
    assert r.rc == 1 and "created at seq 0" in r.err, r
    r = pbring("produce", name, "--count", 5, "--timeout", 2)
    assert r.rc == 0 and "waiting" not in r.err, r
    r = pbring("consume", name, "--durable", "later", "--json", "--count", 5,
               "--timeout", 2)
    assert r.rc == 0 and seqs(r.out) == [0, 1, 2, 3, 4], r
