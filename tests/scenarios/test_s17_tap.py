# SPDX-License-Identifier: MIT
"""Scenario 17: tap readers (FORMAT.md §9.5), the same in every language.

A tap maps the ring read-only, takes no entry and writes nothing, never
gates, and counts what it was lapped over. For each acting language L:

- alike: a gating consumer in L+2 takes 500 messages a producer in L+1
  sends; a tap in L then reads all 500 from the oldest, maps the ring
  `r--s`, is absent from stat, and its summary says "(tap)" with nothing
  lost.
- lapped: a tap in L is stopped (SIGSTOP) on a 16-slot ring while C sends
  2000 messages to a C gating consumer; the producer is never held back
  by the tap, and once resumed the tap reports received + lost = 2000.
- read permission only: the ring file is made 0440, so nobody may write
  it (root runs the commands without CAP_DAC_OVERRIDE, through setpriv,
  so that the mode binds it too); a gating consumer in L is refused and
  the tap in L reads the messages. (Each language's own tests also read a
  0640 ring as another user, uid 65534 in the owner's group.)

ids: L.
"""
import os
import subprocess
import time

import pytest

from scenlib import ACTING, SHM_DIR, rotate


def shm_perms(pid, ring):
    """The permissions of @pid's mapping of @ring, e.g. 'r--s', or None."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                if line.rstrip().endswith(f"{SHM_DIR}/pbring.{ring}"):
                    return line.split()[1]
    except FileNotFoundError:
        pass
    return None


def wait_mapped(actor, ring, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        perms = shm_perms(actor.pid, ring)
        if perms:
            return perms
        if not actor.alive():
            pytest.fail(f"{actor.label} exited before it mapped {ring}",
                        pytrace=False)
        time.sleep(0.01)
    pytest.fail(f"{actor.label} did not map {ring}", pytrace=False)


def pids(scen, ring):
    return {p["pid"] for p in scen.stat(ring)["participants"]}


@pytest.mark.parametrize("lang", [pytest.param(x, id=x) for x in ACTING])
def test_tap_alike(scen, lang):
    ring = scen.ring("tap", slots=1024, slot_size=256)
    rd = scen.spawn(rotate(lang, 2), "gating", "consume", ring, "--count",
                    500, "--quiet", "--timeout", 20)
    scen.wait_joined(ring, rd, "gating")
    p = scen.spawn(rotate(lang, 1), "producer", "produce", ring, "--count",
                   500, "--size", 16, "--timeout", 20)
    assert p.wait() == 0, p.err
    assert rd.wait() == 0, rd.err
    tap = scen.spawn(lang, "tap", "consume", ring, "--tap", "--from",
                     "oldest", "--timeout", 1, "--quiet")
    assert wait_mapped(tap, ring) == "r--s", "a tap maps read-only"
    assert tap.pid not in pids(scen, ring), "a tap takes no entry"
    assert tap.wait() == 0, tap.err
    sm = tap.summary
    assert sm is not None and sm["mode"] == "tap", tap.err
    assert (sm.get("received"), sm.get("lost"), sm.get("crc errors"),
            sm.get("content errors")) == (500, 0, 0, 0), sm


@pytest.mark.parametrize("lang", [pytest.param(x, id=x) for x in ACTING])
def test_tap_lapped(scen, lang):
    ring = scen.ring("taplap", slots=16, slot_size=256)
    tap = scen.spawn(lang, "tap", "consume", ring, "--tap", "--timeout", 2,
                     "--quiet")
    wait_mapped(tap, ring)
    time.sleep(0.2)  # past the tap's start, waiting at the claim
    tap.stop()
    rd = scen.spawn("c", "gating", "consume", ring, "--count", 2000,
                    "--quiet", "--timeout", 20)
    scen.wait_joined(ring, rd, "gating")
    p = scen.spawn("c", "producer", "produce", ring, "--count", 2000,
                   "--size", 16, "--timeout", 20)
    assert p.wait() == 0, f"the stopped {lang} tap held the producer back"
    assert rd.wait() == 0, rd.err
    tap.cont()
    assert tap.wait() == 0, tap.err
    sm = tap.summary
    assert sm is not None and sm["mode"] == "tap", tap.err
    assert sm.get("lost", 0) > 0, sm
    assert sm["received"] + sm["lost"] == 2000, sm


@pytest.mark.parametrize("lang", [pytest.param(x, id=x) for x in ACTING])
def test_tap_read_permission_only(scen, lang):
    ring = scen.ring("tapperm", slots=64, slot_size=256)
    p = scen.run("c", "produce", ring, "--count", 20, "--size", 16,
                 "--no-wait")
    assert p.returncode == 0, p.stderr
    os.chmod(f"{SHM_DIR}/pbring.{ring}", 0o440)
    pre = []
    if os.geteuid() == 0:  # root ignores the mode unless it drops these
        caps = "-dac_override,-dac_read_search"
        pre = ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]

    def run(*args):
        return subprocess.run(pre + scen.cmd[lang] + [str(a) for a in args],
                              capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)

    g = run("consume", ring, "--any-owner", "--count", 1, "--timeout", 1)
    assert g.returncode == 1 and "permission denied" in g.stderr, (
        g.returncode, g.stderr)
    t = run("consume", ring, "--tap", "--from", "oldest", "--count", 20,
            "--timeout", 5, "--quiet")
    assert t.returncode == 0, t.stderr
    assert "consume (tap): received 20, lost 0" in t.stderr, t.stderr
