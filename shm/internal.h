/* SPDX-License-Identifier: MIT */
/*
 * Private state of ring, producer and reader handles, and the helpers
 * that the protocol files share. Not installed.
 */
#ifndef PBR_INTERNAL_H
#define PBR_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "atomics.h"
#include "pbring.h"

/* How long a waiter lets a slot or a full ring stay stuck before it
 * checks the liveness locks (and the longest it sleeps in one futex call). */
#define PBR_LIVENESS_NS (20LL * 1000 * 1000)
/* Pause-instruction spins before a waiter yields (PBR_WAIT_YIELD, about
 * 60 us on a current x86) or sleeps (PBR_WAIT_BLOCK, a few us: a sleeper
 * that spins long is scheduled as a CPU hog and wakes late). */
#define PBR_SPIN_LIMIT 2048u
#define PBR_BLOCK_SPIN_LIMIT 128u
/* How often a waiter checks that its ring is still linked and whole
 * (pbr_ring_check): one fstat per period of waiting. */
#define PBR_HEALTH_NS (100LL * 1000 * 1000)
/* Default wait for a ring still being created. */
#define PBR_ATTACH_TIMEOUT_NS (1000LL * 1000 * 1000)
/* An empty object with no creator holding the creation lock is damaged
 * after this long: a creator takes the lock just after the object
 * appears (FORMAT.md §12). */
#define PBR_CREATION_GRACE_NS (20LL * 1000 * 1000)

/* An open producer or reader, listed on its ring so that detach can close
 * it without knowing what it is. */
struct pbri_handle {
	struct pbri_handle *next;
	void (*close)(struct pbri_handle *h);
};

#define pbri_container_of(ptr, type, member)                                   \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

struct pbr_ring {
	/* Read on every reserve, commit and peek: first, together. The
	 * geometry is validated once at attach, never re-read from the ring. */
	uint8_t *slots; /* slot array */
	uint8_t *ctl;	/* control block */
	uint64_t seq_base, mask;
	uint32_t slot_count, slot_size, payload_cap;
	atomic_int truncated;	/* set by the SIGBUS guard */
	atomic_int interrupted; /* set by pbr_ring_interrupt() */
	uint32_t ring_flags;
	/* PBR_FEATURE_DURABLE_READERS: a reader entry flagged DURABLE is
	 * never reaped (FORMAT.md §8.4); without it the flag means nothing. */
	bool durable;
	/* PBR_ATTACH_READONLY: fd is O_RDONLY and the mapping PROT_READ, so
	 * any store into it would fault; only taps may be opened. */
	bool readonly;
	uint64_t crc_below; /* CRC policy: payloads shorter than this get one */
	uint8_t *base;	    /* mapping of the whole segment */
	size_t size;	    /* == superblock total_size == fstat size */
	int fd;		    /* this handle's OFD: probes liveness locks */
	/* OFD locks belong to the description, not the thread: two threads
	 * probing through fd would both "hold" an entry, and one's unlock
	 * would drop the other's. Reaps hold this (recursive); probes only
	 * test (F_OFD_GETLK) and need not. */
	pthread_mutex_t probe_lock;
	uint8_t *ptab; /* producer entries */
	uint8_t *rtab; /* reader entries */
	uint8_t *mtab; /* reader metrics blocks, or NULL (before format 1.2) */
	const uint8_t *schema;
	uint32_t max_producers, max_readers;
	struct pbr_ring_info info;
	pthread_mutex_t lock;	     /* guards the list below */
	struct pbri_handle *handles; /* open producers and readers */
};

#include "crash.h"

/* --- layout access ------------------------------------------------------ */
static inline uint8_t *slot_at(const struct pbr_ring *r, uint64_t seq)
{
	return r->slots + (size_t)(seq & r->mask) * r->slot_size;
}

static inline uint8_t *ctl_word(const struct pbr_ring *r, uint32_t off)
{
	return r->ctl + off;
}

static inline uint8_t *producer_entry(const struct pbr_ring *r, uint32_t i)
{
	return r->ptab + (size_t)i * PBR_ENTRY_SIZE;
}

static inline uint8_t *reader_entry(const struct pbr_ring *r, uint32_t i)
{
	return r->rtab + (size_t)i * PBR_ENTRY_SIZE;
}

/* Reader i's metrics block (FORMAT.md §5.5), or NULL on a ring without. */
static inline struct pbr_layout_metrics *
reader_metrics(const struct pbr_ring *r, uint32_t i)
{
	return r->mtab ? (struct pbr_layout_metrics *)(r->mtab +
						       (size_t)i *
							       PBR_METRICS_SIZE)
		       : NULL;
}

/* Byte offset of an entry in the segment: the byte its lock covers. */
static inline off_t entry_lock_off(const struct pbr_ring *r, const uint8_t *e)
{
	return (off_t)(e - r->base);
}

/* a comes before b, in the wrapping order of 64-bit sequences */
static inline bool seq_before(uint64_t a, uint64_t b)
{
	return (int64_t)(a - b) < 0;
}

#define PBR_SEQ62_MASK ((1ull << 62) - 1)

/* Where commit word v stands relative to sequence s: 0 = about s,
 * > 0 = about a later sequence (s was overwritten), < 0 = an earlier one. */
static inline int commit_cmp(uint64_t v, uint64_t s)
{
	uint64_t d = ((v >> 2) - s) & PBR_SEQ62_MASK;

	if (v == PBR_COMMIT_EMPTY)
		return -1; /* never written: before every sequence */
	if (d == 0)
		return 0;
	return d < (1ull << 61) ? 1 : -1;
}

/* What slot(s) holds once every sequence before s is finished. */
static inline bool prev_finished(const struct pbr_ring *r, uint64_t s,
				 uint64_t v)
{
	uint64_t p = s - r->slot_count;

	if (s - r->seq_base < r->slot_count)
		return v == PBR_COMMIT_EMPTY;
	return v == PBR_COMMIT_DONE(p) || v == PBR_COMMIT_ABANDONED(p);
}

/* -EUCLEAN once the object was found shrunk under our mapping. */
static inline int ring_broken(struct pbr_ring *r)
{
	return atomic_load_explicit(&r->truncated, memory_order_relaxed)
		       ? -EUCLEAN
		       : 0;
}

/* --- SIGBUS containment (sigbus.c) ---------------------------------------- */
/* prot: the mapping's, given to the zero pages that replace a truncated
 * tail, so a read-only ring stays read-only */
void pbri_sigbus_guard(void *base, size_t size, int prot,
		       atomic_int *truncated);
void pbri_sigbus_unguard(void *base);

/* --- time and waiting (wait.c) -------------------------------------------- */
/* pbr_clock_ns() as a signed count, for deadlines. */
static inline int64_t pbri_now_ns(void)
{
	return (int64_t)pbr_clock_ns();
}
uint64_t pbri_realtime_ns(void);

struct pbr_waiter {
	enum pbr_wait mode;
	uint32_t spins;
	bool signalled;	     /* a futex sleep returned EINTR */
	int64_t next_health; /* next pbr_ring_check() while waiting */
	int64_t timeout;     /* as passed to pbri_waiter_init() */
	int64_t deadline;    /* 0 = none (non-blocking), < 0 = forever */
	int64_t next_check;  /* 0 until the first wait step reads the clock */
	int64_t poll_ns;     /* taps: the next poll sleep, 0 before the first */
};

void pbri_waiter_init(struct pbr_waiter *w, enum pbr_wait mode,
		      int64_t timeout_ns);
/* One idle step: 0 = look again, 1 = time to sleep on a bell,
 * -EAGAIN / -ETIMEDOUT / -EINTR / -EIDRM / -EUCLEAN = give up. */
int pbri_waiter_step(struct pbr_waiter *w, struct pbr_ring *r);
/* True once per PBR_LIVENESS_NS of waiting: time to check for the dead. */
bool pbri_waiter_liveness_due(struct pbr_waiter *w);

/* Futex doorbells (bell = control-block offset of {futex, waiters}). */
uint32_t pbri_bell_prepare(struct pbr_ring *r, uint32_t bell);
void pbri_bell_sleep(struct pbr_ring *r, uint32_t bell, uint32_t seen,
		     struct pbr_waiter *w);
void pbri_bell_finish(struct pbr_ring *r, uint32_t bell);
/* Wake sleepers if any; the caller's stores must precede it. */
void pbri_bell_ring(struct pbr_ring *r, uint32_t bell);
/* A tap's sleep between polls (it cannot register on a bell): a few us,
 * doubling each time up to 1 ms, never past the deadline. */
void pbri_poll_sleep(struct pbr_waiter *w);

/* --- liveness (liveness.c) ------------------------------------------------ */
int pbri_fd_reopen(int fd);

/* Does the codec stamp timestamp_ns on this producer's messages (it was
 * opened without PBR_PRODUCER_NO_TIMESTAMP)? producer.c. */
bool pbri_producer_stamps(const struct pbr_producer *p);
/* Take entry e's lock with fd (non-blocking): 0, -EAGAIN if held. */
int pbri_lock_take(int fd, off_t off);
void pbri_lock_drop(int fd, off_t off);
/* Does another description hold the write lock at @off? Tests only. */
bool pbri_lock_held(int fd, off_t off);
/* Own a free (or dead) entry of table[0..n) by taking its lock with fd,
 * passing over detached durable readers (r->rtab only, §8.4); state_off
 * is where an entry keeps its state word. 0 (its index in *index) or
 * -EBUSY. */
int pbri_entry_take(struct pbr_ring *r, int fd, uint8_t *table, uint32_t n,
		    size_t state_off, uint32_t *index);
/* 1 if a live process holds entry e's lock, 0 if not. */
bool pbri_entry_alive(struct pbr_ring *r, const uint8_t *e);
/* Sequences below the returned bound may be written without overwriting
 * anything a gating reader still holds. */
uint64_t pbri_gating_limit(struct pbr_ring *r, uint64_t s);
/* Turn claimed-but-dead sequence s into an abandoned record.
 * 0 done (or already committed), -EAGAIN not provably abandoned. */
int pbri_recover_seq(struct pbr_ring *r, uint64_t s);
void pbri_reap_producer(struct pbr_ring *r, uint8_t *e);
bool pbri_reap_reader(struct pbr_ring *r, uint8_t *e);
int pbri_reap_dead_readers(struct pbr_ring *r);
/* Is reader entry e durable (DURABLE flag on a ring with the feature)?
 * Meaningful with e's lock held, or as a snapshot. */
bool pbri_reader_is_durable(const struct pbr_ring *r, const uint8_t *e);
/* Copy reader entry e's name into out (PBR_READER_NAME_SIZE bytes,
 * NUL-terminated): 0 if it is a valid name, -EINVAL (out "") if not. */
int pbri_reader_name(const uint8_t *e, char *out);
/* The name-lock (PBR_CTL_NAME_LOCK) with fd, retrying for a while:
 * 0 or -EBUSY / -errno. */
int pbri_name_lock(struct pbr_ring *r, int fd);
void pbri_name_unlock(struct pbr_ring *r, int fd);
/* Lock the durable reader named @name with fd, its owner being dead:
 * 0 (its index in *index), -ENOENT none, -EBUSY its owner is alive. */
int pbri_durable_take(struct pbr_ring *r, int fd, const char *name,
		      uint32_t *index);
/* Remove durable reader entry e, whose lock fd holds; drops the lock. */
void pbri_durable_remove(struct pbr_ring *r, int fd, uint8_t *e);

/* --- open handles (segment.c): detach closes what is still open -------- */
void pbri_ring_add_handle(struct pbr_ring *r, struct pbri_handle *h);
void pbri_ring_forget_handle(struct pbr_ring *r, struct pbri_handle *h);

/* --- CRC32C (crc32c.c): the slot checksum of FORMAT.md §6.2 ----------- */

/* Both take and return the plain CRC value (no pre/post inversion is
 * visible to callers), exactly like pbr_crc32c(). */
uint32_t pbri_crc32c_sw(uint32_t crc, const void *buf, size_t len);
/* Only valid when pbri_crc32c_hw_available(); falls back to software
 * otherwise (so that tests may call it unconditionally). */
uint32_t pbri_crc32c_hw(uint32_t crc, const void *buf, size_t len);
bool pbri_crc32c_hw_available(void);
/* Copy @len bytes from @src to @dst (not overlapping) and return their
 * CRC32C continuing from @crc: one read of the bytes where the CPU folds
 * (AVX-512 VPCLMULQDQ, from 512 bytes), else memcpy then pbr_crc32c. */
uint32_t pbri_crc32c_copy(uint32_t crc, void *dst, const void *src, size_t len);

#endif /* PBR_INTERNAL_H */
