/* SPDX-License-Identifier: MIT */
/*
 * `pbring check`: is a ring intact, are enough producers and readers
 * alive, are the readers keeping up, did anything get committed lately?
 * Exit 0 or 1 with one line naming the first condition that failed, for
 * orchestrators' health checks (docs/CLI.md, "check"). It attaches
 * read-only and only looks (participants, counters, the newest slots'
 * headers): it writes nothing, takes no entry, reclaims nothing, so it
 * is safe to run every second and needs only read permission.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char check_help[] =
	"usage: pbring check RING [--producers N] [--readers N] [--max-lag N]\n"
	"                    [--max-age SEC] [--wait SEC] [--quiet]\n"
	"Exit 0 if the ring is intact and every condition given holds; else\n"
	"exit 1 with one line on stderr naming the first that failed, in\n"
	"this order: the ring exists, can be read and is not damaged; then\n"
	"  --producers N  at least N live producers (default: any number)\n"
	"  --readers N    at least N live readers, gating or lossy (taps are\n"
	"                 not listed; default: any number)\n"
	"  --max-lag N    no live gating reader (nor detached durable one)\n"
	"                 more than N messages behind the claim\n"
	"  --max-age SEC  a message committed within SEC seconds (the newest\n"
	"                 slot's timestamp); a ring that never had one counts\n"
	"                 from its creation\n"
	"  --wait SEC     retry every 100 ms until healthy, up to SEC seconds\n"
	"                 (Ctrl-C stops), then report the last failure\n"
	"  -q, --quiet    print nothing on success (else one 'ok:' line on\n"
	"                 stdout)\n"
	"Read-only: read permission is enough (any owner's ring); it writes\n"
	"nothing, takes no entry, reclaims nothing. Exit 2: bad usage.\n";

struct check_opts {
	const char *name;
	uint64_t producers, readers, max_lag;
	double max_age, wait;
	bool has_lag, has_age, has_wait, quiet;
};

/* What one look found. */
struct check_found {
	uint64_t producers, readers, lag;
	char last[64]; /* "last commit 3.1 ms ago", ... */
};

#define WHY_LEN 512

static int check_parse(int argc, char **argv, struct check_opts *o)
{
	static const struct option lo[] = {
		{"producers", required_argument, NULL, 'p'},
		{"readers", required_argument, NULL, 'r'},
		{"max-lag", required_argument, NULL, 'l'},
		{"max-age", required_argument, NULL, 'a'},
		{"wait", required_argument, NULL, 'w'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0}};
	int c;

	while ((c = getopt_long(argc, argv, ":qh", lo, NULL)) != -1) {
		switch (c) {
		case 'p':
		case 'r':
			if (!cli_u64(optarg, 0, PBR_PARTICIPANTS_MAX,
				     c == 'p' ? &o->producers : &o->readers))
				return cli_usage("check",
						 "%s: '%s' is not a count "
						 "(0 .. 1024)",
						 argv[optind - 2], optarg);
			break;
		case 'l':
			if (!cli_u64(optarg, 0, UINT64_MAX, &o->max_lag))
				return cli_usage("check",
						 "--max-lag: '%s' is not a "
						 "number of messages",
						 optarg);
			o->has_lag = true;
			break;
		case 'a':
		case 'w':
			if (!cli_seconds(optarg,
					 c == 'a' ? &o->max_age : &o->wait))
				return cli_usage("check",
						 "%s: '%s' is not a number of "
						 "seconds",
						 argv[optind - 2], optarg);
			*(c == 'a' ? &o->has_age : &o->has_wait) = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			fputs(check_help, stdout);
			return -1;
		default:
			return cli_bad_option("check", argv, c);
		}
	}
	if (optind != argc - 1)
		return cli_usage("check", "expects exactly one RING");
	o->name = argv[optind];
	if (pbr_name_check(o->name))
		return cli_usage(
			"check",
			"invalid ring name '%s' (use 1-63 of [A-Za-z0-9_.-])",
			o->name);
	return 0;
}

/* Why attach refused the ring, in the words of every language. */
static void attach_why(int rc, char *why)
{
	switch (-rc) {
	case EPROTO:
	case EPROTOTYPE:
	case EUCLEAN:
	case ENODEV:
		snprintf(why, WHY_LEN, "damaged ring: %s", pbr_strerror(rc));
		break;
	case EPERM: /* any owner is accepted: only this is left */
		snprintf(why, WHY_LEN,
			 "ring writable by everyone: refused (see "
			 "SECURITY.md)");
		break;
	default:
		snprintf(why, WHY_LEN, "%s", pbr_strerror(rc));
	}
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A reader whose cursor producers wait for: a live gating one, or a
 * durable one nobody owns (format 1.3: it gates while detached). */
static bool holds_back(const struct pbr_participant *p)
{
	return p->is_reader && !(p->flags & PBR_READER_LOSSY) &&
	       (p->alive || (p->durable && p->detached));
}

/* Count the live producers and readers, and the largest lag of a reader
 * that holds producers back; a cursor beyond the claim is damage. 0, or
 * 1 with @why. */
static int check_entries(const struct pbr_participant *pt, int n,
			 uint64_t claimed, struct check_found *f, char *why)
{
	int k;

	for (k = 0; k < n; k++) {
		const struct pbr_participant *p = &pt[k];
		uint64_t lag = claimed - p->position;

		if (!p->is_reader) {
			f->producers += p->alive;
			continue;
		}
		if (p->position > claimed) {
			snprintf(why, WHY_LEN,
				 "damaged ring: reader %u's cursor %" PRIu64
				 " is beyond the claim %" PRIu64,
				 p->index, p->position, claimed);
			return 1;
		}
		f->readers += p->alive;
		if (holds_back(p) && lag > f->lag)
			f->lag = lag;
	}
	return 0;
}

/* The first reader that holds producers back and is more than max_lag
 * behind: 1 with @why. */
static int check_lag(const struct pbr_participant *pt, int n, uint64_t claimed,
		     uint64_t max_lag, char *why)
{
	int k;

	for (k = 0; k < n; k++) {
		const struct pbr_participant *p = &pt[k];

		if (!holds_back(p) || claimed - p->position <= max_lag)
			continue;
		if (p->durable && p->detached)
			snprintf(why, WHY_LEN,
				 "durable reader %s (detached) lags by %" PRIu64
				 " messages (max %" PRIu64 ")",
				 p->name, claimed - p->position, max_lag);
		else
			snprintf(why, WHY_LEN,
				 "reader %u (pid %u) lags by %" PRIu64
				 " messages (max %" PRIu64 ")",
				 p->index, p->pid, claimed - p->position,
				 max_lag);
		return 1;
	}
	return 0;
}

/* How long since the last commit: @age_ns, and 0; 1 if nothing was ever
 * claimed (age then counts from creation); 2 if it cannot be told; or
 * the library's error. */
static int last_commit_age(struct pbr_ring *ring,
			   const struct pbr_ring_info *info, uint64_t claimed,
			   uint64_t *age_ns)
{
	uint64_t seq, ts, now;
	int rc;

	if (claimed == info->seq_base) {
		now = realtime_ns();
		*age_ns = now > info->created_ns ? now - info->created_ns : 0;
		return 1;
	}
	if ((rc = pbr_ring_last_commit(ring, &seq, &ts)))
		return rc == -ENODATA ? 2 : rc;
	now = pbr_clock_ns();
	*age_ns = now > ts ? now - ts : 0;
	return 0;
}

static int check_age(struct pbr_ring *ring, const struct pbr_ring_info *info,
		     uint64_t claimed, const struct check_opts *o,
		     struct check_found *f, char *why)
{
	uint64_t age = 0, max = (uint64_t)(o->max_age * 1e9);
	int kind = last_commit_age(ring, info, claimed, &age);
	char d[32];

	if (kind < 0) {
		attach_why(kind, why);
		return 1;
	}
	cli_duration(age, d, sizeof(d));
	if (kind == 0)
		snprintf(f->last, sizeof(f->last), "last commit %s ago", d);
	else
		snprintf(f->last, sizeof(f->last), "%s",
			 kind == 1 ? "nothing committed yet"
				   : "last commit time unknown");
	if (!o->has_age || (kind != 2 && age <= max))
		return 0;
	if (kind == 0)
		snprintf(why, WHY_LEN, "nothing committed for %s (max %g s)", d,
			 o->max_age);
	else if (kind == 1)
		snprintf(why, WHY_LEN,
			 "nothing committed since the ring was created %s ago "
			 "(max %g s)",
			 d, o->max_age);
	else
		snprintf(why, WHY_LEN,
			 "cannot tell when the last message was committed: "
			 "the newest messages carry no timestamp");
	return 1;
}

/* "no live producer (want 1, found 0)", "too few live readers (...)" */
static int check_count(const char *what, uint64_t want, uint64_t found,
		       char *why)
{
	if (found >= want)
		return 0;
	if (found)
		snprintf(why, WHY_LEN,
			 "too few live %ss (want %" PRIu64 ", found %" PRIu64
			 ")",
			 what, want, found);
	else
		snprintf(why, WHY_LEN, "no live %s (want %" PRIu64 ", found 0)",
			 what, want);
	return 1;
}

/* The conditions on an attached ring, in the documented order. */
static int check_ring(struct pbr_ring *ring, const struct check_opts *o,
		      struct pbr_participant *pt, struct check_found *f,
		      char *why)
{
	struct pbr_ring_info info;
	struct pbr_ring_stats st;
	int rc, n;

	pbr_ring_info(ring, &info);
	if ((rc = pbr_ring_check(ring))) {
		attach_why(rc, why);
		return 1;
	}
	n = pbr_ring_participants(ring, pt,
				  info.max_producers + info.max_readers);
	if (n < 0)
		n = 0;
	if (n > (int)(info.max_producers + info.max_readers))
		n = (int)(info.max_producers + info.max_readers); /* filled */
	/* The counters after the entries: claimed is then at least every
	 * reader's cursor (as in stat). */
	pbr_ring_stats(ring, &st);
	if (check_entries(pt, n, st.claimed, f, why) ||
	    check_count("producer", o->producers, f->producers, why) ||
	    check_count("reader", o->readers, f->readers, why) ||
	    (o->has_lag && check_lag(pt, n, st.claimed, o->max_lag, why)))
		return 1;
	if (check_age(ring, &info, st.claimed, o, f, why))
		return 1;
	/* Shrunk while we read (the reads then saw zero pages): damaged. */
	if ((rc = pbr_ring_check(ring))) {
		attach_why(rc, why);
		return 1;
	}
	return 0;
}

/* One look: 0 healthy, 1 not (with @why). */
static int check_once(const struct check_opts *o, struct check_found *f,
		      char *why)
{
	static struct pbr_participant pt[2 * PBR_PARTICIPANTS_MAX];
	struct pbr_attach_opts ao = {0};
	struct pbr_ring *ring;
	int rc;

	memset(f, 0, sizeof(*f));
	/* Read-only, so the owner check, which protects what participants
	 * write, does not apply (as for consume --tap). */
	ao.flags = PBR_ATTACH_READONLY | PBR_ATTACH_ANY_OWNER;
	if ((rc = pbr_ring_attach(o->name, &ao, &ring))) {
		attach_why(rc, why);
		return 1;
	}
	rc = check_ring(ring, o, pt, f, why);
	pbr_ring_detach(ring);
	return rc;
}

static void check_ok(const struct check_opts *o, const struct check_found *f)
{
	if (o->quiet)
		return;
	printf("ok: %s: producers %" PRIu64 ", readers %" PRIu64
	       ", lag %" PRIu64 ", %s\n",
	       o->name, f->producers, f->readers, f->lag, f->last);
}

int cmd_check(int argc, char **argv)
{
	struct check_opts o = {0};
	struct check_found f;
	char why[WHY_LEN];
	int64_t until;
	int rc;

	if ((rc = check_parse(argc, argv, &o)))
		return rc < 0 ? 0 : rc;
	if (o.has_wait)
		cli_stop_install(NULL);
	until = cli_now_ns() + (int64_t)(o.wait * 1e9);
	while ((rc = check_once(&o, &f, why)) && o.has_wait &&
	       cli_now_ns() < until && !cli_stop_signal())
		usleep(100000); /* a signal ends it early (no SA_RESTART) */
	if (!rc) {
		check_ok(&o, &f);
		return 0;
	}
	if (cli_stop_signal())
		return cli_stop_status(o.name);
	cli_log("error", "unhealthy", o.name, NULL, "pbring check: ", "%s: %s",
		o.name, why);
	return EXIT_RUNTIME;
}
