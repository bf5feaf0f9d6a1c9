// SPDX-License-Identifier: MIT
/*
 * check_liveness: the participant table, and recovery from processes that
 * die holding a producer entry, a half-written slot or a gating cursor.
 *
 * Helper processes attach on their own, so the kernel locks they take are
 * theirs alone and die with them; they report over a pipe and never call
 * Check.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* OFD locks, prctl, mkfifo: also set by the build */
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

enum role {
	HALF_WRITTEN,  /* producer: reserve, write half, block */
	IDLE_PRODUCER, /* producer: open, block */
	IDLE_READER,   /* gating reader at oldest: open, never read */
	EXIT_UNCLOSED, /* producer sends 3, reader opens, reserve, _exit */
	EXIT_PRODUCER, /* producer: open, _exit */
	TIMED_READER,  /* reader with PBR_READER_LATENCY at oldest: reads
			* what there is, rejects the first, block */
};

#define REPORT_FAIL UINT64_MAX

static uint64_t child_half_written(struct pbr_ring *r)
{
	struct pbr_producer *p = NULL;
	struct pbr_slot s;

	if (pbr_producer_open(r, NULL, &p) || pbr_producer_reserve(p, 0, &s))
		return REPORT_FAIL;
	memset(s.data, 0xEE, s.cap / 2);
	return s.seq;
}

static uint64_t child_exit_unclosed(struct pbr_ring *r)
{
	struct pbr_reader_opts ro = {.start = PBR_START_OLDEST};
	struct pbr_producer *p = NULL;
	struct pbr_reader *rd = NULL;
	struct pbr_slot s;
	uint64_t i;

	if (pbr_producer_open(r, NULL, &p))
		return REPORT_FAIL;
	for (i = 0; i < 3; i++) {
		uint64_t buf[2] = {i, ~i};

		if (pbr_producer_send(p, buf, 16, 0, 0))
			return REPORT_FAIL;
	}
	if (pbr_reader_open(r, &ro, &rd) || pbr_producer_reserve(p, 0, &s))
		return REPORT_FAIL;
	return s.seq;
}

/* Read every message there is, rejecting the first; report how many. */
static uint64_t child_timed_reader(struct pbr_ring *r)
{
	struct pbr_reader_opts ro = {.flags = PBR_READER_LATENCY,
				     .start = PBR_START_OLDEST};
	struct pbr_reader *rd = NULL;
	struct pbr_view v;
	uint64_t n = 0;

	if (pbr_reader_open(r, &ro, &rd))
		return REPORT_FAIL;
	while (pbr_reader_peek(rd, 0, &v) == 0) {
		if (pbr_reader_verify(rd, &v) ||
		    (n == 0 && pbr_reader_reject(rd, &v)) ||
		    pbr_reader_release(rd, &v))
			return REPORT_FAIL;
		n++;
	}
	return n;
}

static uint64_t child_work(struct pbr_ring *r, enum role role)
{
	struct pbr_reader_opts ro = {.start = PBR_START_OLDEST};
	struct pbr_producer *p = NULL;
	struct pbr_reader *rd = NULL;

	switch (role) {
	case HALF_WRITTEN:
		return child_half_written(r);
	case IDLE_PRODUCER:
		return pbr_producer_open(r, NULL, &p) ? REPORT_FAIL : 0;
	case IDLE_READER:
		return pbr_reader_open(r, &ro, &rd) ? REPORT_FAIL : 0;
	case EXIT_UNCLOSED:
		return child_exit_unclosed(r);
	case EXIT_PRODUCER:
		return pbr_producer_open(r, NULL, &p) ? REPORT_FAIL : 0;
	case TIMED_READER:
		return child_timed_reader(r);
	}
	return REPORT_FAIL;
}

/* Fork a helper in @role; returns its pid, and what it reported in @out
 * (a sequence number, or 0). EXIT_* helpers are reaped here. */
static pid_t spawn(const char *name, enum role role, uint64_t *out)
{
	uint64_t report = REPORT_FAIL;
	int fds[2], rc;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	pid = tu_fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct pbr_ring *r = NULL;

		close(fds[0]);
		if (pbr_ring_attach(name, NULL, &r) == 0)
			report = child_work(r, role);
		if (tu_write_full(fds[1], &report, sizeof(report)))
			_exit(3);
		if (role == EXIT_UNCLOSED || role == EXIT_PRODUCER)
			_exit(0); /* nothing closed, nothing detached */
		for (;;)
			pause();
	}
	close(fds[1]);
	rc = tu_read_full(fds[0], &report, sizeof(report), 5000);
	close(fds[0]);
	ck_assert_msg(rc == 0, "helper sent nothing: %d", rc);
	ck_assert_msg(report != REPORT_FAIL, "helper could not set up");
	if (out)
		*out = report;
	if (role == EXIT_UNCLOSED || role == EXIT_PRODUCER)
		ck_assert_int_eq(tu_exit_code(tu_wait(pid, 5000)), 0);
	return pid;
}

static void kill_child(pid_t pid)
{
	int st;

	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	st = tu_wait(pid, 5000);
	ck_assert_int_eq(tu_exit_code(st), -SIGKILL);
}

static int find_pid(const struct pbr_participant *pt, int n, pid_t pid)
{
	int i;

	for (i = 0; i < n; i++) {
		if (pt[i].pid == (uint32_t)pid)
			return i;
	}
	return -1;
}

/* --- the participant table --------------------------------------------- */

START_TEST(test_participants_list)
{
	struct pbr_ring *r = tu_create(tu_name("pl"), 8, 256, 0, 100);
	struct pbr_producer *p1 = tu_producer(r, 0), *p2 = tu_producer(r, 0);
	struct pbr_reader *g = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_reader *l =
		tu_reader(r, PBR_READER_LOSSY, PBR_START_OLDEST, 0);
	struct pbr_participant pt[8];
	int i, n;

	tu_send_tag(p2, 1);
	tu_send_tag(p2, 2);
	tu_recv_tag(g, 0, 1);
	memset(pt, 0xA5, sizeof(pt));
	n = pbr_ring_participants(r, pt, 8);
	ck_assert_int_eq(n, 4);
	for (i = 0; i < 4; i++) {
		ck_assert_uint_eq(pt[i].alive, 1);
		ck_assert_uint_eq(pt[i].pid, getpid());
		/* Producers first. */
		ck_assert_uint_eq(pt[i].is_reader, i >= 2);
	}
	for (i = 0; i < 2; i++) {
		const struct pbr_participant *e = &pt[i];

		ck_assert(e->index == pbr_producer_id(p1) ||
			  e->index == pbr_producer_id(p2));
		ck_assert_uint_eq(e->position,
				  e->index == pbr_producer_id(p2) ? 2 : 0);
		ck_assert_uint_eq(e->pending, PBR_PENDING_IDLE);
	}
	ck_assert_uint_ne(pt[0].index, pt[1].index);
	for (i = 2; i < 4; i++) {
		const struct pbr_participant *e = &pt[i];
		int gating = e->index == pbr_reader_index(g);

		ck_assert(gating || e->index == pbr_reader_index(l));
		ck_assert_uint_eq(e->flags, gating ? PBR_READER_GATING
						   : PBR_READER_LOSSY);
		if (gating) {
			ck_assert_uint_eq(e->position, 101);
			ck_assert_uint_eq(e->delivered, 1);
		}
	}
	/* A short buffer: the count is still the full count. */
	memset(pt, 0xA5, sizeof(pt));
	ck_assert_int_eq(pbr_ring_participants(r, pt, 1), 4);
	ck_assert_uint_eq(pt[1].index, 0xA5A5A5A5u);
	pbr_producer_close(p1);
	pbr_reader_close(l);
	ck_assert_int_eq(pbr_ring_participants(r, pt, 8), 2);
	pbr_producer_close(p2);
	pbr_reader_close(g);
	ck_assert_int_eq(pbr_ring_participants(r, pt, 8), 0);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_participants_other_process)
{
	const char *name = tu_name("po");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_participant pt[8];
	pid_t pid = spawn(name, IDLE_PRODUCER, NULL);
	int n, k;

	/* A live peer in another process is alive too. */
	n = pbr_ring_participants(r, pt, 8);
	ck_assert_int_eq(n, 1);
	k = find_pid(pt, n, pid);
	ck_assert_int_eq(k, 0);
	ck_assert_uint_eq(pt[k].alive, 1);
	ck_assert_uint_eq(pt[k].is_reader, 0);
	kill_child(pid);
	n = pbr_ring_participants(r, pt, 8);
	ck_assert_int_eq(n, 1);
	ck_assert_uint_eq(pt[0].alive, 0);
	pbr_ring_detach(r);
}
END_TEST

/* --- dead producers ---------------------------------------------------- */

START_TEST(test_dead_producer_skipped)
{
	const char *name = tu_name("dp");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_reader_stats st;
	struct pbr_ring_stats rs;
	struct pbr_producer *p;
	uint64_t seq, t0;
	pid_t pid;
	int i;

	pid = spawn(name, HALF_WRITTEN, &seq);
	ck_assert_uint_eq(seq, 0);
	kill_child(pid);
	/* A live producer publishes behind the dead one's slot. */
	p = tu_producer(r, 0);
	for (i = 1; i <= 3; i++)
		tu_send_tag(p, i);
	/* The reader's own wait finds the dead producer (no reclaim call). */
	t0 = tu_now_ns();
	ck_assert_uint_eq(tu_recv_tag(rd, 5 * TU_SEC, 1), 1);
	ck_assert_uint_lt(tu_now_ns() - t0, 4 * TU_SEC);
	ck_assert_uint_eq(tu_recv_tag(rd, TU_SEC, 2), 2);
	ck_assert_uint_eq(tu_recv_tag(rd, TU_SEC, 3), 3);
	pbr_reader_stats(rd, &st);
	ck_assert_uint_eq(st.abandoned, 1);
	ck_assert_uint_eq(st.delivered, 3);
	ck_assert_uint_eq(st.lost, 0);
	ck_assert_uint_eq(st.bad, 0);
	pbr_ring_stats(r, &rs);
	ck_assert_uint_ge(rs.abandoned, 1);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_reclaim_dead_producer)
{
	const char *name = tu_name("rc");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_participant pt[8];
	struct pbr_ring_stats rs;
	uint64_t seq;
	pid_t pid;
	int n, k;

	pid = spawn(name, HALF_WRITTEN, &seq);
	kill_child(pid);
	n = pbr_ring_participants(r, pt, 8);
	ck_assert_int_eq(n, 3);
	k = find_pid(pt, n, pid);
	ck_assert_int_ge(k, 0);
	ck_assert_uint_eq(pt[k].alive, 0);
	ck_assert_uint_eq(pt[k].pending, PBR_PENDING_SEQ(seq));

	ck_assert_int_ge(pbr_ring_reclaim(r), 1);
	n = pbr_ring_participants(r, pt, 8);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(find_pid(pt, n, pid), -1);
	pbr_ring_stats(r, &rs);
	ck_assert_uint_ge(rs.producers_reaped, 1);
	ck_assert_uint_ge(rs.abandoned, 1);
	/* Nothing left to reclaim. */
	ck_assert_int_eq(pbr_ring_reclaim(r), 0);

	tu_send_tag(p, 5);
	ck_assert_uint_eq(tu_recv_tag(rd, TU_SEC, 5), seq + 1);
	{
		struct pbr_reader_stats st;

		pbr_reader_stats(rd, &st);
		ck_assert_uint_eq(st.abandoned, 1);
	}
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* A process listing the participants until killed, as `pbring stat
 * --watch` would: its probes run concurrently with the joins below. */
static pid_t spawn_prober(const char *name)
{
	pid_t pid = tu_fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct pbr_participant pt[8];
		struct pbr_ring *r = NULL;

		if (pbr_ring_attach(name, NULL, &r))
			_exit(3);
		while (pbr_ring_participants(r, pt, 8) >= 0)
			;
		_exit(4);
	}
	return pid;
}

/* §5.1: a probe tests the lock, it does not take it, so a producer that
 * joins while another process lists the participants still takes the
 * first entry whose owner is dead, and reaps it (§8.3), every time. */
START_TEST(test_probe_does_not_divert_joiner)
{
	const char *name = tu_name("pj");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_ring_stats rs;
	pid_t prober;
	int i;

	prober = spawn_prober(name);
	for (i = 0; i < 200; i++) {
		struct pbr_producer *p;
		uint16_t id;

		spawn(name, EXIT_PRODUCER, NULL); /* dies holding entry 0 */
		p = tu_producer(r, 0);
		id = pbr_producer_id(p);
		ck_assert_int_eq(pbr_producer_close(p), 0);
		ck_assert_msg(id == 0,
			      "join %d took entry %u, not the dead one", i, id);
	}
	kill_child(prober);
	pbr_ring_stats(r, &rs);
	ck_assert_uint_eq(rs.producers_reaped, 200);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_abandoned_counted_once_in_batch)
{
	const char *name = tu_name("ab");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader_stats st;
	struct pbr_view vs[8];
	struct tu_raw raw;
	uint64_t seq;
	pid_t pid;

	tu_send_tag(p, 0);
	pid = spawn(name, HALF_WRITTEN, &seq);
	ck_assert_uint_eq(seq, 1);
	kill_child(pid);
	tu_send_tag(p, 2);
	ck_assert_int_ge(pbr_ring_reclaim(r), 1);
	/* Recovery turned the slot into ABANDONED(1) (FORMAT.md 6.1). */
	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	ck_assert_uint_eq(tu_raw_slot(&raw, 1)->commit,
			  PBR_COMMIT_ABANDONED(1));
	tu_raw_unmap(&raw);
	/* A batch stops before the abandoned record, the next passes it. */
	ck_assert_int_eq(pbr_reader_peek_batch(rd, vs, 8, 0), 1);
	ck_assert_uint_eq(vs[0].seq, 0);
	ck_assert_int_eq(pbr_reader_release(rd, &vs[0]), 0);
	ck_assert_int_eq(pbr_reader_peek_batch(rd, vs, 8, 0), 1);
	ck_assert_uint_eq(vs[0].seq, 2);
	ck_assert_uint_eq(tu_tag_of(&vs[0]), 2);
	ck_assert_int_eq(pbr_reader_release(rd, &vs[0]), 0);
	pbr_reader_stats(rd, &st);
	ck_assert_uint_eq(st.abandoned, 1);
	ck_assert_uint_eq(st.delivered, 2);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_single_producer_taken_over)
{
	const char *name = tu_name("st");
	struct pbr_ring *r =
		tu_create(name, 8, 256, PBR_CREATE_SINGLE_PRODUCER, 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = NULL;
	pid_t pid = spawn(name, IDLE_PRODUCER, NULL);

	ck_assert_int_eq(pbr_producer_open(r, NULL, &p), -EBUSY);
	kill_child(pid);
	/* Open reclaims the dead producer it meets. */
	ck_assert_int_eq(pbr_producer_open(r, NULL, &p), 0);
	tu_send_tag(p, 1);
	tu_recv_tag(rd, 0, 1);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* --- dead readers ------------------------------------------------------ */

struct killer {
	pid_t pid;
	unsigned delay_ms;
};

static void *killer_main(void *arg)
{
	struct killer *k = arg;

	tu_sleep_ms(k->delay_ms);
	kill(k->pid, SIGKILL);
	return NULL;
}

START_TEST(test_dead_reader_stops_gating)
{
	const char *name = tu_name("dr");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_producer *p = tu_producer(r, PBR_WAIT_BLOCK);
	uint64_t buf[2] = {8, ~8ull}, t0, dt;
	struct pbr_participant pt[4];
	struct pbr_ring_stats rs;
	struct killer k;
	pthread_t th;
	int i;

	k.pid = spawn(name, IDLE_READER, NULL);
	k.delay_ms = 100;
	for (i = 0; i < 8; i++)
		tu_send_tag(p, i);
	ck_assert_int_eq(pbr_producer_send(p, buf, 16, 0, 0), -EAGAIN);
	/* The reader dies while this producer is blocked on it. */
	ck_assert_int_eq(pthread_create(&th, NULL, killer_main, &k), 0);
	t0 = tu_now_ns();
	ck_assert_int_eq(pbr_producer_send(p, buf, 16, 0, 5 * TU_SEC), 0);
	dt = tu_now_ns() - t0;
	pthread_join(th, NULL);
	ck_assert_int_eq(tu_exit_code(tu_wait(k.pid, 5000)), -SIGKILL);
	ck_assert_uint_ge(dt, 50 * TU_MS);
	ck_assert_uint_lt(dt, 4 * TU_SEC);
	/* It no longer gates at all. */
	for (i = 0; i < 16; i++)
		tu_send_tag(p, 100 + i);
	pbr_ring_stats(r, &rs);
	ck_assert_uint_ge(rs.readers_reaped, 1);
	ck_assert_int_eq(pbr_ring_participants(r, pt, 4), 1);
	pbr_producer_close(p);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_dead_reader_entry_reclaimed)
{
	const char *name = tu_name("re");
	struct pbr_create_opts o = {
		.slot_count = 8, .slot_size = 256, .max_readers = 1};
	struct pbr_reader *rd = NULL;
	struct pbr_ring_stats rs;
	struct pbr_ring *r = NULL;
	pid_t pid;

	ck_assert_int_eq(pbr_ring_create(name, &o, &r), 0);
	pid = spawn(name, IDLE_READER, NULL);
	ck_assert_int_eq(pbr_reader_open(r, NULL, &rd), -EBUSY);
	kill_child(pid);
	ck_assert_int_ge(pbr_ring_reclaim(r), 1);
	pbr_ring_stats(r, &rs);
	ck_assert_uint_ge(rs.readers_reaped, 1);
	ck_assert_int_eq(pbr_reader_open(r, NULL, &rd), 0);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* Reader metrics (format 1.2) are in the ring, so another process sees a
 * reader's counters and histogram; a dead reader's stay visible until its
 * entry is reaped, and the next reader in the entry starts from zero. */
START_TEST(test_dead_reader_metrics)
{
	const char *name = tu_name("rm");
	struct pbr_create_opts o = {
		.slot_count = 8, .slot_size = 256, .max_readers = 1};
	struct pbr_participant pt[4];
	struct pbr_reader *rd = NULL;
	struct pbr_ring *r = NULL;
	struct pbr_producer *p;
	uint64_t n = 0, count;
	struct pbr_slot s;
	unsigned b;
	pid_t pid;
	int i;

	ck_assert_int_eq(pbr_ring_create(name, &o, &r), 0);
	p = tu_producer(r, 0);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(pbr_producer_reserve(p, 0, &s), 0);
		s.timestamp_ns = pbr_clock_ns() - 25 * TU_MS;
		ck_assert_int_eq(pbr_producer_commit(p, &s, 8), 0);
	}
	pid = spawn(name, TIMED_READER, &n);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(pbr_ring_participants(r, pt, 4), 2);
	i = find_pid(pt, 2, pid);
	ck_assert_int_ge(i, 0);
	ck_assert(pt[i].is_reader);
	ck_assert_uint_eq(pt[i].alive, 1);
	ck_assert_uint_eq(pt[i].delivered, 3);
	ck_assert_uint_eq(pt[i].decode_errors, 1);
	ck_assert_uint_eq(pt[i].crc_errors, 0);
	ck_assert_uint_eq(pt[i].has_latency, 1);
	/* each waited at least 25 ms: none under 20 ms */
	ck_assert_uint_eq(tu_latency_from(pt[i].latency, 0), 3);
	ck_assert_uint_eq(tu_latency_from(pt[i].latency, 17), 3);
	ck_assert_uint_ge(pt[i].latency_sum_ns, 3 * 25 * TU_MS);

	kill_child(pid);
	ck_assert_int_eq(pbr_ring_participants(r, pt, 4), 2);
	i = find_pid(pt, 2, pid);
	ck_assert_int_ge(i, 0);
	ck_assert_uint_eq(pt[i].alive, 0);
	ck_assert_uint_eq(pt[i].has_latency, 1);
	ck_assert_uint_eq(tu_latency_from(pt[i].latency, 17), 3);
	ck_assert_uint_eq(pt[i].decode_errors, 1);

	ck_assert_int_ge(pbr_ring_reclaim(r), 1);
	ck_assert_int_eq(pbr_ring_participants(r, pt, 4), 1);
	rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	ck_assert_uint_eq(pbr_reader_index(rd), 0);
	ck_assert_int_eq(pbr_ring_participants(r, pt, 4), 2);
	i = 1; /* producers first */
	ck_assert(pt[i].is_reader);
	ck_assert_uint_eq(pt[i].has_latency, 0); /* opened without it */
	for (count = 0, b = 0; b < PBR_LATENCY_BUCKETS; b++)
		count += pt[i].latency[b];
	ck_assert_uint_eq(count, 0);
	ck_assert_uint_eq(pt[i].latency_sum_ns, 0);
	ck_assert_uint_eq(pt[i].decode_errors + pt[i].delivered, 0);
	pbr_reader_close(rd);
	pbr_producer_close(p);
	pbr_ring_detach(r);
}
END_TEST

/* --- processes that exit without cleaning up --------------------------- */

START_TEST(test_exit_without_close)
{
	const char *name = tu_name("ex");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_participant pt[8];
	struct pbr_reader_stats st;
	struct pbr_producer *p;
	struct pbr_reader *rd;
	struct pbr_ring *a;
	uint64_t seq;
	int i, n;

	spawn(name, EXIT_UNCLOSED, &seq);
	ck_assert_uint_eq(seq, 3);
	/* The ring is intact: a new mapping validates and works. */
	a = tu_attach(name);
	rd = tu_reader(a, 0, PBR_START_OLDEST, 0);
	p = tu_producer(a, 0);
	tu_send_tag(p, 10);
	for (i = 0; i < 3; i++)
		ck_assert_uint_eq(tu_recv_tag(rd, 5 * TU_SEC, i), i);
	ck_assert_uint_eq(tu_recv_tag(rd, 5 * TU_SEC, 10), 4);
	pbr_reader_stats(rd, &st);
	ck_assert_uint_eq(st.abandoned, 1);
	ck_assert_uint_eq(st.delivered, 4);
	/* Only the live entries remain once the dead are reclaimed. */
	ck_assert_int_ge(pbr_ring_reclaim(a), 0);
	n = pbr_ring_participants(r, pt, 8);
	ck_assert_int_eq(n, 2);
	for (i = 0; i < n; i++) {
		ck_assert_uint_eq(pt[i].alive, 1);
		ck_assert_uint_eq(pt[i].pid, getpid());
	}
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(a);
	pbr_ring_detach(r);
}
END_TEST

static Suite *liveness_suite(void)
{
	Suite *s = suite_create("liveness");
	TCase *tc = tu_tcase("participants", 15);

	tcase_add_test(tc, test_participants_list);
	tcase_add_test(tc, test_participants_other_process);
	suite_add_tcase(s, tc);

	tc = tu_tcase("dead producers", 20);
	tcase_add_test(tc, test_dead_producer_skipped);
	tcase_add_test(tc, test_reclaim_dead_producer);
	tcase_add_test(tc, test_abandoned_counted_once_in_batch);
	tcase_add_test(tc, test_single_producer_taken_over);
	tcase_add_test(tc, test_probe_does_not_divert_joiner);
	suite_add_tcase(s, tc);

	tc = tu_tcase("dead readers", 20);
	tcase_add_test(tc, test_dead_reader_stops_gating);
	tcase_add_test(tc, test_dead_reader_entry_reclaimed);
	tcase_add_test(tc, test_dead_reader_metrics);
	suite_add_tcase(s, tc);

	tc = tu_tcase("unclean exit", 20);
	tcase_add_test(tc, test_exit_without_close);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(liveness_suite());
}
