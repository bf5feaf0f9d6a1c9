// SPDX-License-Identifier: MIT
/*
 * check_cli_latency: the command's percentiles of a reader's latency
 * histogram (cli/latency.h), which `pbring top` shows: empty and
 * one-bucket histograms, the log-linear interpolation within a bucket
 * (linear in the first), the > 1 s bucket, p50 <= p99 on random
 * histograms, the difference of two snapshots and the column text.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "latency.h"
#include "testutil.h"

#define NB PBR_LATENCY_BUCKETS

static const uint64_t bound[NB - 1] = PBR_LATENCY_BOUNDS_NS;

/* Relative closeness, for interpolated values. */
static void near(double a, double b)
{
	ck_assert_msg(fabs(a - b) <= 1e-9 * fabs(b) + 1e-9, "%.17g != %.17g", a,
		      b);
}

START_TEST(test_empty)
{
	uint64_t b[NB] = {0};

	ck_assert(cli_lat_pct(b, 50) < 0);
	ck_assert(cli_lat_pct(b, 99) < 0);
}
END_TEST

/* Every observation in bucket 3, (500, 1000] ns: geometric within it. */
START_TEST(test_one_bucket_log_linear)
{
	uint64_t b[NB] = {0};

	b[3] = 100;
	near(cli_lat_pct(b, 50), 500 * sqrt(2.0));
	near(cli_lat_pct(b, 99), 500 * pow(2.0, 0.99));
	near(cli_lat_pct(b, 100), 1000);
	ck_assert(cli_lat_pct(b, 0.001) > 500);
}
END_TEST

/* Bucket 0, (0, 100] ns, has no lower bound to scale: linear. */
START_TEST(test_first_bucket_linear)
{
	uint64_t b[NB] = {0};

	b[0] = 10;
	near(cli_lat_pct(b, 50), 50);
	near(cli_lat_pct(b, 99), 99);
}
END_TEST

/* Half in (2, 5] us, half in (50, 100] us: the rank picks the bucket. */
START_TEST(test_two_buckets)
{
	uint64_t b[NB] = {0};

	b[5] = 50;
	b[9] = 50;
	near(cli_lat_pct(b, 50), 5000);
	near(cli_lat_pct(b, 51), 50000 * pow(2.0, 1 / 50.0));
	near(cli_lat_pct(b, 99), 50000 * pow(2.0, 49 / 50.0));
}
END_TEST

/* The > 1 s bucket has no upper bound: INFINITY, shown as ">1s". */
START_TEST(test_over_a_second)
{
	uint64_t b[NB] = {0};
	char buf[16];

	b[NB - 1] = 5;
	ck_assert(isinf(cli_lat_pct(b, 50)));
	b[0] = 99;
	b[NB - 1] = 1;
	near(cli_lat_pct(b, 50), 50.0 * 100 / 99);
	near(cli_lat_pct(b, 99), 100);
	ck_assert(isinf(cli_lat_pct(b, 99.5)));
	ck_assert_str_eq(cli_lat_text(cli_lat_pct(b, 100), buf, sizeof(buf)),
			 ">1s");
}
END_TEST

/* The bucket a percentile falls in, from its value. */
static unsigned bucket_of(double v)
{
	unsigned i = 0;

	while (i < NB - 1 && v > (double)bound[i] * (1 + 1e-12))
		i++;
	return i;
}

/* Random sparse histograms: p50 <= p99, each in the bucket where the
 * cumulative count reaches its rank. */
START_TEST(test_random_monotonic)
{
	unsigned seed = 12345, k, i;

	for (k = 0; k < 2000; k++) {
		uint64_t b[NB] = {0}, cum = 0, total = 0;
		double p50, p99;

		for (i = 0; i < NB; i++)
			total += b[i] =
				rand_r(&seed) % 3 ? 0 : rand_r(&seed) % 50;
		p50 = cli_lat_pct(b, 50);
		p99 = cli_lat_pct(b, 99);
		if (!total) {
			ck_assert(p50 < 0 && p99 < 0);
			continue;
		}
		ck_assert(p50 > 0 && p50 <= p99);
		for (i = 0; cum + b[i] < 0.5 * (double)total; i++)
			cum += b[i];
		if (i < NB - 1)
			ck_assert_uint_eq(bucket_of(p50), i);
		else
			ck_assert(isinf(p50));
	}
}
END_TEST

START_TEST(test_delta)
{
	uint64_t prev[NB] = {0}, cur[NB] = {0}, d[NB];

	prev[4] = 7;
	cur[4] = 10;
	cur[NB - 1] = 2;
	ck_assert(cli_lat_delta(d, cur, prev));
	ck_assert_uint_eq(d[4], 3);
	ck_assert_uint_eq(d[NB - 1], 2);
	ck_assert_uint_eq(d[0], 0);
	/* a bucket that went back: another owner's block, no interval */
	prev[0] = 1;
	ck_assert(!cli_lat_delta(d, cur, prev));
	ck_assert_uint_eq(d[4], 0);
	ck_assert(cli_lat_pct(d, 50) < 0);
}
END_TEST

START_TEST(test_text)
{
	static const struct {
		double ns;
		const char *text;
	} cases[] = {
		{-1, "-"},	     {0, "0ns"},
		{850, "850ns"},	     {999.4, "999ns"},
		{999.6, "1.0us"},    {12345, "12.3us"},
		{999949, "999.9us"}, {999950, "1.0ms"},
		{4.1e6, "4.1ms"},    {999949999, "999.9ms"},
		{1e9, "1.0s"},	     {INFINITY, ">1s"},
	};
	char buf[16];
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_str_eq(cli_lat_text(cases[i].ns, buf, sizeof(buf)),
				 cases[i].text);
}
END_TEST

static Suite *latency_suite(void)
{
	Suite *s = suite_create("cli_latency");
	TCase *tc = tu_tcase("percentiles", 20);

	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_one_bucket_log_linear);
	tcase_add_test(tc, test_first_bucket_linear);
	tcase_add_test(tc, test_two_buckets);
	tcase_add_test(tc, test_over_a_second);
	tcase_add_test(tc, test_random_monotonic);
	tcase_add_test(tc, test_delta);
	tcase_add_test(tc, test_text);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(latency_suite());
}
