/* SPDX-License-Identifier: MIT */
/* `pbring stat`: a ring's format, geometry, schema, participants, counters. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pbring/layout.h"

#define STAT_MAX 2048
#define SEQ62_MASK ((1ull << 62) - 1)

static const char stat_help[] =
	"usage: pbring stat RING [--json | --prometheus] [--any-owner]\n"
	"Show format version, geometry, schema, every producer and reader "
	"with\n"
	"its position, lag and liveness, and the ring's counters.\n"
	"\n"
	"The text is 'field value' pairs with the field names of --json\n"
	"and the same values, one participant per line; only the pending\n"
	"word reads 'idle', 'claiming' or 'seq N' in the text and is the raw\n"
	"word in JSON (FORMAT.md). A dead producer whose pending sequence\n"
	"was already finished (committed, or recovered into an abandoned\n"
	"record) shows pending idle.\n"
	"  --prometheus the same as Prometheus metrics (text exposition; "
	"names\n"
	"               and labels in docs/METRICS.md; `pbring exporter` "
	"serves them)\n"
	"  --any-owner  accept a ring owned by another user (see "
	"SECURITY.md)\n";

static bool any_owner; /* --any-owner */

/* The full sequence whose low 62 bits pending word p holds, taken in
 * (claimed - 2^62, claimed]. */
static uint64_t pending_seq(uint64_t p, uint64_t claimed)
{
	return claimed - ((claimed - (p >> 2)) & SEQ62_MASK);
}

static const char *pending_str(uint64_t p, uint64_t claimed, char *buf,
			       size_t len)
{
	if (p == PBR_PENDING_IDLE)
		return "idle";
	if (p == PBR_PENDING_CLAIMING)
		return "claiming";
	snprintf(buf, len, "seq %" PRIu64, pending_seq(p, claimed));
	return buf;
}

static const char *role(const struct pbr_participant *p)
{
	if (!p->is_reader)
		return "producer";
	return (p->flags & PBR_READER_LOSSY) ? "lossy" : "gating";
}

static uint64_t lag(const struct pbr_participant *p,
		    const struct pbr_ring_stats *st)
{
	return p->is_reader ? st->claimed - p->position : 0;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

/* One participant: the fields of its role, named as in the JSON. */
static void text_participant(const struct pbr_participant *p,
			     const struct pbr_ring_stats *st)
{
	char buf[64];

	printf("  role %s, index %u, pid %u, alive %s, position %" PRIu64,
	       role(p), p->index, p->pid, p->alive ? "true" : "false",
	       p->position);
	if (!p->is_reader)
		printf(", pending %s\n",
		       pending_str(p->pending, st->claimed, buf, sizeof(buf)));
	else
		printf(", lag %" PRIu64 ", delivered %" PRIu64 ", lost %" PRIu64
		       ", abandoned %" PRIu64 "%s",
		       lag(p, st), p->delivered, p->lost, p->abandoned,
		       p->durable ? "" : "\n");
	/* a durable reader: its name, and whether anyone owns it now */
	if (p->is_reader && p->durable)
		printf(", durable %s, detached %s\n",
		       p->name[0] ? p->name : "(malformed)",
		       p->detached ? "true" : "false");
}

/* The CRC policy's name in stat and in create --crc. */
static const char *crc_name(uint32_t crc)
{
	return crc == PBR_CRC_NONE   ? "none"
	       : crc == PBR_CRC_UPTO ? "upto"
				     : "full";
}

static void stat_text(const struct pbr_ring_info *i,
		      const struct pbr_ring_stats *st,
		      const struct pbr_participant *pt, int n)
{
	int k;

	printf("name %s\n", i->name);
	printf("format %u.%u, total_size %" PRIu64 "\n", i->format_major,
	       i->format_minor, i->total_size);
	printf("slot_count %u, slot_size %u, payload_cap %u, single_producer "
	       "%s, seq_base %" PRIu64 "\n",
	       i->slot_count, i->slot_size, i->payload_cap,
	       (i->ring_flags & PBR_RING_SINGLE_PRODUCER) ? "true" : "false",
	       i->seq_base);
	printf("max_producers %u, max_readers %u%s\n", i->max_producers,
	       i->max_readers,
	       (i->features_incompat & PBR_FEATURE_DURABLE_READERS)
		       ? ", durable_readers true"
		       : "");
	printf("crc %s, crc_limit %u\n", crc_name(i->crc), i->crc_limit);
	printf("msg_type %s, schema_len %u, schema_hash %016" PRIx64 "\n",
	       i->msg_type[0] ? i->msg_type : "(raw bytes)", i->schema_len,
	       i->schema_hash);
	printf("claimed %" PRIu64 ", abandoned %" PRIu64
	       ", producers_reaped %" PRIu64 ", readers_reaped %" PRIu64 "\n",
	       st->claimed, st->abandoned, st->producers_reaped,
	       st->readers_reaped);
	printf("participants %d\n", n);
	for (k = 0; k < n; k++)
		text_participant(&pt[k], st);
}

static void json_participant(const struct pbr_participant *p,
			     const struct pbr_ring_stats *st)
{
	printf("{\"role\":\"%s\",\"index\":%u,\"pid\":%u,\"alive\":%s,"
	       "\"position\":%" PRIu64 ",\"pending\":%" PRIu64
	       ",\"lag\":%" PRIu64 ",\"delivered\":%" PRIu64
	       ",\"lost\":%" PRIu64 ",\"abandoned\":%" PRIu64,
	       role(p), p->index, p->pid, p->alive ? "true" : "false",
	       p->position, p->pending, lag(p, st), p->delivered, p->lost,
	       p->abandoned);
	if (p->is_reader && p->durable) {
		printf(",\"durable\":");
		json_str(p->name);
		printf(",\"detached\":%s", p->detached ? "true" : "false");
	}
	putchar('}');
}

static void stat_json(const struct pbr_ring_info *i,
		      const struct pbr_ring_stats *st,
		      const struct pbr_participant *pt, int n)
{
	int k;

	printf("{\"name\":");
	json_str(i->name);
	printf(",\"format\":\"%u.%u\",\"total_size\":%" PRIu64
	       ",\"slot_count\":%u,\"slot_size\":%u,\"payload_cap\":%u,"
	       "\"single_producer\":%s,\"max_producers\":%u,\"max_readers\":%u,"
	       "\"seq_base\":%" PRIu64 ",\"crc\":\"%s\",\"crc_limit\":%u,"
	       "\"msg_type\":",
	       i->format_major, i->format_minor, i->total_size, i->slot_count,
	       i->slot_size, i->payload_cap,
	       (i->ring_flags & PBR_RING_SINGLE_PRODUCER) ? "true" : "false",
	       i->max_producers, i->max_readers, i->seq_base, crc_name(i->crc),
	       i->crc_limit);
	json_str(i->msg_type);
	if (i->features_incompat & PBR_FEATURE_DURABLE_READERS)
		printf(",\"durable_readers\":true");
	printf(",\"schema_len\":%u,\"schema_hash\":\"%016" PRIx64
	       "\",\"claimed\":%" PRIu64 ",\"abandoned\":%" PRIu64
	       ",\"producers_reaped\":%" PRIu64 ",\"readers_reaped\":%" PRIu64
	       ",\"participants\":[",
	       i->schema_len, i->schema_hash, st->claimed, st->abandoned,
	       st->producers_reaped, st->readers_reaped);
	for (k = 0; k < n; k++) {
		if (k)
			putchar(',');
		json_participant(&pt[k], st);
	}
	printf("]}\n");
}

/* --json: 1, --prometheus: 2. */
static int stat_parse(int argc, char **argv, const char **name, int *json)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(stat_help, stdout);
			return -1;
		}
		if (!strcmp(argv[i], "--json") ||
		    !strcmp(argv[i], "--prometheus")) {
			int want = argv[i][2] == 'j' ? 1 : 2;

			if (*json && *json != want)
				return cli_usage("stat", "--json and "
							 "--prometheus exclude "
							 "each other");
			*json = want;
		} else if (!strcmp(argv[i], "--any-owner"))
			any_owner = true;
		else if (argv[i][0] == '-')
			return cli_usage("stat", "unknown option '%s'",
					 argv[i]);
		else if (*name)
			return cli_usage("stat", "expects exactly one RING");
		else
			*name = argv[i];
	}
	if (!*name)
		return cli_usage("stat", "expects exactly one RING");
	return 0;
}

static int stat_prometheus(const char *name, struct pbr_ring *ring)
{
	struct cli_snap s;
	int rc = cli_snap_take(&s, name, ring);

	if (!rc)
		cli_metrics_text(stdout, &s, 1);
	cli_snap_free(&s);
	pbr_ring_detach(ring);
	return rc ? cli_err(name, NULL, rc) : 0;
}

int cmd_stat(int argc, char **argv)
{
	struct pbr_participant *pt;
	struct pbr_ring_stats st;
	struct pbr_ring_info info;
	const char *name = NULL;
	struct pbr_ring *ring;
	int n, rc, json = 0;

	rc = stat_parse(argc, argv, &name, &json);
	if (rc)
		return rc < 0 ? 0 : rc;
	if ((rc = cli_attach_as("stat", name, any_owner, &ring)))
		return rc;
	if (json == 2)
		return stat_prometheus(name, ring);
	pt = calloc(STAT_MAX, sizeof(*pt));
	if (!pt) {
		pbr_ring_detach(ring);
		return cli_err(name, NULL, -ENOMEM);
	}
	pbr_ring_info(ring, &info);
	n = pbr_ring_participants(ring, pt, STAT_MAX);
	if (n > STAT_MAX)
		n = STAT_MAX;
	/* The counters after the entries: claimed is then at least every
	 * reader's cursor and every claim a dead producer made. */
	pbr_ring_stats(ring, &st);
	(json ? stat_json : stat_text)(&info, &st, pt, n);
	free(pt);
	pbr_ring_detach(ring);
	return 0;
}
