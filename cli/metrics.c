/* SPDX-License-Identifier: MIT */
/*
 * Rings as Prometheus metrics (text exposition format 0.0.4): what
 * `pbring stat --prometheus` prints and `pbring exporter` serves. The
 * names and labels are docs/METRICS.md's, the same in the Go and Python
 * packages. Every sample is read from the ring's counters and participant
 * table (pbr_ring_stats, pbr_ring_participants): nothing is asked of the
 * processes using it.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define PARTICIPANTS_MAX 2048

int cli_snap_take(struct cli_snap *s, const char *name, struct pbr_ring *ring)
{
	int n;

	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->pt = calloc(PARTICIPANTS_MAX, sizeof(*s->pt));
	if (!s->pt)
		return -ENOMEM;
	pbr_ring_info(ring, &s->info);
	n = pbr_ring_participants(ring, s->pt, PARTICIPANTS_MAX);
	s->n = n > PARTICIPANTS_MAX ? PARTICIPANTS_MAX : n < 0 ? 0 : n;
	/* The counters after the entries, as stat reads them: claimed is
	 * then at least every reader's cursor. */
	pbr_ring_stats(ring, &s->st);
	s->up = true;
	return 0;
}

void cli_snap_free(struct cli_snap *s)
{
	free(s->pt);
	s->pt = NULL;
}

/* A label value: backslash, double quote and newline escaped. */
static void label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void family(FILE *f, const char *name, const char *type,
		   const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{ring="R"} v */
static void ring_sample(FILE *f, const char *name, const struct cli_snap *s,
			uint64_t v)
{
	fprintf(f, "%s{ring=\"", name);
	label(f, s->name);
	fprintf(f, "\"} %" PRIu64 "\n", v);
}

static const char *crc_name(uint32_t crc)
{
	return crc == PBR_CRC_NONE   ? "none"
	       : crc == PBR_CRC_UPTO ? "upto"
				     : "full";
}

static const char *reader_mode(const struct pbr_participant *p)
{
	return (p->flags & PBR_READER_LOSSY) ? "lossy" : "gating";
}

static void ring_families(FILE *f, const struct cli_snap *s, int n)
{
	int i;

	family(f, "pbring_ring_up", "gauge",
	       "1 if the ring could be read, 0 if not (named rings only).");
	for (i = 0; i < n; i++)
		ring_sample(f, "pbring_ring_up", &s[i], s[i].up);
	family(f, "pbring_ring_info", "gauge",
	       "Always 1: the ring's message type and CRC policy as labels.");
	for (i = 0; i < n; i++) {
		if (!s[i].up)
			continue;
		fputs("pbring_ring_info{ring=\"", f);
		label(f, s[i].name);
		fputs("\",msg_type=\"", f);
		label(f, s[i].info.msg_type);
		fprintf(f, "\",crc=\"%s\"} 1\n", crc_name(s[i].info.crc));
	}
}

/* A gauge or counter of ring-wide values, one sample per ring read. */
struct ring_metric {
	const char *name, *type, *help;
	uint64_t (*get)(const struct cli_snap *s);
};

static uint64_t get_slots(const struct cli_snap *s)
{
	return s->info.slot_count;
}

static uint64_t get_slot_bytes(const struct cli_snap *s)
{
	return s->info.slot_size;
}

static uint64_t get_claimed(const struct cli_snap *s)
{
	return s->st.claimed - s->info.seq_base;
}

static uint64_t get_abandoned(const struct cli_snap *s)
{
	return s->st.abandoned;
}

static uint64_t get_preaped(const struct cli_snap *s)
{
	return s->st.producers_reaped;
}

static uint64_t get_rreaped(const struct cli_snap *s)
{
	return s->st.readers_reaped;
}

static const struct ring_metric ring_metrics[] = {
	{"pbring_ring_slots", "gauge", "Slots in the ring.", get_slots},
	{"pbring_ring_slot_bytes", "gauge",
	 "Bytes per slot, its 64-byte header included.", get_slot_bytes},
	{"pbring_ring_claimed_total", "counter",
	 "Sequences claimed by producers since the ring was created.",
	 get_claimed},
	{"pbring_ring_abandoned_total", "counter",
	 "Sequences of dead producers turned into abandoned records.",
	 get_abandoned},
	{"pbring_ring_producers_reaped_total", "counter",
	 "Dead producer entries freed.", get_preaped},
	{"pbring_ring_readers_reaped_total", "counter",
	 "Dead reader entries freed.", get_rreaped},
};

static void ring_counters(FILE *f, const struct cli_snap *s, int n)
{
	const struct ring_metric *m;
	int i;

	for (m = ring_metrics;
	     m < ring_metrics + sizeof(ring_metrics) / sizeof(*ring_metrics);
	     m++) {
		family(f, m->name, m->type, m->help);
		for (i = 0; i < n; i++)
			if (s[i].up)
				ring_sample(f, m->name, &s[i], m->get(&s[i]));
	}
}

/* pbring_participants{ring, role, state}: every combination, zeros too. */
static void participant_counts(FILE *f, const struct cli_snap *s, int n)
{
	static const char *const roles[] = {"producer", "gating", "lossy"};
	int i, r, a, k;

	family(f, "pbring_participants", "gauge",
	       "Producer and reader entries in use, by role and liveness.");
	for (i = 0; i < n; i++) {
		if (!s[i].up)
			continue;
		for (r = 0; r < 3; r++) {
			for (a = 1; a >= 0; a--) {
				uint64_t c = 0;

				for (k = 0; k < s[i].n; k++) {
					const struct pbr_participant *p =
						&s[i].pt[k];
					const char *role =
						p->is_reader ? reader_mode(p)
							     : "producer";

					c += !strcmp(role, roles[r]) &&
					     p->alive == a;
				}
				fputs("pbring_participants{ring=\"", f);
				label(f, s[i].name);
				fprintf(f,
					"\",role=\"%s\",state=\"%s\"} %" PRIu64
					"\n",
					roles[r], a ? "alive" : "dead", c);
			}
		}
	}
}

/* A per-participant value: producers or readers only; the u64 field at
 * off of pbr_participant, or what get computes; ns: nanoseconds shown in
 * seconds (Prometheus's base unit). */
struct part_metric {
	const char *name, *type, *help;
	bool reader, ns;
	size_t off;
	uint64_t (*get)(const struct pbr_participant *p,
			const struct cli_snap *s);
};

#define FIELD(f) offsetof(struct pbr_participant, f), NULL

static uint64_t get_up(const struct pbr_participant *p,
		       const struct cli_snap *s)
{
	(void)s;
	return p->alive;
}

/* As stat's lag: the counters are read after the entries, so claimed is
 * at least the cursor. */
static uint64_t get_lag(const struct pbr_participant *p,
			const struct cli_snap *s)
{
	return s->st.claimed - p->position;
}

static uint64_t part_value(const struct part_metric *m,
			   const struct pbr_participant *p,
			   const struct cli_snap *s)
{
	uint64_t v;

	if (m->get)
		return m->get(p, s);
	memcpy(&v, (const char *)p + m->off, sizeof(v));
	return v;
}

static const struct part_metric part_metrics[] = {
	{"pbring_producer_up", "gauge",
	 "1 while the producer's process is alive, 0 once it died.", false,
	 false, 0, get_up},
	{"pbring_producer_committed_total", "counter",
	 "Messages this producer committed (aborts included) since it joined.",
	 false, false, FIELD(position)},
	{"pbring_producer_bytes_total", "counter",
	 "Payload bytes of the messages this producer committed since it "
	 "joined.",
	 false, false, FIELD(bytes)},
	{"pbring_producer_aborts_total", "counter",
	 "Skip records (aborted sequences) this producer published since it "
	 "joined.",
	 false, false, FIELD(aborts)},
	{"pbring_producer_blocked_seconds_total", "counter",
	 "Time this producer waited for space (a full ring) since it joined.",
	 false, true, FIELD(blocked_ns)},
	{"pbring_reader_up", "gauge",
	 "1 while the reader's process is alive, 0 once it died.", true, false,
	 0, get_up},
	{"pbring_reader_delivered_total", "counter",
	 "Messages this reader released since it joined.", true, false,
	 FIELD(delivered)},
	{"pbring_reader_lost_total", "counter",
	 "Messages overwritten before this lossy reader read them.", true,
	 false, FIELD(lost)},
	{"pbring_reader_abandoned_total", "counter",
	 "Abandoned records (dead producers' sequences) passed over.", true,
	 false, FIELD(abandoned)},
	{"pbring_reader_lag_messages", "gauge",
	 "Messages claimed by producers and not yet read by this reader.", true,
	 false, 0, get_lag},
	{"pbring_reader_bad_total", "counter",
	 "Corrupt slots (bad headers) this reader passed over.", true, false,
	 FIELD(bad)},
	{"pbring_reader_crc_errors_total", "counter",
	 "Messages whose payload failed its CRC32C at this reader.", true,
	 false, FIELD(crc_errors)},
	{"pbring_reader_decode_errors_total", "counter",
	 "Messages this reader's application could not decode.", true, false,
	 FIELD(decode_errors)},
};

static void part_sample(FILE *f, const struct part_metric *m,
			const struct cli_snap *s,
			const struct pbr_participant *p)
{
	fprintf(f, "%s{ring=\"", m->name);
	label(f, s->name);
	fprintf(f, "\",participant=\"%" PRIu32 "\"", p->index);
	if (m->reader)
		fprintf(f, ",mode=\"%s\"", reader_mode(p));
	if (m->ns) /* %.17g: the double any language parses back */
		fprintf(f, "} %.17g\n", (double)part_value(m, p, s) / 1e9);
	else
		fprintf(f, "} %" PRIu64 "\n", part_value(m, p, s));
}

/* {ring="R",participant="I",mode="M" */
static void reader_labels(FILE *f, const char *name, const char *suffix,
			  const struct cli_snap *s,
			  const struct pbr_participant *p)
{
	fprintf(f, "%s%s{ring=\"", name, suffix);
	label(f, s->name);
	fprintf(f, "\",participant=\"%" PRIu32 "\",mode=\"%s\"", p->index,
		reader_mode(p));
}

/* One reader's histogram: cumulative buckets with le in seconds (%g: as
 * client_golang prints them), +Inf, _sum, _count (FORMAT.md §5.5). */
static void latency_sample(FILE *f, const struct cli_snap *s,
			   const struct pbr_participant *p)
{
	static const uint64_t bound[PBR_LATENCY_BUCKETS - 1] =
		PBR_LATENCY_BOUNDS_NS;
	const char *name = "pbring_reader_latency_seconds";
	uint64_t cum = 0;
	unsigned b;

	for (b = 0; b < PBR_LATENCY_BUCKETS; b++) {
		cum += p->latency[b];
		reader_labels(f, name, "_bucket", s, p);
		if (b < PBR_LATENCY_BUCKETS - 1)
			fprintf(f, ",le=\"%g\"} %" PRIu64 "\n",
				(double)bound[b] / 1e9, cum);
		else
			fprintf(f, ",le=\"+Inf\"} %" PRIu64 "\n", cum);
	}
	reader_labels(f, name, "_sum", s, p);
	fprintf(f, "} %.17g\n", (double)p->latency_sum_ns / 1e9);
	reader_labels(f, name, "_count", s, p);
	fprintf(f, "} %" PRIu64 "\n", cum);
}

static void latency_family(FILE *f, const struct cli_snap *s, int n)
{
	int i, k;

	family(f, "pbring_reader_latency_seconds", "histogram",
	       "Commit-to-receive latency of the messages this reader "
	       "received (readers that record it; format 1.2 rings).");
	for (i = 0; i < n; i++)
		for (k = 0; s[i].up && k < s[i].n; k++)
			if (s[i].pt[k].is_reader && s[i].pt[k].has_latency)
				latency_sample(f, &s[i], &s[i].pt[k]);
}

static void participant_families(FILE *f, const struct cli_snap *s, int n)
{
	const struct part_metric *m;
	int i, k;

	for (m = part_metrics;
	     m < part_metrics + sizeof(part_metrics) / sizeof(*part_metrics);
	     m++) {
		family(f, m->name, m->type, m->help);
		for (i = 0; i < n; i++)
			for (k = 0; s[i].up && k < s[i].n; k++)
				if (!!s[i].pt[k].is_reader == m->reader)
					part_sample(f, m, &s[i], &s[i].pt[k]);
	}
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **cli_ring_names(int *n)
{
	size_t cap = 64, len = strlen(PBR_NAME_PREFIX);
	char **names = calloc(cap, sizeof(*names)), **more;
	struct dirent *d;
	DIR *dir;

	*n = 0;
	if (!names || !(dir = opendir(PBR_SHM_DIR)))
		return names;
	/* Every entry: a cap counted in readdir's order would drop real
	 * rings behind other objects named like them. */
	while ((d = readdir(dir))) {
		if (strncmp(d->d_name, PBR_NAME_PREFIX, len) ||
		    pbr_name_check(d->d_name + len))
			continue;
		if ((size_t)*n == cap) {
			if (!(more = realloc(names, 2 * cap * sizeof(*names))))
				break;
			names = more;
			cap *= 2;
		}
		if (!(names[*n] = strdup(d->d_name + len)))
			break;
		(*n)++;
	}
	closedir(dir);
	qsort(names, (size_t)*n, sizeof(*names), name_cmp);
	return names;
}

void cli_ring_names_free(char **names, int n)
{
	int i;

	for (i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

void cli_metrics_text(FILE *f, const struct cli_snap *s, int n)
{
	ring_families(f, s, n);
	ring_counters(f, s, n);
	participant_counts(f, s, n);
	participant_families(f, s, n);
	latency_family(f, s, n);
}
