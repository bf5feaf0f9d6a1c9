/* SPDX-License-Identifier: MIT */
/* Helpers shared by the `pbring` subcommands. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "demo_event.h" /* demo_utf8_len */
#include "pbring/demo.h"

/* One line, one write(2): the demo's children share a stderr, and a line
 * built from several stdio calls on an unbuffered stream would interleave
 * with theirs mid-line. */
static void put_line(const char *pre1, const char *pre2, const char *fmt,
		     va_list ap, const char *post)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "%s%s", pre1, pre2);

	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if ((size_t)n > sizeof(line) - 2 - strlen(post))
		n = (int)(sizeof(line) - 2 - strlen(post)); /* truncate */
	n += snprintf(line + n, sizeof(line) - (size_t)n, "%s\n", post);
	(void)fflush(stderr); /* order only: the line goes out with write() */
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

bool cli_log_json;
const char *cli_cmd = "pbring";

/* @s as a JSON string's contents: quote, backslash and control characters
 * escaped, a byte that is not UTF-8 as \ufffd (as Go and Python do), and
 * cut only between characters when @cap is short. */
static size_t json_escape(char *out, size_t cap, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = 0;
	unsigned k;

	while (*s && n + 8 < cap) {
		if (*s == '"' || *s == '\\') {
			n += (size_t)snprintf(out + n, cap - n, "\\%c", *s++);
		} else if (*s < 0x20) {
			n += (size_t)snprintf(out + n, cap - n, "\\u%04x",
					      *s++);
		} else if (*s < 0x80) {
			out[n++] = (char)*s++;
		} else if ((k = demo_utf8_len(s))) {
			memcpy(out + n, s, k);
			n += k;
			s += k;
		} else {
			n += (size_t)snprintf(out + n, cap - n, "\\ufffd");
			s++;
		}
	}
	out[n] = 0;
	return n;
}

/* --log-format json: one object per line (docs/CLI.md, "Logs"). */
static void json_line(const char *level, const char *kind, const char *ring,
		      const char *trace_id, const char *msg)
{
	char line[8192], esc[7000], ts[40];
	struct timespec now;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line),
		     "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"service\":"
		     "\"pbring\",\"event\":\"%s.%s\"",
		     ts, now.tv_nsec / 1000000, level, cli_cmd, kind);
	if (ring) {
		json_escape(esc, sizeof(esc), ring);
		n += snprintf(line + n, sizeof(line) - (size_t)n,
			      ",\"ring\":\"%s\"", esc);
	}
	if (trace_id && *trace_id)
		n += snprintf(line + n, sizeof(line) - (size_t)n,
			      ",\"trace_id\":\"%s\"", trace_id);
	json_escape(esc, sizeof(esc), msg);
	n += snprintf(line + n, sizeof(line) - (size_t)n,
		      ",\"message\":\"%s\"}\n", esc);
	if (n >= (int)sizeof(line))
		n = (int)sizeof(line) - 1;
	(void)fflush(stderr); /* order only: the line goes out with write() */
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

void cli_log(const char *level, const char *kind, const char *ring,
	     const char *trace_id, const char *text_prefix, const char *fmt,
	     ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	if (!cli_log_json) {
		put_line(text_prefix, "", fmt, ap, "");
		va_end(ap);
		return;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_line(level, kind, ring, trace_id, msg);
}

void cli_fail(const char *ring, const char *fmt, ...)
{
	char pre[300], msg[4096];
	va_list ap;

	va_start(ap, fmt);
	if (cli_log_json) {
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		json_line("error", "error", ring, NULL, msg);
		return;
	}
	snprintf(pre, sizeof(pre), "%s: ", ring ? ring : "");
	put_line("pbring: ", ring ? pre : "", fmt, ap, "");
	va_end(ap);
}

int cli_err(const char *ring, const char *what, int err)
{
	/* A damaged ring stays damaged: say what clears it. */
	const char *hint =
		err == -EUCLEAN ? "; remove it with 'pbring rm " : "";
	const char *end = err == -EUCLEAN ? "'" : "";

	if (what)
		cli_fail(ring, "%s: %s%s%s%s", what, pbr_strerror(err), hint,
			 *hint ? ring : "", end);
	else
		cli_fail(ring, "%s%s%s%s", pbr_strerror(err), hint,
			 *hint ? ring : "", end);
	return EXIT_RUNTIME;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	char pre[64], post[96];
	va_list ap;

	va_start(ap, fmt);
	if (cli_log_json) {
		char msg[4096];

		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		json_line("error", "usage", NULL, NULL, msg);
		return EXIT_USAGE;
	}
	snprintf(pre, sizeof(pre), "pbring %s: ", cmd);
	snprintf(post, sizeof(post), " (see 'pbring %s --help')", cmd);
	put_line(pre, "", fmt, ap, post);
	va_end(ap);
	return EXIT_USAGE;
}

bool cli_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool cli_seconds(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v >= 0) || v > 1e9)
		return false;
	*out = v;
	return true;
}

bool cli_mode(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s)
		return false;
	v = strtoul(s, &end, 8);
	if (*end || v > 0777 || (v & 0002))
		return false;
	*out = (uint32_t)v;
	return true;
}

int64_t cli_now_ns(void)
{
	return (int64_t)pbr_clock_ns(); /* the clock of slot timestamps */
}

bool cli_tty(int fd)
{
	return isatty(fd) == 1;
}

/* The major format version of a ring we refused for it, or -1. */
static int ring_major(const char *ring)
{
	uint16_t major, minor;

	return pbr_ring_format(ring, &major, &minor) ? -1 : major;
}

/* -EPERM is two refusals: say which, and what would accept the first. */
static void attach_eperm(const char *ring)
{
	char path[PBR_NAME_MAX + 32];
	struct stat st;
	bool known;

	snprintf(path, sizeof(path), "/dev/shm/pbring.%s", ring);
	known = stat(path, &st) == 0;
	if (known && (st.st_mode & S_IWOTH))
		cli_fail(ring,
			 "ring writable by everyone (mode %04o): refused "
			 "(see SECURITY.md)",
			 (unsigned)(st.st_mode & 07777));
	else if (known && st.st_uid != geteuid())
		cli_fail(ring,
			 "ring owned by another user (uid %u): use "
			 "--any-owner to accept it",
			 (unsigned)st.st_uid);
	else
		cli_err(ring, NULL, -EPERM);
}

int cli_attach_flags(const char *cmd, const char *ring, uint32_t flags,
		     struct pbr_ring **out)
{
	struct pbr_attach_opts o = {0};
	int rc, major;

	o.flags = flags;
	if (!(rc = pbr_ring_attach(ring, &o, out)))
		return 0;
	if (rc == -EINVAL)
		return cli_usage(
			cmd,
			"invalid ring name '%s' (use 1-63 of [A-Za-z0-9_.-])",
			ring);
	major = rc == -EPROTONOSUPPORT ? ring_major(ring) : -1;
	if (major >= 0)
		cli_fail(ring,
			 "ring made by format %d.x; this pbring reads format "
			 "%u.x",
			 major, PBR_FORMAT_MAJOR);
	else if (rc == -EUCLEAN)
		cli_fail(ring, "%s; remove it with 'pbring rm %s'",
			 pbr_strerror(rc), ring);
	else if (rc == -EPERM)
		attach_eperm(ring);
	else
		cli_err(ring, NULL, rc);
	return EXIT_RUNTIME;
}

int cli_attach_as(const char *cmd, const char *ring, bool any_owner,
		  struct pbr_ring **out)
{
	return cli_attach_flags(cmd, ring, any_owner ? PBR_ATTACH_ANY_OWNER : 0,
				out);
}

int cli_attach(const char *cmd, const char *ring, struct pbr_ring **out)
{
	return cli_attach_as(cmd, ring, false, out);
}

int cli_bad_option(const char *cmd, char **argv, int c)
{
	/* getopt_long with a leading ':' in optstring: ':' is a missing value
	 */
	if (c == ':')
		return cli_usage(cmd, "option '%s' needs a value",
				 argv[optind - 1]);
	return cli_usage(cmd, "unknown option '%s'", argv[optind - 1]);
}

/* Bucket of v: octave = position of the top bit, then HIST_SUB linear
 * steps within the octave. Values below HIST_SUB map to themselves. */
static unsigned hist_index(uint64_t v)
{
	unsigned oct, sub;

	if (v < HIST_SUB)
		return (unsigned)v;
	oct = 63u - (unsigned)__builtin_clzll(v);
	sub = (unsigned)(v >> (oct - 5)) & (HIST_SUB - 1);
	return (oct - 4) * HIST_SUB + sub;
}

static uint64_t hist_value(unsigned i)
{
	unsigned oct = i / HIST_SUB + 4, sub = i % HIST_SUB;

	if (i < HIST_SUB)
		return i;
	/* the bucket's midpoint */
	return ((uint64_t)(HIST_SUB + sub) << (oct - 5)) +
	       ((1ull << (oct - 5)) >> 1);
}

void hist_add(struct cli_hist *h, uint64_t v)
{
	h->bucket[hist_index(v)]++;
	if (!h->count || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count++;
}

uint64_t hist_pct(const struct cli_hist *h, double pct)
{
	uint64_t want, seen = 0;
	unsigned i;

	if (!h->count)
		return 0;
	want = (uint64_t)ceil(pct / 100.0 * (double)h->count);
	if (want < 1)
		want = 1;
	for (i = 0; i < 64 * HIST_SUB; i++) {
		seen += h->bucket[i];
		if (seen >= want) {
			uint64_t v = hist_value(i);

			return v > h->max ? h->max : v < h->min ? h->min : v;
		}
	}
	return h->max;
}

const char *cli_duration(uint64_t ns, char *buf, size_t len)
{
	/* The limits keep rounding from printing "1000.0" of a unit. */
	if (ns < 1000)
		snprintf(buf, len, "%u ns", (unsigned)ns);
	else if (ns < 999950)
		snprintf(buf, len, "%.1f us", (double)ns / 1e3);
	else if (ns < 999950000)
		snprintf(buf, len, "%.1f ms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.1f s", (double)ns / 1e9);
	return buf;
}

void hist_merge(struct cli_hist *into, const struct cli_hist *from)
{
	unsigned i;

	if (!from->count)
		return;
	for (i = 0; i < 64 * HIST_SUB; i++)
		into->bucket[i] += from->bucket[i];
	if (!into->count || from->min < into->min)
		into->min = from->min;
	if (from->max > into->max)
		into->max = from->max;
	into->count += from->count;
}

int cli_check_type(const char *name, struct pbr_ring *ring)
{
	struct pbr_ring_info info;

	pbr_ring_info(ring, &info);
	if (!pbr_ring_check_type(ring, PBR_DEMO_MSG_TYPE, 0))
		return 0;
	if (!info.msg_type[0])
		cli_fail(name, "ring holds raw bytes, not %s (use --raw)",
			 PBR_DEMO_MSG_TYPE);
	else
		cli_fail(name, "ring holds %s, not %s", info.msg_type,
			 PBR_DEMO_MSG_TYPE);
	return EXIT_RUNTIME;
}

static bool has_gating_reader(struct pbr_ring *ring)
{
	struct pbr_participant pt[64];
	int i, n = pbr_ring_participants(ring, pt, 64);

	/* A detached durable reader counts: what is sent is kept for it. */
	for (i = 0; i < n && i < 64; i++)
		if (pt[i].is_reader && (pt[i].alive || pt[i].durable) &&
		    (pt[i].flags & PBR_READER_GATING))
			return true;
	return n > 64; /* many participants: assume one is a reader */
}

int cli_wait_gating_reader(struct pbr_ring *ring, const char *name,
			   int64_t timeout_ns)
{
	int64_t until = cli_now_ns() + timeout_ns;
	bool said = false;
	int rc;

	while (!has_gating_reader(ring)) {
		if (!said) {
			/* Once, so that a silent producer is not a mystery. */
			cli_log("info", "waiting", name, NULL, "pbring: ",
				"waiting for a gating reader on %s (start a "
				"consumer, or use --no-wait)",
				name);
			said = true;
		}
		if (pbr_ring_interrupted(ring) || cli_stop_signal())
			return -EINTR;
		if ((rc = pbr_ring_check(ring)))
			return rc;
		if (cli_now_ns() >= until)
			return -ETIMEDOUT;
		usleep(5000);
	}
	return 0;
}

/* "2026-12-05T10:00:00.123456789Z" */
const char *cli_utc(uint64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;
	char day[32];

	gmtime_r(&t, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%09" PRIu64 "Z", day, ns % 1000000000u);
	return buf;
}
