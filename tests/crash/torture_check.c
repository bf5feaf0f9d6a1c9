// SPDX-License-Identifier: MIT
/*
 * torture's final check: the producers' logs against the delivery stream
 * of a gating reader that was never killed.
 *
 * Per logical producer, a log holds its committed counters in increasing
 * order and a mark at each (re)start. Counters 0 .. top were all sent
 * exactly once or were in flight when an incarnation died (top: one past
 * the highest counter logged or announced, the one a last death may have
 * had in flight). So for a witness:
 *   - a committed counter must be delivered exactly once (else lost);
 *   - an uncommitted counter up to top at most once (abandoned or not);
 *   - anything else (above top, or a producer id that does not exist)
 *     was never sent: a phantom, counted as torn;
 *   - counters of one producer must come in increasing order.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torture.h"

struct plog {
	uint64_t top; /* counters 0 .. top may have been sent */
	uint64_t committed;
	uint8_t *is_committed, *seen; /* top + 1 entries each */
	uint64_t last;
	bool any;
};

static FILE *open_in(const struct tt_config *cf, const char *fmt, unsigned i)
{
	char name[64], path[400];

	snprintf(name, sizeof(name), fmt, i);
	snprintf(path, sizeof(path), "%s/%s", cf->dir, name);
	return fopen(path, "re");
}

/* Two passes over a log: its top, then its committed counters. */
static int load_log(const struct tt_config *cf, unsigned who, struct plog *l)
{
	FILE *f = open_in(cf, "prod-%u.log", who);
	uint64_t rec, top = 0;

	memset(l, 0, sizeof(*l));
	if (!f)
		return -errno;
	while (fread(&rec, 8, 1, f) == 1)
		top = (rec & TT_MARK) ? (rec & ~TT_MARK) : rec + 1;
	l->top = top;
	l->is_committed = calloc(top + 1, 1);
	l->seen = calloc(top + 1, 1);
	if (!l->is_committed || !l->seen) {
		fclose(f);
		return -ENOMEM;
	}
	rewind(f);
	while (fread(&rec, 8, 1, f) == 1) {
		if (rec & TT_MARK || rec > top)
			continue;
		l->committed += !l->is_committed[rec];
		l->is_committed[rec] = 1;
	}
	fclose(f);
	return 0;
}

static void free_logs(struct plog *logs, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		free(logs[i].is_committed);
		free(logs[i].seen);
	}
}

uint64_t tt_count_committed(const struct tt_config *cf)
{
	struct plog l;
	uint64_t n = 0;
	unsigned i;

	for (i = 0; i < cf->producers; i++) {
		if (load_log(cf, i, &l) == 0)
			n += l.committed;
		free_logs(&l, 1);
	}
	return n;
}

static void judge(struct plog *logs, const struct tt_config *cf, uint32_t who,
		  uint64_t c, struct tt_result *res)
{
	struct plog *l;

	if (who >= cf->producers || c > logs[who].top) {
		res->phantom++;
		return;
	}
	l = &logs[who];
	res->delivered++;
	if (l->any && c < l->last)
		res->disorder++;
	l->any = true;
	l->last = c;
	if (l->seen[c]++) {
		res->duplicated++;
		return;
	}
	if (!l->is_committed[c])
		res->maybe_delivered++;
}

static void count_lost(struct plog *logs, unsigned n, struct tt_result *res)
{
	uint64_t c;
	unsigned i;

	for (i = 0; i < n; i++)
		for (c = 0; c <= logs[i].top; c++)
			res->lost +=
				logs[i].is_committed[c] && !logs[i].seen[c];
}

int tt_check_witness(const struct tt_config *cf, unsigned j,
		     struct tt_result *res)
{
	struct plog logs[TT_MAX_PROD];
	uint8_t rec[12];
	uint32_t who;
	uint64_t c;
	unsigned i;
	int rc = 0;
	FILE *f;

	memset(res, 0, sizeof(*res));
	for (i = 0; i < cf->producers && !rc; i++) {
		rc = load_log(cf, i, &logs[i]);
		res->committed += logs[i].committed;
	}
	f = rc ? NULL : open_in(cf, "gating-%u.bin", j);
	if (!rc && !f)
		rc = -errno;
	while (f && fread(rec, sizeof(rec), 1, f) == 1) {
		memcpy(&who, rec, 4);
		memcpy(&c, rec + 4, 8);
		judge(logs, cf, who, c, res);
	}
	if (f)
		fclose(f);
	if (!rc)
		count_lost(logs, cf->producers, res);
	free_logs(logs, i);
	return rc;
}

/*
 * Every witness was there from the start and was never killed, so each
 * must have been handed the same messages: the committed ones (checked
 * above) and the same in-flight ones (a slot a dying producer published is
 * read by all of them; one it did not is abandoned for all of them). Per
 * counter, a bit per witness that delivered it; all bits or none.
 */
int tt_compare_witnesses(const struct tt_config *cf, uint64_t *differ)
{
	struct plog logs[TT_MAX_PROD];
	uint8_t rec[12], all = (uint8_t)((1u << cf->witnesses) - 1);
	uint32_t who;
	uint64_t c;
	unsigned i, j, n = 0;
	int rc = 0;
	FILE *f;

	memset(differ, 0, sizeof(*differ) * cf->witnesses);
	if (cf->witnesses > 8)
		return -EINVAL;
	for (; n < cf->producers && !rc; n++)
		rc = load_log(cf, n, &logs[n]);
	for (j = 0; j < cf->witnesses && !rc; j++) {
		f = open_in(cf, "gating-%u.bin", j);
		if (!f) {
			rc = -errno;
			break;
		}
		while (fread(rec, sizeof(rec), 1, f) == 1) {
			memcpy(&who, rec, 4);
			memcpy(&c, rec + 4, 8);
			/* Phantoms are counted as torn elsewhere. */
			if (who < cf->producers && c <= logs[who].top)
				logs[who].seen[c] |= (uint8_t)(1u << j);
		}
		fclose(f);
	}
	for (i = 0; i < cf->producers && !rc; i++)
		for (c = 0; c <= logs[i].top; c++) {
			uint8_t m = logs[i].seen[c];

			if (m == 0 || m == all)
				continue;
			for (j = 1; j < cf->witnesses; j++)
				differ[j] += ((m >> j) & 1) != (m & 1);
		}
	free_logs(logs, n);
	return rc;
}
