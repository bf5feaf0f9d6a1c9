/* SPDX-License-Identifier: MIT */
/*
 * Output: one line per result as it comes, the JSON file (schema in
 * bench/README.md), and a closing summary of the targets, each
 * a ratio of two figures from this same run.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#ifndef PBR_BENCH_COMPILER
#define PBR_BENCH_COMPILER "unknown"
#endif
#ifndef PBR_BENCH_BUILD_TYPE
#define PBR_BENCH_BUILD_TYPE "unknown"
#endif

void read_loadavg(double la[3])
{
	FILE *f = fopen("/proc/loadavg", "r");

	la[0] = la[1] = la[2] = -1;
	if (!f)
		return;
	if (fscanf(f, "%lf %lf %lf", &la[0], &la[1], &la[2]) != 3)
		la[0] = la[1] = la[2] = -1;
	fclose(f);
}

static void fmt_ns(char *buf, size_t len, uint64_t ns)
{
	if (ns < 10000)
		snprintf(buf, len, "%lluns", (unsigned long long)ns);
	else if (ns < 10000000)
		snprintf(buf, len, "%.1fus", (double)ns / 1e3);
	else
		snprintf(buf, len, "%.1fms", (double)ns / 1e6);
}

static void fmt_size(char *buf, size_t len, uint32_t b)
{
	if (b >= 1048576 && !(b % 1048576))
		snprintf(buf, len, "%uMiB", b >> 20);
	else if (b >= 1024 && !(b % 1024))
		snprintf(buf, len, "%uKiB", b >> 10);
	else
		snprintf(buf, len, "%uB", b);
}

void report_line(const struct result *r)
{
	char sz[16], a[16], b[16], c[16], d[16];

	fmt_size(sz, sizeof(sz), r->msg_bytes);
	printf("%-14s %-5s %-10s %-7s %ux%u", r->transport, r->mode, r->method,
	       sz, r->nprod, r->nread);
	if (r->error[0]) {
		printf("  %s: %s\n", r->skipped ? "skipped" : "FAILED",
		       r->error);
		return;
	}
	if (r->has_lat) {
		fmt_ns(a, sizeof(a), r->p50);
		fmt_ns(b, sizeof(b), r->p99);
		fmt_ns(c, sizeof(c), r->p999);
		fmt_ns(d, sizeof(d), r->max);
		printf("  n=%-7llu p50 %-8s p99 %-8s p99.9 %-8s max %s\n",
		       (unsigned long long)r->samples, a, b, c, d);
	} else {
		printf("  %.2f Mmsg/s  %.2f GB/s\n", r->msgs_per_s / 1e6,
		       r->bytes_per_s / 1e9);
	}
	fflush(stdout);
}

/* --- machine
 * ------------------------------------------------------------------ */

static void cpuinfo(char *model, size_t len, bool *hypervisor)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[4096], *p;

	snprintf(model, len, "unknown");
	*hypervisor = false;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "model name", 10) &&
		    (p = strchr(line, ':'))) {
			snprintf(model, len, "%s", p + 2);
			model[strcspn(model, "\n")] = '\0';
		}
		if (!strncmp(line, "flags", 5) && strstr(line, " hypervisor"))
			*hypervisor = true;
	}
	fclose(f);
}

/* What one CLOCK_MONOTONIC read costs: every latency sample has one. */
static double clock_cost_ns(void)
{
	uint64_t t0 = bench_now_ns(), i;

	for (i = 0; i < 200000; i++)
		bench_keep(bench_now_ns());
	return (double)(bench_now_ns() - t0) / 200000.0;
}

/* s's characters, escaped for inside a JSON string. */
static void json_chars(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	json_chars(f, s);
	fputc('"', f);
}

/* "command": the words joined by spaces, to read; "argv": the words. */
static void json_command(FILE *f, int argc, char **argv)
{
	int i;

	fputs("    \"command\": \"", f);
	for (i = 0; i < argc; i++) {
		if (i)
			fputc(' ', f);
		json_chars(f, argv[i]);
	}
	fputs("\",\n    \"argv\": [", f);
	for (i = 0; i < argc; i++) {
		fputs(i ? ", " : "", f);
		json_str(f, argv[i]);
	}
	fputc(']', f);
}

static void json_machine(FILE *f, const struct run_info *ri)
{
	char model[256], when[32];
	struct utsname u;
	bool hv;
	time_t now = time(NULL);

	cpuinfo(model, sizeof(model), &hv);
	uname(&u);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	fprintf(f, "  \"machine\": {\n    \"cpu_model\": ");
	json_str(f, model);
	fprintf(f,
		",\n    \"cpus_online\": %ld,\n    \"cores_used\": [0, 1],\n",
		sysconf(_SC_NPROCESSORS_ONLN));
	fprintf(f, "    \"hypervisor\": %s,\n    \"kernel\": ",
		hv ? "true" : "false");
	json_str(f, u.release);
	fprintf(f, ",\n    \"kernel_version\": ");
	json_str(f, u.version);
	fprintf(f, ",\n    \"compiler\": ");
	json_str(f, PBR_BENCH_COMPILER);
	fprintf(f, ",\n    \"build_type\": ");
	json_str(f, PBR_BENCH_BUILD_TYPE);
	fprintf(f, ",\n    \"pbring_version\": ");
	json_str(f, pbr_version());
	fprintf(f, ",\n    \"clock_gettime_ns\": %.1f,\n", clock_cost_ns());
	fprintf(f, "    \"loadavg_start\": [%.2f, %.2f, %.2f],\n",
		ri->load_start[0], ri->load_start[1], ri->load_start[2]);
	fprintf(f, "    \"loadavg_end\": [%.2f, %.2f, %.2f],\n",
		ri->load_end[0], ri->load_end[1], ri->load_end[2]);
	fprintf(f, "    \"date\": \"%s\",\n    \"duration_s\": %.1f,\n", when,
		(double)(ri->t_end_ns - ri->t_start_ns) * 1e-9);
	fprintf(f, "    \"quick\": %s,\n", ri->quick ? "true" : "false");
	json_command(f, ri->argc, ri->argv);
	fprintf(f, "\n  },\n");
}

static void json_u64(FILE *f, const char *k, uint64_t v, bool on)
{
	if (on)
		fprintf(f, ", \"%s\": %llu", k, (unsigned long long)v);
	else
		fprintf(f, ", \"%s\": null", k);
}

static void json_result(FILE *f, const struct result *r, bool comma)
{
	bool lat = r->has_lat && !r->error[0];
	bool tp = r->has_tput && !r->error[0];

	fprintf(f,
		"    {\"transport\": \"%s\", \"mode\": \"%s\", "
		"\"kind\": \"%s\", \"method\": \"%s\", \"msg_bytes\": %u",
		r->transport, r->mode, r->kind, r->method, r->msg_bytes);
	fprintf(f, ", \"producers\": %u, \"readers\": %u, \"placement\": ",
		r->nprod, r->nread);
	json_str(f, r->placement);
	fprintf(f, ", \"samples\": %llu", (unsigned long long)r->samples);
	json_u64(f, "p50_ns", r->p50, lat);
	json_u64(f, "p90_ns", r->p90, lat);
	json_u64(f, "p99_ns", r->p99, lat);
	json_u64(f, "p999_ns", r->p999, lat);
	json_u64(f, "p9999_ns", r->p9999, lat);
	json_u64(f, "max_ns", r->max, lat);
	json_u64(f, "min_ns", r->min, lat);
	json_u64(f, "mean_ns", r->mean, lat);
	if (tp)
		fprintf(f, ", \"msgs_per_s\": %.0f, \"bytes_per_s\": %.0f",
			r->msgs_per_s, r->bytes_per_s);
	else
		fprintf(f, ", \"msgs_per_s\": null, \"bytes_per_s\": null");
	json_u64(f, "rate_hz", r->rate_hz, r->rate_hz != 0);
	fprintf(f, ", \"elapsed_s\": %.3f", r->elapsed_s);
	if (r->error[0]) {
		fprintf(f, ", \"%s\": ", r->skipped ? "skipped" : "error");
		json_str(f, r->error);
	}
	fprintf(f, "}%s\n", comma ? "," : "");
}

int report_json(const char *path, const struct run_info *ri,
		const struct result *r, size_t n)
{
	FILE *f = fopen(path, "w");
	size_t i;

	if (!f)
		return -errno;
	fprintf(f, "{\n");
	json_machine(f, ri);
	fprintf(f, "  \"results\": [\n");
	for (i = 0; i < n; i++)
		json_result(f, &r[i], i + 1 < n);
	fprintf(f, "  ]\n}\n");
	return fclose(f) ? -errno : 0;
}

/* --- targets
 * -------------------------------------------------------------------- */

static const struct result *find(const struct result *r, size_t n,
				 const char *tr, const char *mode,
				 const char *method, uint32_t size, unsigned np,
				 unsigned nr)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(r[i].transport, tr) && !strcmp(r[i].mode, mode) &&
		    !strcmp(r[i].method, method) && r[i].msg_bytes == size &&
		    r[i].nprod == np && r[i].nread == nr && !r[i].error[0])
			return &r[i];
	return NULL;
}

struct target {
	const char *what;
	const char *tr, *mode, *method; /* numerator */
	const char *btr, *bmode;	/* baseline (same method) */
	int stat;			/* 0 p50, 1 p99.9 */
	double limit;			/* ratio must be <= limit */
};

static uint64_t stat_of(const struct result *r, int stat)
{
	return stat ? r->p999 : r->p50;
}

static void ratio_line(const struct target *t, const struct result *a,
		       const struct result *b)
{
	double q;

	if (!a || !b) {
		printf("  %-52s n/a (not measured)\n", t->what);
		return;
	}
	q = (double)stat_of(a, t->stat) / (double)stat_of(b, t->stat);
	printf("  %-52s %6.2fx (%llu / %llu ns)  %s\n", t->what, q,
	       (unsigned long long)stat_of(a, t->stat),
	       (unsigned long long)stat_of(b, t->stat),
	       q <= t->limit ? "met" : "MISSED");
}

static const struct target targets[] = {
	{"raw 64B spin p50 <= 1.3x floor [rtt/2]", "pbring-raw", "spin",
	 "rtt/2", "floor", "spin", 0, 1.3},
	{"raw 64B spin p50 <= 1.3x floor [one-way]", "pbring-raw", "spin",
	 "one-way", "floor", "spin", 0, 1.3},
	{"DeviceEvent 64B spin p50 <= 2x floor [rtt/2]", "pbring", "spin",
	 "rtt/2", "floor", "spin", 0, 2.0},
	{"DeviceEvent 64B spin p50 <= 2x floor [one-way]", "pbring", "spin",
	 "one-way", "floor", "spin", 0, 2.0},
	{"raw 64B spin p99.9 <= 4x floor [rtt/2]", "pbring-raw", "spin",
	 "rtt/2", "floor", "spin", 1, 4.0},
	{"raw 64B spin p99.9 <= 4x floor [one-way]", "pbring-raw", "spin",
	 "one-way", "floor", "spin", 1, 4.0},
	{"raw 64B spin p50 <= 1/50 unix [rtt/2]", "pbring-raw", "spin", "rtt/2",
	 "unix", "block", 0, 0.02},
	{"raw 64B spin p50 <= 1/2 iceoryx spin [rtt/2]", "pbring-raw", "spin",
	 "rtt/2", "iceoryx", "spin", 0, 0.5},
	{"raw 64B block p50 <= 1.2x futex [one-way]", "pbring-raw", "block",
	 "one-way", "futex", "block", 0, 1.2},
	{"raw 64B block (asleep) p50 <= 1.2x futex [fixed-rate]", "pbring-raw",
	 "block", "fixed-rate", "futex", "block", 0, 1.2},
};

static void tput_line(const char *what, const struct result *a, double want,
		      double base)
{
	if (!a || base <= 0) {
		printf("  %-52s n/a (not measured)\n", what);
		return;
	}
	printf("  %-52s %8.2f M/s vs %.2f  %s\n", what, a->msgs_per_s / 1e6,
	       want * base / 1e6,
	       a->msgs_per_s >= want * base ? "met" : "MISSED");
}

/* Issue 14: the protobuf path against the raw ring, size by size. */
struct codec_target {
	const char *tr;
	uint32_t size;
	double limit;
};

static const struct codec_target codec_targets[] = {
	{"pbring", 64, 3.0},
	{"pbring", 4096, 1.5},
	{"pbring-nocrc", 65536, 1.3},
	{"pbring-inplace", 65536, 2.0},
	{"pbring-nocrc", 1048576, 1.3},
	{"pbring-inplace", 1048576, 2.0},
};

/* Issue 14's headline: the strongest peer, iceoryx2, size by size (spin
 * one-way p50; both measured in this run). */
static const struct codec_target iox2_targets[] = {
	{"pbring-raw", 64, 0.5}, {"pbring-raw", 4096, 0.5},
	{"pbring", 64, 1.0},	 {"pbring", 4096, 1.0},
	{"pbring", 65536, 1.0},	 {"pbring", 1048576, 1.0},
};

static void iox2_lines(const struct result *r, size_t n)
{
	const struct codec_target *t;
	struct target line = {0};
	char what[96];

	for (t = iox2_targets;
	     t < iox2_targets + sizeof(iox2_targets) / sizeof(*iox2_targets);
	     t++) {
		snprintf(what, sizeof(what),
			 "%s %uB spin p50 <= %.1fx iceoryx2 [one-way]",
			 strcmp(t->tr, "pbring") ? t->tr
						 : "pbring (DeviceEvent)",
			 (unsigned)t->size, t->limit);
		line.what = what;
		line.limit = t->limit;
		ratio_line(&line,
			   find(r, n, t->tr, "spin", "one-way", t->size, 1, 1),
			   find(r, n, "iceoryx2", "spin", "one-way", t->size, 1,
				1));
	}
}

static void codec_summary(const struct result *r, size_t n)
{
	const struct codec_target *t;
	struct target line = {0};
	char what[80];

	printf("\nThe protobuf path against pbring-raw (spin one-way p50):\n");
	for (t = codec_targets;
	     t < codec_targets + sizeof(codec_targets) / sizeof(*codec_targets);
	     t++) {
		snprintf(what, sizeof(what), "%s %u B <= %.1fx pbring-raw",
			 t->tr, (unsigned)t->size, t->limit);
		line.what = what;
		line.limit = t->limit;
		ratio_line(&line,
			   find(r, n, t->tr, "spin", "one-way", t->size, 1, 1),
			   find(r, n, "pbring-raw", "spin", "one-way", t->size,
				1, 1));
	}
}

/* Issue 15: the ring's per-message metrics against pbring-raw, 64 B, as
 * ratios of this run: slot timestamps alone (pbring-stamped), then with
 * the reader's latency histogram (pbring-metrics). */
static void metrics_summary(const struct result *r, size_t n)
{
	static const char *const tr[] = {"pbring-stamped", "pbring-metrics"};
	const struct result *raw, *a;
	struct target line = {.limit = 1.05};
	char what[80];
	size_t i;

	raw = find(r, n, "pbring-raw", "spin", "stream", 64, 1, 1);
	printf("\nMetrics on against off (pbring-raw, 64 B spin):\n");
	for (i = 0; i < 2; i++) {
		snprintf(what, sizeof(what), "%s one-way p50 <= 1.05x raw",
			 tr[i]);
		line.what = what;
		ratio_line(
			&line, find(r, n, tr[i], "spin", "one-way", 64, 1, 1),
			find(r, n, "pbring-raw", "spin", "one-way", 64, 1, 1));
		snprintf(what, sizeof(what), "%s 1->1 msgs/s >= 0.95x raw",
			 tr[i]);
		a = find(r, n, tr[i], "spin", "stream", 64, 1, 1);
		tput_line(what, a, 0.95, raw ? raw->msgs_per_s : 0);
	}
}

/* Issue 14: a Go reader (--reader go) against the C reader, per size. */
static void go_summary(const struct result *r, size_t n)
{
	static const char *const pairs[][2] = {{"pbring-raw-go", "pbring-raw"},
					       {"pbring-go", "pbring"}};
	struct target line = {.limit = 1.3};
	char what[80];
	size_t i, j;

	for (i = 0; i < n && strcmp(r[i].transport, "pbring-go") &&
		    strcmp(r[i].transport, "pbring-raw-go");
	     i++)
		;
	if (i == n)
		return; /* no --reader go */
	printf("\nGo reader against C reader (spin one-way p50):\n");
	for (j = 0; j < 2; j++) {
		for (i = 0; i < n; i++) {
			const struct result *g = &r[i];

			if (strcmp(g->transport, pairs[j][0]) ||
			    strcmp(g->mode, "spin") ||
			    strcmp(g->method, "one-way"))
				continue;
			snprintf(what, sizeof(what), "%s %u B <= 1.3x %s",
				 pairs[j][0], (unsigned)g->msg_bytes,
				 pairs[j][1]);
			line.what = what;
			ratio_line(&line, g,
				   find(r, n, pairs[j][1], "spin", "one-way",
					g->msg_bytes, 1, 1));
		}
	}
}

void report_summary(const struct result *r, size_t n)
{
	const struct result *mc, *big;
	size_t i;

	printf("\nTargets (ratios within this run, 64 B unless noted):\n");
	for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		const struct target *t = &targets[i];

		ratio_line(t, find(r, n, t->tr, t->mode, t->method, 64, 1, 1),
			   find(r, n, t->btr, t->bmode, t->method, 64, 1, 1));
	}
	iox2_lines(r, n);
	tput_line("raw 64B 1->1 spin >= 30 M msg/s",
		  find(r, n, "pbring-raw", "spin", "stream", 64, 1, 1), 30e6,
		  1);
	tput_line("DeviceEvent 64B 1->1 spin >= 10 M msg/s",
		  find(r, n, "pbring", "spin", "stream", 64, 1, 1), 10e6, 1);
	codec_summary(r, n);
	mc = find(r, n, "memcpy", "spin", "stream", 1048576, 1, 1);
	big = find(r, n, "pbring", "spin", "stream", 1048576, 1, 1);
	tput_line("DeviceEvent 1MiB 1->1 spin >= 0.5x memcpy (msgs/s)", big,
		  0.5, mc ? mc->msgs_per_s : 0);
	metrics_summary(r, n);
	go_summary(r, n);
}
