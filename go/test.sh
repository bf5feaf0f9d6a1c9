#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Go module's full test run: vet, the unit tests, the race detector on
# the in-process tests, and the C/Go interop matrix against the C command.
#
#   go/test.sh                  builds the C command (plain, and with crash
#                               points) into a temporary directory first
#   PBRING_BIN=... go/test.sh   uses that C command (PBRING_CRASH_BIN too,
#                               if set); no C build
#
# Needs Go >= 1.22; the C build needs what ./dev deps installs.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd .. && pwd)

build_c() { # build_c DIR [cmake args...]
	local dir=$1; shift
	cmake -S "$ROOT" -B "$dir" -DPBRING_WERROR=ON -DPBRING_TESTS=OFF "$@" >/dev/null &&
		cmake --build "$dir" -j"$(nproc 2>/dev/null || echo 2)" --target pbring_cli >/dev/null
}

if [ -z "${PBRING_BIN:-}" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	echo "go/test.sh: building the C command in $tmp" >&2
	if build_c "$tmp/plain" && build_c "$tmp/crash" -DPBRING_CRASH_POINTS=ON; then
		export PBRING_BIN=$tmp/plain/pbring PBRING_CRASH_BIN=$tmp/crash/pbring
		# demo/device.fds must be the very bytes the C build embeds.
		export PBRING_C_FDS=$tmp/plain/gen/pbring_demo.fds
	else
		echo "go/test.sh: the C build failed; the interop tests that need C will skip" >&2
	fi
fi

go vet ./...
go vet -tags pbring_crash ./...
go test -count=1 ./...
# The named crash points (crash_on.go): children SIGKILLed at each one.
go test -tags pbring_crash -count=1 -run 'TestCrash|TestParseCrashAt' .
# The race detector on the in-process tests (the interop tests run
# separate processes, which it cannot see into).
go test -race -count=1 . ./demo/ ./cmd/...
# The Prometheus collector: a module of its own (go/prom), so that the
# pbring module does not depend on client_golang.
(cd prom && go vet ./... && go test -count=1 ./...)
# OpenTelemetry through the ring with the SDK on both ends: a module of its
# own too (go/otel; its command is the Go producer of Python's test).
(cd otel && go vet ./... && go test -count=1 ./...)
