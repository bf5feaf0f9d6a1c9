#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's "Bring your own .proto" section as a user runs it: the sh
# block, with the built pbring first on PATH, from the repository root;
# then the C example (built by CMake from the README's c block) against a
# ring of its Location type.
#
# usage: tests/readme/byo.sh SOURCE_DIR PBRING C_EXAMPLE
set -euo pipefail
src=$1 pbring=$2 example=$3
cd "$src"
PATH=$(dirname "$pbring"):$PATH
export PATH
block=$(awk '/^## Bring your own \.proto/ { sec = 1 }
	sec && /^```sh$/ { code = 1; next }
	code && /^```$/ { exit }
	code { print }' README.md)
[ -n "$block" ] || { echo "no sh block under 'Bring your own .proto'" >&2; exit 1; }
pbring rm readings 2>/dev/null || true
out=$(bash -euo pipefail -c "$block")
echo "$out"
case $out in
*'"deviceId":"d-1"'*) ;;
*) echo "the sh block did not print the reading back" >&2; exit 1 ;;
esac
case $out in
*'"fDouble":1.5'*) ;;
*) echo "the sh block did not print the reading back" >&2; exit 1 ;;
esac

ring=readme-byo-c-$$
pbring create "$ring" --schema proto/acme/telemetry/v1/common.proto -I proto \
	--type acme.telemetry.v1.Location --slots 8
trap 'pbring rm "$ring" >/dev/null 2>&1 || true' EXIT
got=$("$example" "$ring")
[ "$got" = "Paris 48.85 2.35" ] || { echo "C example printed: $got" >&2; exit 1; }
echo "C example: $got"
