#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run tests/cli/test_record.py and test_replay.py in a virtualenv that has the official MCAP
# readers (mcap, mcap-protobuf-support: PyPI only, not in Debian), made
# once in BUILD_DIR/mcap-venv and reused while it can import them.
#
# usage: tests/cli/run_record.sh BUILD_DIR [PYTEST_ARGS...]
# env PBRING_BIN  the pbring command (default BUILD_DIR/pbring)
#     PYTHON      the interpreter to make the virtualenv with (python3)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 1 ]; then
	echo "usage: $0 BUILD_DIR [PYTEST_ARGS...]" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
shift
export PBRING_BIN=${PBRING_BIN:-$build/pbring}
venv=$build/mcap-venv
# shellcheck source=tests/cli/venv.sh
. "$here/venv.sh"
ensure_venv run_record.sh "$venv" "pytest, mcap, mcap_protobuf" \
	pytest mcap mcap-protobuf-support protobuf
cd "$here"
PYTHONDONTWRITEBYTECODE=1 exec "$venv/bin/python" -m pytest -q \
	"$here/test_record.py" "$here/test_replay.py" "$@"
