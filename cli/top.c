/* SPDX-License-Identifier: MIT */
/*
 * `pbring top`: every ring on the host (or the rings named), each
 * producer and reader with its message rate, lag, losses, the share of
 * the interval a producer spent blocked on a full ring, a reader's
 * latency p50 and p99 over the interval, and liveness, refreshed every
 * interval. On a terminal: a full-screen table, sorted by a key, that
 * quits on 'q' (or Ctrl-C); otherwise plain lines, one block per
 * refresh. The rates are the differences of the counters the ring
 * keeps (cli/metrics.c's snapshots), the percentiles those of the
 * differences of the readers' latency histograms (cli/latency.h): the
 * tool never joins a ring.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "latency.h"

#define TOP_RINGS 256
#define TOP_ROWS 4096

static const char top_help[] =
	"usage: pbring top [--interval SEC] [--once] [RING...]\n"
	"A live view of the rings on this host (or those named): per ring and\n"
	"participant, its message rate, lag, losses, the share of the last\n"
	"interval a producer spent blocked on a full ring, a reader's\n"
	"commit-to-receive latency P50 and P99 over the last interval (from\n"
	"the ring's histogram, interpolated within a bucket; '-': no message\n"
	"in the interval, '>1s': beyond the last bound), and whether its\n"
	"process is alive; refreshed every --interval (default 1 s).\n"
	"On a terminal: keys q (quit), s (sort by: ring, rate, lag, p99);\n"
	"Ctrl-C quits too. Otherwise (a pipe, a file): plain lines, a block\n"
	"per refresh, each line:\n"
	"  RING ROLE ID PID STATE RATE LAG TOTAL LOST BLOCKED P50 P99 [NAME]\n"
	"A durable reader (consume --durable) has ROLE durable, its NAME at "
	"the\n"
	"end, and STATE detached while no process owns it (it still holds\n"
	"producers back).\n"
	"  --interval SEC  seconds between refreshes (0.1 .. 3600)\n"
	"  --once          one refresh (after one interval, for the rates), "
	"then exit\n"
	"Reads the rings' counters and participant tables; never joins a "
	"ring.\n";

/* One participant between two refreshes. */
struct top_row {
	char ring[PBR_NAME_MAX + 1];
	const char *role; /* producer, gating, lossy */
	uint32_t index, pid;
	bool alive;
	bool durable; /* a durable reader, named name */
	char name[PBR_READER_NAME_SIZE];
	uint64_t total;	  /* committed (producers) or delivered (readers) */
	uint64_t lag;	  /* readers */
	uint64_t lost;	  /* readers */
	uint64_t blocked; /* producers: ns */
	double rate;	  /* messages/s over the last interval; < 0: new */
	double blocked_share;
	bool has_lat;			   /* readers with a metrics block */
	uint64_t lat[PBR_LATENCY_BUCKETS]; /* since the reader joined */
	double p50, p99; /* ns over the last interval; < 0: none */
};

enum top_sort { SORT_RING, SORT_RATE, SORT_LAG, SORT_P99, SORT_N };
static const char *const sort_names[] = {"ring", "rate", "lag", "p99"};

struct top_state {
	struct top_row prev[TOP_ROWS], cur[TOP_ROWS];
	int nprev, ncur;
	uint64_t prev_ns;
	enum top_sort sort;
	char **rings; /* named, or NULL: every ring */
	int nrings;
};

static const char *role_of(const struct pbr_participant *p)
{
	if (!p->is_reader)
		return "producer";
	if (p->durable)
		return "durable";
	return (p->flags & PBR_READER_LOSSY) ? "lossy" : "gating";
}

/* The same participant in the previous refresh: same ring, role, index
 * and pid (a new process in the entry is a new row). */
static const struct top_row *previous(const struct top_state *t,
				      const struct top_row *r)
{
	int i;

	for (i = 0; i < t->nprev; i++) {
		const struct top_row *p = &t->prev[i];

		if (p->index == r->index && p->pid == r->pid &&
		    !strcmp(p->role, r->role) && !strcmp(p->ring, r->ring))
			return p;
	}
	return NULL;
}

static void add_rows(struct top_state *t, const struct cli_snap *s)
{
	int k;

	for (k = 0; k < s->n && t->ncur < TOP_ROWS; k++) {
		const struct pbr_participant *p = &s->pt[k];
		struct top_row *r = &t->cur[t->ncur++];

		memset(r, 0, sizeof(*r));
		snprintf(r->ring, sizeof(r->ring), "%s", s->name);
		r->role = role_of(p);
		r->index = p->index;
		r->pid = p->pid;
		r->alive = p->alive;
		r->durable = p->is_reader && p->durable;
		snprintf(r->name, sizeof(r->name), "%s", p->name);
		r->total = p->is_reader ? p->delivered : p->position;
		r->lag = p->is_reader ? s->st.claimed - p->position : 0;
		r->lost = p->lost;
		r->blocked = p->blocked_ns;
		r->has_lat = p->is_reader && p->has_latency;
		if (r->has_lat)
			memcpy(r->lat, p->latency, sizeof(r->lat));
	}
}

/* Row @r's latency percentiles over the interval since @p (NULL: a new
 * row): -1 without a histogram at both ends or without an observation
 * in between. */
static void interval_latency(struct top_row *r, const struct top_row *p)
{
	uint64_t d[PBR_LATENCY_BUCKETS];

	r->p50 = r->p99 = -1;
	if (!p || !r->has_lat || !p->has_lat ||
	    !cli_lat_delta(d, r->lat, p->lat))
		return;
	r->p50 = cli_lat_pct(d, 50);
	r->p99 = cli_lat_pct(d, 99);
}

/* Row @r's rates over the @dt seconds since @p (NULL: a new row). */
static void interval_rates(struct top_row *r, const struct top_row *p,
			   double dt)
{
	/* A counter that went back: a new process in the entry (same pid,
	 * reopened): no rate until the next refresh. */
	if (p && (r->total < p->total || r->blocked < p->blocked))
		p = NULL;
	r->rate = p && dt > 0 ? (double)(r->total - p->total) / dt : -1;
	r->blocked_share =
		p && dt > 0 ? (double)(r->blocked - p->blocked) / 1e9 / dt : 0;
	interval_latency(r, p);
}

/* The rings' rows now, with rates against the previous refresh. */
static void refresh(struct top_state *t)
{
	char **names = t->rings;
	int n = t->nrings, i;
	uint64_t now = pbr_clock_ns();
	double dt = t->prev_ns ? (double)(now - t->prev_ns) / 1e9 : 0;

	memcpy(t->prev, t->cur, sizeof(t->cur[0]) * (size_t)t->ncur);
	t->nprev = t->ncur;
	t->ncur = 0;
	if (!names)
		names = cli_ring_names(&n);
	for (i = 0; names && i < n; i++) {
		struct cli_snap s;
		struct pbr_ring *ring;

		if (pbr_ring_attach(names[i], NULL, &ring))
			continue;
		if (!cli_snap_take(&s, names[i], ring))
			add_rows(t, &s);
		cli_snap_free(&s);
		pbr_ring_detach(ring);
	}
	if (!t->rings)
		cli_ring_names_free(names, n);
	for (i = 0; i < t->ncur; i++)
		interval_rates(&t->cur[i], previous(t, &t->cur[i]), dt);
	t->prev_ns = now;
}

static int cmp_ring(const struct top_row *a, const struct top_row *b)
{
	int c = strcmp(a->ring, b->ring);

	if (c)
		return c;
	c = strcmp(a->role, b->role);
	return c ? -c : (a->index > b->index) - (a->index < b->index);
}

static enum top_sort sort_key;

static int cmp_rows(const void *x, const void *y)
{
	const struct top_row *a = x, *b = y;

	if (sort_key == SORT_RATE && a->rate != b->rate)
		return a->rate < b->rate ? 1 : -1;
	if (sort_key == SORT_LAG && a->lag != b->lag)
		return a->lag < b->lag ? 1 : -1;
	/* slowest first (> 1 s is INFINITY), rows without one (-1) last */
	if (sort_key == SORT_P99 && a->p99 != b->p99)
		return a->p99 < b->p99 ? 1 : -1;
	return cmp_ring(a, b);
}

static void row_text(const struct top_row *r, char *buf, size_t n)
{
	char rate[32], blocked[16], p50[16], p99[16];

	if (r->rate < 0)
		snprintf(rate, sizeof(rate), "-");
	else
		snprintf(rate, sizeof(rate), "%.0f", r->rate);
	if (strcmp(r->role, "producer"))
		snprintf(blocked, sizeof(blocked), "-");
	else
		snprintf(blocked, sizeof(blocked), "%.0f%%",
			 100 * (r->blocked_share > 1 ? 1 : r->blocked_share));
	snprintf(buf, n,
		 "%-24s %-8s %4" PRIu32 " %8" PRIu32 " %-5s %10s %10" PRIu64
		 " %12" PRIu64 " %8" PRIu64 " %7s %7s %7s%s%s",
		 r->ring, r->role, r->index, r->pid,
		 r->alive     ? "alive"
		 : r->durable ? "detached"
			      : "dead",
		 rate, r->lag, r->total, r->lost, blocked,
		 cli_lat_text(r->p50, p50, sizeof(p50)),
		 cli_lat_text(r->p99, p99, sizeof(p99)), r->durable ? " " : "",
		 r->durable ? r->name : "");
}

static const char header[] =
	"RING                     ROLE       ID      PID STATE       RATE"
	"        LAG        TOTAL     LOST BLOCKED     P50     P99";

static void print_screen(struct top_state *t, bool tty)
{
	char line[256];
	int i;

	sort_key = t->sort;
	qsort(t->cur, (size_t)t->ncur, sizeof(t->cur[0]), cmp_rows);
	if (tty)
		printf("\033[H\033[2J");
	printf("pbring top: %d participant%s, sorted by %s%s\n%s\n", t->ncur,
	       t->ncur == 1 ? "" : "s", sort_names[t->sort],
	       tty ? " (q quit, s sort)" : "", header);
	for (i = 0; i < t->ncur; i++) {
		row_text(&t->cur[i], line, sizeof(line));
		printf("%s\n", line);
	}
	if (!tty)
		putchar('\n');
	(void)fflush(stdout); /* a screen, redrawn on the next tick */
}

/* The terminal in character mode without echo, for the keys. */
static struct termios saved_tio;
static bool tio_saved;

static void raw_mode(void)
{
	struct termios t;

	if (tcgetattr(STDIN_FILENO, &saved_tio))
		return;
	t = saved_tio;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	t.c_cc[VMIN] = 0;
	t.c_cc[VTIME] = 0;
	tio_saved = !tcsetattr(STDIN_FILENO, TCSANOW, &t);
}

static void restore_mode(void)
{
	if (tio_saved)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
	printf("\033[?25h");  /* the cursor back */
	(void)fflush(stdout); /* on the way out: nothing left to tell */
}

/* Wait one interval for a key; false: quit. */
static bool wait_keys(struct top_state *t, int ms, bool keys)
{
	struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
	char c;

	if (!keys) {
		struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

		(void)nanosleep(&ts, NULL); /* a signal ends it early */
		return !cli_stop_signal();
	}
	if (poll(&p, 1, ms) > 0 && read(STDIN_FILENO, &c, 1) == 1) {
		if (c == 'q' || c == 'Q')
			return false;
		if (c == 's' || c == 'S')
			t->sort = (enum top_sort)((t->sort + 1) % SORT_N);
	}
	return !cli_stop_signal();
}

static int top_parse(int argc, char **argv, double *interval, bool *once,
		     struct top_state *t)
{
	int i;

	t->rings = calloc((size_t)argc, sizeof(*t->rings));
	if (!t->rings)
		return cli_err(NULL, NULL, -ENOMEM);
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(top_help, stdout);
			return -1;
		}
		if (!strcmp(argv[i], "--once")) {
			*once = true;
		} else if (!strcmp(argv[i], "--interval")) {
			if (++i == argc || !cli_seconds(argv[i], interval) ||
			    *interval < 0.1 || *interval > 3600)
				return cli_usage("top",
						 "--interval: '%s' is not a "
						 "number of seconds in "
						 "0.1..3600",
						 i < argc ? argv[i] : "");
		} else if (argv[i][0] == '-') {
			return cli_usage("top", "unknown option '%s'", argv[i]);
		} else if (pbr_name_check(argv[i])) {
			return cli_usage("top", "'%s' is not a ring name",
					 argv[i]);
		} else {
			t->rings[t->nrings++] = argv[i];
		}
	}
	return 0;
}

int cmd_top(int argc, char **argv)
{
	static struct top_state t; /* large: two row tables */
	double interval = 1.0;
	bool once = false, tty = cli_tty(STDOUT_FILENO);
	bool keys = tty && cli_tty(STDIN_FILENO);
	int rc = top_parse(argc, argv, &interval, &once, &t);

	if (rc || !t.nrings) {
		if (rc) {
			free(t.rings);
			return rc < 0 ? 0 : rc;
		}
		free(t.rings);
		t.rings = NULL; /* none named: every ring, at each refresh */
	}
	cli_stop_install(NULL);
	if (keys)
		raw_mode();
	if (tty)
		printf("\033[?25l"); /* no cursor over the table */
	refresh(&t);
	do {
		if (!once)
			print_screen(&t, tty);
		if (!wait_keys(&t, (int)(interval * 1000), keys))
			break;
		refresh(&t);
	} while (!once);
	if (once && !cli_stop_signal())
		print_screen(&t, tty);
	if (tty)
		restore_mode();
	free(t.rings);
	return cli_stop_signal() ? 128 + cli_stop_signal() : 0;
}
