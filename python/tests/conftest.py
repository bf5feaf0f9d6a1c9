# SPDX-License-Identifier: MIT
"""Fixtures of the pbring Python tests.

The package under test is whatever `import pbring` finds: in CI, the one
pip installed into a fresh virtualenv (with its bundled libpbring.so).
Peers for the interop tests:

- C: the `pbring` command from $PBRING_BIN (ctest and .ci/run set it);
- Go: $PBRING_GO_BIN, or `go build ./cmd/pbring-go` in the repository's go/
  directory when `go` and that directory are there;
- Python: `python -m pbring` with this interpreter.

A peer that is missing makes its tests skip, with the reason.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from typing import Callable, Iterator, List, Optional

import pytest

import pbring

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.environ.get("PBRING_SOURCE_DIR",
                      os.path.abspath(os.path.join(HERE, "..", "..")))


@pytest.fixture
def ring_name(request) -> Iterator[Callable[[], str]]:
    """Factory of fresh ring names; each ring is removed after the test."""
    names: List[str] = []

    def make() -> str:
        n = f"pyt-{os.getpid()}-{uuid.uuid4().hex[:10]}"
        names.append(n)
        return n

    yield make
    for n in names:
        pbring.unlink(n, missing_ok=True)


@pytest.fixture
def name(ring_name) -> str:
    return ring_name()


def _c_bin() -> Optional[str]:
    path = os.environ.get("PBRING_BIN")
    if path and os.access(path, os.X_OK):
        return path
    return None


@pytest.fixture(scope="session")
def c_bin() -> str:
    path = _c_bin()
    if not path:
        pytest.skip("C peer unavailable: set PBRING_BIN to the built "
                    "`pbring` command (cmake --build BUILD; BUILD/pbring)")
    return path


_go_state: dict = {}


def go_bin(tmp_root: str) -> str:
    """Path of the Go `pbring-go` command, built once per session; raises
    pytest.skip.Exception with the reason when it cannot be had."""
    if "bin" in _go_state:
        return _go_state["bin"]
    if "skip" in _go_state:
        pytest.skip(_go_state["skip"])
    env_bin = os.environ.get("PBRING_GO_BIN")
    reason = None
    out = None
    if env_bin:
        if os.access(env_bin, os.X_OK):
            out = env_bin
        else:
            reason = f"PBRING_GO_BIN={env_bin} is not an executable"
    else:
        go = shutil.which("go")
        src = os.path.join(REPO, "go")
        if not go:
            reason = "Go peer unavailable: no `go` command on PATH"
        elif not os.path.isdir(os.path.join(src, "cmd", "pbring-go")):
            reason = (f"Go peer unavailable: {src}/cmd/pbring-go does not "
                      "exist (yet)")
        else:
            out = os.path.join(tmp_root, "pbring-go")
            try:
                cp = subprocess.run([go, "build", "-o", out,
                                     "./cmd/pbring-go"], cwd=src,
                                    capture_output=True, text=True,
                                    timeout=600)
            except subprocess.TimeoutExpired:
                cp = None
            if cp is None or cp.returncode != 0:
                tail = "timed out" if cp is None else \
                    (cp.stderr.strip().splitlines() or ["?"])[-1]
                reason = ("Go peer unavailable: `go build ./cmd/pbring-go` "
                          f"failed: {tail}")
                out = None
    if reason:
        _go_state["skip"] = reason
        pytest.skip(reason)
    _go_state["bin"] = out
    return out


@pytest.fixture(scope="session")
def go_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("go"))


PY_CMD = [sys.executable, "-m", "pbring"]


PROTO_DIR = os.path.join(REPO, "proto")
ACME_READING = "acme/telemetry/v1/reading.proto"
ACME_COMMON = "acme/telemetry/v1/common.proto"
# protoc's well-known types (Debian: /usr/include/google/protobuf/*.proto)
WKT_INCLUDE = "/usr/include"


def protoc_bin() -> str:
    p = shutil.which("protoc")
    if not p:
        pytest.skip("protoc not found (Debian package protobuf-compiler)")
    return p


def protoc_set(tmp: str, includes: List[str], *files: str) -> bytes:
    """`protoc -I... --include_imports --descriptor_set_out` of @files
    (written into the directory @tmp)."""
    out = os.path.join(str(tmp), f"set-{uuid.uuid4().hex[:8]}.fds")
    args = [protoc_bin()] + [f"-I{d}" for d in includes] + \
        ["--include_imports", f"--descriptor_set_out={out}"] + list(files)
    cp = subprocess.run(args, capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    with open(out, "rb") as f:
        return f.read()


class Acme:
    """acme.telemetry.v1 compiled by protoc: the generated Python modules
    (imported) and protoc's own descriptor set of reading.proto."""

    def __init__(self, gen: str) -> None:
        protoc = protoc_bin()
        subprocess.run([protoc, f"-I{PROTO_DIR}", f"-I{WKT_INCLUDE}",
                        f"--python_out={gen}", ACME_COMMON, ACME_READING],
                       check=True, capture_output=True)
        sys.path.insert(0, gen)
        from acme.telemetry.v1 import common_pb2, reading_pb2
        self.gen = gen
        self.common_pb2 = common_pb2
        self.reading_pb2 = reading_pb2
        self.Reading = reading_pb2.Reading
        self.Location = common_pb2.Location
        self.fds = protoc_set(gen, [PROTO_DIR, WKT_INCLUDE], ACME_READING)


@pytest.fixture(scope="session")
def acme(tmp_path_factory) -> Acme:
    return Acme(str(tmp_path_factory.mktemp("acme-gen")))
