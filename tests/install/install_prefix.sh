#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `cmake --install BUILD --prefix P` into a fresh P, as the README says:
# everything lands in P, pbring.pc and the CMake package point into P (not
# at the prefix the build was configured with), a C program builds and
# runs against either, and P/bin/pbring runs.
#
# usage: tests/install/install_prefix.sh BUILD_DIR WORK_DIR
set -euo pipefail
build=$1 work=$2
fail() { echo "install: $*" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"
P=$work/prefix
cmake --install "$build" --prefix "$P" >"$work/install.log" ||
	{ cat "$work/install.log" >&2; fail "cmake --install --prefix $P failed"; }
# Nothing was written outside P.
if grep -- "-- \(Installing\|Up-to-date\): " "$work/install.log" | grep -v ": $P/"; then
	fail "installed outside $P (above)"
fi

pc=$(find "$P" -name pbring.pc)
[ -n "$pc" ] || fail "no pbring.pc under $P"
export PKG_CONFIG_PATH=${pc%/pbring.pc}
prefix=$(pkg-config --variable=prefix pbring)
[ "$prefix" = "$P" ] || fail "pbring.pc: prefix=$prefix, want $P"
for v in libdir includedir; do
	d=$(pkg-config --variable=$v pbring)
	[[ $d == "$P"/* ]] || fail "pbring.pc: $v=$d, outside $P"
done
# Every -I and -L is inside P, but for those of the dependencies' own .pc.
flags=$(pkg-config --cflags --libs pbring)
theirs=" $(pkg-config --cflags --libs liburcu) "
for f in $flags; do
	case $f in
	-I* | -L*)
		[[ ${f:2} == "$P"/* || $theirs == *" $f "* ]] ||
			fail "pkg-config gives $f, outside $P"
		;;
	esac
done
case " $flags " in
*" -I$P/include "*" -L$P/"*) ;;
*) fail "pkg-config --cflags --libs pbring: $flags: no -I$P/include and -L$P/..." ;;
esac
echo "pkg-config --cflags --libs pbring: $flags"

cat >"$work/hello.c" <<'EOC'
#include <stdio.h>
#include <pbring.h>

int main(void)
{
	printf("pbring %s\n", pbr_version());
	return pbr_name_check("hello") ? 1 : 0;
}
EOC
libdir=$(pkg-config --variable=libdir pbring)
read -ra cflags <<<"$(pkg-config --cflags pbring)"
read -ra libs <<<"$(pkg-config --libs pbring)"
${CC:-cc} -std=c11 -Wall -Wextra -Werror "${cflags[@]}" \
	"$work/hello.c" -o "$work/hello-pc" "${libs[@]}"
out=$(LD_LIBRARY_PATH=$libdir "$work/hello-pc")
echo "pkg-config build: $out"
# ldd's output in full first: `ldd | grep -q` under pipefail fails when
# grep exits at its match before ldd has written the rest (SIGPIPE).
deps=$(LD_LIBRARY_PATH=$libdir ldd "$work/hello-pc")
grep -q "libpbring.so.* => $libdir/" <<<"$deps" ||
	fail "hello-pc does not load libpbring from $libdir: $deps"

# The CMake package, found through CMAKE_PREFIX_PATH alone.
mkdir -p "$work/cm"
cp "$work/hello.c" "$work/cm/"
cat >"$work/cm/CMakeLists.txt" <<'EOC'
cmake_minimum_required(VERSION 3.18)
project(hello C)
find_package(pbring REQUIRED)
message(STATUS "pbring_DIR=${pbring_DIR}")
add_executable(hello hello.c)
target_link_libraries(hello PRIVATE pbring::pbring)
EOC
cmake -S "$work/cm" -B "$work/cm/build" -DCMAKE_PREFIX_PATH="$P" \
	>"$work/cm.log" || { cat "$work/cm.log" >&2; fail "find_package(pbring) failed"; }
grep -q "pbring_DIR=$P/" "$work/cm.log" || fail "find_package(pbring) found it outside $P"
cmake --build "$work/cm/build" >>"$work/cm.log" ||
	{ cat "$work/cm.log" >&2; fail "building against pbring::pbring failed"; }
echo "CMake package build: $("$work/cm/build/hello")"

"$P/bin/pbring" --version
echo "install: ok"
