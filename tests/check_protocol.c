// SPDX-License-Identifier: MIT
/*
 * check_protocol: the producer/reader protocol in one process: round
 * trips, empty and full rings, reservations, skips, batches, lossy
 * readers, start positions, sequence wrap, limits and wait modes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* OFD locks, prctl, mkfifo: also set by the build */
#endif
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define CAP (256 - PBR_SLOT_HDR_SIZE)

static struct pbr_ring *ring8(const char *tag, uint64_t base)
{
	return tu_create(tu_name(tag), 8, 256, 0, base);
}

static void fill_payload(uint8_t *buf, uint32_t len, uint64_t who)
{
	uint32_t i;

	for (i = 0; i < len; i++)
		buf[i] = tu_pattern(7, who, i);
}

static struct pbr_reader_stats rstats(const struct pbr_reader *rd)
{
	struct pbr_reader_stats st;

	memset(&st, 0xff, sizeof(st));
	pbr_reader_stats(rd, &st);
	return st;
}

/* --- basics ------------------------------------------------------------ */

START_TEST(test_round_trip)
{
	const uint32_t lens[] = {1, 0, 17, 100, CAP};
	struct pbr_ring *r = ring8("rt", 500);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	uint8_t buf[CAP];
	struct pbr_view v;
	unsigned i;

	for (i = 0; i < 5; i++) {
		fill_payload(buf, lens[i], i);
		ck_assert_int_eq(pbr_producer_send(p, buf, lens[i], 0, 0), 0);
	}
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
		fill_payload(buf, lens[i], i);
		ck_assert_uint_eq(v.seq, 500 + i);
		ck_assert_uint_eq(v.len, lens[i]);
		ck_assert_uint_eq(v.producer, pbr_producer_id(p));
		ck_assert_uint_eq(v.flags, 0);
		if (lens[i])
			ck_assert_mem_eq(v.data, buf, lens[i]);
		ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	}
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EAGAIN);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_peek_empty)
{
	struct pbr_ring *r = ring8("pe", 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_view v;
	uint64_t t0, dt;

	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EAGAIN);
	t0 = tu_now_ns();
	ck_assert_int_eq(pbr_reader_peek(rd, 20 * TU_MS, &v), -ETIMEDOUT);
	dt = tu_now_ns() - t0;
	ck_assert_uint_ge(dt, 20 * TU_MS);
	ck_assert_uint_lt(dt, 1000 * TU_MS);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_peek_twice)
{
	struct pbr_ring *r = ring8("p2", 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_view a, b;

	tu_send_tag(p, 1);
	tu_send_tag(p, 2);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &a), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &b), 0);
	ck_assert_uint_eq(a.seq, b.seq);
	ck_assert_ptr_eq(a.data, b.data);
	ck_assert_uint_eq(tu_tag_of(&b), 1);
	ck_assert_int_eq(pbr_reader_release(rd, &b), 0);
	tu_recv_tag(rd, 0, 2);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_full_ring)
{
	struct pbr_ring *r = ring8("full", 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	uint64_t buf[2] = {8, ~8ull}, t0, dt;
	unsigned i;

	for (i = 0; i < 8; i++)
		tu_send_tag(p, i);
	/* The gating reader holds all 8 slots. */
	ck_assert_int_eq(pbr_producer_send(p, buf, 16, 0, 0), -EAGAIN);
	t0 = tu_now_ns();
	ck_assert_int_eq(pbr_producer_send(p, buf, 16, 0, 10 * TU_MS),
			 -ETIMEDOUT);
	dt = tu_now_ns() - t0;
	ck_assert_uint_ge(dt, 10 * TU_MS);
	ck_assert_uint_lt(dt, 1000 * TU_MS);
	/* One release makes exactly one slot of room. */
	tu_recv_tag(rd, 0, 0);
	tu_send_tag(p, 8);
	ck_assert_int_eq(pbr_producer_send(p, buf, 16, 0, 0), -EAGAIN);
	/* No gap: the sequence claimed by the failed tries was reused. */
	for (i = 1; i <= 8; i++)
		ck_assert_uint_eq(tu_recv_tag(rd, 0, i), i);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_close_reader_ungates)
{
	struct pbr_ring *r = ring8("ug", 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	uint64_t buf[2] = {8, ~8ull};
	unsigned i;

	for (i = 0; i < 8; i++)
		tu_send_tag(p, i);
	ck_assert_int_eq(pbr_producer_send(p, buf, 16, 0, 0), -EAGAIN);
	pbr_reader_close(rd);
	ck_assert_int_eq(pbr_producer_send(p, buf, 16, 0, 0), 0);
	pbr_producer_close(p);
	pbr_ring_detach(r);
}
END_TEST

/* --- reservations ------------------------------------------------------ */

START_TEST(test_msgsize)
{
	struct pbr_ring *r = ring8("ms", 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	uint8_t big[CAP + 1];
	struct pbr_slot s;
	struct pbr_view v;

	ck_assert_int_eq(pbr_producer_reserve(p, 0, &s), 0);
	ck_assert_uint_eq(s.cap, CAP);
	fill_payload(s.data, CAP, 3);
	ck_assert_int_eq(pbr_producer_commit(p, &s, CAP + 1), -EMSGSIZE);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EAGAIN);
	/* The reservation is still open: commit it within the capacity. */
	ck_assert_int_eq(pbr_producer_commit(p, &s, CAP), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_uint_eq(v.len, CAP);
	fill_payload(big, CAP, 3);
	ck_assert_mem_eq(v.data, big, CAP);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	/* send() refuses too and delivers nothing, leaving no reservation. */
	ck_assert_int_eq(pbr_producer_send(p, big, CAP + 1, 0, 0), -EMSGSIZE);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EAGAIN);
	tu_send_tag(p, 5);
	tu_recv_tag(rd, 0, 5);
	ck_assert_uint_eq(rstats(rd).delivered, 2);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_abort_skipped)
{
	struct pbr_ring *r = ring8("ab", 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader_stats st;
	struct pbr_slot s;
	struct pbr_view v;

	ck_assert_int_eq(pbr_producer_reserve(p, 0, &s), 0);
	ck_assert_uint_eq(s.seq, 0);
	ck_assert_int_eq(pbr_producer_abort(p, &s), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EAGAIN);
	tu_send_tag(p, 77);
	ck_assert_uint_eq(tu_recv_tag(rd, 0, 77), 1);
	st = rstats(rd);
	ck_assert_uint_eq(st.delivered, 1);
	ck_assert_uint_eq(st.abandoned, 0);
	ck_assert_uint_eq(st.lost, 0);
	ck_assert_uint_eq(st.bad, 0);
	ck_assert_uint_eq(st.cursor, 2);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_double_reserve)
{
	struct pbr_ring *r = ring8("dr", 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_slot s, s2;
	uint64_t tag[2] = {31, ~31ull};

	ck_assert_int_eq(pbr_producer_reserve(p, 0, &s), 0);
	ck_assert_int_eq(pbr_producer_reserve(p, 0, &s2), -EINPROGRESS);
	ck_assert_int_eq(pbr_producer_send(p, tag, 16, 0, 0), -EINPROGRESS);
	memcpy(s.data, tag, 16);
	ck_assert_int_eq(pbr_producer_commit(p, &s, 16), 0);
	ck_assert_uint_eq(tu_recv_tag(rd, 0, 31), 0);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_commit_wrong_slot)
{
	struct pbr_ring *r = ring8("cw", 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	uint64_t tag[2] = {9, ~9ull};
	struct pbr_slot s, fake;
	struct pbr_view v;

	memset(&fake, 0, sizeof(fake));
	ck_assert_int_eq(pbr_producer_commit(p, &fake, 0), -EINVAL);
	ck_assert_int_eq(pbr_producer_reserve(p, 0, &s), 0);
	fake = s;
	fake.seq = s.seq + 1;
	ck_assert_int_eq(pbr_producer_commit(p, &fake, 0), -EINVAL);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EAGAIN);
	memcpy(s.data, tag, 16);
	ck_assert_int_eq(pbr_producer_commit(p, &s, 16), 0);
	tu_recv_tag(rd, 0, 9);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_release_unpeeked)
{
	struct pbr_ring *r = ring8("ru", 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_view v, fake;

	tu_send_tag(p, 1);
	tu_send_tag(p, 2);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	/* Published but never peeked, and never published at all. */
	fake = v;
	fake.seq = v.seq + 1;
	ck_assert_int_eq(pbr_reader_release(rd, &fake), -EINVAL);
	fake.seq = v.seq + 5;
	ck_assert_int_eq(pbr_reader_release(rd, &fake), -EINVAL);
	ck_assert_uint_eq(rstats(rd).delivered, 0);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	tu_recv_tag(rd, 0, 2);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_metadata_roundtrip)
{
	struct pbr_ring *r = ring8("md", 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	uint8_t trace[16], span[8], zero[16] = {0};
	struct pbr_slot s;
	struct pbr_view v;
	unsigned i;

	for (i = 0; i < 16; i++)
		trace[i] = (uint8_t)(0x10 + i);
	for (i = 0; i < 8; i++)
		span[i] = (uint8_t)(0xE0 + i);
	memset(&s, 0xAB, sizeof(s));
	ck_assert_int_eq(pbr_producer_reserve(p, 0, &s), 0);
	fill_payload(s.data, 50, 11);
	s.flags = PBR_SLOT_F_CRC | PBR_SLOT_F_TRACE;
	s.crc32c = tu_crc32c(s.data, 50);
	s.timestamp_ns = 1234567890123ull;
	memcpy(s.trace_id, trace, 16);
	memcpy(s.span_id, span, 8);
	ck_assert_int_eq(pbr_producer_commit(p, &s, 50), 0);

	/* The next reservation starts clean whatever the caller left. */
	memset(&s, 0xAB, sizeof(s));
	ck_assert_int_eq(pbr_producer_reserve(p, 0, &s), 0);
	ck_assert_uint_eq(s.flags, 0);
	ck_assert_uint_eq(s.crc32c, 0);
	ck_assert_uint_eq(s.timestamp_ns, 0);
	ck_assert_mem_eq(s.trace_id, zero, 16);
	ck_assert_mem_eq(s.span_id, zero, 8);
	ck_assert_uint_eq(s.seq, 1);
	ck_assert_uint_eq(s.cap, CAP);
	ck_assert_int_eq(pbr_producer_commit(p, &s, 0), 0);

	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_uint_eq(v.flags, PBR_SLOT_F_CRC | PBR_SLOT_F_TRACE);
	ck_assert_uint_eq(v.crc32c, tu_crc32c(v.data, 50));
	ck_assert_uint_eq(v.timestamp_ns, 1234567890123ull);
	ck_assert_ptr_nonnull(v.trace_id);
	ck_assert_ptr_nonnull(v.span_id);
	ck_assert_mem_eq(v.trace_id, trace, 16);
	ck_assert_mem_eq(v.span_id, span, 8);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_uint_eq(v.seq, 1);
	ck_assert_uint_eq(v.flags, 0);
	ck_assert_uint_eq(v.timestamp_ns, 0);
	ck_assert_uint_eq(v.len, 0);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* --- corrupt slots ----------------------------------------------------- */

/* A slot whose header claims more payload than a slot can hold. */
static void corrupt_length(const char *name, uint64_t seq)
{
	struct tu_raw raw;

	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	tu_raw_slot(&raw, seq)->length = CAP + 1;
	tu_raw_unmap(&raw);
}

static struct pbr_ring *three_with_bad_middle(const char *name,
					      struct pbr_reader **rd)
{
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_producer *p;
	int i;

	*rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	p = tu_producer(r, 0);
	for (i = 0; i < 3; i++)
		tu_send_tag(p, i);
	pbr_producer_close(p);
	corrupt_length(name, 1);
	return r;
}

START_TEST(test_corrupt_slot)
{
	struct pbr_reader *rd;
	struct pbr_ring *r = three_with_bad_middle(tu_name("cs"), &rd);
	struct pbr_reader_stats st;
	struct pbr_view v;

	tu_recv_tag(rd, 0, 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EBADMSG);
	ck_assert_uint_eq(v.seq, 1);
	/* The next peek continues after it. */
	ck_assert_uint_eq(tu_recv_tag(rd, 0, 2), 2);
	st = rstats(rd);
	ck_assert_uint_eq(st.bad, 1);
	ck_assert_uint_eq(st.delivered, 2);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_corrupt_slot_batch)
{
	struct pbr_reader *rd;
	struct pbr_ring *r = three_with_bad_middle(tu_name("cb"), &rd);
	struct pbr_view vs[8];

	/* The batch stops before the corrupt slot ... */
	ck_assert_int_eq(pbr_reader_peek_batch(rd, vs, 8, 0), 1);
	ck_assert_uint_eq(vs[0].seq, 0);
	ck_assert_int_eq(pbr_reader_release(rd, &vs[0]), 0);
	/* ... the next one reports it ... */
	ck_assert_int_eq(pbr_reader_peek_batch(rd, vs, 8, 0), -EBADMSG);
	ck_assert_uint_eq(vs[0].seq, 1);
	/* ... and then goes on; the corrupt slot was counted once. */
	ck_assert_int_eq(pbr_reader_peek_batch(rd, vs, 8, 0), 1);
	ck_assert_uint_eq(vs[0].seq, 2);
	ck_assert_int_eq(pbr_reader_release(rd, &vs[0]), 0);
	ck_assert_uint_eq(rstats(rd).bad, 1);
	ck_assert_uint_eq(rstats(rd).delivered, 2);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* --- batches ----------------------------------------------------------- */

START_TEST(test_batch)
{
	struct pbr_ring *r = ring8("bt", 40);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_view vs[8], v;
	int i, n;

	for (i = 0; i < 5; i++)
		tu_send_tag(p, i);
	n = pbr_reader_peek_batch(rd, vs, 8, 0);
	ck_assert_int_eq(n, 5);
	for (i = 0; i < n; i++) {
		ck_assert_uint_eq(vs[i].seq, 40 + i);
		ck_assert_uint_eq(tu_tag_of(&vs[i]), i);
	}
	/* Releasing the last view releases the whole batch. */
	ck_assert_int_eq(pbr_reader_release(rd, &vs[4]), 0);
	ck_assert_uint_eq(rstats(rd).delivered, 5);
	ck_assert_uint_eq(rstats(rd).cursor, 45);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EAGAIN);

	for (i = 5; i < 10; i++)
		tu_send_tag(p, i);
	n = pbr_reader_peek_batch(rd, vs, 3, 0);
	ck_assert_int_eq(n, 3);
	ck_assert_uint_eq(vs[0].seq, 45);
	ck_assert_uint_eq(vs[2].seq, 47);
	ck_assert_int_eq(pbr_reader_release(rd, &vs[2]), 0);
	ck_assert_uint_eq(tu_recv_tag(rd, 0, 8), 48);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_batch_stops_at_skip)
{
	struct pbr_ring *r = ring8("bs", 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_view vs[8];
	struct pbr_slot s;

	tu_send_tag(p, 0);
	tu_send_tag(p, 1);
	ck_assert_int_eq(pbr_producer_reserve(p, 0, &s), 0);
	ck_assert_int_eq(pbr_producer_abort(p, &s), 0);
	tu_send_tag(p, 3);
	ck_assert_int_eq(pbr_reader_peek_batch(rd, vs, 8, 0), 2);
	ck_assert_int_eq(pbr_reader_release(rd, &vs[1]), 0);
	ck_assert_uint_eq(tu_recv_tag(rd, 0, 3), 3);
	ck_assert_uint_eq(rstats(rd).delivered, 3);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_batch_empty)
{
	struct pbr_ring *r = ring8("be", 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_view vs[4];
	uint64_t t0;

	ck_assert_int_eq(pbr_reader_peek_batch(rd, vs, 4, 0), -EAGAIN);
	t0 = tu_now_ns();
	ck_assert_int_eq(pbr_reader_peek_batch(rd, vs, 4, 20 * TU_MS),
			 -ETIMEDOUT);
	ck_assert_uint_ge(tu_now_ns() - t0, 20 * TU_MS);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* --- lossy readers ----------------------------------------------------- */

START_TEST(test_lossy_lapped)
{
	struct pbr_ring *r = ring8("ll", 0);
	struct pbr_reader *rd =
		tu_reader(r, PBR_READER_LOSSY, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	uint64_t delivered = 0, prev = 0;
	struct pbr_reader_stats st;
	struct pbr_view v;
	int i, rc;

	/* No gating reader: the producer never waits. */
	for (i = 0; i < 100; i++)
		tu_send_tag(p, i);
	while ((rc = pbr_reader_peek(rd, 0, &v)) == 0) {
		ck_assert_uint_eq(tu_tag_of(&v), v.seq);
		if (delivered)
			ck_assert_uint_gt(v.seq, prev);
		prev = v.seq;
		ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
		delivered++;
	}
	ck_assert_int_eq(rc, -EAGAIN);
	st = rstats(rd);
	ck_assert_uint_ge(delivered, 1);
	ck_assert_uint_le(delivered, 8);
	ck_assert_uint_eq(prev, 99);
	ck_assert_uint_eq(st.delivered, delivered);
	ck_assert_uint_eq(st.delivered + st.lost, 100);
	ck_assert_uint_eq(st.cursor, 100);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_lossy_stale)
{
	struct pbr_ring *r = ring8("ls", 0);
	struct pbr_reader *rd =
		tu_reader(r, PBR_READER_LOSSY, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader_stats st;
	struct pbr_view v;
	int i, rc;

	tu_send_tag(p, 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_uint_eq(v.seq, 0);
	/* Sequence 8 reuses the slot the view points into. */
	for (i = 1; i <= 8; i++)
		tu_send_tag(p, i);
	ck_assert_int_eq(pbr_reader_release(rd, &v), -ESTALE);
	st = rstats(rd);
	ck_assert_uint_eq(st.delivered, 0);
	ck_assert_uint_ge(st.lost, 1);
	while ((rc = pbr_reader_peek(rd, 0, &v)) == 0) {
		ck_assert_uint_eq(tu_tag_of(&v), v.seq);
		ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	}
	ck_assert_int_eq(rc, -EAGAIN);
	st = rstats(rd);
	ck_assert_uint_eq(st.delivered + st.lost, 9);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* --- start positions and sequence numbers ------------------------------ */

START_TEST(test_start_latest)
{
	struct pbr_ring *r = ring8("sl", 10);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader *rd;
	struct pbr_view v;

	tu_send_tag(p, 0);
	tu_send_tag(p, 1);
	tu_send_tag(p, 2);
	rd = tu_reader(r, 0, PBR_START_LATEST, 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EAGAIN);
	ck_assert_uint_eq(rstats(rd).cursor, 13);
	tu_send_tag(p, 3);
	ck_assert_uint_eq(tu_recv_tag(rd, 0, 3), 13);
	ck_assert_uint_eq(rstats(rd).lost, 0);
	pbr_reader_close(rd);
	pbr_producer_close(p);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_start_oldest)
{
	struct pbr_ring *r = ring8("so", 10);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader *rd;
	int i;

	for (i = 0; i < 3; i++)
		tu_send_tag(p, i);
	rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	for (i = 0; i < 3; i++)
		ck_assert_uint_eq(tu_recv_tag(rd, 0, i), 10 + i);
	pbr_reader_close(rd);
	pbr_producer_close(p);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_start_oldest_wrapped_ring)
{
	struct pbr_ring *r = ring8("sw", 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader *rd;
	struct pbr_view v;
	int i;

	/* 20 messages through 8 slots: 12..19 are still there. */
	for (i = 0; i < 20; i++)
		tu_send_tag(p, i);
	rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	for (i = 12; i < 20; i++)
		ck_assert_uint_eq(tu_recv_tag(rd, 0, i), i);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EAGAIN);
	ck_assert_uint_eq(rstats(rd).lost, 0);
	ck_assert_uint_eq(rstats(rd).delivered, 8);
	pbr_reader_close(rd);
	pbr_producer_close(p);
	pbr_ring_detach(r);
}
END_TEST

/* A producer whose cached limit predates the join overwrites backlog that
 * a gating reader joining at the oldest has not read: that backlog is
 * missed, never lost, the intact rest is delivered, and views of it are
 * flagged unstable (FORMAT.md §9.1). */
START_TEST(test_start_oldest_backlog_missed)
{
	struct pbr_ring *r = ring8("sm", 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader_stats st;
	struct pbr_reader *rd;
	struct pbr_view v;
	int i;

	/* 20 through 8 slots with no reader: the producer's cached limit
	 * is 24, so 20..23 go out without a rescan. */
	for (i = 0; i < 20; i++)
		tu_send_tag(p, i);
	rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_uint_eq(v.seq, 12);
	ck_assert_uint_eq(v.vflags, PBR_VIEW_UNSTABLE);
	for (i = 20; i < 24; i++)
		tu_send_tag(p, i); /* overwrite 12..15 */
	ck_assert_int_eq(pbr_reader_release(rd, &v), -ESTALE);
	for (i = 16; i < 24; i++) {
		ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
		ck_assert_uint_eq(v.seq, i);
		ck_assert_uint_eq(v.vflags, i < 20 ? PBR_VIEW_UNSTABLE : 0);
		ck_assert_uint_eq(tu_tag_of(&v), i);
		ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	}
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EAGAIN);
	st = rstats(rd);
	ck_assert_uint_eq(st.delivered, 8);
	ck_assert_uint_eq(st.missed, 4);
	ck_assert_uint_eq(st.lost, 0);
	/* From the join on, the reader gates: 24..31 fit, 32 does not. */
	for (i = 24; i < 32; i++)
		tu_send_tag(p, i);
	ck_assert_int_eq(pbr_producer_send(p, &i, sizeof(i), 0, 0), -EAGAIN);
	pbr_reader_close(rd);
	pbr_producer_close(p);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_seq_wrap)
{
	const uint64_t base = UINT64_MAX - 5;
	struct pbr_ring *r = ring8("wrap", base);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	uint64_t buf[2] = {0, 0}, next_send = 0, next_recv = 0;
	struct pbr_ring_stats rs;

	/* Fill the ring, check it is full, drain it: 8 + 8 + 4 messages,
	 * the first batch crossing 2^64. */
	while (next_send < 20) {
		uint64_t n = 20 - next_send < 8 ? 20 - next_send : 8;
		uint64_t k;

		/* cppcheck-suppress knownConditionTrueFalse ; 2.10 takes n for
		 * 0 */
		for (k = 0; k < n; k++)
			tu_send_tag(p, next_send++);
		/* cppcheck-suppress knownConditionTrueFalse ; as above */
		if (n == 8)
			ck_assert_int_eq(pbr_producer_send(p, buf, 16, 0, 0),
					 -EAGAIN);
		/* cppcheck-suppress knownConditionTrueFalse ; as above */
		for (k = 0; k < n; k++, next_recv++)
			ck_assert_uint_eq(tu_recv_tag(rd, 0, next_recv),
					  base + next_recv);
	}
	ck_assert_uint_eq(rstats(rd).cursor, base + 20);
	ck_assert_uint_eq(rstats(rd).delivered, 20);
	pbr_ring_stats(r, &rs);
	ck_assert_uint_eq(rs.claimed, base + 20);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* --- participants and limits ------------------------------------------- */

START_TEST(test_single_producer)
{
	struct pbr_ring *r =
		tu_create(tu_name("sp"), 8, 256, PBR_CREATE_SINGLE_PRODUCER, 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0), *p2 = NULL;
	struct pbr_ring_info info;

	pbr_ring_info(r, &info);
	ck_assert_uint_eq(info.ring_flags & PBR_RING_SINGLE_PRODUCER,
			  PBR_RING_SINGLE_PRODUCER);
	ck_assert_int_eq(pbr_producer_open(r, NULL, &p2), -EBUSY);
	ck_assert_ptr_null(p2);
	tu_send_tag(p, 1);
	pbr_producer_close(p);
	p = tu_producer(r, 0);
	tu_send_tag(p, 2);
	tu_recv_tag(rd, 0, 1);
	tu_recv_tag(rd, 0, 2);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_producer_ids)
{
	struct pbr_create_opts o = {
		.slot_count = 8, .slot_size = 256, .max_producers = 3};
	struct pbr_producer *p[3], *extra = NULL;
	struct pbr_ring *r = NULL;
	struct pbr_reader *rd;
	int i;

	ck_assert_int_eq(pbr_ring_create(tu_name("ids"), &o, &r), 0);
	rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	for (i = 0; i < 3; i++) {
		p[i] = tu_producer(r, 0);
		ck_assert_uint_lt(pbr_producer_id(p[i]), 3);
	}
	ck_assert_uint_ne(pbr_producer_id(p[0]), pbr_producer_id(p[1]));
	ck_assert_uint_ne(pbr_producer_id(p[0]), pbr_producer_id(p[2]));
	ck_assert_uint_ne(pbr_producer_id(p[1]), pbr_producer_id(p[2]));
	ck_assert_int_eq(pbr_producer_open(r, NULL, &extra), -EBUSY);
	/* Each view names the producer that wrote it. */
	for (i = 0; i < 3; i++)
		tu_send_tag(p[i], i);
	for (i = 0; i < 3; i++) {
		struct pbr_view v;

		ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
		ck_assert_uint_eq(v.producer, pbr_producer_id(p[i]));
		ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	}
	pbr_producer_close(p[1]);
	p[1] = tu_producer(r, 0);
	for (i = 0; i < 3; i++)
		pbr_producer_close(p[i]);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_reader_limit)
{
	struct pbr_create_opts o = {
		.slot_count = 8, .slot_size = 256, .max_readers = 2};
	struct pbr_reader *a, *b, *c = NULL;
	struct pbr_ring *r = NULL;

	ck_assert_int_eq(pbr_ring_create(tu_name("rl"), &o, &r), 0);
	a = tu_reader(r, 0, PBR_START_OLDEST, 0);
	b = tu_reader(r, PBR_READER_LOSSY, PBR_START_OLDEST, 0);
	ck_assert_uint_lt(pbr_reader_index(a), 2);
	ck_assert_uint_lt(pbr_reader_index(b), 2);
	ck_assert_uint_ne(pbr_reader_index(a), pbr_reader_index(b));
	ck_assert_int_eq(pbr_reader_open(r, NULL, &c), -EBUSY);
	ck_assert_ptr_null(c);
	pbr_reader_close(a);
	a = tu_reader(r, 0, PBR_START_OLDEST, 0);
	pbr_reader_close(a);
	pbr_reader_close(b);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_reader_stats)
{
	struct pbr_ring *r = ring8("rs", 1000);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader_stats st = rstats(rd);
	int i;

	ck_assert_uint_eq(st.cursor, 1000);
	ck_assert_uint_eq(st.delivered, 0);
	for (i = 0; i < 5; i++)
		tu_send_tag(p, i);
	for (i = 0; i < 5; i++)
		tu_recv_tag(rd, 0, i);
	st = rstats(rd);
	ck_assert_uint_eq(st.cursor, 1005);
	ck_assert_uint_eq(st.delivered, 5);
	ck_assert_uint_eq(st.lost, 0);
	ck_assert_uint_eq(st.abandoned, 0);
	ck_assert_uint_eq(st.bad, 0);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* The producer's statistics in its entry (format 1.1), as every process
 * reads them (pbr_ring_participants): payload bytes of what it committed,
 * its aborts, and the time it waited for space, zero at join. */
START_TEST(test_producer_statistics)
{
	struct pbr_ring *r = tu_create(tu_name("ps"), 2, 256, 0, 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, PBR_WAIT_BLOCK);
	struct pbr_participant pt[4];
	struct pbr_slot s;
	uint64_t t0;
	int n;

	n = pbr_ring_participants(r, pt, 4);
	ck_assert_int_eq(n, 2);
	ck_assert(!pt[0].is_reader);
	ck_assert_uint_eq(pt[0].bytes + pt[0].aborts + pt[0].blocked_ns, 0);
	ck_assert_int_eq(pbr_producer_send(p, "0123456789", 10, 0, 0), 0);
	ck_assert_int_eq(pbr_producer_reserve(p, 0, &s), 0);
	ck_assert_int_eq(pbr_producer_abort(p, &s), 0);
	/* Both slots held by the gating reader: this one waits 50 ms. */
	t0 = tu_now_ns();
	ck_assert_int_eq(pbr_producer_send(p, "x", 1, 0, 50000000), -ETIMEDOUT);
	t0 = tu_now_ns() - t0;
	n = pbr_ring_participants(r, pt, 4);
	ck_assert_int_eq(n, 2);
	ck_assert_uint_eq(pt[0].position, 2); /* committed, the abort too */
	ck_assert_uint_eq(pt[0].bytes, 10);
	ck_assert_uint_eq(pt[0].aborts, 1);
	ck_assert_uint_ge(pt[0].blocked_ns, 45000000);
	ck_assert_uint_le(pt[0].blocked_ns, t0);
	ck_assert_uint_eq(pt[1].bytes + pt[1].aborts + pt[1].blocked_ns, 0);
	/* A new producer in the entry starts from zero. */
	ck_assert_int_eq(pbr_producer_close(p), 0);
	p = tu_producer(r, 0);
	n = pbr_ring_participants(r, pt, 4);
	ck_assert_uint_eq(pt[0].bytes + pt[0].aborts + pt[0].blocked_ns, 0);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_two_producers_interleave)
{
	struct pbr_ring *r = ring8("2p", 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *a = tu_producer(r, 0), *b = tu_producer(r, 0);
	struct pbr_slot sa, sb;
	struct pbr_view v;

	/* b claims after a but commits first: delivery stays in seq order. */
	ck_assert_int_eq(pbr_producer_reserve(a, 0, &sa), 0);
	ck_assert_int_eq(pbr_producer_reserve(b, 0, &sb), 0);
	ck_assert_uint_eq(sb.seq, sa.seq + 1);
	ck_assert_int_eq(pbr_producer_commit(b, &sb, 3), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EAGAIN);
	ck_assert_int_eq(pbr_producer_commit(a, &sa, 2), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_uint_eq(v.seq, sa.seq);
	ck_assert_uint_eq(v.len, 2);
	ck_assert_uint_eq(v.producer, pbr_producer_id(a));
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_uint_eq(v.seq, sb.seq);
	ck_assert_uint_eq(v.producer, pbr_producer_id(b));
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	pbr_producer_close(a);
	pbr_producer_close(b);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* --- waiting (threads) ------------------------------------------------- */

struct sender {
	struct pbr_producer *p;
	unsigned count, delay_ms;
	int err; /* first failure, reported by the main thread */
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	unsigned i;

	tu_sleep_ms(s->delay_ms);
	for (i = 0; i < s->count && !s->err; i++) {
		uint64_t buf[2] = {i, ~(uint64_t)i};

		s->err = pbr_producer_send(s->p, buf, 16, 0, 2 * TU_SEC);
		if (i % 16 == 15)
			tu_sleep_ms(1);
	}
	return NULL;
}

static const enum pbr_wait modes[] = {PBR_WAIT_BLOCK, PBR_WAIT_SPIN,
				      PBR_WAIT_YIELD};

START_TEST(test_wait_modes)
{
	enum pbr_wait w = modes[_i];
	struct pbr_ring *r = ring8("wm", 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, w);
	struct sender s = {
		.p = tu_producer(r, w), .count = 200, .delay_ms = 20};
	pthread_t th;
	unsigned i;

	/* 200 messages through 8 slots: both sides have to wait. */
	ck_assert_int_eq(pthread_create(&th, NULL, sender_main, &s), 0);
	for (i = 0; i < s.count; i++)
		ck_assert_uint_eq(tu_recv_tag(rd, 2 * TU_SEC, i), i);
	pthread_join(th, NULL);
	ck_assert_int_eq(s.err, 0);
	pbr_producer_close(s.p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_wait_forever)
{
	struct pbr_ring *r = ring8("wf", 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct sender s = {.p = tu_producer(r, 0), .count = 1, .delay_ms = 50};
	uint64_t t0 = tu_now_ns();
	pthread_t th;

	ck_assert_int_eq(pthread_create(&th, NULL, sender_main, &s), 0);
	tu_recv_tag(rd, -1, 0);
	ck_assert_uint_ge(tu_now_ns() - t0, 40 * TU_MS);
	pthread_join(th, NULL);
	ck_assert_int_eq(s.err, 0);
	pbr_producer_close(s.p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

struct releaser {
	struct pbr_reader *rd;
	unsigned delay_ms;
	int err;
};

static void *releaser_main(void *arg)
{
	struct releaser *rl = arg;
	struct pbr_view v;

	tu_sleep_ms(rl->delay_ms);
	rl->err = pbr_reader_peek(rl->rd, 0, &v);
	if (!rl->err)
		rl->err = pbr_reader_release(rl->rd, &v);
	return NULL;
}

START_TEST(test_reserve_woken_by_release)
{
	struct pbr_ring *r = ring8("wr", 0);
	struct releaser rl = {.rd = tu_reader(r, 0, PBR_START_OLDEST, 0),
			      .delay_ms = 50};
	struct pbr_producer *p = tu_producer(r, PBR_WAIT_BLOCK);
	struct pbr_slot s;
	pthread_t th;
	uint64_t t0, dt;
	int i;

	for (i = 0; i < 8; i++)
		tu_send_tag(p, i);
	ck_assert_int_eq(pthread_create(&th, NULL, releaser_main, &rl), 0);
	t0 = tu_now_ns();
	ck_assert_int_eq(pbr_producer_reserve(p, 2 * TU_SEC, &s), 0);
	dt = tu_now_ns() - t0;
	pthread_join(th, NULL);
	ck_assert_int_eq(rl.err, 0);
	ck_assert_uint_eq(s.seq, 8);
	ck_assert_uint_ge(dt, 30 * TU_MS);
	ck_assert_uint_lt(dt, 1500 * TU_MS);
	ck_assert_int_eq(pbr_producer_commit(p, &s, 0), 0);
	pbr_producer_close(p);
	pbr_reader_close(rl.rd);
	pbr_ring_detach(r);
}
END_TEST

/* --- reader metrics (format 1.2) --------------------------------------- */

/* Reader @rd's row of the participant table, as any process reads it. */
static struct pbr_participant reader_row(struct pbr_ring *r,
					 const struct pbr_reader *rd)
{
	struct pbr_participant pt[16];
	int n = pbr_ring_participants(r, pt, 16), i;

	for (i = 0; i < n && i < 16; i++)
		if (pt[i].is_reader && pt[i].index == pbr_reader_index(rd))
			return pt[i];
	ck_abort_msg("reader %u is not in the table", pbr_reader_index(rd));
	return pt[0];
}

static uint64_t hist_count(const struct pbr_participant *p)
{
	uint64_t n = 0;
	unsigned b;

	for (b = 0; b < PBR_LATENCY_BUCKETS; b++)
		n += p->latency[b];
	return n;
}

/* How many latencies reader @rd has recorded, as the table shows it. */
static uint64_t observed(struct pbr_ring *r, const struct pbr_reader *rd)
{
	struct pbr_participant pt = reader_row(r, rd);

	return hist_count(&pt);
}

/* Commit a 16-byte tagged message (tu_tag_of) stamped @ts (0: none),
 * with its CRC32C if @crc. */
static void send_stamped(struct pbr_producer *p, uint64_t tag, uint64_t ts,
			 int crc)
{
	uint64_t buf[2] = {tag, ~tag};
	struct pbr_slot s;

	ck_assert_int_eq(pbr_producer_reserve(p, 0, &s), 0);
	memcpy(s.data, buf, sizeof(buf));
	s.timestamp_ns = ts;
	if (crc) {
		s.flags |= PBR_SLOT_F_CRC;
		s.crc32c = tu_crc32c(buf, sizeof(buf));
	}
	ck_assert_int_eq(pbr_producer_commit(p, &s, sizeof(buf)), 0);
}

/* Flip a payload byte of committed sequence @seq. */
static void corrupt_payload(const char *name, uint64_t seq)
{
	struct tu_raw raw;
	struct pbr_layout_slot *h;

	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	h = tu_raw_slot(&raw, seq);
	ck_assert_uint_eq(h->commit, PBR_COMMIT_DONE(seq));
	/* cppcheck-suppress unreadVariable ; h maps the ring: the reader reads
	 * it */
	((uint8_t *)h)[PBR_SLOT_HDR_SIZE + 3] ^= 0xFF;
	tu_raw_unmap(&raw);
}

/* FORMAT.md §5.5: each message's commit-to-receive latency lands in the
 * bucket of its age, and in the sum. The age is known within what the
 * test itself measured around the send and the peek: [age, age + dt]. */
static const uint64_t ages[] = {
	3 * 1000,	   /* 3 us: (2, 5] us */
	25 * TU_MS,	   /* (20, 50] ms */
	300 * TU_MS,	   /* (200, 500] ms */
	3 * TU_SEC,	   /* > 1 s */
	750 * 1000 * 1000, /* (500 ms, 1 s] */
};

START_TEST(test_latency_buckets)
{
	struct pbr_ring *r = tu_create(tu_name("lb"), 16, 256, 0, 0);
	struct pbr_reader *rd =
		tu_reader(r, PBR_READER_LATENCY, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_participant before, after;
	uint64_t t0, t1, lo, hi, dsum;
	struct pbr_view v;
	unsigned i, b, hit;

	before = reader_row(r, rd);
	ck_assert_uint_eq(before.has_latency, 1);
	ck_assert_uint_eq(hist_count(&before), 0);
	ck_assert_uint_eq(before.latency_sum_ns, 0);
	for (i = 0; i < sizeof(ages) / sizeof(ages[0]); i++) {
		before = reader_row(r, rd);
		t0 = pbr_clock_ns();
		send_stamped(p, i, t0 - ages[i], 0);
		ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
		t1 = pbr_clock_ns();
		ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
		after = reader_row(r, rd);
		lo = ages[i];
		hi = ages[i] + (t1 - t0);
		dsum = after.latency_sum_ns - before.latency_sum_ns;
		ck_assert_msg(dsum >= lo && dsum <= hi,
			      "age %llu: sum grew by %llu, not in [%llu, %llu]",
			      (unsigned long long)ages[i],
			      (unsigned long long)dsum, (unsigned long long)lo,
			      (unsigned long long)hi);
		ck_assert_uint_eq(hist_count(&after), hist_count(&before) + 1);
		hit = PBR_LATENCY_BUCKETS;
		for (b = 0; b < PBR_LATENCY_BUCKETS; b++)
			if (after.latency[b] != before.latency[b])
				hit = b;
		ck_assert_msg(hit >= tu_latency_bucket(lo) &&
				      hit <= tu_latency_bucket(hi),
			      "age %llu went to bucket %u, not %u..%u",
			      (unsigned long long)ages[i], hit,
			      tu_latency_bucket(lo), tu_latency_bucket(hi));
	}
	/* A timestamp after now observes 0: bucket 0, nothing to the sum. */
	before = reader_row(r, rd);
	send_stamped(p, 10, pbr_clock_ns() + 10 * TU_SEC, 0);
	ck_assert_uint_eq(tu_recv_tag(rd, 0, 10), 5);
	after = reader_row(r, rd);
	ck_assert_uint_eq(after.latency[0], before.latency[0] + 1);
	ck_assert_uint_eq(after.latency_sum_ns, before.latency_sum_ns);
	/* No timestamp (0): not observed at all. */
	send_stamped(p, 11, 0, 0);
	ck_assert_uint_eq(tu_recv_tag(rd, 0, 11), 6);
	before = after;
	after = reader_row(r, rd);
	ck_assert_mem_eq(after.latency, before.latency, sizeof(after.latency));
	ck_assert_uint_eq(after.latency_sum_ns, before.latency_sum_ns);
	ck_assert_uint_eq(hist_count(&after), 6);
	ck_assert_uint_eq(after.delivered, 7);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* A message is observed when a peek first returns it: peeking it again,
 * alone or in a batch, does not count it twice. */
START_TEST(test_latency_observed_once)
{
	struct pbr_ring *r = tu_create(tu_name("lo"), 16, 256, 0, 0);
	struct pbr_reader *rd =
		tu_reader(r, PBR_READER_LATENCY, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_participant pt;
	struct pbr_view v, vs[8];
	uint64_t t0 = pbr_clock_ns(), t1;
	int i;

	for (i = 0; i < 3; i++)
		send_stamped(p, i, t0 - 25 * TU_MS, 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_uint_eq(observed(r, rd), 1);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_uint_eq(v.seq, 0);
	ck_assert_uint_eq(observed(r, rd), 1);
	/* the batch holds the one seen and two new ones */
	ck_assert_int_eq(pbr_reader_peek_batch(rd, vs, 8, 0), 3);
	ck_assert_uint_eq(observed(r, rd), 3);
	ck_assert_int_eq(pbr_reader_peek_batch(rd, vs, 8, 0), 3);
	ck_assert_int_eq(pbr_reader_peek_batch(rd, vs, 1, 0), 1);
	ck_assert_uint_eq(observed(r, rd), 3);
	/* part of it released, one more sent: only the new one counts */
	ck_assert_int_eq(pbr_reader_release(rd, &vs[0]), 0);
	send_stamped(p, 3, t0 - 25 * TU_MS, 0);
	ck_assert_int_eq(pbr_reader_peek_batch(rd, vs, 8, 0), 3);
	ck_assert_uint_eq(vs[0].seq, 1);
	t1 = pbr_clock_ns();
	pt = reader_row(r, rd);
	ck_assert_uint_eq(hist_count(&pt), 4);
	ck_assert_uint_eq(tu_latency_from(pt.latency, 17), 4); /* >= 20 ms */
	ck_assert_uint_ge(pt.latency_sum_ns, 4 * 25 * TU_MS);
	ck_assert_uint_le(pt.latency_sum_ns, 4 * (25 * TU_MS + (t1 - t0)));
	ck_assert_int_eq(pbr_reader_release(rd, &vs[2]), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EAGAIN);
	pt = reader_row(r, rd);
	ck_assert_uint_eq(hist_count(&pt), 4);
	ck_assert_uint_eq(pt.delivered, 4);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* Without PBR_READER_LATENCY a reader records nothing: on a 1.2 ring its
 * block is still its own (has_latency 1), with every count 0. A lossy
 * reader records like a gating one. Unknown flags are still refused. */
START_TEST(test_latency_not_asked)
{
	struct pbr_ring *r = tu_create(tu_name("ln"), 16, 256, 0, 0);
	struct pbr_reader *plain = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_reader *timed =
		tu_reader(r, PBR_READER_LATENCY, PBR_START_OLDEST, 0);
	struct pbr_reader *lossy = tu_reader(
		r, PBR_READER_LOSSY | PBR_READER_LATENCY, PBR_START_OLDEST, 0);
	struct pbr_reader_opts bad = {.flags = PBR_READER_TAP << 1};
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader *rd = (struct pbr_reader *)1;
	struct pbr_participant pt;
	int i;

	ck_assert_int_eq(pbr_reader_open(r, &bad, &rd), -EINVAL);
	ck_assert_ptr_null(rd);
	for (i = 0; i < 3; i++)
		send_stamped(p, i, pbr_clock_ns() - TU_MS, 0);
	for (i = 0; i < 3; i++) {
		tu_recv_tag(plain, 0, i);
		tu_recv_tag(timed, 0, i);
		tu_recv_tag(lossy, 0, i);
	}
	pt = reader_row(r, plain);
	ck_assert_uint_eq(pt.delivered, 3);
	ck_assert_uint_eq(pt.has_latency, 0); /* its block is stamped 0 */
	ck_assert_uint_eq(hist_count(&pt), 0);
	ck_assert_uint_eq(pt.latency_sum_ns, 0);
	pt = reader_row(r, timed);
	ck_assert_uint_eq(pt.has_latency, 1);
	ck_assert_uint_eq(hist_count(&pt), 3);
	ck_assert_uint_ge(pt.latency_sum_ns, 3 * TU_MS);
	ck_assert_uint_eq(pt.flags, PBR_READER_GATING);
	pt = reader_row(r, lossy);
	ck_assert_uint_eq(hist_count(&pt), 3);
	ck_assert_uint_eq(pt.flags, PBR_READER_LOSSY);
	pbr_producer_close(p);
	pbr_reader_close(plain);
	pbr_reader_close(timed);
	pbr_reader_close(lossy);
	pbr_ring_detach(r);
}
END_TEST

/* Each sample adds at most 2^40 ns to the sum (FORMAT.md §5.5). The
 * oldest timestamp there is (1) is only that old once CLOCK_MONOTONIC
 * passed 2^40 ns, about 18 minutes after boot. */
START_TEST(test_latency_cap)
{
	struct pbr_ring *r = tu_create(tu_name("lc"), 16, 256, 0, 0);
	struct pbr_reader *rd =
		tu_reader(r, PBR_READER_LATENCY, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_participant pt;

	if (pbr_clock_ns() < PBR_LATENCY_CAP_NS + TU_SEC) {
		fprintf(stderr, "test_latency_cap: the clock is too young "
				"(booted less than 19 minutes ago): not run\n");
	} else {
		send_stamped(p, 0, 1, 0);
		send_stamped(p, 1, 1, 0);
		tu_recv_tag(rd, 0, 0);
		pt = reader_row(r, rd);
		ck_assert_uint_eq(pt.latency[PBR_LATENCY_BUCKETS - 1], 1);
		ck_assert_uint_eq(pt.latency_sum_ns, PBR_LATENCY_CAP_NS);
		tu_recv_tag(rd, 0, 1);
		pt = reader_row(r, rd);
		ck_assert_uint_eq(pt.latency[PBR_LATENCY_BUCKETS - 1], 2);
		ck_assert_uint_eq(pt.latency_sum_ns, 2 * PBR_LATENCY_CAP_NS);
		ck_assert_uint_eq(hist_count(&pt), 2);
	}
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* A reader that takes an entry starts from a zeroed block stamped with
 * its own joined_ns, and zeroed counters, whatever the last owner left
 * (FORMAT.md §5.4, §5.5). */
START_TEST(test_latency_new_owner_zeroed)
{
	const char *name = tu_name("lz");
	struct pbr_create_opts o = {
		.slot_count = 16, .slot_size = 256, .max_readers = 1};
	struct pbr_layout_metrics *m;
	struct pbr_layout_reader *e;
	struct pbr_ring *r = NULL;
	struct pbr_participant pt;
	struct pbr_producer *p;
	struct pbr_reader *rd;
	struct tu_raw raw;
	uint64_t joined;
	struct pbr_view v;
	int i;

	ck_assert_int_eq(pbr_ring_create(name, &o, &r), 0);
	p = tu_producer(r, 0);
	rd = tu_reader(r, PBR_READER_LATENCY, PBR_START_OLDEST, 0);
	for (i = 0; i < 2; i++)
		send_stamped(p, i, pbr_clock_ns() - 25 * TU_MS, 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_int_eq(pbr_reader_reject(rd, &v), 0);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	tu_recv_tag(rd, 0, 1);
	pt = reader_row(r, rd);
	ck_assert_uint_eq(hist_count(&pt), 2);
	ck_assert_uint_eq(pt.decode_errors, 1);
	pbr_reader_close(rd);

	/* The leaver's block stays as it was (its entry is FREE, so nobody
	 * reads it); dirty its reserved bytes too. */
	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	m = tu_raw_metrics(&raw, 0);
	e = tu_raw_reader(&raw, 0);
	ck_assert_uint_eq(tu_latency_from(m->latency, 0), 2);
	joined = m->joined_ns;
	memset(m->reserved, 0xEE, sizeof(m->reserved));
	tu_sleep_ms(2); /* a later joined_ns, even on a coarse clock */

	rd = tu_reader(r, 0, PBR_START_LATEST, 0); /* without the option */
	ck_assert_uint_eq(pbr_reader_index(rd), 0);
	pt = reader_row(r, rd);
	ck_assert_uint_eq(pt.has_latency, 0);
	ck_assert_uint_eq(hist_count(&pt), 0);
	ck_assert_uint_eq(pt.latency_sum_ns, 0);
	ck_assert_uint_eq(pt.decode_errors + pt.crc_errors + pt.bad, 0);
	ck_assert_uint_ne(m->joined_ns, joined);
	ck_assert_uint_eq(m->joined_ns, 0); /* no latency: stamped 0 */
	for (i = 0; i < (int)sizeof(m->reserved); i++)
		ck_assert_uint_eq(m->reserved[i], 0);
	pbr_reader_close(rd);

	/* The next owner, with the option, counts from 0. */
	rd = tu_reader(r, PBR_READER_LATENCY, PBR_START_LATEST, 0);
	send_stamped(p, 2, pbr_clock_ns() - 25 * TU_MS, 0);
	tu_recv_tag(rd, 0, 2);
	pt = reader_row(r, rd);
	ck_assert_uint_eq(hist_count(&pt), 1);
	ck_assert_uint_eq(tu_latency_from(pt.latency, 17), 1);
	ck_assert_uint_ge(pt.latency_sum_ns, 25 * TU_MS);
	ck_assert_uint_eq(m->joined_ns, e->joined_ns); /* stamped: ours */
	tu_raw_unmap(&raw);
	pbr_reader_close(rd);
	pbr_producer_close(p);
	pbr_ring_detach(r);
}
END_TEST

/* pbr_reader_verify: a CRC mismatch is -EBADMSG and counted once in
 * crc_errors, in the reader's stats and in its entry; an intact message
 * is 0 and counts nothing; a released view is not ours any more. */
START_TEST(test_verify_counts_crc_error)
{
	const char *name = tu_name("vc");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader_stats st;
	struct pbr_participant pt;
	struct pbr_view v;
	int i;

	for (i = 0; i < 3; i++)
		send_stamped(p, i, 0, 1);
	corrupt_payload(name, 1);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_int_eq(pbr_reader_verify(rd, &v), 0);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_uint_eq(v.seq, 1);
	/* the plain check counts nothing */
	ck_assert_int_eq(pbr_view_verify(&v), -EBADMSG);
	ck_assert_uint_eq(rstats(rd).crc_errors, 0);
	ck_assert_int_eq(pbr_reader_verify(rd, &v), -EBADMSG);
	st = rstats(rd);
	ck_assert_uint_eq(st.crc_errors, 1);
	ck_assert_uint_eq(st.decode_errors, 0);
	ck_assert_uint_eq(st.bad, 0);
	pt = reader_row(r, rd);
	ck_assert_uint_eq(pt.crc_errors, 1);
	ck_assert_uint_eq(pt.decode_errors, 0);
	ck_assert_uint_eq(pt.bad, 0);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	/* released: -EINVAL, not counted again */
	ck_assert_int_eq(pbr_reader_verify(rd, &v), -EINVAL);
	ck_assert_int_eq(pbr_reader_verify(rd, NULL), -EINVAL);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_int_eq(pbr_reader_verify(rd, &v), 0);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	st = rstats(rd);
	ck_assert_uint_eq(st.crc_errors, 1);
	ck_assert_uint_eq(st.delivered, 3);
	pt = reader_row(r, rd);
	ck_assert_uint_eq(pt.crc_errors, 1);
	ck_assert_uint_eq(pt.delivered, 3);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* pbr_reader_reject counts a message its application could not decode
 * in decode_errors, while the view is the reader's. */
START_TEST(test_reject_counts_decode_error)
{
	struct pbr_ring *r = ring8("rj", 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_participant pt;
	struct pbr_view v, later;

	send_stamped(p, 0, 0, 1);
	send_stamped(p, 1, 0, 1);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	/* a view of a sequence not peeked is not ours */
	later = v;
	later.seq = v.seq + 1;
	ck_assert_int_eq(pbr_reader_reject(rd, &later), -EINVAL);
	ck_assert_int_eq(pbr_reader_reject(rd, NULL), -EINVAL);
	ck_assert_uint_eq(rstats(rd).decode_errors, 0);
	ck_assert_int_eq(pbr_reader_reject(rd, &v), 0);
	ck_assert_uint_eq(rstats(rd).decode_errors, 1);
	ck_assert_uint_eq(rstats(rd).crc_errors, 0);
	pt = reader_row(r, rd);
	ck_assert_uint_eq(pt.decode_errors, 1);
	ck_assert_uint_eq(pt.crc_errors, 0);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	ck_assert_int_eq(pbr_reader_reject(rd, &v), -EINVAL);
	tu_recv_tag(rd, 0, 1);
	ck_assert_uint_eq(rstats(rd).decode_errors, 1);
	pt = reader_row(r, rd);
	ck_assert_uint_eq(pt.decode_errors, 1);
	ck_assert_uint_eq(pt.delivered, 2);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* A lossy reader's view whose slot was overwritten: the bytes checked are
 * another message's. verify and reject say -ESTALE and count nothing;
 * release counts the loss (FORMAT.md §5.6). */
START_TEST(test_verify_stale_not_counted)
{
	struct pbr_ring *r = ring8("vs", 0);
	struct pbr_reader *rd =
		tu_reader(r, PBR_READER_LOSSY, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader_stats st;
	struct pbr_participant pt;
	struct pbr_view v;
	int i;

	send_stamped(p, 0, 0, 1);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_uint_eq(v.vflags, PBR_VIEW_UNSTABLE);
	for (i = 1; i <= 8; i++)
		send_stamped(p, i, 0, 1); /* 8 reuses the view's slot */
	ck_assert_int_eq(pbr_view_verify(&v), -EBADMSG);
	ck_assert_int_eq(pbr_reader_verify(rd, &v), -ESTALE);
	ck_assert_int_eq(pbr_reader_reject(rd, &v), -ESTALE);
	st = rstats(rd);
	ck_assert_uint_eq(st.crc_errors, 0);
	ck_assert_uint_eq(st.decode_errors, 0);
	pt = reader_row(r, rd);
	ck_assert_uint_eq(pt.crc_errors, 0);
	ck_assert_uint_eq(pt.decode_errors, 0);
	ck_assert_int_eq(pbr_reader_release(rd, &v), -ESTALE);
	st = rstats(rd);
	ck_assert_uint_ge(st.lost, 1);
	ck_assert_uint_eq(st.crc_errors + st.decode_errors, 0);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* The same for the backlog a gating reader found at open (unstable until
 * released): overwritten is -ESTALE, not counted, then missed. */
START_TEST(test_verify_backlog_stale)
{
	struct pbr_ring *r = ring8("vb", 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader_stats st;
	struct pbr_reader *rd;
	struct pbr_view v;
	int i;

	/* as in test_start_oldest_backlog_missed: 20..23 go out without a
	 * rescan of the gating limit */
	for (i = 0; i < 20; i++)
		send_stamped(p, i, 0, 1);
	rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_uint_eq(v.seq, 12);
	ck_assert_uint_eq(v.vflags, PBR_VIEW_UNSTABLE);
	for (i = 20; i < 24; i++)
		send_stamped(p, i, 0, 1);
	ck_assert_int_eq(pbr_reader_verify(rd, &v), -ESTALE);
	ck_assert_int_eq(pbr_reader_reject(rd, &v), -ESTALE);
	ck_assert_int_eq(pbr_reader_release(rd, &v), -ESTALE);
	st = rstats(rd);
	ck_assert_uint_eq(st.crc_errors + st.decode_errors, 0);
	ck_assert_uint_eq(st.missed, 1); /* 12; 13..15 when peek meets them */
	ck_assert_uint_eq(st.delivered, 0);
	pbr_reader_close(rd);
	pbr_producer_close(p);
	pbr_ring_detach(r);
}
END_TEST

/* An unstable view whose slot still holds its message is judged: a real
 * CRC mismatch on a lossy reader counts, and so does a reject. */
START_TEST(test_verify_unstable_intact_counted)
{
	const char *name = tu_name("vu");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_reader *rd =
		tu_reader(r, PBR_READER_LOSSY, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_participant pt;
	struct pbr_view v;

	send_stamped(p, 0, 0, 1);
	send_stamped(p, 1, 0, 1);
	corrupt_payload(name, 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_uint_eq(v.vflags, PBR_VIEW_UNSTABLE);
	ck_assert_int_eq(pbr_reader_verify(rd, &v), -EBADMSG);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_int_eq(pbr_reader_verify(rd, &v), 0);
	ck_assert_int_eq(pbr_reader_reject(rd, &v), 0);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	pt = reader_row(r, rd);
	ck_assert_uint_eq(pt.crc_errors, 1);
	ck_assert_uint_eq(pt.decode_errors, 1);
	ck_assert_uint_eq(pt.delivered, 2);
	ck_assert_uint_eq(pt.lost, 0);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* A corrupt slot header passed over is published in the entry's `bad`
 * at once (format 1.2), not only in pbr_reader_stats. */
START_TEST(test_bad_published)
{
	struct pbr_reader *rd;
	struct pbr_ring *r = three_with_bad_middle(tu_name("bp"), &rd);
	struct pbr_participant pt;
	struct pbr_view v;

	tu_recv_tag(rd, 0, 0);
	ck_assert_uint_eq(reader_row(r, rd).bad, 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EBADMSG);
	pt = reader_row(r, rd);
	ck_assert_uint_eq(pt.bad, 1);
	ck_assert_uint_eq(pt.crc_errors + pt.decode_errors, 0);
	tu_recv_tag(rd, 0, 2);
	pt = reader_row(r, rd);
	ck_assert_uint_eq(pt.bad, 1);
	ck_assert_uint_eq(pt.delivered, 2);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

static Suite *protocol_suite(void)
{
	Suite *s = suite_create("protocol");
	TCase *tc = tu_tcase("basics", 10);

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_peek_empty);
	tcase_add_test(tc, test_peek_twice);
	tcase_add_test(tc, test_full_ring);
	tcase_add_test(tc, test_close_reader_ungates);
	suite_add_tcase(s, tc);

	tc = tu_tcase("reservations", 10);
	tcase_add_test(tc, test_msgsize);
	tcase_add_test(tc, test_abort_skipped);
	tcase_add_test(tc, test_double_reserve);
	tcase_add_test(tc, test_commit_wrong_slot);
	tcase_add_test(tc, test_release_unpeeked);
	tcase_add_test(tc, test_metadata_roundtrip);
	tcase_add_test(tc, test_two_producers_interleave);
	suite_add_tcase(s, tc);

	tc = tu_tcase("corrupt", 10);
	tcase_add_test(tc, test_corrupt_slot);
	tcase_add_test(tc, test_corrupt_slot_batch);
	suite_add_tcase(s, tc);

	tc = tu_tcase("batches", 10);
	tcase_add_test(tc, test_batch);
	tcase_add_test(tc, test_batch_stops_at_skip);
	tcase_add_test(tc, test_batch_empty);
	suite_add_tcase(s, tc);

	tc = tu_tcase("lossy", 10);
	tcase_add_test(tc, test_lossy_lapped);
	tcase_add_test(tc, test_lossy_stale);
	suite_add_tcase(s, tc);

	tc = tu_tcase("sequences", 10);
	tcase_add_test(tc, test_start_latest);
	tcase_add_test(tc, test_start_oldest);
	tcase_add_test(tc, test_start_oldest_wrapped_ring);
	tcase_add_test(tc, test_start_oldest_backlog_missed);
	tcase_add_test(tc, test_seq_wrap);
	suite_add_tcase(s, tc);

	tc = tu_tcase("participants", 10);
	tcase_add_test(tc, test_single_producer);
	tcase_add_test(tc, test_producer_ids);
	tcase_add_test(tc, test_reader_limit);
	tcase_add_test(tc, test_reader_stats);
	tcase_add_test(tc, test_producer_statistics);
	suite_add_tcase(s, tc);

	tc = tu_tcase("reader metrics", 15);
	tcase_add_test(tc, test_latency_buckets);
	tcase_add_test(tc, test_latency_observed_once);
	tcase_add_test(tc, test_latency_not_asked);
	tcase_add_test(tc, test_latency_cap);
	tcase_add_test(tc, test_latency_new_owner_zeroed);
	tcase_add_test(tc, test_verify_counts_crc_error);
	tcase_add_test(tc, test_reject_counts_decode_error);
	tcase_add_test(tc, test_verify_stale_not_counted);
	tcase_add_test(tc, test_verify_backlog_stale);
	tcase_add_test(tc, test_verify_unstable_intact_counted);
	tcase_add_test(tc, test_bad_published);
	suite_add_tcase(s, tc);

	tc = tu_tcase("waiting", 30);
	tcase_add_loop_test(tc, test_wait_modes, 0, 3);
	tcase_add_test(tc, test_wait_forever);
	tcase_add_test(tc, test_reserve_woken_by_release);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(protocol_suite());
}
