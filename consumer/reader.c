/* SPDX-License-Identifier: MIT */
/*
 * Readers: peek committed slots in place, release them in batches
 * (FORMAT.md "Reading").
 *
 * A reader owns a cursor: every sequence below it is released. It spins on
 * the commit word of the slot at its cursor, a line it needs anyway, and
 * never on the producers' claim word. Gating readers hold producers back,
 * so a slot they peek is stable until released. Lossy readers do not: they
 * re-check the commit word after reading (a seqlock) and release reports
 * -ESTALE when the slot was overwritten meanwhile. A gating reader treats
 * the backlog it found when it joined the same way, because producers
 * whose cached gating limit predates the join may still overwrite it.
 *
 * A tap (FORMAT.md §9.5) is a lossy reader without an entry: it may be
 * on a read-only mapping, so it writes nothing to the ring at all. Every
 * store into the segment below is on the entry, its metrics block, a
 * doorbell or a recovered commit word, and each is skipped for a tap.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

struct pbr_reader {
	struct pbr_ring *ring;
	struct pbri_handle handle; /* on the ring's list, for detach */
	uint8_t *entry;
	int fd;
	uint32_t index; /* UINT32_MAX for a tap */
	bool lossy;
	bool tap; /* PBR_READER_TAP: no entry (NULL), fd -1, writes nothing */
	bool metrics_wanted; /* PBR_READER_LATENCY */
	bool durable;	     /* PBR_READER_DURABLE: close detaches */
	bool dropping;	     /* pbr_reader_drop(): close frees the entry */
	char name[PBR_READER_NAME_SIZE]; /* a durable reader's */
	pid_t pid; /* opener: a forked child must not touch the entry */
	enum pbr_wait wait;
	uint64_t cursor;       /* next unreleased sequence */
	uint64_t checked_from; /* below this, slots need seqlock checks */
	uint64_t peeked_end;   /* one past the last sequence peeked */
	uint64_t observed_end; /* latency: sequences below were observed */
	struct pbr_layout_metrics *metrics; /* with PBR_READER_LATENCY */
	uint64_t stuck_seq; /* liveness bookkeeping while waiting */
	int64_t stuck_since;
	struct pbr_reader_stats st;
};

#define R_CURSOR offsetof(struct pbr_layout_reader, cursor)
#define R_STATE offsetof(struct pbr_layout_reader, state)

/* Publish the cursor (R2) and the reader's counters. */
static void publish_cursor(struct pbr_reader *rd)
{
	struct pbr_layout_reader *e = (struct pbr_layout_reader *)rd->entry;

	if (rd->tap)
		return; /* no entry to publish to, and it gates nobody */
	st_rlx64(&e->delivered, rd->st.delivered);
	st_rlx64(&e->lost, rd->st.lost);
	st_rlx64(&e->abandoned, rd->st.abandoned);
	st_rlx64(&e->bad, rd->st.bad);
	/* R2: our reads of every slot below the cursor happen before a
	 * producer may reuse them; pairs with A2 in pbri_gating_limit(). */
	st_rel64(&e->cursor, rd->cursor);
	if (!rd->lossy)
		pbri_bell_ring(rd->ring, PBR_CTL_SPACE_BELL);
}

/* Our metrics block (FORMAT.md §5.5): zeroed, then stamped with the
 * entry's joined_ns if we record latency, which marks it as ours for
 * exporters; 0 otherwise, so they show no histogram for us. */
static void join_metrics(struct pbr_ring *r, struct pbr_reader *rd,
			 uint64_t joined_ns)
{
	struct pbr_layout_metrics *m = reader_metrics(r, rd->index);
	unsigned i;

	if (!m)
		return;
	st_rlx64(&m->latency_sum_ns, 0);
	for (i = 0; i < PBR_LATENCY_BUCKETS; i++)
		st_rlx64(&m->latency[i], 0);
	memset(m->reserved, 0, sizeof(m->reserved));
	st_rlx64(&m->joined_ns, rd->metrics_wanted ? joined_ns : 0);
	rd->metrics = rd->metrics_wanted ? m : NULL;
}

/* Start reading at claim c or, with PBR_START_OLDEST, at the oldest
 * sequence the ring may still hold; before c, slots need the re-check. */
static void start_at(struct pbr_ring *r, struct pbr_reader *rd, uint64_t c,
		     uint32_t start)
{
	rd->checked_from = c;
	rd->cursor = c;
	if (start == PBR_START_OLDEST)
		rd->cursor = c - r->seq_base > r->slot_count ? c - r->slot_count
							     : r->seq_base;
	rd->peeked_end = rd->observed_end = rd->cursor;
	rd->st.cursor = rd->cursor;
}

/* The name, NUL-padded, before the entry becomes ACTIVE (FORMAT.md §5.4);
 * word stores, as durable_find() reads it with word loads. */
static void write_name(struct pbr_layout_reader *e, const char *name)
{
	uint64_t w[PBR_READER_NAME_SIZE / 8];
	size_t i;

	memset(w, 0, sizeof(w));
	memcpy(w, name, strlen(name)); /* <= PBR_READER_NAME_MAX */
	for (i = 0; i < PBR_READER_NAME_SIZE / 8; i++)
		st_rlx64((uint8_t *)e->name + 8 * i, w[i]);
}

static void join(struct pbr_ring *r, struct pbr_reader *rd, uint32_t start)
{
	struct pbr_layout_reader *e = (struct pbr_layout_reader *)rd->entry;
	uint64_t c0 = ld_acq64(ctl_word(r, PBR_CTL_CLAIM));
	uint64_t joined_ns = pbri_realtime_ns();

	if (ld_acq32(rd->entry + R_STATE) != PBR_ENTRY_FREE)
		pbri_reap_reader(r, rd->entry); /* a dead reader's entry */
	memset(rd->entry + 0x10, 0, PBR_ENTRY_SIZE - 0x10);
	st_rlx64(&e->cursor, c0);
	if (rd->durable)
		write_name(e, rd->name);
	st_rlx32(&e->flags, rd->lossy ? PBR_READER_LOSSY
			    : rd->durable
				    ? PBR_READER_GATING | PBR_READER_DURABLE
				    : PBR_READER_GATING);
	st_rlx32(&e->pid, (uint32_t)getpid());
	st_rlx64(&e->joined_ns, joined_ns);
	join_metrics(r, rd, joined_ns);
	/* E4 (reader side): ACTIVE before we read the claim; pairs with the
	 * fence in pbri_gating_limit(). Every sequence from c on is gated. */
	st_sc32(&e->state, PBR_ENTRY_ACTIVE);
	fence_sc();
	start_at(r, rd, ld_acq64(ctl_word(r, PBR_CTL_CLAIM)), start);
	publish_cursor(rd);
}

/* A tap joins nothing (FORMAT.md §9.5): no entry, no E4 fence, since no
 * producer needs to see it; it starts where a lossy reader would, and
 * every slot it reads is re-checked, so nothing else is owed to it. The
 * acquire pairs with R3 (the claim's publication) as in join(); only the
 * value is used, each slot being judged by its own commit word (A1). */
static void tap_join(struct pbr_ring *r, struct pbr_reader *rd, uint32_t start)
{
	rd->fd = -1;
	rd->index = UINT32_MAX;
	start_at(r, rd, ld_acq64(ctl_word(r, PBR_CTL_CLAIM)), start);
}

/* Take a reader entry with a description of our own (its lock is our
 * liveness, FORMAT.md §5.1), and join the ring through it. */
static int entry_join(struct pbr_ring *r, struct pbr_reader *rd, uint32_t start)
{
	int rc;

	rd->fd = pbri_fd_reopen(r->fd);
	rc = rd->fd < 0 ? rd->fd
			: pbri_entry_take(r, rd->fd, r->rtab, r->max_readers,
					  R_STATE, &rd->index);
	if (rc) {
		if (rd->fd >= 0)
			close(rd->fd);
		return rc;
	}
	rd->entry = reader_entry(r, rd->index);
	join(r, rd, start);
	return 0;
}

/* Take over the detached durable reader in our (locked) entry: its
 * cursor stays, and everything from it on was gated all along, so
 * nothing needs the re-check (checked_from = cursor, §9.1). The
 * statistics restart, as for any join. 1, or -EUCLEAN for a cursor that
 * no correct ring can hold (after the claim, or further behind it than
 * the slots and the producers' overshoot allow). */
static int resume(struct pbr_ring *r, struct pbr_reader *rd)
{
	struct pbr_layout_reader *e = (struct pbr_layout_reader *)rd->entry;
	/* A2-like: pairs with R2 of the previous owner's last release. */
	uint64_t c = ld_acq64(&e->cursor);
	uint64_t claim = ld_acq64(ctl_word(r, PBR_CTL_CLAIM));
	uint64_t joined_ns = pbri_realtime_ns();

	if (seq_before(claim, c) ||
	    claim - c > (uint64_t)r->slot_count + r->max_producers)
		return -EUCLEAN;
	memset(rd->entry + 0x18, 0, 0x50 - 0x18); /* statistics */
	st_rlx32(&e->flags, PBR_READER_GATING | PBR_READER_DURABLE);
	st_rlx32(&e->pid, (uint32_t)getpid());
	st_rlx64(&e->joined_ns, joined_ns);
	join_metrics(r, rd, joined_ns);
	rd->checked_from = rd->cursor = c;
	rd->peeked_end = rd->observed_end = c;
	rd->st.cursor = c;
	publish_cursor(rd);
	return 1;
}

/* Under the name lock: take over the reader of our name, or create it. */
static int durable_join_locked(struct pbr_ring *r, struct pbr_reader *rd,
			       uint32_t start)
{
	int rc = pbri_durable_take(r, rd->fd, rd->name, &rd->index);

	if (rc == 0) {
		rd->entry = reader_entry(r, rd->index);
		rc = resume(r, rd);
		if (rc < 0)
			pbri_lock_drop(rd->fd, entry_lock_off(r, rd->entry));
		return rc;
	}
	if (rc != -ENOENT)
		return rc;
	rc = pbri_entry_take(r, rd->fd, r->rtab, r->max_readers, R_STATE,
			     &rd->index);
	if (rc)
		return rc;
	rd->entry = reader_entry(r, rd->index);
	join(r, rd, start);
	return 0;
}

/* Open durable reader rd->name (FORMAT.md §9.1): 0 created, 1 resumed. */
static int durable_join(struct pbr_ring *r, struct pbr_reader *rd,
			uint32_t start)
{
	int rc;

	rd->fd = pbri_fd_reopen(r->fd);
	if (rd->fd < 0)
		return rd->fd;
	rc = pbri_name_lock(r, rd->fd);
	if (!rc) {
		rc = durable_join_locked(r, rd, start);
		pbri_name_unlock(r, rd->fd);
	}
	if (rc < 0)
		close(rd->fd);
	return rc;
}

/* Detach closes a reader still open (pbri_handle). */
static void close_handle(struct pbri_handle *h)
{
	pbr_reader_close(pbri_container_of(h, struct pbr_reader, handle));
}

/* 0, or why options @o cannot open a reader on @r. A tap cannot record
 * latency: the histogram is in an entry's metrics block, which it has
 * not got. */
static int check_opts(const struct pbr_ring *r, const struct pbr_reader_opts *o)
{
	const uint32_t known = PBR_READER_LOSSY | PBR_READER_LATENCY |
			       PBR_READER_TAP | PBR_READER_DURABLE;
	uint32_t f = o ? o->flags : 0;

	if ((f & ~known) || (o && o->start > PBR_START_LATEST) ||
	    ((f & PBR_READER_TAP) && (f & PBR_READER_LATENCY)))
		return -EINVAL;
	/* A durable reader gates (it is owed everything) and has an entry. */
	if ((f & PBR_READER_DURABLE) &&
	    ((f & (PBR_READER_LOSSY | PBR_READER_TAP)) ||
	     pbr_reader_name_check(o->name)))
		return -EINVAL;
	/* Any other reader writes its entry, whose lock needs O_RDWR. */
	if (r->readonly && !(f & PBR_READER_TAP))
		return -EROFS;
	if ((f & PBR_READER_DURABLE) && !r->durable)
		return -EOPNOTSUPP;
	return 0;
}

int pbr_reader_open(struct pbr_ring *r, const struct pbr_reader_opts *o,
		    struct pbr_reader **out)
{
	uint32_t start = o ? o->start : PBR_START_OLDEST;
	struct pbr_reader *rd;
	int rc;

	*out = NULL;
	if ((rc = check_opts(r, o)))
		return rc;
	rd = calloc(1, sizeof(*rd));
	if (!rd)
		return -ENOMEM;
	rd->ring = r;
	rd->pid = getpid();
	rd->tap = o && (o->flags & PBR_READER_TAP);
	rd->lossy = rd->tap || (o && (o->flags & PBR_READER_LOSSY));
	rd->metrics_wanted = o && (o->flags & PBR_READER_LATENCY);
	rd->wait = o ? o->wait : PBR_WAIT_BLOCK;
	rd->durable = o && (o->flags & PBR_READER_DURABLE);
	if (rd->durable)
		/* checked: strlen < PBR_READER_NAME_SIZE */
		memcpy(rd->name, o->name, strlen(o->name) + 1);
	if (rd->tap)
		tap_join(r, rd, start);
	else
		rc = rd->durable ? durable_join(r, rd, start)
				 : entry_join(r, rd, start);
	if (rc < 0) {
		free(rd);
		return rc;
	}
	rd->handle.close = close_handle;
	pbri_ring_add_handle(r, &rd->handle);
	*out = rd;
	return rc;
}

void pbr_reader_close(struct pbr_reader *rd)
{
	if (!rd)
		return;
	/* A forked child's copy of fd shares the parent's lock: leave the
	 * parent's entry alone, and closing the copy keeps the lock. A tap
	 * has neither entry nor lock. */
	if (rd->pid == getpid() && !rd->tap) {
		/* A durable reader detaches: the entry keeps gating at its
		 * cursor (§9.6), and its lock, once free, says "detached". */
		if (!rd->durable || rd->dropping)
			st_rel32(rd->entry + R_STATE, PBR_ENTRY_FREE);
		pbri_bell_ring(rd->ring,
			       PBR_CTL_SPACE_BELL); /* we stop gating */
		pbri_lock_drop(rd->fd, entry_lock_off(rd->ring, rd->entry));
	}
	if (rd->fd >= 0)
		close(rd->fd);
	pbri_ring_forget_handle(rd->ring, &rd->handle);
	free(rd);
}

int pbr_reader_drop(struct pbr_reader *rd)
{
	if (!rd)
		return 0;
	rd->dropping = true; /* with our lock held: ACTIVE -> FREE (§9.6) */
	pbr_reader_close(rd);
	return 0;
}

int pbr_reader_durable(const struct pbr_reader *rd)
{
	return rd->durable;
}

/* Count sequences [p, to) passed over because they were overwritten: the
 * part in the join backlog (before checked_from) was missed, the rest, on
 * a lossy reader, lost (FORMAT.md §9.1). */
static void count_overwritten(struct pbr_reader *rd, uint64_t p, uint64_t to)
{
	uint64_t backlog = 0;

	if (seq_before(p, rd->checked_from))
		backlog = seq_before(rd->checked_from, to)
				  ? rd->checked_from - p
				  : to - p;
	rd->st.missed += backlog;
	rd->st.lost += (to - p) - backlog;
}

/* Lapped at sequence p: pass over it and count the loss. A gating reader
 * is lapped only in its join backlog (inspect()): it passes over only the
 * overwritten slot, as the next may be intact (the backlog is at most
 * slot_count long); a lossy one skips to well inside the ring. */
static void resync(struct pbr_reader *rd, uint64_t p)
{
	struct pbr_ring *r = rd->ring;
	uint64_t to = p + 1;

	if (rd->lossy) {
		to = ld_acq64(ctl_word(r, PBR_CTL_CLAIM)) -
		     (r->slot_count >> 1);
		if (!seq_before(p, to))
			to = p + 1;
	}
	count_overwritten(rd, p, to);
	rd->cursor = rd->peeked_end = to;
}

/* Would the slot at the cursor give peek something to do? */
static bool slot_moved(struct pbr_reader *rd)
{
	uint64_t v = ld_acq64(slot_at(rd->ring, rd->cursor));

	return v == PBR_COMMIT_DONE(rd->cursor) || PBR_COMMIT_STATE(v) == 2 ||
	       commit_cmp(v, rd->cursor) > 0;
}

/* Slots a producer may overwrite while we read them need the re-check. */
static bool needs_check(const struct pbr_reader *rd, uint64_t p)
{
	return rd->lossy || seq_before(p, rd->checked_from);
}

/* The source id after the payload (FORMAT.md §6.3), if the flag says so
 * and the trailer lies within the payload capacity (len, already read
 * once and checked against payload_cap, places it): else no source. */
static void fill_source(const struct pbr_ring *r, const uint8_t *h,
			uint32_t len, struct pbr_view *v)
{
	uint64_t off = PBR_SOURCE_OFF(len);
	const uint8_t *t;

	v->source[0] = v->source[1] = 0;
	if (!(v->flags & PBR_SLOT_F_SOURCE))
		return;
	if (off + PBR_SOURCE_SIZE > r->payload_cap) {
		v->flags &= (uint16_t)~PBR_SLOT_F_SOURCE;
		return;
	}
	/* Payload bytes, read as the payload is (plain, once, into the
	 * view): atomic words are the header's only (FORMAT.md §6). */
	t = h + PBR_SLOT_HDR_SIZE + off;
	memcpy(v->source, t, PBR_SOURCE_SIZE);
}

static void fill_view(struct pbr_reader *rd, uint64_t p, uint8_t *h,
		      uint32_t len, uint32_t pf, struct pbr_view *v)
{
	const struct pbr_layout_slot *s = (const struct pbr_layout_slot *)h;

	v->data = h + PBR_SLOT_HDR_SIZE;
	v->len = len;
	v->producer = (uint16_t)pf;
	v->flags = (uint16_t)(pf >> 16);
	v->seq = p;
	v->timestamp_ns = ld_rlx64(&s->timestamp_ns);
	v->crc32c = ld_rlx32(&s->crc32c);
	v->vflags = needs_check(rd, p) ? PBR_VIEW_UNSTABLE : 0;
	v->trace_id = s->trace_id;
	v->span_id = s->span_id;
	v->trace_flags = (pf >> 16) & PBR_SLOT_F_TRACE ? s->trace_flags : 0;
	memset(v->reserved, 0, sizeof(v->reserved));
	fill_source(rd->ring, h, len, v);
}

/* Was p overwritten (lapped)? Only if p was claimed: a commit word about a
 * sequence beyond the claim is garbage (a corrupt or hostile segment), and
 * taking it for a lap would walk the cursor towards it one sequence at a
 * time, for up to 2^61 of them, inside one peek. */
static bool lapped(struct pbr_reader *rd, uint64_t p, uint64_t v)
{
	return commit_cmp(v, p) > 0 &&
	       seq_before(p, ld_acq64(ctl_word(rd->ring, PBR_CTL_CLAIM)));
}

/*
 * What the slot of sequence p holds for this reader: 1 a message (view
 * filled), 0 nothing yet, 2 a skip record, 3 an abandoned record,
 * -EBADMSG a corrupt header, -ESTALE overwritten (lapped). Each header
 * word is read once.
 */
static int inspect(struct pbr_reader *rd, uint64_t p, struct pbr_view *view)
{
	uint8_t *h = slot_at(rd->ring, p);
	/* A1: pairs with R1 (commit) and R5 (recovery): the header and the
	 * payload written before them are visible. */
	uint64_t v = ld_acq64(h);
	uint32_t len, pf;

	if (v == PBR_COMMIT_ABANDONED(p))
		return 3;
	if (v != PBR_COMMIT_DONE(p)) {
		if (!lapped(rd, p, v))
			return 0;
		/* A gated slot is never overwritten before we release it:
		 * a later sequence there is a corrupt or hostile segment.
		 * Pass over that one slot as corrupt (one per peek, so a
		 * forged claim cannot send us walking, §9.4). */
		return needs_check(rd, p) ? -ESTALE : -EBADMSG;
	}
	len = ld_rlx32(h + offsetof(struct pbr_layout_slot, length));
	pf = ld_rlx32(h + offsetof(struct pbr_layout_slot, producer));
	if ((pf >> 16) & PBR_SLOT_F_SKIP)
		return 2;
	if (len > rd->ring->payload_cap) {
		/* A torn header of an overwritten slot is a loss, not
		 * corruption: A4 as in count_stale(). */
		fence_acq();
		if (needs_check(rd, p) && ld_rlx64(h) != v)
			return -ESTALE;
		return -EBADMSG;
	}
	fill_view(rd, p, h, len, pf, view);
	return 1;
}

/* Pass over the record at the head (the cursor), counting it. */
static void consume_head(struct pbr_reader *rd, uint64_t p, int what)
{
	if (what == -ESTALE) {
		resync(rd, p);
		return;
	}
	rd->cursor = p + 1;
	if (what == 3)
		rd->st.abandoned++;
	else if (what == -EBADMSG)
		rd->st.bad++;
}

/* Latency bucket of l ns (FORMAT.md §5.5): most land in the first few. */
static unsigned latency_bucket(uint64_t l)
{
	static const uint64_t bound[PBR_LATENCY_BUCKETS - 1] =
		PBR_LATENCY_BOUNDS_NS;
	unsigned i = 0;

	while (i < PBR_LATENCY_BUCKETS - 1 && l > bound[i])
		i++;
	return i;
}

/* Record commit-to-receive latency of the views not observed before (a
 * second peek returns the same ones). One clock read for the batch; only
 * the owner writes the block, so plain load + store suffices. */
static void observe(struct pbr_reader *rd, const struct pbr_view *views,
		    unsigned n)
{
	struct pbr_layout_metrics *m = rd->metrics;
	uint64_t end = rd->cursor + n, now, sum, l;
	unsigned i = 0, b;

	if (seq_before(rd->cursor, rd->observed_end))
		i = (unsigned)(rd->observed_end - rd->cursor);
	if (i >= n)
		return;
	rd->observed_end = end;
	now = pbr_clock_ns();
	sum = ld_rlx64(&m->latency_sum_ns);
	for (; i < n; i++) {
		if (!views[i].timestamp_ns)
			continue;
		l = now > views[i].timestamp_ns ? now - views[i].timestamp_ns
						: 0;
		b = latency_bucket(l);
		st_rlx64(&m->latency[b], ld_rlx64(&m->latency[b]) + 1);
		sum += l < PBR_LATENCY_CAP_NS ? l : PBR_LATENCY_CAP_NS;
	}
	st_rlx64(&m->latency_sum_ns, sum);
}

/* Fill up to max views from the cursor; records to pass over are consumed
 * only at the head, so a batch is always consecutive sequences. */
static int scan(struct pbr_reader *rd, struct pbr_view *views, unsigned max)
{
	uint64_t head = rd->cursor;
	unsigned n = 0;
	int rc = 0;

	while (n < max) {
		uint64_t p = rd->cursor + n;

		rc = inspect(rd, p, &views[n]);
		if (rc == 1) {
			n++;
			continue;
		}
		if (n || rc == 0)
			break;
		consume_head(rd, p, rc);
		if (rc == -EBADMSG) {
			views[0].seq = p;
			break;
		}
	}
	rd->peeked_end = rd->cursor + n;
	if (rd->cursor != head)
		publish_cursor(rd);
	if (n) {
		if (rd->metrics)
			observe(rd, views, n);
		PBR_CRASH("peeked");
		return (int)n;
	}
	return rc == -EBADMSG ? -EBADMSG : ring_broken(rd->ring);
}

/* Nothing at the cursor for a while: is its producer dead? A tap
 * cannot tell anyone: recovery writes the commit word (§9.5). */
static void check_stuck(struct pbr_reader *rd, bool waited)
{
	int64_t now;

	if (rd->tap)
		return;
	if (!waited) {
		uint64_t c = ld_rlx64(ctl_word(rd->ring, PBR_CTL_CLAIM));

		if (!seq_before(rd->cursor, c))
			return; /* idle, not stuck */
	}
	now = pbri_now_ns();
	if (rd->stuck_seq != rd->cursor || rd->stuck_since == 0) {
		rd->stuck_seq = rd->cursor;
		rd->stuck_since = now;
		return;
	}
	if (now - rd->stuck_since >= PBR_LIVENESS_NS) {
		(void)pbri_recover_seq(rd->ring, rd->cursor);
		rd->stuck_since = now;
	}
}

/* Sleep on the data bell unless the slot at the cursor moved meanwhile
 * (the bell's re-check, FORMAT.md §10). */
static void sleep_on_bell(struct pbr_reader *rd, struct pbr_waiter *w)
{
	uint32_t seen = pbri_bell_prepare(rd->ring, PBR_CTL_DATA_BELL);

	if (!slot_moved(rd))
		pbri_bell_sleep(rd->ring, PBR_CTL_DATA_BELL, seen, w);
	pbri_bell_finish(rd->ring, PBR_CTL_DATA_BELL);
}

int pbr_reader_peek_batch(struct pbr_reader *rd, struct pbr_view *views,
			  unsigned max, int64_t timeout_ns)
{
	struct pbr_waiter w;
	int rc;

	if (!max)
		return -EINVAL;
	pbri_waiter_init(&w, rd->wait, timeout_ns);
	for (;;) {
		rc = scan(rd, views, max);
		if (rc)
			return rc;
		rc = pbri_waiter_step(&w, rd->ring);
		if (rc < 0) {
			check_stuck(rd, false);
			return rc;
		}
		if (rc == 1) {
			/* A tap cannot register as a waiter (that is a
			 * write): it polls instead. */
			if (rd->tap)
				pbri_poll_sleep(&w);
			else
				sleep_on_bell(rd, &w);
		}
		if (pbri_waiter_liveness_due(&w))
			check_stuck(rd, true);
	}
}

int pbr_reader_peek(struct pbr_reader *rd, int64_t timeout_ns,
		    struct pbr_view *v)
{
	int rc = pbr_reader_peek_batch(rd, v, 1, timeout_ns);

	return rc > 0 ? 0 : rc;
}

/* Seqlock re-check of [from, to): how many were overwritten meanwhile,
 * counted as missed (join backlog) or lost (lossy reader). */
static uint64_t count_stale(struct pbr_reader *rd, uint64_t from, uint64_t to)
{
	uint64_t q, stale = 0;

	/* A4: our reads of the payloads happen before the re-check; pairs
	 * with R4, the producer's fence after marking a slot BUSY. */
	fence_acq();
	for (q = from; q != to; q++) {
		if (!needs_check(rd, q))
			break;
		if (ld_rlx64(slot_at(rd->ring, q)) != PBR_COMMIT_DONE(q)) {
			count_overwritten(rd, q, q + 1);
			stale++;
		}
	}
	return stale;
}

int pbr_reader_release(struct pbr_reader *rd, const struct pbr_view *v)
{
	uint64_t end, stale = 0;

	if (!v || seq_before(v->seq, rd->cursor) ||
	    !seq_before(v->seq, rd->peeked_end))
		return -EINVAL;
	end = v->seq + 1;
	if (needs_check(rd, rd->cursor))
		stale = count_stale(rd, rd->cursor, end);
	rd->st.delivered += (end - rd->cursor) - stale;
	rd->cursor = end;
	PBR_CRASH("release");
	publish_cursor(rd);
	PBR_CRASH("released");
	return stale ? -ESTALE : 0;
}

/* Is @v a view of ours, peeked and not released, whose slot still holds
 * it? -EINVAL, -ESTALE (overwritten: lost or missed, not bad; §5.6). */
static int view_current(struct pbr_reader *rd, const struct pbr_view *v)
{
	if (!v || seq_before(v->seq, rd->cursor) ||
	    !seq_before(v->seq, rd->peeked_end))
		return -EINVAL;
	if (!needs_check(rd, v->seq))
		return 0;
	/* A4 as in count_stale(): our reads of the payload happen before
	 * the re-check; pairs with R4. */
	fence_acq();
	return ld_rlx64(slot_at(rd->ring, v->seq)) == PBR_COMMIT_DONE(v->seq)
		       ? 0
		       : -ESTALE;
}

/* The entry's copy of one of our counters (at entry offset @off); a
 * tap has no entry, and keeps its counters to itself. */
static void publish_count(struct pbr_reader *rd, size_t off, uint64_t v)
{
	if (!rd->tap)
		st_rlx64(rd->entry + off, v);
}

int pbr_reader_verify(struct pbr_reader *rd, const struct pbr_view *v)
{
	int rc;

	if (!v)
		return -EINVAL;
	if (!pbr_view_verify(v))
		return 0;
	rc = view_current(rd, v);
	if (rc)
		return rc;
	publish_count(rd, offsetof(struct pbr_layout_reader, crc_errors),
		      ++rd->st.crc_errors);
	return -EBADMSG;
}

int pbr_reader_reject(struct pbr_reader *rd, const struct pbr_view *v)
{
	int rc = view_current(rd, v);

	if (rc)
		return rc;
	publish_count(rd, offsetof(struct pbr_layout_reader, decode_errors),
		      ++rd->st.decode_errors);
	return 0;
}

void pbr_reader_stats(const struct pbr_reader *rd, struct pbr_reader_stats *st)
{
	*st = rd->st;
	st->cursor = rd->cursor;
}

uint32_t pbr_reader_index(const struct pbr_reader *rd)
{
	return rd->index;
}
