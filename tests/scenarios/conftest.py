# SPDX-License-Identifier: MIT
"""pytest entry of the scenario suite: the `scen` fixture (scenlib.py)."""
import os
import signal

import pytest

from scenlib import TEST_TIMEOUT, Scenario


def _alarm(signum, frame):
    raise TimeoutError(f"scenario exceeded SCEN_TEST_TIMEOUT="
                       f"{TEST_TIMEOUT:g} s")


@pytest.fixture
def scen(tmp_path, request):
    s = Scenario(tmp_path, request.node.nodeid)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TEST_TIMEOUT)
    try:
        yield s
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        s.teardown()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    scen = getattr(item, "funcargs", {}).get("scen")
    if rep.when == "call" and rep.failed and isinstance(scen, Scenario):
        # The actors as they were when the test failed.
        try:
            text = scen.explain()
        except Exception as e:  # never hide the failure itself
            text = f"(could not describe the actors: {e})"
        rep.sections.append(("scenario actors", text))
    # SCEN_RESULTS: one "nodeid outcome" line per test, for run.sh's loop.
    path = os.environ.get("SCEN_RESULTS")
    if path and (rep.when == "call" or (rep.when == "setup" and
                                         not rep.passed)):
        with open(path, "a") as f:
            f.write(f"{item.nodeid} {rep.outcome}\n")
