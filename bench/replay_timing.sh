#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# How closely `pbring replay` keeps the recorded spacing between messages.
#
# usage: bench/replay_timing.sh PBRING [COUNT] [RATE] [REPLAY_ARGS...]
#   PBRING       the pbring command (a Release build for real figures)
#   COUNT        demo messages (default 20000)
#   RATE         messages per second they are produced at (default 10000)
#   REPLAY_ARGS  more options for replay (e.g. --rate 2)
# env RT=1       run replay (only) under SCHED_FIFO (chrt -f 10): what the
#                spacing is when other processes cannot preempt it
# 1. `produce --rate RATE` sends COUNT demo events into ring A, paced by
#    produce itself, and a gating `record` writes them to first.mcap.
# 2. `replay first.mcap --map A=B` publishes them into ring B, which it
#    creates; a gating `record` of B writes second.mcap. The log time of
#    each message there is its commit timestamp in B, taken by replay.
# 3. `pbring cat` prints both files' log times. The spacing error of
#    message i is |(t2[i] - t2[i-1]) * speed - (t1[i] - t1[i-1])|, speed
#    the --rate factor given (1 if none); the drift is how far message i
#    is from where it should be, |(t2[i] - t2[0]) * speed - (t1[i] -
#    t1[0])|. Prints p50, p99, max of both, in microseconds.
set -euo pipefail
if [ $# -lt 1 ]; then
	echo "usage: $0 PBRING [COUNT] [RATE] [REPLAY_ARGS...]" >&2
	exit 2
fi
pb=$1
count=${2:-20000}
rate=${3:-10000}
shift $(($# < 3 ? $# : 3))
speed=1
prev=
for a in "$@"; do
	[ "$prev" = "--rate" ] && speed=$a
	prev=$a
done
a=rtime-a.$$
b=rtime-b.$$
tmp=$(mktemp -d)
cleanup() {
	"$pb" rm "$a" "$b" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$pb" create "$a" --slots 4096 >/dev/null
"$pb" record "$a" -o "$tmp/first.mcap" --count "$count" 2>"$tmp/rec1" &
rec=$!
"$pb" produce "$a" --count "$count" --rate "$rate" 2>"$tmp/prod"
wait "$rec"

rt=()
[ "${RT:-0}" = 1 ] && rt=(chrt -f 10)
"${rt[@]}" "$pb" replay "$tmp/first.mcap" --map "$a=$b" "$@" 2>"$tmp/replay" &
rep=$!
while [ ! -e "/dev/shm/pbring.$b" ]; do
	kill -0 "$rep" 2>/dev/null || {
		cat "$tmp/replay" >&2
		exit 1
	}
	sleep 0.01
done
"$pb" record "$b" -o "$tmp/second.mcap" --count "$count" 2>"$tmp/rec2"
wait "$rep"

# "2026-12-06T02:06:21.301792119Z topic seq N S B": nanoseconds of the day
# (exact in awk's doubles: < 2^53), a day's wrap undone.
times() {
	"$pb" cat "$1" | awk '{
		split(substr($1, 12, 18), t, "[:.]")
		ns = ((t[1] * 60 + t[2]) * 60 + t[3]) * 1e9 + t[4]
		if (NR > 1 && ns < last) day += 86400e9
		last = ns
		printf "%.0f\n", ns + day
	}'
}
times "$tmp/first.mcap" >"$tmp/t1"
times "$tmp/second.mcap" >"$tmp/t2"
n1=$(wc -l <"$tmp/t1")
n2=$(wc -l <"$tmp/t2")
if [ "$n1" != "$count" ] || [ "$n2" != "$count" ]; then
	echo "recorded $n1 and $n2 messages, not $count" >&2
	exit 1
fi
paste "$tmp/t1" "$tmp/t2" | awk -v s="$speed" -v out="$tmp" '
	NR == 1 { a0 = $1; b0 = $2 }
	NR > 1 {
		e = ($2 - pb) * s - ($1 - pa); if (e < 0) e = -e
		d = ($2 - b0) * s - ($1 - a0); if (d < 0) d = -d
		printf "%.0f\n", e > out "/err"
		printf "%.0f\n", d > out "/drift"
	}
	{ pa = $1; pb = $2 }'
pct() {
	sort -n "$1" | awk -v what="$2" '{ v[NR] = $1 }
	END {
		printf "%s: p50 %.1f us, p99 %.1f us, max %.1f us (%d intervals)\n",
			what, v[int(NR * 0.50) + 1] / 1e3, v[int(NR * 0.99) + 1] / 1e3,
			v[NR] / 1e3, NR
	}'
}
echo "$(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), replay ${rt[*]:-SCHED_OTHER}"
grep '^produce: ' "$tmp/prod"
grep '^replay: ' "$tmp/replay"
pct "$tmp/err" "spacing error"
pct "$tmp/drift" "drift from the recorded schedule"
