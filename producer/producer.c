/* SPDX-License-Identifier: MIT */
/*
 * Producers: claim a sequence, wait for space, mark the slot BUSY, hand it
 * out, commit (FORMAT.md "Producing").
 *
 * Single-producer rings claim with a private counter and mirror it into the
 * shared claim word with a plain release store: no read-modify-write per
 * message. Multi-producer rings claim with one fetch-add and never wait for
 * each other: completion may be out of order, readers stop at the first
 * slot not yet committed. Each producer caches the gating limit (the
 * slowest gating reader's cursor + slot_count) and rescans the reader table
 * only when a claim reaches it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

struct pbr_producer {
	struct pbr_ring *ring;
	struct pbri_handle handle; /* on the ring's list, for detach */
	uint8_t *entry;
	int fd; /* holds the entry's liveness lock */
	uint16_t id;
	bool single;   /* single-producer ring: no RMW per message */
	bool claimed;  /* seq is claimed (maybe not yet writable) */
	bool reserved; /* seq's slot is marked BUSY and handed out */
	bool dead;     /* taken for dead: the entry may be another's now */
	bool stamp;    /* the codec stamps timestamp_ns (no NO_TIMESTAMP) */
	pid_t pid;     /* opener: a forked child must not touch the entry */
	enum pbr_wait wait;
	uint64_t next;	/* SP: next sequence to claim */
	uint64_t seq;	/* claimed sequence */
	uint64_t limit; /* cached: sequences < limit are not gated */
	uint64_t committed;
	uint64_t bytes, aborts, blocked_ns; /* mirrored in the entry (1.1) */
};

#define E_STATE offsetof(struct pbr_layout_producer, state)
#define E_PENDING offsetof(struct pbr_layout_producer, pending)

static void join(struct pbr_ring *r, struct pbr_producer *p)
{
	struct pbr_layout_producer *e = (struct pbr_layout_producer *)p->entry;

	/* We hold the lock: a non-free entry is a dead producer's. */
	if (ld_acq32(p->entry + E_STATE) != PBR_ENTRY_FREE)
		pbri_reap_producer(r, p->entry);
	st_rlx32(&e->pid, (uint32_t)getpid());
	st_rlx64(&e->committed, 0);
	st_rlx64(&e->bytes, 0);
	st_rlx64(&e->aborts, 0);
	st_rlx64(&e->blocked_ns, 0);
	st_rlx64(&e->joined_ns, pbri_realtime_ns());
	st_rel64(&e->pending, PBR_PENDING_IDLE);
	st_rel32(&e->state, PBR_ENTRY_ACTIVE);
	p->next = ld_acq64(ctl_word(r, PBR_CTL_CLAIM));
	p->limit = p->next; /* forces a scan of the readers on first use */
}

/* Detach closes a producer still open (pbri_handle). */
static void close_handle(struct pbri_handle *h)
{
	(void)pbr_producer_close(
		pbri_container_of(h, struct pbr_producer, handle));
}

int pbr_producer_open(struct pbr_ring *r, const struct pbr_producer_opts *o,
		      struct pbr_producer **out)
{
	struct pbr_producer *p;
	uint32_t idx = 0;
	int rc;

	*out = NULL;
	if (o && (o->flags & ~PBR_PRODUCER_NO_TIMESTAMP))
		return -EINVAL;
	if (r->readonly)
		return -EROFS; /* producing writes; the mapping is read-only */
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->ring = r;
	p->stamp = !(o && (o->flags & PBR_PRODUCER_NO_TIMESTAMP));
	p->pid = getpid();
	p->wait = o ? o->wait : PBR_WAIT_BLOCK;
	p->single = r->ring_flags & PBR_RING_SINGLE_PRODUCER;
	p->fd = pbri_fd_reopen(r->fd);
	rc = p->fd < 0 ? p->fd
		       : pbri_entry_take(r, p->fd, r->ptab, r->max_producers,
					 E_STATE, &idx);
	if (rc) {
		if (p->fd >= 0)
			close(p->fd);
		free(p);
		return rc;
	}
	p->id = (uint16_t)idx;
	p->entry = producer_entry(r, idx);
	join(r, p);
	p->handle.close = close_handle;
	pbri_ring_add_handle(r, &p->handle);
	*out = p;
	return 0;
}

uint16_t pbr_producer_id(const struct pbr_producer *p)
{
	return p->id;
}

/* Wait until sequence s may be written without overwriting a slot that a
 * gating reader still holds. Dead gating readers are reaped meanwhile. */
static int wait_space_loop(struct pbr_producer *p, uint64_t s,
			   struct pbr_waiter *w, uint64_t t0);

/* The blocked time so far into the entry: p->blocked_ns plus this wait. */
static void note_blocked(struct pbr_producer *p, uint64_t t0)
{
	st_rlx64(p->entry + offsetof(struct pbr_layout_producer, blocked_ns),
		 p->blocked_ns + (pbr_clock_ns() - t0));
}

/* The statistics' blocked time: the clock is read only once the ring is
 * found full, never on the way through; a long wait shows as it goes. */
static int wait_space(struct pbr_producer *p, uint64_t s, struct pbr_waiter *w)
{
	uint64_t t0;
	int rc;

	if (seq_before(s, p->limit))
		return 0;
	p->limit = pbri_gating_limit(p->ring, s);
	if (seq_before(s, p->limit))
		return 0;
	t0 = pbr_clock_ns();
	rc = wait_space_loop(p, s, w, t0);
	p->blocked_ns += pbr_clock_ns() - t0;
	st_rlx64(p->entry + offsetof(struct pbr_layout_producer, blocked_ns),
		 p->blocked_ns);
	return rc;
}

static int wait_space_loop(struct pbr_producer *p, uint64_t s,
			   struct pbr_waiter *w, uint64_t t0)
{
	struct pbr_ring *r = p->ring;
	uint32_t seen;
	int rc;

	while (!seq_before(s, p->limit)) {
		p->limit = pbri_gating_limit(r, s);
		if (seq_before(s, p->limit))
			break;
		rc = pbri_waiter_step(w, r);
		if (rc == -EAGAIN && pbri_reap_dead_readers(r) > 0)
			continue;
		if (rc < 0)
			return rc;
		if (rc == 1) {
			seen = pbri_bell_prepare(r, PBR_CTL_SPACE_BELL);
			p->limit = pbri_gating_limit(r, s);
			if (!seq_before(s, p->limit))
				pbri_bell_sleep(r, PBR_CTL_SPACE_BELL, seen, w);
			pbri_bell_finish(r, PBR_CTL_SPACE_BELL);
		}
		if (pbri_waiter_liveness_due(w)) {
			pbri_reap_dead_readers(r);
			note_blocked(p, t0);
		}
	}
	return 0;
}

/* Claim the next sequence into p->seq (FORMAT.md "Claim"). */
static int claim(struct pbr_producer *p, struct pbr_waiter *w)
{
	struct pbr_ring *r = p->ring;
	void *pending = p->entry + E_PENDING;
	void *cw = ctl_word(r, PBR_CTL_CLAIM);
	int rc;

	if (p->single) {
		/* Check space first: a single producer claims nothing it
		 * cannot write yet. */
		rc = wait_space(p, p->next, w);
		if (rc)
			return rc;
		p->seq = p->next++;
		st_rlx64(pending, PBR_PENDING_SEQ(p->seq));
		PBR_CRASH("sp_pending");
		/* R3: pending before claim; pairs with A3 in recovery. */
		st_rel64(cw, p->next);
		PBR_CRASH("sp_claimed");
	} else {
		/* Wait while the ring looks full so that a claim rarely has
		 * to wait for space after the fetch-add. */
		rc = wait_space(p, ld_rlx64(cw), w);
		if (rc)
			return rc;
		st_rlx64(pending, PBR_PENDING_CLAIMING);
		PBR_CRASH("mp_claiming");
		/* R3: the fetch-add publishes pending = CLAIMING with it. */
		p->seq = faa64(cw, 1, memory_order_acq_rel);
		PBR_CRASH("mp_claimed");
		st_rlx64(pending, PBR_PENDING_SEQ(p->seq));
		PBR_CRASH("mp_pending");
	}
	p->claimed = true;
	return 0;
}

static void drop_claim(struct pbr_producer *p)
{
	p->claimed = p->reserved = false;
	/* R6: pairs with A6 in live_claimant(). */
	st_rel64(p->entry + E_PENDING, PBR_PENDING_IDLE);
}

/* Our slot was recovered: we were taken for dead, so the entry may have
 * a new owner by now. Touch nothing shared from here on. */
static int taken_for_dead(struct pbr_producer *p)
{
	p->claimed = p->reserved = false;
	p->dead = true;
	return -EOWNERDEAD;
}

/* Mark slot(seq) BUSY once its previous occupant is finished. */
static int begin(struct pbr_producer *p, struct pbr_waiter *w)
{
	struct pbr_ring *r = p->ring;
	uint64_t s = p->seq;
	uint8_t *h = slot_at(r, s);
	uint64_t v = ld_acq64(h);
	int rc;

	while (!prev_finished(r, s, v)) {
		/* Recovered, and maybe already passed and reused. */
		if (v == PBR_COMMIT_ABANDONED(s) || commit_cmp(v, s) > 0)
			return taken_for_dead(p);
		rc = pbri_waiter_step(w, r);
		if (rc < 0)
			return rc;
		if (rc == 1 || pbri_waiter_liveness_due(w))
			(void)pbri_recover_seq(r, s - r->slot_count);
		if (rc == 1)
			usleep(100);
		v = ld_acq64(h);
	}
	if (p->single) {
		st_rlx64(h, PBR_COMMIT_BUSY(s));
	} else if (!cas64(h, &v, PBR_COMMIT_BUSY(s), memory_order_relaxed)) {
		return taken_for_dead(p);
	}
	/* R4: BUSY is visible before any payload byte is (seqlock begin);
	 * pairs with A4 in the lossy reader's re-check. */
	fence_rel();
	PBR_CRASH("busy");
	p->reserved = true;
	return 0;
}

int pbr_producer_reserve(struct pbr_producer *p, int64_t timeout_ns,
			 struct pbr_slot *slot)
{
	struct pbr_waiter w;
	int rc;

	rc = ring_broken(p->ring);
	if (rc)
		return rc;
	if (p->dead)
		return -EOWNERDEAD;
	if (p->reserved)
		return -EINPROGRESS;
	pbri_waiter_init(&w, p->wait, timeout_ns);
	if (!p->claimed) {
		rc = claim(p, &w);
		if (rc)
			return rc;
	}
	rc = wait_space(p, p->seq, &w);
	if (!rc)
		rc = begin(p, &w);
	if (!rc) /* shrunk under us meanwhile: the slot is a zero page */
		rc = ring_broken(p->ring);
	if (rc)
		return rc;
	memset(slot, 0, sizeof(*slot));
	slot->data = slot_at(p->ring, p->seq) + PBR_SLOT_HDR_SIZE;
	slot->cap = p->ring->payload_cap;
	slot->seq = p->seq;
	return 0;
}

/* Header words, then the commit word last (R1). */
static int publish(struct pbr_producer *p, const struct pbr_slot *slot,
		   uint32_t len, uint32_t flags)
{
	struct pbr_layout_slot *h =
		(struct pbr_layout_slot *)slot_at(p->ring, p->seq);
	uint64_t busy = PBR_COMMIT_BUSY(p->seq);
	bool won;

	st_rlx32(&h->length, len);
	st_rlx32(&h->crc32c, (flags & PBR_SLOT_F_CRC) ? slot->crc32c : 0);
	st_rlx32(&h->producer, (uint32_t)p->id | (flags << 16));
	st_rlx64(&h->timestamp_ns, slot->timestamp_ns);
	if (flags & PBR_SLOT_F_TRACE) {
		memcpy(h->trace_id, slot->trace_id, sizeof(h->trace_id));
		memcpy(h->span_id, slot->span_id, sizeof(h->span_id));
		h->trace_flags = slot->trace_flags;
	}
	if (flags & PBR_SLOT_F_SOURCE) /* fits: checked by the caller */
		memcpy((uint8_t *)h + PBR_SLOT_HDR_SIZE + PBR_SOURCE_OFF(len),
		       slot->source, PBR_SOURCE_SIZE); /* payload bytes */
	PBR_CRASH("header");
	if (p->single) {
		/* Only a recoverer that took us for dead can have changed
		 * the word; see FORMAT.md "Late commits" for the window. */
		won = ld_rlx64(&h->commit) == busy;
		if (won) /* R1: pairs with A1 in the reader's peek. */
			st_rel64(&h->commit, PBR_COMMIT_DONE(p->seq));
	} else {
		/* R1 as a CAS: fails if the slot was recovered meanwhile. */
		won = cas64(&h->commit, &busy, PBR_COMMIT_DONE(p->seq),
			    memory_order_release);
	}
	PBR_CRASH("committed");
	if (!won)
		return taken_for_dead(p);
	drop_claim(p);
	st_rlx64(p->entry + offsetof(struct pbr_layout_producer, committed),
		 ++p->committed);
	if (flags & PBR_SLOT_F_SKIP)
		st_rlx64(p->entry +
				 offsetof(struct pbr_layout_producer, aborts),
			 ++p->aborts);
	else
		st_rlx64(p->entry + offsetof(struct pbr_layout_producer, bytes),
			 p->bytes += len);
	pbri_bell_ring(p->ring, PBR_CTL_DATA_BELL);
	return 0;
}

static int check_slot(const struct pbr_producer *p, const struct pbr_slot *slot)
{
	return p->reserved && slot && slot->seq == p->seq ? 0 : -EINVAL;
}

int pbr_producer_commit(struct pbr_producer *p, struct pbr_slot *slot,
			uint32_t len)
{
	int rc = check_slot(p, slot);

	if (rc)
		return rc;
	if (len > p->ring->payload_cap)
		return -EMSGSIZE;
	if ((slot->flags & PBR_SLOT_F_SOURCE) &&
	    PBR_SOURCE_OFF(len) + PBR_SOURCE_SIZE > p->ring->payload_cap)
		return -EMSGSIZE; /* the source id must fit after the payload */
	rc = publish(p, slot, len,
		     slot->flags & (PBR_SLOT_F_CRC | PBR_SLOT_F_TRACE |
				    PBR_SLOT_F_SOURCE));
	/* Shrunk under us: what we wrote may have gone to a zero page. */
	return rc ? rc : ring_broken(p->ring);
}

int pbr_producer_abort(struct pbr_producer *p, struct pbr_slot *slot)
{
	int rc = check_slot(p, slot);

	return rc ? rc : publish(p, slot, 0, PBR_SLOT_F_SKIP);
}

bool pbri_producer_stamps(const struct pbr_producer *p)
{
	return p->stamp;
}

int pbr_producer_wants_crc(const struct pbr_producer *p, uint32_t len)
{
	return len < p->ring->crc_below;
}

/* Send with a source id if @src (FORMAT.md §6.3), else without. */
static int send_src(struct pbr_producer *p, const void *buf, uint32_t len,
		    unsigned flags, const uint64_t *src, int64_t timeout_ns)
{
	struct pbr_slot slot;
	uint64_t need = src ? PBR_SOURCE_OFF(len) + PBR_SOURCE_SIZE : len;
	int rc;

	if (!p || (len && !buf) ||
	    (flags & ~(PBR_SEND_CRC | PBR_SEND_TIMESTAMP)))
		return -EINVAL;
	if (need > p->ring->payload_cap)
		return -EMSGSIZE; /* before claiming anything */
	rc = pbr_producer_reserve(p, timeout_ns, &slot);
	if (rc)
		return rc;
	memcpy(slot.data, buf, len / 2);
	PBR_CRASH("write");
	memcpy((uint8_t *)slot.data + len / 2, (const uint8_t *)buf + len / 2,
	       len - len / 2);
	if ((flags & PBR_SEND_CRC) && pbr_producer_wants_crc(p, len)) {
		slot.flags |= PBR_SLOT_F_CRC;
		slot.crc32c = pbr_crc32c(0, slot.data, len);
	}
	if (flags & PBR_SEND_TIMESTAMP)
		slot.timestamp_ns = pbr_clock_ns();
	if (src) {
		slot.flags |= PBR_SLOT_F_SOURCE;
		slot.source[0] = src[0];
		slot.source[1] = src[1];
	}
	return pbr_producer_commit(p, &slot, len);
}

int pbr_producer_send(struct pbr_producer *p, const void *buf, uint32_t len,
		      unsigned flags, int64_t timeout_ns)
{
	return send_src(p, buf, len, flags, NULL, timeout_ns);
}

int pbr_producer_send_source(struct pbr_producer *p, const void *buf,
			     uint32_t len, unsigned flags, uint64_t hi,
			     uint64_t lo, int64_t timeout_ns)
{
	const uint64_t src[2] = {hi, lo};

	return send_src(p, buf, len, flags, src, timeout_ns);
}

/* Publish what we claimed (as a skip record if its slot can be reached
 * now, else recovery does it once we are gone) and free the entry. */
static int leave(struct pbr_producer *p)
{
	struct pbr_slot slot;
	int rc = 0;

	if (p->claimed && !p->reserved)
		rc = pbr_producer_reserve(p, 0, &slot);
	if (p->reserved) {
		memset(&slot, 0, sizeof(slot));
		slot.seq = p->seq;
		rc = pbr_producer_abort(p, &slot);
	}
	if (p->dead)
		return rc; /* the abort found us taken for dead */
	st_rel32(p->entry + E_STATE, PBR_ENTRY_FREE);
	pbri_lock_drop(p->fd, entry_lock_off(p->ring, p->entry));
	return rc;
}

int pbr_producer_close(struct pbr_producer *p)
{
	struct pbr_ring *r;
	int rc = 0;

	if (!p)
		return 0;
	r = p->ring;
	if (!p->dead && p->pid == getpid())
		rc = leave(p);
	/* A forked child's copy of fd shares the parent's lock: closing the
	 * copy keeps it, while an unlock would have dropped it. */
	close(p->fd);
	pbri_ring_forget_handle(r, &p->handle);
	free(p);
	return rc;
}
