#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Cross-language SIGKILL torture (ctest's torture_xlang_quick):
#
#   tests/crash/xlang.sh BUILD_DIR [TORTURE [PYLIB]] [torture options...]
#
# Supplies the three kinds of children to the torture driver, then runs it
# (default options: --quick --langs c,go,py --witnesses 3 --gating 4 --slow
# --discard):
#   Go      $PBRING_TORTURE_GO, else built here from go/internal/torturechild
#           (go build -tags pbring_crash) into BUILD_DIR/torture-go;
#   Python  $PBRING_TORTURE_PY, else BUILD_DIR/xlang-venv/bin/python, a
#           venv with protobuf only: the package is taken from the source
#           tree (PYTHONPATH=python/src), so that it is the current one, and
#           it loads the library below;
#   library $PBRING_TORTURE_PYLIB, else PYLIB (default
#           BUILD_DIR/tests/libpbring-crash.so, built if missing): the
#           crash-point libpbring the Python children load, so that named
#           crash points apply to them too.
# TORTURE defaults to BUILD_DIR/tests/torture. Exit status: the driver's,
# or 1 when a Go toolchain, the Go child or a working Python venv cannot be
# had (a check that cannot run is a failure, not a skip).
set -eu

die() { echo "xlang.sh: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: xlang.sh BUILD_DIR [TORTURE [PYLIB]] [options]"
build=$(cd "$1" && pwd) || die "no build directory $1"
shift
src=$(cd "$(dirname "$0")/../.." && pwd)
torture=$build/tests/torture
pylib=$build/tests/libpbring-crash.so
if [ $# -ge 1 ] && [ "${1#-}" = "$1" ]; then torture=$1; shift; fi
if [ $# -ge 1 ] && [ "${1#-}" = "$1" ]; then pylib=$1; shift; fi
if [ $# -eq 0 ]; then
	set -- --quick --langs c,go,py --witnesses 3 --gating 4 --slow \
		--discard
fi

# Which languages does the run ask for?
langs=c
prev=
for a in "$@"; do
	case $prev in --langs) langs=$a ;; esac
	case $a in --langs=*) langs=${a#--langs=} ;; esac
	prev=$a
done
case ",$langs," in *,go,*) want_go=1 ;; *) want_go= ;; esac
case ",$langs," in *,py,*) want_py=1 ;; *) want_py= ;; esac

if [ ! -x "$torture" ] || [ ! -f "$pylib" ]; then
	cmake --build "$build" --target torture pbring_crash_shared >&2 ||
		die "cannot build torture and pbring_crash_shared in $build"
fi

if [ -n "$want_go" ] && [ -z "${PBRING_TORTURE_GO:-}" ]; then
	[ -d "$src/go/internal/torturechild" ] ||
		die "no Go torture child (go/internal/torturechild)"
	command -v go >/dev/null 2>&1 || die "no Go toolchain (go)"
	(cd "$src/go" && go build -tags pbring_crash \
		-o "$build/torture-go" ./internal/torturechild) ||
		die "go build of the Go torture child failed"
	PBRING_TORTURE_GO=$build/torture-go
	export PBRING_TORTURE_GO
fi

if [ -z "${PBRING_TORTURE_PYLIB:-}" ]; then
	PBRING_TORTURE_PYLIB=$pylib
	export PBRING_TORTURE_PYLIB
fi

if [ -n "$want_py" ] && [ -z "${PBRING_TORTURE_PY:-}" ]; then
	venv=$build/xlang-venv
	PYTHONPATH=$src/python/src${PYTHONPATH:+:$PYTHONPATH}
	export PYTHONPATH
	if ! PBRING_LIBRARY=$PBRING_TORTURE_PYLIB "$venv/bin/python" \
		-c 'import pbring' >/dev/null 2>&1; then
		echo "xlang.sh: creating $venv" >&2
		python3 -m venv "$venv" >&2 ||
			die "python3 -m venv failed"
		"$venv/bin/pip" install -q --disable-pip-version-check \
			"protobuf>=4.21" >&2 ||
			die "pip install protobuf into $venv failed"
		PBRING_LIBRARY=$PBRING_TORTURE_PYLIB "$venv/bin/python" \
			-c 'import pbring' ||
			die "$venv/bin/python cannot import pbring"
	fi
	PBRING_TORTURE_PY=$venv/bin/python
	export PBRING_TORTURE_PY
fi

echo "xlang.sh: langs $langs; go ${PBRING_TORTURE_GO:-none}; python" \
	"${PBRING_TORTURE_PY:-none}; pylib $PBRING_TORTURE_PYLIB" >&2
exec "$torture" "$@"
