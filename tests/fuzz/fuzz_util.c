/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the fuzz targets (see fuzz_util.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pbring/demo/v1/device.pb.h"
#include <pb.h>

#include "fuzz_util.h"
#include "pbring/pb.h"

void fz_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "FUZZ CHECK FAILED: %s (%s:%d)\n", what, file, line);
	abort();
}

void fz_trace(const char *fmt, ...)
{
	static int on = -1;
	va_list ap;

	if (on < 0)
		on = getenv("FZ_TRACE") != NULL;
	if (!on)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

/* --- input ---------------------------------------------------------------- */

size_t fz_bytes(struct fz_in *in, void *dst, size_t max)
{
	size_t n = in->n < max ? in->n : max;

	if (n)
		memcpy(dst, in->p, n);
	in->p += n;
	in->n -= n;
	return n;
}

/* Little-endian, zero-padded when the input runs out. */
static uint64_t fz_le(struct fz_in *in, size_t width)
{
	uint8_t b[8] = {0};
	uint64_t v = 0;
	size_t i;

	fz_bytes(in, b, width);
	for (i = 0; i < width; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

uint8_t fz_u8(struct fz_in *in)
{
	return (uint8_t)fz_le(in, 1);
}

uint16_t fz_u16(struct fz_in *in)
{
	return (uint16_t)fz_le(in, 2);
}

uint32_t fz_u32(struct fz_in *in)
{
	return (uint32_t)fz_le(in, 4);
}

uint64_t fz_u64(struct fz_in *in)
{
	return fz_le(in, 8);
}

/* --- guarded buffers ------------------------------------------------------ */

#define FZ_ARENA (256u * 1024u)

static uint8_t *arena[2]; /* FZ_ARENA bytes, then one PROT_NONE page */

static uint8_t *arena_get(unsigned which)
{
	void *m;

	if (arena[which])
		return arena[which];
	m = mmap(NULL, FZ_ARENA + PBR_PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	FZ_ASSERT(m != MAP_FAILED);
	FZ_ASSERT(mprotect((uint8_t *)m + FZ_ARENA, PBR_PAGE, PROT_NONE) == 0);
	arena[which] = m;
	return m;
}

void *fz_guarded(unsigned which, size_t len)
{
	void *p;

	if (len > FZ_ARENA) {
		p = malloc(len);
		FZ_ASSERT(p != NULL);
		return p;
	}
	return arena_get(which) + FZ_ARENA - len;
}

void fz_unguard(unsigned which, void *p)
{
	uint8_t *a = arena_get(which);

	if ((uint8_t *)p < a || (uint8_t *)p > a + FZ_ARENA)
		free(p);
}

/* --- rings ---------------------------------------------------------------- */

const char *fz_name(char *buf, size_t n)
{
	static unsigned long counter;

	snprintf(buf, n, "fz-%ld-%lu", (long)getpid(), ++counter);
	return buf;
}

void fz_path(const char *name, char *buf, size_t n)
{
	snprintf(buf, n, "/dev/shm/pbring.%s", name);
}

int fz_raw_map(const char *name, struct fz_raw *raw)
{
	char path[128];
	struct stat st;
	void *p;

	memset(raw, 0, sizeof(*raw));
	fz_path(name, path, sizeof(path));
	raw->fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (raw->fd < 0)
		return -errno;
	if (fstat(raw->fd, &st) < 0 || st.st_size < (off_t)PBR_PAGE)
		goto fail;
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 raw->fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	raw->size = (size_t)st.st_size;
	raw->base = p;
	return 0;
fail:
	close(raw->fd);
	raw->fd = -1;
	return -EUCLEAN;
}

void fz_raw_unmap(struct fz_raw *raw)
{
	if (raw->base)
		munmap(raw->base, raw->size);
	if (raw->fd >= 0)
		close(raw->fd);
	memset(raw, 0, sizeof(*raw));
	raw->fd = -1;
}

void fz_geo_of(const struct pbr_ring *r, const struct pbr_layout_super *sb,
	       struct fz_geo *g)
{
	struct pbr_ring_info info;

	pbr_ring_info(r, &info);
	/* The schema pointer is the one address the API exposes. */
	g->base = (const uint8_t *)info.schema - sb->schema_off;
	g->size = info.total_size;
	g->slots = g->base + sb->slots_off;
	g->slot_count = info.slot_count;
	g->slot_size = info.slot_size;
	g->payload_cap = info.payload_cap;
	FZ_ASSERT(g->payload_cap == g->slot_size - PBR_SLOT_HDR_SIZE);
	FZ_ASSERT(sb->slots_off + (uint64_t)g->slot_count * g->slot_size <=
		  g->size);
}

static const uint8_t *slot_of(const struct fz_geo *g, uint64_t seq)
{
	return g->slots + (size_t)(seq & (g->slot_count - 1)) * g->slot_size;
}

void fz_check_view(const struct fz_geo *g, const struct pbr_view *v)
{
	const uint8_t *slot = slot_of(g, v->seq);
	const uint8_t *d = v->data;

	FZ_ASSERT(d == slot + PBR_SLOT_HDR_SIZE);
	FZ_ASSERT(v->len <= g->payload_cap);
	FZ_ASSERT(d + v->len <= slot + g->slot_size);
	FZ_ASSERT(v->trace_id >= slot && v->trace_id + 16 <= d);
	FZ_ASSERT(v->span_id >= slot && v->span_id + 8 <= d);
	/* A source id is reported only if its trailer fits (FORMAT.md §6.3),
	 * and none is made up: a view without the flag carries zeros. */
	if (v->flags & PBR_SLOT_F_SOURCE)
		FZ_ASSERT(PBR_SOURCE_OFF(v->len) + PBR_SOURCE_SIZE <=
			  g->payload_cap);
	else
		FZ_ASSERT(v->source[0] == 0 && v->source[1] == 0);
}

void fz_check_slot(const struct fz_geo *g, const struct pbr_slot *s)
{
	const uint8_t *slot = slot_of(g, s->seq);

	FZ_ASSERT((const uint8_t *)s->data == slot + PBR_SLOT_HDR_SIZE);
	FZ_ASSERT(s->cap == g->payload_cap);
}

/* --- loads of shared words ------------------------------------------------ */

#define FZ_WATCH_SLOTS 256 /* the read-once rule is checked on these */

static struct {
	const struct fz_geo *g;
	uint16_t seen[FZ_WATCH_SLOTS]; /* header words loaded since commit */
} watch;

void fz_watch(const struct fz_geo *g)
{
	memset(&watch, 0, sizeof(watch));
	watch.g = g;
}

void fz_account_load(const void *p, unsigned width)
{
	const struct fz_geo *g = watch.g;
	const uint8_t *a = p;
	uint64_t off, slot;
	unsigned word;

	if (!g)
		return;
	FZ_ASSERT(((uintptr_t)a & (width - 1)) == 0);
	FZ_ASSERT(a >= g->base && a + width <= g->base + g->size);
	if (a < g->slots)
		return;
	off = (uint64_t)(a - g->slots);
	slot = off / g->slot_size;
	off %= g->slot_size;
	FZ_ASSERT(off < PBR_SLOT_HDR_SIZE); /* payloads are not words */
	if (slot >= FZ_WATCH_SLOTS)
		return;
	word = (unsigned)(off / 4);
	if (word == 0) {
		watch.seen[slot] = 0;
		return;
	}
	FZ_ASSERT(!(watch.seen[slot] & (1u << word)));
	watch.seen[slot] |= (uint16_t)(1u << word);
}

__attribute__((weak)) uint64_t pbr_adv_load64(const void *p, uint64_t seen)
{
	fz_account_load(p, 8);
	return seen;
}

__attribute__((weak)) uint32_t pbr_adv_load32(const void *p, uint32_t seen)
{
	fz_account_load(p, 4);
	return seen;
}

/* --- decoding ------------------------------------------------------------- */

static void check_span(const struct pbr_span *sp, const void *buf, size_t len)
{
	const uint8_t *b = buf, *d = sp->data;

	if (!sp->data)
		return;
	FZ_ASSERT(d >= b && sp->len <= len && d + sp->len <= b + len);
}

static void decode_event(const struct pbr_view *v, unsigned flags,
			 void *scratch, size_t scratch_len)
{
	pbring_demo_v1_DeviceEvent ev = pbring_demo_v1_DeviceEvent_init_zero;
	struct pbr_span blob = {0};
	int rc;

	ev.blob.funcs.decode = pbr_pb_decode_span;
	ev.blob.arg = &blob;
	if (scratch)
		rc = pbr_view_decode_copy(v, pbring_demo_v1_DeviceEvent_fields,
					  &ev, scratch, scratch_len);
	else
		rc = pbr_view_decode(v, pbring_demo_v1_DeviceEvent_fields, &ev,
				     flags);
	fz_trace("  decode %s len %u: %d\n", scratch ? "copy" : "in place",
		 v->len, rc);
	FZ_ASSERT(rc == 0 || rc == -EBADMSG);
	if (rc)
		return;
	FZ_ASSERT(memchr(ev.id, '\0', sizeof(ev.id)) != NULL);
	check_span(&blob, scratch ? scratch : v->data, v->len);
}

void fz_decode_event(const struct pbr_view *v, unsigned flags)
{
	/* Exactly the payload's size: an over-read of the copy faults. */
	void *scratch = fz_guarded(1, v->len);

	decode_event(v, flags, NULL, 0);
	decode_event(v, 0, scratch, v->len);
	fz_unguard(1, scratch);
}
