/* SPDX-License-Identifier: MIT */
/*
 * `pbring bridge`: carry a ring's messages to a Redis stream (to-redis,
 * bridge_to.c) or a Redis stream's entries into a ring (from-redis,
 * bridge_from.c), through Debian's hiredis. This file dispatches and holds
 * what both directions share: the --redis URL, connecting with backoff,
 * sorting Redis errors into retry and give up. docs/REDIS.md describes
 * the stream layout and what survives a crash.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge.h"

static const char bridge_help[] =
	"usage: pbring bridge to-redis RING --redis URL --stream KEY "
	"[options]\n"
	"       pbring bridge from-redis --redis URL --stream KEY --group G\n"
	"                                --consumer NAME RING [options]\n"
	"Carry messages between a ring and a Redis stream. to-redis XADDs "
	"each\n"
	"message of RING (fields data, type, schema, producer, seq, ts, "
	"ring,\n"
	"epoch, traceparent); from-redis reads the stream as a consumer "
	"group\n"
	"and commits each entry's data into RING. URL: "
	"redis://[:PASSWORD@]HOST[:PORT][/DB]\n"
	"or unix:///PATH[?db=DB]. 'pbring bridge to-redis --help' and\n"
	"'pbring bridge from-redis --help' list the options; docs/REDIS.md "
	"the\n"
	"layout and the guarantees.\n";

int cmd_bridge(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;

	if (!sub || !strcmp(sub, "--help") || !strcmp(sub, "-h")) {
		fputs(bridge_help, sub ? stdout : stderr);
		return sub ? 0 : EXIT_USAGE;
	}
	if (!strcmp(sub, "to-redis")) {
		cli_cmd = "bridge to-redis";
		return br_to_redis(argc - 1, argv + 1);
	}
	if (!strcmp(sub, "from-redis")) {
		cli_cmd = "bridge from-redis";
		return br_from_redis(argc - 1, argv + 1);
	}
	return cli_usage("bridge",
			 "unknown direction '%s' (to-redis or "
			 "from-redis)",
			 sub);
}

static bool copy_str(char *dst, size_t n, const char *s, size_t len)
{
	if (len >= n)
		return false;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return true;
}

/* [[user]:password@] in front of host: the part before the last '@'. */
static bool url_userinfo(struct br_url *u, const char *s, size_t len)
{
	const char *colon = memchr(s, ':', len);

	if (!colon) /* redis://user@host is not a thing: it is a password */
		return (u->has_password = copy_str(
				u->password, sizeof(u->password), s, len));
	if (colon > s) {
		u->has_user = true;
		if (!copy_str(u->user, sizeof(u->user), s, (size_t)(colon - s)))
			return false;
	}
	u->has_password = true;
	return copy_str(u->password, sizeof(u->password), colon + 1,
			len - (size_t)(colon - s) - 1);
}

static bool url_db(const char *s, unsigned *db)
{
	uint64_t v;

	if (!*s)
		return true;
	if (!cli_u64(s, 0, 65535, &v))
		return false;
	*db = (unsigned)v;
	return true;
}

static bool url_tcp(struct br_url *u, const char *s)
{
	const char *slash = strchr(s, '/'), *at, *colon;
	size_t hostlen;
	uint64_t port = 6379;
	char portbuf[8];

	if (slash && !url_db(slash + 1, &u->db))
		return false;
	hostlen = slash ? (size_t)(slash - s) : strlen(s);
	at = memrchr(s, '@', hostlen);
	if (at) {
		if (!url_userinfo(u, s, (size_t)(at - s)))
			return false;
		hostlen -= (size_t)(at + 1 - s);
		s = at + 1;
	}
	colon = memrchr(s, ':', hostlen);
	if (colon) {
		if (!copy_str(portbuf, sizeof(portbuf), colon + 1,
			      hostlen - (size_t)(colon + 1 - s)) ||
		    !cli_u64(portbuf, 1, 65535, &port))
			return false;
		hostlen = (size_t)(colon - s);
	}
	u->port = (int)port;
	if (hostlen == 0)
		return copy_str(u->host, sizeof(u->host), "127.0.0.1", 9);
	return copy_str(u->host, sizeof(u->host), s, hostlen);
}

static bool url_unix(struct br_url *u, const char *s)
{
	const char *q = strchr(s, '?');
	size_t len = q ? (size_t)(q - s) : strlen(s);

	if (len == 0 || s[0] != '/')
		return false;
	if (q && (strncmp(q, "?db=", 4) || !url_db(q + 4, &u->db)))
		return false;
	u->is_unix = true;
	return copy_str(u->path, sizeof(u->path), s, len);
}

int br_url_parse(const char *cmd, const char *s, struct br_url *u)
{
	bool ok = false;

	memset(u, 0, sizeof(*u));
	if (!strncmp(s, "rediss://", 9))
		return cli_usage(cmd,
				 "--redis %s: TLS (rediss://) is not "
				 "supported; use redis:// or unix://",
				 "rediss://...");
	if (!strncmp(s, "redis://", 8))
		ok = url_tcp(u, s + 8);
	else if (!strncmp(s, "unix://", 7))
		ok = url_unix(u, s + 7);
	if (!ok)
		return cli_usage(
			cmd, "--redis: not a Redis URL (redis://[:PASSWORD@]"
			     "HOST[:PORT][/DB] or unix:///PATH[?db=DB])");
	if (u->is_unix)
		snprintf(u->shown, sizeof(u->shown), "unix://%.250s", u->path);
	else
		snprintf(u->shown, sizeof(u->shown), "redis://%s:%d", u->host,
			 u->port);
	if (u->db)
		snprintf(u->shown + strlen(u->shown),
			 sizeof(u->shown) - strlen(u->shown), "/%u", u->db);
	return 0;
}

double br_backoff_s(unsigned n)
{
	double s = 0.1;

	while (--n > 0 && s < 5.0)
		s *= 2;
	return s < 5.0 ? s : 5.0;
}

bool br_backoff_sleep(unsigned n)
{
	int64_t end = cli_now_ns() + (int64_t)(br_backoff_s(n) * 1e9);

	while (!cli_stop_signal() && cli_now_ns() < end) {
		struct timespec ts = {0, 20L * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	return !cli_stop_signal();
}

/* Error replies that retrying does not fix. */
static bool permanent_error(const char *s)
{
	static const char *const codes[] = {"WRONGPASS", "NOAUTH", "WRONGTYPE",
					    "NOPERM", "ERR"};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		size_t n = strlen(codes[i]);

		if (!strncmp(s, codes[i], n) && (s[n] == ' ' || !s[n]))
			/* a full server is not a wrong request */
			return strncmp(s, "ERR max number of clients", 25) != 0;
	}
	return false;
}

enum br_fail br_classify(redisContext *c, const redisReply *r, char *why,
			 size_t n)
{
	if (cli_stop_signal())
		return BR_STOPPED;
	if (!r) {
		snprintf(why, n, "%s",
			 c && c->err ? c->errstr : "no reply from Redis");
		return BR_RETRY;
	}
	if (r->type != REDIS_REPLY_ERROR)
		return BR_OK;
	snprintf(why, n, "%.*s", (int)(r->len < 400 ? r->len : 400), r->str);
	return permanent_error(r->str) ? BR_PERMANENT : BR_RETRY;
}

static redisContext *connect_once(const struct br_url *u)
{
	struct timeval tv = {2, 0};

	if (u->is_unix)
		return redisConnectUnixWithTimeout(u->path, tv);
	return redisConnectWithTimeout(u->host, u->port, tv);
}

/* AUTH and SELECT on a fresh connection. */
static enum br_fail hello(redisContext *c, const struct br_url *u, char *why,
			  size_t n)
{
	redisReply *r = NULL;
	enum br_fail f = BR_OK;

	if (u->has_user)
		r = redisCommand(c, "AUTH %s %s", u->user, u->password);
	else if (u->has_password)
		r = redisCommand(c, "AUTH %s", u->password);
	if (u->has_password)
		f = br_classify(c, r, why, n);
	freeReplyObject(r);
	if (f != BR_OK || !u->db)
		return f;
	r = redisCommand(c, "SELECT %u", u->db);
	f = br_classify(c, r, why, n);
	freeReplyObject(r);
	return f;
}

enum br_fail br_connect(const struct br_url *u, const char *ring,
			redisContext **out)
{
	char why[512];

	for (unsigned attempt = 1;; attempt++) {
		redisContext *c = connect_once(u);
		enum br_fail f = BR_RETRY;

		if (c && !c->err) {
			struct timeval tv = {10, 0};

			redisSetTimeout(c, tv);
			f = hello(c, u, why, sizeof(why));
			if (f == BR_OK) {
				*out = c;
				return BR_OK;
			}
		} else {
			snprintf(why, sizeof(why), "%s",
				 c ? c->errstr : "out of memory");
		}
		redisFree(c);
		if (f == BR_PERMANENT || cli_stop_signal()) {
			if (f == BR_PERMANENT)
				cli_fail(ring, "%s: %s", u->shown, why);
			return f == BR_PERMANENT ? f : BR_STOPPED;
		}
		cli_fail(ring, "%s: %s; retry %u in %.1f s", u->shown, why,
			 attempt, br_backoff_s(attempt));
		if (!br_backoff_sleep(attempt))
			return BR_STOPPED;
	}
}

enum br_fail br_check_stream(redisContext *c, const char *ring, const char *key)
{
	redisReply *r = redisCommand(c, "TYPE %s", key);
	char why[512];
	enum br_fail f = br_classify(c, r, why, sizeof(why));

	if (f == BR_OK && r->type == REDIS_REPLY_STATUS &&
	    strcmp(r->str, "stream") && strcmp(r->str, "none")) {
		cli_fail(ring, "Redis key '%s' holds a %s, not a stream", key,
			 r->str);
		f = BR_PERMANENT;
	} else if (f == BR_PERMANENT) {
		cli_fail(ring, "TYPE %s: %s", key, why);
	}
	freeReplyObject(r);
	return f;
}

bool br_parse_id(const char *s, size_t len, uint64_t id[2])
{
	char buf[48];
	const char *dash;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	dash = strchr(buf, '-');
	if (!dash)
		return false;
	buf[dash - buf] = '\0';
	return cli_u64(buf, 0, UINT64_MAX, &id[0]) &&
	       cli_u64(dash + 1, 0, UINT64_MAX, &id[1]);
}

void br_schema_key(uint64_t hash, char *out, size_t n)
{
	snprintf(out, n, "pbring:schema:%016" PRIx64, hash);
}

const redisReply *br_field(const redisReply *fields, const char *name)
{
	if (!fields || fields->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (size_t i = 0; i + 1 < fields->elements; i += 2) {
		const redisReply *k = fields->element[i];

		if (k->type == REDIS_REPLY_STRING && k->len == strlen(name) &&
		    !memcmp(k->str, name, k->len))
			return fields->element[i + 1];
	}
	return NULL;
}
