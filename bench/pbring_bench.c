/* SPDX-License-Identifier: MIT */
/*
 * pbring-bench: pbring against the hardware floor and the usual IPC
 * transports, each measured by the same runners in the same run, between
 * real processes pinned to distinct CPUs. See bench/README.md.
 *
 *   pbring-bench [--quick] [--json FILE] [--transports a,b] [--sizes n,m]
 *		  [--methods pingpong,fixed-rate,stream] [--samples N]
 *		  [--no-iceoryx] [--reader go]
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

unsigned bench_run_id;
int bench_verbose;

#define MAX_CASES 1024
#define MS 1000000ull
#define SEC 1000000000ull

struct opts {
	bool quick, no_iceoryx;
	bool go_reader; /* --reader go: add pbring-go and pbring-raw-go */
	const char *json;
	const char *transports; /* comma list, NULL = all */
	const char *methods;
	uint32_t sizes[16];
	unsigned nsizes;
	uint64_t samples;
};

struct combo {
	const struct xport *x;
	enum mode mode;
};

/* Latency: the floor and pbring first, so the closest comparisons are
 * measured next to each other. */
static const struct combo lat_combos[] = {
	{&xport_floor, MODE_SPIN},	    {&xport_pbring_raw, MODE_SPIN},
	{&xport_pbring_metrics, MODE_SPIN}, {&xport_pbring_stamped, MODE_SPIN},
	{&xport_pbring, MODE_SPIN},	    {&xport_pbring_inplace, MODE_SPIN},
	{&xport_pbring_nocrc, MODE_SPIN},   {&xport_pbring_raw_go, MODE_SPIN},
	{&xport_pbring_go, MODE_SPIN},	    {&xport_iceoryx, MODE_SPIN},
	{&xport_iceoryx2, MODE_SPIN},	    {&xport_futex, MODE_BLOCK},
	{&xport_pbring_raw, MODE_BLOCK},    {&xport_pbring, MODE_BLOCK},
	{&xport_pbring_raw_go, MODE_BLOCK}, {&xport_pbring_go, MODE_BLOCK},
	{&xport_iceoryx, MODE_BLOCK},	    {&xport_iceoryx2, MODE_BLOCK},
	{&xport_pipe, MODE_BLOCK},	    {&xport_unix, MODE_BLOCK},
	{&xport_seqpacket, MODE_BLOCK},	    {&xport_mqueue, MODE_BLOCK},
};

/* Fixed rate: spinning receivers at 100 kHz; blocking ones at 10 kHz,
 * slow enough that pbring's ~60 us spin phase ends and it sleeps. */
static const struct combo fr_combos[] = {
	{&xport_floor, MODE_SPIN},	 {&xport_pbring_raw, MODE_SPIN},
	{&xport_pbring, MODE_SPIN},	 {&xport_iceoryx, MODE_SPIN},
	{&xport_iceoryx2, MODE_SPIN},	 {&xport_futex, MODE_BLOCK},
	{&xport_pbring_raw, MODE_BLOCK}, {&xport_pbring, MODE_BLOCK},
	{&xport_iceoryx, MODE_BLOCK},	 {&xport_iceoryx2, MODE_BLOCK},
	{&xport_unix, MODE_BLOCK},
};

static const struct combo tp_combos[] = {
	{&xport_memcpy, MODE_SPIN},	    {&xport_pbring_raw, MODE_SPIN},
	{&xport_pbring_metrics, MODE_SPIN}, {&xport_pbring_stamped, MODE_SPIN},
	{&xport_pbring, MODE_SPIN},	    {&xport_pbring_inplace, MODE_SPIN},
	{&xport_pbring_nocrc, MODE_SPIN},   {&xport_iceoryx, MODE_SPIN},
	{&xport_iceoryx2, MODE_SPIN},	    {&xport_pbring_raw, MODE_BLOCK},
	{&xport_pbring, MODE_BLOCK},	    {&xport_iceoryx, MODE_BLOCK},
	{&xport_iceoryx2, MODE_BLOCK},	    {&xport_pipe, MODE_BLOCK},
	{&xport_unix, MODE_BLOCK},	    {&xport_seqpacket, MODE_BLOCK},
	{&xport_mqueue, MODE_BLOCK},
};

static const unsigned topo[][2] = {{1, 1}, {2, 1}, {1, 3}};

static const uint32_t lat_full[] = {64,	   256,	  1024,	  4096,
				    16384, 65536, 262144, 1048576};
static const uint32_t lat_quick[] = {64, 65536, 1048576};
static const uint32_t tp_full[] = {64, 1024, 16384, 65536, 1048576};
static const uint32_t tp_quick[] = {64, 1048576};

static struct bench_case cases[MAX_CASES];
static struct result results[2 * MAX_CASES];
static size_t ncases, nresults;
static bool iox_ok;

static bool listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	if (!list)
		return true;
	while ((p = strstr(p, name))) {
		if ((p == list || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return true;
		p += n;
	}
	return false;
}

static bool size_ok(const struct opts *o, uint32_t s)
{
	unsigned i;

	if (!o->nsizes)
		return true;
	for (i = 0; i < o->nsizes; i++)
		if (o->sizes[i] == s)
			return true;
	return false;
}

static void add(const struct opts *o, const struct bench_case *k)
{
	if (ncases == MAX_CASES || !listed(o->transports, k->x->name) ||
	    !size_ok(o, k->msg_bytes))
		return;
	if (k->x == &xport_iceoryx && !iox_ok)
		return;
	if (k->x->go_kind && !o->go_reader)
		return;
	if (!(k->x->modes & (1u << k->mode)))
		return;
	cases[ncases++] = *k;
}

/*
 * 100 000 samples, unless that takes longer than the budget: in the full
 * run only the large sizes of slow transports; in --quick also the
 * blocking transports at 64 B (each round trip is two wake-ups) and every
 * transport from 64 KiB on (500 samples).
 */
static void lat_budget(const struct opts *o, struct bench_case *k)
{
	k->samples = 100000;
	k->budget_ns = 8 * SEC;
	if (o->quick && k->msg_bytes >= 65536) {
		k->samples = 500;
		k->budget_ns = 100 * MS;
	} else if (o->quick) {
		k->budget_ns = 1 * SEC;
	} else if (k->msg_bytes >= 65536) {
		k->budget_ns = 2 * SEC;
	}
	if (o->samples)
		k->samples = o->samples;
}

static void add_latency(const struct opts *o)
{
	const uint32_t *sz = o->quick ? lat_quick : lat_full;
	size_t ns = o->quick ? sizeof(lat_quick) / 4 : sizeof(lat_full) / 4;
	struct bench_case k = {.kind = KIND_LATENCY,
			       .method = METHOD_PINGPONG,
			       .nprod = 1,
			       .nread = 1};
	size_t i, j;

	for (i = 0; i < ns; i++) {
		for (j = 0; j < sizeof(lat_combos) / sizeof(lat_combos[0]);
		     j++) {
			k.x = lat_combos[j].x;
			k.mode = lat_combos[j].mode;
			k.msg_bytes = sz[i];
			lat_budget(o, &k);
			add(o, &k);
		}
	}
}

static void add_fixed_rate(const struct opts *o)
{
	struct bench_case k = {.kind = KIND_LATENCY,
			       .method = METHOD_FIXED_RATE,
			       .nprod = 1,
			       .nread = 1,
			       .msg_bytes = 64};
	size_t j;

	for (j = 0; j < sizeof(fr_combos) / sizeof(fr_combos[0]); j++) {
		k.x = fr_combos[j].x;
		k.mode = fr_combos[j].mode;
		k.rate_hz = k.mode == MODE_SPIN ? 100000 : 10000;
		k.samples = o->samples ? o->samples
			    : o->quick ? (k.mode == MODE_SPIN ? 20000 : 3000)
				       : 100000;
		k.budget_ns = k.samples * SEC / k.rate_hz;
		add(o, &k);
	}
}

static void add_throughput(const struct opts *o)
{
	const uint32_t *sz = o->quick ? tp_quick : tp_full;
	size_t ns = o->quick ? sizeof(tp_quick) / 4 : sizeof(tp_full) / 4;
	struct bench_case k = {.kind = KIND_THROUGHPUT,
			       .method = METHOD_STREAM};
	size_t i, j, t;

	for (i = 0; i < ns; i++) {
		for (t = 0; t < 3; t++) {
			for (j = 0;
			     j < sizeof(tp_combos) / sizeof(tp_combos[0]);
			     j++) {
				k.x = tp_combos[j].x;
				k.mode = tp_combos[j].mode;
				k.msg_bytes = sz[i];
				k.nprod = topo[t][0];
				k.nread = topo[t][1];
				k.budget_ns = o->quick ? 100 * MS : 500 * MS;
				if (k.x == &xport_memcpy && t)
					continue; /* one process, one figure */
				if (o->quick && t && sz[i] != 64)
					continue; /* fan-in/out: 64 B only */
				add(o, &k);
			}
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pbring-bench [--quick] [--json FILE] [--transports "
		"LIST]\n"
		"                    [--sizes LIST] [--methods LIST] "
		"[--samples N]\n"
		"                    [--no-iceoryx] [--reader go]\n"
		"  --quick        smoke run, under 30 s\n"
		"  --json FILE    write every result (schema: "
		"bench/README.md)\n"
		"  --transports   "
		"floor,futex,pbring,pbring-raw,pbring-inplace,\n"
		"                 pbring-nocrc,pbring-metrics,pbring-stamped,\n"
		"                 pipe,unix,\n"
		"                 unix-seqpacket,mqueue,iceoryx,iceoryx2,"
		"memcpy,\n"
		"                 pbring-go,pbring-raw-go (with --reader go)\n"
		"  --sizes        message sizes in bytes, e.g. 64,1024\n"
		"  --methods      pingpong,fixed-rate,stream\n"
		"  --samples N    latency samples per case (default 100000)\n"
		"  --reader go    also ping-pong pbring and pbring-raw with "
		"the "
		"echo side\n"
		"                 in Go (pbring-go, pbring-raw-go), run by "
		"pbring-bench-go\n"
		"                 next to this executable or "
		"$PBRING_BENCH_GO\n");
}

/* "64,1024": split a copy, as strtok_r writes into its string and argv
 * must stay as given (the JSON records the command line). */
static int parse_sizes(struct opts *o, const char *arg)
{
	char *s = strdup(arg), *tok, *end, *save = NULL;
	unsigned long v;
	int rc = 0;

	if (!s)
		return -ENOMEM;
	for (tok = strtok_r(s, ",", &save); tok && !rc;
	     tok = strtok_r(NULL, ",", &save)) {
		errno = 0;
		v = strtoul(tok, &end, 0);
		/* stamp and sequence need 16 B; the floor's message is a
		 * 64 B line */
		if (errno || *end || v < 64 || v > UINT32_MAX ||
		    o->nsizes == sizeof(o->sizes) / sizeof(o->sizes[0]))
			rc = -EINVAL;
		else
			o->sizes[o->nsizes++] = (uint32_t)v;
	}
	free(s);
	return rc;
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{"quick", no_argument, NULL, 'q'},
		{"json", required_argument, NULL, 'j'},
		{"transports", required_argument, NULL, 't'},
		{"sizes", required_argument, NULL, 's'},
		{"methods", required_argument, NULL, 'm'},
		{"samples", required_argument, NULL, 'n'},
		{"no-iceoryx", no_argument, NULL, 'I'},
		{"reader", required_argument, NULL, 'r'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "qj:t:s:m:n:Ivh", lo, NULL)) !=
	       -1) {
		switch (c) {
		case 'q':
			o->quick = true;
			break;
		case 'j':
			o->json = optarg;
			break;
		case 't':
			o->transports = optarg;
			break;
		case 's':
			if (parse_sizes(o, optarg))
				return -EINVAL;
			break;
		case 'm':
			o->methods = optarg;
			break;
		case 'n':
			o->samples = strtoull(optarg, NULL, 0);
			break;
		case 'I':
			o->no_iceoryx = true;
			break;
		case 'r':
			if (strcmp(optarg, "go") && strcmp(optarg, "c"))
				return -EINVAL;
			o->go_reader = !strcmp(optarg, "go");
			break;
		case 'v':
			bench_verbose = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -EINVAL;
		}
	}
	return optind == argc ? 0 : -EINVAL;
}

static void on_signal(int sig)
{
	iceoryx_stop();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void setup_iceoryx(const struct opts *o)
{
	char why[160];
	int rc;

	if (o->no_iceoryx || !listed(o->transports, "iceoryx"))
		return;
	if (!iceoryx_available(why, sizeof(why))) {
		printf("iceoryx: skipped: %s\n", why);
		return;
	}
	rc = iceoryx_start();
	if (rc) {
		printf("iceoryx: skipped: iox-roudi did not start (%s)\n",
		       strerror(-rc));
		iceoryx_stop(); /* its config and log */
		return;
	}
	atexit(iceoryx_stop);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	iox_ok = true;
}

/* pbring-bench-go: $PBRING_BENCH_GO, else next to this executable. */
static int setup_go(const struct opts *o)
{
	static char path[4096];
	const char *env = getenv("PBRING_BENCH_GO");
	ssize_t n;
	char *slash;

	if (!o->go_reader)
		return 0;
	if (env && *env) {
		snprintf(path, sizeof(path), "%s", env);
	} else {
		n = readlink("/proc/self/exe", path, sizeof(path) - 32);
		if (n < 0)
			return -errno;
		path[n] = 0;
		slash = strrchr(path, '/');
		strcpy(slash ? slash + 1 : path, "pbring-bench-go");
	}
	if (access(path, X_OK)) {
		fprintf(stderr,
			"pbring-bench: --reader go: %s: %s (build it: cd go "
			"&& go build -o PATH ./cmd/pbring-bench-go, or set "
			"PBRING_BENCH_GO)\n",
			path, strerror(errno));
		return -ENOENT;
	}
	bench_go_bin = path;
	return 0;
}

static void run_all(void)
{
	size_t i;
	int n, j;

	for (i = 0; i < ncases; i++) {
		n = case_run(&cases[i], &results[nresults],
			     (unsigned)(2 * MAX_CASES - nresults));
		for (j = 0; j < n; j++)
			report_line(&results[nresults + (size_t)j]);
		nresults += (size_t)n;
	}
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct run_info ri = {.argc = argc, .argv = argv};
	int rc;

	if (parse(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	if (setup_go(&o))
		return 1;
	bench_run_id = (unsigned)getpid();
	ri.quick = o.quick;
	ri.t_start_ns = bench_now_ns();
	read_loadavg(ri.load_start);
	setup_iceoryx(&o);
	if (listed(o.methods, "pingpong"))
		add_latency(&o);
	if (listed(o.methods, "fixed-rate"))
		add_fixed_rate(&o);
	if (listed(o.methods, "stream"))
		add_throughput(&o);
	printf("pbring-bench: %zu cases; placement: A/producers cpu0, "
	       "B/readers cpu1\n",
	       ncases);
	run_all();
	read_loadavg(ri.load_end);
	ri.t_end_ns = bench_now_ns();
	report_summary(results, nresults);
	printf("total %.1f s\n", (double)(ri.t_end_ns - ri.t_start_ns) * 1e-9);
	if (o.json) {
		rc = report_json(o.json, &ri, results, nresults);
		if (rc) {
			fprintf(stderr, "pbring-bench: %s: %s\n", o.json,
				strerror(-rc));
			return 1;
		}
	}
	return 0;
}
