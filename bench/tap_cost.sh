#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What a tap reader (FORMAT.md §9.5) costs the gating consumer it watches.
#
# usage: bench/tap_cost.sh PBRING [PAIRS] [COUNT]
#   PBRING  the pbring command (a Release build for real figures)
#   PAIRS   rounds of the three runs below (default 5)
#   COUNT   demo messages (64 B) per run (default 1000000)
#
# Each run: a fresh 4096-slot ring, a gating `consume --quiet` for COUNT
# messages, then `produce --count COUNT --size 64`. Three runs per round:
# alone; with a `consume --tap --quiet` watching the ring; with a control
# process that only burns a CPU and never touches the ring. The figure is
# the gating consumer's own rate (its summary). Prints one line per round
# and the median ratios against the run alone. With fewer than 3 cores
# the tap competes for a core with producer and consumer, and the control
# shows what that competition alone costs.
set -euo pipefail
if [ $# -lt 1 ]; then
	echo "usage: $0 PBRING [PAIRS] [COUNT]" >&2
	exit 2
fi
pb=$1
pairs=${2:-5}
count=${3:-1000000}
ring=tapcost.$$
tmp=$(mktemp -d)
tap_pid=
cleanup() {
	if [ -n "$tap_pid" ]; then
		kill "$tap_pid" 2>/dev/null || true
	fi
	"$pb" rm "$ring" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One run (third: none, tap or burn); prints the gating consumer's rate.
run() {
	local third=$1 c_pid
	"$pb" rm "$ring" >/dev/null 2>&1 || true
	"$pb" create "$ring" --slots 4096 --slot-size 256 >/dev/null
	"$pb" consume "$ring" --count "$count" --quiet 2>"$tmp/c" &
	c_pid=$!
	if [ "$third" = tap ]; then
		"$pb" consume "$ring" --tap --quiet --timeout 2 2>"$tmp/t" &
		tap_pid=$!
	elif [ "$third" = burn ]; then
		(while :; do :; done) &
		tap_pid=$!
	fi
	sleep 0.3 # both attached
	"$pb" produce "$ring" --count "$count" --size 64 2>/dev/null
	wait "$c_pid"
	if [ "$third" = burn ]; then
		kill "$tap_pid"
	fi
	if [ -n "$tap_pid" ]; then
		wait "$tap_pid" || true
		tap_pid=
	fi
	if [ "$third" = tap ]; then
		grep -o 'received [0-9]*, lost [0-9]*' "$tmp/t" >"$tmp/tap"
	fi
	grep -o 'rate [0-9]* msg/s' "$tmp/c" | awk '{print $2}'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a / b}'; }
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

taps=() burns=()
for ((i = 1; i <= pairs; i++)); do
	alone=$(run none)
	tap=$(run tap)
	burn=$(run burn)
	taps+=("$(ratio "$tap" "$alone")")
	burns+=("$(ratio "$burn" "$alone")")
	printf 'round %d: alone %s msg/s, with tap %s (%s; tap %s), with CPU burner %s (%s)\n' \
		"$i" "$alone" "$tap" "${taps[-1]}" "$(cat "$tmp/tap")" "$burn" \
		"${burns[-1]}"
done
printf 'median with tap / alone: %s; with CPU burner / alone: %s (%d rounds, %s CPUs)\n' \
	"$(printf '%s\n' "${taps[@]}" | median)" \
	"$(printf '%s\n' "${burns[@]}" | median)" "$pairs" "$(nproc)"
