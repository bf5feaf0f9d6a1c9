/* SPDX-License-Identifier: MIT */
/*
 * `pbring bridge`: shared pieces of the Redis Streams bridge (bridge.c)
 * used by its two directions, to-redis (bridge_to.c) and from-redis
 * (bridge_from.c). The stream layout and the guarantees are in
 * docs/REDIS.md.
 */
#ifndef PBR_CLI_BRIDGE_H
#define PBR_CLI_BRIDGE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "cli.h"

/* A parsed --redis URL: redis://[[user]:password@]host[:port][/db] or
 * unix:///path[?db=N] (rediss:// is refused: hiredis is built without
 * TLS here). */
struct br_url {
	bool is_unix;
	char host[256];
	int port;
	char path[PATH_MAX];
	char user[128], password[256];
	bool has_user, has_password;
	unsigned db;
	char shown[300]; /* for messages: without the password */
};

/* 0, or EXIT_USAGE after a one-line error naming @cmd. */
int br_url_parse(const char *cmd, const char *s, struct br_url *u);

/* What went wrong talking to Redis. */
enum br_fail {
	BR_OK = 0,
	BR_RETRY,     /* connection lost, refused, loading, ...: retry */
	BR_PERMANENT, /* wrong password, wrong key type, ...: exit 1 */
	BR_STOPPED,   /* Ctrl-C / SIGTERM */
};

/* Connect, authenticate and select the database, retrying transient
 * failures with a doubling backoff (0.1 s .. 5 s), one line per failed
 * attempt on stderr. BR_OK with *out set; BR_PERMANENT after a one-line
 * error (wrong password: retrying will not fix it); BR_STOPPED. */
enum br_fail br_connect(const struct br_url *u, const char *ring,
			redisContext **out);

/* Classify an error reply or a failed command (NULL reply: context
 * error). Writes a one-line reason into @why. */
enum br_fail br_classify(redisContext *c, const redisReply *r, char *why,
			 size_t n);

/* Fail unless @key is a stream or does not exist: BR_OK, BR_PERMANENT
 * after a one-line error (WRONGTYPE), BR_RETRY. */
enum br_fail br_check_stream(redisContext *c, const char *ring,
			     const char *key);

/* Sleep the backoff of attempt @n (>= 1) in short naps, so that Ctrl-C
 * ends it: false if stopped. */
bool br_backoff_sleep(unsigned n);
double br_backoff_s(unsigned n);

/* A stream entry id <ms>-<seq>: true if @s is one. */
bool br_parse_id(const char *s, size_t len, uint64_t id[2]);
static inline int br_id_cmp(const uint64_t a[2], const uint64_t b[2])
{
	if (a[0] != b[0])
		return a[0] < b[0] ? -1 : 1;
	return a[1] < b[1] ? -1 : a[1] > b[1];
}

/* The key holding a schema: "pbring:schema:<16 hex digits>". */
void br_schema_key(uint64_t hash, char *out, size_t n);

/* A field of an entry's flat [name, value, ...] array, or NULL. */
const redisReply *br_field(const redisReply *fields, const char *name);

int br_to_redis(int argc, char **argv);
int br_from_redis(int argc, char **argv);

#endif /* PBR_CLI_BRIDGE_H */
