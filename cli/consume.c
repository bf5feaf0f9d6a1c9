/* SPDX-License-Identifier: MIT */
/*
 * `pbring consume`: receive messages and summarise: counts, losses, rate
 * and latency percentiles. On demo rings, DeviceEvents are decoded in
 * place and checked (CRC, blob pattern, per-producer seq continuity); on
 * other typed rings each message is decoded with the ring's schema and
 * printed as proto3 JSON; --raw writes length-prefixed payloads.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "demo_event.h"
#include "pbschema.h"

#define BATCH 64
#define IDS 4096     /* producer ids tracked for continuity */
#define NAMED_MAX 10 /* corrupt messages named on stderr, at most */

static const char consume_help[] =
	"usage: pbring consume RING [options]\n"
	"Receive messages, check and summarise them. Demo rings: each\n"
	"pbring.demo.v1.DeviceEvent is checked and printed as text (or "
	"--json).\n"
	"Other typed rings: each message is decoded with the ring's schema "
	"and\n"
	"printed as one line of proto3 JSON.\n"
	"  --count N            stop after N messages (default: until "
	"interrupted)\n"
	"  --timeout SEC        stop when nothing arrives for SEC seconds\n"
	"  --from oldest|latest start at the oldest message in the ring "
	"(default:\n"
	"                       replay what it holds) or only take messages "
	"sent\n"
	"                       from now on\n"
	"  --lossy              never hold producers back; count what is "
	"lost\n"
	"  --tap                observe read-only: needs only read permission "
	"(a\n"
	"                       ring made with --mode 0640), accepts any "
	"owner,\n"
	"                       takes no reader entry (not in stat) and "
	"never holds\n"
	"                       producers back; lossy, it counts what is "
	"lost (not\n"
	"                       with --lossy)\n"
	"  --durable NAME       a durable reader (a ring made with "
	"--durable-readers):\n"
	"                       resumes where NAME left off, or creates it "
	"(from\n"
	"                       --from); once this exits or dies NAME stays, "
	"holding\n"
	"                       producers back, until resumed or dropped "
	"(pbring rm\n"
	"                       RING --reader NAME); says on stderr which it "
	"did\n"
	"  --json               one canonical protobuf JSON object per message "
	"on stdout\n"
	"  --envelope           with --json: each line is {\"seq\", "
	"\"producer\",\n"
	"                       \"timestamp_ns\", \"traceparent\" (when the "
	"message\n"
	"                       carries one), \"source\": \"HI-LO\" (when "
	"it carries\n"
	"                       a source id), \"message\": the message's "
	"JSON}\n"
	"  --quiet              no per-message output, only the summary\n"
	"  --raw                no decoding: each payload as a 4-byte "
	"little-endian\n"
	"                       length and its bytes on stdout (any ring; the "
	"only\n"
	"                       way to read an untyped ring)\n"
	"  --any-owner          accept a ring owned by another user (see "
	"SECURITY.md)\n"
	"The summary on stderr counts:\n"
	"  received        messages taken intact\n"
	"  lost            messages overwritten before this lossy reader or "
	"tap read\n"
	"                  them, or missing from a demo producer's seq\n"
	"  missed          replayed backlog overwritten before it was read\n"
	"  gaps            times a demo producer's seq jumped ahead\n"
	"  duplicates      times a demo producer's seq went back\n"
	"  crc errors      payloads whose CRC32C does not match\n"
	"  content errors  corrupt slot headers, payloads that do not decode "
	"or\n"
	"                  fail the demo checks\n"
	"  abandoned       messages whose producer died while writing them\n"
	"  rate            received / time from the first message to the "
	"last\n"
	"  latency         p50, p99, max from each message's commit to its "
	"receipt:\n"
	"                  transport plus time queued in the ring, which is "
	"most of\n"
	"                  it when the ring is full; replayed messages, "
	"committed\n"
	"                  before the consumer started, are not timed\n"
	"A corrupt message counts once, as a crc or content error, and is "
	"named on\n"
	"stderr by its ring seq. Exits 1 if it saw a CRC or content error "
	"or, as a\n"
	"gating reader of a demo ring, a gap or duplicate in any producer's "
	"seq.\n"
	"Ctrl-C or SIGTERM stops it at once: summary, then exit 130 / 143.\n";

struct consume_cfg {
	const char *ring_name;
	uint64_t count;
	int64_t timeout_ns; /* idle; < 0 = none */
	uint32_t start;
	bool lossy, json, quiet, raw, any_owner;
	bool tap; /* --tap: read-only attach, a tap reader (FORMAT.md §9.5) */
	bool envelope;	     /* --envelope: ring metadata around each message */
	const char *durable; /* --durable NAME (checked), or NULL */
};

struct seq_track {
	char id[DEMO_ID_MAX + 1];
	uint64_t next;
	uint64_t epoch; /* consume_state.miss_epoch when last seen */
	bool used, seen;
};

/* What the ring's messages are, for this consumer. */
enum consume_kind {
	KIND_DEMO,  /* DeviceEvents: decoded in place, checked */
	KIND_TYPED, /* any other typed ring: decoded with the stored schema */
	KIND_RAW,   /* --raw: payloads as they are */
};

struct consume_state {
	const struct consume_cfg *cfg;
	enum consume_kind kind;
	struct pbs_codec *codec; /* KIND_TYPED */
	struct pbr_reader *rd;
	struct seq_track *ids;
	struct cli_hist hist;
	uint64_t received, gaps, gap_msgs, dups, untracked;
	uint64_t crc_errors;	 /* CRC32C mismatches */
	uint64_t content_errors; /* undecodable payloads, failed checks */
	/* Bumped whenever join backlog was missed (overwritten before we
	 * read it): the next message of every producer may jump ahead. */
	uint64_t miss_epoch, missed_seen;
	int64_t start_ns, last_ns; /* first and latest message */
	/* Messages committed before this is replayed backlog: its age is
	 * not a latency, so it is counted, not timed. */
	int64_t open_ns;
	uint64_t replayed;
	/* Corrupt messages not yet seen as a jump in their producer's seq,
	 * by ring producer id, and of unknown producer (a corrupt header):
	 * the jump they make is not a gap too. */
	uint64_t corrupt_owed[PBR_PARTICIPANTS_MAX], corrupt_owed_any;
	unsigned named; /* corrupt messages named on stderr */
	char msg_type[PBR_MSG_TYPE_MAX + 1];
	bool show_progress;
	int64_t progress_ns;
	uint64_t progress_n;
	char *line; /* the output of the message in hand */
	size_t line_cap, line_len;
	const char *json; /* KIND_TYPED: in the codec, json_len bytes */
	size_t json_len;
	/* --envelope: the message in hand's traceparent, read while its slot
	 * was held ("" if none) */
	char tp[PBR_TRACEPARENT_LEN + 1];
	char trace_id[33];
	/* --envelope: its source id, read with it (valid with has_source) */
	uint64_t source[2];
	bool has_source;
};

static struct seq_track *track(struct consume_state *s, const char *id)
{
	/* FNV-1a, the library's, as the table's hash of the id. */
	uint64_t h = pbr_schema_hash(id, strlen(id));
	unsigned i, k;

	for (k = 0; k < IDS; k++) {
		i = (unsigned)(h + k) % IDS;
		if (!s->ids[i].used) {
			s->ids[i].used = true;
			snprintf(s->ids[i].id, sizeof(s->ids[i].id), "%s", id);
			return &s->ids[i];
		}
		if (!strcmp(s->ids[i].id, id))
			return &s->ids[i];
	}
	return NULL;
}

/* How much of a jump of n in the seq of ring producer p the corrupt
 * messages already counted do not explain. p's next message after its
 * corrupt ones settles what p owes; a corrupt header's producer is not
 * known, so any producer's jump settles that. */
static uint64_t unexplained(struct consume_state *s, uint16_t p, uint64_t n)
{
	uint64_t *owed = p < PBR_PARTICIPANTS_MAX ? &s->corrupt_owed[p] : NULL;
	uint64_t k;

	if (owed) {
		k = *owed < n ? *owed : n;
		n -= k;
		*owed = 0;
	}
	k = s->corrupt_owed_any < n ? s->corrupt_owed_any : n;
	s->corrupt_owed_any -= k;
	return n - k;
}

/* Continuity of one producer's seq: the first one seen sets the start,
 * since a consumer may join a producer that is already running, and so
 * does the first one after missed backlog, whose producer we cannot know
 * (FORMAT.md §9.1). Going backwards is a duplicate either way. */
static void check_seq(struct consume_state *s, const struct demo_decoded *d,
		      uint16_t producer)
{
	struct seq_track *t = track(s, d->id);
	uint64_t jump = 0;
	bool resumed;

	if (!t) {
		s->untracked++;
		return;
	}
	resumed = t->epoch != s->miss_epoch;
	t->epoch = s->miss_epoch;
	if (t->seen && d->seq > t->next && !resumed)
		jump = d->seq - t->next;
	else if (t->seen && d->seq < t->next)
		s->dups++;
	jump = unexplained(s, producer, jump);
	if (jump) {
		s->gaps++;
		s->gap_msgs += jump;
	}
	t->seen = true;
	if (d->seq >= t->next)
		t->next = d->seq + 1;
}

static void print_text(const struct demo_decoded *d, const struct pbr_view *v)
{
	printf("seq %" PRIu64 " id %s status %" PRId32
	       " blob %zu B (ring seq %" PRIu64 ", producer %u)\n",
	       d->seq, d->id, d->status, d->blob_len, v->seq, v->producer);
}

/* Latency from the slot's timestamp (its producer's pbr_clock_ns() at
 * commit) to now; replayed backlog is counted instead (see open_ns). */
static void add_latency(struct consume_state *s, uint64_t sent_ns)
{
	int64_t now = cli_now_ns();

	if (!sent_ns)
		return; /* committed without a timestamp */
	if (sent_ns < (uint64_t)s->open_ns)
		s->replayed++;
	else if ((uint64_t)now >= sent_ns)
		hist_add(&s->hist, (uint64_t)now - sent_ns);
}

/* --raw: copy the frame out, to write it once the slot is released. */
static int take_raw(struct consume_state *s, const struct pbr_view *v)
{
	uint32_t n = v->len;

	if ((size_t)n + 4 > s->line_cap)
		return -EBADMSG;
	s->line[0] = (char)(n & 0xff);
	s->line[1] = (char)((n >> 8) & 0xff);
	s->line[2] = (char)((n >> 16) & 0xff);
	s->line[3] = (char)(n >> 24);
	memcpy(s->line + 4, v->data, n);
	s->line_len = (size_t)n + 4;
	return 0;
}

/* Any typed ring: decode with the stored schema (to JSON unless quiet). */
static int take_typed(struct consume_state *s, const struct pbr_view *v)
{
	int rc = s->cfg->quiet ? pbs_pb_check(s->codec, v->data, v->len)
			       : pbs_pb_to_json(s->codec, v->data, v->len,
						&s->json, &s->json_len);

	return rc ? -EBADMSG : 0;
}

/* Check and format one message while its slot is still ours: 0, -EILSEQ
 * (CRC mismatch, counted in the ring's reader metrics), -ESTALE
 * (overwritten: release counts it) or -EBADMSG (content error); not
 * counted here yet: release may tell it was overwritten. */
static int take_one(struct consume_state *s, const struct pbr_view *v,
		    struct demo_decoded *d)
{
	int rc;

	/* The trace context while the slot is ours: for --envelope, and the
	 * trace id of a message named as corrupt (--log-format json). */
	s->tp[0] = 0;
	if ((s->cfg->envelope || cli_log_json) &&
	    pbr_view_traceparent(v, s->tp, sizeof(s->tp)) != 0)
		s->tp[0] = 0;
	snprintf(s->trace_id, sizeof(s->trace_id), "%.32s",
		 s->tp[0] ? s->tp + 3 : "");
	s->has_source = v->flags & PBR_SLOT_F_SOURCE;
	s->source[0] = v->source[0];
	s->source[1] = v->source[1];
	rc = pbr_reader_verify(s->rd, v);
	if (rc)
		return rc == -EBADMSG ? -EILSEQ : rc;
	if (s->kind == KIND_RAW)
		return take_raw(s, v);
	if (s->kind == KIND_TYPED)
		return take_typed(s, v);
	if (demo_event_decode(v, d) || !demo_blob_ok(d))
		return -EBADMSG;
	if (s->cfg->json && !demo_event_json(d, s->line, s->line_cap))
		return -ENOBUFS;
	return 0;
}

/* --envelope: the ring's metadata, then the message's JSON (@json, @n). */
static void print_envelope(const struct consume_state *s,
			   const struct pbr_view *v, const char *json, size_t n)
{
	printf("{\"seq\":\"%" PRIu64 "\",\"producer\":%u,\"timestamp_ns\":"
	       "\"%" PRIu64 "\",",
	       v->seq, v->producer, v->timestamp_ns);
	if (s->tp[0])
		printf("\"traceparent\":\"%s\",", s->tp);
	if (s->has_source)
		printf("\"source\":\"%" PRIu64 "-%" PRIu64 "\",", s->source[0],
		       s->source[1]);
	fputs("\"message\":", stdout);
	(void)fwrite(json, 1, n, stdout); /* ferror(stdout) at the end */
	fputs("}\n", stdout);
}

static void emit(struct consume_state *s, const struct demo_decoded *d,
		 const struct pbr_view *v)
{
	if (s->kind == KIND_DEMO)
		check_seq(s, d, v->producer);
	add_latency(s, v->timestamp_ns);
	s->received++;
	if (s->cfg->quiet)
		return;
	if (s->kind == KIND_RAW) {
		(void)fwrite(s->line, 1, s->line_len, stdout); /* as above */
	} else if (s->cfg->envelope) {
		if (s->kind == KIND_TYPED)
			print_envelope(s, v, s->json, s->json_len);
		else
			print_envelope(s, v, s->line, strlen(s->line));
	} else if (s->kind == KIND_TYPED) {
		(void)fwrite(s->json, 1, s->json_len, stdout); /* as above */
		putchar('\n');
	} else if (s->cfg->json)
		puts(s->line);
	else
		print_text(d, v);
}

/* Has the reader missed backlog since we last looked? */
static void note_missed(struct consume_state *s)
{
	struct pbr_reader_stats st;

	pbr_reader_stats(s->rd, &st);
	if (st.missed != s->missed_seen) {
		s->missed_seen = st.missed;
		s->miss_epoch++;
	}
}

/* Name a corrupt message on stderr (the first NAMED_MAX of them, so that
 * a flood of them does not bury the summary). p < 0: producer unknown. */
static void name_corrupt(struct consume_state *s, uint64_t seq, int p,
			 const char *what, const char *trace_id)
{
	const char *name = s->cfg->ring_name;
	char pre[PBR_NAME_MAX + 16];

	if (s->named++ >= NAMED_MAX) {
		if (s->named == NAMED_MAX + 1)
			cli_fail(name, "more corrupt messages: not named");
		return;
	}
	snprintf(pre, sizeof(pre), "pbring: %s: ", name);
	if (p < 0)
		cli_log("error", "corrupt", name, trace_id, pre,
			"seq %" PRIu64 ": %s", seq, what);
	else
		cli_log("error", "corrupt", name, trace_id, pre,
			"seq %" PRIu64 " (producer %d): %s", seq, p, what);
}

/* Count a corrupt message once: as a crc or content error, never also as
 * the gap it leaves in its producer's seq (see unexplained()). */
static void corrupt(struct consume_state *s, const struct pbr_view *v, int bad)
{
	char what[PBR_MSG_TYPE_MAX + 32];

	if (bad == -EILSEQ) {
		s->crc_errors++;
		snprintf(what, sizeof(what), "CRC mismatch");
	} else {
		s->content_errors++;
		snprintf(what, sizeof(what), "payload is not a valid %s",
			 s->msg_type);
	}
	if (v->producer < PBR_PARTICIPANTS_MAX)
		s->corrupt_owed[v->producer]++;
	else
		s->corrupt_owed_any++;
	name_corrupt(s, v->seq, v->producer, what, s->trace_id);
}

/* Check one message, release it, and only then count it: a lossy reader's
 * slot, or a gating reader's join backlog, may be overwritten while we
 * read it, and release is what tells (-ESTALE: discard, it is counted as
 * lost or missed, never as corrupt or delivered). */
static int take_one_released(struct consume_state *s, struct pbr_view *v)
{
	/* Zeroed: only a demo message fills it (the analyzer cannot tell
	 * that s->kind, which says so, stays put). */
	struct demo_decoded d = {0};
	int bad = take_one(s, v, &d), rc;

	/* A content error goes in the ring's metrics while the view is ours
	 * (-ESTALE, overwritten, is not counted; release tells it too). */
	if (bad && bad != -EILSEQ && bad != -ESTALE)
		(void)pbr_reader_reject(s->rd, v);
	rc = pbr_reader_release(s->rd, v);

	note_missed(s);
	if (rc == -ESTALE)
		return 0;
	if (bad)
		corrupt(s, v, bad);
	else
		emit(s, &d, v);
	return rc;
}

static int take_batch(struct consume_state *s, struct pbr_view *v, int n)
{
	int i, rc;

	for (i = 0; i < n; i++) {
		if (s->cfg->count && s->received >= s->cfg->count)
			break;
		if ((rc = take_one_released(s, &v[i])))
			return rc;
	}
	return 0;
}

/* "consume: N received, R msg/s" on a terminal, 4 times a second, when
 * the messages themselves do not go to it. */
static void progress(struct consume_state *s, int64_t now)
{
	double dt = (double)(now - s->progress_ns) / 1e9;

	if (!s->show_progress || dt < 0.25)
		return;
	fprintf(stderr, "\rconsume: %" PRIu64 " received, %.0f msg/s   ",
		s->received, (double)(s->received - s->progress_n) / dt);
	s->progress_ns = now;
	s->progress_n = s->received;
}

static int consume_loop(struct consume_state *s)
{
	const struct consume_cfg *c = s->cfg;
	int64_t idle_from = cli_now_ns();
	struct pbr_view v[BATCH];
	int n, rc;

	s->progress_ns = idle_from;
	while (!c->count || s->received < c->count) {
		if (cli_stop_signal())
			return -EINTR;
		progress(s, cli_now_ns());
		/* Short steps: the progress line, and the idle timeout. Ctrl-C
		 * interrupts the wait itself. */
		n = pbr_reader_peek_batch(s->rd, v, BATCH,
					  c->timeout_ns < 0 || c->timeout_ns >
								       200000000
						  ? 200000000
						  : c->timeout_ns);
		note_missed(s); /* peek skips a lapped backlog by itself */
		if (n == -ETIMEDOUT || n == -EAGAIN) { /* EAGAIN: --timeout 0 */
			if (c->timeout_ns >= 0 &&
			    cli_now_ns() - idle_from >= c->timeout_ns)
				return -ETIMEDOUT;
			continue;
		}
		if (n == -EBADMSG) { /* counted in the reader's stats as bad */
			s->corrupt_owed_any++;
			name_corrupt(s, v[0].seq, -1, "corrupt slot header",
				     NULL);
			continue;
		}
		if (n < 0)
			return n;
		idle_from = cli_now_ns();
		if (!s->start_ns)
			s->start_ns = idle_from;
		rc = take_batch(s, v, n);
		s->last_ns = cli_now_ns();
		if (rc)
			return rc;
	}
	return 0;
}

/* "latency p50 P p99 Q max X (what it measures)", in buf. */
static const char *latency_text(const struct consume_state *s, char *buf,
				size_t len)
{
	char p50[32] = "-", p99[32] = "-", max[32] = "-", replayed[64] = "";

	if (s->hist.count) {
		cli_duration(hist_pct(&s->hist, 50), p50, sizeof(p50));
		cli_duration(hist_pct(&s->hist, 99), p99, sizeof(p99));
		cli_duration(s->hist.max, max, sizeof(max));
	}
	if (s->replayed)
		snprintf(replayed, sizeof(replayed),
			 "; %" PRIu64 " replayed messages not timed",
			 s->replayed);
	snprintf(buf, len,
		 "latency p50 %s p99 %s max %s (commit to receive, including "
		 "time queued in the ring%s)",
		 p50, p99, max, replayed);
	return buf;
}

/* The summary's "(gating)", "(lossy)" or "(tap)". */
static const char *reader_kind(const struct consume_cfg *c)
{
	return c->tap ? "tap" : c->lossy ? "lossy" : "gating";
}

static void consume_summary(struct consume_state *s)
{
	struct pbr_reader_stats st;
	double secs = (double)(s->last_ns - s->start_ns) / 1e9;
	char latency[256];

	pbr_reader_stats(s->rd, &st);
	cli_log("info", "summary", s->cfg->ring_name, NULL, "consume ",
		"(%s): received %" PRIu64 ", lost %" PRIu64 ", missed %" PRIu64
		", gaps %" PRIu64 ", duplicates %" PRIu64
		", crc errors %" PRIu64 ", content errors %" PRIu64
		", abandoned %" PRIu64 ", rate %.0f msg/s, %s",
		/* the ring's count and the seq gaps see the same losses */
		reader_kind(s->cfg), s->received,
		st.lost > s->gap_msgs ? st.lost : s->gap_msgs, st.missed,
		s->gaps, s->dups, s->crc_errors, s->content_errors + st.bad,
		st.abandoned, secs > 0 ? (double)s->received / secs : 0.0,
		latency_text(s, latency, sizeof(latency)));
}

static int consume_verdict(struct consume_state *s, int rc)
{
	const struct consume_cfg *c = s->cfg;
	struct pbr_reader_stats st;

	pbr_reader_stats(s->rd, &st);
	if (rc == -EINTR && cli_stop_signal())
		rc = 0; /* the checks below still apply; the status is 130 */
	if (rc == -ETIMEDOUT && c->count) {
		cli_fail(c->ring_name,
			 "timed out after %" PRIu64 " of %" PRIu64 " messages",
			 s->received, c->count);
		return EXIT_RUNTIME;
	}
	if (rc && rc != -ETIMEDOUT)
		return cli_err(c->ring_name, "receive", rc);
	if (s->crc_errors || s->content_errors || st.bad) {
		cli_fail(c->ring_name, "%" PRIu64 " corrupt messages",
			 s->crc_errors + s->content_errors + st.bad);
		return EXIT_RUNTIME;
	}
	if (!c->lossy && !c->tap && (s->gaps || s->dups)) {
		cli_fail(c->ring_name,
			 "%" PRIu64 " gaps and %" PRIu64
			 " duplicates in producer sequences",
			 s->gaps, s->dups);
		return EXIT_RUNTIME;
	}
	return 0;
}

static int consume_opt(int c, const char *arg, struct consume_cfg *cfg)
{
	double d;

	switch (c) {
	case 'n':
		if (!cli_u64(arg, 1, UINT64_MAX / 2, &cfg->count))
			return cli_usage(
				"consume",
				"--count: '%s' is not a positive number", arg);
		return 0;
	case 't':
		if (!cli_seconds(arg, &d))
			return cli_usage(
				"consume",
				"--timeout: '%s' is not a number of seconds",
				arg);
		cfg->timeout_ns = (int64_t)(d * 1e9);
		return 0;
	case 'f':
		if (!strcmp(arg, "oldest"))
			cfg->start = PBR_START_OLDEST;
		else if (!strcmp(arg, "latest"))
			cfg->start = PBR_START_LATEST;
		else
			return cli_usage("consume",
					 "--from: '%s' is not oldest or latest",
					 arg);
		return 0;
	case 'l':
		cfg->lossy = true;
		return 0;
	case 'j':
		cfg->json = true;
		return 0;
	case 'q':
		cfg->quiet = true;
		return 0;
	case 'R':
		cfg->raw = true;
		return 0;
	case 'A':
		cfg->any_owner = true;
		return 0;
	case 'E':
		cfg->envelope = true;
		return 0;
	case 'T':
		cfg->tap = true;
		return 0;
	case 'D':
		if (pbr_reader_name_check(arg))
			return cli_usage(
				"consume",
				"--durable: '%s' is not 1..31 bytes of "
				"[A-Za-z0-9._-]",
				arg);
		cfg->durable = arg;
		return 0;
	}
	return cli_usage("consume", "bad option");
}

static int consume_parse(int argc, char **argv, struct consume_cfg *cfg)
{
	static const struct option opts[] = {{"count", 1, 0, 'n'},
					     {"timeout", 1, 0, 't'},
					     {"from", 1, 0, 'f'},
					     {"lossy", 0, 0, 'l'},
					     {"json", 0, 0, 'j'},
					     {"quiet", 0, 0, 'q'},
					     {"raw", 0, 0, 'R'},
					     {"any-owner", 0, 0, 'A'},
					     {"envelope", 0, 0, 'E'},
					     {"tap", 0, 0, 'T'},
					     {"durable", 1, 0, 'D'},
					     {"help", 0, 0, 'h'},
					     {0, 0, 0, 0}};
	int c, rc;

	memset(cfg, 0, sizeof(*cfg));
	cfg->timeout_ns = -1;
	opterr = 0; /* cli_bad_option() says it in one line */
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(consume_help, stdout);
			return -1;
		}
		if (c == '?' || c == ':')
			return cli_bad_option("consume", argv, c);
		if ((rc = consume_opt(c, optarg, cfg)))
			return rc;
	}
	if (optind != argc - 1)
		return cli_usage("consume", "expects exactly one RING");
	if (cfg->json + cfg->quiet + cfg->raw > 1)
		return cli_usage("consume", "%s exclude each other",
				 !cfg->raw     ? "--json and --quiet"
				 : !cfg->quiet ? "--json and --raw"
				 : !cfg->json  ? "--quiet and --raw"
					       : "--json, --quiet and --raw");
	if (cfg->envelope && !cfg->json)
		return cli_usage("consume", "--envelope needs --json");
	if (cfg->tap && cfg->lossy)
		return cli_usage("consume", "--tap and --lossy exclude each "
					    "other (a tap is lossy already)");
	if (cfg->durable && (cfg->tap || cfg->lossy))
		return cli_usage("consume",
				 "--durable excludes %s (a durable "
				 "reader holds producers back)",
				 cfg->tap ? "--tap" : "--lossy");
	cfg->ring_name = argv[optind];
	return 0;
}

static int consume_open(struct consume_state *s, struct pbr_ring *ring)
{
	struct pbr_reader_opts o = {0};
	struct pbr_ring_info info;
	int rc;

	/* A tap has no entry, so no latency block to record into. */
	o.flags = s->cfg->tap ? PBR_READER_TAP
			      : PBR_READER_LATENCY |
					(s->cfg->lossy ? PBR_READER_LOSSY : 0);
	if (s->cfg->durable)
		o.flags |= PBR_READER_DURABLE;
	o.name = s->cfg->durable;
	o.start = s->cfg->start;
	pbr_ring_info(ring, &info);
	s->line_cap = demo_json_cap(info.payload_cap);
	if (s->line_cap < (size_t)info.payload_cap + 4)
		s->line_cap = (size_t)info.payload_cap + 4; /* a raw frame */
	s->line = malloc(s->line_cap);
	s->ids = calloc(IDS, sizeof(*s->ids));
	if (!s->line || !s->ids)
		return -ENOMEM;
	snprintf(s->msg_type, sizeof(s->msg_type), "%s",
		 info.msg_type[0] ? info.msg_type : "message");
	s->open_ns = cli_now_ns();
	rc = pbr_reader_open(ring, &o, &s->rd);
	return rc;
}

/* What this ring holds and how to read it: 0, or an exit status. */
static int consume_kind(struct consume_state *s, struct pbr_ring *ring)
{
	const char *name = s->cfg->ring_name;
	struct pbr_ring_info info;
	char *err = NULL;

	pbr_ring_info(ring, &info);
	if (s->cfg->raw) {
		s->kind = KIND_RAW;
		return 0;
	}
	if (!info.msg_type[0]) {
		cli_fail(name, "ring is untyped: use --raw");
		return EXIT_RUNTIME;
	}
	if (!strcmp(info.msg_type, PBR_DEMO_MSG_TYPE)) {
		s->kind = KIND_DEMO;
		return 0;
	}
	if (!info.schema_len) {
		cli_fail(name, "ring holds %s without its schema: use --raw",
			 info.msg_type);
		return EXIT_RUNTIME;
	}
	if (pbs_codec_open(info.schema, info.schema_len, info.msg_type,
			   &s->codec, &err)) {
		cli_fail(name, "%s", err ? err : "bad stored schema");
		free(err);
		return EXIT_RUNTIME;
	}
	s->kind = KIND_TYPED;
	return 0;
}

/* Why the reader could not be opened, in one line. */
static void open_failed(const struct consume_cfg *c, int rc)
{
	if (c->durable && rc == -EBUSY)
		cli_fail(c->ring_name,
			 "durable reader %s is in use by a live process (or "
			 "every reader entry is taken)",
			 c->durable);
	else if (c->durable && rc == -EOPNOTSUPP)
		cli_fail(c->ring_name,
			 "ring has no durable readers (create it with "
			 "--durable-readers)");
	else
		cli_err(c->ring_name, "open reader", rc);
}

/* A durable reader says on stderr whether it was created or resumed (and
 * where): 0 either way. */
static int durable_opened(struct consume_state *s, int rc)
{
	struct pbr_reader_stats st;

	if (!s->cfg->durable)
		return 0;
	pbr_reader_stats(s->rd, &st);
	fprintf(stderr, "consume: durable reader %s %s at seq %" PRIu64 "\n",
		s->cfg->durable, rc == 1 ? "resumed" : "created", st.cursor);
	return 0;
}

int cmd_consume(int argc, char **argv)
{
	static struct consume_state s; /* large: the histogram */
	struct consume_cfg cfg;
	struct pbr_ring *ring;
	int rc = consume_parse(argc, argv, &cfg), out_err;

	if (rc)
		return rc < 0 ? 0 : rc;
	cli_stop_install(NULL); /* Ctrl-C during attach too */
	/* A tap writes nothing, so the owner check, which protects what
	 * participants write, does not apply; read permission is enough. */
	rc = cfg.tap ? cli_attach_flags("consume", cfg.ring_name,
					PBR_ATTACH_READONLY |
						PBR_ATTACH_ANY_OWNER,
					&ring)
		     : cli_attach_as("consume", cfg.ring_name, cfg.any_owner,
				     &ring);
	if (rc)
		return cli_stop_signal() ? 128 + cli_stop_signal() : rc;
	cli_stop_install(ring);
	memset(&s, 0, sizeof(s));
	s.cfg = &cfg;
	rc = consume_kind(&s, ring);
	if (!rc) {
		rc = consume_open(&s, ring);
		if (rc < 0)
			open_failed(&cfg, rc);
		else /* 0: opened (a durable reader: created), 1: resumed */
			rc = durable_opened(&s, rc);
	}
	if (rc) {
		pbs_codec_close(s.codec);
		cli_stop_detach(ring);
		s.cfg = NULL; /* s is static (for its size), cfg is not */
		return EXIT_RUNTIME;
	}
	/* Full buffering (1 MiB); if refused, stdio's own buffer does. */
	(void)setvbuf(stdout, NULL, _IOFBF, 1 << 20);
	s.show_progress =
		cli_tty(2) && !cli_log_json && (cfg.quiet || !cli_tty(1));
	rc = consume_loop(&s);
	/* A full disk or a closed file: the messages taken since are lost,
	 * so the run fails, and says so (every write is checked here, once). */
	out_err = fflush(stdout) ? errno : ferror(stdout) ? EIO : 0;
	if (s.show_progress)
		fputs("\r\033[K", stderr); /* the summary replaces it */
	consume_summary(&s);
	rc = consume_verdict(&s, rc);
	if (out_err) {
		cli_fail(cfg.ring_name, "cannot write the output: %s",
			 strerror(out_err));
		rc = EXIT_RUNTIME;
	}
	if (cli_stop_signal() && rc != EXIT_RUNTIME)
		rc = cli_stop_status(cfg.ring_name);
	pbr_reader_close(s.rd);
	cli_stop_detach(ring);
	free(s.line);
	free(s.ids);
	pbs_codec_close(s.codec);
	s.cfg = NULL; /* as above */
	return rc;
}
