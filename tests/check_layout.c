// SPDX-License-Identifier: MIT
/*
 * check_layout: the segment ABI of layout.h (constants, offsets, encodings),
 * the error strings and name rules, and that a segment written by the
 * library puts every field where layout.h says.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* OFD locks, prctl, mkfifo: also set by the build */
#endif
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* --- pure layout constants --------------------------------------------- */

START_TEST(test_super_offsets)
{
	/* Fields layout.h does not already pin with _Static_assert. */
	ck_assert_uint_eq(sizeof(struct pbr_layout_super), PBR_PAGE);
	ck_assert_uint_eq(offsetof(struct pbr_layout_super, magic), 0x000);
	ck_assert_uint_eq(offsetof(struct pbr_layout_super, minor), 0x00E);
	ck_assert_uint_eq(offsetof(struct pbr_layout_super, features_compat),
			  0x020);
	ck_assert_uint_eq(offsetof(struct pbr_layout_super, slot_size), 0x034);
	ck_assert_uint_eq(offsetof(struct pbr_layout_super, max_producers),
			  0x038);
	ck_assert_uint_eq(offsetof(struct pbr_layout_super, control_size),
			  0x048);
	ck_assert_uint_eq(offsetof(struct pbr_layout_super, participants_size),
			  0x058);
	ck_assert_uint_eq(offsetof(struct pbr_layout_super, schema_size),
			  0x068);
	ck_assert_uint_eq(offsetof(struct pbr_layout_super, slots_size), 0x078);
	ck_assert_uint_eq(offsetof(struct pbr_layout_super, creator_uid),
			  0x094);
	ck_assert_uint_eq(offsetof(struct pbr_layout_super, crc_policy), 0x09C);
	ck_assert_uint_eq(offsetof(struct pbr_layout_super, crc_limit), 0x0A8);
	ck_assert_uint_eq(offsetof(struct pbr_layout_super, reserved0), 0x0AC);
	ck_assert_uint_eq(offsetof(struct pbr_layout_super, reserved1), 0x0B0);
	ck_assert_uint_eq(sizeof(((struct pbr_layout_super *)0)->name),
			  PBR_NAME_MAX + 1);
	ck_assert_uint_eq(sizeof(((struct pbr_layout_super *)0)->msg_type),
			  PBR_MSG_TYPE_MAX + 1);
}
END_TEST

START_TEST(test_entry_and_slot_offsets)
{
	ck_assert_uint_eq(offsetof(struct pbr_layout_producer, state), 0x00);
	ck_assert_uint_eq(offsetof(struct pbr_layout_producer, pid), 0x04);
	ck_assert_uint_eq(offsetof(struct pbr_layout_producer, joined_ns),
			  0x18);
	ck_assert_uint_eq(offsetof(struct pbr_layout_reader, cursor), 0x00);
	ck_assert_uint_eq(offsetof(struct pbr_layout_reader, pid), 0x10);
	ck_assert_uint_eq(offsetof(struct pbr_layout_reader, lost), 0x20);
	ck_assert_uint_eq(offsetof(struct pbr_layout_reader, abandoned), 0x28);
	ck_assert_uint_eq(offsetof(struct pbr_layout_slot, commit), 0x00);
	ck_assert_uint_eq(offsetof(struct pbr_layout_slot, reserved0), 0x14);
	ck_assert_uint_eq(offsetof(struct pbr_layout_slot, trace_flags), 0x38);
	ck_assert_uint_eq(offsetof(struct pbr_layout_slot, reserved1), 0x39);
	ck_assert_uint_eq(offsetof(struct pbr_layout_bell, waiters), 4);
	ck_assert_uint_eq(offsetof(struct pbr_layout_stats, readers_reaped),
			  0x10);
	ck_assert_uint_eq(PBR_ENTRY_SIZE, PBR_BLOCK);
	ck_assert_uint_eq(PBR_SLOT_SIZE_MIN, PBR_BLOCK);
	ck_assert_uint_gt(PBR_SLOT_SIZE_MIN, PBR_SLOT_HDR_SIZE);
}
END_TEST

START_TEST(test_control_block)
{
	const uint32_t off[] = {PBR_CTL_CLAIM, PBR_CTL_DATA_BELL,
				PBR_CTL_SPACE_BELL, PBR_CTL_STATS};
	unsigned i, j;

	/* Each writer class owns its own 128-byte block. */
	for (i = 0; i < 4; i++) {
		ck_assert_uint_eq(off[i] % PBR_BLOCK, 0);
		ck_assert_uint_le(off[i] + PBR_BLOCK, PBR_CTL_SIZE);
		for (j = 0; j < i; j++)
			ck_assert_uint_ne(off[i], off[j]);
	}
	ck_assert_uint_eq(PBR_CTL_SIZE, PBR_PAGE);
	ck_assert_uint_le(sizeof(struct pbr_layout_stats), PBR_BLOCK);
}
END_TEST

START_TEST(test_magic_and_fingerprint)
{
	const uint64_t magic = PBR_MAGIC;
	uint32_t fp = PBR_LAYOUT_FINGERPRINT;
	unsigned char b[8];

	/* The magic is the byte string "\x89PBRING\n" on a little-endian
	 * machine (the only kind format 1 supports). */
	memcpy(b, &magic, 8);
	ck_assert_mem_eq(b, "\x89PBRING\n", 8);
	ck_assert_uint_eq(fp, 0x88101008u);
	ck_assert_uint_eq(fp & 0xff, PBR_SLOT_HDR_SIZE / 8);
	ck_assert_uint_eq((fp >> 8) & 0xff, PBR_ENTRY_SIZE / 8);
	ck_assert_uint_eq((fp >> 16) & 0xff, PBR_BLOCK / 8);
	ck_assert_uint_eq(fp >> 24, 0x80 | 8);
	ck_assert_uint_eq(PBR_FORMAT_MAJOR, 1);
	/* 1.3: the one incompatible feature, durable readers (§3) */
	ck_assert_uint_eq(PBR_FEATURES_INCOMPAT_KNOWN, 1);
	ck_assert_uint_eq(PBR_FEATURE_DURABLE_READERS, 1);
}
END_TEST

/* Format 1.3 (FORMAT.md §4, §5.4, §6): the reader entry's DURABLE flag
 * and name, the name lock's byte, the SOURCE slot flag and its trailer. */
START_TEST(test_durable_source_layout)
{
	ck_assert_uint_eq(PBR_READER_DURABLE, 0x4);
	ck_assert_uint_eq(offsetof(struct pbr_layout_reader, name), 0x50);
	ck_assert_uint_eq(sizeof(((struct pbr_layout_reader *)0)->name), 32);
	ck_assert_uint_eq(PBR_READER_NAME_MAX, 31);
	ck_assert_uint_eq(PBR_CTL_NAME_LOCK, 0x200);
	ck_assert_uint_eq(PBR_SLOT_F_SOURCE, 0x8);
	ck_assert_uint_eq(PBR_SOURCE_SIZE, 16);
	ck_assert_uint_eq(PBR_SOURCE_OFF(0), 0);
	ck_assert_uint_eq(PBR_SOURCE_OFF(1), 8);
	ck_assert_uint_eq(PBR_SOURCE_OFF(49), 56);
	ck_assert_uint_eq(PBR_SOURCE_OFF(56), 56);
}
END_TEST

/* Format 1.2 (FORMAT.md §3, §5.4, §5.5): the reader statistics in bytes
 * 1.1 reserved, the feature bit and the 256-byte metrics block. */
START_TEST(test_reader_metrics_layout)
{
	static const uint64_t bounds[] = PBR_LATENCY_BOUNDS_NS;
	static const uint64_t doc[22] = {
		100,	   200,	      500,	 1000,	    2000,     5000,
		10000,	   20000,     50000,	 100000,    200000,   500000,
		1000000,   2000000,   5000000,	 10000000,  20000000, 50000000,
		100000000, 200000000, 500000000, 1000000000};
	unsigned i;

	ck_assert_uint_eq(PBR_FORMAT_MINOR, 3);
	ck_assert_uint_eq(PBR_FEATURE_READER_METRICS, 1);
	ck_assert_uint_eq(PBR_FEATURES_COMPAT_KNOWN,
			  PBR_FEATURE_READER_METRICS);

	/* reader entry: 0x38 bad, 0x40 crc_errors, 0x48 decode_errors */
	ck_assert_uint_eq(sizeof(struct pbr_layout_reader), PBR_ENTRY_SIZE);
	ck_assert_uint_eq(offsetof(struct pbr_layout_reader, joined_ns), 0x30);
	ck_assert_uint_eq(offsetof(struct pbr_layout_reader, bad), 0x38);
	ck_assert_uint_eq(offsetof(struct pbr_layout_reader, crc_errors), 0x40);
	ck_assert_uint_eq(offsetof(struct pbr_layout_reader, decode_errors),
			  0x48);
	/* 0x50..0x6F: the name of 1.3 (test_durable_source_layout) */
	ck_assert_uint_eq(offsetof(struct pbr_layout_reader, reserved), 0x70);
	ck_assert_uint_eq(sizeof(((struct pbr_layout_reader *)0)->reserved),
			  16);

	/* metrics block */
	ck_assert_uint_eq(PBR_METRICS_SIZE, 256);
	ck_assert_uint_eq(sizeof(struct pbr_layout_metrics), PBR_METRICS_SIZE);
	ck_assert_uint_eq(offsetof(struct pbr_layout_metrics, joined_ns), 0x00);
	ck_assert_uint_eq(offsetof(struct pbr_layout_metrics, latency_sum_ns),
			  0x08);
	ck_assert_uint_eq(offsetof(struct pbr_layout_metrics, latency), 0x10);
	ck_assert_uint_eq(PBR_LATENCY_BUCKETS, 23);
	ck_assert_uint_eq(sizeof(((struct pbr_layout_metrics *)0)->latency),
			  23 * 8);
	ck_assert_uint_eq(offsetof(struct pbr_layout_metrics, reserved), 0xC8);
	ck_assert_uint_eq(sizeof(((struct pbr_layout_metrics *)0)->reserved),
			  56);
	ck_assert_uint_eq(0x10 + 23 * 8, 0xC8);

	/* 22 bounds, 1-2-5 from 100 ns to 1 s; each sample capped at 2^40 */
	ck_assert_uint_eq(sizeof(bounds) / sizeof(bounds[0]), 22);
	for (i = 0; i < 22; i++)
		ck_assert_uint_eq(bounds[i], doc[i]);
	ck_assert_uint_eq(PBR_LATENCY_CAP_NS, 1ull << 40);

	/* The API's copy of the histogram has room for every bucket. */
	ck_assert_uint_eq(sizeof(((struct pbr_participant *)0)->latency),
			  PBR_LATENCY_BUCKETS * sizeof(uint64_t));
	/* The reader option is not an entry flag (it is not stored). */
	ck_assert_uint_eq(
		PBR_READER_LATENCY & (PBR_READER_GATING | PBR_READER_LOSSY), 0);
}
END_TEST

static const uint64_t enc_seqs[] = {
	0,
	1,
	2,
	7,
	(1ull << 62) - 1,
	1ull << 62,
	(1ull << 62) + 1,
	1ull << 63,
	UINT64_MAX - 1000,
	UINT64_MAX - 1,
	UINT64_MAX,
};

START_TEST(test_commit_encoding)
{
	const uint64_t mask62 = (1ull << 62) - 1;
	uint64_t s = enc_seqs[_i];
	uint64_t done = PBR_COMMIT_DONE(s), busy = PBR_COMMIT_BUSY(s);
	uint64_t gone = PBR_COMMIT_ABANDONED(s), pend = PBR_PENDING_SEQ(s);

	ck_assert_uint_eq(PBR_COMMIT_STATE(done), 1);
	ck_assert_uint_eq(PBR_COMMIT_STATE(gone), 2);
	ck_assert_uint_eq(PBR_COMMIT_STATE(busy), 3);
	ck_assert_uint_eq(PBR_COMMIT_STATE(PBR_COMMIT_EMPTY), 0);
	ck_assert_uint_eq(pend & 3, 2);
	ck_assert_uint_ne(done, busy);
	ck_assert_uint_ne(done, gone);
	ck_assert_uint_ne(gone, busy);
	ck_assert_uint_eq(gone >> 2, s & mask62);
	ck_assert_uint_ne(done, PBR_COMMIT_EMPTY);
	ck_assert_uint_ne(busy, PBR_COMMIT_EMPTY);
	ck_assert_uint_ne(pend, PBR_PENDING_IDLE);
	ck_assert_uint_ne(pend, PBR_PENDING_CLAIMING);
	/* The sequence survives modulo 2^62 ... */
	ck_assert_uint_eq(done >> 2, s & mask62);
	ck_assert_uint_eq(busy >> 2, s & mask62);
	ck_assert_uint_eq(pend >> 2, s & mask62);
	ck_assert_uint_eq(PBR_COMMIT_DONE(s + (1ull << 62)), done);
	/* ... so neighbours differ, including across the 2^64 wrap. */
	ck_assert_uint_ne(PBR_COMMIT_DONE(s + 1), done);
	ck_assert_uint_ne(PBR_COMMIT_DONE(s - 1), done);
	ck_assert_uint_ne(PBR_COMMIT_BUSY(s + 1), busy);
	ck_assert_uint_ne(PBR_COMMIT_DONE(s + 1), busy);
}
END_TEST

/* --- version, errors, names -------------------------------------------- */

START_TEST(test_version)
{
	char want[32];
	const char *v = pbr_version();

	ck_assert_ptr_nonnull(v);
	snprintf(want, sizeof(want), "%d.%d.%d", PBRING_VERSION_MAJOR,
		 PBRING_VERSION_MINOR, PBRING_VERSION_PATCH);
	ck_assert_str_eq(v, want);
}
END_TEST

static const int err_codes[] = {
	EPROTO,	 EPROTOTYPE,	  EUCLEAN, EOWNERDEAD, EMSGSIZE,
	EBADMSG, EPROTONOSUPPORT, ENOTSUP, ESTALE,
};
#define N_ERR (int)(sizeof(err_codes) / sizeof(err_codes[0]))

START_TEST(test_strerror_specific)
{
	const char *unknown = pbr_strerror(-123456);
	const char *s = pbr_strerror(-err_codes[_i]);
	int j;

	ck_assert_ptr_nonnull(unknown);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_gt(strlen(s), 3);
	/* Positive and negative codes mean the same thing. */
	ck_assert_ptr_nonnull(pbr_strerror(err_codes[_i]));
	ck_assert_str_eq(pbr_strerror(err_codes[_i]), s);
	ck_assert_str_ne(s, unknown);
	for (j = 0; j < N_ERR; j++) {
		if (j != _i)
			ck_assert_str_ne(s, pbr_strerror(-err_codes[j]));
	}
}
END_TEST

START_TEST(test_strerror_never_null)
{
	const int odd[] = {
		0, 1, -1, 4095, -4095, 123456, INT_MAX, INT_MIN, INT_MIN + 1,
	};
	unsigned i;

	for (i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
		ck_assert_ptr_nonnull(pbr_strerror(odd[i]));
}
END_TEST

START_TEST(test_name_valid)
{
	char longest[PBR_NAME_MAX + 1];
	const char *ok[] = {
		"demo.ring-1_x", "a", "Z9", "x.", "-a", "_", "a..b", longest,
	};
	unsigned i;

	memset(longest, 'n', PBR_NAME_MAX);
	longest[PBR_NAME_MAX] = '\0';
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		ck_assert_msg(pbr_name_check(ok[i]) == 0, "'%s' refused",
			      ok[i]);
}
END_TEST

START_TEST(test_name_invalid)
{
	char too_long[PBR_NAME_MAX + 2];
	const char *bad[] = {
		"",	"a/b",	"/a",	       ".x",  ".",   "..",     "a b",
		"a\tb", "a\nb", "caf\xc3\xa9", "a*b", "a:b", too_long,
	};
	unsigned i;

	memset(too_long, 'n', PBR_NAME_MAX + 1);
	too_long[PBR_NAME_MAX + 1] = '\0';
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(pbr_name_check(bad[i]) == -EINVAL,
			      "'%s' not refused", bad[i]);
}
END_TEST

/* --- a real segment, read raw ------------------------------------------ */

#define SCHEMA_LEN 100

static void fill_schema(uint8_t *s)
{
	int i;

	for (i = 0; i < SCHEMA_LEN; i++)
		s[i] = (uint8_t)(i * 7 + 3);
}

static struct pbr_ring *create_known(const char *name, uint8_t *schema)
{
	struct pbr_create_opts o = {
		.slot_count = 16,
		.slot_size = 256,
		.max_producers = 3,
		.max_readers = 5,
		.seq_base = 1000,
		.msg_type = "demo.v1.Msg",
		.schema = schema,
		.schema_len = SCHEMA_LEN,
		.schema_hash = 0, /* computed from the bytes */
	};
	struct pbr_ring *r = NULL;
	int rc;

	fill_schema(schema);
	rc = pbr_ring_create(name, &o, &r);
	ck_assert_msg(rc == 0, "create: %d %s", rc, pbr_strerror(rc));
	return r;
}

static int all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n--) {
		if (*b++)
			return 0;
	}
	return 1;
}

START_TEST(test_segment_superblock)
{
	const char *name = tu_name("sb");
	uint8_t schema[SCHEMA_LEN];
	uint64_t t0 = tu_realtime_ns();
	struct pbr_ring *r = create_known(name, schema);
	struct pbr_layout_super *sb;
	struct tu_raw raw;

	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	sb = raw.sb;
	ck_assert_uint_eq(sb->magic, PBR_MAGIC);
	ck_assert_uint_eq(sb->state, PBR_STATE_READY);
	ck_assert_uint_eq(sb->major, PBR_FORMAT_MAJOR);
	ck_assert_uint_eq(sb->minor, PBR_FORMAT_MINOR);
	ck_assert_uint_eq(sb->fingerprint, PBR_LAYOUT_FINGERPRINT);
	ck_assert_uint_eq(sb->ring_flags, 0);
	ck_assert_uint_eq(sb->minor, 3);
	/* durable readers only when asked for (PBR_CREATE_DURABLE_READERS) */
	ck_assert_uint_eq(sb->features_incompat, 0);
	/* A 1.2 creator sets READER_METRICS on every ring it makes. */
	ck_assert_uint_eq(sb->features_compat, PBR_FEATURE_READER_METRICS);
	ck_assert_uint_eq(sb->total_size, raw.size);
	ck_assert_uint_eq(sb->slot_count, 16);
	ck_assert_uint_eq(sb->slot_size, 256);
	ck_assert_uint_eq(sb->max_producers, 3);
	ck_assert_uint_eq(sb->max_readers, 5);
	ck_assert_uint_eq(sb->seq_base, 1000);
	ck_assert_uint_eq(sb->schema_hash, pbr_schema_hash(schema, SCHEMA_LEN));
	ck_assert_uint_eq(sb->schema_len, SCHEMA_LEN);
	ck_assert_uint_eq(sb->creator_uid, geteuid());
	ck_assert_uint_eq(sb->creator_pid, getpid());
	ck_assert_uint_ge(sb->created_ns, t0 - TU_SEC);
	ck_assert_uint_le(sb->created_ns, tu_realtime_ns() + TU_SEC);
	ck_assert_str_eq(sb->name, name);
	ck_assert_str_eq(sb->msg_type, "demo.v1.Msg");
	ck_assert(all_zero(&sb->reserved0, sizeof(sb->reserved0)));
	ck_assert(all_zero(sb->reserved1, sizeof(sb->reserved1)));
	ck_assert(all_zero(sb->reserved2, sizeof(sb->reserved2)));
	ck_assert(all_zero(sb->name + strlen(name),
			   sizeof(sb->name) - strlen(name)));
	tu_raw_unmap(&raw);
	pbr_ring_detach(r);
}
END_TEST

struct region {
	uint64_t off, size;
};

static int region_cmp(const void *a, const void *b)
{
	const struct region *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

START_TEST(test_segment_regions)
{
	const char *name = tu_name("rg");
	uint8_t schema[SCHEMA_LEN];
	struct pbr_ring *r = create_known(name, schema);
	struct pbr_layout_super *sb;
	struct region reg[5];
	struct tu_raw raw;
	int i;

	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	sb = raw.sb;
	/* FORMAT.md 2: five page-aligned regions in a fixed order. */
	ck_assert_uint_eq(sb->control_size, PBR_CTL_SIZE);
	/* 8 x 128 entries + 5 x 256 metrics blocks, rounded up */
	ck_assert_uint_eq(sb->participants_size, PBR_PAGE);
	ck_assert_uint_eq(sb->schema_size, PBR_PAGE);
	ck_assert_uint_eq(sb->slots_size, 16 * 256);
	ck_assert_uint_eq(sb->control_off % PBR_PAGE, 0);
	ck_assert_uint_eq(sb->participants_off % PBR_PAGE, 0);
	ck_assert_uint_eq(sb->schema_off % PBR_PAGE, 0);
	ck_assert_uint_eq(sb->slots_off % PBR_PAGE, 0);
	ck_assert_uint_lt(sb->control_off, sb->participants_off);
	ck_assert_uint_lt(sb->participants_off, sb->schema_off);
	ck_assert_uint_lt(sb->schema_off, sb->slots_off);
	ck_assert_mem_eq(raw.base + sb->schema_off, schema, SCHEMA_LEN);
	reg[0] = (struct region){0, PBR_PAGE};
	reg[1] = (struct region){sb->control_off, sb->control_size};
	reg[2] = (struct region){sb->participants_off, sb->participants_size};
	reg[3] = (struct region){sb->schema_off, sb->schema_size};
	reg[4] = (struct region){sb->slots_off, sb->slots_size};
	qsort(reg, 5, sizeof(reg[0]), region_cmp);
	ck_assert_uint_eq(reg[0].off, 0);
	for (i = 0; i < 4; i++)
		ck_assert_uint_le(reg[i].off + reg[i].size, reg[i + 1].off);
	ck_assert_uint_le(reg[4].off + reg[4].size, sb->total_size);
	tu_raw_unmap(&raw);
	pbr_ring_detach(r);
}
END_TEST

static void fill_meta(struct pbr_slot *s, uint32_t len)
{
	uint32_t i;

	for (i = 0; i < len; i++)
		((uint8_t *)s->data)[i] = (uint8_t)(0xA0 + i);
	for (i = 0; i < 16; i++)
		s->trace_id[i] = (uint8_t)(i + 1);
	for (i = 0; i < 8; i++)
		s->span_id[i] = (uint8_t)(0xF0 + i);
	s->flags = PBR_SLOT_F_CRC | PBR_SLOT_F_TRACE;
	s->trace_flags = 0x01;
	s->crc32c = tu_crc32c(s->data, len);
	s->timestamp_ns = 0x0102030405060708ull;
}

START_TEST(test_segment_slot_header)
{
	const char *name = tu_name("sl");
	struct pbr_ring *r = tu_create(name, 16, 256, 0, 1000);
	struct pbr_producer *p = tu_producer(r, PBR_WAIT_BLOCK);
	struct pbr_layout_slot *h;
	struct pbr_slot s;
	struct tu_raw raw;
	uint8_t payload[40];

	ck_assert_int_eq(pbr_producer_reserve(p, 0, &s), 0);
	ck_assert_uint_eq(s.seq, 1000);
	fill_meta(&s, sizeof(payload));
	memcpy(payload, s.data, sizeof(payload));
	ck_assert_int_eq(pbr_producer_commit(p, &s, sizeof(payload)), 0);

	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	h = tu_raw_slot(&raw, 1000);
	ck_assert_uint_eq(h->commit, PBR_COMMIT_DONE(1000));
	ck_assert_uint_eq(h->length, sizeof(payload));
	ck_assert_uint_eq(h->crc32c, tu_crc32c(payload, sizeof(payload)));
	ck_assert_uint_eq(h->producer, pbr_producer_id(p));
	ck_assert_uint_eq(h->flags, PBR_SLOT_F_CRC | PBR_SLOT_F_TRACE);
	ck_assert_uint_eq(h->reserved0, 0);
	ck_assert_uint_eq(h->timestamp_ns, 0x0102030405060708ull);
	ck_assert_uint_eq(h->trace_id[15], 16);
	ck_assert_uint_eq(h->span_id[7], 0xF7);
	ck_assert_uint_eq(h->trace_flags, 0x01);
	ck_assert(all_zero(h->reserved1, sizeof(h->reserved1)));
	ck_assert_mem_eq((uint8_t *)h + PBR_SLOT_HDR_SIZE, payload,
			 sizeof(payload));
	tu_raw_unmap(&raw);
	pbr_producer_close(p);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_segment_skip_record)
{
	const char *name = tu_name("sk");
	struct pbr_ring *r = tu_create(name, 16, 256, 0, 1000);
	struct pbr_producer *p = tu_producer(r, PBR_WAIT_BLOCK);
	struct pbr_layout_slot *h;
	struct pbr_slot s;
	struct tu_raw raw;

	ck_assert_int_eq(pbr_producer_reserve(p, 0, &s), 0);
	ck_assert_int_eq(pbr_producer_abort(p, &s), 0);
	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	h = tu_raw_slot(&raw, 1000);
	ck_assert_uint_eq(h->commit, PBR_COMMIT_DONE(1000));
	/* An abort is a commit of length 0 with flag SKIP (FORMAT.md 7.4). */
	ck_assert_uint_eq(h->flags, PBR_SLOT_F_SKIP);
	ck_assert_uint_eq(h->length, 0);
	ck_assert_uint_eq(h->producer, pbr_producer_id(p));
	tu_raw_unmap(&raw);
	pbr_producer_close(p);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_segment_participants)
{
	const char *name = tu_name("pt");
	struct pbr_ring *r = tu_create(name, 16, 256, 0, 1000);
	struct pbr_reader *g = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_reader *l =
		tu_reader(r, PBR_READER_LOSSY, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, PBR_WAIT_BLOCK);
	struct pbr_layout_producer *pe;
	struct pbr_layout_reader *ge, *le;
	struct pbr_slot s;
	struct tu_raw raw;

	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	pe = tu_raw_producer(&raw, pbr_producer_id(p));
	ge = tu_raw_reader(&raw, pbr_reader_index(g));
	le = tu_raw_reader(&raw, pbr_reader_index(l));
	ck_assert_uint_eq(pe->state, PBR_ENTRY_ACTIVE);
	ck_assert_uint_eq(pe->pid, getpid());
	ck_assert_uint_eq(pe->pending, PBR_PENDING_IDLE);
	ck_assert_uint_eq(ge->state, PBR_ENTRY_ACTIVE);
	ck_assert_uint_eq(ge->flags, PBR_READER_GATING);
	ck_assert_uint_eq(ge->pid, getpid());
	ck_assert_uint_eq(ge->cursor, 1000);
	ck_assert_uint_eq(le->flags, PBR_READER_LOSSY);

	/* A claimed, uncommitted sequence shows in the pending word. */
	ck_assert_int_eq(pbr_producer_reserve(p, 0, &s), 0);
	ck_assert_uint_eq(pe->pending, PBR_PENDING_SEQ(1000));
	ck_assert_int_eq(pbr_producer_commit(p, &s, 8), 0);
	ck_assert_uint_eq(pe->pending, PBR_PENDING_IDLE);
	ck_assert_uint_eq(pe->committed, 1);
	ck_assert_uint_eq(
		*(uint64_t *)(raw.base + raw.sb->control_off + PBR_CTL_CLAIM),
		1001);

	{
		struct pbr_view v;

		ck_assert_int_eq(pbr_reader_peek(g, 0, &v), 0);
		ck_assert_int_eq(pbr_reader_release(g, &v), 0);
	}
	ck_assert_uint_eq(ge->cursor, 1001);
	ck_assert_uint_eq(ge->delivered, 1);

	pbr_reader_close(l);
	ck_assert_uint_eq(le->state, PBR_ENTRY_FREE);
	pbr_producer_close(p);
	ck_assert_uint_eq(pe->state, PBR_ENTRY_FREE);
	pbr_reader_close(g);
	tu_raw_unmap(&raw);
	pbr_ring_detach(r);
}
END_TEST

static int all_byte(const void *p, size_t n, uint8_t v)
{
	const uint8_t *b = p;

	while (n--) {
		if (*b++ != v)
			return 0;
	}
	return 1;
}

/* The participant table of a 1.2 ring (FORMAT.md §2, §5.5): the entries,
 * then one 256-byte metrics block per reader entry, zero at creation; a
 * reader that joins zeroes and stamps its own block (with its entry's
 * joined_ns, whatever its options) and writes nowhere else. */
START_TEST(test_segment_metrics_blocks)
{
	const char *name = tu_name("mb");
	/* 23 x 128 = 2944 bytes of entries fit one page; with 19 x 256
	 * bytes of blocks (7808) the table takes two. */
	struct pbr_create_opts o = {.slot_count = 16,
				    .slot_size = 256,
				    .max_producers = 4,
				    .max_readers = 19};
	const uint64_t end = 23 * 128 + 19 * 256;
	struct pbr_layout_reader *e;
	struct pbr_layout_metrics *m;
	struct pbr_reader *a, *b;
	struct pbr_ring *r = NULL;
	struct tu_raw raw;
	uint64_t t0;
	uint8_t *tab;
	uint32_t j;

	ck_assert_int_eq(pbr_ring_create(name, &o, &r), 0);
	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	tab = raw.base + raw.sb->participants_off;
	ck_assert_uint_eq(raw.sb->participants_size, 2 * PBR_PAGE);
	ck_assert(all_zero(tab, raw.sb->participants_size));
	ck_assert_ptr_eq((uint8_t *)tu_raw_metrics(&raw, 0), tab + 23 * 128);
	ck_assert_ptr_eq((uint8_t *)tu_raw_metrics(&raw, 18) + 256, tab + end);

	/* Mark every block, and the table's padding after the last. */
	for (j = 0; j < 19; j++)
		memset(tu_raw_metrics(&raw, j), (int)(0xA0 + j),
		       PBR_METRICS_SIZE);
	memset(tab + end, 0x5A, raw.sb->participants_size - end);
	t0 = tu_realtime_ns();
	a = tu_reader(r, PBR_READER_LATENCY, PBR_START_OLDEST, 0);
	b = tu_reader(r, PBR_READER_LOSSY, PBR_START_OLDEST, 0);
	ck_assert_uint_ne(pbr_reader_index(a), pbr_reader_index(b));
	for (j = 0; j < 19; j++) {
		m = tu_raw_metrics(&raw, j);
		e = tu_raw_reader(&raw, j);
		if (j != pbr_reader_index(a) && j != pbr_reader_index(b)) {
			ck_assert_msg(all_byte(m, PBR_METRICS_SIZE,
					       (uint8_t)(0xA0 + j)),
				      "block %u of a free entry written", j);
			continue;
		}
		ck_assert_uint_eq(e->state, PBR_ENTRY_ACTIVE);
		ck_assert_uint_ge(e->joined_ns, t0 - TU_SEC);
		ck_assert_uint_le(e->joined_ns, tu_realtime_ns() + TU_SEC);
		/* stamped only by a reader that records latency */
		ck_assert_uint_eq(m->joined_ns,
				  j == pbr_reader_index(a) ? e->joined_ns : 0);
		ck_assert_msg(all_zero((uint8_t *)m + 8, PBR_METRICS_SIZE - 8),
			      "block %u not zeroed at join", j);
		/* 1.2 statistics start at zero */
		ck_assert_uint_eq(e->bad + e->crc_errors + e->decode_errors, 0);
	}
	ck_assert(all_byte(tab + end, raw.sb->participants_size - end, 0x5A));
	/* PBR_READER_LATENCY is an option of the handle, not a mode. */
	ck_assert_uint_eq(tu_raw_reader(&raw, pbr_reader_index(a))->flags,
			  PBR_READER_GATING);
	ck_assert_uint_eq(tu_raw_reader(&raw, pbr_reader_index(b))->flags,
			  PBR_READER_LOSSY);
	pbr_reader_close(a);
	pbr_reader_close(b);
	tu_raw_unmap(&raw);
	pbr_ring_detach(r);
}
END_TEST

/* The statistics a reader publishes land where layout.h puts them (the
 * raw entry), the same values pbr_reader_stats and pbr_ring_participants
 * report; the histogram where FORMAT.md §5.5 puts it. */
START_TEST(test_segment_reader_metrics_raw)
{
	const char *name = tu_name("mr");
	struct pbr_ring *r = tu_create(name, 16, 256, 0, 0);
	struct pbr_reader *rd = tu_reader(r, PBR_READER_LATENCY, 0, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_layout_reader *e;
	struct pbr_layout_metrics *m;
	struct pbr_participant pt[2];
	struct pbr_reader_stats st;
	struct pbr_view v;
	struct pbr_slot s;
	struct tu_raw raw;
	uint64_t t0, t1;

	/* a message 30 ms old, another without a timestamp, not observed */
	ck_assert_int_eq(pbr_producer_reserve(p, 0, &s), 0);
	t0 = pbr_clock_ns();
	s.timestamp_ns = t0 - 30 * TU_MS;
	ck_assert_int_eq(pbr_producer_commit(p, &s, 4), 0);
	ck_assert_int_eq(pbr_producer_send(p, "abcd", 4, 0, 0), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	t1 = pbr_clock_ns();
	ck_assert_int_eq(pbr_reader_reject(rd, &v), 0);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);

	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	e = tu_raw_reader(&raw, pbr_reader_index(rd));
	m = tu_raw_metrics(&raw, pbr_reader_index(rd));
	pbr_reader_stats(rd, &st);
	ck_assert_uint_eq(e->delivered, 2);
	ck_assert_uint_eq(e->decode_errors, 1);
	ck_assert_uint_eq(st.decode_errors, 1);
	ck_assert_uint_eq(e->crc_errors, 0);
	ck_assert_uint_eq(e->bad, 0);
	ck_assert_uint_eq(m->joined_ns, e->joined_ns);
	ck_assert_uint_eq(tu_latency_from(m->latency, 0), 1);
	/* in the bucket of 30 ms, or a later one on a slow host */
	ck_assert_uint_eq(
		tu_latency_from(m->latency, tu_latency_bucket(30 * TU_MS)), 1);
	ck_assert_uint_eq(
		tu_latency_from(m->latency,
				tu_latency_bucket(30 * TU_MS + t1 - t0) + 1),
		0);
	ck_assert_uint_ge(m->latency_sum_ns, 30 * TU_MS);
	ck_assert_uint_le(m->latency_sum_ns, 30 * TU_MS + (t1 - t0));
	ck_assert(all_zero(m->reserved, sizeof(m->reserved)));
	/* pbr_ring_participants reads the same words */
	ck_assert_int_eq(pbr_ring_participants(r, pt, 2), 2);
	ck_assert(pt[1].is_reader);
	ck_assert_uint_eq(pt[1].decode_errors, e->decode_errors);
	ck_assert_uint_eq(pt[1].has_latency, 1);
	ck_assert_uint_eq(pt[1].latency_sum_ns, m->latency_sum_ns);
	ck_assert_mem_eq(pt[1].latency, m->latency, sizeof(m->latency));
	tu_raw_unmap(&raw);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

static Suite *layout_suite(void)
{
	Suite *s = suite_create("layout");
	TCase *tc = tu_tcase("constants", 10);

	tcase_add_test(tc, test_super_offsets);
	tcase_add_test(tc, test_entry_and_slot_offsets);
	tcase_add_test(tc, test_control_block);
	tcase_add_test(tc, test_magic_and_fingerprint);
	tcase_add_test(tc, test_durable_source_layout);
	tcase_add_test(tc, test_reader_metrics_layout);
	tcase_add_loop_test(tc, test_commit_encoding, 0,
			    sizeof(enc_seqs) / sizeof(enc_seqs[0]));
	suite_add_tcase(s, tc);

	tc = tu_tcase("api", 10);
	tcase_add_test(tc, test_version);
	tcase_add_loop_test(tc, test_strerror_specific, 0, N_ERR);
	tcase_add_test(tc, test_strerror_never_null);
	tcase_add_test(tc, test_name_valid);
	tcase_add_test(tc, test_name_invalid);
	suite_add_tcase(s, tc);

	tc = tu_tcase("segment", 10);
	tcase_add_test(tc, test_segment_superblock);
	tcase_add_test(tc, test_segment_regions);
	tcase_add_test(tc, test_segment_slot_header);
	tcase_add_test(tc, test_segment_skip_record);
	tcase_add_test(tc, test_segment_participants);
	tcase_add_test(tc, test_segment_metrics_blocks);
	tcase_add_test(tc, test_segment_reader_metrics_raw);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(layout_suite());
}
