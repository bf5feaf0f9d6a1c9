#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run tests/cli/test_bridge_workers.py: the example Redis workers
# (examples/redis_worker.py with redis-py, examples/redis-worker-go with
# go-redis) decode a bridged stream. redis-py comes from a virtualenv made
# once in BUILD_DIR/redis-venv; the Go worker is built into BUILD_DIR.
#
# usage: tests/cli/run_bridge_workers.sh BUILD_DIR [PYTEST_ARGS...]
# env PBRING_BIN  the pbring command (default BUILD_DIR/pbring)
#     PYTHON      the interpreter to make the virtualenv with (python3)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ $# -lt 1 ]; then
	echo "usage: $0 BUILD_DIR [PYTEST_ARGS...]" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
shift
export PBRING_BIN=${PBRING_BIN:-$build/pbring}
venv=$build/redis-venv
# shellcheck source=tests/cli/venv.sh
. "$here/venv.sh"
ensure_venv run_bridge_workers.sh "$venv" "pytest, redis, google.protobuf" \
	pytest redis protobuf
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH=$PATH:/usr/local/go/bin
fi
if ! command -v go >/dev/null 2>&1; then
	echo "run_bridge_workers.sh: the Go worker needs Go >= 1.22, not found" >&2
	exit 1
fi
(cd "$root/examples/redis-worker-go" && go build -o "$build/redis-worker-go" .)
export PBRING_REDIS_WORKER_GO=$build/redis-worker-go
export PBRING_REDIS_WORKER_PY=$root/examples/redis_worker.py
cd "$here"
PYTHONDONTWRITEBYTECODE=1 PBRING_REQUIRE_REDIS=1 exec "$venv/bin/python" \
	-m pytest -q "$here/test_bridge_workers.py" "$@"
