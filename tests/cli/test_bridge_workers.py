# SPDX-License-Identifier: MIT
"""The example Redis workers (issue 17) decode a bridged stream.

Run by tests/cli/run_bridge_workers.sh, which provides redis-py and the
built Go worker. 100 000 DeviceEvents go ring -> `pbring bridge to-redis`
-> stream; the Python and the Go worker, each its own consumer group,
decode every one generically with the schema stored in Redis and print it
as proto3 JSON; both must equal what `pbring consume --json` reads from
the ring, message for message, in order.
"""
import json
import os
import subprocess
import sys

from test_bridge import N, redis  # noqa: F401


def worker(cmd, rd, group, tmp_path):
    out = tmp_path / f"{group}.out"
    with open(out, "wb") as f:
        cp = subprocess.run(cmd + [rd.url if "go" in group else rd.tcp_url],
                            stdout=f, stderr=subprocess.PIPE, timeout=300)
    return cp, out


def test_go_and_python_workers_decode_all(pbring, procs, ring, redis,  # noqa
                                          tmp_path):
    rd = redis()
    a = ring("wk")
    assert pbring("create", a, "--durable-readers").rc == 0
    ref = procs("consume", a, "--json", "--count", N, "--timeout", 60,
                tag="ref")
    to = procs("bridge", "to-redis", a, "--redis", rd.url, "--stream", "ws",
               "--count", N, tag="to")
    assert pbring("produce", a, "--count", N, "--size", 8).rc == 0
    assert to.wait(120) == 0, to
    assert ref.wait(120) == 0, ref
    want = [json.loads(ln) for ln in ref.out.splitlines()]
    assert len(want) == N
    common = ["--stream", "ws", "--consumer", "w1", "--count", str(N),
              "--json"]
    py = [sys.executable, os.environ["PBRING_REDIS_WORKER_PY"], "--group",
          "py", *common, "--redis"]
    go = [os.environ["PBRING_REDIS_WORKER_GO"], "-group", "go",
          *[c.replace("--", "-") for c in common], "-redis"]
    for cmd, group in ((py, "py"), (go, "go")):
        cp, out = worker(cmd, rd, group, tmp_path)
        assert cp.returncode == 0, (group, cp.stderr)
        assert f"decoded {N} messages, 0 without" in cp.stderr.decode()
        got = [json.loads(ln) for ln in out.read_text().splitlines()]
        assert got == want, group
        # every entry acknowledged
        assert "0" == rd.cli("XPENDING", "ws", group).split()[0]
