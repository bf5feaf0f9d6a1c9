#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# How fast `pbring bridge` carries 64-byte messages each way through one
# Redis (Debian's redis-server, started here on a unix socket in a temp
# dir, no persistence, stopped at the end).
#
# usage: bench/redis_bridge.sh PBRING [ROUNDS] [COUNT] [BATCH]
#   PBRING  the pbring command (a Release build for real figures)
#   ROUNDS  rounds (default 5)
#   COUNT   demo messages per round (default 500000), `--size 45`: 64
#           bytes encoded
#   BATCH   both bridges' --batch (default: theirs, 256 to-redis and
#           1024 from-redis)
# Each round, on a fresh stream:
#   to-redis    a 4096-slot ring with a durable reader, `bridge to-redis
#               --count COUNT`, then `produce --count COUNT`; the rate is
#               COUNT over the time from the start of produce to the
#               bridge's exit (every XADD acknowledged).
#   from-redis  the stream just filled, a gating `consume --count COUNT`
#               on a fresh 4096-slot ring, then `bridge from-redis --count
#               COUNT`; the rate is COUNT over the time from the bridge's
#               start to the consumer's exit (every message committed and
#               read; the last batch's XACK is not waited for).
# Prints one line per round, then the medians.
set -euo pipefail
if [ $# -lt 1 ]; then
	echo "usage: $0 PBRING [ROUNDS] [COUNT] [BATCH]" >&2
	exit 2
fi
pb=$1
rounds=${2:-5}
count=${3:-500000}
batch=${4:-}
batch_opt=()
if [ -n "$batch" ]; then
	batch_opt=(--batch "$batch")
fi
a=rbench-a.$$
b=rbench-b.$$
tmp=$(mktemp -d)
redis_pid=
to=
from=
chk=
cleanup() {
	for p in $to $from $chk; do
		kill "$p" 2>/dev/null || true
	done
	"$pb" rm "$a" "$b" >/dev/null 2>&1 || true
	if [ -n "$redis_pid" ]; then
		kill "$redis_pid" 2>/dev/null || true
		wait "$redis_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

redis-server --port 0 --unixsocket "$tmp/redis.sock" --save '' \
	--appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do
	[ -S "$tmp/redis.sock" ] && redis-cli -s "$tmp/redis.sock" PING >/dev/null 2>&1 && break
	sleep 0.05
done
url=unix://$tmp/redis.sock

rate() {
	awk -v n="$count" -v ns="$1" 'BEGIN{printf "%.0f", n / (ns / 1e9)}'
}
median() {
	printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

to_rates=()
from_rates=()
echo "$(nproc) CPUs, $(redis-server --version | awk '{print $3}'), batch ${batch:-default}"
for ((i = 1; i <= rounds; i++)); do
	"$pb" rm "$a" "$b" >/dev/null 2>&1 || true
	redis-cli -s "$tmp/redis.sock" FLUSHALL >/dev/null
	"$pb" create "$a" --slots 4096 --slot-size 256 --durable-readers >/dev/null
	"$pb" create "$b" --slots 4096 --slot-size 256 >/dev/null
	"$pb" bridge to-redis "$a" --redis "$url" --stream bench \
		"${batch_opt[@]}" --count "$count" 2>"$tmp/to.err" &
	to=$!
	sleep 0.3 # its durable reader joined
	t0=$(date +%s%N)
	"$pb" produce "$a" --count "$count" --size 45 2>/dev/null
	wait "$to"
	t1=$(date +%s%N)
	to_rates+=("$(rate $((t1 - t0)))")

	"$pb" consume "$b" --count "$count" --quiet 2>"$tmp/chk.err" &
	chk=$!
	sleep 0.3
	t0=$(date +%s%N)
	"$pb" bridge from-redis --redis "$url" --stream bench --group g \
		--consumer c "$b" "${batch_opt[@]}" --count "$count" 2>"$tmp/from.err" &
	from=$!
	wait "$chk"
	t1=$(date +%s%N)
	wait "$from"
	from_rates+=("$(rate $((t1 - t0)))")
	grep -q "received $count, lost 0" "$tmp/chk.err" || {
		echo "round $i: the ring did not get all $count messages:" >&2
		cat "$tmp/chk.err" >&2
		exit 1
	}
	printf 'round %d: to-redis %s msg/s, from-redis %s msg/s\n' "$i" \
		"${to_rates[-1]}" "${from_rates[-1]}"
done
printf 'median: to-redis %s msg/s, from-redis %s msg/s (%d rounds of %d messages of 64 B)\n' \
	"$(median "${to_rates[@]}")" "$(median "${from_rates[@]}")" "$rounds" "$count"
