/* SPDX-License-Identifier: MIT */
/*
 * fuzz_shm_adversarial: shared memory that changes under every load.
 *
 * Built against a copy of the library compiled with PBR_ADVERSARIAL_LOADS
 * (tests/fuzz/atomics-hook.patch): each load of a shared word through
 * shm/atomics.h calls pbr_adv_load64/32 below, which, once armed, returns
 * fresh bytes from the fuzz input instead of (or derived from) the value
 * actually read, so two loads of one field may disagree, as they could
 * with a hostile writer racing the reader. Readers peek, batch, release
 * and decode, a producer reserves and commits, reclaim runs, all over such
 * memory. Checks:
 *   - every shared load is aligned and inside the ring's mapping, and
 *     between two loads of a slot's commit word each other header field
 *     of that slot is loaded at most once (fz_account_load; FORMAT.md
 *     §9.2: "each header field is read once into a local");
 *   - views lie inside the slot of their sequence, batches are
 *     consecutive, reserved slots are exactly a payload area;
 *   - results are among the documented codes; ASan for the rest.
 *
 * Input (reads past the end are zero): u8 geometry (as fuzz_reader: bits
 * 0-1 slot_count, bit 2 slot_size 256, bit 3 single producer), u8 + maybe
 * u64 seq_base (as fuzz_reader), then op bytes, interleaved with the
 * bytes the armed hook consumes, one selector byte per load:
 *   0 plant a whole message: u8 delta from the gating cursor, u8 length,
 *     bytes          1 plant a commit word: u8 slot, u8 kind, u8 delta
 *   2 toggle the hook 3 reader step: u8 (bit 0 lossy, bit 1 hold, bits
 *     2-3 batch size - 1)
 *   4 producer: reserve, write u8 bytes, commit (or abort if odd)
 *   5 reclaim, participants, stats   6 reopen a reader: u8 (bit 0 lossy,
 *     bit 1 start at latest)   7 claim word = gating cursor + u8
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <string.h>

#include "fuzz_util.h"
#include "pbring/pb.h"

#define OPS_MAX 256
#define BATCH_MAX 4

struct rstate {
	struct pbr_reader *rd;
	bool held;
	struct pbr_view v[BATCH_MAX];
	int n;
};

struct ctx {
	struct pbr_ring *r;
	struct fz_raw raw;
	struct pbr_layout_super *sb;
	struct fz_geo g;
	struct rstate rs[2]; /* gating, lossy */
	struct pbr_producer *p;
};

/* --- the hook ------------------------------------------------------------- */

static struct {
	struct fz_in *in;
	bool armed;
} adv;

static bool adv_live(void)
{
	return adv.armed && adv.in && adv.in->n;
}

static uint64_t adv_value64(uint64_t seen)
{
	uint8_t sel = fz_u8(adv.in);

	switch (sel & 3) {
	case 0:
		return seen;
	case 1:
		return fz_u64(adv.in);
	case 2: /* a nearby value: the next lap's sequence, say */
		return seen + (uint64_t)(int64_t)(int8_t)fz_u8(adv.in);
	default: /* same sequence, another state */
		return (seen & ~3ull) | ((sel >> 2) & 3);
	}
}

uint64_t pbr_adv_load64(const void *p, uint64_t seen)
{
	fz_account_load(p, 8);
	if (!adv_live())
		return seen;
	return adv_value64(seen);
}

uint32_t pbr_adv_load32(const void *p, uint32_t seen)
{
	uint8_t sel;

	fz_account_load(p, 4);
	if (!adv_live())
		return seen;
	sel = fz_u8(adv.in);
	switch (sel & 3) {
	case 0:
		return seen;
	case 1:
		return fz_u32(adv.in);
	case 2:
		return seen + (uint32_t)(int32_t)(int8_t)fz_u8(adv.in);
	default: /* one bit flipped: a flag, a length's high bit */
		return seen ^ (1u << ((sel >> 2) & 31));
	}
}

/* --- planting (real memory, through the raw mapping) ---------------------- */

static struct pbr_layout_slot *raw_slot(struct ctx *c, uint64_t i)
{
	return (void *)(c->raw.base + c->sb->slots_off +
			(i & (c->g.slot_count - 1)) * c->g.slot_size);
}

/* The reader's private cursor: no shared load. */
static uint64_t cursor_of(struct rstate *rs)
{
	struct pbr_reader_stats st;

	pbr_reader_stats(rs->rd, &st);
	return st.cursor;
}

static void plant_message(struct ctx *c, struct fz_in *in)
{
	uint64_t s = cursor_of(&c->rs[0]) + fz_u8(in);
	struct pbr_layout_slot *h = raw_slot(c, s);
	uint8_t *p = (uint8_t *)h + PBR_SLOT_HDR_SIZE;
	uint32_t n = fz_u8(in);

	if (n > c->g.payload_cap)
		n = c->g.payload_cap;
	n = (uint32_t)fz_bytes(in, p, n);
	h->length = n;
	h->crc32c = pbr_crc32c(0, p, n);
	h->producer = 1;
	h->flags = PBR_SLOT_F_CRC;
	h->commit = PBR_COMMIT_DONE(s);
}

static void plant_commit(struct ctx *c, struct fz_in *in)
{
	struct pbr_layout_slot *h = raw_slot(c, fz_u8(in));
	uint8_t kind = fz_u8(in);
	uint64_t s = cursor_of(&c->rs[0]) + (int8_t)fz_u8(in);

	h->commit = kind & 4 ? PBR_COMMIT_EMPTY : (s << 2) | (kind & 3);
}

/* --- participants --------------------------------------------------------- */

static void release(struct rstate *rs)
{
	int rc;

	if (!rs->held)
		return;
	rs->held = false;
	rc = pbr_reader_release(rs->rd, &rs->v[rs->n - 1]);
	fz_trace("release seq %llu: %d\n",
		 (unsigned long long)rs->v[rs->n - 1].seq, rc);
	FZ_ASSERT(rc == 0 || rc == -ESTALE);
}

static int reader_step(struct ctx *c, struct rstate *rs, unsigned max,
		       bool hold)
{
	uint64_t cur;
	int i, n;

	release(rs);
	n = pbr_reader_peek_batch(rs->rd, rs->v, max, 0);
	fz_trace("peek %s max %u: %d\n", rs == &c->rs[0] ? "gating" : "lossy",
		 max, n);
	if (n == -EBADMSG) {
		FZ_ASSERT(rs->v[0].seq == cursor_of(rs) - 1);
		return n;
	}
	FZ_ASSERT(n == -EAGAIN || (n >= 1 && n <= (int)max));
	if (n < 0)
		return n;
	cur = cursor_of(rs);
	for (i = 0; i < n; i++) {
		FZ_ASSERT(rs->v[i].seq == cur + (uint64_t)i);
		fz_check_view(&c->g, &rs->v[i]);
		fz_decode_event(&rs->v[i], PBR_DECODE_NOVERIFY);
	}
	rs->n = n;
	rs->held = true;
	if (!hold)
		release(rs);
	return n;
}

static void open_reader(struct ctx *c, int which, bool latest)
{
	struct pbr_reader_opts o = {
		.flags = which ? PBR_READER_LOSSY : 0,
		.start = latest ? PBR_START_LATEST : PBR_START_OLDEST,
		.wait = PBR_WAIT_SPIN,
	};
	struct rstate *rs = &c->rs[which];

	memset(rs, 0, sizeof(*rs));
	FZ_ASSERT(pbr_reader_open(c->r, &o, &rs->rd) == 0);
}

static void reopen_reader(struct ctx *c, uint8_t ctl)
{
	struct rstate *rs = &c->rs[ctl & 1];

	release(rs);
	pbr_reader_close(rs->rd);
	open_reader(c, ctl & 1, ctl & 2);
}

static void producer_step(struct ctx *c, struct fz_in *in)
{
	uint8_t n = fz_u8(in);
	struct pbr_slot s;
	int rc;

	rc = pbr_producer_reserve(c->p, 0, &s);
	FZ_ASSERT(rc == 0 || rc == -EAGAIN || rc == -EOWNERDEAD);
	if (rc)
		return;
	fz_check_slot(&c->g, &s);
	if (n > s.cap)
		n = (uint8_t)s.cap;
	memset(s.data, n, n);
	rc = n & 1 ? pbr_producer_abort(c->p, &s)
		   : pbr_producer_commit(c->p, &s, n);
	FZ_ASSERT(rc == 0 || rc == -EOWNERDEAD);
}

static void admin_step(struct ctx *c)
{
	struct pbr_participant pt[4];
	struct pbr_ring_stats st;
	int rc;

	rc = pbr_ring_reclaim(c->r);
	FZ_ASSERT(rc >= 0);
	rc = pbr_ring_participants(c->r, pt, 4);
	FZ_ASSERT(rc >= 0);
	pbr_ring_stats(c->r, &st);
}

/* --- driver --------------------------------------------------------------- */

static uint64_t pick_base(struct fz_in *in)
{
	switch (fz_u8(in) & 3) {
	case 0:
		return 0;
	case 1:
		return 0 - (uint64_t)fz_u8(in);
	case 2:
		return (1ull << 62) - fz_u8(in);
	default:
		return fz_u64(in);
	}
}

static void setup(struct ctx *c, const char *name, struct fz_in *in)
{
	uint8_t geo = fz_u8(in);
	struct pbr_create_opts o = {
		.slot_count = 2u << (geo & 3),
		.slot_size = (geo & 4) ? 256 : 128,
		.max_producers = (geo & 8) ? 1 : 2,
		.max_readers = 2,
		.flags = (geo & 8) ? PBR_CREATE_SINGLE_PRODUCER : 0,
	};
	struct pbr_producer_opts po = {.wait = PBR_WAIT_SPIN};

	o.seq_base = pick_base(in);
	FZ_ASSERT(pbr_ring_create(name, &o, &c->r) == 0);
	FZ_ASSERT(fz_raw_map(name, &c->raw) == 0);
	c->sb = (struct pbr_layout_super *)c->raw.base;
	fz_geo_of(c->r, c->sb, &c->g);
	fz_watch(&c->g);
	open_reader(c, 0, false);
	open_reader(c, 1, false);
	FZ_ASSERT(pbr_producer_open(c->r, &po, &c->p) == 0);
}

static void run_op(struct ctx *c, struct fz_in *in)
{
	uint8_t ctl;

	switch (fz_u8(in) & 7) {
	case 0:
		plant_message(c, in);
		break;
	case 1:
		plant_commit(c, in);
		break;
	case 2:
		adv.armed = !adv.armed;
		break;
	case 3:
		ctl = fz_u8(in);
		reader_step(c, &c->rs[ctl & 1], 1 + ((ctl >> 2) & 3), ctl & 2);
		break;
	case 4:
		producer_step(c, in);
		break;
	case 5:
		admin_step(c);
		break;
	case 6:
		reopen_reader(c, fz_u8(in));
		break;
	default:
		*(uint64_t *)(c->raw.base + c->sb->control_off +
			      PBR_CTL_CLAIM) = cursor_of(&c->rs[0]) + fz_u8(in);
		break;
	}
}

static void teardown(struct ctx *c, const char *name)
{
	adv.armed = false;
	release(&c->rs[0]);
	release(&c->rs[1]);
	pbr_reader_close(c->rs[0].rd);
	pbr_reader_close(c->rs[1].rd);
	(void)pbr_producer_close(c->p);
	fz_watch(NULL);
	fz_raw_unmap(&c->raw);
	pbr_ring_detach(c->r);
	FZ_ASSERT(pbr_ring_unlink(name) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = {data, size};
	struct ctx c;
	char name[32];
	int ops;

	memset(&c, 0, sizeof(c));
	memset(&adv, 0, sizeof(adv));
	adv.in = &in;
	fz_name(name, sizeof(name));
	setup(&c, name, &in);
	for (ops = 0; in.n && ops < OPS_MAX; ops++)
		run_op(&c, &in);
	teardown(&c, name);
	adv.in = NULL;
	return 0;
}
