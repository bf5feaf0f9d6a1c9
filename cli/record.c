/* SPDX-License-Identifier: MIT */
/*
 * `pbring record`: write what one or more rings carry to an MCAP file
 * (cli/mcap.c), one channel per ring with the ring's schema, until a
 * count, a duration or Ctrl-C; and `pbring info`: what an MCAP file
 * holds.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "mcap.h"

#define BATCH 64
#define RINGS_MAX MCAP_CHANNELS
#define MAX_SIZE_MIN (64u << 10)

static const char record_help[] =
	"usage: pbring record RING... -o FILE.mcap [options]\n"
	"Record what the rings carry to an MCAP file (https://mcap.dev): one\n"
	"channel per ring (topic: the ring's name, message encoding "
	"protobuf),\n"
	"its schema the ring's message type and FileDescriptorSet; zstd "
	"chunks\n"
	"of about 1 MiB with message indexes and a summary for seeking "
	"readers.\n"
	"Each message's log and publish time is its commit timestamp on the\n"
	"Unix epoch (CLOCK_MONOTONIC + CLOCK_REALTIME - CLOCK_MONOTONIC at "
	"start);\n"
	"its sequence the ring's seq, cut to 32 bits as MCAP has it.\n"
	"  -o, --output FILE  the MCAP file to write (replaced)\n"
	"  --count N          stop after N messages (all rings together)\n"
	"  --duration SEC     stop after SEC seconds\n"
	"  --max-size BYTES   split into FILE-0001.mcap, FILE-0002.mcap, ... "
	"of\n"
	"                     at most about BYTES each, every one a complete "
	"MCAP\n"
	"                     file (at least 65536)\n"
	"  --tap              read as a tap (read-only, never holds producers\n"
	"                     back; counts what it loses); default: a gating\n"
	"                     reader, which loses nothing\n"
	"Ctrl-C or SIGTERM stops it: the chunk in hand is written and the "
	"file\n"
	"closed complete, the summary printed, then exit 130 / 143. A write "
	"error\n"
	"(disk full) stops it with the file cut back to its last complete "
	"chunk.\n";

static const char info_help[] =
	"usage: pbring info FILE.mcap\n"
	"Show what an MCAP file holds: its channels (topic, schema, "
	"messages),\n"
	"the message count, time span and chunks, from its summary (or a "
	"scan of\n"
	"its records when it has none). Exits 1 for a file that is not MCAP "
	"or\n"
	"is cut short (after reporting what is readable in it).\n";

struct record_cfg {
	const char *names[RINGS_MAX];
	unsigned n;
	const char *out;
	uint64_t count, max_size;
	int64_t duration_ns; /* < 0: none */
	bool tap;
};

struct rec_ring {
	const char *name;
	struct pbr_ring *ring;
	struct pbr_reader *rd;
	struct pbr_ring_info info;
	uint64_t count;	  /* recorded, all files */
	uint8_t *scratch; /* an unstable view's payload, copied out */
};

struct record_state {
	const struct record_cfg *cfg;
	struct rec_ring r[RINGS_MAX];
	struct mcap_writer w;
	bool open;	   /* w is */
	unsigned file;	   /* numbered file in hand (--max-size), from 1 */
	char path[4096];   /* of the file in hand */
	uint64_t epoch_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC */
	uint64_t total, bytes, chunks;
	uint64_t unwritten; /* taken, then lost to a write error */
};

/* --- options ---------------------------------------------------------- */

static int record_opt(int c, const char *arg, struct record_cfg *cfg)
{
	double d;

	switch (c) {
	case 'o':
		cfg->out = arg;
		return 0;
	case 'n':
		if (!cli_u64(arg, 1, UINT64_MAX / 2, &cfg->count))
			return cli_usage("record",
					 "--count: '%s' is not a positive "
					 "number",
					 arg);
		return 0;
	case 'd':
		if (!cli_seconds(arg, &d) || d <= 0)
			return cli_usage("record",
					 "--duration: '%s' is not a number of "
					 "seconds",
					 arg);
		cfg->duration_ns = (int64_t)(d * 1e9);
		return 0;
	case 'M':
		if (!cli_u64(arg, MAX_SIZE_MIN, UINT64_MAX / 2, &cfg->max_size))
			return cli_usage("record",
					 "--max-size: '%s' is not a size of at "
					 "least %u bytes",
					 arg, MAX_SIZE_MIN);
		return 0;
	case 'T':
		cfg->tap = true;
		return 0;
	}
	return cli_usage("record", "bad option");
}

static int record_parse(int argc, char **argv, struct record_cfg *cfg)
{
	static const struct option opts[] = {{"output", 1, 0, 'o'},
					     {"count", 1, 0, 'n'},
					     {"duration", 1, 0, 'd'},
					     {"max-size", 1, 0, 'M'},
					     {"tap", 0, 0, 'T'},
					     {"help", 0, 0, 'h'},
					     {0, 0, 0, 0}};
	int c, rc;

	memset(cfg, 0, sizeof(*cfg));
	cfg->duration_ns = -1;
	opterr = 0; /* cli_bad_option() says it in one line */
	while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(record_help, stdout);
			return -1;
		}
		if (c == '?' || c == ':')
			return cli_bad_option("record", argv, c);
		if ((rc = record_opt(c, optarg, cfg)))
			return rc;
	}
	if (optind == argc)
		return cli_usage("record", "expects at least one RING");
	if (argc - optind > RINGS_MAX)
		return cli_usage("record", "at most %d rings", RINGS_MAX);
	if (!cfg->out)
		return cli_usage("record", "expects -o FILE.mcap");
	for (; optind < argc; optind++)
		cfg->names[cfg->n++] = argv[optind];
	return 0;
}

/* --- rings ------------------------------------------------------------ */

/* Attach and check one ring: 0 or an exit status. */
static int ring_attach(struct record_state *s, struct rec_ring *r)
{
	int rc = s->cfg->tap ? cli_attach_flags("record", r->name,
						PBR_ATTACH_READONLY |
							PBR_ATTACH_ANY_OWNER,
						&r->ring)
			     : cli_attach("record", r->name, &r->ring);

	if (rc)
		return rc;
	pbr_ring_info(r->ring, &r->info);
	if (!r->info.msg_type[0] || !r->info.schema_len) {
		cli_fail(r->name,
			 "ring %s: MCAP needs its message type and schema",
			 r->info.msg_type[0] ? "has no schema" : "is untyped");
		return EXIT_RUNTIME;
	}
	if (!(r->scratch =
		      malloc(r->info.payload_cap ? r->info.payload_cap : 1)))
		return cli_err(r->name, "allocate", -ENOMEM);
	return 0;
}

static int ring_open_reader(struct record_state *s, struct rec_ring *r)
{
	struct pbr_reader_opts o = {0};
	int rc;

	o.flags = s->cfg->tap ? PBR_READER_TAP : 0;
	o.start = PBR_START_OLDEST;
	if ((rc = pbr_reader_open(r->ring, &o, &r->rd)))
		return cli_err(r->name, "open reader", rc);
	return 0;
}

static void rings_close(struct record_state *s)
{
	unsigned i;

	for (i = 0; i < s->cfg->n; i++) {
		if (s->r[i].rd)
			pbr_reader_close(s->r[i].rd);
		if (s->r[i].ring)
			cli_stop_detach(s->r[i].ring);
		free(s->r[i].scratch);
	}
}

static int rings_open(struct record_state *s)
{
	unsigned i;
	int rc;

	for (i = 0; i < s->cfg->n; i++) {
		s->r[i].name = s->cfg->names[i];
		if ((rc = ring_attach(s, &s->r[i])))
			return rc;
	}
	cli_stop_install(s->r[0].ring); /* interrupts the waits on it */
	for (i = 0; i < s->cfg->n; i++)
		if ((rc = ring_open_reader(s, &s->r[i])))
			return rc;
	return 0;
}

/* --- files ------------------------------------------------------------ */

/* The name of the file in hand: FILE, or FILE-NNNN.mcap (--max-size). */
static void file_name(struct record_state *s)
{
	const char *o = s->cfg->out; /* set: record_parse wants -o FILE */
	/* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker) */
	size_t n = strlen(o);

	if (!s->cfg->max_size) {
		snprintf(s->path, sizeof(s->path), "%s", o);
		return;
	}
	if (n > 5 && !strcmp(o + n - 5, ".mcap"))
		n -= 5;
	snprintf(s->path, sizeof(s->path), "%.*s-%04u.mcap", (int)n, o,
		 s->file);
}

/* Start the next file: 0 or -errno. */
static int file_open(struct record_state *s)
{
	size_t target = MCAP_CHUNK;
	unsigned i;
	int rc;

	s->file++;
	file_name(s);
	if (s->cfg->max_size && s->cfg->max_size / 4 < target)
		target = (size_t)(s->cfg->max_size / 4);
	if ((rc = mcap_open(&s->w, s->path, target)))
		return rc;
	s->open = true;
	for (i = 0; i < s->cfg->n; i++)
		mcap_add_channel(&s->w, s->r[i].name, s->r[i].info.msg_type,
				 s->r[i].info.schema, s->r[i].info.schema_len);
	return mcap_begin(&s->w);
}

/* After a write error: the messages after the last complete chunk are
 * not in the file; count them as not written instead of recorded. */
static void lose_chunk(struct record_state *s)
{
	uint64_t k;
	unsigned i;

	for (i = 0; i < s->cfg->n; i++) {
		k = s->w.ch[i].count - s->w.ch[i].good_count;
		s->r[i].count -= k;
		s->total -= k;
		s->unwritten += k;
	}
}

static int file_close(struct record_state *s)
{
	int rc;

	if (!s->open)
		return 0;
	s->open = false;
	rc = mcap_close(&s->w);
	s->bytes += s->w.off;
	s->chunks += s->w.chunks;
	if (rc)
		lose_chunk(s);
	return rc;
}

/* --max-size: make room for a message of @len bytes, flushing the chunk
 * in hand or starting the next file. 0 or -errno. */
static int make_room(struct record_state *s, size_t len)
{
	uint64_t max = s->cfg->max_size, need = 64 + len;
	int rc;

	if (!max || !s->w.messages ||
	    s->w.off + mcap_pending(&s->w) + need + mcap_tail(&s->w) <= max)
		return 0;
	if (mcap_pending(&s->w) && (rc = mcap_flush(&s->w)))
		return rc;
	if (s->w.off + need + mcap_tail(&s->w) <= max)
		return 0;
	if ((rc = file_close(s)))
		return rc;
	return file_open(s);
}

/* --- recording -------------------------------------------------------- */

static uint64_t clock_of(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int add(struct record_state *s, unsigned i, const struct pbr_view *v,
	       const void *data)
{
	uint64_t t = v->timestamp_ns ? v->timestamp_ns : pbr_clock_ns();
	int rc;

	if ((rc = make_room(s, v->len)) ||
	    (rc = mcap_message(&s->w, i, (uint32_t)v->seq, t + s->epoch_ns,
			       data, v->len)))
		return rc;
	s->r[i].count++;
	s->total++;
	return 0;
}

/* How many of @n views to take, for --count. */
static int room(const struct record_state *s, int n)
{
	uint64_t left = s->cfg->count - s->total;

	return s->cfg->count && left < (uint64_t)n ? (int)left : n;
}

/* Views that may be overwritten while held (a tap's, replayed backlog):
 * copy each out, release it, and record it only if it was intact. */
static int take_unstable(struct record_state *s, unsigned i, struct pbr_view *v,
			 int n)
{
	struct rec_ring *r = &s->r[i];
	int k, rc;

	for (k = 0; k < n; k++) {
		memcpy(r->scratch, v[k].data, v[k].len);
		rc = pbr_reader_release(r->rd, &v[k]);
		if (rc == -ESTALE)
			continue; /* counted as lost or missed */
		if (rc)
			return rc;
		if ((rc = add(s, i, &v[k], r->scratch)))
			return rc;
	}
	return 0;
}

static int take(struct record_state *s, unsigned i, struct pbr_view *v, int n)
{
	int k, rc;

	if (!(n = room(s, n)))
		return 0;
	if (s->cfg->tap || (v[0].vflags & PBR_VIEW_UNSTABLE))
		return take_unstable(s, i, v, n);
	for (k = 0; k < n; k++)
		if ((rc = add(s, i, &v[k], v[k].data)))
			return rc;
	return pbr_reader_release(s->r[i].rd, &v[n - 1]);
}

/* One look at ring @i, waiting up to @wait_ns: messages taken, or a
 * negative error (-EINTR when interrupted). */
static int poll_ring(struct record_state *s, unsigned i, int64_t wait_ns)
{
	struct pbr_view v[BATCH];
	int n = pbr_reader_peek_batch(s->r[i].rd, v, BATCH, wait_ns), rc;

	if (n == -EAGAIN || n == -ETIMEDOUT || n == -EBADMSG)
		return 0; /* a corrupt slot is skipped and counted */
	if (n < 0)
		return n;
	if ((rc = take(s, i, v, n)))
		return rc;
	return n;
}

static bool done(const struct record_state *s, int64_t end)
{
	if (cli_stop_signal())
		return true;
	if (s->cfg->count && s->total >= s->cfg->count)
		return true;
	return end >= 0 && cli_now_ns() >= end;
}

/* Round-robin over the rings without waiting; when a round found nothing,
 * wait on one ring (in turn) for a moment. 0 or a negative error. */
static int record_loop(struct record_state *s)
{
	int64_t end = s->cfg->duration_ns < 0
			      ? -1
			      : cli_now_ns() + s->cfg->duration_ns;
	int64_t wait = s->cfg->n == 1 ? 100000000 : 1000000;
	unsigned i, turn = 0;
	bool idle = false;
	int n, got;

	while (!done(s, end)) {
		got = 0;
		for (i = 0; i < s->cfg->n; i++) {
			n = poll_ring(s, i, idle && i == turn ? wait : 0);
			if (n == -EINTR)
				return 0;
			if (n < 0)
				return n;
			got += n;
		}
		idle = !got;
		if (idle) {
			/* n >= 1: record_parse wants at least one RING */
			/* NOLINTNEXTLINE(clang-analyzer-core.DivideZero) */
			turn = (turn + 1) % s->cfg->n;
		}
	}
	return 0;
}

/* "record: RING N messages (lost L), ...; T messages, C chunks, B bytes
 * in FILE" on stderr. */
static void record_summary(struct record_state *s)
{
	char line[4096];
	size_t k = 0;
	struct pbr_reader_stats st;
	unsigned i;

	for (i = 0; i < s->cfg->n && k < sizeof(line) - 256; i++) {
		pbr_reader_stats(s->r[i].rd, &st);
		k += (size_t)snprintf(line + k, sizeof(line) - k,
				      "%s%s %" PRIu64 " messages (lost %" PRIu64
				      ")",
				      i ? ", " : "", s->r[i].name,
				      s->r[i].count, st.lost + st.missed);
	}
	if (s->file > 1)
		cli_log("info", "summary", NULL, NULL, "record: ",
			"%s; %" PRIu64 " messages, %" PRIu64 " chunks, %" PRIu64
			" bytes in %u files, the last %s",
			line, s->total, s->chunks, s->bytes, s->file, s->path);
	else
		cli_log("info", "summary", NULL, NULL, "record: ",
			"%s; %" PRIu64 " messages, %" PRIu64 " chunks, %" PRIu64
			" bytes in %s",
			line, s->total, s->chunks, s->bytes, s->path);
}

int cmd_record(int argc, char **argv)
{
	static struct record_state s;
	struct record_cfg cfg;
	int rc = record_parse(argc, argv, &cfg), err;

	if (rc)
		return rc < 0 ? 0 : rc;
	memset(&s, 0, sizeof(s));
	s.cfg = &cfg;
	cli_stop_install(NULL); /* Ctrl-C during attach too */
	if ((rc = rings_open(&s))) {
		rings_close(&s);
		return cli_stop_signal() ? 128 + cli_stop_signal() : rc;
	}
	s.epoch_ns = clock_of(CLOCK_REALTIME) - pbr_clock_ns();
	if ((err = file_open(&s))) {
		file_close(&s);
		cli_fail(s.path, "cannot write: %s", strerror(-err));
		rings_close(&s);
		return EXIT_RUNTIME;
	}
	err = record_loop(&s);
	rc = file_close(&s);
	if (!err)
		err = rc;
	record_summary(&s);
	rc = 0;
	if (err == -EINTR || err == -EIDRM || err == -EUCLEAN || err == -ENOMEM)
		rc = cli_err(err == -EINTR ? s.path : s.r[0].name, "record",
			     err);
	else if (err) {
		cli_fail(s.path, "write: %s (%" PRIu64 " messages not written)",
			 strerror(-err), s.unwritten);
		rc = EXIT_RUNTIME;
	}
	if (cli_stop_signal() && !rc)
		rc = cli_stop_status(s.path);
	rings_close(&s);
	return rc;
}

/* --- info ------------------------------------------------------------- */

static void print_info(const char *path, const struct mcap_info *in)
{
	char a[64], b[64];
	unsigned i;

	printf("file: %s (%" PRIu64 " bytes, %s)\n", path, in->size,
	       in->summary ? "summary" : "no summary: scanned");
	for (i = 0; i < in->nch; i++)
		printf("channel %u: topic %s, schema %s, %" PRIu64
		       " messages\n",
		       in->ch[i].id, in->ch[i].topic,
		       in->ch[i].schema[0] ? in->ch[i].schema : "-",
		       in->ch[i].count);
	printf("messages: %" PRIu64 "\n", in->messages);
	if (in->messages)
		printf("time: %s .. %s (%.3f s)\n",
		       cli_utc(in->start, a, sizeof(a)),
		       cli_utc(in->end, b, sizeof(b)),
		       (double)(in->end - in->start) / 1e9);
	printf("chunks: %" PRIu32 " (%s)\n", in->chunks,
	       in->compression[0] ? in->compression : "none");
}

int cmd_info(int argc, char **argv)
{
	static struct mcap_info in;
	static const struct option opts[] = {{"help", 0, 0, 'h'}, {0, 0, 0, 0}};
	const char *path;
	int c, rc;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(info_help, stdout);
			return 0;
		}
		return cli_bad_option("info", argv, c);
	}
	if (optind != argc - 1)
		return cli_usage("info", "expects exactly one FILE");
	path = argv[optind];
	rc = mcap_read_info(path, &in);
	if (rc == -EPROTO) {
		cli_fail(path, "not an MCAP file");
		return EXIT_RUNTIME;
	}
	if (rc == -EBADMSG) {
		cli_fail(path, "corrupt MCAP file");
		return EXIT_RUNTIME;
	}
	if (rc) {
		cli_fail(path, "%s", strerror(-rc));
		return EXIT_RUNTIME;
	}
	print_info(path, &in);
	if (fflush(stdout))
		return EXIT_RUNTIME;
	if (in.truncated) {
		cli_fail(path,
			 "truncated: %" PRIu64 " of %" PRIu64
			 " bytes readable (complete records), %" PRIu64
			 " messages in them",
			 in.readable, in.size, in.messages);
		return EXIT_RUNTIME;
	}
	return 0;
}
