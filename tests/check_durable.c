// SPDX-License-Identifier: MIT
/*
 * check_durable: durable (named) readers and source ids (format 1.3,
 * FORMAT.md §5.4, §6.3, §8.4, §9.1, §9.6). A durable reader outlives its
 * process: detached (closed or killed) it keeps gating, producers wait
 * for it instead of reaping it, a new open of its name resumes at its
 * cursor, and only a drop removes it. A source id rides after the
 * payload, atomically with the commit, and a reader never trusts one
 * that does not fit.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define DURABLE PBR_CREATE_DURABLE_READERS

static int open_durable(struct pbr_ring *r, const char *name, uint32_t start,
			struct pbr_reader **out)
{
	struct pbr_reader_opts o = {
		.flags = PBR_READER_DURABLE, .start = start, .name = name};

	return pbr_reader_open(r, &o, out);
}

/* The participant entry of durable reader @name, asserting it is there. */
static struct pbr_participant find_reader(struct pbr_ring *r, const char *name)
{
	struct pbr_participant pt[16];
	int i, n = pbr_ring_participants(r, pt, 16);

	for (i = 0; i < n && i < 16; i++)
		if (pt[i].is_reader && pt[i].durable &&
		    !strcmp(pt[i].name, name))
			return pt[i];
	ck_abort_msg("no durable reader %s among %d participants", name, n);
	return pt[0];
}

static int count_readers(struct pbr_ring *r)
{
	struct pbr_participant pt[16];
	int i, k = 0, n = pbr_ring_participants(r, pt, 16);

	for (i = 0; i < n && i < 16; i++)
		k += pt[i].is_reader;
	return k;
}

START_TEST(test_create_detach_resume)
{
	const char *name = tu_name("resume");
	struct pbr_ring *r = tu_create(name, 16, 128, DURABLE, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader *rd;
	struct pbr_participant pt;
	struct pbr_ring_info info;
	struct pbr_view v;
	uint64_t i;

	pbr_ring_info(r, &info);
	ck_assert_uint_eq(info.format_minor, 3);
	ck_assert_uint_eq(info.features_incompat, PBR_FEATURE_DURABLE_READERS);
	ck_assert_int_eq(open_durable(r, "bridge.a", PBR_START_OLDEST, &rd), 0);
	ck_assert_int_eq(pbr_reader_durable(rd), 1);
	pt = find_reader(r, "bridge.a");
	ck_assert_uint_eq(pt.alive, 1);
	ck_assert_uint_eq(pt.detached, 0);
	ck_assert_uint_eq(pt.flags, PBR_READER_GATING | PBR_READER_DURABLE);
	for (i = 0; i < 5; i++)
		tu_send_tag(p, i);
	tu_recv_tag(rd, 0, 0);
	tu_recv_tag(rd, 0, 1);
	/* peeked, not released: delivered again after the resume */
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	pbr_reader_close(rd);
	pt = find_reader(r, "bridge.a");
	ck_assert_uint_eq(pt.alive, 0);
	ck_assert_uint_eq(pt.detached, 1);
	ck_assert_uint_eq(pt.position, 2);
	ck_assert_int_eq(open_durable(r, "bridge.a", PBR_START_LATEST, &rd), 1);
	pt = find_reader(r, "bridge.a");
	ck_assert_uint_eq(pt.detached, 0);
	ck_assert_uint_eq(pt.delivered, 0); /* statistics restart */
	for (i = 2; i < 5; i++)
		tu_recv_tag(rd, 0, i);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EAGAIN);
	ck_assert_int_eq(count_readers(r), 1);
	pbr_reader_close(rd);
	pbr_producer_close(p);
	pbr_ring_detach(r);
}
END_TEST

/* Child: open durable @dname, report the open's result, then hold it. */
static void hold_durable(const char *ring, const char *dname, int wfd)
{
	struct pbr_ring *r = NULL;
	struct pbr_reader *rd = NULL;
	int rc = pbr_ring_attach(ring, NULL, &r);

	if (!rc)
		rc = open_durable(r, dname, PBR_START_OLDEST, &rd);
	(void)tu_write_full(wfd, &rc, sizeof(rc));
	for (;;)
		pause();
}

static pid_t fork_holder(const char *ring, const char *dname)
{
	int fds[2], rc = -1;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	pid = tu_fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		hold_durable(ring, dname, fds[1]);
	}
	close(fds[1]);
	ck_assert_int_eq(tu_read_full(fds[0], &rc, sizeof(rc), 5000), 0);
	close(fds[0]);
	ck_assert_int_ge(rc, 0);
	return pid;
}

static void kill_child(pid_t pid)
{
	int st;

	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
}

START_TEST(test_busy_while_owner_alive)
{
	const char *name = tu_name("busy");
	struct pbr_ring *r = tu_create(name, 16, 128, DURABLE, 0);
	struct pbr_reader *rd = NULL;
	pid_t pid = fork_holder(name, "held");

	ck_assert_int_eq(open_durable(r, "held", PBR_START_OLDEST, &rd),
			 -EBUSY);
	ck_assert_ptr_null(rd);
	ck_assert_int_eq(pbr_ring_drop_reader(r, "held"), -EBUSY);
	ck_assert_uint_eq(find_reader(r, "held").alive, 1);
	kill_child(pid);
	ck_assert_uint_eq(find_reader(r, "held").detached, 1);
	ck_assert_int_eq(open_durable(r, "held", PBR_START_OLDEST, &rd), 1);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* A detached durable reader gates: the producer times out rather than
 * reaping it, reclaim leaves it, and a drop lets the producer go on. */
START_TEST(test_detached_gates_producer)
{
	const char *name = tu_name("gates");
	struct pbr_ring *r = tu_create(name, 4, 128, DURABLE, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader *rd;
	struct pbr_ring_stats st;
	uint64_t buf[2] = {4, ~4ull};
	pid_t pid = fork_holder(name, "slow");
	int i;

	kill_child(pid); /* dead at cursor 0, and the sole gating reader */
	for (i = 0; i < 4; i++)
		tu_send_tag(p, (uint64_t)i);
	ck_assert_int_eq(pbr_producer_send(p, buf, sizeof(buf), 0, 60 * TU_MS),
			 -ETIMEDOUT);
	ck_assert_int_eq(pbr_ring_reclaim(r), 0);
	pbr_ring_stats(r, &st);
	ck_assert_uint_eq(st.readers_reaped, 0);
	ck_assert_uint_eq(find_reader(r, "slow").detached, 1);
	/* a plain reader does not take the detached entry */
	rd = tu_reader(r, 0, PBR_START_LATEST, 0);
	ck_assert_uint_ne(pbr_reader_index(rd), find_reader(r, "slow").index);
	pbr_reader_close(rd);
	ck_assert_int_eq(pbr_ring_drop_reader(r, "slow"), 0);
	ck_assert_int_eq(count_readers(r), 0);
	ck_assert_int_eq(pbr_producer_send(p, buf, sizeof(buf), 0, 60 * TU_MS),
			 0);
	ck_assert_int_eq(pbr_ring_drop_reader(r, "slow"), -ENOENT);
	pbr_producer_close(p);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_reader_drop)
{
	const char *name = tu_name("drop");
	struct pbr_ring *r = tu_create(name, 4, 128, DURABLE, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader *rd;
	int i;

	ck_assert_int_eq(open_durable(r, "d", PBR_START_OLDEST, &rd), 0);
	tu_send_tag(p, 0);
	ck_assert_int_eq(pbr_reader_drop(rd), 0);
	ck_assert_int_eq(count_readers(r), 0);
	for (i = 1; i < 9; i++) /* nobody gates any more */
		tu_send_tag(p, (uint64_t)i);
	/* the name is free: a new open creates it afresh, at the latest */
	ck_assert_int_eq(open_durable(r, "d", PBR_START_LATEST, &rd), 0);
	tu_send_tag(p, 9);
	tu_recv_tag(rd, 0, 9);
	pbr_reader_close(rd);
	ck_assert_int_eq(pbr_ring_drop_reader(r, "d"), 0);
	ck_assert_int_eq(pbr_ring_drop_reader(r, "bad name"), -EINVAL);
	pbr_producer_close(p);
	pbr_ring_detach(r);
}
END_TEST

/* Without the feature bit nothing changes: no durable readers, and a
 * DURABLE flag forged into a dead reader's entry does not stop the reap. */
START_TEST(test_not_supported_without_feature)
{
	const char *name = tu_name("nofeat");
	struct pbr_ring *r = tu_create(name, 4, 128, 0, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader *rd = NULL;
	struct pbr_ring_stats st;
	struct pbr_participant pt[4];
	struct tu_raw raw;
	pid_t pid;
	int i;

	ck_assert_int_eq(open_durable(r, "x", PBR_START_OLDEST, &rd),
			 -EOPNOTSUPP);
	ck_assert_int_eq(pbr_ring_drop_reader(r, "x"), -EOPNOTSUPP);
	pid = tu_fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct pbr_ring *cr = NULL;
		struct pbr_reader_opts o = {.start = PBR_START_OLDEST};

		if (pbr_ring_attach(name, NULL, &cr) ||
		    pbr_reader_open(cr, &o, &rd))
			_exit(1);
		_exit(0); /* dies holding the entry */
	}
	ck_assert_int_eq(tu_exit_code(tu_wait(pid, 5000)), 0);
	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	tu_raw_reader(&raw, 0)->flags |= PBR_READER_DURABLE;
	memcpy(tu_raw_reader(&raw, 0)->name, "x", 2);
	ck_assert_int_eq(pbr_ring_participants(r, pt, 4), 2);
	ck_assert_uint_eq(pt[1].durable, 0);
	for (i = 0; i < 8; i++) /* the producer reaps the dead reader */
		ck_assert_int_eq(pbr_producer_send(p, &i, sizeof(i), 0, TU_SEC),
				 0);
	pbr_ring_stats(r, &st);
	ck_assert_uint_eq(st.readers_reaped, 1);
	tu_raw_unmap(&raw);
	pbr_producer_close(p);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_bad_names_and_flags)
{
	const char *name = tu_name("names");
	struct pbr_ring *r = tu_create(name, 4, 128, DURABLE, 0);
	static const char *const bad[] = {
		"",    "a b",
		"a/b", "\xc3\xa9",
		"x:y", "0123456789012345678901234567890X", /* 32 bytes */
	};
	struct pbr_reader_opts o = {.flags = PBR_READER_DURABLE};
	struct pbr_reader *rd = NULL;
	struct pbr_participant pt;
	struct tu_raw raw;
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(open_durable(r, bad[i], 0, &rd), -EINVAL);
		ck_assert_int_eq(pbr_reader_name_check(bad[i]), -EINVAL);
	}
	ck_assert_int_eq(pbr_reader_open(r, &o, &rd), -EINVAL); /* no name */
	o.name = "ok";
	o.flags = PBR_READER_DURABLE | PBR_READER_LOSSY;
	ck_assert_int_eq(pbr_reader_open(r, &o, &rd), -EINVAL);
	o.flags = PBR_READER_DURABLE | PBR_READER_TAP;
	ck_assert_int_eq(pbr_reader_open(r, &o, &rd), -EINVAL);
	ck_assert_int_eq(pbr_reader_name_check("A-z_0.9"), 0);
	ck_assert_int_eq(
		open_durable(r, "012345678901234567890123456789X", 0, &rd),
		0); /* 31 bytes */
	pbr_reader_close(rd);
	/* a forged name without its NUL (or with a bad byte) is no name:
	 * listed with "", and no open can name it */
	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	memset(tu_raw_reader(&raw, 0)->name, 'q', PBR_READER_NAME_SIZE);
	ck_assert_int_eq(pbr_ring_participants(r, &pt, 1), 1);
	ck_assert_uint_eq(pt.durable, 1);
	ck_assert_str_eq(pt.name, "");
	memcpy(tu_raw_reader(&raw, 0)->name, "q q", 4);
	ck_assert_int_eq(pbr_ring_participants(r, &pt, 1), 1);
	ck_assert_str_eq(pt.name, "");
	ck_assert_int_eq(pbr_ring_drop_reader(r, "q"), -ENOENT);
	tu_raw_unmap(&raw);
	pbr_ring_detach(r);
}
END_TEST

#define KILL_TOTAL 200u
#define KILL_RELEASED 10u /* the child releases tags 0..9 */
#define KILL_HELD 4u	  /* and dies holding 10..13 peeked */

struct sender {
	struct pbr_producer *p;
	int rc;
	uint64_t sent;
};

static void *send_all(void *arg)
{
	struct sender *s = arg;
	uint64_t i;

	for (i = 0; i < KILL_TOTAL; i++) {
		uint64_t buf[2] = {i, ~i};

		s->rc = pbr_producer_send(s->p, buf, sizeof(buf), 0,
					  20 * TU_SEC);
		if (s->rc)
			break;
		s->sent = i + 1;
	}
	return NULL;
}

/* Child: read KILL_RELEASED tags, peek KILL_HELD more, then report. */
static void reader_to_be_killed(const char *ring, int wfd)
{
	struct pbr_ring *r = NULL;
	struct pbr_reader *rd = NULL;
	struct pbr_view v[KILL_HELD];
	uint64_t got = 0;
	int rc = pbr_ring_attach(ring, NULL, &r), n = 0;

	if (!rc)
		rc = open_durable(r, "victim", PBR_START_OLDEST, &rd);
	(void)tu_write_full(wfd, &rc, sizeof(rc));
	while (rc == 0 && got < KILL_RELEASED) {
		rc = pbr_reader_peek(rd, 10 * TU_SEC, &v[0]);
		if (!rc && tu_tag_of(&v[0]) != got)
			rc = -EPROTO;
		if (!rc)
			rc = pbr_reader_release(rd, &v[0]);
		got++;
	}
	while (rc == 0 && n < (int)KILL_HELD) {
		rc = pbr_reader_peek_batch(rd, v, KILL_HELD, 10 * TU_SEC);
		n = rc > 0 ? rc : n;
		rc = rc > 0 ? 0 : rc;
	}
	(void)tu_write_full(wfd, &rc, sizeof(rc));
	for (;;)
		pause();
}

/* A durable reader SIGKILLed with peeks unreleased, while a producer
 * keeps going: the producer blocks (nothing reaped), and a new open of
 * the name resumes at the dead reader's cursor and receives every later
 * message exactly once, in order. */
START_TEST(test_killed_reader_resumes)
{
	const char *name = tu_name("killed");
	struct pbr_ring *r = tu_create(name, 8, 128, DURABLE, 0);
	struct sender s = {.p = tu_producer(r, 0)};
	struct pbr_ring_stats st;
	struct pbr_reader *rd;
	pthread_t th;
	int fds[2], rc = -1;
	uint64_t want;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	pid = tu_fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		reader_to_be_killed(name, fds[1]);
	}
	close(fds[1]);
	ck_assert_int_eq(tu_read_full(fds[0], &rc, sizeof(rc), 5000), 0);
	ck_assert_int_eq(rc, 0); /* created */
	ck_assert_int_eq(pthread_create(&th, NULL, send_all, &s), 0);
	ck_assert_int_eq(tu_read_full(fds[0], &rc, sizeof(rc), 10000), 0);
	ck_assert_int_eq(rc, 0);
	close(fds[0]);
	kill_child(pid);
	/* several liveness periods: a reaping producer would have gone on */
	tu_sleep_ms(150);
	pbr_ring_stats(r, &st);
	ck_assert_uint_eq(st.readers_reaped, 0);
	ck_assert_uint_le(st.claimed, KILL_RELEASED + 8 + 1);
	ck_assert_uint_eq(find_reader(r, "victim").detached, 1);
	ck_assert_uint_eq(find_reader(r, "victim").position, KILL_RELEASED);
	ck_assert_int_eq(open_durable(r, "victim", PBR_START_LATEST, &rd), 1);
	for (want = KILL_RELEASED; want < KILL_TOTAL; want++)
		tu_recv_tag(rd, 10 * TU_SEC, want);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(s.rc, 0);
	ck_assert_uint_eq(s.sent, KILL_TOTAL);
	{
		struct pbr_view v;

		ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EAGAIN);
	}
	ck_assert_int_eq(pbr_reader_drop(rd), 0);
	pbr_producer_close(s.p);
	pbr_ring_detach(r);
}
END_TEST

/* Two processes opening one name at once: exactly one creates it. */
START_TEST(test_concurrent_open_one_entry)
{
	const char *name = tu_name("race");
	struct pbr_ring *r = tu_create(name, 4, 128, DURABLE, 0);
	pid_t pid[4];
	int i, created = 0;

	for (i = 0; i < 4; i++) {
		pid[i] = tu_fork();
		ck_assert_int_ge(pid[i], 0);
		if (pid[i] == 0) {
			struct pbr_ring *cr = NULL;
			struct pbr_reader *rd = NULL;
			int rc = pbr_ring_attach(name, NULL, &cr);

			if (!rc)
				rc = open_durable(cr, "one", 0, &rd);
			/* 0 created, 1 resumed, -EBUSY it is alive */
			_exit(rc == 0	     ? 10
			      : rc == 1	     ? 11
			      : rc == -EBUSY ? 12
					     : 1);
		}
	}
	for (i = 0; i < 4; i++) {
		int code = tu_exit_code(tu_wait(pid[i], 10000));

		ck_assert_msg(code >= 10 && code <= 12, "child %d: %d", i,
			      code);
		created += code == 10;
	}
	ck_assert_int_eq(created, 1);
	ck_assert_int_eq(count_readers(r), 1);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_source_roundtrip)
{
	const char *name = tu_name("source");
	/* slot 128: payload_cap 64, so a source fits after up to 48 bytes */
	struct pbr_ring *r = tu_create(name, 8, 128, 0, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_ring_stats st;
	struct pbr_slot slot;
	struct pbr_view v[3];
	uint8_t buf[64];

	memset(buf, 0xab, sizeof(buf));
	ck_assert_int_eq(pbr_producer_send_source(p, buf, 5, PBR_SEND_CRC,
						  1733456789012ull, 7, 0),
			 0);
	ck_assert_int_eq(pbr_producer_send(p, buf, 64, 0, 0), 0);
	pbr_ring_stats(r, &st);
	ck_assert_int_eq(pbr_producer_send_source(p, buf, 49, 0, 1, 2, 0),
			 -EMSGSIZE);
	pbr_ring_stats(r, &st);
	ck_assert_uint_eq(st.claimed, 2); /* refused before any claim */
	ck_assert_int_eq(pbr_producer_reserve(p, 0, &slot), 0);
	memcpy(slot.data, buf, 49);
	slot.flags = PBR_SLOT_F_SOURCE;
	slot.source[0] = UINT64_MAX;
	slot.source[1] = 0x0102030405060708ull;
	ck_assert_int_eq(pbr_producer_commit(p, &slot, 49), -EMSGSIZE);
	ck_assert_int_eq(pbr_producer_commit(p, &slot, 48), 0); /* still open */
	ck_assert_int_eq(pbr_reader_peek_batch(rd, v, 3, 0), 3);
	ck_assert_uint_eq(v[0].flags, PBR_SLOT_F_CRC | PBR_SLOT_F_SOURCE);
	ck_assert_int_eq(pbr_view_verify(&v[0]), 0); /* CRC: payload only */
	ck_assert_uint_eq(v[0].len, 5);
	ck_assert_uint_eq(v[0].source[0], 1733456789012ull);
	ck_assert_uint_eq(v[0].source[1], 7);
	ck_assert_uint_eq(v[1].flags & PBR_SLOT_F_SOURCE, 0);
	ck_assert_uint_eq(v[1].source[0], 0);
	ck_assert_uint_eq(v[2].flags, PBR_SLOT_F_SOURCE);
	ck_assert_uint_eq(v[2].len, 48);
	ck_assert_uint_eq(v[2].source[0], UINT64_MAX);
	ck_assert_uint_eq(v[2].source[1], 0x0102030405060708ull);
	ck_assert_int_eq(pbr_reader_release(rd, &v[2]), 0);
	pbr_reader_close(rd);
	pbr_producer_close(p);
	pbr_ring_detach(r);
}
END_TEST

/* A SOURCE flag forged on a slot whose trailer would pass payload_cap:
 * the view carries no source; one that fits is read from the trailer. */
START_TEST(test_source_forged_out_of_bounds)
{
	const char *name = tu_name("forged");
	struct pbr_ring *r = tu_create(name, 8, 128, 0, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_layout_slot *h;
	struct tu_raw raw;
	struct pbr_view v;
	uint8_t buf[64] = {0};
	uint64_t trailer[2] = {11, 12};

	ck_assert_int_eq(pbr_producer_send(p, buf, 60, 0, 0), 0);
	ck_assert_int_eq(pbr_producer_send(p, buf, 40, 0, 0), 0);
	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	h = tu_raw_slot(&raw, 0); /* 60 bytes: trailer at 64..80 > cap 64 */
	h->flags |= PBR_SLOT_F_SOURCE;
	h = tu_raw_slot(&raw, 1); /* 40 bytes: trailer at 40..56, fits */
	h->flags |= PBR_SLOT_F_SOURCE;
	memcpy((uint8_t *)h + PBR_SLOT_HDR_SIZE + 40, trailer, 16);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_uint_eq(v.len, 60);
	ck_assert_uint_eq(v.flags & PBR_SLOT_F_SOURCE, 0);
	ck_assert_uint_eq(v.source[0], 0);
	ck_assert_uint_eq(v.source[1], 0);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_uint_eq(v.flags, PBR_SLOT_F_SOURCE);
	ck_assert_uint_eq(v.source[0], 11);
	ck_assert_uint_eq(v.source[1], 12);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	tu_raw_unmap(&raw);
	pbr_reader_close(rd);
	pbr_producer_close(p);
	pbr_ring_detach(r);
}
END_TEST

/* A durable entry whose cursor no correct ring can hold is refused. */
START_TEST(test_resume_bad_cursor)
{
	const char *name = tu_name("badcur");
	struct pbr_ring *r = tu_create(name, 4, 128, DURABLE, 0);
	struct pbr_reader *rd;
	struct tu_raw raw;

	ck_assert_int_eq(open_durable(r, "c", 0, &rd), 0);
	pbr_reader_close(rd);
	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	tu_raw_reader(&raw, 0)->cursor = 1000; /* after the claim (0) */
	ck_assert_int_eq(open_durable(r, "c", 0, &rd), -EUCLEAN);
	tu_raw_reader(&raw, 0)->cursor = 0;
	ck_assert_int_eq(open_durable(r, "c", 0, &rd), 1);
	pbr_reader_close(rd);
	tu_raw_unmap(&raw);
	pbr_ring_detach(r);
}
END_TEST

static Suite *durable_suite(void)
{
	Suite *s = suite_create("durable");
	TCase *tc;

	tc = tu_tcase("durable", 30);
	tcase_add_test(tc, test_create_detach_resume);
	tcase_add_test(tc, test_busy_while_owner_alive);
	tcase_add_test(tc, test_detached_gates_producer);
	tcase_add_test(tc, test_reader_drop);
	tcase_add_test(tc, test_not_supported_without_feature);
	tcase_add_test(tc, test_bad_names_and_flags);
	tcase_add_test(tc, test_killed_reader_resumes);
	tcase_add_test(tc, test_concurrent_open_one_entry);
	tcase_add_test(tc, test_resume_bad_cursor);
	suite_add_tcase(s, tc);

	tc = tu_tcase("source", 10);
	tcase_add_test(tc, test_source_roundtrip);
	tcase_add_test(tc, test_source_forged_out_of_bounds);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(durable_suite());
}
