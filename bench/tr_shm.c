/* SPDX-License-Identifier: MIT */
/*
 * The two shared-memory baselines, both depth-1 mailboxes per direction
 * in one anonymous MAP_SHARED mapping:
 *
 * floor: the physical floor. Both directions' sequence and stamp words
 *	share ONE 64-byte line; the receiver spins on it (with the same
 *	pause hint pbring uses). A 64 B message is that line; larger ones
 *	are also copied into a payload area first, as any shared-memory
 *	transport must. Nothing else happens, so no transport can beat it.
 * futex: a raw futex ping-pong. The sender stores a counter and always
 *	calls FUTEX_WAKE; the receiver always sleeps in FUTEX_WAIT (no spin
 *	phase). The floor of "wake a sleeping process".
 *
 * With chan.flow (fixed-rate runs) the sender first waits until the
 * previous message was consumed, on a line of its own, so that a slow
 * receiver delays the sender as a queue would.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "harness.h"

struct mbox_pair {
	/* The one line both directions spin on. */
	struct {
		uint64_t seq[2];
		uint64_t stamp[2];
		uint32_t futex[2]; /* futex transport: posted counters */
	} line __attribute__((aligned(64)));
	uint64_t consumed[2] __attribute__((aligned(64))); /* with flow */
	uint8_t payload[] __attribute__((aligned(64)));	   /* 2 x msg_bytes */
};

struct mbox_local {
	struct mbox_pair *mb;
	uint8_t *src, *dst;
	uint64_t posted;   /* sender: messages sent */
	uint64_t seen_seq; /* receiver: last sequence word seen */
	uint32_t seen_ctr; /* receiver (futex): last counter seen */
};

static size_t mbox_size(const struct chan *c)
{
	return sizeof(struct mbox_pair) + 2 * (size_t)c->msg_bytes + 64;
}

static const char *mbox_unsupported(const struct chan *c)
{
	if (c->nprod != 1 || c->nread != 1)
		return "a depth-1 mailbox has one sender and one receiver";
	return NULL;
}

/* Both directions of a pair share one mapping: the second one made
 * borrows the first's. */
static int mbox_prepare(struct chan *c)
{
	struct mbox_pair *mb;

	if (c->peer && c->peer->shared) {
		c->shared = c->peer->shared;
		return 0;
	}
	mb = shm_anon(mbox_size(c));
	if (!mb)
		return -ENOMEM;
	mb->line.seq[0] = mb->line.seq[1] = UINT64_MAX; /* nothing yet */
	c->shared = mb;
	return 0;
}

static void mbox_cleanup(struct chan *c)
{
	if (c->peer && c->peer->shared == c->shared && c->dir == 1)
		return; /* the other direction frees it */
	shm_anon_free(c->shared, mbox_size(c));
	c->shared = NULL;
}

static int mbox_open(struct chan *c, enum role role, unsigned idx)
{
	struct mbox_local *l = calloc(1, sizeof(*l));

	(void)idx;
	if (!l)
		return -ENOMEM;
	l->mb = c->shared;
	l->seen_seq = UINT64_MAX;
	if (role == ROLE_PROD)
		l->src = payload_new(c->msg_bytes);
	else
		l->dst = malloc(c->msg_bytes);
	c->local = l;
	return (l->src || l->dst) ? 0 : -ENOMEM;
}

static void mbox_close(struct chan *c)
{
	struct mbox_local *l = c->local;

	if (!l)
		return;
	free(l->src);
	free(l->dst);
	free(l);
	c->local = NULL;
}

static uint8_t *mbox_payload(const struct chan *c, struct mbox_pair *mb)
{
	return mb->payload + (size_t)c->dir * c->msg_bytes;
}

/* Sender side common to both: flow control, payload, stamp. */
static void mbox_fill(struct chan *c, struct mbox_local *l, const struct msg *m)
{
	struct mbox_pair *mb = l->mb;
	unsigned d = c->dir;

	if (c->flow)
		while (__atomic_load_n(&mb->consumed[d], __ATOMIC_ACQUIRE) !=
		       l->posted)
			bench_relax();
	/* A 64 B message is the line itself; larger ones are copied. */
	if (c->msg_bytes > 64)
		memcpy(mbox_payload(c, mb), l->src, c->msg_bytes);
	__atomic_store_n(&mb->line.stamp[d], m->stamp, __ATOMIC_RELAXED);
	l->posted++;
}

/* Receiver side common to both. */
static void mbox_take(struct chan *c, struct mbox_local *l, uint64_t seq,
		      struct msg *m)
{
	struct mbox_pair *mb = l->mb;
	unsigned d = c->dir;

	m->seq = seq;
	m->stamp = __atomic_load_n(&mb->line.stamp[d], __ATOMIC_RELAXED);
	l->seen_seq = seq;
	if (c->verify && c->msg_bytes > 64)
		memcpy(l->dst, mbox_payload(c, mb), c->msg_bytes);
	if (c->flow)
		__atomic_add_fetch(&mb->consumed[d], 1, __ATOMIC_RELEASE);
}

/* --- floor -----------------------------------------------------------------
 */

static int floor_send(struct chan *c, const struct msg *m)
{
	struct mbox_local *l = c->local;

	mbox_fill(c, l, m);
	__atomic_store_n(&l->mb->line.seq[c->dir], m->seq, __ATOMIC_RELEASE);
	return 0;
}

static int floor_recv(struct chan *c, struct msg *m)
{
	struct mbox_local *l = c->local;
	uint64_t *w = &l->mb->line.seq[c->dir], v;

	while ((v = __atomic_load_n(w, __ATOMIC_ACQUIRE)) == l->seen_seq)
		bench_relax();
	mbox_take(c, l, v, m);
	return 0;
}

const struct xport xport_floor = {
	.name = "floor",
	.modes = 1u << MODE_SPIN,
	.unsupported = mbox_unsupported,
	.prepare = mbox_prepare,
	.open = mbox_open,
	.send = floor_send,
	.recv = floor_recv,
	.close = mbox_close,
	.cleanup = mbox_cleanup,
};

/* --- futex -----------------------------------------------------------------
 */

/* Shared (not FUTEX_PRIVATE_FLAG) futexes: two processes, one mapping. */
static long futex(uint32_t *w, int op, uint32_t val)
{
	return syscall(SYS_futex, w, op, val, NULL, NULL, 0);
}

static int futex_send(struct chan *c, const struct msg *m)
{
	struct mbox_local *l = c->local;
	struct mbox_pair *mb = l->mb;

	mbox_fill(c, l, m);
	__atomic_store_n(&mb->line.seq[c->dir], m->seq, __ATOMIC_RELAXED);
	__atomic_store_n(&mb->line.futex[c->dir], (uint32_t)l->posted,
			 __ATOMIC_RELEASE);
	futex(&mb->line.futex[c->dir], FUTEX_WAKE, INT_MAX);
	return 0;
}

static int futex_recv(struct chan *c, struct msg *m)
{
	struct mbox_local *l = c->local;
	uint32_t *w = &l->mb->line.futex[c->dir], v;

	/* No spinning at all: this baseline is the sleeping path. */
	while ((v = __atomic_load_n(w, __ATOMIC_ACQUIRE)) == l->seen_ctr)
		if (futex(w, FUTEX_WAIT, v) < 0 && errno != EAGAIN &&
		    errno != EINTR)
			return -errno;
	l->seen_ctr = v;
	mbox_take(c, l,
		  __atomic_load_n(&l->mb->line.seq[c->dir], __ATOMIC_RELAXED),
		  m);
	return 0;
}

const struct xport xport_futex = {
	.name = "futex",
	.modes = 1u << MODE_BLOCK,
	.unsupported = mbox_unsupported,
	.prepare = mbox_prepare,
	.open = mbox_open,
	.send = futex_send,
	.recv = futex_recv,
	.close = mbox_close,
	.cleanup = mbox_cleanup,
};

/* memcpy: no transport at all; cases.c runs it in one process as the
 * bandwidth reference of the 1 MiB throughput target. */
const struct xport xport_memcpy = {
	.name = "memcpy",
	.modes = 1u << MODE_SPIN,
	.throughput = true,
};
