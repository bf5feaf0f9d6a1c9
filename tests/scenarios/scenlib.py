# SPDX-License-Identifier: MIT
"""Helpers of the cross-language scenario suite (README.md).

Actors are the three command lines, which share flags and summary formats:

  c   $PBRING_BIN                      (the C `pbring`; also create/stat/rm)
  go  $PBRING_GO                       (go/cmd/pbring-go)
  py  $PBRING_PYTHON -m pbring         (the Python package in a venv)

and $PBRING_FORGE (tests/scenarios/forge.c) plays dead producers. run.sh
sets all four. Every ring a test makes is removed, and every process it
starts is SIGCONTed and SIGKILLed, in the `scen` fixture's teardown, even
when the test fails; a failing test prints every actor's command line,
exit status and stderr.
"""
import json
import os
import re
import signal
import subprocess
import time
import uuid

import pytest

LANGS = ("c", "go", "py")
# The acting languages the scenarios are parametrized over (SCEN_LANGS);
# peers rotate through all of LANGS regardless.
ACTING = tuple(x for x in LANGS
               if x in os.environ.get("SCEN_LANGS", " ".join(LANGS)).split())
SHM_DIR = "/dev/shm"

# No single wait in a scenario may take longer than this.
WAIT = 20.0
# Nor a whole test (SIGALRM; each test's own waits are much shorter).
TEST_TIMEOUT = float(os.environ.get("SCEN_TEST_TIMEOUT", "120"))


def _need(var, what):
    path = os.environ.get(var)
    if not path:
        pytest.exit(f"{var} is not set: {what} (tests/scenarios/run.sh "
                    "sets it)", returncode=4)
    if not os.access(path, os.X_OK):
        pytest.exit(f"{var}={path} is not an executable", returncode=4)
    return path


def commands():
    return {
        "c": [_need("PBRING_BIN", "the C pbring command")],
        "go": [_need("PBRING_GO", "the pbring-go command")],
        "py": [_need("PBRING_PYTHON", "a python that can import pbring"),
               "-m", "pbring"],
    }


def forge_path():
    return _need("PBRING_FORGE", "the forge helper")


def repeat():
    return max(1, int(os.environ.get("SCEN_REPEAT", "5")))


def loops():
    """SCEN_LOOPS: repeat scenario 1 this many times (acceptance loop)."""
    return max(1, int(os.environ.get("SCEN_LOOPS", "1")))


def rotate(lang, k):
    """The language k places after @lang in LANGS."""
    return LANGS[(LANGS.index(lang) + k) % len(LANGS)]


# --- summaries -------------------------------------------------------------

SUMMARY_RE = re.compile(r"^consume \((gating|lossy|tap)\): (.*)$", re.M)
PAIR_RE = re.compile(r"^([a-z][a-z ]*?) (-?\d+(?:\.\d+)?)\b")


def parse_summary(text):
    """The last consume summary line of @text as {key: number} (plus
    'mode'), or None. Tolerant: any "key value" pairs, in any order; keys
    it does not know are kept, missing ones are absent."""
    found = SUMMARY_RE.findall(text or "")
    if not found:
        return None
    mode, rest = found[-1]
    out = {"mode": mode}
    for part in rest.split(", "):
        m = PAIR_RE.match(part.strip())
        if m:
            v = float(m.group(2))
            out[m.group(1)] = int(v) if v.is_integer() else v
    return out


# --- actors ----------------------------------------------------------------

class Actor:
    """A background process with its output in files."""

    def __init__(self, scen, label, argv, lang=None):
        self.scen = scen
        self.label = label
        self.argv = argv
        self.lang = lang
        n = len(scen.actors)
        self.out_path = os.path.join(scen.tmp, f"{n:02d}-{label}.out")
        self.err_path = os.path.join(scen.tmp, f"{n:02d}-{label}.err")
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        env = dict(os.environ)
        for k in ("PYTHONPATH", "PBRING_LIBRARY"):
            env.pop(k, None)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err,
                                     env=env)
        self.pid = self.proc.pid
        self.rc = None
        self.elapsed = None
        self.stopped = False
        scen.actors.append(self)

    def alive(self):
        return self.proc.poll() is None

    def wait(self, timeout=WAIT):
        """Exit status; SIGKILLs the process and fails the test if it does
        not exit within @timeout seconds."""
        if self.rc is not None:
            return self.rc
        try:
            self.rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.label} did not exit within {timeout} s "
                        f"(killed)", pytrace=False)
        self.elapsed = time.monotonic() - self.t0
        return self.rc

    def finish(self, timeout):
        """Wait up to @timeout s; if it is still running, SIGINT it (a
        consumer then prints its summary) and wait again. Returns (exit
        status, whether it had to be interrupted)."""
        try:
            self.rc = self.proc.wait(timeout=timeout)
            self.elapsed = time.monotonic() - self.t0
            return self.rc, False
        except subprocess.TimeoutExpired:
            self.interrupt()
            return self.rc, True

    def signal(self, sig):
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
        if sig == signal.SIGSTOP:
            self.stopped = True
        elif sig == signal.SIGCONT:
            self.stopped = False

    def stop(self):
        """SIGSTOP, and wait until the kernel says it is stopped."""
        self.signal(signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while self.alive() and self.proc_state() != "T":
            if time.monotonic() > deadline:
                pytest.fail(f"{self.label} did not stop", pytrace=False)
            time.sleep(0.001)

    def proc_state(self):
        """The process state letter of /proc/PID/stat ('?' if gone)."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return "?"

    def cont(self):
        self.signal(signal.SIGCONT)

    def kill(self):
        """SIGKILL (a crash) and reap."""
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            rc = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = None
        if self.rc is None:
            self.rc = rc
        return rc

    def interrupt(self, timeout=5):
        """SIGINT (a clean stop with a summary), then wait; SIGKILL if it
        does not stop."""
        self.cont()
        self.signal(signal.SIGINT)
        try:
            self.rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        return self.rc

    @property
    def out(self):
        self._out.flush()
        with open(self.out_path, "r", errors="replace") as f:
            return f.read()

    @property
    def err(self):
        self._err.flush()
        with open(self.err_path, "r", errors="replace") as f:
            return f.read()

    @property
    def summary(self):
        return parse_summary(self.err)

    def close(self):
        for f in (self._out, self._err):
            try:
                f.close()
            except OSError:
                pass

    def describe(self):
        state = ("running" if self.alive() else f"exit {self.proc.returncode}")
        if self.stopped and self.alive():
            state += " (stopped)"
        err = self.err.strip()
        if len(err) > 3000:
            err = "..." + err[-3000:]
        out = self.out.strip()
        if len(out) > 500:
            out = "..." + out[-500:]
        s = f"--- {self.label} [{state}]: {' '.join(self.argv)}\n"
        if err:
            s += "    stderr: " + err.replace("\n", "\n            ") + "\n"
        if out:
            s += "    stdout: " + out.replace("\n", "\n            ") + "\n"
        return s


class Scenario:
    """What a test uses: rings, actors, stat and forge."""

    def __init__(self, tmp, test_name):
        self.tmp = str(tmp)
        self.cmd = commands()
        self.forge_bin = forge_path()
        self.actors = []
        self.rings = []
        self.notes = []
        self.test_name = test_name

    # rings
    def ring(self, tag, slots=16, slot_size=256, producers=4, single=False,
             readers=8, crc=None, durable=False):
        name = f"scen-{os.getpid()}-{uuid.uuid4().hex[:8]}-{tag}"[:63]
        args = ["create", name, "--slots", slots, "--slot-size", slot_size,
                "--producers", 1 if single else producers,
                "--readers", readers]
        if single:
            args.append("--single-producer")
        if crc is not None:
            args += ["--crc", crc]
        if durable:
            args.append("--durable-readers")
        self.rings.append(name)
        r = self.run("c", *args)
        assert r.returncode == 0, f"pbring create failed: {r.stderr}"
        return name

    def run(self, lang, *args, timeout=WAIT):
        """Run a command to completion (CompletedProcess, text)."""
        argv = self.cmd[lang] + [str(a) for a in args]
        try:
            return subprocess.run(argv, capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{' '.join(argv)} did not finish within {timeout} s",
                        pytrace=False)

    def stat(self, ring):
        r = self.run("c", "stat", "--json", ring, timeout=10)
        assert r.returncode == 0, f"pbring stat failed: {r.stderr}"
        return json.loads(r.stdout)

    def participant(self, ring, pid):
        for p in self.stat(ring)["participants"]:
            if p["pid"] == pid:
                return p
        return None

    def wait_joined(self, ring, actor, role=None, timeout=10.0, pred=None):
        """Wait until stat lists @actor (by pid) alive, in @role, and
        pred(entry) holds. Fails (with every actor's output) otherwise."""
        deadline = time.monotonic() + timeout
        p = None
        while time.monotonic() < deadline:
            p = self.participant(ring, actor.pid)
            if (p and p["alive"] and (role is None or p["role"] == role)
                    and (pred is None or pred(p))):
                return p
            if not actor.alive():
                pytest.fail(f"{actor.label} exited before it joined "
                            f"{ring}", pytrace=False)
            time.sleep(0.01)
        pytest.fail(f"{actor.label} did not show in stat of {ring} as "
                    f"{role or 'a participant'} within {timeout} s (last "
                    f"seen: {p})", pytrace=False)

    # actors
    def spawn(self, lang, label, *args):
        argv = self.cmd[lang] + [str(a) for a in args]
        return Actor(self, f"{label}[{lang}]", argv, lang)

    def forge(self, ring, what, timeout=10.0):
        """Start `forge RING what`, wait for the sequence it prints, return
        (actor, seq). The actor pauses until killed."""
        a = Actor(self, f"forge-{what}", [self.forge_bin, ring, what])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = a.out.strip()
            if line:
                return a, int(line.split()[0])
            if not a.alive():
                pytest.fail(f"forge {what} failed: {a.err}", pytrace=False)
            time.sleep(0.005)
        pytest.fail(f"forge {what} printed nothing within {timeout} s",
                    pytrace=False)

    def slot(self, ring, seq):
        """forge RING slot SEQ: e.g. 'DONE 0', 'ABANDONED 16', 'EMPTY'."""
        r = subprocess.run([self.forge_bin, ring, "slot", str(seq)],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, f"forge slot failed: {r.stderr}"
        return r.stdout.strip()

    def slot_crc(self, ring, seq):
        """forge RING crc SEQ: 'crc', 'crc-bad' or 'none'."""
        r = subprocess.run([self.forge_bin, ring, "crc", str(seq)],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, f"forge crc failed: {r.stderr}"
        return r.stdout.strip()

    def wait_slot(self, ring, seq, want, timeout=3.0):
        """Poll slot(seq) until it reads @want; returns the last reading."""
        deadline = time.monotonic() + timeout
        got = self.slot(ring, seq)
        while got != want and time.monotonic() < deadline:
            time.sleep(0.01)
            got = self.slot(ring, seq)
        return got

    def note(self, msg):
        self.notes.append(msg)

    def explain(self):
        s = ""
        if self.notes:
            s += "notes: " + "; ".join(self.notes) + "\n"
        for r in self.rings:
            try:
                st = self.stat(r)
                st.pop("schema_hash", None)
                s += f"--- stat {r}: {json.dumps(st)}\n"
            except Exception as e:  # the ring may be gone
                s += f"--- stat {r}: unavailable ({e})\n"
        for a in self.actors:
            s += a.describe()
        return s

    def teardown(self):
        for a in self.actors:
            if a.alive():
                a.cont()
                a.kill()
            a.close()
        for r in self.rings:
            try:
                subprocess.run(self.cmd["c"] + ["rm", r], capture_output=True,
                               timeout=10)
            except Exception:
                pass
            try:
                os.unlink(os.path.join(SHM_DIR, "pbring." + r))
            except FileNotFoundError:
                pass
