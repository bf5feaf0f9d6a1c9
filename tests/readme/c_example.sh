#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's C example, as a new user would take it: the ```c block
# under "## Using the C library", compiled with warnings as errors
# against the built library and run twice in a row (the second run meets
# whatever the first left behind); with PBRING, the second run first finds
# a ring of the same name left over, as after a crash.
#
# usage: tests/readme/c_example.sh SOURCE_DIR LIBPBRING.so WORK_DIR [PBRING]
set -euo pipefail
src=$1 lib=$2 work=$3 pbring=${4:-}
mkdir -p "$work"
awk '/^## Using the C library/ { sec = 1 }
	sec && /^```c$/ { code = 1; next }
	code && /^```$/ { exit }
	code { print }' "$src/README.md" >"$work/readme_example.c"
[ -s "$work/readme_example.c" ] || { echo "no C example in README.md" >&2; exit 1; }
${CC:-cc} -std=c11 -Wall -Wextra -Werror -I"$src/include" \
	"$work/readme_example.c" -o "$work/readme_example" \
	-L"$(dirname "$lib")" -lpbring -Wl,-rpath,"$(dirname "$lib")"
for run in 1 2; do
	if [ "$run" = 2 ] && [ -n "$pbring" ]; then
		"$pbring" create readme-example --schema none
	fi
	out=$("$work/readme_example")
	case $out in
	"hello (seq 0)") echo "run $run: $out" ;;
	*) echo "run $run: unexpected output: $out" >&2; exit 1 ;;
	esac
done
