/* SPDX-License-Identifier: MIT */
/*
 * Waiting: spin, spin-then-yield, and futex doorbells.
 *
 * A doorbell is {u32 futex, u32 waiters} in its own control-block block.
 * The sleeper registers in waiters, reads futex, re-checks its condition
 * and sleeps only if futex is unchanged. The waker makes its change, runs a
 * seq_cst fence and looks at waiters; only then does it bump futex and call
 * FUTEX_WAKE. This is Dekker's pattern (FORMAT.md edge E4): either the
 * waker sees the sleeper registered, or the sleeper's re-check sees the
 * change, so no wake-up is lost and a publish with nobody asleep makes no
 * system call.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <time.h>
#include <urcu/futex.h>

#include "internal.h"

uint64_t pbr_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t pbri_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * No clock read here: reserve and peek set up a waiter on every call and
 * most calls never wait, while a clock read costs more than the whole
 * operation. The first wait step reads it (waiter_arm), so the timeout
 * counts from the first miss.
 */
void pbri_waiter_init(struct pbr_waiter *w, enum pbr_wait mode,
		      int64_t timeout_ns)
{
	w->mode = mode;
	w->spins = 0;
	w->timeout = timeout_ns;
	w->deadline = timeout_ns < 0 ? -1 : timeout_ns == 0 ? 0 : 1;
	w->next_check = 0;
	w->poll_ns = 0;
}

static int64_t health_period(int64_t timeout)
{
	const int64_t floor = INT64_C(1000) * 1000;

	if (timeout < 0 || timeout / 2 >= PBR_HEALTH_NS)
		return PBR_HEALTH_NS;
	return timeout / 2 > floor ? timeout / 2 : floor;
}

static void waiter_arm(struct pbr_waiter *w)
{
	int64_t now = pbri_now_ns();

	if (w->timeout > 0)
		w->deadline = now + w->timeout;
	w->signalled = false;
	w->next_check = now + PBR_LIVENESS_NS;
	/* Within the wait even when callers wait in short steps (Python
	 * does, 100 ms at a time), but never more than one fstat per ms. */
	w->next_health = now + health_period(w->timeout);
}

static uint32_t spin_limit(const struct pbr_waiter *w)
{
	return w->mode == PBR_WAIT_BLOCK ? PBR_BLOCK_SPIN_LIMIT
					 : PBR_SPIN_LIMIT;
}

/* Sleeping waiters read the clock each step; spinning ones every 64th. */
static bool waiter_clock_due(const struct pbr_waiter *w)
{
	return (w->spins & 63) == 0 ||
	       (w->mode == PBR_WAIT_BLOCK && w->spins >= spin_limit(w));
}

/* Reasons to stop waiting other than the condition and the deadline: an
 * interrupt, and a ring removed or shrunk under us (checked by clock). */
static int waiter_stop(struct pbr_waiter *w, struct pbr_ring *r)
{
	int64_t now;

	/* Relaxed: the flag carries no data. A store racing with this load
	 * is caught by the re-check in pbri_bell_sleep() (BLOCK), or by the
	 * next step (SPIN, YIELD). */
	if (w->signalled ||
	    atomic_load_explicit(&r->interrupted, memory_order_relaxed))
		return -EINTR;
	if (!waiter_clock_due(w))
		return 0;
	now = pbri_now_ns();
	if (w->deadline > 0 && now >= w->deadline)
		return -ETIMEDOUT;
	if (now < w->next_health)
		return 0;
	w->next_health = now + PBR_HEALTH_NS;
	return pbr_ring_check(r);
}

int pbri_waiter_step(struct pbr_waiter *w, struct pbr_ring *r)
{
	int rc;

	if (w->deadline == 0)
		return -EAGAIN;
	if (!w->next_check)
		waiter_arm(w);
	++w->spins;
	rc = waiter_stop(w, r);
	if (rc)
		return rc;
	if (w->mode == PBR_WAIT_SPIN || w->spins < spin_limit(w)) {
		cpu_relax();
		return 0;
	}
	if (w->mode == PBR_WAIT_YIELD) {
		sched_yield();
		return 0;
	}
	return 1;
}

bool pbri_waiter_liveness_due(struct pbr_waiter *w)
{
	int64_t now;

	if (w->deadline == 0 || !w->next_check || !waiter_clock_due(w))
		return false;
	now = pbri_now_ns();
	if (now < w->next_check)
		return false;
	w->next_check = now + PBR_LIVENESS_NS;
	return true;
}

uint32_t pbri_bell_prepare(struct pbr_ring *r, uint32_t bell)
{
	uint8_t *b = ctl_word(r, bell);

	faa32(b + 4, 1, memory_order_seq_cst);
	/* E4 (sleeper side): registration before the re-check of the
	 * condition; pairs with the fence in pbri_bell_ring(). */
	fence_sc();
	return ld_rlx32(b);
}

void pbri_bell_sleep(struct pbr_ring *r, uint32_t bell, uint32_t seen,
		     struct pbr_waiter *w)
{
	int64_t left = PBR_LIVENESS_NS;
	struct timespec ts;

	if (w->deadline > 0) {
		int64_t until = w->deadline - pbri_now_ns();

		if (until <= 0)
			return;
		if (until < left)
			left = until;
	}
	ts.tv_sec = left / 1000000000LL;
	ts.tv_nsec = left % 1000000000LL;
	/* An interrupt after the flag check in waiter_stop() but before the
	 * futex word was read into @seen is folded into @seen: look at the
	 * flag again. The acquire fence, after the relaxed read of @seen in
	 * pbri_bell_prepare(), pairs with the seq_cst bump in
	 * pbr_ring_interrupt(): if @seen includes the bump, the flag is
	 * seen; if not, the word differs and FUTEX_WAIT returns at once. */
	fence_acq();
	if (atomic_load_explicit(&r->interrupted, memory_order_relaxed))
		return;
	/* Shared (non-private) futex: the word is in a shared mapping.
	 * EAGAIN (word changed) and ETIMEDOUT mean "look again"; EINTR means
	 * a signal handler ran in this thread, and the wait returns -EINTR
	 * so that the caller can act on the signal (as read(2) would). */
	if (futex_async((int32_t *)ctl_word(r, bell), FUTEX_WAIT, (int32_t)seen,
			&ts, NULL, 0) < 0 &&
	    errno == EINTR)
		w->signalled = true;
}

/* Poll sleeps of a tap: short at first, so that a message just behind
 * the one it found missing costs little latency; at most 1 ms, so that
 * an idle tap costs about a thousand wake-ups a second and notices
 * pbr_ring_interrupt() (a process-local flag it cannot be woken for)
 * within a millisecond. */
#define PBR_POLL_MIN_NS (4 * 1000LL)
#define PBR_POLL_MAX_NS (1000 * 1000LL)

void pbri_poll_sleep(struct pbr_waiter *w)
{
	int64_t left = w->poll_ns ? w->poll_ns : PBR_POLL_MIN_NS;
	struct timespec ts;

	w->poll_ns = left < PBR_POLL_MAX_NS / 2 ? left * 2 : PBR_POLL_MAX_NS;
	if (w->deadline > 0) {
		int64_t until = w->deadline - pbri_now_ns();

		if (until <= 0)
			return;
		if (until < left)
			left = until;
	}
	ts.tv_sec = left / 1000000000LL;
	ts.tv_nsec = left % 1000000000LL;
	/* A signal handler that ran during the sleep ends the wait with
	 * -EINTR, as it ends a futex sleep (pbri_bell_sleep). */
	if (nanosleep(&ts, NULL) < 0 && errno == EINTR)
		w->signalled = true;
}

void pbri_bell_finish(struct pbr_ring *r, uint32_t bell)
{
	fsub32(ctl_word(r, bell) + 4, 1, memory_order_relaxed);
}

void pbri_bell_ring(struct pbr_ring *r, uint32_t bell)
{
	uint8_t *b = ctl_word(r, bell);

	/* E4 (waker side): the caller's change before the look at waiters. */
	fence_sc();
	if (ld_rlx32(b + 4) == 0)
		return;
	faa32(b, 1, memory_order_relaxed);
	(void)futex_async((int32_t *)b, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/*
 * Async-signal-safe: an atomic store, two atomic adds and two system
 * calls. The flag is stored before each bell's futex word is bumped; a
 * sleeper checks the flag after it read the word (pbri_bell_sleep), so
 * either it sees the flag or FUTEX_WAIT finds the word changed (EAGAIN):
 * no interrupt falls between its check and its sleep. The bump is a
 * spurious wake-up for anyone else asleep on the bell, which every
 * sleeper tolerates (it re-checks its condition).
 */
void pbr_ring_interrupt(struct pbr_ring *r)
{
	static const uint32_t bells[] = {PBR_CTL_DATA_BELL, PBR_CTL_SPACE_BELL};
	size_t i;
	int saved = errno;

	atomic_store_explicit(&r->interrupted, 1, memory_order_seq_cst);
	/* A read-only mapping cannot take the bumps, and needs none: only
	 * taps wait on it, and they poll the flag (pbri_poll_sleep). */
	if (r->readonly)
		return;
	for (i = 0; i < sizeof(bells) / sizeof(bells[0]); i++) {
		uint8_t *b = ctl_word(r, bells[i]);

		faa32(b, 1, memory_order_seq_cst);
		(void)futex_async((int32_t *)b, FUTEX_WAKE, INT_MAX, NULL, NULL,
				  0);
	}
	errno = saved;
}

int pbr_ring_interrupted(const struct pbr_ring *r)
{
	return atomic_load_explicit(&((struct pbr_ring *)r)->interrupted,
				    memory_order_relaxed) != 0;
}
