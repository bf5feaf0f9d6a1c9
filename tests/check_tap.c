// SPDX-License-Identifier: MIT
/*
 * check_tap: tap readers and read-only attach (FORMAT.md §9.5). A tap
 * reads like a lossy reader, takes no entry, never gates, writes nothing
 * to the segment (checked byte for byte), waits by polling and still
 * honours timeouts and interrupts; a read-only ring refuses everything
 * that writes; a process with read permission only can tap a ring.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* setgroups, OFD locks: also set by the build */
#endif
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#define NOBODY 65534

/* Attach @name read-only (and accepting any owner: the tests that drop
 * privileges read root's rings). */
static struct pbr_ring *attach_ro(const char *name)
{
	struct pbr_attach_opts o = {.flags = PBR_ATTACH_READONLY |
					     PBR_ATTACH_ANY_OWNER};
	struct pbr_ring *r = NULL;
	int rc = pbr_ring_attach(name, &o, &r);

	ck_assert_msg(rc == 0, "read-only attach: %d %s", rc, pbr_strerror(rc));
	return r;
}

static struct pbr_reader *tap(struct pbr_ring *r, uint32_t start,
			      enum pbr_wait w)
{
	return tu_reader(r, PBR_READER_TAP, start, w);
}

static struct pbr_reader_stats rstats(const struct pbr_reader *rd)
{
	struct pbr_reader_stats st;

	memset(&st, 0xff, sizeof(st));
	pbr_reader_stats(rd, &st);
	return st;
}

/* The ring a tap reads: the writer's own handle (_i == 0), or a second,
 * read-only attach of the same ring (_i == 1). */
static struct pbr_ring *tap_ring(const char *name, struct pbr_ring *rw, int i)
{
	return i ? attach_ro(name) : rw;
}

static void tap_ring_done(struct pbr_ring *tr, const struct pbr_ring *rw)
{
	if (tr != rw)
		pbr_ring_detach(tr);
}

/* Peek one message as a tap, check its tag and that it is unstable, and
 * release it: 0 or the release's error. */
static int tap_recv(struct pbr_reader *rd, uint64_t tag)
{
	struct pbr_view v;
	int rc = pbr_reader_peek(rd, 0, &v);

	ck_assert_msg(rc == 0, "tap peek: %d %s", rc, pbr_strerror(rc));
	ck_assert_uint_eq(v.vflags, PBR_VIEW_UNSTABLE);
	ck_assert_uint_eq(tu_tag_of(&v), tag);
	return pbr_reader_release(rd, &v);
}

/* --- reading ------------------------------------------------------------ */

/* Not lapped, a tap reads every message, in order, with nothing lost:
 * the backlog at open, then message by message over several laps. */
START_TEST(test_tap_reads_every_message)
{
	const char *name = tu_name("all");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_ring *tr = tap_ring(name, r, _i);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader *rd;
	struct pbr_reader_stats st;
	struct pbr_view v;
	uint64_t i;

	for (i = 0; i < 5; i++)
		tu_send_tag(p, i);
	rd = tap(tr, PBR_START_OLDEST, 0);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(tap_recv(rd, i), 0);
	for (; i < 40; i++) {
		tu_send_tag(p, i);
		ck_assert_int_eq(tap_recv(rd, i), 0);
	}
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EAGAIN);
	st = rstats(rd);
	ck_assert_uint_eq(st.delivered, 40);
	ck_assert_uint_eq(st.lost + st.missed + st.abandoned + st.bad, 0);
	ck_assert_uint_eq(st.cursor, 40);
	pbr_reader_close(rd);
	pbr_producer_close(p);
	tap_ring_done(tr, r);
	pbr_ring_detach(r);
}
END_TEST

/* Start latest: only what is committed after the open. */
START_TEST(test_tap_start_latest)
{
	const char *name = tu_name("lat");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 100);
	struct pbr_ring *tr = tap_ring(name, r, _i);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader *rd;
	struct pbr_view v;

	tu_send_tag(p, 1);
	tu_send_tag(p, 2);
	rd = tap(tr, PBR_START_LATEST, 0);
	ck_assert_uint_eq(rstats(rd).cursor, 102);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EAGAIN);
	tu_send_tag(p, 3);
	ck_assert_int_eq(tap_recv(rd, 3), 0);
	ck_assert_uint_eq(rstats(rd).delivered, 1);
	pbr_reader_close(rd);
	pbr_producer_close(p);
	tap_ring_done(tr, r);
	pbr_ring_detach(r);
}
END_TEST

/* Lapped: the tap skips ahead as a lossy reader does (to claim - N/2),
 * counts the overwritten backlog as missed and the rest as lost, and
 * resumes with the next messages. */
START_TEST(test_tap_lapped_counts_and_resumes)
{
	const char *name = tu_name("lap");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_ring *tr = tap_ring(name, r, _i);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader_stats st;
	struct pbr_reader *rd;
	struct pbr_view v;
	uint64_t i;

	for (i = 0; i < 20; i++)
		tu_send_tag(p, i);
	rd = tap(tr, PBR_START_OLDEST, 0); /* cursor 12, claim 20 */
	ck_assert_uint_eq(rstats(rd).cursor, 12);
	for (; i < 40; i++) /* nobody gates: 12..31 are overwritten */
		tu_send_tag(p, i);
	for (i = 36; i < 40; i++)
		ck_assert_int_eq(tap_recv(rd, i), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EAGAIN);
	st = rstats(rd);
	ck_assert_uint_eq(st.missed, 8); /* 12..19: backlog at open */
	ck_assert_uint_eq(st.lost, 16);	 /* 20..35 */
	ck_assert_uint_eq(st.delivered, 4);
	/* resumes: not lapped any more, nothing more is lost */
	for (i = 40; i < 50; i++) {
		tu_send_tag(p, i);
		ck_assert_int_eq(tap_recv(rd, i), 0);
	}
	st = rstats(rd);
	ck_assert_uint_eq(st.delivered, 14);
	ck_assert_uint_eq(st.lost, 16);
	pbr_reader_close(rd);
	pbr_producer_close(p);
	tap_ring_done(tr, r);
	pbr_ring_detach(r);
}
END_TEST

/* A view overwritten while the tap held it: the seqlock re-check says
 * -ESTALE, it counts as lost, and what verify/reject saw is not judged. */
START_TEST(test_tap_view_overwritten_while_held)
{
	const char *name = tu_name("stale");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_ring *tr = tap_ring(name, r, _i);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader *rd = tap(tr, PBR_START_LATEST, 0);
	struct pbr_reader_stats st;
	struct pbr_view v;
	uint64_t i;

	tu_send_tag(p, 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	for (i = 1; i <= 8; i++) /* 8 reuses the view's slot */
		tu_send_tag(p, i);
	ck_assert_int_eq(pbr_reader_reject(rd, &v), -ESTALE);
	ck_assert_int_eq(pbr_reader_release(rd, &v), -ESTALE);
	st = rstats(rd);
	ck_assert_uint_eq(st.delivered, 0);
	ck_assert_uint_eq(st.lost, 1);
	ck_assert_uint_eq(st.decode_errors, 0);
	for (i = 1; i <= 8; i++)
		ck_assert_int_eq(tap_recv(rd, i), 0);
	ck_assert_uint_eq(rstats(rd).delivered, 8);
	pbr_reader_close(rd);
	pbr_producer_close(p);
	tap_ring_done(tr, r);
	pbr_ring_detach(r);
}
END_TEST

/* --- not a participant -------------------------------------------------- */

/* A tap is not in the participant table, has no index, and an intact
 * view it rejects counts in its own stats only. */
START_TEST(test_tap_not_a_participant)
{
	const char *name = tu_name("np");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_ring *tr = tap_ring(name, r, _i);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader *g = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_participant pt[4];
	struct pbr_reader *t1, *t2;
	struct pbr_view v;
	int i, n;

	ck_assert_int_eq(pbr_ring_participants(r, pt, 4), 2);
	t1 = tap(tr, PBR_START_OLDEST, 0);
	t2 = tap(tr, PBR_START_LATEST, 0);
	ck_assert_uint_eq(pbr_reader_index(t1), UINT32_MAX);
	ck_assert_uint_eq(pbr_reader_index(t2), UINT32_MAX);
	tu_send_tag(p, 7);
	ck_assert_int_eq(pbr_reader_peek(t1, 0, &v), 0);
	ck_assert_int_eq(pbr_reader_reject(t1, &v), 0);
	ck_assert_uint_eq(rstats(t1).decode_errors, 1);
	ck_assert_int_eq(pbr_reader_release(t1, &v), 0);
	/* seen from either handle: the producer and the gating reader */
	for (i = 0; i < 2; i++) {
		n = pbr_ring_participants(i ? tr : r, pt, 4);
		ck_assert_int_eq(n, 2);
		ck_assert_uint_eq(pt[0].is_reader, 0);
		ck_assert_uint_eq(pt[1].is_reader, 1);
		ck_assert_uint_eq(pt[1].index, pbr_reader_index(g));
		ck_assert_uint_eq(pt[1].flags, PBR_READER_GATING);
		ck_assert_uint_eq(pt[1].decode_errors, 0);
		ck_assert_uint_eq(pt[1].alive, 1);
	}
	pbr_reader_close(t1);
	pbr_reader_close(t2);
	pbr_reader_close(g);
	pbr_producer_close(p);
	tap_ring_done(tr, r);
	pbr_ring_detach(r);
}
END_TEST

/* A tap never holds a producer back: with only a tap that reads nothing,
 * the producer laps it without waiting; a gating reader in its place
 * stops the producer when the ring is full. */
START_TEST(test_tap_does_not_gate)
{
	const char *name = tu_name("ng");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_ring *tr = tap_ring(name, r, _i);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader *rd = tap(tr, PBR_START_OLDEST, 0), *g;
	uint64_t buf[2] = {0, 0};
	struct pbr_reader_stats st;
	struct pbr_view v;
	uint64_t i;

	for (i = 0; i < 100; i++)
		tu_send_tag(p, i); /* asserts: timeout 0 never waited */
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_uint_eq(v.seq, 96);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	st = rstats(rd);
	ck_assert_uint_eq(st.lost, 96);
	ck_assert_uint_eq(st.delivered, 1);
	/* the contrast: a gating reader that reads nothing stops it */
	g = tu_reader(r, 0, PBR_START_LATEST, 0);
	for (i = 0; i < 8; i++)
		tu_send_tag(p, 100 + i);
	ck_assert_int_eq(pbr_producer_send(p, buf, sizeof(buf), 0, 0), -EAGAIN);
	pbr_reader_close(g);
	pbr_reader_close(rd);
	pbr_producer_close(p);
	tap_ring_done(tr, r);
	pbr_ring_detach(r);
}
END_TEST

/* --- writes nothing ----------------------------------------------------- */

/* A copy of the whole segment of @name. */
static uint8_t *snapshot(const char *name, size_t *size)
{
	struct tu_raw raw;
	uint8_t *copy;

	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	copy = malloc(raw.size);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, raw.base, raw.size);
	*size = raw.size;
	tu_raw_unmap(&raw);
	return copy;
}

static void assert_unchanged(const char *name, const uint8_t *before,
			     size_t size)
{
	size_t n, i;
	uint8_t *now = snapshot(name, &n);

	ck_assert_uint_eq(n, size);
	for (i = 0; i < size && now[i] == before[i]; i++)
		;
	ck_assert_msg(i == size, "segment byte 0x%zx changed: %02x -> %02x", i,
		      before[i], now[i]);
	free(now);
}

/* Everything a tap does on @tr, with no producer running: peek, release
 * (intact and overwritten views alike need none), reject, a wait that
 * times out, stats, close. */
static void tap_everything(struct pbr_ring *tr)
{
	struct pbr_participant pt[4];
	struct pbr_ring_stats rs;
	struct pbr_view v[4];
	struct pbr_reader *rd;
	int n;

	rd = tap(tr, PBR_START_OLDEST, 0);
	n = pbr_reader_peek_batch(rd, v, 4, 0);
	ck_assert_int_eq(n, 4);
	ck_assert_int_eq(pbr_reader_reject(rd, &v[0]), 0);
	ck_assert_int_eq(pbr_reader_release(rd, &v[n - 1]), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v[0]), 0);
	ck_assert_int_eq(pbr_reader_release(rd, &v[0]), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 30 * TU_MS, &v[0]), -ETIMEDOUT);
	ck_assert_uint_eq(rstats(rd).delivered, 5);
	ck_assert_int_eq(pbr_ring_participants(tr, pt, 4), 1);
	pbr_ring_stats(tr, &rs);
	ck_assert_uint_eq(rs.claimed, 5);
	ck_assert_int_eq(pbr_ring_check(tr), 0);
	pbr_reader_close(rd);
	rd = tap(tr, PBR_START_LATEST, 0); /* left open for detach */
	(void)rd;
}

/* The whole segment is byte-identical before and after a tap attaches,
 * reads, waits, releases and closes: on the writer's own read-write
 * handle (where a store would land), and on a read-only attach. */
START_TEST(test_tap_writes_nothing)
{
	const char *name = tu_name("wn");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader *g = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_ring *tr;
	uint8_t *before;
	size_t size;
	uint64_t i;

	for (i = 0; i < 5; i++)
		tu_send_tag(p, i);
	pbr_producer_close(p); /* no producer running from here on */
	before = snapshot(name, &size);
	if (_i) {
		tr = attach_ro(name);
	} else {
		struct pbr_attach_opts o = {0};

		ck_assert_int_eq(pbr_ring_attach(name, &o, &tr), 0);
	}
	tap_everything(tr);
	if (_i)
		pbr_ring_interrupt(tr); /* read-only: sets the flag only */
	pbr_ring_detach(tr);
	assert_unchanged(name, before, size);
	free(before);
	pbr_reader_close(g);
	pbr_ring_detach(r);
}
END_TEST

/* A slot a dead producer left BUSY stalls a tap (it cannot recover it,
 * and the slot stays as it was) until a participant that writes does;
 * the tap then passes over the abandoned record and counts it. */
START_TEST(test_tap_waits_for_recovery)
{
	const char *name = tu_name("rec");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_ring *tr = tap_ring(name, r, _i);
	struct pbr_reader *rd = tap(tr, PBR_START_LATEST, 0), *g;
	struct pbr_layout_slot *h;
	struct tu_raw raw;
	struct pbr_view v;
	uint64_t *claim;

	/* a producer that claimed sequence 0, marked it BUSY and died */
	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	claim = (uint64_t *)(raw.base + raw.sb->control_off + PBR_CTL_CLAIM);
	h = tu_raw_slot(&raw, 0);
	h->commit = PBR_COMMIT_BUSY(0);
	*claim = 1;
	ck_assert_int_eq(pbr_reader_peek(rd, 100 * TU_MS, &v), -ETIMEDOUT);
	ck_assert_uint_eq(h->commit, PBR_COMMIT_BUSY(0));
	/* a gating reader stuck there for 20 ms recovers it (§8.2) */
	g = tu_reader(r, 0, PBR_START_OLDEST, 0);
	ck_assert_int_eq(pbr_reader_peek(g, 200 * TU_MS, &v), -ETIMEDOUT);
	ck_assert_uint_eq(h->commit, PBR_COMMIT_ABANDONED(0));
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EAGAIN);
	ck_assert_uint_eq(rstats(rd).abandoned, 1);
	ck_assert_uint_eq(rstats(rd).cursor, 1);
	tu_raw_unmap(&raw);
	pbr_reader_close(g);
	pbr_reader_close(rd);
	tap_ring_done(tr, r);
	pbr_ring_detach(r);
}
END_TEST

/* --- read-only rings and options ---------------------------------------- */

START_TEST(test_readonly_refuses_writers)
{
	const char *name = tu_name("ro");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_ring *ro = attach_ro(name);
	struct pbr_reader_opts lossy = {.flags = PBR_READER_LOSSY};
	struct pbr_reader_opts lat = {.flags = PBR_READER_LATENCY};
	struct pbr_reader_opts tl = {.flags = PBR_READER_TAP |
					      PBR_READER_LATENCY};
	struct pbr_producer *p = NULL;
	struct pbr_reader *rd = NULL;

	ck_assert_int_eq(pbr_producer_open(ro, NULL, &p), -EROFS);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(pbr_reader_open(ro, NULL, &rd), -EROFS);
	ck_assert_int_eq(pbr_reader_open(ro, &lossy, &rd), -EROFS);
	ck_assert_int_eq(pbr_reader_open(ro, &lat, &rd), -EROFS);
	ck_assert_ptr_null(rd);
	ck_assert_int_eq(pbr_ring_reclaim(ro), -EROFS);
	ck_assert_ptr_nonnull(strstr(pbr_strerror(-EROFS), "read-only"));
	/* a tap cannot record latency, read-only or not */
	ck_assert_int_eq(pbr_reader_open(ro, &tl, &rd), -EINVAL);
	ck_assert_int_eq(pbr_reader_open(r, &tl, &rd), -EINVAL);
	ck_assert_ptr_null(rd);
	/* TAP implies lossy: saying both is the same tap */
	rd = tu_reader(ro, PBR_READER_TAP | PBR_READER_LOSSY, 0, 0);
	ck_assert_uint_eq(pbr_reader_index(rd), UINT32_MAX);
	pbr_ring_detach(ro); /* closes the tap */
	ck_assert_int_eq(pbr_ring_reclaim(r), 0);
	pbr_ring_detach(r);
}
END_TEST

/* --- waiting ------------------------------------------------------------ */

START_TEST(test_tap_timeout)
{
	const char *name = tu_name("to");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_ring *tr = tap_ring(name, r, _i / 3);
	struct pbr_reader *rd =
		tap(tr, PBR_START_OLDEST, (enum pbr_wait)(_i % 3));
	struct pbr_view v;
	uint64_t t0, dt;

	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EAGAIN);
	t0 = tu_now_ns();
	ck_assert_int_eq(pbr_reader_peek(rd, 30 * TU_MS, &v), -ETIMEDOUT);
	dt = tu_now_ns() - t0;
	ck_assert_uint_ge(dt, 30 * TU_MS);
	ck_assert_uint_lt(dt, 1000 * TU_MS);
	pbr_reader_close(rd);
	tap_ring_done(tr, r);
	pbr_ring_detach(r);
}
END_TEST

struct later {
	struct pbr_ring *ring;
	struct pbr_producer *p; /* send a message, or NULL: interrupt */
};

static void *later_main(void *arg)
{
	struct later *l = arg;
	uint64_t buf[2] = {42, ~42ull};

	tu_sleep_ms(50);
	if (l->p)
		(void)!pbr_producer_send(l->p, buf, sizeof(buf), 0, 0);
	else
		pbr_ring_interrupt(l->ring);
	return NULL;
}

/* pbr_ring_interrupt() ends a tap's wait without limit, read-only ring
 * or not, and later waits at once. */
START_TEST(test_tap_interrupt)
{
	const char *name = tu_name("int");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_ring *tr = tap_ring(name, r, _i);
	struct pbr_reader *rd = tap(tr, PBR_START_OLDEST, PBR_WAIT_BLOCK);
	struct later l = {tr, NULL};
	struct pbr_view v;
	pthread_t th;
	uint64_t t0, dt;

	ck_assert_int_eq(pthread_create(&th, NULL, later_main, &l), 0);
	t0 = tu_now_ns();
	ck_assert_int_eq(pbr_reader_peek(rd, -1, &v), -EINTR);
	dt = tu_now_ns() - t0;
	pthread_join(th, NULL);
	ck_assert_uint_ge(dt, 40 * TU_MS);
	ck_assert_uint_lt(dt, 1000 * TU_MS);
	ck_assert_int_eq(pbr_reader_peek(rd, 1000 * TU_MS, &v), -EINTR);
	pbr_reader_close(rd);
	tap_ring_done(tr, r);
	pbr_ring_detach(r);
}
END_TEST

/* A tap waiting without limit gets a message committed meanwhile: its
 * polls look again (nobody rings a bell for it). */
START_TEST(test_tap_wait_gets_message)
{
	const char *name = tu_name("wm");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_ring *tr = tap_ring(name, r, _i);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader *rd = tap(tr, PBR_START_LATEST, PBR_WAIT_BLOCK);
	struct later l = {r, p};
	struct pbr_view v;
	pthread_t th;

	ck_assert_int_eq(pthread_create(&th, NULL, later_main, &l), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 5000 * TU_MS, &v), 0);
	ck_assert_uint_eq(tu_tag_of(&v), 42);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	pthread_join(th, NULL);
	pbr_reader_close(rd);
	pbr_producer_close(p);
	tap_ring_done(tr, r);
	pbr_ring_detach(r);
}
END_TEST

struct waiting {
	struct pbr_reader *rd;
	int rc;
};

static void *peek_main(void *arg)
{
	struct waiting *w = arg;
	struct pbr_view v;

	w->rc = pbr_reader_peek(w->rd, 200 * TU_MS, &v);
	return NULL;
}

/* The most readers registered on the data bell of @raw while @rd waits
 * 200 ms for a message that does not come. */
static uint32_t max_bell_waiters(struct tu_raw *raw, struct pbr_reader *rd)
{
	uint32_t *waiters = (uint32_t *)(raw->base + raw->sb->control_off +
					 PBR_CTL_DATA_BELL + 4);
	struct waiting w = {rd, 0};
	uint32_t most = 0;
	uint64_t end;
	pthread_t th;

	ck_assert_int_eq(pthread_create(&th, NULL, peek_main, &w), 0);
	end = tu_now_ns() + 150 * TU_MS;
	while (tu_now_ns() < end)
		if (__atomic_load_n(waiters, __ATOMIC_RELAXED) > most)
			most = __atomic_load_n(waiters, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	ck_assert_int_eq(w.rc, -ETIMEDOUT);
	return most;
}

/* A tap waits by polling: it never registers on the data bell, even on
 * a read-write handle (where a lossy reader's wait does register). */
START_TEST(test_tap_not_on_doorbell)
{
	const char *name = tu_name("bell");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_reader *rd = tap(r, PBR_START_LATEST, PBR_WAIT_BLOCK);
	struct pbr_reader *lossy = tu_reader(r, PBR_READER_LOSSY,
					     PBR_START_LATEST, PBR_WAIT_BLOCK);
	struct tu_raw raw;

	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	ck_assert_uint_eq(max_bell_waiters(&raw, rd), 0);
	ck_assert_uint_eq(max_bell_waiters(&raw, lossy), 1);
	tu_raw_unmap(&raw);
	pbr_reader_close(lossy);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* --- read permission only ----------------------------------------------- */

/* In a child that can only read ring @name: exit 0 if a normal attach is
 * refused (-EACCES) and a read-only one taps messages 0..n-1; another
 * code names the step that failed. */
static int tap_as_reader_only(const char *name, uint64_t n)
{
	struct pbr_attach_opts rw = {.flags = PBR_ATTACH_ANY_OWNER};
	struct pbr_producer *p;
	struct pbr_ring *r;
	struct pbr_reader *rd;
	struct pbr_reader_opts o = {.flags = PBR_READER_TAP};
	struct pbr_view v;
	uint64_t i;

	if (pbr_ring_attach(name, &rw, &r) != -EACCES)
		return 10;
	rw.flags = PBR_ATTACH_ANY_OWNER | PBR_ATTACH_READONLY;
	if (pbr_ring_attach(name, &rw, &r))
		return 11;
	if (pbr_producer_open(r, NULL, &p) != -EROFS ||
	    pbr_reader_open(r, &o, &rd))
		return 12;
	for (i = 0; i < n; i++) {
		if (pbr_reader_peek(rd, 1000 * TU_MS, &v) ||
		    tu_tag_of(&v) != i || pbr_reader_release(rd, &v))
			return 13;
	}
	if (pbr_reader_peek(rd, 0, &v) != -EAGAIN)
		return 14;
	pbr_ring_detach(r);
	return 0;
}

/* Drop to uid 65534 with group 0 only: the group of root's rings. */
static int drop_to_nobody(void)
{
	gid_t root_group = 0;

	if (setgroups(1, &root_group) || setgid(0) || setuid(NOBODY))
		return 20;
	/* credentials changed: the death signal was cleared */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	return geteuid() == NOBODY ? 0 : 21;
}

/* A process with read permission only can tap a ring: as root, a child
 * that drops to nobody in root's group reads a 0640 ring of root's; as
 * anyone else, the ring is made 0440 so that opening it for writing
 * fails. Both assert that writing is refused and reading works. */
START_TEST(test_tap_with_read_permission_only)
{
	struct pbr_create_opts co = {.slot_count = 16, .mode = 0640};
	const char *name = tu_name("perm");
	bool root = geteuid() == 0;
	struct pbr_producer *p;
	struct pbr_ring *r;
	char path[128];
	uint64_t i;
	pid_t pid;
	int rc;

	ck_assert_int_eq(pbr_ring_create(name, &co, &r), 0);
	p = tu_producer(r, 0);
	for (i = 0; i < 5; i++)
		tu_send_tag(p, i);
	tu_path(name, path, sizeof(path));
	if (!root)
		ck_assert_int_eq(chmod(path, 0440), 0);
	pid = tu_fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		rc = root ? drop_to_nobody() : 0;
		_exit(rc ? rc : tap_as_reader_only(name, 5));
	}
	rc = tu_exit_code(tu_wait(pid, 10000));
	ck_assert_msg(rc == 0, "reader-only child (%s) failed at step %d",
		      root ? "uid 65534, gid 0" : "mode 0440", rc);
	pbr_producer_close(p);
	pbr_ring_detach(r);
}
END_TEST

/* --- the last commit (pbring check --max-age) ----------------------------- */

/* pbr_ring_last_commit(): nothing before the first message or from
 * unstamped ones; else the newest stamped message, after laps, past skip
 * records and an open reservation; the same on either handle (_i). */
START_TEST(test_last_commit)
{
	const char *name = tu_name("last");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_ring *tr = tap_ring(name, r, _i);
	struct pbr_producer *p = tu_producer(r, 0);
	uint64_t seq = 7, ts = 7, t0, i, one = 1;
	struct pbr_slot slot;

	ck_assert_int_eq(pbr_ring_last_commit(tr, &seq, &ts), -ENODATA);
	ck_assert_uint_eq(seq + ts, 14); /* untouched */
	tu_send_tag(p, 0);		 /* no PBR_SEND_TIMESTAMP */
	ck_assert_int_eq(pbr_ring_last_commit(tr, &seq, &ts), -ENODATA);
	t0 = pbr_clock_ns();
	for (i = 1; i <= 20; i++) /* laps the ring */
		ck_assert_int_eq(pbr_producer_send(p, &one, sizeof(one),
						   PBR_SEND_TIMESTAMP, 0),
				 0);
	ck_assert_int_eq(pbr_producer_reserve(p, 0, &slot), 0);
	ck_assert_int_eq(pbr_producer_abort(p, &slot), 0); /* skip, seq 21 */
	ck_assert_int_eq(pbr_producer_reserve(p, 0, &slot), 0); /* open */
	ck_assert_int_eq(pbr_ring_last_commit(tr, &seq, &ts), 0);
	ck_assert_uint_eq(seq, 20);
	ck_assert_uint_ge(ts, t0);
	ck_assert_uint_le(ts, pbr_clock_ns());
	ck_assert_int_eq(pbr_producer_abort(p, &slot), 0);
	pbr_producer_close(p);
	tap_ring_done(tr, r);
	pbr_ring_detach(r);
}
END_TEST

static Suite *tap_suite(void)
{
	Suite *s = suite_create("tap");
	TCase *tc;

	/* _i: 0 the tap shares the writer's handle, 1 attaches read-only */
	tc = tu_tcase("read", 10);
	tcase_add_loop_test(tc, test_tap_reads_every_message, 0, 2);
	tcase_add_loop_test(tc, test_tap_start_latest, 0, 2);
	tcase_add_loop_test(tc, test_tap_lapped_counts_and_resumes, 0, 2);
	tcase_add_loop_test(tc, test_tap_view_overwritten_while_held, 0, 2);
	suite_add_tcase(s, tc);

	tc = tu_tcase("observer", 10);
	tcase_add_loop_test(tc, test_tap_not_a_participant, 0, 2);
	tcase_add_loop_test(tc, test_tap_does_not_gate, 0, 2);
	tcase_add_loop_test(tc, test_tap_writes_nothing, 0, 2);
	tcase_add_loop_test(tc, test_tap_waits_for_recovery, 0, 2);
	tcase_add_test(tc, test_readonly_refuses_writers);
	suite_add_tcase(s, tc);

	tc = tu_tcase("wait", 10);
	tcase_add_loop_test(tc, test_tap_timeout, 0, 6);
	tcase_add_loop_test(tc, test_tap_interrupt, 0, 2);
	tcase_add_loop_test(tc, test_tap_wait_gets_message, 0, 2);
	tcase_add_test(tc, test_tap_not_on_doorbell);
	suite_add_tcase(s, tc);

	tc = tu_tcase("last_commit", 10);
	tcase_add_loop_test(tc, test_last_commit, 0, 2);
	suite_add_tcase(s, tc);

	tc = tu_tcase("permission", 20);
	tcase_add_test(tc, test_tap_with_read_permission_only);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(tap_suite());
}
