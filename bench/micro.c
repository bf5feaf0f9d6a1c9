/* SPDX-License-Identifier: MIT */
/*
 * Micro benchmarks of the library's hot paths, in one process and one
 * thread (so the slot lines are in this core's cache: these are the
 * instruction-path costs; the cross-core costs are pbring-bench's job).
 *
 * For payloads of 64 B, 1 KiB, 4 KiB, 64 KiB and 1 MiB:
 *   reserve_commit	reserve + commit of a free slot (payload not written)
 *   peek_release	peek + release of a committed slot
 *   send_pb		encode a DeviceEvent into a slot: reserve, nanopb,
 *			CRC32C, clock, commit (pbr_producer_send_pb)
 *   send_inplace	the same DeviceEvent with its blob written in place:
 *			reserve, pbr_slot_pb_span, memcpy of the blob into
 *			it, nanopb of the other fields, CRC32C, clock, commit
 *   send_inplace_nocrc	the same on a ring with CRC policy none
 *   decode		validate (CRC32C) + decode in place (pbr_view_decode)
 *   crc32c		pbr_crc32c; ns_per_KiB is the figure to quote
 * and, to take the above apart: the same with timeout 0 (no clock read in
 * the wait set-up), decode without the CRC, nanopb encoding alone, the
 * codec's fast path alone (fast_encode, fast_decode), the
 * three-stream CRC32C prototype, memcpy and clock_gettime.
 *
 * Run: pbring-micro --benchmark_format=json (any google-benchmark flag).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "bench_util.h"
#include "gbench_shim.h"
#include "pbring/pb.h"
#include "codec.h" /* the fast path, measured alone */

static const uint32_t sizes[] = {64, 1024, 4096, 65536, 1048576};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

/*
 * Three rings per payload size: one without readers, where the producer
 * runs free (every reserve finds a free slot); one with a gating reader
 * for peek_release; one holding a peeked DeviceEvent for decode.
 */
struct ring {
	char name[64];
	struct pbr_ring *ring;
	struct pbr_producer *prod;
	struct pbr_reader *rd;
};

struct fixture {
	uint32_t size;
	uint32_t slot_count;
	struct ring free, gated, held, nocrc;
	struct demo_event ev;
	struct pbr_view view; /* the held DeviceEvent */
	uint8_t *src, *dst;   /* memcpy and CRC buffers */
};

/* What a benchmark function gets: its fixture and the timeout to pass. */
struct arg {
	struct fixture *f;
	int64_t timeout;
};

static struct fixture fx[NSIZES];
static struct arg args[NSIZES][2]; /* [size][0: timeout -1, 1: timeout 0] */

static void die(const char *what, int rc)
{
	fprintf(stderr, "pbring-micro: %s: %s\n", what, pbr_strerror(rc));
	exit(2);
}

static void check(const char *what, int rc)
{
	if (rc < 0)
		die(what, rc);
}

/* --- ring operations ------------------------------------------------------ */

static void bm_reserve_commit(void *p, uint64_t n)
{
	struct arg *a = p;
	struct pbr_producer *prod = a->f->free.prod;
	struct pbr_slot slot;

	while (n--) {
		check("reserve", pbr_producer_reserve(prod, a->timeout, &slot));
		check("commit", pbr_producer_commit(prod, &slot, a->f->size));
	}
}

/* Commit up to a ring's worth untimed, then time peeking it empty. */
static double bm_peek_release(void *p, uint64_t n)
{
	struct arg *a = p;
	struct ring *r = &a->f->gated;
	struct pbr_slot slot;
	struct pbr_view v;
	uint64_t t0, spent = 0, k, i;

	while (n) {
		k = n < a->f->slot_count ? n : a->f->slot_count;
		for (i = 0; i < k; i++) {
			check("reserve",
			      pbr_producer_reserve(r->prod, 0, &slot));
			check("commit",
			      pbr_producer_commit(r->prod, &slot, a->f->size));
		}
		t0 = bench_now_ns();
		for (i = 0; i < k; i++) {
			check("peek", pbr_reader_peek(r->rd, a->timeout, &v));
			check("release", pbr_reader_release(r->rd, &v));
		}
		spent += bench_now_ns() - t0;
		n -= k;
	}
	return (double)spent * 1e-9;
}

static void bm_send_pb(void *p, uint64_t n)
{
	struct arg *a = p;
	struct fixture *f = a->f;

	while (n--) {
		f->ev.msg.seq++;
		check("send_pb",
		      pbr_producer_send_pb(f->free.prod,
					   pbring_demo_v1_DeviceEvent_fields,
					   &f->ev.msg, a->timeout));
	}
}

/* The blob written in place: what a producer of frames does. */
static void send_inplace_n(struct fixture *f, struct ring *r, uint64_t n,
			   int64_t timeout)
{
	pbring_demo_v1_DeviceEvent m = f->ev.msg;
	struct pbr_slot slot;
	uint32_t used;
	void *blob;

	m.blob.funcs.encode = NULL;
	while (n--) {
		used = 0;
		m.seq++;
		check("reserve", pbr_producer_reserve(r->prod, timeout, &slot));
		check("span",
		      pbr_slot_pb_span(&slot, &used,
				       pbring_demo_v1_DeviceEvent_blob_tag,
				       f->ev.size, &blob));
		memcpy(blob, f->ev.blob, f->ev.size);
		check("commit_pb",
		      pbr_producer_commit_pb(r->prod, &slot, used,
					     pbring_demo_v1_DeviceEvent_fields,
					     &m));
	}
}

static void bm_send_inplace(void *p, uint64_t n)
{
	struct arg *a = p;

	send_inplace_n(a->f, &a->f->free, n, a->timeout);
}

static void bm_send_inplace_nocrc(void *p, uint64_t n)
{
	struct arg *a = p;

	send_inplace_n(a->f, &a->f->nocrc, n, a->timeout);
}

static void decode_n(struct fixture *f, uint64_t n, unsigned flags)
{
	pbring_demo_v1_DeviceEvent m;
	struct pbr_span blob;

	while (n--) {
		m.blob.funcs.decode = pbr_pb_decode_span;
		m.blob.arg = &blob;
		check("decode",
		      pbr_view_decode(&f->view,
				      pbring_demo_v1_DeviceEvent_fields, &m,
				      flags));
		bench_keep(m.seq + (uintptr_t)blob.data);
	}
}

static void bm_decode(void *p, uint64_t n)
{
	decode_n(((struct arg *)p)->f, n, 0);
}

static void bm_decode_noverify(void *p, uint64_t n)
{
	decode_n(((struct arg *)p)->f, n, PBR_DECODE_NOVERIFY);
}

/* --- pieces --------------------------------------------------------------- */

/* nanopb alone on the slot's bytes, the blob skipped by a callback: what
 * pbr_view_decode adds (CRC aside) is the difference. */
static bool skip_blob(pb_istream_t *s, const pb_field_t *f, void **arg)
{
	(void)f;
	(void)arg;
	return pb_read(s, NULL, s->bytes_left);
}

static void nanopb_decode_n(struct fixture *f, uint64_t n, unsigned flags)
{
	pbring_demo_v1_DeviceEvent m = pbring_demo_v1_DeviceEvent_init_zero;
	pb_istream_t is;

	while (n--) {
		/* With PB_DECODE_NOINIT nanopb skips resetting every field to
		 * its default first; the struct must then be reset by hand
		 * (here: nothing to reset, every field is on the wire). */
		m.blob.funcs.decode = skip_blob;
		is = pb_istream_from_buffer(f->view.data, f->view.len);
		if (!pb_decode_ex(&is, pbring_demo_v1_DeviceEvent_fields, &m,
				  flags))
			die("pb_decode", -EBADMSG);
		bench_keep(m.seq);
	}
}

static void bm_nanopb_decode(void *p, uint64_t n)
{
	nanopb_decode_n(((struct arg *)p)->f, n, 0);
}

static void bm_nanopb_decode_noinit(void *p, uint64_t n)
{
	nanopb_decode_n(((struct arg *)p)->f, n, PB_DECODE_NOINIT);
}

static void bm_pb_encode(void *p, uint64_t n)
{
	struct fixture *f = ((struct arg *)p)->f;
	pb_ostream_t os;

	while (n--) {
		os = pb_ostream_from_buffer(f->dst, f->size + 64);
		if (!pb_encode(&os, pbring_demo_v1_DeviceEvent_fields,
			       &f->ev.msg))
			die("pb_encode", -EINVAL);
		bench_keep(os.bytes_written);
	}
}

/* The codec's fast path alone (codec/pbfast.c), as pbr_producer_send_pb
 * and pbr_view_decode use it for flat messages like this one. */
static void bm_fast_encode(void *p, uint64_t n)
{
	struct fixture *f = ((struct arg *)p)->f;
	size_t w;

	while (n--) {
		if (!pbri_fast_encode(pbring_demo_v1_DeviceEvent_fields,
				      &f->ev.msg, f->dst, f->size + 64, &w,
				      NULL))
			die("fast_encode", -EINVAL);
		bench_keep(w);
	}
}

static void bm_fast_decode(void *p, uint64_t n)
{
	struct fixture *f = ((struct arg *)p)->f;
	pbring_demo_v1_DeviceEvent m = pbring_demo_v1_DeviceEvent_init_zero;
	const char *why;

	while (n--) {
		m.blob.funcs.decode = skip_blob;
		if (pbri_fast_decode(pbring_demo_v1_DeviceEvent_fields, &m,
				     f->view.data, f->view.len, &why) != 1)
			die("fast_decode", -EBADMSG);
		bench_keep(m.seq);
	}
}

static void bm_crc32c(void *p, uint64_t n)
{
	struct fixture *f = ((struct arg *)p)->f;

	while (n--)
		bench_keep(pbr_crc32c(0, f->src, f->size));
}

static void bm_memcpy(void *p, uint64_t n)
{
	struct fixture *f = ((struct arg *)p)->f;

	while (n--) {
		memcpy(f->dst, f->src, f->size);
		bench_keep((uintptr_t)f->dst);
	}
}

static void bm_clock(void *p, uint64_t n)
{
	(void)p;
	while (n--)
		bench_keep(bench_now_ns());
}

/* --- set-up --------------------------------------------------------------- */

static void open_ring(struct ring *r, const char *tag, uint32_t size,
		      uint32_t count, bool reader, uint32_t crc)
{
	struct pbr_create_opts o = {.crc = crc};
	struct pbr_producer_opts po = {.wait = PBR_WAIT_SPIN};
	struct pbr_reader_opts ro = {.wait = PBR_WAIT_SPIN};

	snprintf(r->name, sizeof(r->name), "pbrbench.micro.%d.%s.%u",
		 (int)getpid(), tag, size);
	o.slot_count = count;
	o.slot_size = bench_slot_size(size);
	o.flags = PBR_CREATE_SINGLE_PRODUCER;
	(void)pbr_ring_unlink(r->name);
	check("create", pbr_ring_create(r->name, &o, &r->ring));
	check("producer", pbr_producer_open(r->ring, &po, &r->prod));
	if (reader)
		check("reader", pbr_reader_open(r->ring, &ro, &r->rd));
	/* Only this process uses the ring, through its mapping: remove the
	 * name now, so that nothing is left in /dev/shm when the benchmark
	 * library exits on its own (--help, a bad flag) or we are killed. */
	(void)pbr_ring_unlink(r->name);
}

static void close_ring(struct ring *r)
{
	pbr_ring_detach(r->ring); /* closes its producer and reader */
}

static void setup(struct fixture *f, uint32_t size)
{
	size_t i;

	f->size = size;
	f->slot_count = size >= 1048576 ? 32 : 64;
	open_ring(&f->free, "free", size, f->slot_count, false, PBR_CRC_FULL);
	open_ring(&f->gated, "gated", size, f->slot_count, true, PBR_CRC_FULL);
	open_ring(&f->held, "held", size, 2, true, PBR_CRC_FULL);
	open_ring(&f->nocrc, "nocrc", size, f->slot_count, false, PBR_CRC_NONE);
	check("event", bench_event_init(&f->ev, size));
	check("send_pb", pbr_producer_send_pb(f->held.prod,
					      pbring_demo_v1_DeviceEvent_fields,
					      &f->ev.msg, 0));
	check("peek", pbr_reader_peek(f->held.rd, 0, &f->view));
	f->src = malloc(size + 64);
	f->dst = malloc(size + 64);
	if (!f->src || !f->dst)
		die("malloc", -ENOMEM);
	for (i = 0; i < size; i++)
		f->src[i] = (uint8_t)(i * 131u + 7u);
	memset(f->dst, 0, size + 64);
}

static void teardown(struct fixture *f)
{
	close_ring(&f->free);
	close_ring(&f->gated);
	close_ring(&f->held);
	close_ring(&f->nocrc);
	demo_event_fini(&f->ev);
	free(f->src);
	free(f->dst);
}

static void reg(const char *what, uint32_t size, pbr_bench_fn fn, struct arg *a,
		uint64_t bytes)
{
	struct pbr_bench_opts o = {.bytes_per_iter = bytes};
	char name[96];

	/* Aim for ~64 KiB of work per call: large payloads one at a time. */
	o.batch = size >= 65536 ? 1 : (size >= 1024 ? 16 : 256);
	snprintf(name, sizeof(name), "%s/%u", what, size);
	pbr_bench_register_ex(name, fn, a, &o);
}

static void reg_peek(const char *what, uint32_t size, struct arg *a)
{
	struct pbr_bench_opts o = {.batch = a->f->slot_count};
	char name[96];

	snprintf(name, sizeof(name), "%s/%u", what, size);
	pbr_bench_register_manual(name, bm_peek_release, a, &o);
}

static void register_size(size_t i)
{
	struct arg *a = &args[i][0], *a0 = &args[i][1];
	uint32_t s = sizes[i];

	a->f = a0->f = &fx[i];
	a->timeout = -1; /* wait without limit: what a real reader passes */
	a0->timeout = 0;
	reg("reserve_commit", s, bm_reserve_commit, a, 0);
	reg_peek("peek_release", s, a);
	reg("send_pb", s, bm_send_pb, a, s);
	reg("send_inplace", s, bm_send_inplace, a, s);
	reg("send_inplace_nocrc", s, bm_send_inplace_nocrc, a, s);
	reg("decode", s, bm_decode, a, s);
	reg("crc32c", s, bm_crc32c, a, s);
	reg("pieces/reserve_commit_timeout0", s, bm_reserve_commit, a0, 0);
	reg_peek("pieces/peek_release_timeout0", s, a0);
	reg("pieces/send_pb_timeout0", s, bm_send_pb, a0, s);
	reg("pieces/decode_noverify", s, bm_decode_noverify, a, s);
	reg("pieces/pb_encode", s, bm_pb_encode, a, s);
	reg("pieces/pb_decode", s, bm_nanopb_decode, a, s);
	reg("pieces/fast_encode", s, bm_fast_encode, a, s);
	reg("pieces/fast_decode", s, bm_fast_decode, a, s);
	reg("pieces/pb_decode_noinit", s, bm_nanopb_decode_noinit, a, s);
	reg("pieces/memcpy", s, bm_memcpy, a, s);
}

int main(int argc, char **argv)
{
	size_t i;
	int rc;

	for (i = 0; i < NSIZES; i++)
		setup(&fx[i], sizes[i]);
	for (i = 0; i < NSIZES; i++)
		register_size(i);
	pbr_bench_register("pieces/clock_gettime", bm_clock, NULL);
	rc = pbr_bench_main(argc, argv);
	for (i = 0; i < NSIZES; i++)
		teardown(&fx[i]);
	return rc;
}
