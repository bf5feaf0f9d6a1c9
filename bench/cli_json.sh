#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Throughput of `pbring produce --from-json` and `pbring consume --json` on
# a ~100-byte acme.telemetry.v1.Reading (proto/acme/telemetry/v1/), each
# measured alone: produce fills a ring large enough for every message
# (--no-wait, no reader), then consume reads them all from the oldest,
# JSON to /dev/null; then consume --quiet (decode only, no JSON) for
# scale, and the ratios of the two JSON rates to it. A figure, not a test.
# usage: bench/cli_json.sh [PBRING_BIN [N]]   (default build/pbring, 200000)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/build/pbring}
N=${2:-200000}
RING=bench-json-$$
TMP=$(mktemp -d)
trap '"$BIN" rm "$RING" >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT

python3 - "$N" >"$TMP/in.jsonl" <<'EOF'
import json, sys
for i in range(int(sys.argv[1])):
    print(json.dumps({
        "fDouble": 20 + (i % 100) / 8, "fInt64": str(1700000000000 + i),
        "deviceId": f"sensor-{i % 1000:06d}", "unit": "UNIT_CELSIUS",
        "where": {"lat": 48.125, "lon": 11.5, "siteName": "munich"},
        "samples": [i % 7, 2, 300, 4, 5000, 6, 7, i % 128],
        "takenAt": "2024-06-11T10:00:00.123Z", "gauges": {"t": 21.5}},
        separators=(",", ":")))
EOF

slots=1
while [ "$slots" -lt "$N" ]; do slots=$((slots * 2)); done
"$BIN" create "$RING" --schema "$ROOT/proto/acme/telemetry/v1/reading.proto" \
	-I "$ROOT/proto" --type acme.telemetry.v1.Reading \
	--slots "$slots" --slot-size 256
bytes=$(head -n1 "$TMP/in.jsonl" | "$BIN" produce "$RING" --from-json - \
	--no-wait 2>/dev/null && "$BIN" consume "$RING" --raw --count 1 \
	2>/dev/null | wc -c)
"$BIN" rm "$RING"
"$BIN" create "$RING" --schema "$ROOT/proto/acme/telemetry/v1/reading.proto" \
	-I "$ROOT/proto" --type acme.telemetry.v1.Reading \
	--slots "$slots" --slot-size 256
echo "message: $((bytes - 4)) bytes serialized, $(head -n1 "$TMP/in.jsonl" | wc -c) bytes of JSON"
# each command's summary line (stderr), then its msg/s
rate() { sed -n 's/.*[ ,]\([0-9][0-9]*\) msg\/s.*/\1/p' | head -n1; }
out=$("$BIN" produce "$RING" --from-json "$TMP/in.jsonl" --no-wait 2>&1)
echo "$out"
prod=$(rate <<<"$out")
out=$("$BIN" consume "$RING" --json --count "$N" 2>&1 >/dev/null)
echo "$out"
cons=$(rate <<<"$out")
out=$("$BIN" consume "$RING" --quiet --count "$N" 2>&1)
echo "$out"
dec=$(rate <<<"$out")
awk -v p="$prod" -v c="$cons" -v d="$dec" 'BEGIN {
	printf "msg/s: produce --from-json %d, consume --json %d, consume --quiet (decode only) %d\n", p, c, d
	if (d > 0) printf "against decode only: produce %.2fx, consume --json %.2fx\n", p / d, c / d
}'
