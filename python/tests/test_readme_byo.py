# SPDX-License-Identifier: MIT
"""The top README's Python example for a user's .proto runs as printed
("Bring your own .proto"): its reading_pb2 is generated here with protoc."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def test_readme_byo_python(tmp_path):
    if shutil.which("protoc") is None:
        pytest.fail("protoc is needed (./dev deps installs protobuf-compiler)")
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text[text.index("## Bring your own .proto"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "no Python block under 'Bring your own .proto' in README.md"
    proto = os.path.join(ROOT, "proto")
    subprocess.run(["protoc", "-I", proto, "-I", "/usr/include",
                    f"--python_out={tmp_path}",
                    "acme/telemetry/v1/common.proto",
                    "acme/telemetry/v1/reading.proto"], check=True)
    path = [str(tmp_path)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    p = subprocess.run([sys.executable, "-c", code.group(1)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["d-1 1.5"]
