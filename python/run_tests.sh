#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Test the Python package as a user gets it: a fresh virtualenv, `pip
# install ./python` (which compiles libpbring from the repository's C
# sources into the wheel), then pytest on python/tests against that
# installed package.
#
# usage: python/run_tests.sh [VENV_DIR [PYTEST_ARGS...]]
#   VENV_DIR  recreated from scratch (default: build/venv at the repo root)
#   env PBRING_BIN  the C `pbring` command (C peers of the interop tests;
#                   they are skipped, with the reason, without it)
#   env PYTHON      the interpreter to make the virtualenv with (python3)
# Exit status: pytest's; "no tests collected" (pytest's 5) is a failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${1:-$here/../build/venv}
[ $# -gt 0 ] && shift
py=${PYTHON:-python3}

rm -rf "$venv"
if ! "$py" -m venv "$venv"; then
	echo "run_tests: '$py -m venv' failed; on Debian install python3-venv" >&2
	exit 1
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$here" pytest opentelemetry-sdk prometheus_client

cd "$here"
rc=0
env -u PYTHONPATH -u PBRING_LIBRARY PYTHONDONTWRITEBYTECODE=1 \
	"$venv/bin/python" -m pytest -rs "$@" tests || rc=$?
if [ "$rc" -eq 5 ]; then
	echo "run_tests: pytest collected no tests" >&2
	exit 1
fi
exit "$rc"
