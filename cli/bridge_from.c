/* SPDX-License-Identifier: MIT */
/*
 * `pbring bridge from-redis`: a Redis consumer-group member that commits
 * each stream entry's data into a ring and XACKs it only after the
 * commit. Each commit carries the entry's id as the slot's source id
 * (PBR_SLOT_F_SOURCE), in the same release as the message; on start the
 * bridge reads the ring's retained slots for the highest source id it
 * holds, and any entry redelivered at or below it (pending after a kill
 * between commit and XACK) is acknowledged without a second commit.
 * docs/REDIS.md.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

static const char from_help[] =
	"usage: pbring bridge from-redis --redis URL --stream KEY --group G\n"
	"                                --consumer NAME RING [options]\n"
	"Read the Redis stream KEY as consumer NAME of group G (created at "
	"the\n"
	"stream's start if missing) and commit each entry's data field into "
	"RING;\n"
	"an entry is XACKed only after its commit. On start it first takes "
	"its own\n"
	"pending entries, then (XAUTOCLAIM) those idle longer than "
	"--claim-idle in\n"
	"the group. Each commit records the entry id in the slot (a source "
	"id), so\n"
	"an entry redelivered after a crash is not committed twice.\n"
	"  --redis URL        redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or\n"
	"                     unix:///PATH[?db=DB]\n"
	"  --stream KEY, --group G, --consumer NAME  (required)\n"
	"  --batch N          entries per XREADGROUP (default 1024, "
	"1..4096)\n"
	"  --claim-idle MS    take over other consumers' entries pending "
	"this long\n"
	"                     (default 60000; 0 = never)\n"
	"  --count N          stop after N messages committed\n"
	"  --timeout SEC      stop when nothing arrives for SEC seconds\n"
	"An entry without a data field, of another message type than RING's, "
	"or\n"
	"too large for a slot is reported (one line) and acknowledged, not "
	"retried;\n"
	"pending entries trimmed from the stream and gaps in a bridged ring's "
	"seq\n"
	"are reported as lost. Connection failures: one line per attempt, "
	"retry\n"
	"with backoff. Wrong password, a key of another type: exit 1.\n";

struct from_cfg {
	const char *ring_name, *stream, *group, *consumer;
	struct br_url url;
	uint64_t batch, count, claim_idle;
	int64_t timeout_ns;
};

/* A sorted set of stream entry ids. */
struct idset {
	uint64_t (*id)[2];
	size_t n, cap;
};

static bool idset_has(const struct idset *set, const uint64_t id[2])
{
	size_t lo = 0, hi = set->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = br_id_cmp(set->id[mid], id);

		if (!c)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Insert (mostly appends: ids come in order). -ENOMEM. */
static int idset_add(struct idset *set, const uint64_t id[2])
{
	size_t i;

	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 1024;
		void *p = realloc(set->id, cap * sizeof(*set->id));

		if (!p)
			return -ENOMEM;
		set->id = p;
		set->cap = cap;
	}
	for (i = set->n; i > 0 && br_id_cmp(set->id[i - 1], id) > 0; i--)
		memcpy(set->id[i], set->id[i - 1], sizeof(set->id[i]));
	set->id[i][0] = id[0];
	set->id[i][1] = id[1];
	set->n++;
	return 0;
}

struct from_state {
	const struct from_cfg *cfg;
	struct pbr_ring_info info;
	struct pbr_producer *p;
	redisContext *c;
	/* Source ids the ring's retained slots carry (read at start), and ids
	 * committed here whose XACK failed: an entry delivered again (pending,
	 * claimed) is in the ring iff its id is in one of them, or older than
	 * anything retained and not above the newest (the ring wrapped
	 * since). */
	struct idset ring_ids, unacked;
	bool fresh; /* the entries at hand are new deliveries ('>') */
	uint64_t committed, dups, rejected, lost;
	char prev_ring[96]; /* the last bridged entry's ring@epoch and seq */
	uint64_t prev_seq;
	uint64_t trimmed; /* pending entries found deleted, this batch */
	char trimmed_first[48];
	const char **ack; /* XACK argv: batch ids */
	size_t *ack_len;
	size_t nack;
};

static int from_num(const char *opt, const char *arg, uint64_t lo, uint64_t hi,
		    uint64_t *out)
{
	return cli_u64(arg, lo, hi, out)
		       ? 0
		       : cli_usage("bridge from-redis", "%s: bad number '%s'",
				   opt, arg);
}

static int from_opt(struct from_cfg *cfg, int c, const char *arg)
{
	double sec;

	switch (c) {
	case 'r':
		return br_url_parse("bridge from-redis", arg, &cfg->url);
	case 's':
		cfg->stream = arg;
		return 0;
	case 'g':
		cfg->group = arg;
		return 0;
	case 'C':
		cfg->consumer = arg;
		return 0;
	case 'b':
		return from_num("--batch", arg, 1, 4096, &cfg->batch);
	case 'c':
		return from_num("--count", arg, 1, UINT64_MAX, &cfg->count);
	case 'i':
		return from_num("--claim-idle", arg, 0, UINT32_MAX,
				&cfg->claim_idle);
	case 'T':
		if (!cli_seconds(arg, &sec))
			return cli_usage("bridge from-redis",
					 "--timeout: bad seconds '%s'", arg);
		cfg->timeout_ns = (int64_t)(sec * 1e9);
		return 0;
	}
	return EXIT_USAGE;
}

static int from_parse(int argc, char **argv, struct from_cfg *cfg)
{
	static const struct option opts[] = {
		{"redis", required_argument, 0, 'r'},
		{"stream", required_argument, 0, 's'},
		{"group", required_argument, 0, 'g'},
		{"consumer", required_argument, 0, 'C'},
		{"batch", required_argument, 0, 'b'},
		{"count", required_argument, 0, 'c'},
		{"claim-idle", required_argument, 0, 'i'},
		{"timeout", required_argument, 0, 'T'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	bool have_url = false;
	int c, rc;

	memset(cfg, 0, sizeof(*cfg));
	cfg->batch = 1024;
	cfg->claim_idle = 60000;
	cfg->timeout_ns = -1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(from_help, stdout);
			return -1;
		}
		if (c == '?' || c == ':')
			return cli_bad_option("bridge from-redis", argv, c);
		if ((rc = from_opt(cfg, c, optarg)))
			return rc;
		have_url |= c == 'r';
	}
	if (optind != argc - 1)
		return cli_usage("bridge from-redis", "expected one RING");
	if (!have_url || !cfg->stream || !cfg->group || !cfg->consumer ||
	    !*cfg->stream || !*cfg->group || !*cfg->consumer)
		return cli_usage("bridge from-redis",
				 "--redis, --stream, --group and --consumer "
				 "are required");
	cfg->ring_name = argv[optind];
	return 0;
}

/* The source ids of the ring's retained slots: what this bridge
 * committed before it was stopped or killed; and the highest of them. */
static int scan_sources(struct from_state *s, struct pbr_ring *ring)
{
	struct pbr_reader_opts o = {.flags = PBR_READER_TAP,
				    .start = PBR_START_OLDEST};
	struct pbr_reader *rd;
	struct pbr_view v;
	int rc;

	/* A producer killed mid-message (a bridge before us) would stall
	 * the tap at its slot: recover it first (an abandoned record). */
	(void)!pbr_ring_reclaim(ring);
	if ((rc = pbr_reader_open(ring, &o, &rd)) < 0)
		return rc;
	while ((rc = pbr_reader_peek(rd, 0, &v)) == 0 || rc == -EBADMSG) {
		uint64_t id[2];
		bool has = false;

		if (rc == 0 && (v.flags & PBR_SLOT_F_SOURCE)) {
			id[0] = v.source[0];
			id[1] = v.source[1];
			has = true;
		}
		if (rc != 0 || pbr_reader_release(rd, &v) != 0 || !has)
			continue;
		if (idset_add(&s->ring_ids, id) < 0) {
			rc = -ENOMEM;
			break;
		}
	}
	pbr_reader_close(rd);
	return rc == -EAGAIN ? 0 : rc;
}

static void reject(struct from_state *s, const char *id, const char *why)
{
	s->rejected++;
	cli_fail(s->cfg->ring_name,
		 "stream entry %s: %s; acknowledged, not "
		 "committed",
		 id, why);
}

/* A bridged ring's entries carry ring, epoch and a dense seq: a jump
 * means entries were trimmed (or deleted) before this bridge read them. */
static void check_gap(struct from_state *s, const redisReply *fields)
{
	const redisReply *ring = br_field(fields, "ring");
	const redisReply *epoch = br_field(fields, "epoch");
	const redisReply *sq = br_field(fields, "seq");
	char key[96], buf[24];
	uint64_t seq;

	if (!ring || !epoch || !sq || ring->type != REDIS_REPLY_STRING ||
	    epoch->type != REDIS_REPLY_STRING ||
	    sq->type != REDIS_REPLY_STRING || sq->len >= sizeof(buf))
		return;
	memcpy(buf, sq->str, sq->len);
	buf[sq->len] = '\0';
	if (!cli_u64(buf, 0, UINT64_MAX, &seq))
		return;
	snprintf(key, sizeof(key), "%.*s@%.*s",
		 (int)(ring->len < 63 ? ring->len : 63), ring->str,
		 (int)(epoch->len < 24 ? epoch->len : 24), epoch->str);
	if (!strcmp(key, s->prev_ring) && seq > s->prev_seq + 1) {
		s->lost += seq - s->prev_seq - 1;
		cli_fail(s->cfg->ring_name,
			 "%" PRIu64 " messages of ring %s (seq %" PRIu64
			 "..%" PRIu64 ") are missing from the stream "
			 "(trimmed before they were read?)",
			 seq - s->prev_seq - 1, key, s->prev_seq + 1, seq - 1);
	}
	snprintf(s->prev_ring, sizeof(s->prev_ring), "%s", key);
	s->prev_seq = seq;
}

/* Wait for a slot, a little at a time so that Ctrl-C ends it. */
static int reserve(struct from_state *s, struct pbr_slot *slot)
{
	int rc;

	while ((rc = pbr_producer_reserve(s->p, INT64_C(100000000), slot)) ==
	       -ETIMEDOUT)
		if (cli_stop_signal())
			return -EINTR;
	return rc;
}

/* Commit one entry's data with its id: 0, or -errno (-EINTR: stopped). */
static int commit_entry(struct from_state *s, const uint64_t id[2],
			const redisReply *data, const redisReply *tp)
{
	struct pbr_slot slot;
	uint32_t len = (uint32_t)data->len;
	int rc = reserve(s, &slot);

	if (rc < 0)
		return rc;
	memcpy(slot.data, data->str, len);
	if (pbr_producer_wants_crc(s->p, len)) {
		slot.crc32c = pbr_crc32c(0, slot.data, len);
		slot.flags |= PBR_SLOT_F_CRC;
	}
	slot.timestamp_ns = pbr_clock_ns();
	if (tp && tp->type == REDIS_REPLY_STRING && tp->len < 128) {
		char buf[128];

		memcpy(buf, tp->str, tp->len);
		buf[tp->len] = '\0';
		(void)!pbr_slot_set_traceparent(&slot, buf);
	}
	slot.flags |= PBR_SLOT_F_SOURCE;
	slot.source[0] = id[0];
	slot.source[1] = id[1];
	return pbr_producer_commit(s->p, &slot, len);
}

/* Is the entry's message type one this ring can take? */
static bool type_ok(const struct from_state *s, const redisReply *type)
{
	if (!type || !s->info.msg_type[0])
		return true;
	return type->type == REDIS_REPLY_STRING &&
	       type->len == strlen(s->info.msg_type) &&
	       !memcmp(type->str, s->info.msg_type, type->len);
}

/* Is this entry, delivered before, in the ring already? */
static bool in_ring(const struct from_state *s, const uint64_t id[2])
{
	if (s->fresh) /* never delivered before: never committed */
		return false;
	if (idset_has(&s->ring_ids, id) || idset_has(&s->unacked, id))
		return true;
	/* ring_ids is sorted: its first and last are the oldest and newest */
	return s->ring_ids.n && br_id_cmp(id, s->ring_ids.id[0]) < 0 &&
	       br_id_cmp(id, s->ring_ids.id[s->ring_ids.n - 1]) <= 0;
}

/* One entry [id, fields]: commit it unless already in the ring; queue its
 * XACK. 0, or -errno from the ring (-EINTR: stopped). */
static int take_entry(struct from_state *s, const redisReply *e)
{
	const redisReply *rid, *fields, *data;
	uint64_t id[2];
	int rc;

	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING)
		return 0;
	rid = e->element[0];
	fields = e->element[1];
	if (!br_parse_id(rid->str, rid->len, id))
		return 0;
	s->ack[s->nack] = rid->str;
	s->ack_len[s->nack] = rid->len;
	if (fields->type != REDIS_REPLY_ARRAY) { /* pending but deleted */
		s->lost++;
		if (!s->trimmed++)
			snprintf(s->trimmed_first, sizeof(s->trimmed_first),
				 "%s", rid->str);
		s->nack++;
		return 0;
	}
	if (in_ring(s, id)) {
		s->dups++;
		s->nack++;
		return 0;
	}
	data = br_field(fields, "data");
	if (!data || data->type != REDIS_REPLY_STRING)
		reject(s, rid->str, "no data field");
	else if (!type_ok(s, br_field(fields, "type")))
		reject(s, rid->str, "another message type than the ring's");
	else if (PBR_SOURCE_OFF((uint64_t)data->len) + PBR_SOURCE_SIZE >
		 s->info.payload_cap) /* the source id follows the data */
		reject(s, rid->str, "data too large for the ring's slots");
	else if ((rc = commit_entry(s, id, data,
				    br_field(fields, "traceparent"))) < 0)
		return rc; /* not acknowledged: Redis keeps it pending */
	else
		s->committed++;
	check_gap(s, fields);
	s->nack++;
	return 0;
}

static enum br_fail why_fail(struct from_state *s, const char *what,
			     redisReply *r)
{
	char why[512];
	enum br_fail f = br_classify(s->c, r, why, sizeof(why));

	if (f == BR_PERMANENT || f == BR_RETRY)
		cli_fail(s->cfg->ring_name, "%s %s: %s", what, s->cfg->stream,
			 why);
	return f;
}

static enum br_fail send_acks(struct from_state *s)
{
	redisReply *r;
	enum br_fail f;

	if (!s->nack)
		return BR_OK;
	s->ack[0] = "XACK";
	s->ack_len[0] = 4;
	s->ack[1] = s->cfg->stream;
	s->ack_len[1] = strlen(s->cfg->stream);
	s->ack[2] = s->cfg->group;
	s->ack_len[2] = strlen(s->cfg->group);
	r = redisCommandArgv(s->c, (int)s->nack + 3, s->ack, s->ack_len);
	f = why_fail(s, "XACK", r);
	freeReplyObject(r);
	for (size_t i = 3; f != BR_OK && i < s->nack + 3; i++) {
		uint64_t id[2];

		if (br_parse_id(s->ack[i], s->ack_len[i], id) &&
		    idset_add(&s->unacked, id) < 0)
			break; /* no memory: it may be committed twice */
	}
	return f;
}

/* Commit a list of entries, then acknowledge them in one XACK. *last is
 * the last entry's id (for paging through pending entries). */
static enum br_fail take_entries(struct from_state *s, const redisReply *l,
				 char *last, size_t n, int *err)
{
	enum br_fail f;

	s->nack = 0;
	s->ack += 3; /* argv[0..2]: XACK key group */
	s->ack_len += 3;
	for (size_t i = 0; i < l->elements && !*err; i++) {
		if (s->cfg->count && s->committed >= s->cfg->count)
			break;
		*err = take_entry(s, l->element[i]);
		if (!*err && l->element[i]->type == REDIS_REPLY_ARRAY &&
		    l->element[i]->elements == 2)
			snprintf(last, n, "%s", l->element[i]->element[0]->str);
	}
	s->ack -= 3;
	s->ack_len -= 3;
	if (s->trimmed)
		cli_fail(s->cfg->ring_name,
			 "%" PRIu64 " pending stream entries from %s on were "
			 "trimmed before they reached the ring: lost",
			 s->trimmed, s->trimmed_first);
	s->trimmed = 0;
	f = send_acks(s);
	return f;
}

/* The entries of an XREADGROUP reply, or NULL (none, or timeout). */
static const redisReply *xread_entries(const redisReply *r)
{
	const redisReply *st;

	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1)
		return NULL;
	st = r->element[0];
	if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
	    st->element[1]->type != REDIS_REPLY_ARRAY)
		return NULL;
	return st->element[1];
}

/* XREADGROUP from @from ("0...": own pending; ">": new). *got: entries. */
static enum br_fail read_group(struct from_state *s, char *from, size_t n,
			       int block_ms, size_t *got, int *err)
{
	char count[24], block[24];
	const char *argv[11] = {"XREADGROUP",	  "GROUP", s->cfg->group,
				s->cfg->consumer, "COUNT", count,
				"BLOCK",	  block,   "STREAMS",
				s->cfg->stream,	  from};
	int argc = 11;
	redisReply *r;
	const redisReply *l;
	enum br_fail f;

	snprintf(count, sizeof(count), "%" PRIu64,
		 s->cfg->count && s->cfg->count - s->committed < s->cfg->batch
			 ? s->cfg->count - s->committed
			 : s->cfg->batch);
	snprintf(block, sizeof(block), "%d", block_ms);
	if (block_ms < 0) { /* no BLOCK */
		argv[6] = argv[8], argv[7] = argv[9], argv[8] = argv[10];
		argc = 9;
	}
	r = redisCommandArgv(s->c, argc, argv, NULL);
	s->fresh = from[0] == '>';
	f = why_fail(s, "XREADGROUP", r);
	l = f == BR_OK ? xread_entries(r) : NULL;
	*got = l ? l->elements : 0;
	if (l && l->elements)
		f = take_entries(s, l, from, n, err);
	freeReplyObject(r);
	return f;
}

/* Entries delivered to this consumer and not acknowledged: first. */
static enum br_fail read_pending(struct from_state *s, int *err)
{
	char from[64] = "0";
	size_t got;
	enum br_fail f;

	do
		f = read_group(s, from, sizeof(from), -1, &got, err);
	while (f == BR_OK && got && !*err && !cli_stop_signal() &&
	       (!s->cfg->count || s->committed < s->cfg->count));
	if (f == BR_OK && !got) /* every one of them acknowledged now */
		s->unacked.n = 0;
	return f;
}

/* One XAUTOCLAIM reply: [next start, entries, deleted ids (Redis 7)].
 * Sets @start ("" when the reply makes no sense: stop). */
static enum br_fail claimed(struct from_state *s, const redisReply *r,
			    char *start, size_t n, int *err)
{
	const redisReply *del;
	char last[64];

	if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_ARRAY) {
		start[0] = '\0';
		return BR_OK;
	}
	snprintf(start, n, "%s", r->element[0]->str);
	del = r->elements >= 3 ? r->element[2] : NULL;
	if (del && del->type == REDIS_REPLY_ARRAY && del->elements) {
		/* Redis dropped them from the group's pending list */
		s->lost += del->elements;
		cli_fail(s->cfg->ring_name,
			 "%zu stream entries pending for other consumers were "
			 "trimmed before they reached the ring: lost",
			 del->elements);
	}
	s->fresh = false;
	return take_entries(s, r->element[1], last, sizeof(last), err);
}

/* XAUTOCLAIM: take over what other (dead) consumers left pending. */
static enum br_fail claim_idle(struct from_state *s, int *err)
{
	char start[64] = "0-0", idle[24], count[24];
	enum br_fail f = BR_OK;

	if (!s->cfg->claim_idle)
		return BR_OK;
	snprintf(idle, sizeof(idle), "%" PRIu64, s->cfg->claim_idle);
	snprintf(count, sizeof(count), "%" PRIu64, s->cfg->batch);
	do {
		const char *argv[8] = {"XAUTOCLAIM",  s->cfg->stream,
				       s->cfg->group, s->cfg->consumer,
				       idle,	      start,
				       "COUNT",	      count};
		redisReply *r = redisCommandArgv(s->c, 8, argv, NULL);

		f = why_fail(s, "XAUTOCLAIM", r);
		if (f == BR_OK)
			f = claimed(s, r, start, sizeof(start), err);
		freeReplyObject(r);
	} while (f == BR_OK && !*err && strcmp(start, "0-0") && start[0]);
	return f;
}

static enum br_fail make_group(struct from_state *s)
{
	redisReply *r = redisCommand(s->c, "XGROUP CREATE %s %s 0 MKSTREAM",
				     s->cfg->stream, s->cfg->group);
	enum br_fail f = BR_OK;

	if (!r || r->type != REDIS_REPLY_ERROR ||
	    strncmp(r->str, "BUSYGROUP", 9))
		f = why_fail(s, "XGROUP CREATE", r);
	freeReplyObject(r);
	return f;
}

static bool reply_id(const redisReply *r, uint64_t id[2])
{
	return r && r->type == REDIS_REPLY_STRING &&
	       br_parse_id(r->str, r->len, id);
}

/* Our group's entries: last-delivered-id and entries-read, or false. */
static bool group_info(const redisReply *groups, const char *group,
		       uint64_t last[2], long long *read)
{
	for (size_t i = 0; groups && groups->type == REDIS_REPLY_ARRAY &&
			   i < groups->elements;
	     i++) {
		const redisReply *g = groups->element[i];
		const redisReply *name = br_field(g, "name");
		const redisReply *rd = br_field(g, "entries-read");

		if (name && name->type == REDIS_REPLY_STRING &&
		    name->len == strlen(group) &&
		    !memcmp(name->str, group, name->len))
			return reply_id(br_field(g, "last-delivered-id"),
					last) &&
			       rd && rd->type == REDIS_REPLY_INTEGER &&
			       (*read = rd->integer, true);
	}
	return false;
}

/* Entries trimmed before this group read them (Redis 7 counts them):
 * the stream starts after the group's last-delivered-id, and entries
 * added - entries read by the group - entries left > 0. */
static void trimmed_unread(struct from_state *s)
{
	redisReply *st = redisCommand(s->c, "XINFO STREAM %s", s->cfg->stream);
	redisReply *gr = redisCommand(s->c, "XINFO GROUPS %s", s->cfg->stream);
	const redisReply *added = br_field(st, "entries-added");
	const redisReply *len = br_field(st, "length");
	uint64_t first[2], last[2];
	long long read;

	if (added && len && added->type == REDIS_REPLY_INTEGER &&
	    len->type == REDIS_REPLY_INTEGER &&
	    group_info(gr, s->cfg->group, last, &read) &&
	    (len->integer == 0 ||
	     (reply_id(br_field(st, "recorded-first-entry-id"), first) &&
	      br_id_cmp(first, last) > 0)) &&
	    added->integer - read - len->integer > 0) {
		long long n = added->integer - read - len->integer;

		s->lost += (uint64_t)n;
		cli_fail(s->cfg->ring_name,
			 "%lld stream entries after %" PRIu64 "-%" PRIu64
			 " were trimmed before group %s read them: lost",
			 n, last[0], last[1], s->cfg->group);
	}
	freeReplyObject(st);
	freeReplyObject(gr);
}

/* Connect and catch up with what is owed from before. */
static enum br_fail from_connect(struct from_state *s, int *err)
{
	enum br_fail f;

	for (unsigned attempt = 1;; attempt++) {
		f = br_connect(&s->cfg->url, s->cfg->ring_name, &s->c);
		if (f != BR_OK)
			return f;
		f = br_check_stream(s->c, s->cfg->ring_name, s->cfg->stream);
		if (f == BR_OK)
			f = make_group(s);
		if (f == BR_OK)
			f = read_pending(s, err);
		if (f == BR_OK && !*err)
			f = claim_idle(s, err);
		if (f == BR_OK && !*err)
			trimmed_unread(s);
		if (f == BR_OK || *err)
			return f;
		redisFree(s->c);
		s->c = NULL;
		if (f != BR_RETRY || !br_backoff_sleep(attempt))
			return f == BR_RETRY ? BR_STOPPED : f;
	}
}

static bool from_done(const struct from_state *s, int64_t idle_since)
{
	if (cli_stop_signal())
		return true;
	if (s->cfg->count && s->committed >= s->cfg->count)
		return true;
	return s->cfg->timeout_ns >= 0 &&
	       cli_now_ns() - idle_since > s->cfg->timeout_ns;
}

static int from_run(struct from_state *s)
{
	int64_t idle_since = cli_now_ns();
	int err = 0;
	enum br_fail f = BR_OK;

	for (unsigned attempt = 0; !from_done(s, idle_since);) {
		char from[64] = ">";
		size_t got = 0;

		if (!s->c && (f = from_connect(s, &err)) != BR_OK)
			break;
		if (!err)
			f = read_group(s, from, sizeof(from), 100, &got, &err);
		if (err)
			break;
		if (got)
			idle_since = cli_now_ns();
		if (f == BR_OK) {
			attempt = 0;
			continue;
		}
		redisFree(s->c);
		s->c = NULL;
		if (f != BR_RETRY || !br_backoff_sleep(++attempt))
			break;
	}
	if (err && err != -EINTR)
		return cli_err(s->cfg->ring_name, "commit", err);
	return f == BR_PERMANENT ? EXIT_RUNTIME : 0;
}

static int from_setup(struct from_state *s, struct pbr_ring *ring)
{
	int rc;

	pbr_ring_info(ring, &s->info);
	s->ack = calloc(s->cfg->batch + 3, sizeof(*s->ack));
	s->ack_len = calloc(s->cfg->batch + 3, sizeof(*s->ack_len));
	if (!s->ack || !s->ack_len)
		return cli_err(s->cfg->ring_name, NULL, -ENOMEM);
	if ((rc = scan_sources(s, ring)) < 0)
		return cli_err(s->cfg->ring_name, "scan source ids", rc);
	if ((rc = pbr_producer_open(ring, NULL, &s->p)) < 0)
		return cli_err(s->cfg->ring_name, "open producer", rc);
	return 0;
}

int br_from_redis(int argc, char **argv)
{
	static struct from_state s;
	struct from_cfg cfg;
	struct pbr_ring *ring;
	int rc = from_parse(argc, argv, &cfg);

	if (rc)
		return rc < 0 ? 0 : rc;
	cli_stop_install(NULL);
	rc = cli_attach("bridge from-redis", cfg.ring_name, &ring);
	if (rc)
		return cli_stop_signal() ? 128 + cli_stop_signal() : rc;
	cli_stop_install(ring);
	memset(&s, 0, sizeof(s));
	s.cfg = &cfg;
	rc = from_setup(&s, ring);
	if (!rc)
		rc = from_run(&s);
	fprintf(stderr,
		"pbring: %s: %" PRIu64 " messages from %s %s (%" PRIu64
		" already in the ring, %" PRIu64 " rejected, %" PRIu64
		" lost)\n",
		cfg.ring_name, s.committed, cfg.url.shown, cfg.stream, s.dups,
		s.rejected, s.lost);
	if (cli_stop_signal() && rc != EXIT_RUNTIME)
		rc = cli_stop_status(cfg.ring_name);
	if (s.p)
		(void)pbr_producer_close(s.p);
	redisFree(s.c);
	cli_stop_detach(ring);
	free(s.ack);
	free(s.ack_len);
	free(s.ring_ids.id);
	free(s.unacked.id);
	return rc;
}
