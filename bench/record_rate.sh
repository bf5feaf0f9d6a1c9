#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# How fast `pbring record` writes a ring to MCAP (zstd chunks, summary).
#
# usage: bench/record_rate.sh PBRING [ROUNDS] [COUNT]
#   PBRING  the pbring command (a Release build for real figures)
#   ROUNDS  recordings (default 5)
#   COUNT   demo messages per recording (default 1000000), `--size 40`:
#           about 64 bytes encoded
# Each round: a fresh 4096-slot ring, a gating `record --count COUNT`,
# then `produce --count COUNT`; the rate is COUNT over the time from the
# start of produce to the recorder's exit (the file closed complete).
# Prints one line per round, then the median.
set -euo pipefail
if [ $# -lt 1 ]; then
	echo "usage: $0 PBRING [ROUNDS] [COUNT]" >&2
	exit 2
fi
pb=$1
rounds=${2:-5}
count=${3:-1000000}
ring=recrate.$$
tmp=$(mktemp -d)
cleanup() {
	"$pb" rm "$ring" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rates=()
for ((i = 1; i <= rounds; i++)); do
	"$pb" rm "$ring" >/dev/null 2>&1 || true
	"$pb" create "$ring" --slots 4096 --slot-size 256 >/dev/null
	"$pb" record "$ring" -o "$tmp/r.mcap" --count "$count" 2>"$tmp/err" &
	rec=$!
	sleep 0.3 # joined
	t0=$(date +%s%N)
	"$pb" produce "$ring" --count "$count" --size 40 2>/dev/null
	wait "$rec"
	t1=$(date +%s%N)
	rate=$(awk -v n="$count" -v ns="$((t1 - t0))" 'BEGIN{printf "%.0f", n / (ns / 1e9)}')
	rates+=("$rate")
	printf 'round %d: %s msg/s, %s bytes (%s)\n' "$i" "$rate" \
		"$(stat -c %s "$tmp/r.mcap")" "$(grep '^record: ' "$tmp/err")"
done
printf 'median: %s msg/s (%d rounds of %d messages)\n' \
	"$(printf '%s\n' "${rates[@]}" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')" \
	"$rounds" "$count"
