# SPDX-License-Identifier: MIT
"""Scenario 1: an ungated overshoot must not be recovered (FORMAT §8.2).

A multi-producer claim may overshoot the gating limit: the fetch-add comes
before the wait for space. Its producer dies before it marks the slot BUSY,
so the slot still holds DONE(s - N), which a stopped gating reader G has not
read yet. Whoever finds the dead claim -- a producer that takes the dead
entry (§8.3), a lossy reader or a gating reader stuck at s -- must leave
the slot alone while s is not before the gating limit: turning it into
ABANDONED(s) would make G see itself lapped and lose message s - N.

ids: RECOVERER_LANG-ROLE; the slow reader G's language rotates with them
(see G_LANG). SCEN_LOOPS=N repeats every case N times (run.sh's
acceptance loop).
"""
import pytest

from scenlib import ACTING, loops, rotate

ROLES = ("producer", "lossy", "gating")
N = 16


def g_lang(lang, role):
    """The slow gating reader's language: every (recoverer, G) pairing
    with a different G appears, plus same-language ones."""
    return rotate(lang, 1 + ROLES.index(role))


CASES = [pytest.param(lang, role, i, id=f"{lang}-{role}" +
                      (f"-{i}" if loops() > 1 else ""))
         for i in range(loops()) for lang in ACTING for role in ROLES]


@pytest.mark.parametrize("lang,role,loop", CASES)
def test_ungated_overshoot(scen, lang, role, loop):
    ring = scen.ring("ovs", slots=N)
    glang = g_lang(lang, role)
    scen.note(f"recoverer {lang} {role}, slow gating reader G in {glang}")

    # G joins first (cursor 0) and is stopped before anything is sent.
    g = scen.spawn(glang, "G", "consume", ring, "--from", "oldest",
                   "--count", N, "--quiet", "--timeout", 30)
    scen.wait_joined(ring, g, "gating")
    g.stop()

    fill = scen.spawn("c", "fill", "produce", ring, "--count", N,
                      "--timeout", 5)
    assert fill.wait() == 0, "the C producer could not fill the ring"
    g_at = [x["position"] for x in scen.stat(ring)["participants"]
            if x["pid"] == g.pid]
    assert g_at == [0], (f"G should be stopped at cursor 0 but is at {g_at} "
                         f"(process state {g.proc_state()})")
    assert scen.slot(ring, 0) == "DONE 0"

    # A producer claims s = N (slot 0 still holds DONE(0), unread by G),
    # overshooting the gating limit N, and dies before BUSY.
    forge, s = scen.forge(ring, "claim-mp")
    assert s == N, f"forge claimed {s}, expected {N}"
    forge.kill()

    problems = []  # collected, so that G's verdict is always reported
    if role == "producer":
        # Takes the dead entry and reaps it (§8.3): recover(16) must wait.
        # Its own message cannot go out while G is stopped: it times out.
        r = scen.spawn(lang, "recoverer", "produce", ring, "--count", 1,
                       "--timeout", 0.5)
        rc = r.wait()
        st = scen.stat(ring)
        if rc == 0:
            problems.append("the producer sent a message into a ring whose "
                            "gating reader is stopped at 0")
        if "no gating reader" in r.err:
            problems.append(f"the producer saw no gating reader although G "
                            f"is stopped, not dead; stat right after: {st}")
        if st["producers_reaped"] < 1:
            problems.append("the producer did not reap the dead producer "
                            "entry (producers_reaped 0)")
    else:
        # Reads 1..15 (the oldest it can see), then sits at 16 for the
        # whole --timeout (>> the 20 ms after which it runs recover(16)).
        args = ["consume", ring, "--from", "oldest", "--quiet",
                "--timeout", 0.4]
        if role == "lossy":
            args.append("--lossy")
        r = scen.spawn(lang, "recoverer", *args)
        rc = r.wait()
        sm = r.summary or {}
        if not sm:
            problems.append("no consume summary from the reader")
        if rc != 0:
            problems.append(f"the reader failed (exit {rc})")
        if sm.get("received") != N - 1:
            problems.append(f"the reader joining at the oldest received "
                            f"{sm.get('received')} messages, expected "
                            f"{N - 1} (1..15)")
        if sm.get("abandoned") != 0:
            problems.append(f"the reader counted {sm.get('abandoned')} "
                            f"abandoned")

    got = scen.slot(ring, N)
    if got != "DONE 0":
        problems.append(
            f"slot of sequence {N} reads '{got}', expected 'DONE 0': {N} was "
            f"recovered while the gating reader G had not read 0 (it is not "
            f"before the gating limit, FORMAT §8.2)")
    ab = scen.stat(ring)["abandoned"]
    if ab != 0:
        problems.append(f"ring counter abandoned {ab}, want 0")

    g.cont()
    grc, hung = g.finish(timeout=5)
    sm = g.summary or {}
    if hung:
        problems.append(f"G ({glang}) did not finish within 5 s of SIGCONT "
                        f"(interrupted)")
    if (grc, sm.get("received"), sm.get("lost"), sm.get("abandoned")) != \
            (0, N, 0, 0):
        problems.append(
            f"G ({glang}): exit {grc}, received {sm.get('received')}, lost "
            f"{sm.get('lost')}, abandoned {sm.get('abandoned')}; want exit 0,"
            f" received {N}, lost 0, abandoned 0")
    assert not problems, (f"recoverer {lang} {role}, G {glang}:\n  - " +
                          "\n  - ".join(problems))
