/* SPDX-License-Identifier: MIT */
/*
 * Containing SIGBUS. A peer (or anyone with write access to the object)
 * can shrink a ring's file while we have it mapped; touching a page past
 * the new end then raises SIGBUS, which would kill a reader that did
 * nothing wrong. Like libwayland's shm pools, we catch SIGBUS for
 * addresses inside our mappings, map anonymous zero pages over the rest of
 * the mapping so that the faulting access completes (a zero commit word
 * reads as "nothing published"), and flag the ring so that its next wait
 * or empty peek reports -EUCLEAN. Faults anywhere else go to the handler
 * that was installed before ours, or kill the process as they would have.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define PBR_MAX_MAPS 256

struct guarded_map {
	_Atomic uintptr_t base; /* 0 = free */
	_Atomic size_t size;
	atomic_int prot; /* the ring's: a read-only ring's stays read-only */
	_Atomic(atomic_int *) truncated;
};

static struct guarded_map maps[PBR_MAX_MAPS];
static struct sigaction prev_action;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static void chain(int sig, siginfo_t *si, void *uc)
{
	if (prev_action.sa_flags & SA_SIGINFO) {
		if (prev_action.sa_sigaction) {
			prev_action.sa_sigaction(sig, si, uc);
			return;
		}
	} else if (prev_action.sa_handler != SIG_DFL &&
		   prev_action.sa_handler != SIG_IGN) {
		prev_action.sa_handler(sig);
		return;
	}
	/* Default action: let the access fault again, uncaught. */
	(void)signal(sig, SIG_DFL); /* valid arguments: cannot fail */
}

/* Async-signal-safe: atomics, mmap and nothing else. */
static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	uintptr_t page = a & ~(uintptr_t)(PBR_PAGE - 1);
	int i;

	for (i = 0; i < PBR_MAX_MAPS; i++) {
		uintptr_t base = atomic_load(&maps[i].base);
		size_t size = atomic_load(&maps[i].size);

		if (!base || a < base || a - base >= size)
			continue;
		/* The faulting page's address, from si_addr: */
		/* NOLINTNEXTLINE(performance-no-int-to-ptr) */
		if (mmap((void *)page, base + size - page,
			 atomic_load(&maps[i].prot),
			 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1,
			 0) == MAP_FAILED)
			break;
		atomic_store(atomic_load(&maps[i].truncated), 1);
		return;
	}
	chain(sig, si, uc);
}

static void install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &prev_action);
}

void pbri_sigbus_guard(void *base, size_t size, int prot, atomic_int *truncated)
{
	int i;

	pthread_once(&install_once, install);
	for (i = 0; i < PBR_MAX_MAPS; i++) {
		uintptr_t expect = 0;

		/* base 1 reserves the entry while size is still 0, so the
		 * handler cannot match it half-filled. */
		if (atomic_compare_exchange_strong(&maps[i].base, &expect, 1)) {
			atomic_store(&maps[i].truncated, truncated);
			atomic_store(&maps[i].prot, prot);
			atomic_store(&maps[i].size, size);
			atomic_store(&maps[i].base, (uintptr_t)base);
			return;
		}
	}
	/* More than PBR_MAX_MAPS rings at once: this one is unguarded. */
}

void pbri_sigbus_unguard(void *base)
{
	int i;

	for (i = 0; i < PBR_MAX_MAPS; i++) {
		if (atomic_load(&maps[i].base) == (uintptr_t)base) {
			atomic_store(&maps[i].size, 0);
			atomic_store(&maps[i].base, 0);
			return;
		}
	}
}
