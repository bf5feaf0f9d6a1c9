#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The audit catches a bad line: each of ./dev's audit functions (the very
# invocations `./dev audit` makes, with the repository's configuration)
# runs on a scratch tree holding one known-bad line, and must fail naming
# the check; the same tree with that line made safe must pass, so the
# failure is the bad line's and not the tool's.
#
# usage: tests/dev/audit_bad.sh PATH/TO/dev   (after `./dev audit`, which
# installs the tools)
set -euo pipefail
dev=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
fail() { echo "audit bad-line: $*" >&2; exit 1; }

set --
# shellcheck source=/dev/null
source "$dev"
go_deps
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# expect STATUS WANT NAME CMD...: CMD fails (STATUS bad) or passes (good);
# a failure's output must name WANT.
expect() {
	local status=$1 want=$2 name=$3 rc=0 out
	shift 3
	out=$("$@" 2>&1) || rc=$?
	if [ "$status" = bad ]; then
		[ "$rc" -ne 0 ] || fail "$name: passed a bad line; output:
$out"
		grep -q -e "$want" <<<"$out" || fail "$name: failed without naming $want:
$out"
		echo "audit bad-line: $name: caught ($want): $(grep -m1 -e "$want" <<<"$out")"
	else
		[ "$rc" -eq 0 ] || fail "$name: failed on the safe version:
$out"
		echo "audit bad-line: $name: safe version passes"
	fi
}

# C: an unchecked strcpy of the caller's string (clang-tidy's analyzer
# flags strcpy), and a literal too long for its buffer (cppcheck).
c_tree() { # c_tree DIR LINE-FOR-TIDY LINE-FOR-CPPCHECK
	mkdir -p "$1"
	cat >"$1/bad.c" <<EOC
#include <string.h>
void copy_name(char *dst, const char *name);
void copy_name(char *dst, const char *name)
{
	char tag[8];

	$2
	$3
	memcpy(dst, tag, sizeof(tag));
}
EOC
	printf '[{"directory": "%s", "file": "%s/bad.c", "command": "cc -std=gnu11 -c %s/bad.c -o %s/bad.o"}]\n' \
		"$1" "$1" "$1" "$1" >"$1/compile_commands.json"
}
c_tree "$tmp/c-bad" 'strcpy(dst, name);' 'strcpy(tag, "far too long for tag");'
c_tree "$tmp/c-good" 'memcpy(dst, name, 1);' 'memcpy(tag, "7 bytes", 8);'
expect bad 'insecureAPI.strcpy' clang-tidy audit_tidy "$tmp/c-bad/compile_commands.json" "$tmp/c-bad"
expect good '' clang-tidy audit_tidy "$tmp/c-good/compile_commands.json" "$tmp/c-good"
expect bad 'bufferAccessOutOfBounds' cppcheck audit_cppcheck "$tmp/c-bad/compile_commands.json" "$tmp/c-bad"
expect good '' cppcheck audit_cppcheck "$tmp/c-good/compile_commands.json" "$tmp/c-good"

# Go: a command line from the user (gosec G204).
go_tree() { # go_tree DIR COMMAND-EXPRESSION
	mkdir -p "$1"
	printf 'module example.com/scratch\n\ngo 1.22\n' >"$1/go.mod"
	cat >"$1/main.go" <<EOG
package main

import (
	"os"
	"os/exec"
)

func main() {
	_ = os.Args
	if err := exec.Command($2).Run(); err != nil {
		os.Exit(1)
	}
}
EOG
}
go_tree "$tmp/go-bad" 'os.Args[1], os.Args[2:]...'
go_tree "$tmp/go-good" '"true"'
expect bad 'G204' gosec audit_gosec "$tmp/go-bad"
expect good '' gosec audit_gosec "$tmp/go-good"

# Python: yaml.load without a safe loader, and a shell command line.
mkdir -p "$tmp/py-bad" "$tmp/py-good"
cat >"$tmp/py-bad/bad.py" <<'EOP'
import subprocess
import sys

import yaml

config = yaml.load(sys.stdin.read())
subprocess.call("ls " + sys.argv[1], shell=True)
EOP
cat >"$tmp/py-good/good.py" <<'EOP'
import sys

import yaml

config = yaml.safe_load(sys.stdin.read())
EOP
expect bad 'B506' bandit-yaml audit_bandit "$tmp/py-bad"
expect bad 'B602' bandit-shell audit_bandit "$tmp/py-bad"
expect good '' bandit audit_bandit "$tmp/py-good"
echo "audit bad-line: ok"
