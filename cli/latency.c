/* SPDX-License-Identifier: MIT */
/*
 * Percentiles of the readers' latency histograms (cli/latency.h).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "latency.h"

static const uint64_t bounds[PBR_LATENCY_BUCKETS - 1] = PBR_LATENCY_BOUNDS_NS;

bool cli_lat_delta(uint64_t out[PBR_LATENCY_BUCKETS],
		   const uint64_t cur[PBR_LATENCY_BUCKETS],
		   const uint64_t prev[PBR_LATENCY_BUCKETS])
{
	unsigned i;

	for (i = 0; i < PBR_LATENCY_BUCKETS; i++) {
		if (cur[i] < prev[i]) {
			memset(out, 0, sizeof(out[0]) * PBR_LATENCY_BUCKETS);
			return false;
		}
		out[i] = cur[i] - prev[i];
	}
	return true;
}

/* The value at fraction f (0 < f <= 1) of bucket i's observations. */
static double within(unsigned i, double f)
{
	double hi = (double)bounds[i], lo;

	if (i == 0)
		return f * hi;
	lo = (double)bounds[i - 1];
	return lo * pow(hi / lo, f);
}

double cli_lat_pct(const uint64_t b[PBR_LATENCY_BUCKETS], double pct)
{
	double count = 0, rank, seen = 0;
	unsigned i;

	for (i = 0; i < PBR_LATENCY_BUCKETS; i++)
		count += (double)b[i];
	if (count == 0)
		return -1;
	rank = pct / 100 * count;
	for (i = 0; i < PBR_LATENCY_BUCKETS - 1; i++) {
		if (!b[i])
			continue;
		if (seen + (double)b[i] >= rank)
			return within(i, (rank - seen) / (double)b[i]);
		seen += (double)b[i];
	}
	return INFINITY;
}

const char *cli_lat_text(double ns, char *buf, size_t len)
{
	/* The limits keep rounding from printing "1000" of a unit, as
	 * cli_duration() does; the largest finite value is 1 s. */
	if (ns < 0)
		snprintf(buf, len, "-");
	else if (isinf(ns))
		snprintf(buf, len, ">1s");
	else if (ns < 999.5)
		snprintf(buf, len, "%.0fns", ns);
	else if (ns < 999950)
		snprintf(buf, len, "%.1fus", ns / 1e3);
	else if (ns < 999950000)
		snprintf(buf, len, "%.1fms", ns / 1e6);
	else
		snprintf(buf, len, "%.1fs", ns / 1e9);
	return buf;
}
