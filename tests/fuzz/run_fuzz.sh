#!/bin/sh
# SPDX-License-Identifier: MIT
# Run one libFuzzer binary (the `fuzz` build target calls this per target).
#
#   run_fuzz.sh BINARY SECONDS SEED_CORPUS WORK_DIR
#
# New inputs go to WORK_DIR/corpus (the committed seeds are only read),
# crashing inputs to WORK_DIR/artifacts/. Prints the execution count; exits
# with the fuzzer's status, non-zero on a finding.
set -u
bin=$1 secs=$2 seeds=$3 work=$4
name=$(basename "$bin")
mkdir -p "$work/corpus" "$work/artifacts"
"$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 \
	-rss_limit_mb=2048 -artifact_prefix="$work/artifacts/" \
	"$work/corpus" "$seeds" >"$work/log" 2>&1 &
pid=$!
wait $pid
rc=$?
# Rings of an input that crashed were never unlinked.
rm -f /dev/shm/pbring.fz-$pid-*
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
corpus=$(find "$work/corpus" -type f | wc -l)
echo "$name: ${execs:-?} execs in ${secs} s, working corpus $corpus files, exit $rc"
if [ $rc -ne 0 ]; then
	tail -n 40 "$work/log"
	echo "$name: artifacts in $work/artifacts/ (log: $work/log)"
fi
exit $rc
