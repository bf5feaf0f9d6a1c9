/* SPDX-License-Identifier: MIT */
/*
 * `pbring replay`: publish what MCAP files (`pbring record`'s, or any with
 * protobuf channels) hold back into rings, with the recorded spacing; and
 * `pbring cat`: print it. Both read the files with cli/mcap.c's reader,
 * several files merged by log time.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "cli.h"
#include "demo_event.h"
#include "mcap.h"
#include "pbschema.h"

#define MAPS_MAX 64
#define SLOTS_NEW 1024		/* a ring replay creates */
#define SLOT_SIZE_NEW 1024	/* at least; more for larger messages */
#define SPIN_NS 60000		/* the last part of a wait is spun, not slept */
#define SLEEP_MAX_NS 50000000LL /* look at Ctrl-C this often, at least */
#define SEND_STEP_NS 100000000LL

static const char replay_help[] =
	"usage: pbring replay FILE.mcap... [options]\n"
	"Publish the messages of MCAP files (from 'pbring record', or any "
	"with\n"
	"protobuf channels) into rings: each channel's into the ring its "
	"topic\n"
	"names (or --map's), several files merged by log time, with the "
	"recorded\n"
	"spacing between messages. A missing ring is created with the "
	"channel's\n"
	"message type and schema (1024 slots, large enough for the largest\n"
	"message); an existing ring must hold the same type and schema. Each\n"
	"message gets a CRC as the ring asks and its commit timestamp.\n"
	"  --rate X           X times the recorded speed (2: twice as fast)\n"
	"  --fast             no waiting between messages\n"
	"  --map TOPIC=RING   channel TOPIC into RING (repeatable)\n"
	"  --loop N           play it all N times (default 1; 0: until "
	"Ctrl-C)\n"
	"  --timeout SEC      give up when no gating reader comes, or a ring "
	"stays\n"
	"                     full, this long (default 10)\n"
	"  --no-wait          start at once, even if a ring has no gating "
	"reader\n"
	"                     (by default it waits up to --timeout for one on "
	"each\n"
	"                     ring, so that nothing is sent that nobody "
	"reads)\n"
	"Exits 1 before sending anything for a file that is not MCAP, a "
	"channel\n"
	"that is not protobuf, a ring whose schema differs; a file cut short "
	"is\n"
	"replayed up to its last complete chunk, then exits 1.\n"
	"Ctrl-C or SIGTERM stops it: summary, then exit 130 / 143.\n";

static const char cat_help[] =
	"usage: pbring cat FILE.mcap... [--json] [--topic T]\n"
	"Print the messages of MCAP files, several merged by log time, one "
	"line\n"
	"each: log time (UTC), topic, sequence and size in bytes; with --json "
	"the\n"
	"message as 'pbring consume --json' prints it (canonical proto3 "
	"JSON).\n"
	"  --json      one JSON object per message\n"
	"  --topic T   only the channel(s) with topic T (repeatable)\n"
	"Exits 1 for a file that is not MCAP, a channel that is not protobuf, "
	"a\n"
	"message that does not decode (--json; named on stderr, the others\n"
	"printed), or a file cut short (after printing its complete "
	"chunks).\n";

/* --- files, shared by replay and cat ---------------------------------- */

struct src {
	const char *path;
	struct mcap_reader r;
	int tgt[MCAP_CHANNELS]; /* channel -> target, -1: skipped */
	size_t maxlen[MCAP_CHANNELS];
	int scan_err;	/* where the first pass stopped (0: the end) */
	int err;	/* the first error while playing */
	uint64_t given; /* messages given before err */
	struct mcap_msg m;
	bool has; /* m holds this file's next message */
};

/* Open @n files: 0, or EXIT_RUNTIME after saying why. */
static int files_open(struct src *s, char **paths, unsigned n)
{
	unsigned i, k;
	int rc;

	for (i = 0; i < n; i++) {
		s[i].path = paths[i];
		s[i].r.fd = -1;
		for (k = 0; k < MCAP_CHANNELS; k++)
			s[i].tgt[k] = -1;
		rc = mcap_reader_open(&s[i].r, paths[i]);
		if (!rc)
			continue;
		if (rc == -EPROTO)
			cli_fail(paths[i], "not an MCAP file");
		else
			cli_fail(paths[i], "%s", strerror(-rc));
		return EXIT_RUNTIME;
	}
	return 0;
}

static void files_close(struct src *s, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (s[i].path)
			mcap_reader_close(&s[i].r);
}

/* A channel replay and cat can read: protobuf messages, a protobuf
 * schema. 0, or EXIT_RUNTIME after saying why. */
static int check_channel(const struct src *s, unsigned c)
{
	const struct mcap_rchannel *ch = &s->r.ch[c];
	const struct mcap_rschema *sc = mcap_reader_schema(&s->r, c);

	if (strcmp(ch->encoding, "protobuf"))
		cli_fail(s->path,
			 "channel %u (topic %s) has message encoding '%s', "
			 "not protobuf",
			 ch->id, ch->topic, ch->encoding);
	else if (!sc || strcmp(sc->encoding, "protobuf") || !sc->name[0])
		cli_fail(s->path,
			 "channel %u (topic %s) has no protobuf schema: its "
			 "message type is not known",
			 ch->id, ch->topic);
	else
		return 0;
	return EXIT_RUNTIME;
}

/* The first pass over each file: its channels, their counts and largest
 * message, where it ends; then back to the start. 0, or an exit status. */
static int files_scan(struct src *s, unsigned n)
{
	struct mcap_msg m;
	unsigned i, c;
	int rc;

	for (i = 0; i < n; i++) {
		while ((rc = mcap_reader_next(&s[i].r, &m)) > 0) {
			if (cli_stop_signal())
				return cli_stop_status(s[i].path);
			if (m.len > s[i].maxlen[m.ch])
				s[i].maxlen[m.ch] = m.len;
		}
		s[i].scan_err = rc;
		for (c = 0; c < s[i].r.nch; c++)
			if (check_channel(&s[i], c))
				return EXIT_RUNTIME;
		mcap_reader_rewind(&s[i].r);
	}
	return 0;
}

/* Read file @s's next message that is not skipped into s->m. */
static void src_next(struct src *s)
{
	int rc;

	s->has = false;
	while (!s->err && (rc = mcap_reader_next(&s->r, &s->m)) > 0) {
		if (s->tgt[s->m.ch] >= 0) {
			s->has = true;
			return;
		}
	}
	if (!s->err && rc < 0) {
		s->err = rc;
		s->given = s->r.messages;
	}
}

static void files_rewind(struct src *s, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		mcap_reader_rewind(&s[i].r);
		s[i].err = 0;
		src_next(&s[i]);
	}
}

/* The file whose next message comes first by log time, or -1. */
static int src_first(const struct src *s, unsigned n)
{
	int best = -1;
	unsigned i;

	for (i = 0; i < n; i++)
		if (s[i].has && (best < 0 || s[i].m.time < s[best].m.time))
			best = (int)i;
	return best;
}

/* Say why a file stopped early (cut short, corrupt): EXIT_RUNTIME, or 0
 * if none did. */
static int files_report(const struct src *s, unsigned n, const char *what)
{
	unsigned i;
	int rc = 0;

	for (i = 0; i < n; i++) {
		const struct src *f = &s[i];

		if (!f->err)
			continue;
		rc = EXIT_RUNTIME;
		if (f->err == -EPIPE)
			cli_fail(f->path,
				 "truncated: %s the %" PRIu64
				 " messages of its complete chunks",
				 what, f->given);
		else if (f->err == -EBADMSG)
			cli_fail(f->path,
				 "corrupt MCAP file: %s the %" PRIu64
				 " messages before the damage",
				 what, f->given);
		else if (f->err == -ENOTSUP)
			cli_fail(f->path, "a chunk's compression is not zstd "
					  "or none: not supported");
		else if (f->err == -ENOSPC)
			cli_fail(f->path, "more than %d channels or schemas",
				 MCAP_CHANNELS);
		else
			cli_fail(f->path, "%s", strerror(-f->err));
	}
	return rc;
}

/* Files without channels: why, if the first pass stopped early there
 * (EXIT_RUNTIME after saying it), else 0. */
static int no_channels(struct src *s, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		s[i].err = s[i].scan_err;
	return files_report(s, n, "replayed");
}

/* --- replay: options -------------------------------------------------- */

struct replay_cfg {
	char **files;
	unsigned nfiles;
	double rate; /* 0: --fast */
	uint64_t loops;
	int64_t timeout_ns;
	bool no_wait;
	unsigned nmaps;
	struct {
		const char *topic; /* points into argv, cut at '=' */
		const char *ring;
		bool used;
	} map[MAPS_MAX];
};

/* --map TOPIC=RING: 0 or EXIT_USAGE. */
static int add_map(struct replay_cfg *cfg, char *arg)
{
	char *eq = strrchr(arg, '=');
	unsigned i;

	if (cfg->nmaps == MAPS_MAX)
		return cli_usage("replay", "at most %d --map", MAPS_MAX);
	if (!eq || eq == arg || pbr_name_check(eq + 1))
		return cli_usage("replay",
				 "--map: '%s' is not TOPIC=RING (a ring name "
				 "is 1-63 of [A-Za-z0-9_.-])",
				 arg);
	*eq = 0;
	for (i = 0; i < cfg->nmaps; i++)
		if (!strcmp(cfg->map[i].topic, arg))
			return cli_usage("replay", "--map: topic '%s' twice",
					 arg);
	cfg->map[cfg->nmaps].topic = arg;
	cfg->map[cfg->nmaps++].ring = eq + 1;
	return 0;
}

static int replay_opt(int c, char *arg, struct replay_cfg *cfg)
{
	double d;

	switch (c) {
	case 'r':
		if (!cli_seconds(arg, &d) || d <= 0)
			return cli_usage("replay",
					 "--rate: '%s' is not a positive "
					 "factor",
					 arg);
		cfg->rate = d;
		return 0;
	case 'f':
		cfg->rate = 0;
		return 0;
	case 'm':
		return add_map(cfg, arg);
	case 'l':
		if (!cli_u64(arg, 0, UINT64_MAX / 2, &cfg->loops))
			return cli_usage("replay",
					 "--loop: '%s' is not a count", arg);
		return 0;
	case 't':
		if (!cli_seconds(arg, &d))
			return cli_usage(
				"replay",
				"--timeout: '%s' is not a number of seconds",
				arg);
		cfg->timeout_ns = (int64_t)(d * 1e9);
		return 0;
	case 'W':
		cfg->no_wait = true;
		return 0;
	}
	return cli_usage("replay", "bad option");
}

static int replay_parse(int argc, char **argv, struct replay_cfg *cfg)
{
	static const struct option opts[] = {
		{"rate", 1, 0, 'r'},	{"fast", 0, 0, 'f'},
		{"map", 1, 0, 'm'},	{"loop", 1, 0, 'l'},
		{"timeout", 1, 0, 't'}, {"no-wait", 0, 0, 'W'},
		{"help", 0, 0, 'h'},	{0, 0, 0, 0}};
	bool rate = false, fast = false;
	int c, rc;

	memset(cfg, 0, sizeof(*cfg));
	cfg->rate = 1;
	cfg->loops = 1;
	cfg->timeout_ns = 10 * 1000000000LL;
	opterr = 0; /* cli_bad_option() says it in one line */
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(replay_help, stdout);
			return -1;
		}
		if (c == '?' || c == ':')
			return cli_bad_option("replay", argv, c);
		if ((rc = replay_opt(c, optarg, cfg)))
			return rc;
		rate |= c == 'r';
		fast |= c == 'f';
	}
	if (rate && fast)
		return cli_usage("replay", "--rate and --fast exclude each "
					   "other");
	if (optind == argc)
		return cli_usage("replay", "expects at least one FILE");
	cfg->files = argv + optind;
	cfg->nfiles = (unsigned)(argc - optind);
	return 0;
}

/* --- replay: rings ---------------------------------------------------- */

/* A ring replayed into, and what the channels sent to it hold. */
struct target {
	const char *name;
	const char *topic; /* the first channel's, for messages */
	const char *path;  /* its file */
	const struct mcap_rschema *schema;
	uint64_t hash;
	size_t maxlen;
	struct pbr_ring *ring;
	struct pbr_producer *p;
	uint64_t sent;
	bool created;
};

struct replay_state {
	const struct replay_cfg *cfg;
	struct src *src;
	struct target t[MCAP_CHANNELS];
	unsigned nt;
	uint64_t sent, loops_done;
	int64_t start_ns;
	struct target *bad; /* the ring of err */
};

/* The ring channel @c of @s goes to: --map's, else its topic. */
static const char *ring_of(struct replay_state *st, const struct src *s,
			   unsigned c)
{
	struct replay_cfg *cfg = (struct replay_cfg *)st->cfg;
	unsigned i;

	for (i = 0; i < cfg->nmaps; i++)
		if (!strcmp(cfg->map[i].topic, s->r.ch[c].topic)) {
			cfg->map[i].used = true;
			return cfg->map[i].ring;
		}
	return s->r.ch[c].topic;
}

static bool same_schema(const struct mcap_rschema *a,
			const struct mcap_rschema *b)
{
	return !strcmp(a->name, b->name) && a->len == b->len &&
	       !memcmp(a->data, b->data, a->len);
}

/* Channel @c of file @s: its target, found or added. 0 or EXIT_RUNTIME. */
static int add_target(struct replay_state *st, struct src *s, unsigned c)
{
	const struct mcap_rschema *sc = mcap_reader_schema(&s->r, c);
	const char *name = ring_of(st, s, c);
	struct target *t;
	unsigned i;

	for (i = 0; i < st->nt && strcmp(st->t[i].name, name); i++)
		;
	t = &st->t[i];
	if (i < st->nt && !same_schema(t->schema, sc)) {
		cli_fail(name,
			 "topics %s (%s) and %s (%s) go to this ring with "
			 "different schemas",
			 t->topic, t->path, s->r.ch[c].topic, s->path);
		return EXIT_RUNTIME;
	}
	if (i == st->nt) {
		if (st->nt == MCAP_CHANNELS) {
			cli_fail(name, "more than %d rings", MCAP_CHANNELS);
			return EXIT_RUNTIME;
		}
		if (pbr_name_check(name)) {
			cli_fail(s->path,
				 "topic '%s' is not a ring name: use --map "
				 "%s=RING",
				 name, name);
			return EXIT_RUNTIME;
		}
		memset(t, 0, sizeof(*t));
		t->name = name;
		t->topic = s->r.ch[c].topic;
		t->path = s->path;
		t->schema = sc;
		t->hash = pbr_schema_hash(sc->data, sc->len);
		st->nt++;
	}
	if (s->maxlen[c] > t->maxlen)
		t->maxlen = s->maxlen[c];
	s->tgt[c] = (int)i;
	return 0;
}

/* Every channel's target; every --map used. 0 or EXIT_RUNTIME. */
static int targets_find(struct replay_state *st)
{
	const struct replay_cfg *cfg = st->cfg;
	unsigned i, c;
	int rc;

	for (i = 0; i < cfg->nfiles; i++)
		for (c = 0; c < st->src[i].r.nch; c++)
			if ((rc = add_target(st, &st->src[i], c)))
				return rc;
	for (i = 0; i < cfg->nmaps; i++)
		if (!cfg->map[i].used) {
			cli_fail(cfg->files[0],
				 "--map %s: no channel has topic '%s'",
				 cfg->map[i].topic, cfg->map[i].topic);
			return EXIT_RUNTIME;
		}
	return 0;
}

/* Create @t's ring with the recorded schema: 0, or a negative error
 * (-EEXIST: made meanwhile by someone else). */
static int target_create(struct target *t)
{
	struct pbr_create_opts o;
	size_t size = SLOT_SIZE_NEW;
	int rc;

	if (strlen(t->schema->name) > PBR_MSG_TYPE_MAX ||
	    t->schema->len > UINT32_MAX)
		return -ENAMETOOLONG;
	while (size < t->maxlen + 64 && size < (1u << 30))
		size *= 2;
	memset(&o, 0, sizeof(o));
	o.slot_count = SLOTS_NEW;
	o.slot_size = (uint32_t)size;
	o.msg_type = t->schema->name;
	o.schema = t->schema->data;
	o.schema_len = (uint32_t)t->schema->len;
	o.schema_hash = t->hash;
	rc = pbr_ring_create(t->name, &o, &t->ring);
	t->created = !rc;
	return rc;
}

/* An existing ring must hold the recorded type and schema, and room for
 * the largest message: 0 or EXIT_RUNTIME. */
static int target_check(const struct target *t)
{
	struct pbr_ring_info in;

	pbr_ring_info(t->ring, &in);
	if (!in.msg_type[0])
		cli_fail(t->name,
			 "ring is untyped; the recording's topic %s "
			 "holds %s",
			 t->topic, t->schema->name);
	else if (pbr_ring_check_type(t->ring, t->schema->name, t->hash) ||
		 (in.schema_hash && in.schema_hash != t->hash) ||
		 (!in.schema_hash && in.schema_len &&
		  (in.schema_len != t->schema->len ||
		   memcmp(in.schema, t->schema->data, in.schema_len))))
		cli_fail(t->name,
			 "ring holds %s (schema hash %016" PRIx64
			 "), the recording's topic %s holds %s (schema hash "
			 "%016" PRIx64 "): not replayed",
			 in.msg_type, in.schema_hash, t->topic, t->schema->name,
			 t->hash);
	else if (t->maxlen > in.payload_cap)
		cli_fail(t->name,
			 "a recorded message of %zu bytes does not fit in a "
			 "slot (payload capacity %" PRIu32 " bytes)",
			 t->maxlen, in.payload_cap);
	else
		return 0;
	return EXIT_RUNTIME;
}

/* Attach to @t's ring and check it; with @create, make it if missing
 * (without, a missing ring is left for the second pass: 0, t->ring NULL).
 * 0 or an exit status. */
static int target_open(struct target *t, bool create)
{
	bool attach_failed = false;
	int rc = 0, tries;

	for (tries = 0; tries < 3; tries++) {
		rc = pbr_ring_attach(t->name, NULL, &t->ring);
		attach_failed = rc && rc != -ENOENT;
		if (rc != -ENOENT)
			break;
		if (!create)
			return 0;
		if ((rc = target_create(t)) != -EEXIST)
			break; /* -EEXIST: made meanwhile by another: attach */
	}
	if (!rc)
		return t->created ? 0 : target_check(t);
	if (rc == -ENAMETOOLONG) {
		cli_fail(t->name, "the recorded message type or schema is too "
				  "large for a ring");
		return EXIT_RUNTIME;
	}
	if (!attach_failed)
		return cli_err(t->name, "create", rc);
	/* its one line for each attach error (owner, format, stale) */
	if ((rc = cli_attach("replay", t->name, &t->ring)))
		return rc;
	return target_check(t);
}

static void targets_close(struct replay_state *st)
{
	unsigned i;

	for (i = 0; i < st->nt; i++) {
		if (st->t[i].p)
			(void)pbr_producer_close(st->t[i].p);
		if (st->t[i].ring)
			cli_stop_detach(st->t[i].ring);
	}
}

/* Attach (or create) every ring, check them all, then wait for their
 * gating readers and open a producer on each: 0 or an exit status. */
static int targets_open(struct replay_state *st)
{
	unsigned i;
	int rc;

	/* Every existing ring checked before any is made: a refusal leaves
	 * nothing behind. */
	for (i = 0; i < st->nt; i++)
		if ((rc = target_open(&st->t[i], false)))
			return rc;
	for (i = 0; i < st->nt; i++)
		if (!st->t[i].ring && (rc = target_open(&st->t[i], true)))
			return rc;
	cli_stop_install(st->t[0].ring);
	for (i = 0; i < st->nt && !st->cfg->no_wait; i++) {
		rc = cli_wait_gating_reader(st->t[i].ring, st->t[i].name,
					    st->cfg->timeout_ns);
		if (rc == -EINTR && cli_stop_signal())
			return cli_stop_status(st->t[i].name);
		if (rc == -ETIMEDOUT) {
			cli_fail(st->t[i].name,
				 "no gating reader attached (start a consumer "
				 "first, or use --no-wait)");
			return EXIT_RUNTIME;
		}
		if (rc)
			return cli_err(st->t[i].name, NULL, rc);
	}
	for (i = 0; i < st->nt; i++)
		if ((rc = pbr_producer_open(st->t[i].ring, NULL, &st->t[i].p)))
			return cli_err(st->t[i].name, "open producer", rc);
	return 0;
}

/* --- replay: playing -------------------------------------------------- */

/* Wait until CLOCK_MONOTONIC @due: sleep to an absolute deadline SPIN_NS
 * before it (a relative sleep would add the time spent getting there),
 * then spin the rest, which a wake-up's latency does not spoil. */
static void wait_until(int64_t due)
{
	int64_t now, until;
	struct timespec ts;

	while (!cli_stop_signal() && (now = cli_now_ns()) < due - SPIN_NS) {
		until = due - SPIN_NS;
		if (until - now > SLEEP_MAX_NS)
			until = now + SLEEP_MAX_NS;
		ts.tv_sec = until / 1000000000LL;
		ts.tv_nsec = until % 1000000000LL;
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
	while (!cli_stop_signal() && cli_now_ns() < due)
		; /* spin */
}

/* Commit @m into a claimed slot, CRC as the ring's policy asks, stamped
 * now: 0 with *stamp, or a negative error. */
static int commit_one(struct target *t, struct pbr_slot *slot,
		      const struct mcap_msg *m, int64_t *stamp)
{
	uint32_t len = (uint32_t)m->len;

	memcpy(slot->data, m->data, len);
	if (pbr_producer_wants_crc(t->p, len)) {
		slot->flags |= PBR_SLOT_F_CRC;
		slot->crc32c = pbr_crc32c(0, slot->data, len);
	}
	slot->timestamp_ns = pbr_clock_ns();
	*stamp = (int64_t)slot->timestamp_ns;
	return pbr_producer_commit(t->p, slot, len);
}

/* Send one message, waiting for room up to --timeout in steps, so that
 * Ctrl-C stops a wait on any of the rings: 0 with *stamp (its commit
 * timestamp), or a negative error. */
static int send_one(struct replay_state *st, struct target *t,
		    const struct mcap_msg *m, int64_t *stamp)
{
	int64_t end = cli_now_ns() + st->cfg->timeout_ns, step;
	struct pbr_slot slot;
	int rc;

	do {
		step = end - cli_now_ns();
		if (step > SEND_STEP_NS)
			step = SEND_STEP_NS;
		rc = pbr_producer_reserve(t->p, step > 0 ? step : 0, &slot);
	} while ((rc == -ETIMEDOUT || rc == -EAGAIN) && !cli_stop_signal() &&
		 cli_now_ns() < end);
	if (rc == -EAGAIN)
		rc = -ETIMEDOUT;
	return rc ? rc : commit_one(t, &slot, m, stamp);
}

/* "replay: N sent, R msg/s" on a terminal, 4 times a second; and a look
 * at whether the rings are still there. 0 or a negative error. */
static int progress(struct replay_state *st, int64_t *last_ns, uint64_t *last_n,
		    bool tty)
{
	int64_t now = cli_now_ns();
	unsigned i;
	int rc;

	if (now - *last_ns < 250000000LL)
		return 0;
	for (i = 0; i < st->nt; i++)
		if ((rc = pbr_ring_check(st->t[i].ring))) {
			st->bad = &st->t[i];
			return rc;
		}
	if (tty)
		fprintf(stderr, "\rreplay: %" PRIu64 " sent, %.0f msg/s   ",
			st->sent,
			(double)(st->sent - *last_n) * 1e9 /
				(double)(now - *last_ns));
	*last_ns = now;
	*last_n = st->sent;
	return 0;
}

/* When a message @dt ns of log time after the first is due, at @rate:
 * capped at about 30 years (a file's times are its own; the cast must not
 * overflow). */
static int64_t due_in(uint64_t dt, double rate)
{
	double ns = (double)dt / rate;

	return ns < 1e18 ? (int64_t)ns : (int64_t)1e18;
}

/* One pass over the files: 0, or a negative error. */
static int play_once(struct replay_state *st, bool tty)
{
	const struct replay_cfg *c = st->cfg;
	int64_t t0 = 0, last_ns = cli_now_ns(), stamp;
	uint64_t base = 0, last_n = st->sent;
	struct src *f;
	int i, rc;
	bool first = true;

	files_rewind(st->src, c->nfiles);
	while ((i = src_first(st->src, c->nfiles)) >= 0) {
		f = &st->src[i];
		if (c->rate > 0 && !first && f->m.time > base)
			wait_until(t0 + due_in(f->m.time - base, c->rate));
		if (cli_stop_signal())
			return -EINTR;
		st->bad = &st->t[f->tgt[f->m.ch]];
		if ((rc = send_one(st, st->bad, &f->m, &stamp)))
			return rc;
		/* The schedule: from the first message's commit timestamp
		 * (its first send may be slow: pages touched, a reader to
		 * wake). */
		if (first)
			t0 = stamp, base = f->m.time;
		first = false;
		st->bad->sent++;
		st->sent++;
		src_next(f);
		if ((rc = progress(st, &last_ns, &last_n, tty)))
			return rc;
	}
	return 0;
}

static int play(struct replay_state *st)
{
	bool tty = cli_tty(2) && !cli_log_json; /* progress: text only */
	int rc = 0;

	/* Timer slack (50 us by default) would delay every wake-up. */
	(void)prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	st->start_ns = cli_now_ns();
	while (!st->cfg->loops || st->loops_done < st->cfg->loops) {
		if ((rc = play_once(st, tty)))
			break;
		st->loops_done++;
	}
	if (tty)
		fputs("\r\033[K", stderr); /* the summary replaces it */
	return rc;
}

/* "replay: N messages into R rings (A n, B m) in T s[, L loops]". */
static void replay_summary(const struct replay_state *st)
{
	double secs = (double)(cli_now_ns() - st->start_ns) / 1e9;
	char rings[2048], loops[64] = "";
	size_t k = 0;
	unsigned i;

	rings[0] = 0;
	for (i = 0; i < st->nt && k < sizeof(rings) - 128; i++)
		k += (size_t)snprintf(rings + k, sizeof(rings) - k,
				      "%s%s %" PRIu64 "%s", i ? ", " : "",
				      st->t[i].name, st->t[i].sent,
				      st->t[i].created ? " (created)" : "");
	if (st->cfg->loops != 1)
		snprintf(loops, sizeof(loops), ", %" PRIu64 " loops",
			 st->loops_done);
	cli_log("info", "summary", NULL, NULL, "replay: ",
		"%" PRIu64 " messages into %u ring%s (%s) in %.3f s%s",
		st->sent, st->nt, st->nt == 1 ? "" : "s", rings, secs, loops);
}

/* The exit status of a run that ended with @err. */
static int replay_verdict(struct replay_state *st, int err)
{
	int rc = files_report(st->src, st->cfg->nfiles, "replayed");

	if (err == -EINTR && cli_stop_signal())
		return cli_stop_status(st->cfg->files[0]);
	if (err == -ETIMEDOUT) {
		cli_fail(st->bad->name, "ring stayed full for the timeout "
					"(is a gating reader stuck?)");
		return EXIT_RUNTIME;
	}
	if (err)
		return cli_err(st->bad ? st->bad->name : st->cfg->files[0],
			       "send", err);
	if (!rc && cli_stop_signal())
		return cli_stop_status(st->cfg->files[0]);
	return rc;
}

int cmd_replay(int argc, char **argv)
{
	static struct replay_state st;
	struct replay_cfg cfg;
	int rc = replay_parse(argc, argv, &cfg);

	if (rc)
		return rc < 0 ? 0 : rc;
	if (!cfg.nfiles) /* replay_parse refuses it: said for the analyzers */
		return EXIT_USAGE;
	memset(&st, 0, sizeof(st));
	st.cfg = &cfg;
	cli_stop_install(NULL); /* Ctrl-C during the first pass too */
	if (!(st.src = calloc(cfg.nfiles, sizeof(*st.src)))) {
		(void)cli_err(cfg.files[0], "allocate", -ENOMEM);
		rc = EXIT_RUNTIME;
	}
	if (!rc)
		rc = files_open(st.src, cfg.files, cfg.nfiles);
	if (!rc)
		rc = files_scan(st.src, cfg.nfiles);
	if (!rc)
		rc = targets_find(&st);
	if (!rc && !st.nt && !(rc = no_channels(st.src, cfg.nfiles))) {
		cli_fail(cfg.files[0], "no channels: nothing to replay");
		rc = EXIT_RUNTIME;
	}
	if (!rc && !(rc = targets_open(&st))) {
		rc = play(&st);
		replay_summary(&st);
		rc = replay_verdict(&st, rc);
	}
	targets_close(&st);
	if (st.src)
		files_close(st.src, cfg.nfiles);
	free(st.src);
	st.cfg = NULL; /* st outlives cfg */
	return rc;
}

/* --- cat -------------------------------------------------------------- */

#define TOPICS_MAX 64

struct cat_cfg {
	char **files;
	unsigned nfiles, ntopics;
	const char *topic[TOPICS_MAX];
	bool json;
};

/* How one channel's messages are printed as JSON: as `pbring consume
 * --json` prints them (the demo type by its own decoder and printer, any
 * other by its schema). */
struct cat_chan {
	bool demo;
	struct pbs_codec *codec;
};

struct cat_state {
	const struct cat_cfg *cfg;
	struct src *src;
	struct cat_chan (*ch)[MCAP_CHANNELS]; /* per file */
	char *line;
	size_t line_cap;
	uint64_t printed, bad;
};

static int cat_parse(int argc, char **argv, struct cat_cfg *cfg)
{
	static const struct option opts[] = {{"json", 0, 0, 'j'},
					     {"topic", 1, 0, 't'},
					     {"help", 0, 0, 'h'},
					     {0, 0, 0, 0}};
	int c;

	memset(cfg, 0, sizeof(*cfg));
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(cat_help, stdout);
			return -1;
		}
		if (c == '?' || c == ':')
			return cli_bad_option("cat", argv, c);
		if (c == 'j')
			cfg->json = true;
		else if (cfg->ntopics == TOPICS_MAX)
			return cli_usage("cat", "at most %d --topic",
					 TOPICS_MAX);
		else
			cfg->topic[cfg->ntopics++] = optarg;
	}
	if (optind == argc)
		return cli_usage("cat", "expects at least one FILE");
	cfg->files = argv + optind;
	cfg->nfiles = (unsigned)(argc - optind);
	return 0;
}

static bool cat_wanted(const struct cat_cfg *cfg, const char *topic)
{
	unsigned i;

	for (i = 0; i < cfg->ntopics; i++)
		if (!strcmp(cfg->topic[i], topic))
			return true;
	return !cfg->ntopics;
}

/* Channel @c of file @f: printed or not; with --json its codec. */
static int cat_channel(struct cat_state *s, unsigned f, unsigned c)
{
	struct src *src = &s->src[f];
	const struct mcap_rschema *sc = mcap_reader_schema(&src->r, c);
	struct cat_chan *cc = &s->ch[f][c];
	char *err = NULL;

	if (!cat_wanted(s->cfg, src->r.ch[c].topic))
		return 0;
	src->tgt[c] = 0;
	if (!s->cfg->json)
		return 0;
	if (!strcmp(sc->name, PBR_DEMO_MSG_TYPE)) {
		cc->demo = true;
		return 0;
	}
	if (!pbs_codec_open(sc->data, sc->len, sc->name, &cc->codec, &err))
		return 0;
	cli_fail(src->path, "channel %u (topic %s): %s", src->r.ch[c].id,
		 src->r.ch[c].topic, err ? err : "bad schema");
	free(err);
	return EXIT_RUNTIME;
}

/* The channels to print, their codecs, the line buffer. */
static int cat_setup(struct cat_state *s)
{
	const struct cat_cfg *cfg = s->cfg;
	size_t max = 0;
	unsigned f, c, t;
	int rc;

	for (f = 0; f < cfg->nfiles; f++)
		for (c = 0; c < s->src[f].r.nch; c++) {
			if ((rc = cat_channel(s, f, c)))
				return rc;
			if (s->src[f].maxlen[c] > max)
				max = s->src[f].maxlen[c];
		}
	for (t = 0; t < cfg->ntopics; t++) {
		bool found = false;

		for (f = 0; f < cfg->nfiles; f++)
			for (c = 0; c < s->src[f].r.nch; c++)
				found |= !strcmp(s->src[f].r.ch[c].topic,
						 cfg->topic[t]);
		if (!found) {
			cli_fail(cfg->files[0],
				 "--topic %s: no channel has this topic",
				 cfg->topic[t]);
			return EXIT_RUNTIME;
		}
	}
	s->line_cap = demo_json_cap(max);
	if (!(s->line = malloc(s->line_cap)))
		return cli_err(cfg->files[0], "allocate", -ENOMEM);
	return 0;
}

/* The message's JSON, as consume --json makes it: 0 with *json, *n, or
 * -EBADMSG. */
static int cat_json(struct cat_state *s, const struct cat_chan *cc,
		    const struct mcap_msg *m, const char **json, size_t *n)
{
	struct pbr_view v;
	struct demo_decoded d;

	if (!cc->demo)
		return pbs_pb_to_json(cc->codec, m->data, m->len, json, n)
			       ? -EBADMSG
			       : 0;
	memset(&v, 0, sizeof(v));
	v.data = m->data;
	v.len = (uint32_t)m->len;
	if (m->len > UINT32_MAX || demo_event_decode(&v, &d) ||
	    !demo_blob_ok(&d) ||
	    !(*n = demo_event_json(&d, s->line, s->line_cap)))
		return -EBADMSG;
	*json = s->line;
	return 0;
}

static void cat_one(struct cat_state *s, unsigned f)
{
	const struct src *src = &s->src[f];
	const struct mcap_msg *m = &src->m;
	const char *topic = src->r.ch[m->ch].topic, *json;
	char t[64];
	size_t n;

	if (!s->cfg->json) {
		printf("%s %s seq %" PRIu32 " %zu B\n",
		       cli_utc(m->log_time, t, sizeof(t)), topic, m->seq,
		       m->len);
		s->printed++;
		return;
	}
	if (cat_json(s, &s->ch[f][m->ch], m, &json, &n)) {
		if (s->bad++ < 10)
			cli_fail(src->path,
				 "topic %s, sequence %" PRIu32
				 ": payload is not a valid %s",
				 topic, m->seq,
				 mcap_reader_schema(&src->r, m->ch)->name);
		return;
	}
	/* Checked once, at the end (cat_run: fflush and ferror). */
	(void)fwrite(json, 1, n, stdout);
	(void)putchar('\n');
	s->printed++;
}

static int cat_run(struct cat_state *s)
{
	const struct cat_cfg *cfg = s->cfg;
	int i, rc;

	(void)setvbuf(stdout, NULL, _IOFBF, 1 << 20); /* speed only */
	files_rewind(s->src, cfg->nfiles);
	while (!cli_stop_signal() &&
	       (i = src_first(s->src, cfg->nfiles)) >= 0) {
		cat_one(s, (unsigned)i);
		src_next(&s->src[i]);
	}
	if (fflush(stdout) || ferror(stdout)) {
		cli_fail(cfg->files[0], "write: %s", strerror(errno));
		return EXIT_RUNTIME;
	}
	rc = files_report(s->src, cfg->nfiles, "printed");
	if (s->bad) {
		cli_fail(cfg->files[0], "%" PRIu64 " messages do not decode",
			 s->bad);
		rc = EXIT_RUNTIME;
	}
	if (cli_stop_signal())
		return cli_stop_status(cfg->files[0]);
	return rc;
}

int cmd_cat(int argc, char **argv)
{
	static struct cat_state s;
	struct cat_cfg cfg;
	unsigned f, c;
	int rc = cat_parse(argc, argv, &cfg);

	if (rc)
		return rc < 0 ? 0 : rc;
	if (!cfg.nfiles) /* cat_parse refuses it: said for the analyzers */
		return EXIT_USAGE;
	memset(&s, 0, sizeof(s));
	s.cfg = &cfg;
	cli_stop_install(NULL);
	s.src = calloc(cfg.nfiles, sizeof(*s.src));
	s.ch = calloc(cfg.nfiles, sizeof(*s.ch));
	if (!s.src || !s.ch) {
		(void)cli_err(cfg.files[0], "allocate", -ENOMEM);
		rc = EXIT_RUNTIME;
	}
	if (!rc)
		rc = files_open(s.src, cfg.files, cfg.nfiles);
	if (!rc)
		rc = files_scan(s.src, cfg.nfiles);
	if (!rc)
		rc = cat_setup(&s);
	if (!rc)
		rc = cat_run(&s);
	for (f = 0; s.ch && f < cfg.nfiles; f++)
		for (c = 0; c < MCAP_CHANNELS; c++)
			pbs_codec_close(s.ch[f][c].codec);
	if (s.src)
		files_close(s.src, cfg.nfiles);
	free(s.src);
	free(s.ch);
	free(s.line);
	s.cfg = NULL; /* s outlives cfg */
	return rc;
}
