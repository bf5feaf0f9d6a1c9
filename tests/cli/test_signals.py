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


def test_demo_stops_on_sigint_to_the_parent(pbring_path):
    p = subprocess.Popen([pbring_path, "demo", "--count", "100000000"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    try:
        first = p.stdout.readline()
        m = re.match(r"ring (demo-\d+): ", first)
        assert m, first
        ring = m.group(1)
        time.sleep(1.0)  # its children are well into 100 M messages
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=20)
        took = time.monotonic() - t0
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 130, err
    assert err.rstrip().endswith(f"pbring: {ring}: interrupted"), err
    assert took < 5, f"took {took:.1f} s"
    assert not pids_mentioning(ring), "a child of the demo still runs"
    assert not os.path.exists(shm_path(ring))
