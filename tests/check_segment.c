// SPDX-License-Identifier: MIT
/*
 * check_segment: creating, attaching, validating and removing rings, and
 * the specific error attach gives for each kind of damaged segment.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* OFD locks, prctl, mkfifo: also set by the build */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "testutil.h"

static mode_t shm_mode(const char *name)
{
	char path[128];
	struct stat st;

	tu_path(name, path, sizeof(path));
	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static int shm_exists(const char *name)
{
	char path[128];
	struct stat st;

	tu_path(name, path, sizeof(path));
	return stat(path, &st) == 0;
}

static int attach_rc(const char *name, int64_t timeout_ns, uint32_t flags)
{
	struct pbr_attach_opts ao = {.timeout_ns = timeout_ns, .flags = flags};
	struct pbr_ring *r = NULL;
	int rc = pbr_ring_attach(name, &ao, &r);

	/* On failure nothing is handed out. */
	if (rc == 0)
		pbr_ring_detach(r);
	else
		ck_assert_ptr_null(r);
	return rc;
}

/* --- life cycle -------------------------------------------------------- */

START_TEST(test_create_attach_unlink)
{
	const char *name = tu_name("life");
	struct pbr_ring *r = tu_create(name, 8, 128, 0, 0);
	struct pbr_ring *a = tu_attach(name);
	struct pbr_ring_info ia, ib;

	pbr_ring_info(r, &ia);
	pbr_ring_info(a, &ib);
	ck_assert_str_eq(ia.name, name);
	ck_assert_str_eq(ib.name, name);
	ck_assert_uint_eq(ib.slot_count, 8);
	ck_assert_uint_eq(ib.slot_size, 128);
	ck_assert_uint_eq(ib.total_size, ia.total_size);
	pbr_ring_detach(a);
	pbr_ring_detach(r);
	/* Detaching every mapping does not remove the ring. */
	ck_assert(shm_exists(name));
	a = tu_attach(name);
	pbr_ring_detach(a);
	ck_assert_int_eq(pbr_ring_unlink(name), 0);
	ck_assert(!shm_exists(name));
	ck_assert_int_eq(attach_rc(name, 0, 0), -ENOENT);
}
END_TEST

START_TEST(test_create_twice)
{
	const char *name = tu_name("twice");
	struct pbr_ring *r = tu_create(name, 8, 128, 0, 0);
	struct pbr_ring *r2 = NULL;
	struct pbr_producer *p;
	struct pbr_reader *rd;

	ck_assert_int_eq(pbr_ring_create(name, NULL, &r2), -EEXIST);
	ck_assert_ptr_null(r2);
	/* The existing ring is untouched and still works. */
	rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	p = tu_producer(r, 0);
	tu_send_tag(p, 42);
	tu_recv_tag(rd, 0, 42);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_attach_missing)
{
	const char *name = tu_name("missing");

	ck_assert_int_eq(attach_rc(name, 0, 0), -ENOENT);
	ck_assert_int_eq(attach_rc(name, 50 * TU_MS, 0), -ENOENT);
}
END_TEST

START_TEST(test_unlink_twice)
{
	const char *name = tu_name("unl");
	struct pbr_ring *r = tu_create(name, 8, 128, 0, 0);

	ck_assert_int_eq(pbr_ring_unlink(name), 0);
	ck_assert_int_eq(pbr_ring_unlink(name), -ENOENT);
	/* A mapping made before the unlink keeps working. */
	{
		struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
		struct pbr_producer *p = tu_producer(r, 0);

		tu_send_tag(p, 7);
		tu_recv_tag(rd, 0, 7);
		pbr_producer_close(p);
		pbr_reader_close(rd);
	}
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_bad_names)
{
	const char *bad[] = {"", ".hidden", "a/b", "a b"};
	struct pbr_ring *r = NULL;
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(pbr_ring_create(bad[i], NULL, &r), -EINVAL);
		ck_assert_ptr_null(r);
		ck_assert_int_eq(attach_rc(bad[i], 0, 0), -EINVAL);
		ck_assert_int_eq(pbr_ring_unlink(bad[i]), -EINVAL);
	}
}
END_TEST

/* --- permissions ------------------------------------------------------- */

START_TEST(test_default_mode)
{
	const char *n1 = tu_name("m1"), *n2 = tu_name("m2");
	struct pbr_create_opts zero;
	struct pbr_ring *r1 = NULL, *r2 = NULL;
	mode_t old;
	int rc1, rc2;

	memset(&zero, 0, sizeof(zero));
	zero.slot_count = 8;
	zero.slot_size = 128;
	/* A permissive umask must not widen the default. */
	old = umask(0);
	rc1 = pbr_ring_create(n1, &zero, &r1);
	rc2 = pbr_ring_create(n2, NULL, &r2);
	umask(old);
	ck_assert_int_eq(rc1, 0);
	ck_assert_int_eq(rc2, 0);
	ck_assert_uint_eq(shm_mode(n1), 0600);
	ck_assert_uint_eq(shm_mode(n2), 0600);
	pbr_ring_detach(r1);
	pbr_ring_detach(r2);
}
END_TEST

START_TEST(test_mode_honoured)
{
	const char *name = tu_name("m640");
	struct pbr_create_opts o = {
		.slot_count = 8, .slot_size = 128, .mode = 0640};
	struct pbr_ring *r = NULL;
	mode_t old = umask(077); /* stricter than the mode asked for */
	int rc = pbr_ring_create(name, &o, &r);

	umask(old);
	ck_assert_int_eq(rc, 0);
	/* The requested bits exactly, whatever the umask. */
	ck_assert_uint_eq(shm_mode(name), 0640);
	pbr_ring_detach(r);
	ck_assert_int_eq(attach_rc(name, 0, 0), 0);
}
END_TEST

static int raw_fd_op(const char *name, int op, unsigned arg)
{
	struct tu_raw raw;
	int rc;

	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	rc = op ? fchown(raw.fd, arg, -1) : fchmod(raw.fd, arg);
	tu_raw_unmap(&raw);
	return rc;
}

START_TEST(test_world_writable)
{
	const char *name = tu_name("ww");
	struct pbr_ring *r = tu_create(name, 8, 128, 0, 0);

	pbr_ring_detach(r);
	ck_assert_int_eq(raw_fd_op(name, 0, 0666), 0);
	ck_assert_int_eq(attach_rc(name, 50 * TU_MS, 0), -EPERM);
	/* Writable by others, even if not readable, is refused too. */
	ck_assert_int_eq(raw_fd_op(name, 0, 0602), 0);
	ck_assert_int_eq(attach_rc(name, 50 * TU_MS, 0), -EPERM);
	ck_assert_int_eq(raw_fd_op(name, 0, 0600), 0);
	ck_assert_int_eq(attach_rc(name, 50 * TU_MS, 0), 0);
}
END_TEST

START_TEST(test_other_owner)
{
	const char *name = tu_name("own");
	struct pbr_ring *r = tu_create(name, 8, 128, 0, 0);

	pbr_ring_detach(r);
	/* Only root can give a file away; elsewhere this is not testable. */
	if (geteuid() != 0)
		return;
	ck_assert_int_eq(raw_fd_op(name, 1, 54321), 0);
	ck_assert_int_eq(attach_rc(name, 50 * TU_MS, 0), -EPERM);
	ck_assert_int_eq(attach_rc(name, 50 * TU_MS, PBR_ATTACH_ANY_OWNER), 0);
}
END_TEST

/* --- geometry and options ---------------------------------------------- */

struct bad_geom {
	const char *what;
	struct pbr_create_opts o;
};

/* Filled by test_bad_geometry: one byte longer than allowed. */
static char long_type[PBR_MSG_TYPE_MAX + 2];

static const struct bad_geom bad_geoms[] = {
	{"slot_count not a power of 2", {.slot_count = 1000}},
	{"slot_count 1", {.slot_count = 1}},
	{"slot_count 3", {.slot_count = 3}},
	{"slot_count 2^25", {.slot_count = 1u << 25, .slot_size = 128}},
	{"slot_size 200", {.slot_count = 8, .slot_size = 200}},
	{"slot_size 64", {.slot_count = 8, .slot_size = 64}},
	{"slot_size 100", {.slot_count = 8, .slot_size = 100}},
	{"slot_size 2^30+128",
	 {.slot_count = 2, .slot_size = (1u << 30) + 128}},
	{"max_producers 1025", {.slot_count = 8, .max_producers = 1025}},
	{"max_readers 1025", {.slot_count = 8, .max_readers = 1025}},
	{"msg_type 192 bytes", {.slot_count = 8, .msg_type = long_type}},
};
#define N_BAD_GEOM (int)(sizeof(bad_geoms) / sizeof(bad_geoms[0]))

START_TEST(test_bad_geometry)
{
	const struct bad_geom *g = &bad_geoms[_i];
	const char *name = tu_name("geom");
	struct pbr_ring *r = NULL;
	int rc;

	memset(long_type, 'x', PBR_MSG_TYPE_MAX + 1);
	long_type[0] = 'a';
	long_type[1] = '.';
	rc = pbr_ring_create(name, &g->o, &r);
	ck_assert_msg(rc == -EINVAL, "%s: got %d (%s)", g->what, rc,
		      pbr_strerror(rc));
	ck_assert_ptr_null(r);
	/* Refused before anything was created. */
	ck_assert_msg(!shm_exists(name), "%s left a file behind", g->what);
}
END_TEST

START_TEST(test_limits_accepted)
{
	const char *name = tu_name("lim");
	struct pbr_create_opts o = {
		.slot_count = PBR_SLOT_COUNT_MIN,
		.slot_size = PBR_SLOT_SIZE_MIN,
		.max_producers = 1,
		.max_readers = 1,
	};
	struct pbr_ring *r = NULL;
	struct pbr_ring_info info;

	ck_assert_int_eq(pbr_ring_create(name, &o, &r), 0);
	pbr_ring_info(r, &info);
	ck_assert_uint_eq(info.slot_count, 2);
	ck_assert_uint_eq(info.payload_cap, PBR_SLOT_SIZE_MIN - 64);
	ck_assert_uint_eq(info.max_producers, 1);
	ck_assert_uint_eq(info.max_readers, 1);
	pbr_ring_detach(r);
}
END_TEST

static void check_defaults(const struct pbr_ring_info *i)
{
	ck_assert_uint_eq(i->slot_count, 1024);
	ck_assert_uint_eq(i->slot_size, 1024);
	ck_assert_uint_eq(i->payload_cap, 1024 - PBR_SLOT_HDR_SIZE);
	ck_assert_uint_eq(i->max_producers, 8);
	ck_assert_uint_eq(i->max_readers, 8);
	ck_assert_uint_eq(i->seq_base, 0);
	ck_assert_uint_eq(i->ring_flags, 0);
	ck_assert_uint_eq(i->schema_len, 0);
	ck_assert_uint_eq(i->schema_hash, 0);
	ck_assert_str_eq(i->msg_type, "");
}

START_TEST(test_defaults)
{
	const char *n1 = tu_name("d1"), *n2 = tu_name("d2");
	struct pbr_create_opts zero;
	struct pbr_ring *r1 = NULL, *r2 = NULL;
	struct pbr_ring_info i1, i2;

	memset(&zero, 0, sizeof(zero));
	ck_assert_int_eq(pbr_ring_create(n1, NULL, &r1), 0);
	ck_assert_int_eq(pbr_ring_create(n2, &zero, &r2), 0);
	pbr_ring_info(r1, &i1);
	pbr_ring_info(r2, &i2);
	check_defaults(&i1);
	check_defaults(&i2);
	pbr_ring_detach(r1);
	pbr_ring_detach(r2);
}
END_TEST

START_TEST(test_partial_defaults)
{
	const char *name = tu_name("pd");
	struct pbr_create_opts o = {.slot_count = 8, .max_readers = 3};
	struct pbr_ring *r = NULL;
	struct pbr_ring_info i;

	/* Each zero field takes its own default. */
	ck_assert_int_eq(pbr_ring_create(name, &o, &r), 0);
	pbr_ring_info(r, &i);
	ck_assert_uint_eq(i.slot_count, 8);
	ck_assert_uint_eq(i.slot_size, 1024);
	ck_assert_uint_eq(i.max_producers, 8);
	ck_assert_uint_eq(i.max_readers, 3);
	ck_assert_uint_eq(shm_mode(name), 0600);
	pbr_ring_detach(r);
}
END_TEST

/* Schema bytes and hash agree (FORMAT.md §3.2): computed when not given,
 * refused when given and different. */
START_TEST(test_schema_hash_checked)
{
	const char *name = tu_name("sh");
	struct pbr_create_opts o = {.slot_count = 8,
				    .slot_size = 128,
				    .schema = "fds",
				    .schema_len = 3,
				    .schema_hash = 42};
	struct pbr_ring_info i;
	struct pbr_ring *r = NULL;

	ck_assert_int_eq(pbr_ring_create(name, &o, &r), -EINVAL);
	o.schema_hash = 0;
	ck_assert_int_eq(pbr_ring_create(name, &o, &r), 0);
	pbr_ring_info(r, &i);
	ck_assert_uint_eq(i.schema_hash, pbr_schema_hash("fds", 3));
	pbr_ring_detach(r);
	ck_assert_int_eq(pbr_ring_unlink(name), 0);
}
END_TEST

START_TEST(test_info_reflects_opts)
{
	const char *name = tu_name("info");
	uint8_t schema[300];
	struct pbr_create_opts o = {
		.slot_count = 32,
		.slot_size = 384,
		.max_producers = 0,
		.max_readers = 6,
		.flags = PBR_CREATE_SINGLE_PRODUCER,
		.seq_base = 0xfedcba9876543210ull,
		.msg_type = "pkg.sub.Event",
		.schema = schema,
		.schema_len = sizeof(schema),
		.schema_hash = 0, /* computed from the bytes */
	};
	uint64_t t0 = tu_realtime_ns();
	struct pbr_ring *r = NULL, *a;
	struct pbr_ring_info i, ai;
	char path[128];
	struct stat st;
	uint64_t hash;
	unsigned k;

	for (k = 0; k < sizeof(schema); k++)
		schema[k] = (uint8_t)(k ^ 0x5a);
	hash = pbr_schema_hash(schema, sizeof(schema));
	ck_assert_int_eq(pbr_ring_create(name, &o, &r), 0);
	/* The schema was copied into the ring, not referenced. */
	memset(schema, 0, sizeof(schema));
	a = tu_attach(name);
	pbr_ring_info(r, &i);
	pbr_ring_info(a, &ai);
	tu_path(name, path, sizeof(path));
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_str_eq(i.name, name);
	ck_assert_str_eq(i.msg_type, "pkg.sub.Event");
	ck_assert_uint_eq(i.format_major, PBR_FORMAT_MAJOR);
	ck_assert_uint_eq(i.format_minor, PBR_FORMAT_MINOR);
	ck_assert_uint_eq(i.ring_flags, PBR_RING_SINGLE_PRODUCER);
	ck_assert_uint_eq(i.slot_count, 32);
	ck_assert_uint_eq(i.slot_size, 384);
	ck_assert_uint_eq(i.payload_cap, 384 - 64);
	/* One producer entry on a single-producer ring (FORMAT.md 3). */
	ck_assert_uint_eq(i.max_producers, 1);
	ck_assert_uint_eq(i.max_readers, 6);
	ck_assert_uint_eq(i.total_size, (uint64_t)st.st_size);
	ck_assert_uint_eq(i.seq_base, 0xfedcba9876543210ull);
	ck_assert_uint_eq(i.schema_hash, hash);
	ck_assert_uint_ge(i.created_ns, t0 - TU_SEC);
	ck_assert_uint_le(i.created_ns, tu_realtime_ns() + TU_SEC);
	ck_assert_uint_eq(i.creator_uid, geteuid());
	ck_assert_uint_eq(i.creator_pid, getpid());
	ck_assert_uint_eq(i.schema_len, sizeof(schema));
	ck_assert_ptr_nonnull(i.schema);
	ck_assert_ptr_ne(i.schema, schema);
	for (k = 0; k < sizeof(schema); k++)
		ck_assert_uint_eq(((const uint8_t *)ai.schema)[k],
				  (uint8_t)(k ^ 0x5a));
	/* An attached mapping reports the same validated properties. */
	ck_assert_str_eq(ai.msg_type, i.msg_type);
	ck_assert_uint_eq(ai.ring_flags, i.ring_flags);
	ck_assert_uint_eq(ai.seq_base, i.seq_base);
	ck_assert_uint_eq(ai.created_ns, i.created_ns);
	ck_assert_uint_eq(ai.payload_cap, i.payload_cap);
	pbr_ring_detach(a);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_detach_closes_handles)
{
	const char *name = tu_name("dc");
	struct pbr_ring *r = tu_create(name, 8, 128, 0, 0);
	struct pbr_participant parts[4];
	struct pbr_producer *p;
	struct pbr_reader *rd;

	p = tu_producer(r, 0);
	rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	(void)p;
	(void)rd;
	/* Detach with both still open: they are closed, their entries freed. */
	pbr_ring_detach(r);
	r = tu_attach(name);
	ck_assert_int_eq(pbr_ring_participants(r, parts, 4), 0);
	pbr_ring_detach(r);
}
END_TEST

/* --- damaged segments -------------------------------------------------- */

typedef void (*corrupt_fn)(struct pbr_layout_super *sb);

static void c_magic(struct pbr_layout_super *sb)
{
	sb->magic ^= 1;
}
static void c_major2(struct pbr_layout_super *sb)
{
	sb->major = 2;
}
static void c_major0(struct pbr_layout_super *sb)
{
	sb->major = 0;
}
static void c_minor(struct pbr_layout_super *sb)
{
	sb->minor += 1;
}
static void c_fp(struct pbr_layout_super *sb)
{
	sb->fingerprint ^= 0x80;
}
static void c_incompat1(struct pbr_layout_super *sb)
{
	sb->features_incompat |= 2; /* bit 0 is DURABLE_READERS (1.3) */
}
static void c_incompat63(struct pbr_layout_super *sb)
{
	sb->features_incompat |= 1ull << 63;
}
static void c_compat0(struct pbr_layout_super *sb)
{
	sb->features_compat |= 1;
}
static void c_compat0_clear(struct pbr_layout_super *sb)
{
	sb->features_compat &= ~PBR_FEATURE_READER_METRICS; /* a 1.1 ring */
	sb->minor = 1;
}
static void c_compat63(struct pbr_layout_super *sb)
{
	sb->features_compat |= 1ull << 63;
}
static void c_total_up(struct pbr_layout_super *sb)
{
	sb->total_size += PBR_PAGE;
}
static void c_total_down(struct pbr_layout_super *sb)
{
	sb->total_size -= PBR_PAGE;
}
static void c_count15(struct pbr_layout_super *sb)
{
	sb->slot_count = 15;
}
static void c_count0(struct pbr_layout_super *sb)
{
	sb->slot_count = 0;
}
static void c_size200(struct pbr_layout_super *sb)
{
	sb->slot_size = 200;
}
static void c_size64(struct pbr_layout_super *sb)
{
	sb->slot_size = 64;
}
static void c_slots_out(struct pbr_layout_super *sb)
{
	sb->slots_off = sb->total_size + PBR_PAGE;
}
static void c_slots_tail(struct pbr_layout_super *sb)
{
	/* Page-aligned start inside the object, end two pages past it. */
	sb->slots_off = sb->total_size - 2 * PBR_PAGE;
}
static void c_slots_size(struct pbr_layout_super *sb)
{
	sb->slots_size *= 2;
}
static void c_part_overlap(struct pbr_layout_super *sb)
{
	sb->participants_off = sb->control_off;
}
static void c_ctl_super(struct pbr_layout_super *sb)
{
	sb->control_off = 0;
}
static void c_prod0(struct pbr_layout_super *sb)
{
	sb->max_producers = 0;
}
static void c_readers_big(struct pbr_layout_super *sb)
{
	sb->max_readers = 2000;
}
static void c_schema_len(struct pbr_layout_super *sb)
{
	sb->schema_len = (uint32_t)sb->schema_size + 1;
}
static void c_schema_hash(struct pbr_layout_super *sb)
{
	sb->schema_hash ^= 1; /* no longer the hash of the stored bytes */
}
static void c_schema_len_short(struct pbr_layout_super *sb)
{
	sb->schema_len -= 1;
}
static void c_name_nul(struct pbr_layout_super *sb)
{
	memset(sb->name, 'n', sizeof(sb->name));
}
static void c_type_nul(struct pbr_layout_super *sb)
{
	memset(sb->msg_type, 't', sizeof(sb->msg_type));
}
static void c_sp_many(struct pbr_layout_super *sb)
{
	sb->ring_flags |= PBR_RING_SINGLE_PRODUCER; /* with 8 entries */
}
static void c_schema_odd(struct pbr_layout_super *sb)
{
	sb->schema_off += 8;
}
static void c_state0(struct pbr_layout_super *sb)
{
	sb->state = PBR_STATE_INIT;
}

struct corruption {
	const char *what;
	corrupt_fn fn;
	int expect;
};

static const struct corruption corruptions[] = {
	{"magic", c_magic, -EPROTO},
	{"major 2", c_major2, -EPROTONOSUPPORT},
	{"major 0", c_major0, -EPROTONOSUPPORT},
	{"minor + 1", c_minor, 0},
	{"fingerprint", c_fp, -EPROTOTYPE},
	{"incompat bit 1", c_incompat1, -ENOTSUP},
	{"incompat bit 63", c_incompat63, -ENOTSUP},
	{"compat bit 0", c_compat0, 0},
	{"compat bit 0 clear, minor 1", c_compat0_clear, 0},
	{"compat bit 63", c_compat63, 0},
	{"total_size + page", c_total_up, -EUCLEAN},
	{"total_size - page", c_total_down, -EUCLEAN},
	{"slot_count 15", c_count15, -EUCLEAN},
	{"slot_count 0", c_count0, -EUCLEAN},
	{"slot_size 200", c_size200, -EUCLEAN},
	{"slot_size 64", c_size64, -EUCLEAN},
	{"slots_off beyond size", c_slots_out, -EUCLEAN},
	{"slots region past end", c_slots_tail, -EUCLEAN},
	{"slots_size doubled", c_slots_size, -EUCLEAN},
	{"participants over control", c_part_overlap, -EUCLEAN},
	{"control over superblock", c_ctl_super, -EUCLEAN},
	{"max_producers 0", c_prod0, -EUCLEAN},
	{"max_readers 2000", c_readers_big, -EUCLEAN},
	{"schema_len > schema_size", c_schema_len, -EUCLEAN},
	{"schema_hash of other bytes", c_schema_hash, -EUCLEAN},
	{"schema_len cuts the schema", c_schema_len_short, -EUCLEAN},
	{"name without NUL", c_name_nul, -EUCLEAN},
	{"msg_type without NUL", c_type_nul, -EUCLEAN},
	{"single producer, 8 entries", c_sp_many, -EUCLEAN},
	{"schema_off not page-aligned", c_schema_odd, -EUCLEAN},
	/* no creator holds the creation lock: damaged, said at once */
	{"state never ready", c_state0, -EUCLEAN},
};
#define N_CORRUPT (int)(sizeof(corruptions) / sizeof(corruptions[0]))

static void make_ring_with_schema(const char *name)
{
	/* 64 * 256: the slot region spans four pages. */
	struct pbr_create_opts o = {.slot_count = 64,
				    .slot_size = 256,
				    .schema = "schema!",
				    .schema_len = 7};
	struct pbr_ring *r = NULL;

	ck_assert_int_eq(pbr_ring_create(name, &o, &r), 0);
	pbr_ring_detach(r);
}

/* A ring that attached despite a tolerated change must still work. */
static void check_usable(const char *name)
{
	struct pbr_ring *r = tu_attach(name);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);

	tu_send_tag(p, 99);
	tu_recv_tag(rd, 0, 99);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}

START_TEST(test_corrupt_super)
{
	const struct corruption *c = &corruptions[_i];
	const char *name = tu_name("bad");
	struct tu_raw raw;
	int rc;

	make_ring_with_schema(name);
	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	c->fn(raw.sb);
	tu_raw_unmap(&raw);
	rc = attach_rc(name, 50 * TU_MS, 0);
	ck_assert_msg(rc == c->expect, "%s: attach gave %d (%s), want %d (%s)",
		      c->what, rc, pbr_strerror(rc), c->expect,
		      pbr_strerror(c->expect));
	if (c->expect == 0)
		check_usable(name);
}
END_TEST

/* FORMAT.md §2, §12.2: with READER_METRICS set the participant table
 * holds the entries and a 256-byte metrics block per reader; a smaller
 * table is damaged (-EUCLEAN), even one that would hold the entries
 * alone, which is still a valid table without the bit (format 1.1). */
START_TEST(test_metrics_table_too_small)
{
	const char *name = tu_name("mt");
	/* 23 entries x 128 = 2944 bytes; with 19 blocks x 256, 7808 */
	struct pbr_create_opts o = {.slot_count = 16,
				    .slot_size = 256,
				    .max_producers = 4,
				    .max_readers = 19};
	struct pbr_ring *r = NULL;
	struct tu_raw raw;

	ck_assert_int_eq(pbr_ring_create(name, &o, &r), 0);
	pbr_ring_detach(r);
	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	ck_assert_uint_eq(raw.sb->features_compat & PBR_FEATURE_READER_METRICS,
			  PBR_FEATURE_READER_METRICS);
	ck_assert_uint_eq(raw.sb->participants_size, 2 * PBR_PAGE);
	/* exactly the minimum: accepted */
	raw.sb->participants_size = 7808;
	ck_assert_int_eq(attach_rc(name, 50 * TU_MS, 0), 0);
	/* a byte short of it: damaged */
	raw.sb->participants_size = 7807;
	ck_assert_int_eq(attach_rc(name, 50 * TU_MS, 0), -EUCLEAN);
	/* one page: room for the entries only */
	raw.sb->participants_size = PBR_PAGE;
	ck_assert_int_eq(attach_rc(name, 50 * TU_MS, 0), -EUCLEAN);
	/* the same table without the bit is a 1.1 layout, and works */
	raw.sb->features_compat &= ~PBR_FEATURE_READER_METRICS;
	ck_assert_int_eq(attach_rc(name, 50 * TU_MS, 0), 0);
	tu_raw_unmap(&raw);
	check_usable(name);
}
END_TEST

/* Play a creator at work: hold the creation lock (FORMAT.md §12.1) on a
 * description of our own. */
static void hold_creation_lock(int fd)
{
	struct flock fl = {.l_type = F_WRLCK,
			   .l_whence = SEEK_SET,
			   .l_start = PBR_CREATION_LOCK,
			   .l_len = 1};

	ck_assert_int_eq(fcntl(fd, F_OFD_SETLK, &fl), 0);
}

START_TEST(test_never_ready_timeout)
{
	const char *name = tu_name("nr");
	struct tu_raw raw;
	uint64_t t0, dt;

	make_ring_with_schema(name);
	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	raw.sb->state = PBR_STATE_INIT;
	hold_creation_lock(raw.fd); /* a creator that never finishes */
	/* The caller's timeout is honoured, not the 1 s default ... */
	t0 = tu_now_ns();
	ck_assert_int_eq(attach_rc(name, 50 * TU_MS, 0), -ETIMEDOUT);
	dt = tu_now_ns() - t0;
	ck_assert_uint_ge(dt, 50 * TU_MS);
	ck_assert_uint_lt(dt, 800 * TU_MS);
	/* ... and 0 means the documented 1 s. */
	t0 = tu_now_ns();
	ck_assert_int_eq(attach_rc(name, 0, 0), -ETIMEDOUT);
	dt = tu_now_ns() - t0;
	ck_assert_uint_ge(dt, 1000 * TU_MS);
	ck_assert_uint_lt(dt, 3000 * TU_MS);
	/* Once the creator is gone the ring is damaged, said at once. */
	tu_raw_unmap(&raw);
	t0 = tu_now_ns();
	ck_assert_int_eq(attach_rc(name, 5 * TU_SEC, 0), -EUCLEAN);
	ck_assert_uint_lt(tu_now_ns() - t0, 100 * TU_MS);
}
END_TEST

START_TEST(test_ready_while_waiting)
{
	const char *name = tu_name("rw");
	struct tu_raw raw;
	pid_t pid;
	int st;

	make_ring_with_schema(name);
	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	raw.sb->state = PBR_STATE_INIT;
	hold_creation_lock(raw.fd); /* shared with the child: our creator */
	/* A creator that finishes while attach waits: attach succeeds. */
	pid = tu_fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		tu_sleep_ms(100);
		__atomic_store_n(&raw.sb->state, PBR_STATE_READY,
				 __ATOMIC_RELEASE);
		_exit(0);
	}
	ck_assert_int_eq(attach_rc(name, 2 * TU_SEC, 0), 0);
	st = tu_wait(pid, 2000);
	ck_assert_int_eq(tu_exit_code(st), 0);
	tu_raw_unmap(&raw);
}
END_TEST

START_TEST(test_empty_file)
{
	const char *name = tu_name("empty");
	char path[128];
	uint64_t t0, dt;
	int fd;

	/* A zero-length object whose creator holds the creation lock has
	 * not been sized yet: attach waits for it and times out. */
	tu_path(name, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	hold_creation_lock(fd);
	t0 = tu_now_ns();
	ck_assert_int_eq(attach_rc(name, 50 * TU_MS, 0), -ETIMEDOUT);
	dt = tu_now_ns() - t0;
	ck_assert_uint_ge(dt, 50 * TU_MS);
	/* Without a creator it is damaged (after a short grace, since a
	 * creator locks just after the object appears), not timed out. */
	close(fd);
	t0 = tu_now_ns();
	ck_assert_int_eq(attach_rc(name, 5 * TU_SEC, 0), -EUCLEAN);
	ck_assert_uint_lt(tu_now_ns() - t0, 200 * TU_MS);
	ck_assert_int_eq(pbr_ring_unlink(name), 0);
}
END_TEST

START_TEST(test_truncated_file)
{
	const char *name = tu_name("trunc");
	struct tu_raw raw;

	/* Superblock intact and ready, the rest cut off: the real size
	 * disagrees with total_size. Must not SIGBUS. */
	make_ring_with_schema(name);
	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	ck_assert_int_eq(ftruncate(raw.fd, 2 * PBR_PAGE), 0);
	tu_raw_unmap(&raw);
	ck_assert_int_eq(attach_rc(name, 50 * TU_MS, 0), -EUCLEAN);
}
END_TEST

START_TEST(test_not_regular)
{
	const char *name = tu_name("fifo");
	char path[128];

	tu_path(name, path, sizeof(path));
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(attach_rc(name, 50 * TU_MS, 0), -ENODEV);
}
END_TEST

START_TEST(test_enospc)
{
	const char *name = tu_name("nospc");
	struct pbr_create_opts o = {.slot_count = 1u << 16,
				    .slot_size = 1u << 20}; /* 64 GiB */
	struct pbr_ring *r = NULL;
	struct statvfs vfs;
	uint64_t fs_size;

	/* Only meaningful, and only safe, on a size-limited file system
	 * clearly smaller than the request (the kernel refuses it up
	 * front instead of filling memory). */
	ck_assert_int_eq(statvfs(TU_SHM_DIR, &vfs), 0);
	fs_size = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	if (fs_size == 0 || fs_size >= (32ull << 30) ||
	    !getenv("PBR_TEST_ENOSPC"))
		return;
	ck_assert_int_eq(pbr_ring_create(name, &o, &r), -ENOSPC);
	ck_assert_ptr_null(r);
	ck_assert(!shm_exists(name));
}
END_TEST

static Suite *segment_suite(void)
{
	Suite *s = suite_create("segment");
	TCase *tc = tu_tcase("lifecycle", 10);

	tcase_add_test(tc, test_create_attach_unlink);
	tcase_add_test(tc, test_create_twice);
	tcase_add_test(tc, test_attach_missing);
	tcase_add_test(tc, test_unlink_twice);
	tcase_add_test(tc, test_bad_names);
	tcase_add_test(tc, test_detach_closes_handles);
	suite_add_tcase(s, tc);

	tc = tu_tcase("permissions", 10);
	tcase_add_test(tc, test_default_mode);
	tcase_add_test(tc, test_mode_honoured);
	tcase_add_test(tc, test_world_writable);
	tcase_add_test(tc, test_other_owner);
	suite_add_tcase(s, tc);

	tc = tu_tcase("options", 10);
	tcase_add_loop_test(tc, test_bad_geometry, 0, N_BAD_GEOM);
	tcase_add_test(tc, test_limits_accepted);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_partial_defaults);
	tcase_add_test(tc, test_info_reflects_opts);
	tcase_add_test(tc, test_schema_hash_checked);
	tcase_add_test(tc, test_enospc);
	suite_add_tcase(s, tc);

	tc = tu_tcase("validation", 10);
	tcase_add_loop_test(tc, test_corrupt_super, 0, N_CORRUPT);
	tcase_add_test(tc, test_metrics_table_too_small);
	tcase_add_test(tc, test_never_ready_timeout);
	tcase_add_test(tc, test_ready_while_waiting);
	tcase_add_test(tc, test_empty_file);
	tcase_add_test(tc, test_truncated_file);
	tcase_add_test(tc, test_not_regular);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(segment_suite());
}
