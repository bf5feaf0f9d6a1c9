/* SPDX-License-Identifier: MIT */
/*
 * `pbring bridge to-redis`: a gating reader (or a tap) of a ring that
 * XADDs each message to a Redis stream, pipelined in batches. A gating
 * bridge releases a batch only once Redis acknowledged every XADD of it,
 * so while Redis is away the ring fills and holds its producers back.
 * On a (re)connect it looks up the last entry this ring put in the stream
 * (XREVRANGE) and skips what that entry shows Redis already has: the
 * window between Redis's reply and the ring's release. docs/REDIS.md.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge.h"

#define ARGS_MAX 24
#define RESUME_SCAN 100000 /* entries looked at for this ring's last one */

static const char to_help[] =
	"usage: pbring bridge to-redis RING --redis URL --stream KEY "
	"[options]\n"
	"XADD each message of RING to the Redis stream KEY, as a gating "
	"reader: a\n"
	"message is released only once Redis acknowledged it, so producers "
	"wait\n"
	"while Redis is away. Fields: data, type, schema, producer, seq, ts, "
	"ring,\n"
	"epoch, traceparent (docs/REDIS.md); the schema is stored once in "
	"the hash\n"
	"pbring:schema:<schema hash, 16 hex digits>.\n"
	"  --redis URL      redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or\n"
	"                   unix:///PATH[?db=DB]\n"
	"  --stream KEY     the stream key\n"
	"  --maxlen N       trim the stream to about N entries (XADD MAXLEN "
	"~ N)\n"
	"  --batch N        XADDs per pipelined round trip (default 256, "
	"1..4096)\n"
	"  --name NAME      the durable reader's name on a ring created with\n"
	"                   --durable-readers (default bridge.KEY, made "
	"safe); it\n"
	"                   stays, gating, after the bridge exits: 'pbring rm "
	"RING\n"
	"                   --reader NAME' removes it\n"
	"  --from oldest|latest  where a new reader starts (default oldest)\n"
	"  --tap            read as a tap: never hold producers back; count "
	"what\n"
	"                   is lost while Redis is slower or away\n"
	"  --count N        stop after N messages (default: until "
	"interrupted)\n"
	"  --timeout SEC    stop when nothing arrives for SEC seconds\n"
	"Redis unreachable, or the connection lost: one line per attempt, "
	"retry\n"
	"with backoff (0.1 s doubling to 5 s). Wrong password, the key of "
	"another\n"
	"type: one line, exit 1. Ctrl-C / SIGTERM: stop, exit 130 / 143.\n";

struct to_cfg {
	const char *ring_name, *stream;
	struct br_url url;
	uint64_t maxlen, batch, count;
	int64_t timeout_ns;
	uint32_t start;
	bool tap;
	char name[32];
};

/* One message as it goes to Redis: in the slot (gating) or a copy (tap). */
struct to_msg {
	const void *data;
	uint32_t len;
	uint16_t producer;
	uint64_t seq, ts;
	char tp[PBR_TRACEPARENT_LEN + 1]; /* "" if none */
};

struct to_state {
	const struct to_cfg *cfg;
	struct pbr_ring_info info;
	uint64_t schema_hash;
	struct pbr_reader *rd;
	redisContext *c;
	bool have_last; /* the stream holds an entry of this ring */
	uint64_t last_seq;
	uint64_t sent, skipped, lost_told;
	struct to_msg *msgs;
	struct pbr_view *views;
	unsigned char *copies; /* tap: batch * payload_cap */
	char epoch[24], schema_hex[24], maxlen[24];
};

/* bridge.<stream>, made a valid reader name; a stream too long for it is
 * cut and told apart by a hash of the whole name, so that bridges of two
 * streams on one ring never share (and take over) one reader. */
static void default_name(struct to_cfg *cfg)
{
	size_t n = strlen(cfg->stream);

	if (n <= 31 - 7)
		snprintf(cfg->name, sizeof(cfg->name), "bridge.%s",
			 cfg->stream);
	else
		snprintf(cfg->name, sizeof(cfg->name), "bridge.%.15s.%08x",
			 cfg->stream,
			 (unsigned)pbr_schema_hash(cfg->stream, n));
	for (size_t i = 7; cfg->name[i]; i++) {
		char ch = cfg->name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
		      ch == '_'))
			cfg->name[i] = '_';
	}
}

static int to_opt(struct to_cfg *cfg, int c, const char *arg)
{
	double sec;

	switch (c) {
	case 'r':
		return br_url_parse("bridge to-redis", arg, &cfg->url);
	case 's':
		cfg->stream = arg;
		return 0;
	case 'm':
		return cli_u64(arg, 1, UINT64_MAX, &cfg->maxlen)
			       ? 0
			       : cli_usage("bridge to-redis",
					   "--maxlen: bad count '%s'", arg);
	case 'b':
		return cli_u64(arg, 1, 4096, &cfg->batch)
			       ? 0
			       : cli_usage("bridge to-redis",
					   "--batch: '%s' is not 1..4096", arg);
	case 'c':
		return cli_u64(arg, 1, UINT64_MAX, &cfg->count)
			       ? 0
			       : cli_usage("bridge to-redis",
					   "--count: bad count '%s'", arg);
	case 'T':
		if (!cli_seconds(arg, &sec))
			return cli_usage("bridge to-redis",
					 "--timeout: bad seconds '%s'", arg);
		cfg->timeout_ns = (int64_t)(sec * 1e9);
		return 0;
	case 'n':
		if (pbr_reader_name_check(arg))
			return cli_usage("bridge to-redis",
					 "--name: 1..31 of [A-Za-z0-9._-]");
		snprintf(cfg->name, sizeof(cfg->name), "%s", arg);
		return 0;
	case 'f':
		if (strcmp(arg, "oldest") && strcmp(arg, "latest"))
			return cli_usage("bridge to-redis",
					 "--from: oldest or latest");
		cfg->start = strcmp(arg, "oldest") ? PBR_START_LATEST
						   : PBR_START_OLDEST;
		return 0;
	case 't':
		cfg->tap = true;
		return 0;
	}
	return EXIT_USAGE;
}

/* 0, -1 after --help, or EXIT_USAGE. */
static int to_parse(int argc, char **argv, struct to_cfg *cfg)
{
	static const struct option opts[] = {
		{"redis", required_argument, 0, 'r'},
		{"stream", required_argument, 0, 's'},
		{"maxlen", required_argument, 0, 'm'},
		{"batch", required_argument, 0, 'b'},
		{"count", required_argument, 0, 'c'},
		{"timeout", required_argument, 0, 'T'},
		{"name", required_argument, 0, 'n'},
		{"from", required_argument, 0, 'f'},
		{"tap", no_argument, 0, 't'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	bool have_url = false;
	int c, rc;

	memset(cfg, 0, sizeof(*cfg));
	cfg->batch = 256;
	cfg->timeout_ns = -1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(to_help, stdout);
			return -1;
		}
		if (c == '?' || c == ':')
			return cli_bad_option("bridge to-redis", argv, c);
		if ((rc = to_opt(cfg, c, optarg)))
			return rc;
		have_url |= c == 'r';
	}
	if (optind != argc - 1)
		return cli_usage("bridge to-redis", "expected one RING");
	if (!have_url || !cfg->stream || !*cfg->stream)
		return cli_usage("bridge to-redis",
				 "--redis URL and --stream KEY are required");
	cfg->ring_name = argv[optind];
	if (!cfg->name[0])
		default_name(cfg);
	return 0;
}

/* Does this stream entry come from our ring (name and epoch)? Its seq. */
static bool entry_ours(const struct to_state *s, const redisReply *fields,
		       uint64_t *seq)
{
	const redisReply *ring = br_field(fields, "ring");
	const redisReply *epoch = br_field(fields, "epoch");
	const redisReply *sq = br_field(fields, "seq");
	char buf[24];

	if (!ring || !epoch || !sq || ring->type != REDIS_REPLY_STRING ||
	    epoch->type != REDIS_REPLY_STRING ||
	    sq->type != REDIS_REPLY_STRING ||
	    strlen(s->cfg->ring_name) != ring->len ||
	    memcmp(ring->str, s->cfg->ring_name, ring->len) ||
	    strlen(s->epoch) != epoch->len ||
	    memcmp(epoch->str, s->epoch, epoch->len) || sq->len >= sizeof(buf))
		return false;
	memcpy(buf, sq->str, sq->len);
	buf[sq->len] = '\0';
	return cli_u64(buf, 0, UINT64_MAX, seq);
}

/* One page of XREVRANGE: 1 found, 0 not in it (*end set for the next
 * page, "" at the stream's start), or a failure. */
static enum br_fail resume_page(struct to_state *s, char *end, size_t n,
				int *found)
{
	redisReply *r = redisCommand(s->c, "XREVRANGE %s %s - COUNT 512",
				     s->cfg->stream, end);
	char why[512];
	enum br_fail f = br_classify(s->c, r, why, sizeof(why));

	*found = 0;
	if (f == BR_OK && r->type == REDIS_REPLY_ARRAY) {
		for (size_t i = 0; i < r->elements && !*found; i++) {
			const redisReply *e = r->element[i];

			if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
			    entry_ours(s, e->element[1], &s->last_seq))
				*found = 1;
		}
		end[0] = '\0';
		if (!*found && r->elements == 512) {
			const redisReply *e = r->element[511];

			if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
			    e->element[0]->type == REDIS_REPLY_STRING)
				snprintf(end, n, "(%s", e->element[0]->str);
		}
	} else if (f == BR_PERMANENT) {
		cli_fail(s->cfg->ring_name, "XREVRANGE %s: %s", s->cfg->stream,
			 why);
	} else if (f == BR_RETRY) {
		cli_fail(s->cfg->ring_name, "%s: %s", s->cfg->url.shown, why);
	}
	freeReplyObject(r);
	return f;
}

/* Find the seq of this ring's last entry in the stream. */
static enum br_fail resume_point(struct to_state *s)
{
	char end[64] = "+";
	int found = 0;
	enum br_fail f = BR_OK;

	s->have_last = false;
	for (unsigned pages = 0; pages < RESUME_SCAN / 512 && end[0]; pages++)
		if ((f = resume_page(s, end, sizeof(end), &found)) != BR_OK ||
		    found)
			break;
	s->have_last = found;
	return f;
}

/* The schema, once, under a key named by its hash (HSET is idempotent). */
static enum br_fail store_schema(struct to_state *s)
{
	char key[64], why[512];
	redisReply *r;
	enum br_fail f;

	if (!s->info.schema_len)
		return BR_OK;
	br_schema_key(s->schema_hash, key, sizeof(key));
	r = redisCommand(s->c, "HSET %s type %s fds %b", key, s->info.msg_type,
			 s->info.schema, (size_t)s->info.schema_len);
	f = br_classify(s->c, r, why, sizeof(why));
	if (f == BR_PERMANENT)
		cli_fail(s->cfg->ring_name, "HSET %s: %s", key, why);
	else if (f == BR_RETRY)
		cli_fail(s->cfg->ring_name, "%s: %s", s->cfg->url.shown, why);
	freeReplyObject(r);
	return f;
}

/* Connect (with backoff), check the key, store the schema, find where
 * the stream ends for this ring. */
static enum br_fail to_connect(struct to_state *s)
{
	enum br_fail f;

	for (unsigned attempt = 1;; attempt++) {
		f = br_connect(&s->cfg->url, s->cfg->ring_name, &s->c);
		if (f != BR_OK)
			return f;
		f = br_check_stream(s->c, s->cfg->ring_name, s->cfg->stream);
		if (f == BR_OK)
			f = store_schema(s);
		if (f == BR_OK)
			f = resume_point(s);
		if (f == BR_OK)
			return f;
		redisFree(s->c);
		s->c = NULL;
		if (f != BR_RETRY || !br_backoff_sleep(attempt))
			return f == BR_RETRY ? BR_STOPPED : f;
	}
}

static uint64_t wall_offset(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec -
	       pbr_clock_ns();
}

static void append_xadd(struct to_state *s, const struct to_msg *m,
			uint64_t off)
{
	const char *argv[ARGS_MAX];
	size_t len[ARGS_MAX];
	char prod[8], seq[24], ts[24];
	int n = 0;

#define ARG(p, l) (argv[n] = (p), len[n++] = (l))
#define ARGS(p) ARG(p, strlen(p))
	ARGS("XADD");
	ARGS(s->cfg->stream);
	if (s->cfg->maxlen) {
		ARGS("MAXLEN");
		ARGS("~");
		ARGS(s->maxlen);
	}
	ARGS("*");
	ARGS("data");
	ARG((const char *)m->data, m->len);
	if (s->info.msg_type[0]) {
		ARGS("type");
		ARGS(s->info.msg_type);
	}
	if (s->schema_hash) {
		ARGS("schema");
		ARGS(s->schema_hex);
	}
	snprintf(prod, sizeof(prod), "%u", (unsigned)m->producer);
	snprintf(seq, sizeof(seq), "%" PRIu64, m->seq);
	snprintf(ts, sizeof(ts), "%" PRIu64, m->ts ? m->ts + off : 0);
	ARGS("producer");
	ARGS(prod);
	ARGS("seq");
	ARGS(seq);
	ARGS("ts");
	ARGS(ts);
	ARGS("ring");
	ARGS(s->cfg->ring_name);
	ARGS("epoch");
	ARGS(s->epoch);
	if (m->tp[0]) {
		ARGS("traceparent");
		ARGS(m->tp);
	}
#undef ARGS
#undef ARG
	redisAppendCommandArgv(s->c, n, argv, len);
}

/* Pipeline the batch's XADDs past last_seq and read every reply. */
static enum br_fail xadd_batch(struct to_state *s, const struct to_msg *m,
			       unsigned n)
{
	uint64_t off = wall_offset();
	unsigned sent = 0;
	enum br_fail f = BR_OK, g;
	char why[512];

	for (unsigned i = 0; i < n; i++)
		if (!s->have_last || m[i].seq > s->last_seq) {
			append_xadd(s, &m[i], off);
			sent++;
		}
	for (unsigned i = 0; i < sent; i++) {
		redisReply *r = NULL;

		if (redisGetReply(s->c, (void **)&r) != REDIS_OK)
			r = NULL;
		g = br_classify(s->c, r, why, sizeof(why));
		freeReplyObject(r);
		if (g != BR_OK && f == BR_OK) {
			f = g;
			cli_fail(s->cfg->ring_name, "XADD %s: %s",
				 s->cfg->stream, why);
		}
		if (!r) /* the connection is gone: no more replies */
			return f != BR_OK ? f : BR_RETRY;
	}
	if (f == BR_OK) {
		s->sent += sent;
		s->skipped += n - sent;
		s->have_last = true;
		s->last_seq = m[n - 1].seq;
	}
	return f;
}

/* Send the batch until Redis has all of it: reconnect and resume
 * (XREVRANGE tells what landed) on transient failures. */
static enum br_fail send_batch(struct to_state *s, const struct to_msg *m,
			       unsigned n)
{
	for (unsigned attempt = 1;; attempt++) {
		enum br_fail f;

		if (!s->c && (f = to_connect(s)) != BR_OK)
			return f;
		if ((f = xadd_batch(s, m, n)) == BR_OK)
			return f;
		redisFree(s->c);
		s->c = NULL;
		if (f != BR_RETRY)
			return f;
		cli_fail(s->cfg->ring_name, "%s: retry %u in %.1f s",
			 s->cfg->url.shown, attempt, br_backoff_s(attempt));
		if (!br_backoff_sleep(attempt))
			return BR_STOPPED;
	}
}

static void view_msg(const struct pbr_view *v, struct to_msg *m,
		     const void *data)
{
	m->data = data;
	m->len = v->len;
	m->producer = v->producer;
	m->seq = v->seq;
	m->ts = v->timestamp_ns;
	if (pbr_view_traceparent(v, m->tp, sizeof(m->tp)))
		m->tp[0] = '\0';
}

/* A tap's views may be overwritten while held: copy, then release one by
 * one; keep what release vouched for. Returns how many were kept. */
static unsigned tap_take(struct to_state *s, unsigned n)
{
	unsigned kept = 0;

	for (unsigned i = 0; i < n; i++) {
		unsigned char *dst =
			s->copies + (size_t)kept * s->info.payload_cap;
		uint32_t len = s->views[i].len <= s->info.payload_cap
				       ? s->views[i].len
				       : 0;

		memcpy(dst, s->views[i].data, len);
		view_msg(&s->views[i], &s->msgs[kept], dst);
		if (pbr_reader_release(s->rd, &s->views[i]) == 0)
			kept++;
	}
	return kept;
}

static void tap_losses(struct to_state *s)
{
	struct pbr_reader_stats st;

	pbr_reader_stats(s->rd, &st);
	if (st.lost + st.missed > s->lost_told) {
		cli_fail(s->cfg->ring_name,
			 "%s: %" PRIu64 " messages lost (overwritten before "
			 "they reached Redis), %" PRIu64 " in all",
			 s->cfg->tap ? "tap" : "backlog",
			 st.lost + st.missed - s->lost_told,
			 st.lost + st.missed);
		s->lost_told = st.lost + st.missed;
	}
}

/* One batch: 1 on, 0 done (count or timeout), or an exit status < 0. */
static int to_step(struct to_state *s, int64_t *idle_since)
{
	int n = pbr_reader_peek_batch(s->rd, s->views, (unsigned)s->cfg->batch,
				      INT64_C(100000000));
	enum br_fail f;
	unsigned kept;
	bool unstable;

	if (n == -ETIMEDOUT || n == -EAGAIN || n == -EBADMSG) {
		if (s->cfg->timeout_ns >= 0 &&
		    cli_now_ns() - *idle_since > s->cfg->timeout_ns)
			return 0;
		return 1;
	}
	if (n < 0)
		return n == -EINTR ? 0 : -cli_err(s->cfg->ring_name, "read", n);
	*idle_since = cli_now_ns();
	if (s->cfg->count && s->sent + s->skipped + (uint64_t)n > s->cfg->count)
		n = (int)(s->cfg->count - s->sent - s->skipped);
	/* A tap's views, and the backlog a new reader found at open, may be
	 * overwritten while held: copy them out and trust only what release
	 * vouched for (what it did not was never owed: counted as lost or
	 * missed). Everything else stays in the ring until Redis has it. */
	unstable = s->cfg->tap;
	for (int i = 0; i < n; i++)
		unstable |= (s->views[i].vflags & PBR_VIEW_UNSTABLE) != 0;
	if (unstable) {
		kept = tap_take(s, (unsigned)n);
		tap_losses(s);
	} else {
		for (int i = 0; i < n; i++)
			view_msg(&s->views[i], &s->msgs[i], s->views[i].data);
		kept = (unsigned)n;
	}
	f = kept ? send_batch(s, s->msgs, kept) : BR_OK;
	if (f != BR_OK)
		return f == BR_STOPPED ? 0 : -EXIT_RUNTIME;
	if (!unstable && pbr_reader_release(s->rd, &s->views[n - 1]) < 0)
		return -cli_err(s->cfg->ring_name, "release", -ESTALE);
	return !s->cfg->count || s->sent + s->skipped < s->cfg->count;
}

static int open_reader(struct to_state *s, struct pbr_ring *ring)
{
	struct pbr_reader_opts o = {0};
	int rc;

	o.start = s->cfg->start;
	if (s->cfg->tap) {
		o.flags = PBR_READER_TAP;
		return pbr_reader_open(ring, &o, &s->rd);
	}
	o.flags = PBR_READER_DURABLE;
	o.name = s->cfg->name;
	rc = pbr_reader_open(ring, &o, &s->rd);
	if (rc == 1)
		fprintf(stderr, "pbring: %s: resumed durable reader %s\n",
			s->cfg->ring_name, s->cfg->name);
	if (rc != -EOPNOTSUPP)
		return rc < 0 ? rc : 0;
	o.flags = 0;
	o.name = NULL;
	cli_fail(s->cfg->ring_name,
		 "not created with --durable-readers: what this bridge holds "
		 "unsent when it is killed can be lost");
	rc = pbr_reader_open(ring, &o, &s->rd);
	return rc;
}

static int to_setup(struct to_state *s, struct pbr_ring *ring)
{
	size_t b = (size_t)s->cfg->batch;
	int rc;

	pbr_ring_info(ring, &s->info);
	s->schema_hash = s->info.schema_hash;
	if (!s->schema_hash && s->info.schema_len)
		s->schema_hash =
			pbr_schema_hash(s->info.schema, s->info.schema_len);
	snprintf(s->epoch, sizeof(s->epoch), "%" PRIu64, s->info.created_ns);
	snprintf(s->schema_hex, sizeof(s->schema_hex), "%016" PRIx64,
		 s->schema_hash);
	snprintf(s->maxlen, sizeof(s->maxlen), "%" PRIu64, s->cfg->maxlen);
	s->msgs = calloc(b, sizeof(*s->msgs));
	s->views = calloc(b, sizeof(*s->views));
	s->copies = malloc(b * s->info.payload_cap);
	if (!s->msgs || !s->views || !s->copies)
		return cli_err(s->cfg->ring_name, NULL, -ENOMEM);
	if ((rc = open_reader(s, ring)) < 0)
		return cli_err(s->cfg->ring_name, "open reader", rc);
	return 0;
}

static int to_run(struct to_state *s)
{
	int64_t idle_since = cli_now_ns();
	int rc;
	enum br_fail f = to_connect(s);

	if (f != BR_OK)
		return f == BR_STOPPED ? 0 : EXIT_RUNTIME;
	while ((rc = to_step(s, &idle_since)) > 0)
		if (cli_stop_signal())
			break;
	if (s->cfg->tap)
		tap_losses(s);
	return rc < 0 ? -rc : 0;
}

int br_to_redis(int argc, char **argv)
{
	static struct to_state s;
	struct to_cfg cfg;
	struct pbr_ring *ring;
	int rc = to_parse(argc, argv, &cfg);

	if (rc)
		return rc < 0 ? 0 : rc;
	cli_stop_install(NULL);
	rc = cfg.tap ? cli_attach_flags("bridge to-redis", cfg.ring_name,
					PBR_ATTACH_READONLY |
						PBR_ATTACH_ANY_OWNER,
					&ring)
		     : cli_attach("bridge to-redis", cfg.ring_name, &ring);
	if (rc)
		return cli_stop_signal() ? 128 + cli_stop_signal() : rc;
	cli_stop_install(ring);
	memset(&s, 0, sizeof(s));
	s.cfg = &cfg;
	rc = to_setup(&s, ring);
	if (!rc)
		rc = to_run(&s);
	fprintf(stderr,
		"pbring: %s: %" PRIu64 " messages to %s %s (%" PRIu64
		" already there)\n",
		cfg.ring_name, s.sent, cfg.url.shown, cfg.stream, s.skipped);
	if (cli_stop_signal() && rc != EXIT_RUNTIME)
		rc = cli_stop_status(cfg.ring_name);
	if (s.rd)
		pbr_reader_close(s.rd);
	redisFree(s.c);
	cli_stop_detach(ring);
	free(s.msgs);
	free(s.views);
	free(s.copies);
	return rc;
}
