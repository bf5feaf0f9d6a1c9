#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `./dev test` on fake sections: every section runs under its header, in
# order, with its stderr in the same stream; a failure does not stop the
# others; the last line is "dev test: N passed, N failed" (naming the
# failed sections) and the status says whether all passed.
#
# usage: tests/dev/summary.sh PATH/TO/dev
set -euo pipefail
dev=$1
fail() { echo "dev summary: $*" >&2; exit 1; }

# Sourced, dev defines its functions and runs nothing.
set --
# shellcheck source=/dev/null
source "$dev"
if ! declare -F run_sections >/dev/null || ! declare -F summarize >/dev/null; then
	fail "$dev has no run_sections/summarize functions"
fi

# A fake section: a line on stdout, one on stderr; FAKE_FAIL lists the ids
# that fail.
FAKE_FAIL=""
fake() {
	echo "out $1"
	echo "err $1" >&2
	case " $FAKE_FAIL " in *" $1 "*) return 3 ;; esac
}
# shellcheck disable=SC2034 # dev's run_sections runs it
SECTION_RUNNER=(fake)

# expect ARGS -- STATUS EXPECTED-OUTPUT: run `cmd_test ARGS` in a subshell.
expect() {
	local args=() rc=0 out
	while [ "$1" != -- ]; do args+=("$1"); shift; done
	shift
	out=$(cmd_test "${args[@]}") || rc=$?
	[ "$rc" = "$1" ] || fail "cmd_test ${args[*]}: status $rc, want $1; output:
$out"
	[ "$out" = "$2" ] || fail "cmd_test ${args[*]}: output
$out
want
$2"
}

all="== lint ==
out lint
err lint
== audit ==
out audit
err audit
== ctest ==
out ctest
err ctest
== Go ==
out go
err go"
sanitizers="== ctest ASan+UBSan ==
out asan
err asan
== ctest TSan ==
out tsan
err tsan"
deps="out deps
err deps"

expect -- 0 "$deps
$all
$sanitizers
dev test: 6 passed, 0 failed"

expect --fast -- 0 "$deps
$all
dev test: 4 passed, 0 failed"

FAKE_FAIL="go tsan"
expect -- 1 "$deps
$all
$sanitizers
dev test: 4 passed, 2 failed (failed: Go, ctest TSan)"

FAKE_FAIL="lint audit"
expect --fast -- 1 "$deps
$all
dev test: 2 passed, 2 failed (failed: lint, audit)"

# Without the packages nothing runs, and the line still closes the output.
FAKE_FAIL="deps"
expect -- 1 "$deps
dev test: 0 passed, 1 failed (failed: installing the packages)"

# The real runner: `dev __section ID` runs one section, as a process of
# its own (so that `set -e` holds in it); it refuses an unknown one.
rc=0
out=$("$BASH" "$dev" __section no-such-section 2>&1) || rc=$?
if [ "$rc" != 2 ] || [ "$out" != "dev: no test section 'no-such-section'" ]; then
	fail "dev __section no-such-section: status $rc, output '$out'"
fi
echo "dev summary: ok"
