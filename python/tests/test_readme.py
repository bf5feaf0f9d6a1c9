# SPDX-License-Identifier: MIT
"""The README's example runs as printed."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pbring

HERE = os.path.dirname(os.path.abspath(__file__))


def test_readme_example_runs():
    with open(os.path.join(HERE, "..", "README.md")) as f:
        text = f.read()
    code = re.search(r"## Example\n\n```python\n(.*?)```", text, re.S)
    assert code, "no example in README.md"
    p = subprocess.Popen([sys.executable, "-c", code.group(1)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        out, err = p.communicate(timeout=60)
    finally:
        pbring.unlink(f"example-{p.pid}", missing_ok=True)
    assert p.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == "pbring.demo.v1.DeviceEvent 0 0"
    assert lines[1] == "1"
    assert lines[2] == '{"id":"sensor-1","status":2,"seq":"2","blob":"AQI="}'
    assert lines[3] == '{"seq":"99"}'
