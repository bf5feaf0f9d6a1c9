#!/bin/sh
# SPDX-License-Identifier: MIT
# Verify the Promela model of the pbring protocol (model/README.md).
#
#   model/check.sh [--full] [WORKDIR]
#
# For each configuration: spin -a, compile pan with cc (-DSAFETY: safety
# properties, i.e. assertions and invalid end states; -DCOLLAPSE and
# -DMEMLIM bound the memory), run it and require "errors: 0" and a
# complete search. The default set is the ctest test model_spin (well
# under a minute); --full adds larger configurations (a few minutes, up to
# 4 GB). Two mutation runs take back a fix of FORMAT.md that the model
# motivated (README, "Findings") and require spin to find the error again.
# Exit status: 0 all as expected, 1 a failure, 77 spin or cc missing
# (skipped).
set -u
here=$(cd "$(dirname "$0")" && pwd)
full=0
if [ "${1:-}" = "--full" ]; then
	full=1
	shift
fi
work=${1:-${TMPDIR:-/tmp}/pbring-model.$$}
for tool in spin cc; do
	if ! command -v $tool >/dev/null 2>&1; then
		echo "model_spin: $tool not found (Debian: apt-get install spin" \
			"build-essential); skipped"
		exit 77
	fi
done
mkdir -p "$work" && cd "$work" || exit 1

MEMLIM=1024
failed=0

# build NAME DEFINES...: pan for one configuration, in its own directory.
build() {
	name=$1
	shift
	mkdir -p "$name" && cd "$name" || return 1
	spin "$@" -a "$here/pbring.pml" >spin.log 2>&1 &&
		cc -O1 -DSAFETY -DCOLLAPSE -DMEMLIM=$MEMLIM -w -o pan pan.c \
			>cc.log 2>&1
	rc=$?
	[ $rc -eq 0 ] || cat spin.log cc.log
	return $rc
}

stat_line() {
	states=$(sed -n 's/^ *\([0-9]*\) states, stored.*/\1/p' pan.log)
	secs=$(sed -n 's/^pan: elapsed time \([0-9.e+]*\) seconds/\1/p' pan.log)
	echo "$1: ${states:-?} states, ${secs:-?} s"
}

# verify NAME DEFINES...: must end with errors: 0, search complete.
verify() {
	name=$1
	if ! build "$@"; then
		echo "$name: FAILED to build"
		failed=1
		cd "$work" || exit 1
		return
	fi
	./pan -m10000 >pan.log 2>&1
	if grep -q "errors: 0" pan.log && ! grep -q "Search not completed" pan.log; then
		stat_line "$name: verified"
	else
		stat_line "$name: FAILED"
		grep -E "pan:|errors:|Search" pan.log
		echo "  (trail: cd $work/$name && spin $* -t -p $here/pbring.pml)"
		failed=1
	fi
	cd "$work" || exit 1
}

# expect NAME PATTERN DEFINES...: spin must find the error PATTERN.
expect() {
	name=$1
	pattern=$2
	shift 2
	if ! build "$name" "$@"; then
		failed=1
		cd "$work" || exit 1
		return
	fi
	./pan -m10000 >pan.log 2>&1
	if grep -q -- "$pattern" pan.log; then
		echo "$name: found as expected ($pattern)"
	else
		echo "$name: FAILED: spin no longer finds $pattern"
		failed=1
	fi
	cd "$work" || exit 1
}

echo "spin: $(spin -V)"
# Mutations: recovery without the gating check of §8.2 loses a message;
# begin without the later-sequence rule of §7.3 leaves a producer waiting.
expect mutation-ungated "!(lapped_g)" -DRECOVER_GATED=0 -DLOSSY=0 \
	-DKILLS=1 -DRESTARTS=1
expect mutation-later-waits "invalid end state" -DLATER_IS_DEAD=0 \
	-DLOSSY=0 -DNMSG=4 -DKILLS=0 -DRESTARTS=0 -DZOMBIES=1
# Both readers, no faults: seqlock re-check, resync, wrap of the words.
verify readers -DNMSG=3 -DKILLS=0 -DRESTARTS=0 -DZOMBIES=0
# A producer killed at any step and restarted: reaping and recovery.
verify kill-restart -DLOSSY=0 -DNMSG=3 -DKILLS=1 -DRESTARTS=1 -DZOMBIES=0
# A producer that loses its lock and runs on: late commits fail.
verify lost-lock -DLOSSY=0 -DNMSG=4 -DKILLS=0 -DRESTARTS=0 \
	-DZOMBIES=1
# The lossy reader alone, producers running free, one killed.
verify lossy-kill -DGATING=0 -DNMSG=3 -DKILLS=1 -DRESTARTS=0 -DZOMBIES=0
if [ $full -eq 1 ]; then
	MEMLIM=4096
	verify full-readers -DNMSG=4 -DKILLS=0 -DRESTARTS=0 -DZOMBIES=0
	verify full-kill-lost-lock -DLOSSY=0 -DNMSG=4 -DKILLS=1 \
		-DRESTARTS=0 -DZOMBIES=1
	verify full-kill-restart -DLOSSY=0 -DNMSG=4 -DKILLS=1 -DRESTARTS=1 \
		-DZOMBIES=0
	verify full-lossy-kill -DGATING=0 -DNMSG=4 -DKILLS=1 -DRESTARTS=0 \
		-DZOMBIES=0
	verify full-lossy-restart -DGATING=0 -DNMSG=3 -DKILLS=1 \
		-DRESTARTS=1 -DZOMBIES=0
	verify full-readers-kill -DNMSG=3 -DKILLS=1 -DRESTARTS=0 -DZOMBIES=0
fi
[ $failed -eq 0 ] && echo "model_spin: all as expected"
exit $failed
