/* SPDX-License-Identifier: MIT */
/*
 * Percentiles of a reader's latency histogram as the ring keeps it
 * (FORMAT.md §5.5: PBR_LATENCY_BUCKETS counts, not cumulative, with upper
 * bounds PBR_LATENCY_BOUNDS_NS, the last bucket > 1 s), for the command's
 * views. Command code only: the library never includes cli/.
 */
#ifndef PBR_CLI_LATENCY_H
#define PBR_CLI_LATENCY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pbring.h"

/* @out = @cur - @prev, bucket by bucket (the observations between two
 * snapshots of one reader's histogram); false, @out all 0, if a bucket
 * went back (a new owner of the entry, whose block started from 0). */
bool cli_lat_delta(uint64_t out[PBR_LATENCY_BUCKETS],
		   const uint64_t cur[PBR_LATENCY_BUCKETS],
		   const uint64_t prev[PBR_LATENCY_BUCKETS]);

/* The @pct percentile (0 < pct <= 100) of histogram @b in nanoseconds:
 * -1 if it holds no observation, INFINITY if the percentile falls in the
 * last (> 1 s) bucket. Within bucket i, whose observations lie in
 * (lo, hi], the rank r = pct/100 x count lands at the fraction f of the
 * bucket's own count (0 < f <= 1) and is interpolated log-linearly,
 * lo x (hi/lo)^f, as the bounds grow geometrically (1-2-5 per decade);
 * in bucket 0 (lo = 0) linearly, f x 100 ns. */
double cli_lat_pct(const uint64_t b[PBR_LATENCY_BUCKETS], double pct);

/* A percentile of cli_lat_pct() for a table column, no spaces: "-" (no
 * observation), "850ns", "12.3us", "4.1ms", "1.0s", ">1s". */
const char *cli_lat_text(double ns, char *buf, size_t len);

#endif /* PBR_CLI_LATENCY_H */
