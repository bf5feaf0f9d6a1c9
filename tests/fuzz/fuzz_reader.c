/* SPDX-License-Identifier: MIT */
/*
 * fuzz_reader: a gating and a lossy reader walking slots whose headers,
 * lengths, commit words, CRCs and payloads come from the input, planted
 * through a raw mapping of the ring's object between reader steps.
 *
 * Every view peek returns must lie inside the slot of its sequence, a
 * batch must be consecutive sequences from the cursor, each view is
 * decoded as a DeviceEvent in place and from a copy, and peek and release
 * may only fail with the codes the API documents. Every load of a shared
 * word is checked too (fz_account_load: inside the mapping, header words
 * read once).
 *
 * Input (reads past the end are zero):
 *   u8  geometry: bits 0-1 slot_count 2 << n, bit 2 slot_size 256 (else
 *       128), bit 3 single producer, bit 4 gating reader starts at the
 *       latest message (else oldest), bit 5 lossy likewise, bit 6 decode
 *       without the CRC check
 *   u8  seq_base: 0 zero, 1 2^64 - u8, 2 2^62 - u8 (the commit word wraps
 *       there), 3 u64
 *   u8  claim = seq_base + this, stored before the readers join
 *   ops until the input ends (at most OPS_MAX), an op byte each:
 *     0 commit word: u8 slot, u8 kind (EMPTY, DONE, ABANDONED, BUSY of
 *       cursor + i8, or a raw u64)
 *     1 length: u8 slot, u8 kind, u32 (raw, mod cap + 1, cap + u8)
 *     2 producer and flags word: u8 slot, u32
 *     3 CRC: u8 slot, u8 (odd: the payload's CRC, else u32 follows)
 *     4 payload bytes: u8 slot, u8 offset, u8 length, bytes
 *     5 a whole message: u8 delta (sequence = gating cursor + delta), u8
 *       length, bytes; DONE with its CRC
 *     6 reader step: u8 (bit 0 lossy, bit 1 keep the views held, bits
 *       2-3 batch size - 1)
 *     7 claim word: u8 (claim = gating cursor + this)
 *   then both readers drain.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <string.h>

#include "fuzz_util.h"
#include "pbring/pb.h"

#define OPS_MAX 512
#define BATCH_MAX 4

struct rstate {
	struct pbr_reader *rd;
	bool lossy, held;
	struct pbr_view v[BATCH_MAX];
	int n;
};

struct ctx {
	struct pbr_ring *r;
	struct fz_raw raw;
	struct pbr_layout_super *sb;
	struct fz_geo g;
	struct rstate rs[2]; /* gating, lossy */
	unsigned decode_flags;
};

static struct pbr_layout_slot *raw_slot(struct ctx *c, uint64_t i)
{
	return (void *)(c->raw.base + c->sb->slots_off +
			(i & (c->g.slot_count - 1)) * c->g.slot_size);
}

static uint64_t cursor_of(struct rstate *rs)
{
	struct pbr_reader_stats st;

	pbr_reader_stats(rs->rd, &st);
	return st.cursor;
}

static uint64_t *claim_word(struct ctx *c)
{
	return (uint64_t *)(c->raw.base + c->sb->control_off + PBR_CTL_CLAIM);
}

/* --- planting ------------------------------------------------------------- */

static void op_commit(struct ctx *c, struct fz_in *in)
{
	struct pbr_layout_slot *h = raw_slot(c, fz_u8(in));
	uint8_t kind = fz_u8(in);
	uint64_t s = cursor_of(&c->rs[kind >> 7]) + (int8_t)fz_u8(in);

	switch (kind % 5) {
	case 0:
		h->commit = PBR_COMMIT_EMPTY;
		break;
	case 1:
		h->commit = PBR_COMMIT_DONE(s);
		break;
	case 2:
		h->commit = PBR_COMMIT_ABANDONED(s);
		break;
	case 3:
		h->commit = PBR_COMMIT_BUSY(s);
		break;
	default:
		h->commit = fz_u64(in);
		break;
	}
}

static void op_length(struct ctx *c, struct fz_in *in)
{
	struct pbr_layout_slot *h = raw_slot(c, fz_u8(in));
	uint8_t kind = fz_u8(in);
	uint32_t v = fz_u32(in);

	if (kind % 3 == 1)
		v %= c->g.payload_cap + 1;
	else if (kind % 3 == 2)
		v = c->g.payload_cap + (v & 0xff);
	h->length = v;
}

/* The u32 word of producer id (low half) and flags (high half). */
static void op_pflags(struct ctx *c, struct fz_in *in)
{
	struct pbr_layout_slot *h = raw_slot(c, fz_u8(in));
	uint32_t v = fz_u32(in);

	memcpy(&h->producer, &v, sizeof(v));
}

static void op_crc(struct ctx *c, struct fz_in *in)
{
	struct pbr_layout_slot *h = raw_slot(c, fz_u8(in));
	uint32_t len = h->length;

	if (!(fz_u8(in) & 1)) {
		h->crc32c = fz_u32(in);
		return;
	}
	if (len > c->g.payload_cap)
		len = c->g.payload_cap;
	h->crc32c = pbr_crc32c(0, (uint8_t *)h + PBR_SLOT_HDR_SIZE, len);
}

static void op_payload(struct ctx *c, struct fz_in *in)
{
	uint8_t *p = (uint8_t *)raw_slot(c, fz_u8(in)) + PBR_SLOT_HDR_SIZE;
	uint32_t off = fz_u8(in) % c->g.payload_cap;
	uint32_t n = fz_u8(in);

	if (n > c->g.payload_cap - off)
		n = c->g.payload_cap - off;
	fz_bytes(in, p + off, n);
}

/* A well-formed message, so that the fuzzer reaches decoding easily. */
static void op_message(struct ctx *c, struct fz_in *in)
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
	h->producer = 0;
	h->flags = PBR_SLOT_F_CRC;
	h->commit = PBR_COMMIT_DONE(s);
}

/* --- reading -------------------------------------------------------------- */

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

/* Peek (a batch of up to @max), check, decode; release unless @hold.
 * Returns the peek's result. */
static int step(struct ctx *c, struct rstate *rs, unsigned max, bool hold)
{
	uint64_t cur;
	int i, n;

	release(rs);
	n = pbr_reader_peek_batch(rs->rd, rs->v, max, 0);
	fz_trace("peek %s max %u: %d\n", rs == &c->rs[0] ? "gating" : "lossy",
		 max, n);
	if (n == -EBADMSG) {
		/* The corrupt slot was passed over; v[0] names it. */
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
		fz_decode_event(&rs->v[i], c->decode_flags);
	}
	rs->n = n;
	rs->held = true;
	if (!hold)
		release(rs);
	return n;
}

static void drain(struct ctx *c, struct rstate *rs)
{
	unsigned i, bound = 4 * c->g.slot_count + 8;

	for (i = 0; i < bound; i++)
		if (step(c, rs, BATCH_MAX, false) == -EAGAIN)
			break;
	release(rs);
}

/* --- setup ---------------------------------------------------------------- */

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

static void open_reader(struct ctx *c, struct rstate *rs, bool lossy,
			bool latest)
{
	struct pbr_reader_opts o = {
		.flags = lossy ? PBR_READER_LOSSY : 0,
		.start = latest ? PBR_START_LATEST : PBR_START_OLDEST,
		.wait = PBR_WAIT_SPIN,
	};

	memset(rs, 0, sizeof(*rs));
	rs->lossy = lossy;
	FZ_ASSERT(pbr_reader_open(c->r, &o, &rs->rd) == 0);
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

	o.seq_base = pick_base(in);
	c->decode_flags = (geo & 0x40) ? PBR_DECODE_NOVERIFY : 0;
	FZ_ASSERT(pbr_ring_create(name, &o, &c->r) == 0);
	FZ_ASSERT(fz_raw_map(name, &c->raw) == 0);
	c->sb = (struct pbr_layout_super *)c->raw.base;
	fz_geo_of(c->r, c->sb, &c->g);
	fz_watch(&c->g); /* every shared load checked */
	*claim_word(c) = o.seq_base + fz_u8(in);
	open_reader(c, &c->rs[0], false, geo & 0x10);
	open_reader(c, &c->rs[1], true, geo & 0x20);
}

static void run_op(struct ctx *c, struct fz_in *in)
{
	uint8_t ctl;

	switch (fz_u8(in) & 7) {
	case 0:
		op_commit(c, in);
		break;
	case 1:
		op_length(c, in);
		break;
	case 2:
		op_pflags(c, in);
		break;
	case 3:
		op_crc(c, in);
		break;
	case 4:
		op_payload(c, in);
		break;
	case 5:
		op_message(c, in);
		break;
	case 6:
		ctl = fz_u8(in);
		step(c, &c->rs[ctl & 1], 1 + ((ctl >> 2) & 3), ctl & 2);
		break;
	default:
		*claim_word(c) = cursor_of(&c->rs[0]) + fz_u8(in);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = {data, size};
	struct ctx c;
	char name[32];
	int ops;

	memset(&c, 0, sizeof(c));
	fz_name(name, sizeof(name));
	setup(&c, name, &in);
	for (ops = 0; in.n && ops < OPS_MAX; ops++)
		run_op(&c, &in);
	drain(&c, &c.rs[0]);
	drain(&c, &c.rs[1]);
	pbr_reader_close(c.rs[0].rd);
	pbr_reader_close(c.rs[1].rd);
	fz_watch(NULL);
	fz_raw_unmap(&c.raw);
	pbr_ring_detach(c.r);
	FZ_ASSERT(pbr_ring_unlink(name) == 0);
	return 0;
}
