/* SPDX-License-Identifier: MIT */
/*
 * fuzz_attach: pbr_ring_attach() over hostile segment bytes.
 *
 * The input becomes a ring's whole object (raw mode) or a set of edits of
 * a valid ring (overlay mode, which reaches the deeper geometry checks).
 * Attach must then fail with exactly the error class that FORMAT.md §12.2
 * gives for the first rule broken, as decided by an independent validator
 * written here from the document, or succeed with an info that agrees
 * with the bytes; optionally the attached ring is used (a producer sends,
 * a reader peeks, reclaim and participants run), every view must stay
 * inside its slot and every load of a shared word inside the mapping
 * (fz_account_load).
 *
 * Input (all reads past the end are zero):
 *   u8   mode: bit 0 overlay (else raw), bit 1 force state READY,
 *        bit 2 use the ring once attached, bit 3 raw: the object's size is
 *        the superblock's own total_size
 *   raw:     u32 object size (mod 1 MiB + 1), then the object's first
 *            bytes; the rest of the object is zero
 *   overlay: u8 u8 geometry, u64 seq_base, then edits, each an op byte:
 *            0 patch the superblock: u16 offset, u8 length (mod 17), bytes
 *            1 add to a superblock word: u16 offset, u8 width, u16 delta
 *            2 patch anywhere: u32 offset, u8 length (mod 17), bytes
 *            3 resize the object (last): u32 size (mod 1 MiB + 1)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "pbring/demo.h"

#define M_OVERLAY 0x1u
#define M_READY 0x2u
#define M_USE 0x4u
#define M_SELF_SIZE 0x8u

#define FZ_SIZE_MAX (1u << 20)
#define SB_STATE offsetof(struct pbr_layout_super, state)

/* --- the independent validator (FORMAT.md §3, §12.2) ---------------------- */

static int pow2_in(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v >= lo && v <= hi && (v & (v - 1)) == 0;
}

/* Regions after the superblock: page-aligned, in order, inside total. */
static int regions_ok(const struct pbr_layout_super *sb)
{
	const uint64_t r[4][2] = {{sb->control_off, sb->control_size},
				  {sb->participants_off, sb->participants_size},
				  {sb->schema_off, sb->schema_size},
				  {sb->slots_off, sb->slots_size}};
	unsigned __int128 end = PBR_PAGE;
	int i;

	for (i = 0; i < 4; i++) {
		if (r[i][0] % PBR_PAGE || r[i][0] < end)
			return 0;
		end = (unsigned __int128)r[i][0] + r[i][1];
	}
	return end <= sb->total_size;
}

static int geometry_ok(const struct pbr_layout_super *sb, uint64_t size)
{
	uint64_t np = sb->max_producers, nr = sb->max_readers;
	/* §12.2: with READER_METRICS the table holds a block per reader */
	uint64_t table = (np + nr) * PBR_ENTRY_SIZE +
			 (sb->features_compat & PBR_FEATURE_READER_METRICS
				  ? nr * PBR_METRICS_SIZE
				  : 0);

	if (sb->total_size != size ||
	    !pow2_in(sb->slot_count, PBR_SLOT_COUNT_MIN, PBR_SLOT_COUNT_MAX) ||
	    sb->slot_size % 128 || sb->slot_size < PBR_SLOT_SIZE_MIN ||
	    sb->slot_size > PBR_SLOT_SIZE_MAX || np < 1 || np > 1024 ||
	    nr < 1 || nr > 1024)
		return 0;
	if ((sb->ring_flags & PBR_RING_SINGLE_PRODUCER) && np != 1)
		return 0;
	if (sb->control_size < 4096 || sb->participants_size < table ||
	    sb->slots_size != (uint64_t)sb->slot_count * sb->slot_size ||
	    sb->schema_len > sb->schema_size || !regions_ok(sb))
		return 0;
	return memchr(sb->name, 0, sizeof(sb->name)) &&
	       memchr(sb->msg_type, 0, sizeof(sb->msg_type));
}

/* Do the stored schema bytes hash to schema_hash (FORMAT.md §3.2)? */
static int schema_ok(const char *name, const struct pbr_layout_super *sb)
{
	static uint8_t buf[FZ_SIZE_MAX];
	char path[128];
	ssize_t n;
	int fd;

	if (!sb->schema_len || !sb->schema_hash)
		return 1;
	fz_path(name, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	FZ_ASSERT(fd >= 0);
	n = pread(fd, buf, sb->schema_len, (off_t)sb->schema_off);
	close(fd);
	FZ_ASSERT(n == (ssize_t)sb->schema_len);
	return pbr_schema_hash(buf, sb->schema_len) == sb->schema_hash;
}

/* The error attach must return for an object @name of @size bytes whose
 * first page is @sb (zero-padded if the object is shorter), with no
 * creator at work and an attach timeout of 1 ns (FORMAT.md §12.2). */
static int expected(const char *name, const struct pbr_layout_super *sb,
		    uint64_t size)
{
	if (size == 0)
		return -ETIMEDOUT; /* still within the grace of an empty one */
	if (size < PBR_PAGE)
		return -EUCLEAN;
	if (sb->state != PBR_STATE_READY)
		return sb->magic && sb->magic != PBR_MAGIC ? -EPROTO : -EUCLEAN;
	if (sb->magic != PBR_MAGIC)
		return -EPROTO;
	if (sb->major != 1)
		return -EPROTONOSUPPORT;
	if (sb->fingerprint != 0x88101008u)
		return -EPROTOTYPE;
	if (sb->features_incompat)
		return -ENOTSUP;
	return geometry_ok(sb, size) && schema_ok(name, sb) ? 0 : -EUCLEAN;
}

/* --- building the object -------------------------------------------------- */

static int create_raw(const char *name, struct fz_in *in, unsigned mode)
{
	struct pbr_layout_super head = {0};
	uint64_t size = fz_u32(in) % (FZ_SIZE_MAX + 1);
	char path[128];
	int fd;

	if (in->n)
		memcpy(&head, in->p,
		       in->n < sizeof(head) ? in->n : sizeof(head));
	if (mode & M_SELF_SIZE)
		size = head.total_size % (FZ_SIZE_MAX + 1);
	fz_path(name, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	FZ_ASSERT(fd >= 0);
	FZ_ASSERT(ftruncate(fd, (off_t)size) == 0);
	if (in->n && size &&
	    pwrite(fd, in->p, in->n < size ? in->n : size, 0) < 0)
		fz_fail("pwrite", __FILE__, __LINE__);
	close(fd);
	return 0;
}

static void create_valid(const char *name, struct fz_in *in)
{
	uint8_t g0 = fz_u8(in), g1 = fz_u8(in);
	struct pbr_create_opts o = {
		.slot_count = 2u << (g0 & 7),
		.slot_size = 128u * (1 + ((g0 >> 3) & 3)),
		.max_producers = (g1 & 0x40) ? 1 : 1 + (g1 & 7),
		.max_readers = 1 + ((g1 >> 3) & 7),
		.flags = (g1 & 0x40) ? PBR_CREATE_SINGLE_PRODUCER : 0,
		.seq_base = fz_u64(in),
	};
	struct pbr_ring *r;

	if (g1 & 0x80) {
		o.msg_type = PBR_DEMO_MSG_TYPE;
		pbr_demo_schema(&o.schema, &o.schema_len);
		o.schema_hash = pbr_schema_hash(o.schema, o.schema_len);
	}
	FZ_ASSERT(pbr_ring_create(name, &o, &r) == 0);
	pbr_ring_detach(r);
}

static void patch(uint8_t *dst, size_t cap, uint64_t off, struct fz_in *in)
{
	uint8_t n = fz_u8(in) % 17;

	if (cap == 0)
		return;
	off %= cap;
	if (n > cap - off)
		n = (uint8_t)(cap - off);
	fz_bytes(in, dst + off, n);
}

static void add_to(uint8_t *sb, struct fz_in *in)
{
	uint16_t off = fz_u16(in) % PBR_PAGE;
	uint8_t width = fz_u8(in) & 1 ? 8 : 4;
	int16_t delta = (int16_t)fz_u16(in);
	uint64_t v = 0;

	off &= (uint16_t) ~(width - 1);
	memcpy(&v, sb + off, width);
	v += (uint64_t)(int64_t)delta;
	memcpy(sb + off, &v, width);
}

/* Apply the edits; returns the size to truncate the object to, or 0. */
static uint64_t edit(struct fz_raw *raw, struct fz_in *in)
{
	uint64_t resize = 0;

	while (in->n) {
		switch (fz_u8(in) & 3) {
		case 0:
			patch(raw->base, PBR_PAGE, fz_u16(in), in);
			break;
		case 1:
			add_to(raw->base, in);
			break;
		case 2:
			patch(raw->base, raw->size, fz_u32(in), in);
			break;
		default:
			resize = fz_u32(in) % (FZ_SIZE_MAX + 1);
			break;
		}
	}
	return resize;
}

static void create_overlay(const char *name, struct fz_in *in)
{
	struct fz_raw raw;
	uint64_t resize;

	create_valid(name, in);
	FZ_ASSERT(fz_raw_map(name, &raw) == 0);
	resize = edit(&raw, in);
	if (resize)
		FZ_ASSERT(ftruncate(raw.fd, (off_t)resize) == 0);
	fz_raw_unmap(&raw);
}

/* Force state READY, then read back what attach will see. */
static uint64_t snapshot(const char *name, unsigned mode,
			 struct pbr_layout_super *sb)
{
	const uint32_t ready = PBR_STATE_READY;
	char path[128];
	struct stat st;
	int fd;

	memset(sb, 0, sizeof(*sb));
	fz_path(name, path, sizeof(path));
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	FZ_ASSERT(fd >= 0 && fstat(fd, &st) == 0);
	if ((mode & M_READY) && st.st_size >= (off_t)(SB_STATE + 4))
		FZ_ASSERT(pwrite(fd, &ready, 4, SB_STATE) == 4);
	FZ_ASSERT(pread(fd, sb, sizeof(*sb), 0) >= 0);
	close(fd);
	return (uint64_t)st.st_size;
}

/* --- checking the attached ring ------------------------------------------- */

static void check_info(const struct pbr_ring *r,
		       const struct pbr_layout_super *sb, uint64_t size)
{
	struct pbr_ring_info i;

	pbr_ring_info(r, &i);
	FZ_ASSERT(i.total_size == size && i.slot_count == sb->slot_count);
	FZ_ASSERT(i.slot_size == sb->slot_size &&
		  i.payload_cap == sb->slot_size - PBR_SLOT_HDR_SIZE);
	FZ_ASSERT(i.max_producers == sb->max_producers &&
		  i.max_readers == sb->max_readers);
	FZ_ASSERT(i.seq_base == sb->seq_base && i.format_major == 1);
	FZ_ASSERT(i.schema_len == sb->schema_len &&
		  i.schema_len <= sb->schema_size);
	FZ_ASSERT(strncmp(i.name, sb->name, sizeof(sb->name)) == 0);
	FZ_ASSERT(strncmp(i.msg_type, sb->msg_type, sizeof(sb->msg_type)) == 0);
}

static void use_reader(struct pbr_ring *r, const struct fz_geo *g)
{
	struct pbr_reader *rd;
	struct pbr_view v;
	int i, rc;

	if (pbr_reader_open(r, NULL, &rd))
		return;
	for (i = 0; i < 4; i++) {
		rc = pbr_reader_peek(rd, 0, &v);
		if (rc == -EBADMSG)
			continue;
		if (rc)
			break;
		fz_check_view(g, &v);
		fz_decode_event(&v, 0);
		rc = pbr_reader_release(rd, &v);
		FZ_ASSERT(rc == 0 || rc == -ESTALE);
	}
	pbr_reader_close(rd);
}

/* A producer sends, a reader peeks, reclaim and participants run. */
static void use(struct pbr_ring *r, const struct pbr_layout_super *sb)
{
	struct pbr_participant pt[4];
	struct pbr_producer *p = NULL;
	struct pbr_ring_stats st;
	struct fz_geo g;
	int rc;

	fz_geo_of(r, sb, &g);
	fz_watch(&g); /* every shared load inside the mapping */
	if (pbr_producer_open(r, NULL, &p) == 0) {
		rc = pbr_producer_send(p, "fuzz", 4, 0, 0);
		FZ_ASSERT(rc == 0 || rc == -EAGAIN || rc == -EOWNERDEAD);
	}
	use_reader(r, &g);
	if (p)
		(void)pbr_producer_close(p);
	rc = pbr_ring_participants(r, pt, 4);
	FZ_ASSERT(rc >= 0);
	pbr_ring_stats(r, &st);
	rc = pbr_ring_reclaim(r);
	FZ_ASSERT(rc >= 0);
	fz_watch(NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pbr_attach_opts ao = {.timeout_ns = 1};
	struct fz_in in = {data, size};
	struct pbr_layout_super sb;
	unsigned mode = fz_u8(&in);
	struct pbr_ring *r;
	char name[32];
	uint64_t osize;
	int rc, want;

	fz_name(name, sizeof(name));
	if (mode & M_OVERLAY)
		create_overlay(name, &in);
	else
		create_raw(name, &in, mode);
	osize = snapshot(name, mode, &sb);
	want = expected(name, &sb, osize);
	rc = pbr_ring_attach(name, &ao, &r);
	fz_trace("attach: mode %#x size %llu: %d (expected %d)\n", mode,
		 (unsigned long long)osize, rc, want);
	FZ_ASSERT(rc == want);
	if (!rc) {
		check_info(r, &sb, osize);
		if (mode & M_USE)
			use(r, &sb);
		pbr_ring_detach(r);
	}
	FZ_ASSERT(pbr_ring_unlink(name) == 0);
	return 0;
}
