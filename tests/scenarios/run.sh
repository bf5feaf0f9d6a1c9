#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run the cross-language scenario suite (tests/scenarios/README.md).
#
# usage: tests/scenarios/run.sh BUILD_DIR [PYTEST_ARGS...]
#   BUILD_DIR  a plain (no crash points, no sanitizer) CMake build with
#              -DPBRING_TESTS=ON: BUILD_DIR/pbring and BUILD_DIR/tests/forge
# It builds BUILD_DIR/scen-bin/pbring-go from go/, and makes (or reuses, if
# it is newer than the C and Python sources and can import pbring) the
# virtualenv BUILD_DIR/scen-venv with ./python and pytest installed, then
# runs pytest here.
#
# env PBRING_BIN     the C command (default BUILD_DIR/pbring)
#     PBRING_FORGE   the forge helper (default BUILD_DIR/tests/forge)
#     PBRING_GO      a pbring-go binary to use instead of building one
#     GO             the go command (default: go on PATH, else
#                    /usr/local/go/bin/go)
#     PYTHON         the interpreter to make the virtualenv with (python3)
#     SCEN_VENV      the virtualenv (default BUILD_DIR/scen-venv)
#     SCEN_VENV_KEEP=1  use SCEN_VENV as it is if it can import pbring
#                    (e.g. one made from another checkout)
#     SCEN_LANGS     acting languages, e.g. "go" or "c py" (default all)
#     SCEN_REPEAT    joins per language in scenario 5 (default 5)
#     SCEN_LOOPS     if set: the acceptance loop, scenario 1 only, every
#                    recoverer language and role SCEN_LOOPS times, then a
#                    tally per case and "N passed, N failed"
# Exit status: pytest's; "no tests collected" (pytest's 5) is a failure.
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
export PBRING_FORGE=${PBRING_FORGE:-$build/tests/forge}
for b in "$PBRING_BIN" "$PBRING_FORGE"; do
	if [ ! -x "$b" ]; then
		echo "run.sh: $b is missing: build $build with -DPBRING_TESTS=ON" >&2
		exit 1
	fi
done

# --- Go peer ---
if [ -z "${PBRING_GO:-}" ]; then
	go=${GO:-}
	if [ -z "$go" ]; then
		go=$(command -v go || true)
		[ -n "$go" ] || go=/usr/local/go/bin/go
	fi
	if [ ! -x "$go" ]; then
		echo "run.sh: no Go toolchain (set GO=/path/to/go)" >&2
		exit 1
	fi
	mkdir -p "$build/scen-bin"
	(cd "$root/go" && "$go" build -o "$build/scen-bin/pbring-go" ./cmd/pbring-go)
	export PBRING_GO=$build/scen-bin/pbring-go
fi

# --- Python peer ---
# Its library is compiled from the repository's C sources at install time,
# so a venv older than any of those sources is rebuilt.
venv=${SCEN_VENV:-$build/scen-venv}
stamp=$venv/.scen-installed
py=${PYTHON:-python3}
fresh=0
if { [ -f "$stamp" ] || [ -n "${SCEN_VENV_KEEP:-}" ]; } &&
	env -u PYTHONPATH -u PBRING_LIBRARY "$venv/bin/python" -c \
		"import pbring, pytest, prometheus_client" 2>/dev/null; then
	newer=$(cd "$root" && { find shm producer consumer codec include \
		python/src python/pyproject.toml python/CMakeLists.txt \
		CMakeLists.txt -newer "$stamp" -type f -print -quit 2>/dev/null ||
		true; })
	if [ -z "$newer" ] || [ -n "${SCEN_VENV_KEEP:-}" ]; then
		fresh=1
	fi
fi
if [ "$fresh" -eq 0 ]; then
	echo "run.sh: installing ./python into $venv" >&2
	rm -rf "$venv"
	if ! "$py" -m venv "$venv"; then
		echo "run.sh: '$py -m venv' failed; on Debian install python3-venv" >&2
		exit 1
	fi
	touch "$venv/.scen-start"
	"$venv/bin/python" -m pip install -q --disable-pip-version-check \
		"$root/python[metrics]" pytest
	# The sources as they were when the install started.
	mv "$venv/.scen-start" "$stamp"
fi
export PBRING_PYTHON=$venv/bin/python

cd "$here"
export PYTHONDONTWRITEBYTECODE=1
pytest=(env -u PYTHONPATH -u PBRING_LIBRARY "$venv/bin/python" -m pytest)
rc=0
if [ -n "${SCEN_LOOPS:-}" ]; then
	results=$(mktemp)
	trap 'rm -f "$results"' EXIT
	SCEN_RESULTS=$results "${pytest[@]}" -q -p no:randomly "$@" \
		test_s1_ungated_overshoot.py >"$build/scen-loop.log" 2>&1 || rc=$?
	echo "run.sh: pytest output in $build/scen-loop.log" >&2
	# nodeid "...::test_ungated_overshoot[c-lossy-17] passed" -> c-lossy
	sed -e 's/.*\[//' -e 's/-[0-9]*\] / /' -e 's/\] / /' "$results" |
		awk '{ if ($2 == "passed") p[$1]++; else f[$1]++; seen[$1] = 1 }
		END { for (id in seen)
			printf "  %-14s %d passed, %d failed\n", id, p[id], f[id] }' |
		sort
	awk '$2 == "passed" { p++ } $2 != "passed" { f++ }
		END { printf "%d passed, %d failed\n", p, f }' "$results"
	[ -s "$results" ] || { echo "run.sh: no results" >&2; exit 1; }
else
	"${pytest[@]}" -rs "$@" || rc=$?
fi
if [ "$rc" -eq 5 ]; then
	echo "run.sh: pytest collected no tests" >&2
	exit 1
fi
exit "$rc"
