# SPDX-License-Identifier: MIT
"""Signals sent to the command alone (not to its process group, as a
terminal's Ctrl-C is): `pbring demo` passes them on to its children.
The waits of produce and consume are tested in all three languages by
tests/scenarios/test_s9_signals.py."""
import os
import re
import signal
import subprocess
import time

from cliutil import shm_path


def pids_mentioning(name):
    out = subprocess.run(["pgrep", "-f", name], capture_output=True,
                         text=True).stdout
    return [int(x) for x in out.split()]


def interrupt_demo(pbring_path, send):
    """Start a 100 M message demo, let it run a second, call send(pid)
    and wait for it: returns (ring, returncode, stderr, seconds taken)."""
    p = subprocess.Popen([pbring_path, "demo", "--count", "100000000"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    try:
        first = p.stdout.readline()
        m = re.match(r"ring (demo-\d+): ", first)
        assert m, first
        time.sleep(1.0)  # its children are well into 100 M messages
        t0 = time.monotonic()
        send(p.pid)
        _, err = p.communicate(timeout=20)
        took = time.monotonic() - t0
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    return m.group(1), p.returncode, err, took


def test_demo_stops_on_sigint_to_the_parent(pbring_path):
    ring, rc, err, took = interrupt_demo(
        pbring_path, lambda pid: os.kill(pid, signal.SIGINT))
    assert rc == 130, err
    assert err.rstrip().endswith(f"pbring: {ring}: interrupted"), err
    assert took < 5, f"took {took:.1f} s"
    assert not pids_mentioning(ring), "a child of the demo still runs"
    assert not os.path.exists(shm_path(ring))


def test_demo_on_a_terminal_ctrl_c(pbring_path):
    """Ctrl-C on a terminal reaches the whole foreground group: the demo's
    children must still each stop once, cleanly, with their summaries."""
    ring, rc, err, _ = interrupt_demo(
        pbring_path, lambda pid: os.killpg(pid, signal.SIGINT))
    assert rc == 130, err
    assert re.search(r"^produce: \d+ messages from 1 producer", err,
                     re.M), err
    assert err.count("consume (gating): ") == 1, err
    assert err.count("consume (lossy): ") == 1, err
    assert not pids_mentioning(ring)
