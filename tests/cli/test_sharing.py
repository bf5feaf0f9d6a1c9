# SPDX-License-Identifier: MIT
"""Rings shared across users (SECURITY.md): a ring owned by another user
is refused unless --any-owner says to accept it, by every subcommand that
attaches; file permissions still decide who may open it at all; and two
services running as different users share a ring through a group.

Giving a ring to another user, or running as one, takes root: these tests
need it (the suite runs as root in CI and in ./dev test)."""
import json
import os
import subprocess

import pytest

from cliutil import RUN_TIMEOUT, consume_summary, shm_path, wait_reader

NOBODY = 65534  # nobody:nogroup on Debian

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="giving a ring to another user needs root")


def as_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def refused(name, uid):
    return (f"pbring: {name}: ring owned by another user (uid {uid}): use "
            "--any-owner to accept it\n")


ATTACHING = [
    ["produce", "{r}", "--no-wait", "--count", "1"],
    ["consume", "{r}", "--count", "1", "--timeout", "0.2"],
    ["stat", "{r}"],
    ["schema", "{r}"],
]


@pytest.mark.parametrize("args", ATTACHING, ids=lambda a: a[0])
def test_other_owner_refused_then_accepted(pbring, ring, args):
    name = ring()
    assert pbring("create", name, "--slots", 16).rc == 0
    os.chown(shm_path(name), NOBODY, -1)
    argv = [a.format(r=name) for a in args]
    r = pbring(*argv)
    assert (r.rc, r.out, r.err) == (1, "", refused(name, NOBODY))
    r = pbring(*argv, "--any-owner")
    # accepted: what remains is the subcommand's own verdict (consume
    # times out: nothing was sent)
    assert "owned by another user" not in r.err, r
    assert r.rc == (1 if argv[0] == "consume" else 0), r


def test_any_owner_round_trip(pbring, ring):
    name = ring()
    assert pbring("create", name, "--slots", 16).rc == 0
    os.chown(shm_path(name), NOBODY, -1)
    r = pbring("produce", name, "--any-owner", "--no-wait", "--count", 3)
    assert r.rc == 0, r
    r = pbring("consume", name, "--any-owner", "--json", "--count", 3,
               "--timeout", 5)
    assert r.rc == 0, r
    assert len(r.out.splitlines()) == 3
    assert consume_summary(r.err)["received"] == 3


def test_any_owner_never_takes_a_world_writable_ring(pbring, ring):
    name = ring()
    assert pbring("create", name).rc == 0
    os.chown(shm_path(name), NOBODY, -1)
    os.chmod(shm_path(name), 0o666)
    r = pbring("consume", name, "--any-owner", "--timeout", "0.1")
    assert (r.rc, r.err) == (1, f"pbring: {name}: ring writable by everyone "
                                "(mode 0666): refused (see SECURITY.md)\n")


def test_services_as_different_users(pbring, pbring_path, ring, tmp_path):
    """root makes the ring for a group (--mode 0660, group nogroup); a
    consumer running as nobody is refused without --any-owner and reads
    everything with it; then nobody produces and root (the owner) reads."""
    n = 200
    name = ring()
    assert pbring("create", name, "--slots", 64, "--mode", "0660").rc == 0
    os.chown(shm_path(name), -1, NOBODY)
    r = pbring("consume", name, "--count", 1, "--timeout", "0.2",
               preexec_fn=as_nobody)
    assert (r.rc, r.out, r.err) == (1, "", refused(name, 0))
    err = tmp_path / "c.err"
    with open(err, "w") as ef:
        c = subprocess.Popen([pbring_path, "consume", name, "--any-owner",
                              "--quiet", "--count", str(n), "--timeout", "10"],
                             stdout=subprocess.DEVNULL, stderr=ef,
                             stdin=subprocess.DEVNULL, preexec_fn=as_nobody)
    try:
        wait_reader(pbring, name, c.pid)
        p = pbring("produce", name, "--count", n, "--size", 32)
        assert p.rc == 0, p
        assert c.wait(timeout=RUN_TIMEOUT) == 0, err.read_text()
    finally:
        if c.poll() is None:
            c.kill()
            c.wait()
    s = consume_summary(err.read_text())
    assert (s["received"], s["gaps"], s["crc errors"]) == (n, 0, 0)
    # the other way round: nobody produces, the owner reads
    r = pbring("produce", name, "--any-owner", "--no-wait", "--count", 5,
               preexec_fn=as_nobody)
    assert r.rc == 0, r
    r = pbring("consume", name, "--json", "--timeout", "0.3")
    assert r.rc == 0, r
    last = [json.loads(l) for l in r.out.splitlines()[-5:]]
    assert [int(m.get("seq", 0)) for m in last] == list(range(5)), r.out
    assert len({m["id"] for m in last}) == 1


def test_any_owner_does_not_bypass_permissions(pbring, ring):
    """--any-owner only lifts the owner check: without read and write
    permission (mode 0600, another owner) the system still says no."""
    name = ring()
    assert pbring("create", name).rc == 0  # mode 0600, owner root
    r = pbring("consume", name, "--any-owner", "--timeout", "0.1",
               preexec_fn=as_nobody)
    assert (r.rc, r.out, r.err) == (1, "", f"pbring: {name}: permission "
                                           "denied\n")
