/* SPDX-License-Identifier: MIT */
/*
 * Stopping and watching, shared by produce and consume.
 *
 * Ctrl-C and SIGTERM: the handler records the signal and interrupts the
 * ring's waits (pbr_ring_interrupt is async-signal-safe), so a command
 * blocked on a full ring or an empty one stops at once, prints its summary
 * and exits 128 + signal. A second signal kills at once, for a command
 * stuck somewhere else.
 *
 * The watch: every few hundred ms of a run, tell the user about what
 * changed under them: a gating reader that died (reaped by our waits or
 * anyone's), and a ring removed or shrunk (a producer that never waits
 * would not notice otherwise).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static _Atomic(struct pbr_ring *) stop_ring;
static atomic_int stop_sig;

static void on_stop(int sig)
{
	struct pbr_ring *r;

	if (atomic_exchange(&stop_sig, sig) != 0) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigaction(sig, &sa, NULL);
		(void)raise(sig); /* dies of it; nothing to do if not */
		return;
	}
	r = atomic_load(&stop_ring);
	if (r)
		pbr_ring_interrupt(r);
}

void cli_stop_install(struct pbr_ring *ring)
{
	struct sigaction sa;

	atomic_store(&stop_ring, ring);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: sleeps (pacing, polling) end early too. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A signal that came before the ring was known. */
	if (ring && atomic_load(&stop_sig))
		pbr_ring_interrupt(ring);
}

void cli_stop_detach(struct pbr_ring *ring)
{
	sigset_t set, old;

	/* The handler must not interrupt a ring being unmapped. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	if (atomic_load(&stop_ring) == ring)
		atomic_store(&stop_ring, NULL);
	pbr_ring_detach(ring);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int cli_stop_signal(void)
{
	return atomic_load_explicit(&stop_sig, memory_order_relaxed);
}

int cli_stop_status(const char *ring)
{
	int sig = cli_stop_signal();

	cli_fail(ring, "interrupted");
	return 128 + (sig ? sig : SIGINT);
}

/* --- the watch ------------------------------------------------------------ */

/* Every entry a ring can have; the watch runs on the main thread only. */
static struct pbr_participant ps[2 * PBR_PARTICIPANTS_MAX];
#define PS_MAX (int)(sizeof(ps) / sizeof(ps[0]))

static void watch_snapshot(struct cli_watch *w)
{
	int i, n = pbr_ring_participants(w->ring, ps, PS_MAX);

	w->ngating = 0;
	for (i = 0; i < n && i < PS_MAX && w->ngating < CLI_WATCH_MAX; i++) {
		if (!ps[i].is_reader || (ps[i].flags & PBR_READER_LOSSY))
			continue;
		w->gating[w->ngating].index = ps[i].index;
		w->gating[w->ngating].pid = ps[i].pid;
		w->ngating++;
	}
}

void cli_watch_init(struct cli_watch *w, struct pbr_ring *ring,
		    const char *name)
{
	struct pbr_ring_stats st;

	memset(w, 0, sizeof(*w));
	w->ring = ring;
	w->name = name;
	pbr_ring_stats(ring, &st);
	w->reaped = st.readers_reaped;
	watch_snapshot(w);
}

static bool still_there(const struct cli_watch *now, uint32_t index,
			uint32_t pid)
{
	unsigned i;

	for (i = 0; i < now->ngating; i++)
		if (now->gating[i].index == index && now->gating[i].pid == pid)
			return true;
	return false;
}

/* @reaped readers were reaped since the last look: name the gating ones
 * gone. If more left than were reaped, some closed normally, and which
 * ones cannot be told: those lines say "left or died". */
static void report_reaped(struct cli_watch *w, uint64_t reaped)
{
	static struct cli_watch now;
	unsigned i, gone = 0;

	now = *w;
	watch_snapshot(&now);
	for (i = 0; i < w->ngating; i++)
		gone += !still_there(&now, w->gating[i].index,
				     w->gating[i].pid);
	for (i = 0; i < w->ngating; i++) {
		if (still_there(&now, w->gating[i].index, w->gating[i].pid))
			continue;
		cli_fail(w->name,
			 "gating reader %" PRIu32 " (pid %" PRIu32 ") %s%s",
			 w->gating[i].index, w->gating[i].pid,
			 gone > reaped ? "left or died" : "died",
			 now.ngating ? ""
				     : "; no gating reader left, so nothing "
				       "holds messages back now");
	}
	memcpy(w->gating, now.gating, sizeof(now.gating));
	w->ngating = now.ngating;
}

void cli_watch_full(struct cli_watch *w)
{
	int i, n = pbr_ring_participants(w->ring, ps, PS_MAX);
	const struct pbr_participant *slow = NULL;

	for (i = 0; i < n && i < PS_MAX; i++) {
		if (!ps[i].is_reader || (ps[i].flags & PBR_READER_LOSSY))
			continue;
		/* Wrapping order: the reader furthest behind holds the slot. */
		if (!slow || (int64_t)(ps[i].position - slow->position) < 0)
			slow = &ps[i];
	}
	if (slow && slow->durable)
		cli_fail(w->name,
			 "ring is full: waiting for durable reader %s%s to "
			 "read",
			 slow->name,
			 slow->detached ? " (detached: resume it with consume "
					  "--durable, or drop it with rm "
					  "--reader)"
					: "");
	else if (slow)
		cli_fail(w->name,
			 "ring is full: waiting for gating reader %" PRIu32
			 " (pid %" PRIu32 "%s) to read",
			 slow->index, slow->pid, slow->alive ? "" : ", dead");
}

int cli_watch_poll(struct cli_watch *w)
{
	struct pbr_ring_stats st;

	pbr_ring_stats(w->ring, &st);
	if (st.readers_reaped != w->reaped) {
		report_reaped(w, st.readers_reaped - w->reaped);
		w->reaped = st.readers_reaped;
	} else {
		watch_snapshot(w); /* readers that joined meanwhile */
	}
	return pbr_ring_check(w->ring);
}
