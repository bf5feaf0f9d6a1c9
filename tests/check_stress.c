// SPDX-License-Identifier: MIT
/*
 * check_stress: many producers and readers at once, as threads of one
 * process and as separate processes; sequence wrap under load; waking
 * blocked waiters from another process.
 *
 * Every message carries (producer index u32, per-producer counter u64)
 * and then bytes derived from both, with a length derived from both, so a
 * reader can tell loss, duplication, reordering and corruption apart.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* OFD locks, prctl, mkfifo: also set by the build */
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define NPROD 4
#define SLOTS 64
#define SLOT_SIZE 256
#define CAP (SLOT_SIZE - PBR_SLOT_HDR_SIZE)
#define HDR 12 /* who u32 + counter u64 */
#define OP_TIMEOUT (10 * TU_SEC)

#if defined(__SANITIZE_THREAD__)
#define DEFAULT_M 10000
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define DEFAULT_M 10000
#endif
#endif
#ifndef DEFAULT_M
#define DEFAULT_M 50000
#endif

/* Messages per producer; PBR_STRESS_M overrides (e.g. for slow runs). */
static uint64_t per_producer(void)
{
	const char *e = getenv("PBR_STRESS_M");

	return e && atoll(e) > 0 ? (uint64_t)atoll(e) : DEFAULT_M;
}

/* --- messages ---------------------------------------------------------- */

static uint32_t msg_len(uint32_t who, uint64_t c)
{
	uint64_t h =
		(who + 1) * 0x9E3779B97F4A7C15ull ^ c * 0xff51afd7ed558ccdull;

	h ^= h >> 31;
	return HDR + (uint32_t)(h % (CAP - HDR + 1));
}

static void msg_fill(uint8_t *d, uint32_t who, uint64_t c)
{
	uint32_t len = msg_len(who, c), i;

	memcpy(d, &who, 4);
	memcpy(d + 4, &c, 8);
	for (i = HDR; i < len; i++)
		d[i] = tu_pattern(who, c, i);
}

/* Outcome of one worker, filled in by the worker, judged by the test. */
struct result {
	int err;	/* 0, or a negative errno / positive check code */
	char msg[200];	/* what went wrong first */
	uint64_t ok;	/* messages delivered and verified */
	uint64_t stale; /* lossy: releases that said -ESTALE */
	struct pbr_reader_stats st;
};

static void note_fail(struct result *res, int err, const char *fmt, ...)
{
	va_list ap;

	if (res->err)
		return;
	res->err = err ? err : 1;
	va_start(ap, fmt);
	vsnprintf(res->msg, sizeof(res->msg), fmt, ap);
	va_end(ap);
}

/* Check one message against the rules; 0 if intact. */
static int msg_check(const uint8_t *d, uint32_t len, uint64_t m, uint32_t *who,
		     uint64_t *c)
{
	uint32_t i;

	if (len < HDR || len > CAP)
		return 1;
	memcpy(who, d, 4);
	memcpy(c, d + 4, 8);
	if (*who >= NPROD || *c >= m)
		return 2;
	if (len != msg_len(*who, *c))
		return 3;
	for (i = HDR; i < len; i++) {
		if (d[i] != tu_pattern(*who, *c, i))
			return 4;
	}
	return 0;
}

/* --- workers ----------------------------------------------------------- */

struct worker {
	struct pbr_ring *ring;
	struct pbr_producer *p;
	struct pbr_reader *rd;
	uint32_t who;
	uint64_t m, seq_base;
	int batch;	  /* gating reader: use peek_batch */
	atomic_int *done; /* threads: producers finished */
	int done_fd;	  /* processes: EOF once producers finished */
	struct result res;
};

static void produce(struct worker *w)
{
	uint8_t buf[CAP];
	uint64_t c;

	for (c = 0; c < w->m && !w->res.err; c++) {
		struct pbr_slot s;
		int rc;

		/* Alternate zero-copy reserve/commit and send(). */
		if (c % 3 == 0) {
			msg_fill(buf, w->who, c);
			rc = pbr_producer_send(w->p, buf, msg_len(w->who, c), 0,
					       OP_TIMEOUT);
		} else {
			rc = pbr_producer_reserve(w->p, OP_TIMEOUT, &s);
			if (rc == 0 && s.cap != CAP)
				rc = -ERANGE;
			if (rc == 0) {
				msg_fill(s.data, w->who, c);
				rc = pbr_producer_commit(w->p, &s,
							 msg_len(w->who, c));
			}
		}
		if (rc)
			note_fail(&w->res, rc, "producer %u msg %llu: %s",
				  w->who, (unsigned long long)c,
				  pbr_strerror(rc));
		else
			w->res.ok++;
	}
}

/* Per-reader bookkeeping common to gating and lossy readers. */
struct tally {
	uint64_t next[NPROD]; /* gating: next counter; lossy: lowest next */
	int id[NPROD];	      /* producer id seen for each index, or -1 */
};

static void tally_init(struct tally *t)
{
	int i;

	for (i = 0; i < NPROD; i++) {
		t->next[i] = 0;
		t->id[i] = -1;
	}
}

static int tally_id(struct tally *t, uint32_t who, uint16_t producer)
{
	if (t->id[who] < 0)
		t->id[who] = producer;
	return t->id[who] == producer;
}

static void gating_one(struct worker *w, struct tally *t,
		       const struct pbr_view *v, uint64_t n)
{
	uint64_t c;
	uint32_t who;
	int bad = msg_check(v->data, v->len, w->m, &who, &c);

	if (v->seq != w->seq_base + n)
		note_fail(&w->res, 10, "msg %llu: seq %llu, want %llu",
			  (unsigned long long)n, (unsigned long long)v->seq,
			  (unsigned long long)(w->seq_base + n));
	else if (bad)
		note_fail(&w->res, 10 + bad, "seq %llu: corrupt payload (%d)",
			  (unsigned long long)v->seq, bad);
	else if (c != t->next[who])
		note_fail(&w->res, 20, "producer %u: counter %llu, want %llu",
			  who, (unsigned long long)c,
			  (unsigned long long)t->next[who]);
	else if (!tally_id(t, who, v->producer))
		note_fail(&w->res, 21, "producer %u: id %u, earlier %d", who,
			  v->producer, t->id[who]);
	else
		t->next[who]++;
}

static void consume_gating(struct worker *w)
{
	uint64_t total = NPROD * w->m, n = 0;
	struct pbr_view vs[16];
	struct tally t;

	tally_init(&t);
	while (n < total && !w->res.err) {
		unsigned max = w->batch ? 16 : 1;
		int got, i, rc;

		if (w->batch) {
			got = pbr_reader_peek_batch(w->rd, vs, max, OP_TIMEOUT);
		} else {
			got = pbr_reader_peek(w->rd, OP_TIMEOUT, vs);
			got = got ? got : 1;
		}
		if (got <= 0) {
			note_fail(&w->res, got, "peek after %llu: %s",
				  (unsigned long long)n, pbr_strerror(got));
			break;
		}
		for (i = 0; i < got && n < total; i++)
			gating_one(w, &t, &vs[i], n++);
		rc = pbr_reader_release(w->rd, &vs[got - 1]);
		if (rc)
			note_fail(&w->res, rc, "release: %s", pbr_strerror(rc));
	}
	w->res.ok = n;
	pbr_reader_stats(w->rd, &w->res.st);
}

/*
 * The one place that reads a slot a producer may be rewriting: the copy is
 * trusted only if release then says the slot was not overwritten (a
 * seqlock). ThreadSanitizer would flag this intended race, so it does not
 * instrument this function; every other payload access stays checked.
 */
#if defined(__GNUC__)
#define NO_TSAN __attribute__((noinline, no_sanitize("thread")))
#else
#define NO_TSAN
#endif
NO_TSAN static void stress_lossy_copy(void *dst, const void *src, uint32_t len)
{
	volatile const uint8_t *s = src;
	uint8_t *d = dst;
	uint32_t i;

	for (i = 0; i < len; i++)
		d[i] = s[i];
}

static int producers_done(struct worker *w)
{
	struct pollfd pfd = {.fd = w->done_fd, .events = POLLIN};

	if (w->done)
		return atomic_load(w->done);
	return poll(&pfd, 1, 0) > 0;
}

static void lossy_one(struct worker *w, struct tally *t,
		      const struct pbr_view *v)
{
	uint8_t copy[CAP];
	uint32_t len = v->len, who;
	uint64_t c;
	int rc, bad;

	if (len > CAP) {
		note_fail(&w->res, 30, "seq %llu: len %u > cap",
			  (unsigned long long)v->seq, len);
		len = CAP;
	}
	stress_lossy_copy(copy, v->data, len);
	rc = pbr_reader_release(w->rd, v);
	if (rc == -ESTALE) {
		w->res.stale++;
		return;
	}
	if (rc) {
		note_fail(&w->res, rc, "lossy release: %s", pbr_strerror(rc));
		return;
	}
	w->res.ok++;
	bad = msg_check(copy, v->len, w->m, &who, &c);
	if (bad)
		note_fail(&w->res, 30 + bad, "lossy seq %llu: corrupt (%d)",
			  (unsigned long long)v->seq, bad);
	else if (c < t->next[who])
		note_fail(&w->res, 40,
			  "lossy: producer %u counter %llu after %llu", who,
			  (unsigned long long)c,
			  (unsigned long long)t->next[who]);
	else if (!tally_id(t, who, v->producer))
		note_fail(&w->res, 41, "lossy: producer %u id %u", who,
			  v->producer);
	else
		t->next[who] = c + 1;
}

static void consume_lossy(struct worker *w)
{
	struct tally t;
	struct pbr_view v;
	int draining = 0;

	tally_init(&t);
	while (!w->res.err) {
		int rc = pbr_reader_peek(w->rd, draining ? 0 : 10 * TU_MS, &v);

		if (rc == 0) {
			lossy_one(w, &t, &v);
		} else if (rc == -EAGAIN || rc == -ETIMEDOUT) {
			/* Once producers are done, empty means finished. */
			if (draining)
				break;
			draining = producers_done(w);
		} else {
			note_fail(&w->res, rc, "lossy peek: %s",
				  pbr_strerror(rc));
		}
	}
	pbr_reader_stats(w->rd, &w->res.st);
}

/* --- judging ----------------------------------------------------------- */

static void judge_gating(const struct result *r, uint64_t total)
{
	ck_assert_msg(r->err == 0, "gating reader: %d: %s", r->err, r->msg);
	ck_assert_uint_eq(r->ok, total);
	ck_assert_uint_eq(r->st.delivered, total);
	ck_assert_uint_eq(r->st.lost, 0);
	ck_assert_uint_eq(r->st.abandoned, 0);
	ck_assert_uint_eq(r->st.bad, 0);
}

static void judge_lossy(const struct result *r, uint64_t total)
{
	if (getenv("PBR_STRESS_VERBOSE"))
		fprintf(stderr, "lossy: delivered %llu lost %llu stale %llu\n",
			(unsigned long long)r->st.delivered,
			(unsigned long long)r->st.lost,
			(unsigned long long)r->stale);
	ck_assert_msg(r->err == 0, "lossy reader: %d: %s", r->err, r->msg);
	/* Every message published since it opened is either delivered
	 * (release said 0) or counted lost; -ESTALE ones are lost. */
	ck_assert_uint_eq(r->st.delivered, r->ok);
	ck_assert_uint_eq(r->st.delivered + r->st.lost, total);
	ck_assert_uint_ge(r->st.lost, r->stale);
	ck_assert_uint_eq(r->st.bad, 0);
	ck_assert_uint_gt(r->ok, 0);
}

/* --- threads variant --------------------------------------------------- */

static void *producer_thread(void *arg)
{
	produce(arg);
	return NULL;
}

static void *gating_thread(void *arg)
{
	consume_gating(arg);
	return NULL;
}

static void *lossy_thread(void *arg)
{
	consume_lossy(arg);
	return NULL;
}

static void run_threads(uint64_t seq_base, uint64_t m)
{
	struct pbr_ring *r =
		tu_create(tu_name("thr"), SLOTS, SLOT_SIZE, 0, seq_base);
	struct worker w[NPROD + 3];
	pthread_t th[NPROD + 3];
	atomic_int done = 0;
	int i;

	memset(w, 0, sizeof(w));
	for (i = 0; i < NPROD + 3; i++) {
		w[i].ring = r;
		w[i].m = m;
		w[i].seq_base = seq_base;
		w[i].done = &done;
		w[i].done_fd = -1;
	}
	/* Readers exist before the first message: they must see them all. */
	w[NPROD].rd = tu_reader(r, 0, PBR_START_OLDEST, PBR_WAIT_BLOCK);
	w[NPROD + 1].rd = tu_reader(r, 0, PBR_START_OLDEST, PBR_WAIT_YIELD);
	w[NPROD + 1].batch = 1;
	w[NPROD + 2].rd = tu_reader(r, PBR_READER_LOSSY, PBR_START_OLDEST,
				    PBR_WAIT_BLOCK);
	for (i = 0; i < NPROD; i++) {
		w[i].who = i;
		w[i].p = tu_producer(r, PBR_WAIT_BLOCK);
	}
	ck_assert_int_eq(
		pthread_create(&th[NPROD], NULL, gating_thread, &w[NPROD]), 0);
	ck_assert_int_eq(pthread_create(&th[NPROD + 1], NULL, gating_thread,
					&w[NPROD + 1]),
			 0);
	ck_assert_int_eq(pthread_create(&th[NPROD + 2], NULL, lossy_thread,
					&w[NPROD + 2]),
			 0);
	for (i = 0; i < NPROD; i++)
		ck_assert_int_eq(
			pthread_create(&th[i], NULL, producer_thread, &w[i]),
			0);
	for (i = 0; i < NPROD; i++)
		pthread_join(th[i], NULL);
	atomic_store(&done, 1);
	for (i = NPROD; i < NPROD + 3; i++)
		pthread_join(th[i], NULL);

	for (i = 0; i < NPROD; i++) {
		ck_assert_msg(w[i].res.err == 0, "%s", w[i].res.msg);
		ck_assert_uint_eq(w[i].res.ok, m);
		pbr_producer_close(w[i].p);
	}
	judge_gating(&w[NPROD].res, NPROD * m);
	judge_gating(&w[NPROD + 1].res, NPROD * m);
	judge_lossy(&w[NPROD + 2].res, NPROD * m);
	for (i = NPROD; i < NPROD + 3; i++)
		pbr_reader_close(w[i].rd);
	pbr_ring_detach(r);
}

START_TEST(test_threads)
{
	run_threads(0, per_producer());
}
END_TEST

START_TEST(test_threads_wrap)
{
	uint64_t m = per_producer() / 4;

	/* NPROD * m > 1000 so the run crosses 2^64. */
	ck_assert_uint_gt(NPROD * m, 1000);
	run_threads(UINT64_MAX - 1000, m);
}
END_TEST

/* --- processes variant ------------------------------------------------- */

enum role { ROLE_PRODUCER, ROLE_GATING, ROLE_GATING_BATCH, ROLE_LOSSY };

/* Child body: attach on its own (its own locks), work, report, _exit. */
static void child_main(const char *name, enum role role, struct worker *w,
		       int ready_fd, int res_fd)
{
	struct pbr_reader_opts ro = {.start = PBR_START_OLDEST};
	struct pbr_ring *r = NULL;
	int rc = pbr_ring_attach(name, NULL, &r);

	if (rc == 0 && role == ROLE_PRODUCER)
		rc = pbr_producer_open(r, NULL, &w->p);
	else if (rc == 0) {
		ro.flags = role == ROLE_LOSSY ? PBR_READER_LOSSY : 0;
		rc = pbr_reader_open(r, &ro, &w->rd);
	}
	if (rc) {
		note_fail(&w->res, rc, "child setup: %s", pbr_strerror(rc));
	} else {
		if (tu_write_full(ready_fd, "r", 1))
			_exit(3);
		w->batch = role == ROLE_GATING_BATCH;
		if (role == ROLE_PRODUCER)
			produce(w);
		else if (role == ROLE_LOSSY)
			consume_lossy(w);
		else
			consume_gating(w);
	}
	if (tu_write_full(res_fd, &w->res, sizeof(w->res)))
		_exit(4);
	if (w->p)
		pbr_producer_close(w->p);
	if (w->rd)
		pbr_reader_close(w->rd);
	if (r)
		pbr_ring_detach(r);
	_exit(w->res.err ? 1 : 0);
}

struct child {
	pid_t pid;
	int res_fd;
	struct result res;
};

static void spawn(struct child *c, const char *name, enum role role,
		  uint32_t who, uint64_t m, int ready_fd, int done_fd[2])
{
	struct worker w;
	int res[2];

	ck_assert_int_eq(pipe(res), 0);
	c->pid = tu_fork();
	ck_assert_int_ge(c->pid, 0);
	if (c->pid == 0) {
		/* Only the parent may hold the write end, or EOF never
		 * reaches the lossy reader. */
		close(done_fd[1]);
		close(res[0]);
		memset(&w, 0, sizeof(w));
		w.who = who;
		w.m = m;
		w.done_fd = done_fd[0];
		child_main(name, role, &w, ready_fd, res[1]);
	}
	close(res[1]);
	c->res_fd = res[0];
}

static void reap(struct child *c, int timeout_ms)
{
	int rc = tu_read_full(c->res_fd, &c->res, sizeof(c->res), timeout_ms);
	int st;

	close(c->res_fd);
	ck_assert_msg(rc == 0, "child %d sent no result: %s", (int)c->pid,
		      pbr_strerror(rc));
	st = tu_wait(c->pid, 10000);
	ck_assert_msg(tu_exit_code(st) == 0, "child %d: exit %d: %s",
		      (int)c->pid, tu_exit_code(st), c->res.msg);
}

static void wait_ready(int ready_fd, int n)
{
	char buf[8];

	ck_assert_int_eq(tu_read_full(ready_fd, buf, n, 10000), 0);
}

START_TEST(test_processes)
{
	const char *name = tu_name("proc");
	struct pbr_ring *r = tu_create(name, SLOTS, SLOT_SIZE, 0, 0);
	uint64_t m = per_producer();
	struct child c[NPROD + 3];
	int ready[2], done[2], i;

	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(done), 0);
	spawn(&c[NPROD], name, ROLE_GATING, 0, m, ready[1], done);
	spawn(&c[NPROD + 1], name, ROLE_GATING_BATCH, 0, m, ready[1], done);
	spawn(&c[NPROD + 2], name, ROLE_LOSSY, 0, m, ready[1], done);
	/* All readers registered before any producer exists. */
	wait_ready(ready[0], 3);
	for (i = 0; i < NPROD; i++)
		spawn(&c[i], name, ROLE_PRODUCER, i, m, ready[1], done);
	wait_ready(ready[0], NPROD);
	for (i = 0; i < NPROD; i++) {
		reap(&c[i], 120000);
		ck_assert_uint_eq(c[i].res.ok, m);
	}
	close(done[1]);
	for (i = NPROD; i < NPROD + 3; i++)
		reap(&c[i], 60000);
	judge_gating(&c[NPROD].res, NPROD * m);
	judge_gating(&c[NPROD + 1].res, NPROD * m);
	judge_lossy(&c[NPROD + 2].res, NPROD * m);
	close(ready[0]);
	close(ready[1]);
	close(done[0]);
	pbr_ring_detach(r);
}
END_TEST

/* --- blocking across processes ----------------------------------------- */

/* Child: attach, open a producer, say ready, wait @delay_ms, send @tag
 * (or, with delay 0, send nothing and sleep until killed). */
static pid_t delayed_sender(const char *name, unsigned delay_ms, uint64_t tag,
			    int ready_fd)
{
	pid_t pid = tu_fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		uint64_t buf[2] = {tag, ~tag};
		struct pbr_producer *p = NULL;
		struct pbr_ring *r = NULL;

		if (pbr_ring_attach(name, NULL, &r) ||
		    pbr_producer_open(r, NULL, &p))
			_exit(2);
		if (tu_write_full(ready_fd, "r", 1))
			_exit(3);
		if (!delay_ms)
			for (;;)
				pause();
		tu_sleep_ms(delay_ms);
		if (pbr_producer_send(p, buf, 16, 0, TU_SEC))
			_exit(4);
		pbr_producer_close(p);
		pbr_ring_detach(r);
		_exit(0);
	}
	return pid;
}

START_TEST(test_blocked_reader_woken)
{
	const char *name = tu_name("bw");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_reader *rd =
		tu_reader(r, 0, PBR_START_OLDEST, PBR_WAIT_BLOCK);
	uint64_t t0, dt;
	int ready[2];
	pid_t pid;

	ck_assert_int_eq(pipe(ready), 0);
	pid = delayed_sender(name, 200, 4242, ready[1]);
	wait_ready(ready[0], 1);
	t0 = tu_now_ns();
	tu_recv_tag(rd, 5 * TU_SEC, 4242);
	dt = tu_now_ns() - t0;
	ck_assert_uint_ge(dt, 100 * TU_MS);
	ck_assert_uint_lt(dt, 2 * TU_SEC);
	ck_assert_int_eq(tu_exit_code(tu_wait(pid, 5000)), 0);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_blocked_reader_timeout)
{
	const char *name = tu_name("bt");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_reader *rd =
		tu_reader(r, 0, PBR_START_OLDEST, PBR_WAIT_BLOCK);
	struct pbr_view v;
	uint64_t t0, dt;
	int ready[2];
	pid_t pid;

	/* A live producer in another process that publishes nothing. */
	ck_assert_int_eq(pipe(ready), 0);
	pid = delayed_sender(name, 0, 0, ready[1]);
	wait_ready(ready[0], 1);
	t0 = tu_now_ns();
	ck_assert_int_eq(pbr_reader_peek(rd, TU_SEC, &v), -ETIMEDOUT);
	dt = tu_now_ns() - t0;
	ck_assert_uint_ge(dt, TU_SEC);
	ck_assert_uint_lt(dt, 2500 * TU_MS);
	kill(pid, SIGKILL);
	tu_wait(pid, 5000);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_blocked_producer_woken)
{
	const char *name = tu_name("pw");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_producer *p = tu_producer(r, PBR_WAIT_BLOCK);
	struct pbr_slot s;
	int ready[2], i;
	uint64_t t0, dt;
	pid_t pid;

	ck_assert_int_eq(pipe(ready), 0);
	pid = tu_fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* A gating reader elsewhere frees one slot after 200 ms. */
		struct pbr_reader_opts ro = {.start = PBR_START_OLDEST};
		struct pbr_reader *rd = NULL;
		struct pbr_ring *cr = NULL;
		struct pbr_view v;

		if (pbr_ring_attach(name, NULL, &cr) ||
		    pbr_reader_open(cr, &ro, &rd))
			_exit(2);
		if (tu_write_full(ready[1], "r", 1))
			_exit(3);
		tu_sleep_ms(300);
		if (pbr_reader_peek(rd, 0, &v) || pbr_reader_release(rd, &v))
			_exit(4);
		tu_sleep_ms(2000); /* stay alive (and gating) meanwhile */
		_exit(0);
	}
	wait_ready(ready[0], 1);
	for (i = 0; i < 8; i++)
		tu_send_tag(p, i);
	t0 = tu_now_ns();
	ck_assert_int_eq(pbr_producer_reserve(p, 5 * TU_SEC, &s), 0);
	dt = tu_now_ns() - t0;
	ck_assert_uint_eq(s.seq, 8);
	ck_assert_uint_ge(dt, 50 * TU_MS);
	ck_assert_uint_lt(dt, 2 * TU_SEC);
	ck_assert_int_eq(pbr_producer_commit(p, &s, 0), 0);
	ck_assert_int_eq(tu_exit_code(tu_wait(pid, 5000)), 0);
	pbr_producer_close(p);
	pbr_ring_detach(r);
}
END_TEST

static Suite *stress_suite(void)
{
	Suite *s = suite_create("stress");
	TCase *tc = tu_tcase("load", 240);

	tcase_add_test(tc, test_threads);
	tcase_add_test(tc, test_threads_wrap);
	tcase_add_test(tc, test_processes);
	suite_add_tcase(s, tc);

	tc = tu_tcase("cross-process wakeups", 15);
	tcase_add_test(tc, test_blocked_reader_woken);
	tcase_add_test(tc, test_blocked_reader_timeout);
	tcase_add_test(tc, test_blocked_producer_woken);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(stress_suite());
}
