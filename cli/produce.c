/* SPDX-License-Identifier: MIT */
/*
 * `pbring produce`: send DeviceEvent messages, encoded by nanopb straight
 * into the slots, from K producer threads. Each thread has its own
 * producer entry and its own DeviceEvent.id ("<pid>-<k>"), with seq
 * counting from 0, so consumers can check continuity per producer.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pb_encode.h>

#include "cli.h"
#include "demo_event.h"
#include "pbschema.h"

static const char produce_help[] =
	"usage: pbring produce RING --from-json FILE|- [--timeout SEC] "
	"[--no-wait]\n"
	"       pbring produce RING [options]\n"
	"Send messages of the ring's type from proto3 JSON, one object per "
	"line\n"
	"(blank lines skipped; '-' is stdin), in order, each with its "
	"timestamp\n"
	"and a CRC32C where the ring's CRC policy asks (create --crc); a line\n"
	"that does not parse stops it (exit 1), every line\n"
	"before it sent. Without --from-json: send pbring.demo.v1.DeviceEvent\n"
	"messages to a demo ring.\n"
	"  --from-json FILE the JSON lines to send (any typed ring)\n"
	"  --count N        messages per producer (default: until "
	"interrupted)\n"
	"  --rate HZ        total messages per second (default: as fast as "
	"possible)\n"
	"  --size BYTES     blob bytes per message (default 0); a slot holds\n"
	"                   --slot-size - 64 bytes, the event's other fields "
	"~40\n"
	"  --producers K    producer threads, each with its own id and seq "
	"(default 1)\n"
	"  --timeout SEC    give up when no gating reader comes, or the ring "
	"stays\n"
	"                   full, this long (default 10)\n"
	"  --no-wait        start at once, even if no gating reader is "
	"attached\n"
	"                   (by default it waits up to --timeout for one, so "
	"that\n"
	"                   nothing is sent into a ring that nobody reads)\n"
	"  --traceparent TP give every message this W3C trace context\n"
	"                   (00-<32 hex>-<16 hex>-<2 hex>; consume "
	"--envelope shows it)\n"
	"  --source HI-LO   give message i of each producer the source id "
	"(HI, LO+i)\n"
	"                   (format 1.3, as a Redis stream entry id ms-seq; "
	"consume\n"
	"                   --envelope shows it)\n"
	"  --raw            skip the message type check (for untyped rings)\n"
	"  --any-owner      accept a ring owned by another user (see "
	"SECURITY.md)\n"
	"Ctrl-C or SIGTERM stops it at once: summary, then exit 130 / 143.\n";

struct produce_cfg {
	const char *ring_name;
	struct pbr_ring *ring;
	uint64_t count; /* per producer; 0 = unlimited */
	double rate;	/* per producer */
	uint32_t size;
	unsigned producers;
	int64_t timeout_ns;
	bool raw, no_wait, any_owner;
	const char *from_json;	 /* FILE, "-", or NULL: demo events */
	const char *traceparent; /* --traceparent (checked), or NULL */
	uint64_t source[2];	 /* --source HI-LO, with has_source */
	bool has_source;
	uint32_t payload_cap; /* the ring's, once attached */
	const char *demo_opt; /* a demo-only option given, for --from-json */
};

struct produce_thread {
	pthread_t tid;
	const struct produce_cfg *cfg;
	unsigned k;
	uint64_t sent;
	int err;
	const char *what; /* the step that failed */
	size_t msg_size;  /* the encoding that did not fit (-EMSGSIZE) */
	_Atomic uint64_t progress;
};

/* Why the threads were told to stop other than a signal: the watch saw
 * the ring removed or shrunk. */
static atomic_int watch_err;

/* Pace to rate: sleep until message i is due, in steps of at most 50 ms
 * (a signal lands on another thread and does not cut this sleep short).
 * False if told to stop meanwhile. */
static bool pace(int64_t start, double rate, uint64_t i)
{
	int64_t due = start + (int64_t)((double)i * 1e9 / rate), now;

	while (!cli_stop_signal() && (now = cli_now_ns()) < due) {
		int64_t until = due - now > 50000000LL ? now + 50000000LL : due;
		struct timespec ts = {until / 1000000000LL,
				      until % 1000000000LL};

		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
	return !cli_stop_signal();
}

static void *produce_run(void *arg)
{
	struct produce_thread *t = arg;
	const struct produce_cfg *c = t->cfg;
	struct demo_event ev;
	struct pbr_producer *p;
	int64_t start = cli_now_ns();
	uint64_t i;

	t->err = pbr_producer_open(c->ring, NULL, &p);
	if (t->err) {
		t->what = "open producer";
		return NULL;
	}
	t->err = demo_event_init(&ev, (int)getpid(), t->k, c->size);
	if (t->err) {
		(void)pbr_producer_close(p);
		return NULL;
	}
	for (i = 0; !c->count || i < c->count; i++) {
		if (cli_stop_signal())
			break;
		if (c->rate > 0 && !pace(start, c->rate, i))
			break;
		t->err = demo_event_send(p, &ev, i, c->timeout_ns,
					 c->traceparent,
					 c->has_source ? c->source : NULL);
		if (t->err)
			break;
		atomic_store_explicit(&t->progress, i + 1,
				      memory_order_relaxed);
	}
	t->sent = i;
	if (t->err == -EMSGSIZE &&
	    !pb_get_encoded_size(&t->msg_size,
				 pbring_demo_v1_DeviceEvent_fields, &ev.msg))
		t->msg_size = 0;
	demo_event_fini(&ev);
	(void)pbr_producer_close(p);
	return NULL;
}

static uint64_t total_progress(struct produce_thread *t, unsigned n)
{
	uint64_t sum = 0;
	unsigned k;

	for (k = 0; k < n; k++)
		sum += atomic_load_explicit(&t[k].progress,
					    memory_order_relaxed);
	return sum;
}

/* Join @tid if it ends within @ms. */
static bool join_for(pthread_t tid, long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts); /* the clock timedjoin uses */
	ts.tv_nsec += ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	return pthread_timedjoin_np(tid, NULL, &ts) == 0;
}

/* No message sent for a second: say once what the producers wait for. */
struct stall {
	uint64_t seen;
	int64_t moved_ns;
	bool said;
};

static void note_stall(struct stall *st, struct cli_watch *w, uint64_t sum,
		       int64_t now)
{
	if (sum != st->seen) {
		st->seen = sum;
		st->moved_ns = now;
		st->said = false;
	} else if (!st->said && now - st->moved_ns >= 1000000000LL) {
		st->said = true; /* once per stall */
		cli_watch_full(w);
	}
}

/* The rate line on a terminal, and the watch (dead gating readers, the
 * ring removed) on any output; returns when every thread is done. */
static void show_progress(const struct produce_cfg *c, struct produce_thread *t,
			  int64_t start)
{
	struct stall st = {0, start, false};
	bool tty = cli_tty(2) && !cli_log_json; /* progress: text only */
	uint64_t last = 0, sum;
	int64_t last_ns = start, now;
	struct cli_watch w;
	unsigned k = 0;
	int err;

	cli_watch_init(&w, c->ring, c->ring_name);
	while (k < c->producers) {
		if (join_for(t[k].tid, 250)) {
			k++;
			continue;
		}
		if ((err = cli_watch_poll(&w)) && !atomic_load(&watch_err)) {
			atomic_store(&watch_err, err);
			pbr_ring_interrupt(c->ring); /* stop the threads */
		}
		now = cli_now_ns();
		sum = total_progress(t, c->producers);
		if (c->rate <= 0) /* paced: slow on purpose */
			note_stall(&st, &w, sum, now);
		if (!tty)
			continue;
		fprintf(stderr, "\rproduce: %" PRIu64 " sent, %.0f msg/s   ",
			sum,
			(double)(sum - last) * 1e9 / (double)(now - last_ns));
		last = sum;
		last_ns = now;
	}
	if (tty)
		fputs("\r\033[K", stderr); /* the summary replaces it */
	(void)cli_watch_poll(&w); /* a reader that died in the last moments */
}

/* "a message of N bytes does not fit in a slot (...)", in buf. */
static const char *too_large(struct pbr_ring *ring, size_t size, char *buf,
			     size_t len)
{
	struct pbr_ring_info info;

	pbr_ring_info(ring, &info);
	snprintf(buf, len,
		 "a message of %zu bytes does not fit in a slot (payload "
		 "capacity %" PRIu32 " bytes of --slot-size %" PRIu32 ")",
		 size, info.payload_cap, info.slot_size);
	return buf;
}

static int produce_report(const struct produce_cfg *c, struct produce_thread *t,
			  int64_t start)
{
	char buf[160];
	size_t size = 0;
	double secs = (double)(cli_now_ns() - start) / 1e9;
	const char *what = "send";
	uint64_t sum = 0;
	unsigned k;
	int err = 0;

	for (k = 0; k < c->producers; k++) {
		sum += t[k].sent;
		if (t[k].err && !err) {
			err = t[k].err;
			what = t[k].what ? t[k].what : "send";
			size = t[k].msg_size;
		}
	}
	cli_log("info", "summary", c->ring_name, NULL, "produce: ",
		"%" PRIu64 " messages from %u producer%s in %.3f s, "
		"%.0f msg/s",
		sum, c->producers, c->producers == 1 ? "" : "s", secs,
		secs > 0 ? (double)sum / secs : 0.0);
	if (atomic_load(&watch_err))
		return cli_err(c->ring_name, NULL, atomic_load(&watch_err));
	if ((!err || err == -EINTR) && cli_stop_signal())
		return cli_stop_status(c->ring_name);
	if (err == -ETIMEDOUT)
		cli_fail(c->ring_name, "ring stayed full for the timeout "
				       "(is a gating reader stuck?)");
	else if (err == -EMSGSIZE)
		cli_fail(c->ring_name,
			 "%s: use a smaller --size or a larger --slot-size",
			 too_large(c->ring, size, buf, sizeof(buf)));
	else if (err)
		cli_err(c->ring_name, what, err);
	return err ? EXIT_RUNTIME : 0;
}

/* --source HI-LO: two decimal u64 (a Redis stream entry id ms-seq). */
static int parse_source(const char *arg, struct produce_cfg *cfg)
{
	char hi[32];
	const char *dash = strchr(arg, '-');
	size_t n = dash ? (size_t)(dash - arg) : 0;

	if (!dash || n == 0 || n >= sizeof(hi))
		goto bad;
	memcpy(hi, arg, n);
	hi[n] = 0;
	if (!cli_u64(hi, 0, UINT64_MAX, &cfg->source[0]) ||
	    !cli_u64(dash + 1, 0, UINT64_MAX, &cfg->source[1]))
		goto bad;
	cfg->has_source = true;
	return 0;
bad:
	return cli_usage("produce",
			 "--source: '%s' is not HI-LO (two decimal numbers)",
			 arg);
}

static int produce_opt(int c, const char *arg, struct produce_cfg *cfg)
{
	uint64_t v;
	double d;

	switch (c) {
	case 'n':
		if (!cli_u64(arg, 1, UINT64_MAX / 2, &cfg->count))
			return cli_usage(
				"produce",
				"--count: '%s' is not a positive number", arg);
		return 0;
	case 'r':
		if (!cli_seconds(arg, &d) || d <= 0)
			return cli_usage("produce",
					 "--rate: '%s' is not a positive rate",
					 arg);
		cfg->rate = d;
		return 0;
	case 's':
		if (!cli_u64(arg, 0, 1u << 30, &v))
			return cli_usage("produce",
					 "--size: '%s' is not a size in bytes",
					 arg);
		cfg->size = (uint32_t)v;
		return 0;
	case 'k':
		if (!cli_u64(arg, 1, PBR_PARTICIPANTS_MAX, &v))
			return cli_usage("produce",
					 "--producers: '%s' is not in 1..1024",
					 arg);
		cfg->producers = (unsigned)v;
		return 0;
	case 't':
		if (!cli_seconds(arg, &d))
			return cli_usage(
				"produce",
				"--timeout: '%s' is not a number of seconds",
				arg);
		cfg->timeout_ns = (int64_t)(d * 1e9);
		return 0;
	case 'R':
		cfg->raw = true;
		return 0;
	case 'W':
		cfg->no_wait = true;
		return 0;
	case 'J':
		cfg->from_json = arg;
		return 0;
	case 'A':
		cfg->any_owner = true;
		return 0;
	case 'T': {
		uint8_t tid[16], sid[8], fl;

		if (pbr_traceparent_parse(arg, tid, sid, &fl))
			return cli_usage(
				"produce",
				"--traceparent: '%s' is not a W3C "
				"traceparent (00-<32 hex>-<16 hex>-"
				"<2 hex>, lowercase, ids not all zero)",
				arg);
		cfg->traceparent = arg;
		return 0;
	}
	case 'S':
		return parse_source(arg, cfg);
	}
	return cli_usage("produce", "bad option");
}

/* The demo-only option of getopt code c, or NULL. */
static const char *demo_only(int c)
{
	switch (c) {
	case 'n':
		return "--count";
	case 'r':
		return "--rate";
	case 's':
		return "--size";
	case 'k':
		return "--producers";
	case 'R':
		return "--raw";
	case 'S':
		return "--source";
	}
	return NULL;
}

static int produce_parse(int argc, char **argv, struct produce_cfg *cfg)
{
	static const struct option opts[] = {{"count", 1, 0, 'n'},
					     {"rate", 1, 0, 'r'},
					     {"size", 1, 0, 's'},
					     {"producers", 1, 0, 'k'},
					     {"timeout", 1, 0, 't'},
					     {"raw", 0, 0, 'R'},
					     {"no-wait", 0, 0, 'W'},
					     {"from-json", 1, 0, 'J'},
					     {"any-owner", 0, 0, 'A'},
					     {"traceparent", 1, 0, 'T'},
					     {"source", 1, 0, 'S'},
					     {"help", 0, 0, 'h'},
					     {0, 0, 0, 0}};
	int c, rc;

	memset(cfg, 0, sizeof(*cfg));
	cfg->producers = 1;
	cfg->timeout_ns = 10 * 1000000000LL;
	opterr = 0; /* cli_bad_option() says it in one line */
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(produce_help, stdout);
			return -1;
		}
		if (c == '?' || c == ':')
			return cli_bad_option("produce", argv, c);
		if ((rc = produce_opt(c, optarg, cfg)))
			return rc;
		if (!cfg->demo_opt)
			cfg->demo_opt = demo_only(c);
	}
	if (optind != argc - 1)
		return cli_usage("produce", "expects exactly one RING");
	if (cfg->from_json && cfg->demo_opt)
		return cli_usage("produce",
				 "--from-json and %s exclude each other",
				 cfg->demo_opt);
	cfg->ring_name = argv[optind];
	if (cfg->rate > 0)
		cfg->rate /= cfg->producers;
	return 0;
}

/* Wait for a gating reader (saying so): 0, or an exit status. */
static int wait_reader(const struct produce_cfg *cfg)
{
	int err = cli_wait_gating_reader(cfg->ring, cfg->ring_name,
					 cfg->timeout_ns);

	if (!err)
		return 0;
	if (err == -EINTR && cli_stop_signal()) {
		cli_log("info", "summary", cfg->ring_name, NULL,
			"produce: ", "0 messages");
		return cli_stop_status(cfg->ring_name);
	}
	if (err != -ETIMEDOUT)
		return cli_err(cfg->ring_name, NULL, err);
	cli_fail(cfg->ring_name, "no gating reader attached "
				 "(start a consumer first, or use --no-wait)");
	return EXIT_RUNTIME;
}

/* --from-json: the ring's schema, the input, and a gating reader. */
static int json_open(struct produce_cfg *cfg, struct pbs_codec **codec,
		     FILE **in)
{
	struct pbr_ring_info info;
	const char *name = cfg->ring_name;
	char *err = NULL;

	pbr_ring_info(cfg->ring, &info);
	if (!info.msg_type[0]) {
		cli_fail(
			name,
			"ring is untyped: it has no schema to parse JSON with");
		return EXIT_RUNTIME;
	}
	if (!info.schema_len) {
		cli_fail(name,
			 "ring holds %s without its schema: cannot parse "
			 "JSON",
			 info.msg_type);
		return EXIT_RUNTIME;
	}
	if (pbs_codec_open(info.schema, info.schema_len, info.msg_type, codec,
			   &err)) {
		cli_fail(name, "%s", err ? err : "bad stored schema");
		free(err);
		return EXIT_RUNTIME;
	}
	*in = strcmp(cfg->from_json, "-") ? fopen(cfg->from_json, "r") : stdin;
	if (!*in) {
		cli_fail(name, "%s: %s", cfg->from_json, strerror(errno));
		pbs_codec_close(*codec);
		return EXIT_RUNTIME;
	}
	if (!cfg->no_wait) {
		int rc = wait_reader(cfg);

		if (rc) {
			if (*in != stdin)
				(void)fclose(*in); /* read only */
			pbs_codec_close(*codec);
			return rc;
		}
	}
	return 0;
}

static bool blank(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strchr(" \t\r\n", s[i]))
			return false;
	return true;
}

/* pbr_producer_send with CRC (as the policy asks) and timestamp, and the
 * trace context @tp (checked when parsed) if given. */
static int send_traced(struct pbr_producer *p, uint32_t cap, const void *msg,
		       size_t len, int64_t timeout_ns, const char *tp)
{
	struct pbr_slot slot;
	int rc;

	if (len > cap)
		return -EMSGSIZE; /* before claiming anything */
	if (!tp)
		return pbr_producer_send(p, msg, (uint32_t)len,
					 PBR_SEND_CRC | PBR_SEND_TIMESTAMP,
					 timeout_ns);
	rc = pbr_producer_reserve(p, timeout_ns, &slot);
	if (rc)
		return rc;
	memcpy(slot.data, msg, len);
	if (pbr_producer_wants_crc(p, (uint32_t)len)) {
		slot.flags |= PBR_SLOT_F_CRC;
		slot.crc32c = pbr_crc32c(0, slot.data, len);
	}
	slot.timestamp_ns = pbr_clock_ns();
	if ((rc = pbr_slot_set_traceparent(&slot, tp))) {
		int arc = pbr_producer_abort(p, &slot);

		return arc ? arc : rc;
	}
	return pbr_producer_commit(p, &slot, (uint32_t)len);
}

/* Send one JSON line: 0, or an exit status after saying why. */
static int json_send(struct produce_cfg *cfg, struct pbs_codec *codec,
		     struct pbr_producer *p, const char *line, size_t n,
		     uint64_t lineno)
{
	char buf[160];
	const char *reason;
	const void *msg;
	size_t len;
	int err;

	if (pbs_json_to_pb(codec, line, n, &msg, &len, &reason)) {
		cli_fail(cfg->ring_name, "line %" PRIu64 ": %s", lineno,
			 reason);
		return EXIT_RUNTIME;
	}
	err = send_traced(p, cfg->payload_cap, msg, len, cfg->timeout_ns,
			  cfg->traceparent);
	if (!err)
		return 0;
	if (err == -EMSGSIZE)
		cli_fail(cfg->ring_name, "line %" PRIu64 ": %s", lineno,
			 too_large(cfg->ring, len, buf, sizeof(buf)));
	else if (err == -ETIMEDOUT)
		cli_fail(cfg->ring_name, "ring stayed full for the timeout "
					 "(is a gating reader stuck?)");
	else if (err != -EINTR || !cli_stop_signal())
		cli_err(cfg->ring_name, "send", err);
	return err == -EINTR && cli_stop_signal() ? -EINTR : EXIT_RUNTIME;
}

/* A producer that never waits would not notice its ring removed: look
 * 4 times a second, between lines. 0, or an exit status. */
static int json_check(const struct produce_cfg *cfg, int64_t *checked)
{
	int64_t now = cli_now_ns();
	int err;

	if (now - *checked < 250000000LL)
		return 0;
	*checked = now;
	err = pbr_ring_check(cfg->ring);
	return err ? cli_err(cfg->ring_name, NULL, err) : 0;
}

static int produce_json(struct produce_cfg *cfg)
{
	struct pbs_codec *codec;
	struct pbr_producer *p;
	uint64_t lineno = 0, sent = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int64_t start, checked;
	double secs;
	FILE *in;
	int rc, err;

	if ((rc = json_open(cfg, &codec, &in)))
		return rc;
	if ((err = pbr_producer_open(cfg->ring, NULL, &p))) {
		rc = cli_err(cfg->ring_name, "open producer", err);
		goto out;
	}
	/* Ctrl-C stops between lines; a read is cut short (no SA_RESTART),
	 * and so is a wait for space (interrupted ring). */
	start = checked = cli_now_ns();
	while (!cli_stop_signal() && (n = getline(&line, &cap, in)) >= 0) {
		lineno++;
		if ((rc = json_check(cfg, &checked)))
			break;
		if (blank(line, (size_t)n))
			continue;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		if ((rc = json_send(cfg, codec, p, line, (size_t)n, lineno)))
			break;
		sent++;
	}
	if (!rc && ferror(in) && !cli_stop_signal()) {
		cli_fail(cfg->ring_name, "%s: %s", cfg->from_json,
			 strerror(errno));
		rc = EXIT_RUNTIME;
	}
	(void)pbr_producer_close(p);
	if (!rc || rc == -EINTR) {
		secs = (double)(cli_now_ns() - start) / 1e9;
		cli_log("info", "summary", cfg->ring_name, NULL, "produce: ",
			"%" PRIu64 " messages from %s in %.3f s, "
			"%.0f msg/s",
			sent, cfg->from_json, secs,
			secs > 0 ? (double)sent / secs : 0.0);
	}
	if ((!rc || rc == -EINTR) && cli_stop_signal())
		rc = cli_stop_status(cfg->ring_name);
out:
	free(line);
	if (in != stdin)
		(void)fclose(in); /* read only: every line was checked */
	pbs_codec_close(codec);
	return rc;
}

int cmd_produce(int argc, char **argv)
{
	struct produce_thread *t;
	struct produce_cfg cfg;
	int64_t start;
	unsigned k;
	int rc = produce_parse(argc, argv, &cfg);

	if (rc)
		return rc < 0 ? 0 : rc;
	cli_stop_install(NULL); /* Ctrl-C during attach too */
	if ((rc = cli_attach_as("produce", cfg.ring_name, cfg.any_owner,
				&cfg.ring)))
		return cli_stop_signal() ? 128 + cli_stop_signal() : rc;
	cli_stop_install(cfg.ring);
	{
		struct pbr_ring_info info;

		pbr_ring_info(cfg.ring, &info);
		cfg.payload_cap = info.payload_cap;
	}
	if (cfg.from_json) {
		rc = produce_json(&cfg);
		cli_stop_detach(cfg.ring);
		return rc;
	}
	rc = cfg.raw ? 0 : cli_check_type(cfg.ring_name, cfg.ring);
	if (!rc && !cfg.no_wait)
		rc = wait_reader(&cfg);
	t = rc ? NULL : calloc(cfg.producers, sizeof(*t));
	if (!t) {
		cli_stop_detach(cfg.ring);
		return rc ? rc : EXIT_RUNTIME;
	}
	start = cli_now_ns();
	for (k = 0; k < cfg.producers; k++) {
		t[k].cfg = &cfg;
		t[k].k = k;
		pthread_create(&t[k].tid, NULL, produce_run, &t[k]);
	}
	show_progress(&cfg, t, start);
	rc = produce_report(&cfg, t, start);
	free(t);
	cli_stop_detach(cfg.ring);
	return rc;
}
