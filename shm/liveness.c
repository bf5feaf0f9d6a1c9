/* SPDX-License-Identifier: MIT */
/*
 * Liveness and recovery (FORMAT.md "Liveness").
 *
 * Every producer and reader holds an open-file-description lock on the
 * first byte of its participant entry, taken on a file description of its
 * own. The kernel drops the lock when the process dies, so "the lock can be
 * taken" proves death; PIDs and clocks are never trusted for that. Taking
 * the lock is also how an entry is owned: a joiner, a reaper and a prober
 * all lock before they touch an entry, so at most one of them acts on it.
 *
 * Recovery needs no attribution. A claimed sequence s that is not
 * committed can only belong to a producer whose pending word says s or
 * CLAIMING; if no live producer shows either, the owner is dead and s
 * becomes an abandoned record by one CAS on the commit word, which a late
 * commit by a presumed-dead owner then fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define E_STATE offsetof(struct pbr_layout_producer, state)
#define E_PID offsetof(struct pbr_layout_producer, pid)
#define E_PENDING offsetof(struct pbr_layout_producer, pending)
#define E_COMMITTED offsetof(struct pbr_layout_producer, committed)
#define R_CURSOR offsetof(struct pbr_layout_reader, cursor)
#define R_STATE offsetof(struct pbr_layout_reader, state)
#define R_FLAGS offsetof(struct pbr_layout_reader, flags)
#define STATS(field) (PBR_CTL_STATS + offsetof(struct pbr_layout_stats, field))

int pbri_fd_reopen(int fd)
{
	char path[32];
	int nfd;

	/* A new open file description of the same object: OFD locks are
	 * owned per description, so each participant needs its own. This
	 * works after the name is unlinked, unlike a second shm_open. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	nfd = open(path, O_RDWR | O_CLOEXEC);
	return nfd < 0 ? -errno : nfd;
}

static int lock_op(int fd, off_t off, short type)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = off;
	fl.l_len = 1;
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	return (errno == EAGAIN || errno == EACCES) ? -EAGAIN : -errno;
}

int pbri_lock_take(int fd, off_t off)
{
	return lock_op(fd, off, F_WRLCK);
}

void pbri_lock_drop(int fd, off_t off)
{
	(void)lock_op(fd, off, F_UNLCK);
}

bool pbri_lock_held(int fd, off_t off)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = off;
	fl.l_len = 1;
	/* GETLK tests without taking: a probe that took the lock, even for
	 * a moment, could make the holder-to-be's own take fail. */
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return true; /* cannot tell: do not call it dead */
	return fl.l_type != F_UNLCK;
}

bool pbri_reader_is_durable(const struct pbr_ring *r, const uint8_t *e)
{
	return r->durable && (ld_rlx32(e + R_FLAGS) & PBR_READER_DURABLE);
}

/* Is reader entry e, whose lock we hold, a detached durable reader? */
static bool detached_durable(const struct pbr_ring *r, const uint8_t *e)
{
	return ld_acq32(e + R_STATE) == PBR_ENTRY_ACTIVE &&
	       pbri_reader_is_durable(r, e);
}

int pbri_entry_take(struct pbr_ring *r, int fd, uint8_t *table, uint32_t n,
		    size_t state_off, uint32_t *index)
{
	int attempt;
	uint32_t i;

	/* A prober may hold a free entry's lock for a moment; retry. A lock
	 * obtained on a durable reader's entry is its dead owner's: that
	 * entry is not free (it keeps gating until taken over by name or
	 * dropped, §8.4), so pass over it. */
	for (attempt = 0; attempt < 50; attempt++) {
		for (i = 0; i < n; i++) {
			uint8_t *e = table + (size_t)i * PBR_ENTRY_SIZE;
			off_t off = entry_lock_off(r, e);

			if (pbri_lock_take(fd, off) != 0)
				continue;
			if (table != r->rtab || !detached_durable(r, e)) {
				*index = i;
				return 0;
			}
			pbri_lock_drop(fd, off);
		}
		if (n == 1 && ld_acq32(table + state_off) == PBR_ENTRY_ACTIVE)
			break; /* the only entry is live: no point waiting */
		usleep(1000);
	}
	return -EBUSY;
}

int pbr_reader_name_check(const char *name)
{
	size_t n;

	if (!name)
		return -EINVAL;
	for (n = 0; name[n]; n++) {
		char c = name[n];

		if (n >= PBR_READER_NAME_MAX ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return -EINVAL;
	}
	return n ? 0 : -EINVAL;
}

int pbri_reader_name(const uint8_t *e, char *out)
{
	const uint8_t *src = e + offsetof(struct pbr_layout_reader, name);
	uint64_t w[PBR_READER_NAME_SIZE / 8];
	size_t i;

	/* One copy of the untrusted bytes, then only the copy is judged.
	 * Word loads: a joiner may be writing a FREE entry's name. */
	for (i = 0; i < PBR_READER_NAME_SIZE / 8; i++)
		w[i] = ld_rlx64(src + 8 * i);
	memcpy(out, w, sizeof(w));
	if (!memchr(out, '\0', PBR_READER_NAME_SIZE) ||
	    pbr_reader_name_check(out)) {
		out[0] = '\0';
		return -EINVAL;
	}
	return 0;
}

static off_t name_lock_off(const struct pbr_ring *r)
{
	return (off_t)(r->ctl - r->base) + PBR_CTL_NAME_LOCK;
}

int pbri_name_lock(struct pbr_ring *r, int fd)
{
	int attempt, rc;

	/* Held only across a search and an entry's join or drop. */
	for (attempt = 0; attempt < 1000; attempt++) {
		rc = pbri_lock_take(fd, name_lock_off(r));
		if (rc != -EAGAIN)
			return rc;
		usleep(1000);
	}
	return -EBUSY;
}

void pbri_name_unlock(struct pbr_ring *r, int fd)
{
	pbri_lock_drop(fd, name_lock_off(r));
}

/* The index of the durable reader named @name, or -ENOENT. */
static int durable_find(struct pbr_ring *r, const char *name)
{
	char got[PBR_READER_NAME_SIZE];
	uint32_t i;

	for (i = 0; i < r->max_readers; i++) {
		const uint8_t *e = reader_entry(r, i);

		if (ld_acq32(e + R_STATE) != PBR_ENTRY_ACTIVE ||
		    !pbri_reader_is_durable(r, e) || pbri_reader_name(e, got) ||
		    strcmp(got, name) != 0)
			continue;
		return (int)i;
	}
	return -ENOENT;
}

int pbri_durable_take(struct pbr_ring *r, int fd, const char *name,
		      uint32_t *index)
{
	char got[PBR_READER_NAME_SIZE];
	int attempt, i;

	/* A prober or a joiner passing over the entry may hold its lock
	 * for a moment: only a lock that stays held means a live owner. */
	for (attempt = 0; attempt < 20; attempt++) {
		uint8_t *e;

		i = durable_find(r, name);
		if (i < 0)
			return i;
		e = reader_entry(r, (uint32_t)i);
		if (pbri_lock_take(fd, entry_lock_off(r, e)) != 0) {
			usleep(1000);
			continue;
		}
		/* Under the lock: still that reader (not dropped since)? */
		if (detached_durable(r, e) && !pbri_reader_name(e, got) &&
		    !strcmp(got, name)) {
			*index = (uint32_t)i;
			return 0;
		}
		pbri_lock_drop(fd, entry_lock_off(r, e));
	}
	return -EBUSY;
}

/* A test, not a take (§5.1): a probe that held the lock even for a moment
 * would send a producer joining at that moment to another entry, leaving
 * the dead one, and the sequence it holds, for somebody else to recover. */
bool pbri_entry_alive(struct pbr_ring *r, const uint8_t *e)
{
	return pbri_lock_held(r->fd, entry_lock_off(r, e));
}

uint64_t pbri_gating_limit(struct pbr_ring *r, uint64_t s)
{
	uint64_t min = s;
	uint32_t i;

	/* E4 (producer side): pairs with the seq_cst store of ACTIVE in
	 * reader_join(); a reader this scan misses saw our claim. */
	fence_sc();
	for (i = 0; i < r->max_readers; i++) {
		const uint8_t *e = reader_entry(r, i);
		uint64_t cur;

		if (ld_acq32(e + R_STATE) != PBR_ENTRY_ACTIVE ||
		    !(ld_rlx32(e + R_FLAGS) & PBR_READER_GATING))
			continue;
		/* A2: pairs with R2 in pbr_reader_release(): the reader is
		 * done with every slot below cur. */
		cur = ld_acq64(e + R_CURSOR);
		if (seq_before(cur, min))
			min = cur;
	}
	return min + r->slot_count;
}

/* Does a live producer possibly own sequence s (pending s or CLAIMING)? */
static bool live_claimant(struct pbr_ring *r, uint64_t s)
{
	uint32_t i;

	for (i = 0; i < r->max_producers; i++) {
		uint8_t *e = producer_entry(r, i);
		uint64_t p;

		if (ld_acq32(e + E_STATE) == PBR_ENTRY_FREE)
			continue;
		/* A6: pairs with R6 (pending = IDLE after the commit) and R3
		 * (claim published after pending = CLAIMING or s). */
		p = ld_acq64(e + E_PENDING);
		if (p != PBR_PENDING_SEQ(s) && p != PBR_PENDING_CLAIMING)
			continue;
		if (pbri_entry_alive(r, e))
			return true;
	}
	return false;
}

int pbri_recover_seq(struct pbr_ring *r, uint64_t s)
{
	uint8_t *h = slot_at(r, s);
	uint64_t v;

	/* A3: pairs with R3 in the producer's claim: if s is claimed, its
	 * claimant's pending word (CLAIMING or s) is visible now. */
	if (!seq_before(s, ld_acq64(ctl_word(r, PBR_CTL_CLAIM))))
		return -EAGAIN;
	if (live_claimant(r, s))
		return -EAGAIN;
	v = ld_acq64(h);
	if (v == PBR_COMMIT_DONE(s) || v == PBR_COMMIT_ABANDONED(s))
		return 0;
	if (v != PBR_COMMIT_BUSY(s) && !prev_finished(r, s, v))
		return -EAGAIN; /* an earlier lap is stuck: recover it first */
	/* A claim may overshoot the gating limit (the fetch-add comes before
	 * the wait for space). Until its owner marked the slot BUSY, the slot
	 * still holds s - N for a gating reader that has not read it. */
	if (v != PBR_COMMIT_BUSY(s) && !seq_before(s, pbri_gating_limit(r, s)))
		return -EAGAIN;
	PBR_CRASH("recover");
	/* R5: one recoverer wins; a late commit's CAS or check then fails. */
	if (!cas64(h, &v, PBR_COMMIT_ABANDONED(s), memory_order_release))
		return commit_cmp(v, s) >= 0 ? 0 : -EAGAIN;
	faa64(ctl_word(r, STATS(abandoned)), 1, memory_order_relaxed);
	pbri_bell_ring(r, PBR_CTL_DATA_BELL);
	return 0;
}

/* The full sequence whose low 62 bits are in pending word p, taken in
 * (claim - 2^62, claim]: a single producer records s in pending before it
 * publishes claim = s + 1, so s may equal claim (not yet claimed, and
 * then recover_seq() leaves it alone). */
static uint64_t pending_seq(struct pbr_ring *r, uint64_t p)
{
	uint64_t c = ld_acq64(ctl_word(r, PBR_CTL_CLAIM));

	return c - ((c - (p >> 2)) & PBR_SEQ62_MASK);
}

void pbri_reap_producer(struct pbr_ring *r, uint8_t *e)
{
	uint64_t p = ld_acq64(e + E_PENDING);
	uint32_t st = PBR_ENTRY_ACTIVE;

	/* The caller holds e's lock. Clear pending first: recovery of the
	 * corpse's sequence must not see this entry as its live owner. */
	st_rel64(e + E_PENDING, PBR_PENDING_IDLE);
	PBR_CRASH("reap_producer");
	if ((p & 3) == 2)
		(void)pbri_recover_seq(r, pending_seq(r, p));
	if (cas32(e + E_STATE, &st, PBR_ENTRY_FREE, memory_order_release))
		faa64(ctl_word(r, STATS(producers_reaped)), 1,
		      memory_order_relaxed);
}

bool pbri_reap_reader(struct pbr_ring *r, uint8_t *e)
{
	uint32_t st = PBR_ENTRY_ACTIVE;

	/* A dead durable reader is detached, not dead: it keeps gating at
	 * its cursor until taken over or dropped (§8.4). */
	if (pbri_reader_is_durable(r, e))
		return false;
	PBR_CRASH("reap_reader");
	if (!cas32(e + R_STATE, &st, PBR_ENTRY_FREE, memory_order_release))
		return false;
	faa64(ctl_word(r, STATS(readers_reaped)), 1, memory_order_relaxed);
	/* It may have been the reader that held producers back. */
	pbri_bell_ring(r, PBR_CTL_SPACE_BELL);
	return true;
}

/* Lock entry e with the ring's probe description; if that works, its
 * owner is dead (or it is free) and we may act on it. */
static bool take_dead(struct pbr_ring *r, uint8_t *e, uint32_t state_off)
{
	if (ld_acq32(e + state_off) != PBR_ENTRY_ACTIVE)
		return false;
	if (pbri_lock_take(r->fd, entry_lock_off(r, e)) != 0)
		return false;
	if (ld_acq32(e + state_off) == PBR_ENTRY_ACTIVE)
		return true;
	pbri_lock_drop(r->fd, entry_lock_off(r, e));
	return false;
}

int pbri_reap_dead_readers(struct pbr_ring *r)
{
	int n = 0;
	uint32_t i;

	for (i = 0; i < r->max_readers; i++) {
		uint8_t *e = reader_entry(r, i);

		pthread_mutex_lock(&r->probe_lock);
		if (take_dead(r, e, R_STATE)) {
			n += pbri_reap_reader(r, e);
			pbri_lock_drop(r->fd, entry_lock_off(r, e));
		}
		pthread_mutex_unlock(&r->probe_lock);
	}
	return n;
}

int pbr_ring_reclaim(struct pbr_ring *r)
{
	int n = 0;
	uint32_t i;

	if (r->readonly)
		return -EROFS; /* reaping takes locks and writes entries */
	for (i = 0; i < r->max_producers; i++) {
		uint8_t *e = producer_entry(r, i);

		pthread_mutex_lock(&r->probe_lock);
		if (take_dead(r, e, E_STATE)) {
			pbri_reap_producer(r, e);
			pbri_lock_drop(r->fd, entry_lock_off(r, e));
			n++;
		}
		pthread_mutex_unlock(&r->probe_lock);
	}
	return n + pbri_reap_dead_readers(r);
}

/* A dead producer's pending word as far as anyone still owes it work: a
 * corpse keeps its word until it is reaped, even once its sequence was
 * committed, recovered into an abandoned record or passed by a later lap
 * (or, single producer, never claimed), and then it is owed nothing. */
static uint64_t settled_pending(struct pbr_ring *r, uint64_t p)
{
	uint64_t s, v, c = ld_acq64(ctl_word(r, PBR_CTL_CLAIM));

	if ((p & 3) != 2)
		return p;
	s = pending_seq(r, p);
	if (s == c)
		return PBR_PENDING_IDLE;
	v = ld_acq64(slot_at(r, s));
	if (commit_cmp(v, s) > 0 || v == PBR_COMMIT_DONE(s) ||
	    v == PBR_COMMIT_ABANDONED(s))
		return PBR_PENDING_IDLE;
	return p;
}

static void describe_producer(struct pbr_ring *r, uint32_t i,
			      struct pbr_participant *pt)
{
	uint8_t *e = producer_entry(r, i);

	memset(pt, 0, sizeof(*pt));
	pt->index = i;
	pt->alive = pbri_entry_alive(r, e);
	pt->pid = ld_rlx32(e + E_PID);
	pt->pending = ld_acq64(e + E_PENDING);
	if (!pt->alive)
		pt->pending = settled_pending(r, pt->pending);
	pt->position = ld_rlx64(e + E_COMMITTED);
	pt->bytes = ld_rlx64(e + offsetof(struct pbr_layout_producer, bytes));
	pt->aborts = ld_rlx64(e + offsetof(struct pbr_layout_producer, aborts));
	pt->blocked_ns =
		ld_rlx64(e + offsetof(struct pbr_layout_producer, blocked_ns));
}

/* Reader i's latency histogram, if its block is its own (FORMAT.md §5.5:
 * a block stamped with another joined_ns is an earlier owner's). */
static void describe_latency(struct pbr_ring *r, uint32_t i,
			     struct pbr_participant *pt)
{
	const struct pbr_layout_metrics *m = reader_metrics(r, i);
	uint8_t *e = reader_entry(r, i);
	unsigned b;

	if (!m ||
	    ld_rlx64(&m->joined_ns) !=
		    ld_rlx64(e + offsetof(struct pbr_layout_reader, joined_ns)))
		return;
	pt->has_latency = 1;
	pt->latency_sum_ns = ld_rlx64(&m->latency_sum_ns);
	for (b = 0; b < PBR_LATENCY_BUCKETS; b++)
		pt->latency[b] = ld_rlx64(&m->latency[b]);
}

static void describe_reader(struct pbr_ring *r, uint32_t i,
			    struct pbr_participant *pt)
{
	uint8_t *e = reader_entry(r, i);

	memset(pt, 0, sizeof(*pt));
	pt->index = i;
	pt->is_reader = 1;
	pt->alive = pbri_entry_alive(r, e);
	pt->flags = ld_rlx32(e + R_FLAGS);
	pt->pid = ld_rlx32(e + offsetof(struct pbr_layout_reader, pid));
	pt->position = ld_acq64(e + R_CURSOR);
	pt->delivered =
		ld_rlx64(e + offsetof(struct pbr_layout_reader, delivered));
	pt->lost = ld_rlx64(e + offsetof(struct pbr_layout_reader, lost));
	pt->abandoned =
		ld_rlx64(e + offsetof(struct pbr_layout_reader, abandoned));
	pt->bad = ld_rlx64(e + offsetof(struct pbr_layout_reader, bad));
	pt->crc_errors =
		ld_rlx64(e + offsetof(struct pbr_layout_reader, crc_errors));
	pt->decode_errors =
		ld_rlx64(e + offsetof(struct pbr_layout_reader, decode_errors));
	describe_latency(r, i, pt);
	if (r->durable && (pt->flags & PBR_READER_DURABLE)) { /* read once */
		pt->durable = 1;
		pt->detached = !pt->alive;
		(void)pbri_reader_name(e, pt->name);
	}
}

int pbr_ring_participants(struct pbr_ring *r, struct pbr_participant *out,
			  unsigned max)
{
	unsigned n = 0;
	uint32_t i;

	for (i = 0; i < r->max_producers; i++) {
		if (ld_acq32(producer_entry(r, i) + E_STATE) !=
		    PBR_ENTRY_ACTIVE)
			continue;
		if (n < max)
			describe_producer(r, i, &out[n]);
		n++;
	}
	for (i = 0; i < r->max_readers; i++) {
		if (ld_acq32(reader_entry(r, i) + R_STATE) != PBR_ENTRY_ACTIVE)
			continue;
		if (n < max)
			describe_reader(r, i, &out[n]);
		n++;
	}
	return (int)n;
}

int pbr_ring_drop_reader(struct pbr_ring *r, const char *name)
{
	uint32_t i;
	int fd, rc;

	if (r->readonly)
		return -EROFS;
	if (!r->durable)
		return -EOPNOTSUPP;
	if (pbr_reader_name_check(name))
		return -EINVAL;
	/* A description of our own: the name lock and the entry's lock
	 * must not be shared with this handle's probes. */
	fd = pbri_fd_reopen(r->fd);
	if (fd < 0)
		return fd;
	rc = pbri_name_lock(r, fd);
	if (!rc) {
		rc = pbri_durable_take(r, fd, name, &i);
		if (!rc)
			pbri_durable_remove(r, fd, reader_entry(r, i));
		pbri_name_unlock(r, fd);
	}
	close(fd);
	return rc;
}

void pbri_durable_remove(struct pbr_ring *r, int fd, uint8_t *e)
{
	uint32_t st = PBR_ENTRY_ACTIVE;

	/* With e's lock held (§9.6): it stops gating; producers may go on. */
	(void)cas32(e + R_STATE, &st, PBR_ENTRY_FREE, memory_order_release);
	pbri_bell_ring(r, PBR_CTL_SPACE_BELL);
	pbri_lock_drop(fd, entry_lock_off(r, e));
}
