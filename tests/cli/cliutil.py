# SPDX-License-Identifier: MIT
"""Fixtures and helpers for the `pbring` command-line tests.

The binary comes from $PBRING_BIN (ctest sets it to the built pbring_cli).
Every test gets its own ring names from the `ring` factory; each name's
/dev/shm object is removed in a finalizer, and every background process a
test starts through `procs` is killed in one, even when the test fails.
"""
import json
import mmap
import os
import signal
import struct
import subprocess
import time
import uuid

import pytest

SHM_DIR = "/dev/shm"
DEMO_TYPE = "pbring.demo.v1.DeviceEvent"

# Superblock offsets (include/pbring/layout.h, docs/FORMAT.md section 3).
SB_MAGIC = 0x000
SB_MAJOR = 0x00C
SB_SLOT_COUNT = 0x030
SB_SLOT_SIZE = 0x034
SB_MAX_PRODUCERS = 0x038
SB_MAX_READERS = 0x03C
SB_SCHEMA_OFF = 0x060
SB_SLOTS_OFF = 0x070
SB_SCHEMA_HASH = 0x088
SB_SCHEMA_LEN = 0x090
SB_MSG_TYPE = 0x140
SB_MSG_TYPE_LEN = 192
SLOT_HDR = 64  # payload at slot offset 0x40

# A run of the CLI that should finish promptly; anything slower is a hang.
RUN_TIMEOUT = 60


def pbring_bin():
    path = os.environ.get("PBRING_BIN")
    if not path:
        pytest.exit("PBRING_BIN is not set: point it at the built pbring "
                    "binary (ctest sets it)", returncode=4)
    if not os.access(path, os.X_OK):
        pytest.exit(f"PBRING_BIN={path} is not an executable", returncode=4)
    return path


@pytest.fixture(scope="session")
def pbring_path():
    return pbring_bin()


class Result:
    def __init__(self, cp, elapsed):
        self.rc = cp.returncode
        self.out = cp.stdout
        self.err = cp.stderr
        self.elapsed = elapsed

    @property
    def err_lines(self):
        return self.err.splitlines()

    def __repr__(self):
        return (f"Result(rc={self.rc}, elapsed={self.elapsed:.3f}, "
                f"out={self.out[-2000:]!r}, err={self.err[-2000:]!r})")


@pytest.fixture
def pbring(pbring_path):
    """pbring(*args, timeout=..., **popen_kwargs) -> Result (text mode)."""

    def run(*args, timeout=RUN_TIMEOUT, **kw):
        t0 = time.monotonic()
        cp = subprocess.run([pbring_path, *map(str, args)],
                            capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL, **kw)
        return Result(cp, time.monotonic() - t0)

    return run


def shm_path(name):
    return os.path.join(SHM_DIR, "pbring." + name)


@pytest.fixture
def ring():
    """ring() -> a fresh, unused ring name; removed at teardown."""
    names = []

    def make(tag="r"):
        name = f"clit-{os.getpid()}-{tag}-{uuid.uuid4().hex[:8]}"
        assert len(name) <= 63
        names.append(name)
        return name

    yield make
    for name in names:
        try:
            os.unlink(shm_path(name))
        except FileNotFoundError:
            pass


def without_waiting(err):
    """stderr of a produce run without its "waiting for a gating reader"
    line: a consumer started alongside may attach after it looked."""
    return "".join(line for line in err.splitlines(keepends=True)
                   if not line.startswith("pbring: waiting for a gating "
                                          "reader on "))


class Bg:
    """A background pbring process whose output goes to files."""

    def __init__(self, pbring_path, args, tmp_path, tag):
        self.args = [str(a) for a in args]
        self.out_path = tmp_path / f"{tag}.out"
        self.err_path = tmp_path / f"{tag}.err"
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.p = subprocess.Popen([pbring_path, *self.args],
                                  stdout=self._out, stderr=self._err,
                                  stdin=subprocess.DEVNULL)
        self.pid = self.p.pid
        self.rc = None

    def wait(self, timeout=RUN_TIMEOUT):
        self.rc = self.p.wait(timeout=timeout)
        self._out.close()
        self._err.close()
        return self.rc

    @property
    def out(self):
        return self.out_path.read_text()

    @property
    def err(self):
        return self.err_path.read_text()

    def kill(self):
        if self.p.poll() is None:
            try:
                self.p.send_signal(signal.SIGCONT)
                self.p.kill()
            except ProcessLookupError:
                pass
            self.p.wait(timeout=10)
        for f in (self._out, self._err):
            if not f.closed:
                f.close()

    def __repr__(self):
        return (f"Bg({self.args}, rc={self.rc}, "
                f"err={self.err[-2000:]!r})")


@pytest.fixture
def procs(pbring_path, tmp_path):
    """procs(*args) starts pbring in the background; all killed at teardown."""
    started = []

    def start(*args, tag=None):
        bg = Bg(pbring_path, args, tmp_path, tag or f"bg{len(started)}")
        started.append(bg)
        return bg

    yield start
    for bg in started:
        bg.kill()


def stat_json(pbring, name):
    r = pbring("stat", name, "--json")
    assert r.rc == 0, r
    return json.loads(r.out)


def wait_for(pbring, name, pred, timeout=10.0, what="condition"):
    """Poll `stat --json` until pred(stat) holds; return that stat."""
    deadline = time.monotonic() + timeout
    while True:
        st = stat_json(pbring, name)
        if pred(st):
            return st
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {st}")
        time.sleep(0.02)


def wait_reader(pbring, name, pid, role="gating"):
    """Wait until process pid is attached to ring name as a live reader."""
    return wait_for(
        pbring, name,
        lambda st: any(p["role"] == role and p["pid"] == pid and p["alive"]
                       for p in st["participants"]),
        what=f"{role} reader pid {pid} on {name}")


class Shm:
    """A writable mapping of a ring's /dev/shm object."""

    def __init__(self, name):
        fd = os.open(shm_path(name), os.O_RDWR)
        try:
            self.m = mmap.mmap(fd, 0)
        finally:
            os.close(fd)

    def u16(self, off):
        return struct.unpack_from("<H", self.m, off)[0]

    def u32(self, off):
        return struct.unpack_from("<I", self.m, off)[0]

    def u64(self, off):
        return struct.unpack_from("<Q", self.m, off)[0]

    def put(self, fmt, off, *vals):
        struct.pack_into(fmt, self.m, off, *vals)

    def close(self):
        self.m.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def summary_fields(line):
    """'consume (gating): received 5, lost 0, ...' -> {'received': 5, ...}."""
    out = {}
    for part in line.split(": ", 1)[1].split(", "):
        words = part.split(" ")
        for i, w in enumerate(words):
            if w.isdigit() and i > 0:
                out[" ".join(words[:i])] = int(w)
                break
    return out


def consume_summary(err, mode="gating"):
    """The consumer's summary line in stderr, parsed."""
    lines = [l for l in err.splitlines()
             if l.startswith(f"consume ({mode}): ")]
    assert len(lines) == 1, err
    return summary_fields(lines[0])
