// SPDX-License-Identifier: MIT
/*
 * check_wait: what ends a wait besides its condition and its timeout.
 * pbr_ring_interrupt() from another thread or a signal handler, a signal
 * handler alone, and a ring removed or shrunk under a waiter: each must
 * end a wait that would otherwise last forever, promptly, with nothing
 * committed lost.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "testutil.h"

/* "Promptly": well under a second even on a loaded 2-core machine. */
#define PROMPT_NS (1000 * TU_MS)

static const enum pbr_wait modes[] = {PBR_WAIT_BLOCK, PBR_WAIT_SPIN,
				      PBR_WAIT_YIELD};

struct delayed {
	struct pbr_ring *ring;
	const char *name; /* unlink and re-create this name instead */
	unsigned ms;
};

static void *interrupt_later(void *arg)
{
	struct delayed *d = arg;

	tu_sleep_ms(d->ms);
	pbr_ring_interrupt(d->ring);
	return NULL;
}

static pthread_t later(struct delayed *d)
{
	pthread_t t;

	ck_assert_int_eq(pthread_create(&t, NULL, interrupt_later, d), 0);
	return t;
}

/* A ring of 4 slots made full for a gating reader that reads nothing. */
static struct pbr_ring *full_ring(enum pbr_wait mode, struct pbr_producer **p,
				  struct pbr_reader **rd)
{
	struct pbr_ring *r = tu_create(tu_name("full"), 4, 256, 0, 0);
	unsigned i;

	*rd = tu_reader(r, 0, PBR_START_OLDEST, mode);
	*p = tu_producer(r, mode);
	for (i = 0; i < 4; i++)
		tu_send_tag(*p, i);
	return r;
}

START_TEST(test_interrupt_reserve)
{
	struct pbr_producer *p;
	struct pbr_reader *rd;
	struct pbr_ring *r = full_ring(modes[_i], &p, &rd);
	struct delayed d = {r, NULL, 50};
	struct pbr_slot slot;
	pthread_t t = later(&d);
	uint64_t t0 = tu_now_ns(), i;

	ck_assert_int_eq(pbr_producer_reserve(p, -1, &slot), -EINTR);
	ck_assert_uint_lt(tu_now_ns() - t0, PROMPT_NS);
	pthread_join(t, NULL);
	ck_assert_int_eq(pbr_ring_interrupted(r), 1);
	/* Sticky: the next wait does not start. */
	ck_assert_int_eq(pbr_producer_send(p, "x", 1, 0, -1), -EINTR);
	/* Nothing committed is lost; calls that do not wait still work. */
	for (i = 0; i < 4; i++)
		ck_assert_uint_eq(tu_recv_tag(rd, 0, i), i);
	tu_send_tag(p, 4);
	ck_assert_uint_eq(tu_recv_tag(rd, 0, 4), 4);
	ck_assert_int_eq(pbr_producer_close(p), 0);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_interrupt_peek)
{
	struct pbr_ring *r = tu_create(tu_name("peek"), 4, 256, 0, 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, modes[_i]);
	struct delayed d = {r, NULL, 50};
	struct pbr_view v;
	pthread_t t = later(&d);
	uint64_t t0 = tu_now_ns();

	ck_assert_int_eq(pbr_reader_peek(rd, -1, &v), -EINTR);
	ck_assert_uint_lt(tu_now_ns() - t0, PROMPT_NS);
	pthread_join(t, NULL);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EAGAIN);
	pbr_ring_detach(r);
}
END_TEST

/* --- signals ------------------------------------------------------------ */

static struct pbr_ring *sig_ring;

static void on_alarm_interrupt(int sig)
{
	(void)sig;
	pbr_ring_interrupt(sig_ring);
}

static void on_alarm_nothing(int sig)
{
	(void)sig;
}

static void alarm_in(unsigned ms, void (*fn)(int), int sa_flags)
{
	struct itimerval it = {{0, 0}, {0, (long)ms * 1000}};
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = sa_flags;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
	ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
}

/* The way the commands stop on Ctrl-C: the handler interrupts the ring.
 * SA_RESTART on purpose: the interrupt must not rely on EINTR. */
START_TEST(test_handler_interrupts)
{
	struct pbr_producer *p;
	struct pbr_reader *rd;
	struct pbr_slot slot;
	uint64_t t0;

	sig_ring = full_ring(modes[_i], &p, &rd);
	alarm_in(50, on_alarm_interrupt, SA_RESTART);
	t0 = tu_now_ns();
	ck_assert_int_eq(pbr_producer_reserve(p, -1, &slot), -EINTR);
	ck_assert_uint_lt(tu_now_ns() - t0, PROMPT_NS);
	ck_assert_uint_eq(tu_recv_tag(rd, 0, 0), 0);
	pbr_ring_detach(sig_ring);
}
END_TEST

/* A handler that only sets its own flag (Python's does) still ends a
 * sleeping wait, so that the caller gets to look at the flag. */
START_TEST(test_handler_alone_ends_block_wait)
{
	struct pbr_ring *r = tu_create(tu_name("sig"), 4, 256, 0, 0);
	struct pbr_reader *rd =
		tu_reader(r, 0, PBR_START_OLDEST, PBR_WAIT_BLOCK);
	struct itimerval every = {{0, 20000}, {0, 50000}};
	struct itimerval off = {{0, 0}, {0, 0}};
	struct pbr_view v;
	uint64_t t0 = tu_now_ns();

	/* A signal can only end a wait it interrupts: one that lands while
	 * the waiter is between two sleeps (the liveness checks slice them)
	 * runs its handler in user space and is gone. A busy machine makes
	 * that likely for one signal; a signal every 20 ms lands in a sleep. */
	alarm_in(50, on_alarm_nothing, _i ? SA_RESTART : 0);
	ck_assert_int_eq(setitimer(ITIMER_REAL, &every, NULL), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 5 * TU_SEC, &v), -EINTR);
	ck_assert_int_eq(setitimer(ITIMER_REAL, &off, NULL), 0);
	ck_assert_uint_lt(tu_now_ns() - t0, PROMPT_NS);
	/* Not sticky: the next wait waits (and times out). */
	ck_assert_int_eq(pbr_reader_peek(rd, 30 * TU_MS, &v), -ETIMEDOUT);
	ck_assert_int_eq(pbr_ring_interrupted(r), 0);
	pbr_ring_detach(r);
}
END_TEST

/* --- the ring removed or shrunk under a waiter --------------------------- */

static void *remove_later(void *arg)
{
	struct delayed *d = arg;
	struct pbr_ring *fresh;

	tu_sleep_ms(d->ms);
	if (pbr_ring_unlink(d->name) == 0 &&
	    pbr_ring_create(d->name, NULL, &fresh) == 0)
		return fresh;
	return NULL;
}

/* `pbring rm` under a waiting reader, then a new ring under the same
 * name: the old ring's waiter learns it was removed. */
START_TEST(test_removed_while_waiting)
{
	const char *name = tu_name("rm");
	struct pbr_ring *r = tu_create(name, 4, 256, 0, 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, modes[_i]);
	struct delayed d = {r, name, 50};
	struct pbr_view v;
	pthread_t t;
	void *fresh;
	uint64_t t0 = tu_now_ns();

	ck_assert_int_eq(pbr_ring_check(r), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, remove_later, &d), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, -1, &v), -EIDRM);
	ck_assert_uint_lt(tu_now_ns() - t0, PROMPT_NS);
	pthread_join(t, &fresh);
	ck_assert_ptr_nonnull(fresh);
	ck_assert_int_eq(pbr_ring_check(r), -EIDRM);
	ck_assert_int_eq(pbr_ring_check(fresh), 0);
	ck_assert_str_eq(pbr_strerror(-EIDRM), "ring was removed while in use");
	pbr_ring_detach(fresh);
	pbr_ring_detach(r);
}
END_TEST

/* Shrunk under a producer that waits for space: damaged, not "full". */
START_TEST(test_truncated_while_waiting)
{
	struct pbr_producer *p;
	struct pbr_reader *rd;
	struct pbr_ring *r = full_ring(PBR_WAIT_BLOCK, &p, &rd);
	struct pbr_ring_info info;
	struct pbr_slot slot;
	struct tu_raw raw;
	uint64_t t0;

	pbr_ring_info(r, &info);
	ck_assert_int_eq(tu_raw_map(info.name, &raw), 0);
	/* _i = 0: cut the slots off; 1: cut everything. */
	ck_assert_int_eq(ftruncate(raw.fd, _i ? 0 : (off_t)raw.size / 2), 0);
	tu_raw_unmap(&raw);
	t0 = tu_now_ns();
	ck_assert_int_eq(pbr_producer_reserve(p, 5 * TU_SEC, &slot), -EUCLEAN);
	ck_assert_uint_lt(tu_now_ns() - t0, PROMPT_NS);
	ck_assert_int_eq(pbr_ring_check(r), -EUCLEAN);
	pbr_ring_detach(r);
}
END_TEST

static Suite *wait_suite(void)
{
	Suite *s = suite_create("wait");
	TCase *tc = tu_tcase("interrupt", 20);

	tcase_add_loop_test(tc, test_interrupt_reserve, 0, 3);
	tcase_add_loop_test(tc, test_interrupt_peek, 0, 3);
	tcase_add_loop_test(tc, test_handler_interrupts, 0, 3);
	tcase_add_loop_test(tc, test_handler_alone_ends_block_wait, 0, 2);
	suite_add_tcase(s, tc);

	tc = tu_tcase("removed", 20);
	tcase_add_loop_test(tc, test_removed_while_waiting, 0, 3);
	tcase_add_loop_test(tc, test_truncated_while_waiting, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(wait_suite());
}
