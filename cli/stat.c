/* SPDX-License-Identifier: MIT */
/* `pbring stat`: a ring's format, geometry, schema, participants, counters. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define STAT_MAX 2048

static const char stat_help[] =
	"usage: pbring stat RING [--json]\n"
	"Show format version, geometry, schema, every producer and reader "
	"with\n"
	"its position, lag and liveness, and the ring's counters.\n";

static const char *pending_str(uint64_t p, char *buf, size_t len)
{
	if (p == PBR_PENDING_IDLE)
		return "idle";
	if (p == PBR_PENDING_CLAIMING)
		return "claiming";
	snprintf(buf, len, "seq %" PRIu64 " (mod 2^62)", p >> 2);
	return buf;
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

static void stat_text(const struct pbr_ring_info *i,
		      const struct pbr_ring_stats *st,
		      const struct pbr_participant *pt, int n)
{
	char buf[64];
	int k;

	printf("ring %s: format %u.%u, %" PRIu64 " bytes\n", i->name,
	       i->format_major, i->format_minor, i->total_size);
	printf("  slots %u x %u B (payload %u B), %s, seq_base %" PRIu64 "\n",
	       i->slot_count, i->slot_size, i->payload_cap,
	       (i->ring_flags & PBR_RING_SINGLE_PRODUCER) ? "single-producer"
							  : "multi-producer",
	       i->seq_base);
	printf("  entries: %u producers, %u readers\n", i->max_producers,
	       i->max_readers);
	printf("  type %s, schema %u B, hash 0x%016" PRIx64 "\n",
	       i->msg_type[0] ? i->msg_type : "(raw bytes)", i->schema_len,
	       i->schema_hash);
	printf("  claimed %" PRIu64 ", abandoned %" PRIu64
	       ", reaped producers %" PRIu64 ", reaped readers %" PRIu64 "\n",
	       st->claimed - i->seq_base, st->abandoned, st->producers_reaped,
	       st->readers_reaped);
	for (k = 0; k < n; k++) {
		const struct pbr_participant *p = &pt[k];

		if (!p->is_reader)
			printf("  producer %u: pid %u, %s, committed %" PRIu64
			       ", pending %s\n",
			       p->index, p->pid, p->alive ? "alive" : "DEAD",
			       p->position,
			       pending_str(p->pending, buf, sizeof(buf)));
		else
			printf("  reader %u: %s, pid %u, %s, cursor %" PRIu64
			       ", lag %" PRIu64 ", delivered %" PRIu64
			       ", lost %" PRIu64 ", abandoned %" PRIu64 "\n",
			       p->index,
			       (p->flags & PBR_READER_LOSSY) ? "lossy"
							     : "gating",
			       p->pid, p->alive ? "alive" : "DEAD",
			       p->position - i->seq_base,
			       st->claimed - p->position, p->delivered, p->lost,
			       p->abandoned);
	}
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
	       "\"seq_base\":%" PRIu64 ",\"msg_type\":",
	       i->format_major, i->format_minor, i->total_size, i->slot_count,
	       i->slot_size, i->payload_cap,
	       (i->ring_flags & PBR_RING_SINGLE_PRODUCER) ? "true" : "false",
	       i->max_producers, i->max_readers, i->seq_base);
	json_str(i->msg_type);
	printf(",\"schema_len\":%u,\"schema_hash\":\"%016" PRIx64
	       "\",\"claimed\":%" PRIu64 ",\"abandoned\":%" PRIu64
	       ",\"producers_reaped\":%" PRIu64 ",\"readers_reaped\":%" PRIu64
	       ",\"participants\":[",
	       i->schema_len, i->schema_hash, st->claimed, st->abandoned,
	       st->producers_reaped, st->readers_reaped);
	for (k = 0; k < n; k++) {
		const struct pbr_participant *p = &pt[k];

		printf("%s{\"role\":\"%s\",\"index\":%u,\"pid\":%u,\"alive\":%"
		       "s,"
		       "\"position\":%" PRIu64 ",\"pending\":%" PRIu64
		       ",\"lag\":%" PRIu64 ",\"delivered\":%" PRIu64
		       ",\"lost\":%" PRIu64 ",\"abandoned\":%" PRIu64 "}",
		       k ? "," : "",
		       !p->is_reader		       ? "producer"
		       : (p->flags & PBR_READER_LOSSY) ? "lossy"
						       : "gating",
		       p->index, p->pid, p->alive ? "true" : "false",
		       p->position, p->pending,
		       p->is_reader ? st->claimed - p->position : 0,
		       p->delivered, p->lost, p->abandoned);
	}
	printf("]}\n");
}

int cmd_stat(int argc, char **argv)
{
	struct pbr_participant *pt;
	struct pbr_ring_stats st;
	struct pbr_ring_info info;
	const char *name = NULL;
	struct pbr_ring *ring;
	int i, n, rc, json = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(stat_help, stdout);
			return 0;
		} else if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (argv[i][0] == '-') {
			return cli_usage("stat", "unknown option '%s'",
					 argv[i]);
		} else if (name) {
			return cli_usage("stat", "expects exactly one RING");
		} else {
			name = argv[i];
		}
	}
	if (!name)
		return cli_usage("stat", "expects exactly one RING");
	if ((rc = cli_attach("stat", name, &ring)))
		return rc;
	pt = calloc(STAT_MAX, sizeof(*pt));
	if (!pt) {
		pbr_ring_detach(ring);
		return cli_err(name, NULL, -12);
	}
	pbr_ring_info(ring, &info);
	pbr_ring_stats(ring, &st);
	n = pbr_ring_participants(ring, pt, STAT_MAX);
	if (n > STAT_MAX)
		n = STAT_MAX;
	(json ? stat_json : stat_text)(&info, &st, pt, n);
	free(pt);
	pbr_ring_detach(ring);
	return 0;
}
