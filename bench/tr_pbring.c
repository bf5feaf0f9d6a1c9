/* SPDX-License-Identifier: MIT */
/*
 * pbring itself, two ways:
 *
 * pbring-raw: the sender copies msg_bytes into a reserved slot (stamp and
 *	sequence in its first 16 bytes) and commits; the receiver peeks,
 *	reads those 16 bytes in place and releases. Zero-copy: the receiver
 *	pays only for the bytes it touches.
 * pbring: a DeviceEvent of msg_bytes, nanopb-encoded straight into the
 *	slot with its CRC32C (pbr_producer_send_pb); the receiver verifies
 *	the CRC and decodes in place, the blob as a span into the slot
 *	(demo_event_decode, as the pbring command does).
 * pbring-inplace: the same DeviceEvent, but its blob is written in place
 *	(pbr_slot_pb_span: the sender copies the pattern into the field's
 *	bytes in the slot as pbring-raw copies its payload, and nanopb
 *	encodes only the other fields after it); ring CRC policy full.
 * pbring-nocrc: pbring-inplace on a ring with CRC policy none.
 * pbring-metrics: pbring-raw with every per-message metric on: the
 *	producer stamps each slot's commit time and the reader records the
 *	commit -> receive latency in its histogram in the ring
 *	(PBR_READER_LATENCY). Measured next to pbring-raw, the difference is
 *	what the metrics cost on the hot path.
 * pbring-stamped: pbring-raw with the slot timestamps only (the default
 *	producer), no histogram: splits that cost between the two sides.
 * pbring-go, pbring-raw-go: pbring and pbring-raw whose ping-pong echo is
 *	played by pbring-bench-go (go_reader.c; --reader go).
 *
 * Each process attaches the ring by name, as unrelated processes would.
 * Latency runs peek and release one message at a time; throughput runs
 * peek batches of up to 64 (pbr_reader_peek_batch) and release each
 * batch with one call.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "pbring/pb.h"
#include "pbring/demo.h"

#define PB_BATCH_MAX 64

enum pb_kind { PB_RAW, PB_COPY, PB_INPLACE, PB_NOCRC, PB_METRICS, PB_STAMPED };

struct pbr_shared {
	char name[64];
	enum pb_kind kind;
};

struct pbr_local {
	struct pbr_ring *ring;
	struct pbr_producer *prod;
	struct pbr_reader *rd;
	uint8_t *src;
	struct demo_event ev;
	bool ev_ok;
	struct pbr_view v[PB_BATCH_MAX];
	int n, i; /* views peeked, next to hand out */
};

/*
 * Throughput rings: deep enough to stream, 8 MiB of slots (8 to 1024).
 * Latency rings: 2 MiB (2 to 1024 slots), what one would configure for
 * request/response: a producer writes each slot again only after a whole
 * lap, so a large ring makes every large message land in cold lines.
 */
static uint32_t slot_count_for(uint32_t slot_size, bool latency)
{
	uint64_t budget = latency ? (2u << 20) : (8u << 20);
	uint32_t n = 1024, min = latency ? 2 : 8;

	while (n > min && (uint64_t)n * slot_size > budget)
		n >>= 1;
	return n;
}

static const char *pbr_unsupported(const struct chan *c)
{
	(void)c;
	return NULL;
}

static int create_ring(struct chan *c, enum pb_kind kind)
{
	struct pbr_shared *s = calloc(1, sizeof(*s));
	struct pbr_create_opts o = {0};
	struct pbr_ring *r;
	int rc;

	if (!s)
		return -ENOMEM;
	c->shared = s;
	s->kind = kind;
	snprintf(s->name, sizeof(s->name), "pbrbench.%u.%u", bench_run_id,
		 c->id);
	o.slot_size = bench_slot_size(c->msg_bytes);
	o.slot_count = slot_count_for(o.slot_size, c->batch <= 1);
	o.max_producers = c->nprod;
	o.max_readers = c->nread;
	o.flags = c->nprod == 1 ? PBR_CREATE_SINGLE_PRODUCER : 0;
	o.crc = kind == PB_NOCRC ? PBR_CRC_NONE : PBR_CRC_FULL;
	if (kind == PB_COPY || kind == PB_INPLACE || kind == PB_NOCRC) {
		o.msg_type = PBR_DEMO_MSG_TYPE;
		pbr_demo_schema(&o.schema, &o.schema_len);
		o.schema_hash = pbr_schema_hash(o.schema, o.schema_len);
	}
	(void)pbr_ring_unlink(s->name);
	rc = pbr_ring_create(s->name, &o, &r);
	if (!rc)
		pbr_ring_detach(r); /* the children attach by name */
	return rc;
}

static int raw_prepare(struct chan *c)
{
	return create_ring(c, PB_RAW);
}

static int pb_prepare(struct chan *c)
{
	return create_ring(c, PB_COPY);
}

static int inplace_prepare(struct chan *c)
{
	return create_ring(c, PB_INPLACE);
}

static int nocrc_prepare(struct chan *c)
{
	return create_ring(c, PB_NOCRC);
}

static int metrics_prepare(struct chan *c)
{
	return create_ring(c, PB_METRICS);
}

static int stamped_prepare(struct chan *c)
{
	return create_ring(c, PB_STAMPED);
}

static void pbr_cleanup(struct chan *c)
{
	struct pbr_shared *s = c->shared;

	if (s)
		(void)pbr_ring_unlink(s->name);
	free(s);
	c->shared = NULL;
}

static enum pbr_wait wait_of(const struct chan *c)
{
	return c->mode == MODE_SPIN ? PBR_WAIT_SPIN : PBR_WAIT_BLOCK;
}

static int open_prod(struct chan *c, struct pbr_local *l, enum pb_kind kind)
{
	/* The harness stamps its own send time into each message: the
	 * slot's timestamp (a second clock read) is not asked for, except
	 * by pbring-metrics, whose reader's histogram needs it. */
	struct pbr_producer_opts po = {.wait = wait_of(c),
				       .flags = PBR_PRODUCER_NO_TIMESTAMP};
	int rc;

	if (kind == PB_METRICS || kind == PB_STAMPED)
		po.flags = 0;
	rc = pbr_producer_open(l->ring, &po, &l->prod);
	if (rc)
		return rc;
	if (kind == PB_COPY || kind == PB_INPLACE || kind == PB_NOCRC) {
		rc = bench_event_init(&l->ev, c->msg_bytes);
		l->ev_ok = !rc;
		/* In place: the blob is not the encoder's to write. */
		if (!rc && kind != PB_COPY)
			l->ev.msg.blob.funcs.encode = NULL;
		return rc;
	}
	l->src = payload_new(c->msg_bytes);
	return l->src ? 0 : -ENOMEM;
}

static int pbr_open(struct chan *c, enum role role, unsigned idx)
{
	struct pbr_shared *s = c->shared;
	struct pbr_reader_opts ro = {.wait = wait_of(c)};
	struct pbr_local *l = calloc(1, sizeof(*l));
	int rc;

	(void)idx;
	if (!l)
		return -ENOMEM;
	c->local = l;
	rc = pbr_ring_attach(s->name, NULL, &l->ring);
	if (rc)
		return rc;
	if (role == ROLE_PROD)
		return open_prod(c, l, s->kind);
	if (s->kind == PB_METRICS)
		ro.flags = PBR_READER_LATENCY;
	return pbr_reader_open(l->ring, &ro, &l->rd);
}

static void pbr_close(struct chan *c)
{
	struct pbr_local *l = c->local;

	if (!l)
		return;
	/* Whatever is still held goes back; the ring is closed anyway. */
	if (l->n > 0 && pbr_reader_release(l->rd, &l->v[l->n - 1]))
		l->n = 0;
	if (l->ring)
		pbr_ring_detach(l->ring); /* closes producer and reader */
	if (l->ev_ok)
		demo_event_fini(&l->ev);
	free(l->src);
	free(l);
	c->local = NULL;
}

static int raw_send(struct chan *c, const struct msg *m)
{
	struct pbr_local *l = c->local;
	struct pbr_slot slot;
	int rc = pbr_producer_reserve(l->prod, -1, &slot);

	if (rc)
		return rc;
	memcpy((uint8_t *)slot.data + sizeof(*m), l->src + sizeof(*m),
	       c->msg_bytes - sizeof(*m));
	memcpy(slot.data, m, sizeof(*m));
	return pbr_producer_commit(l->prod, &slot, c->msg_bytes);
}

static int pb_send(struct chan *c, const struct msg *m)
{
	struct pbr_local *l = c->local;

	l->ev.msg.seq = m->seq;
	l->ev.msg.sent_ns = m->stamp;
	l->ev.msg.status = (int32_t)(m->seq & 1);
	return pbr_producer_send_pb(l->prod, pbring_demo_v1_DeviceEvent_fields,
				    &l->ev.msg, -1);
}

static int inplace_send(struct chan *c, const struct msg *m)
{
	struct pbr_local *l = c->local;
	struct pbr_slot slot;
	uint32_t used = 0;
	void *blob;
	int rc = pbr_producer_reserve(l->prod, -1, &slot);

	if (rc)
		return rc;
	rc = pbr_slot_pb_span(&slot, &used, pbring_demo_v1_DeviceEvent_blob_tag,
			      l->ev.size, &blob);
	if (rc) {
		int arc = pbr_producer_abort(l->prod, &slot);

		return arc ? arc : rc;
	}
	memcpy(blob, l->ev.blob, l->ev.size);
	l->ev.msg.seq = m->seq;
	l->ev.msg.sent_ns = m->stamp;
	l->ev.msg.status = (int32_t)(m->seq & 1);
	return pbr_producer_commit_pb(l->prod, &slot, used,
				      pbring_demo_v1_DeviceEvent_fields,
				      &l->ev.msg);
}

/*
 * The next view: one peek and, unless batching, its release right after
 * the caller's use (done at the next call or at close), so that every
 * message's release is paid in the loop, never skipped.
 */
static int next_view(struct chan *c, struct pbr_local *l,
		     const struct pbr_view **v)
{
	unsigned max = c->batch > 1 ? c->batch : 1;
	int rc;

	if (max > PB_BATCH_MAX)
		max = PB_BATCH_MAX;
	if (l->i == l->n) {
		rc = pbr_reader_peek_batch(l->rd, l->v, max, -1);
		if (rc < 0)
			return rc;
		l->n = rc;
		l->i = 0;
	}
	*v = &l->v[l->i++];
	return 0;
}

/* Release what was handed out once the batch is used up. */
static int done_view(struct pbr_local *l)
{
	int rc;

	if (l->i < l->n)
		return 0;
	rc = pbr_reader_release(l->rd, &l->v[l->n - 1]);
	l->n = l->i = 0;
	return rc;
}

static bool raw_payload_ok(const struct pbr_view *v, uint32_t n)
{
	const uint8_t *p = v->data;
	uint32_t i;

	if (v->len != n)
		return false;
	for (i = sizeof(struct msg); i < n; i++)
		if (p[i] != demo_blob_byte(i))
			return false;
	return true;
}

static int raw_recv(struct chan *c, struct msg *m)
{
	struct pbr_local *l = c->local;
	const struct pbr_view *v;
	int rc = next_view(c, l, &v);

	if (rc)
		return rc;
	memcpy(m, v->data, sizeof(*m));
	if (c->verify && !raw_payload_ok(v, c->msg_bytes))
		return -EBADMSG;
	return done_view(l);
}

static int pb_recv(struct chan *c, struct msg *m)
{
	struct pbr_local *l = c->local;
	const struct pbr_view *v;
	struct demo_decoded d;
	int rc = next_view(c, l, &v);

	if (rc)
		return rc;
	rc = demo_event_decode(v, &d);
	if (rc)
		return rc;
	m->seq = d.seq;
	m->stamp = d.sent_ns;
	if (c->verify && !demo_blob_ok(&d))
		return -EBADMSG;
	return done_view(l);
}

#define PBR_XPORT(nm, prep, snd, rcv)                                          \
	{                                                                      \
		.name = nm, .modes = (1u << MODE_SPIN) | (1u << MODE_BLOCK),   \
		.fanout = true, .throughput = true,                            \
		.unsupported = pbr_unsupported, .prepare = prep,               \
		.open = pbr_open, .send = snd, .recv = rcv,                    \
		.close = pbr_close, .cleanup = pbr_cleanup,                    \
	}

const struct xport xport_pbring_raw =
	PBR_XPORT("pbring-raw", raw_prepare, raw_send, raw_recv);
const struct xport xport_pbring =
	PBR_XPORT("pbring", pb_prepare, pb_send, pb_recv);
const struct xport xport_pbring_inplace =
	PBR_XPORT("pbring-inplace", inplace_prepare, inplace_send, pb_recv);
const struct xport xport_pbring_nocrc =
	PBR_XPORT("pbring-nocrc", nocrc_prepare, inplace_send, pb_recv);
const struct xport xport_pbring_metrics =
	PBR_XPORT("pbring-metrics", metrics_prepare, raw_send, raw_recv);
const struct xport xport_pbring_stamped =
	PBR_XPORT("pbring-stamped", stamped_prepare, raw_send, raw_recv);

/* --reader go: the same rings and initiator, the echo in Go (ping-pong). */
#define PBR_GO_XPORT(nm, prep, snd, rcv, kind)                                 \
	{                                                                      \
		.name = nm, .modes = (1u << MODE_SPIN) | (1u << MODE_BLOCK),   \
		.unsupported = pbr_unsupported, .prepare = prep,               \
		.open = pbr_open, .send = snd, .recv = rcv,                    \
		.close = pbr_close, .cleanup = pbr_cleanup, .go_kind = kind,   \
	}

const struct xport xport_pbring_go =
	PBR_GO_XPORT("pbring-go", pb_prepare, pb_send, pb_recv, "pb");
const struct xport xport_pbring_raw_go =
	PBR_GO_XPORT("pbring-raw-go", raw_prepare, raw_send, raw_recv, "raw");

const char *pbring_chan_ring(const struct chan *c)
{
	const struct pbr_shared *s = c->shared;

	return s ? s->name : "";
}
