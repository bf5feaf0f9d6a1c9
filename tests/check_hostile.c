// SPDX-License-Identifier: MIT
/*
 * check_hostile: hostile environments and paused participants, across
 * processes.
 *
 *  - a name squatted by a file of another mode or owner, by a directory,
 *    or by a symlink (refused, never followed);
 *  - a segment truncated under a reader that is already attached;
 *  - no space left on /dev/shm at creation (a 1 MiB tmpfs in a private
 *    mount namespace; skipped where one cannot be made);
 *  - processes that exit or die without detaching;
 *  - a producer stopped (SIGSTOP) in the middle of encoding a message and
 *    a gating reader stopped with messages to read: neither is reclaimed
 *    while it lives; after SIGCONT they finish;
 *  - a copy of a producer that outlives the producer's real death (a fork
 *    that dropped the lock): its late commit is refused, and it must not
 *    disturb whoever owns the entry now;
 *  - reader metrics blocks (format 1.2) forged stale, and a ring forged
 *    to be without them.
 *
 * check_segment covers attach errors of damaged superblocks (major 2,
 * unknown incompatible feature bits, bad geometry, a truncated file) and
 * check_recovery the in-process late-commit and paused cases; they are
 * not repeated here.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pb_encode.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pbring/demo/v1/device.pb.h"
#include "testutil.h"
#include "pbring/pb.h"

#define NOBODY 65534
#define SLOTS 8
#define SLOT_SIZE 256

static int attach_rc(const char *name, uint32_t flags)
{
	struct pbr_attach_opts ao = {.timeout_ns = 50 * TU_MS, .flags = flags};
	struct pbr_ring *r = NULL;
	int rc = pbr_ring_attach(name, &ao, &r);

	if (rc == 0)
		pbr_ring_detach(r);
	else
		ck_assert_ptr_null(r);
	return rc;
}

static int create_rc(const char *name)
{
	struct pbr_create_opts o = {.slot_count = SLOTS,
				    .slot_size = SLOT_SIZE};
	struct pbr_ring *r = NULL;
	int rc = pbr_ring_create(name, &o, &r);

	if (rc == 0)
		pbr_ring_detach(r);
	return rc;
}

/* A file squatting ring @name: @len zero bytes, then mode and owner. */
static void squat(const char *name, size_t len, mode_t mode, uid_t uid)
{
	char path[128], buf[4096];
	int fd;

	tu_path(name, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	memset(buf, 0, sizeof(buf));
	for (; len >= sizeof(buf); len -= sizeof(buf))
		ck_assert_int_eq(write(fd, buf, sizeof(buf)), sizeof(buf));
	ck_assert_int_eq(fchmod(fd, mode), 0);
	if (uid != geteuid())
		ck_assert_int_eq(fchown(fd, uid, -1), 0);
	close(fd);
}

static void expect_stat(const char *name, mode_t mode, uid_t uid, off_t size)
{
	char path[128];
	struct stat st;

	tu_path(name, path, sizeof(path));
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, mode);
	ck_assert_uint_eq(st.st_uid, uid);
	ck_assert_int_eq(st.st_size, size);
}

/* A new file in ring @name's place holding @len bytes from @src. */
static void copy_to(const char *name, const void *src, size_t len)
{
	char path[128];
	int fd;

	tu_path(name, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(tu_write_full(fd, src, len), 0);
	close(fd);
}

/* --- squatters --------------------------------------------------------- */

/* Anyone's file, writable by everyone: create never reuses it, attach
 * refuses it before reading a byte of it. */
START_TEST(squat_world_writable)
{
	const char *name = tu_name("sqmode");

	squat(name, 8192, 0666, geteuid());
	ck_assert_int_eq(create_rc(name), -EEXIST);
	ck_assert_int_eq(attach_rc(name, 0), -EPERM);
	ck_assert_int_eq(attach_rc(name, PBR_ATTACH_ANY_OWNER), -EPERM);
	expect_stat(name, 0666, geteuid(), 8192); /* left as it was */
}
END_TEST

/* A copy of a valid ring, but owned by someone else: refused unless the
 * caller accepts any owner; world-writable stays refused even then. */
START_TEST(squat_other_owner)
{
	const char *real = tu_name("sqreal"), *name = tu_name("sqown");
	char dst[128];
	struct tu_raw raw;

	if (geteuid() != 0) {
		fprintf(stderr, "SKIP squat_other_owner: needs root\n");
		return;
	}
	ck_assert_int_eq(create_rc(real), 0);
	ck_assert_int_eq(tu_raw_map(real, &raw), 0);
	copy_to(name, raw.base, raw.size);
	tu_raw_unmap(&raw);
	tu_path(name, dst, sizeof(dst));
	ck_assert_int_eq(chown(dst, NOBODY, NOBODY), 0);
	ck_assert_int_eq(create_rc(name), -EEXIST);
	ck_assert_int_eq(attach_rc(name, 0), -EPERM);
	ck_assert_int_eq(attach_rc(name, PBR_ATTACH_ANY_OWNER), 0);
	ck_assert_int_eq(chmod(dst, 0606), 0);
	ck_assert_int_eq(attach_rc(name, PBR_ATTACH_ANY_OWNER), -EPERM);
}
END_TEST

/* Another owner's file that is no ring: even accepted owners are checked
 * for being a ring (state reads ready, magic does not). */
START_TEST(squat_other_owner_garbage)
{
	const char *name = tu_name("sqjunk");
	uint8_t junk[3 * 4096];
	uint32_t ready = PBR_STATE_READY;
	char path[128];

	if (geteuid() != 0) {
		fprintf(stderr, "SKIP squat_other_owner_garbage: needs root\n");
		return;
	}
	memset(junk, 0x5a, sizeof(junk));
	memcpy(junk + offsetof(struct pbr_layout_super, state), &ready, 4);
	copy_to(name, junk, sizeof(junk));
	tu_path(name, path, sizeof(path));
	ck_assert_int_eq(chown(path, NOBODY, NOBODY), 0);
	ck_assert_int_eq(attach_rc(name, 0), -EPERM);
	ck_assert_int_eq(attach_rc(name, PBR_ATTACH_ANY_OWNER), -EPROTO);
	expect_stat(name, 0600, NOBODY, sizeof(junk));
}
END_TEST

/*
 * A directory in the ring's place: -ENODEV, as for any object that is not
 * a regular file (glibc's shm_open reports the kernel's EISDIR as EINVAL,
 * which attach maps back).
 */
START_TEST(squat_directory)
{
	const char *name = tu_name("sqdir");
	char path[128];
	int created, rc;

	tu_path(name, path, sizeof(path));
	ck_assert_int_eq(mkdir(path, 0700), 0);
	created = create_rc(name);
	rc = attach_rc(name, 0);
	/* Before any assertion: the fixtures only unlink files. */
	ck_assert_int_eq(rmdir(path), 0);
	ck_assert_int_eq(created, -EEXIST);
	ck_assert_int_eq(rc, -ENODEV);
}
END_TEST

/* --- symlinks ---------------------------------------------------------- */

static void symlink_ring(const char *name, const char *target)
{
	char path[128], to[128];

	tu_path(name, path, sizeof(path));
	tu_path(target, to, sizeof(to));
	ck_assert_int_eq(symlink(to, path), 0);
}

/* A symlink to a valid ring of ours: shm_open adds O_NOFOLLOW, so attach
 * fails with ELOOP; create's O_EXCL does not follow it either; unlink
 * removes the link, not the ring. */
START_TEST(symlink_to_ring_refused)
{
	const char *real = tu_name("lnreal"), *name = tu_name("lnk");
	struct tu_raw raw;
	uint8_t before[4096];

	ck_assert_int_eq(create_rc(real), 0);
	ck_assert_int_eq(tu_raw_map(real, &raw), 0);
	memcpy(before, raw.base, sizeof(before));
	symlink_ring(name, real);
	ck_assert_int_eq(attach_rc(name, 0), -ELOOP);
	ck_assert_int_eq(attach_rc(name, PBR_ATTACH_ANY_OWNER), -ELOOP);
	ck_assert_int_eq(create_rc(name), -EEXIST);
	ck_assert_int_eq(pbr_ring_unlink(name), 0);
	ck_assert_int_eq(attach_rc(real, 0), 0);
	ck_assert_mem_eq(raw.base, before, sizeof(before));
	tu_raw_unmap(&raw);
}
END_TEST

/* A dangling symlink: create must not make its target. */
START_TEST(symlink_dangling_not_followed)
{
	const char *target = tu_name("lnnone"), *name = tu_name("lndang");
	char path[128];
	struct stat st;

	symlink_ring(name, target);
	ck_assert_int_eq(create_rc(name), -EEXIST);
	tu_path(target, path, sizeof(path));
	ck_assert_int_eq(stat(path, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(attach_rc(name, 0), -ELOOP);
}
END_TEST

/* --- truncation --------------------------------------------------------- */

/* Helper: attach, read one message, wait for the truncation, peek again.
 * Reports the second peek's return value; dies of SIGBUS if the library
 * touches the missing pages. */
static void truncated_reader(const char *name, int ready, int go, int out)
{
	struct pbr_reader_opts o = {.start = PBR_START_OLDEST};
	struct pbr_reader *rd;
	struct pbr_ring *r;
	struct pbr_view v;
	int32_t rc;
	char c;

	if (pbr_ring_attach(name, NULL, &r) || pbr_reader_open(r, &o, &rd) ||
	    pbr_reader_peek(rd, TU_SEC, &v) || pbr_reader_release(rd, &v))
		_exit(3);
	if (write(ready, "r", 1) != 1 || tu_read_full(go, &c, 1, 5000))
		_exit(4);
	rc = pbr_reader_peek(rd, 100 * TU_MS, &v);
	if (tu_write_full(out, &rc, sizeof(rc)))
		_exit(5);
	pbr_ring_detach(r);
	_exit(0);
}

/* A ring @name with two messages, @child attached to it in another
 * process; once the child has read, the object shrinks to two pages and
 * the child goes on. Returns its exit status, with the read end of its
 * report pipe in *@out (the ring stays, for attach checks). */
static int truncate_under(const char *name,
			  void (*child)(const char *, int, int, int), int *out)
{
	struct pbr_ring *r = tu_create(name, SLOTS, SLOT_SIZE, 0, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	int ready[2], go[2], res[2], st;
	struct tu_raw raw;
	pid_t pid;
	char c;

	ck_assert(!pipe(ready) && !pipe(go) && !pipe(res));
	tu_send_tag(p, 1);
	tu_send_tag(p, 2);
	pid = tu_fork();
	if (pid == 0)
		child(name, ready[1], go[0], res[1]);
	ck_assert_int_eq(tu_read_full(ready[0], &c, 1, 5000), 0);
	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	ck_assert_int_eq(ftruncate(raw.fd, 2 * PBR_PAGE), 0);
	tu_raw_unmap(&raw);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	st = tu_wait(pid, 5000);
	(void)pbr_producer_close(p);
	pbr_ring_detach(r);
	*out = res[0];
	return st;
}

/*
 * Another process shrinks the object under a reader that still has a
 * message to read. Attach now refuses it (-EUCLEAN); the attached reader
 * neither dies of SIGBUS nor reads past the end: its peek fails with
 * -EUCLEAN (the library's SIGBUS guard, shm/sigbus.c). check_recovery
 * has the single-process version, with nothing left to read.
 */
START_TEST(truncated_under_reader)
{
	const char *name = tu_name("trunc");
	int32_t rc = 1;
	int out, st;

	st = truncate_under(name, truncated_reader, &out);
	ck_assert_int_eq(attach_rc(name, 0), -EUCLEAN);
	ck_assert_msg(tu_exit_code(st) == 0,
		      "the attached reader ended with %d", tu_exit_code(st));
	ck_assert_int_eq(tu_read_full(out, &rc, sizeof(rc), 0), 0);
	ck_assert_int_eq(rc, -EUCLEAN);
}
END_TEST

/* Is @a in a writable mapping of this process (/proc/self/maps)? */
static int32_t writable(const volatile void *a)
{
	uintptr_t lo, hi, p = (uintptr_t)a;
	char perms[8], line[512];
	int32_t w = -1;
	FILE *f = fopen("/proc/self/maps", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s", &lo, &hi,
			   perms) == 3 &&
		    p >= lo && p < hi)
			w = perms[1] == 'w';
	if (f)
		fclose(f);
	return w;
}

/* Helper: a tap on a read-only attach reads one message, waits for the
 * truncation, peeks again, then reads the first message's bytes, now in
 * the pages the SIGBUS guard put in place; reports the peek and whether
 * those pages are writable. */
static void truncated_tap(const char *name, int ready, int go, int out)
{
	struct pbr_attach_opts ao = {.flags = PBR_ATTACH_READONLY};
	struct pbr_reader_opts o = {.start = PBR_START_OLDEST,
				    .flags = PBR_READER_TAP};
	volatile uint8_t *data;
	struct pbr_reader *rd;
	struct pbr_ring *r;
	struct pbr_view v;
	int32_t rc;
	char c;

	if (pbr_ring_attach(name, &ao, &r) || pbr_reader_open(r, &o, &rd) ||
	    pbr_reader_peek(rd, TU_SEC, &v))
		_exit(3);
	data = (volatile uint8_t *)v.data;
	if (pbr_reader_release(rd, &v) || write(ready, "r", 1) != 1 ||
	    tu_read_full(go, &c, 1, 5000))
		_exit(4);
	rc = pbr_reader_peek(rd, 100 * TU_MS, &v);
	rc = rc == -EUCLEAN && data[0] == 0 ? rc : -2;
	if (tu_write_full(out, &rc, sizeof(rc)))
		_exit(5);
	rc = writable(data);
	if (tu_write_full(out, &rc, sizeof(rc)))
		_exit(6);
	_exit(0);
}

/*
 * The same truncation under a tap: its peek fails with -EUCLEAN, the
 * vanished pages read as zeros, and they stay read-only, so a store by
 * mistake still faults instead of landing in a private page (asked of
 * /proc/self/maps: a fault's exit status differs under the sanitizers).
 */
START_TEST(truncated_under_tap)
{
	int32_t rc = 1;
	int out, st;

	st = truncate_under(tu_name("trtap"), truncated_tap, &out);
	ck_assert_int_eq(tu_exit_code(st), 0);
	ck_assert_int_eq(tu_read_full(out, &rc, sizeof(rc), 0), 0);
	ck_assert_int_eq(rc, -EUCLEAN);
	ck_assert_int_eq(tu_read_full(out, &rc, sizeof(rc), 0), 0);
	ck_assert_msg(rc == 0, "the zero pages are %s",
		      rc ? "writable" : "not mapped");
}
END_TEST

/* --- no space left ------------------------------------------------------ */

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int ok = fd >= 0 &&
		 write(fd, text, strlen(text)) == (ssize_t)strlen(text);

	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

/* A private mount namespace; as root directly, else inside a new user
 * namespace that maps our ids to root. 0, or -1 if neither works. */
static int private_mounts(void)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();
	char map[64];

	if (unshare(CLONE_NEWNS) == 0)
		return 0;
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS))
		return -1;
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
	if (write_file("/proc/self/setgroups", "deny") ||
	    write_file("/proc/self/uid_map", map))
		return -1;
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
	return write_file("/proc/self/gid_map", map);
}

static int dir_is_empty(const char *path)
{
	struct dirent *de;
	DIR *d = opendir(path);
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n == 0;
}

/* In the child: a 1 MiB /dev/shm, a 4 MiB ring, then a small one. */
static int enospc_child(void)
{
	struct pbr_create_opts big = {.slot_count = 1024, .slot_size = 4096};
	struct pbr_ring *r = NULL;

	if (private_mounts() ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
		  "size=1m,mode=1777"))
		return TU_SKIP;
	if (pbr_ring_create("hostile-big", &big, &r) != -ENOSPC || r)
		return 10;
	if (!dir_is_empty("/dev/shm"))
		return 11; /* something left behind */
	if (pbr_ring_create("hostile-small", NULL, &r) == 0)
		return 12; /* default geometry: 1 MiB of slots, too big */
	big.slot_count = 16;
	big.slot_size = 256;
	if (pbr_ring_create("hostile-small", &big, &r))
		return 13; /* a ring that fits must still work */
	pbr_ring_detach(r);
	return pbr_ring_unlink("hostile-small") ? 14 : 0;
}

START_TEST(enospc_in_small_tmpfs)
{
	pid_t pid = tu_fork();
	int code;

	if (pid == 0)
		_exit(enospc_child());
	code = tu_exit_code(tu_wait(pid, 10000));
	if (code == TU_SKIP) {
		fprintf(stderr, "SKIP enospc_in_small_tmpfs: no private mount "
				"namespace here\n");
		return;
	}
	ck_assert_msg(code == 0,
		      "child %d: 10 = big ring not ENOSPC, 11 = leftovers, "
		      "12/13 = small ring wrong, 14 = unlink",
		      code);
}
END_TEST

/* --- exiting without detaching ----------------------------------------- */

/* Send tags 1..3, open a reader, leave with exit() or be killed. */
static void careless_child(const char *name, bool die)
{
	struct pbr_producer *p;
	struct pbr_reader *rd;
	struct pbr_ring *r;
	uint64_t t;

	if (pbr_ring_attach(name, NULL, &r) || pbr_producer_open(r, NULL, &p) ||
	    pbr_reader_open(r, NULL, &rd))
		_exit(3);
	for (t = 1; t <= 3; t++) {
		uint64_t buf[2] = {t, ~t};

		if (pbr_producer_send(p, buf, sizeof(buf), 0, TU_SEC))
			_exit(4);
	}
	if (die)
		raise(SIGKILL);
	exit(0); /* atexit handlers and stdio run; no detach */
}

START_TEST(exit_without_detach_leaves_ring_intact)
{
	const char *name = tu_name("careless");
	struct pbr_ring *r = tu_create(name, SLOTS, SLOT_SIZE, 0, 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p;
	uint8_t super[PBR_PAGE];
	struct tu_raw raw;
	int i, round;

	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	memcpy(super, raw.base, sizeof(super));
	for (round = 0; round < 2; round++) {
		pid_t pid = tu_fork();

		if (pid == 0)
			careless_child(name, round == 1);
		ck_assert_int_eq(tu_exit_code(tu_wait(pid, 5000)),
				 round ? -SIGKILL : 0);
		for (i = 1; i <= 3; i++)
			tu_recv_tag(rd, TU_SEC, i);
	}
	/* Same name, same bytes, still attachable, still working. */
	ck_assert_mem_eq(raw.base, super, sizeof(super));
	tu_raw_unmap(&raw);
	ck_assert_int_eq(attach_rc(name, 0), 0);
	/* The second child reaped the first one's entries as it joined; its
	 * own producer and reader are left for us. */
	ck_assert_int_eq(pbr_ring_reclaim(r), 2);
	p = tu_producer(r, 0);
	tu_send_tag(p, 9);
	tu_recv_tag(rd, TU_SEC, 9);
	(void)pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* --- a producer stopped mid-encode --------------------------------------- */

#define BLOB 64

struct pause_ctl {
	int note; /* the child says: half the blob is written */
	int go;	  /* the parent says: finish */
};

static uint8_t blob_byte(uint32_t i)
{
	return tu_pattern(77, 7, i);
}

/* Writes half of the blob, then waits for the parent (which stops this
 * process meanwhile), then the rest: the slot is BUSY all that time. */
static bool pausing_blob(pb_ostream_t *s, const pb_field_t *f, void *const *arg)
{
	const struct pause_ctl *ctl = *arg;
	uint8_t b[BLOB];
	uint32_t i;
	char c;

	for (i = 0; i < BLOB; i++)
		b[i] = blob_byte(i);
	if (!pb_encode_tag_for_field(s, f) || !pb_encode_varint(s, BLOB) ||
	    !pb_write(s, b, BLOB / 2))
		return false;
	if (write(ctl->note, "h", 1) != 1 ||
	    tu_read_full(ctl->go, &c, 1, 10000))
		return false;
	return pb_write(s, b + BLOB / 2, BLOB / 2);
}

static void paused_encoder(const char *name, struct pause_ctl *ctl, int out)
{
	pbring_demo_v1_DeviceEvent ev = pbring_demo_v1_DeviceEvent_init_zero;
	struct pbr_producer *p;
	struct pbr_ring *r;
	int32_t rc;

	if (pbr_ring_attach(name, NULL, &r) || pbr_producer_open(r, NULL, &p))
		_exit(3);
	snprintf(ev.id, sizeof(ev.id), "paused");
	ev.seq = 7;
	ev.blob.funcs.encode = pausing_blob;
	ev.blob.arg = ctl;
	rc = pbr_producer_send_pb(p, pbring_demo_v1_DeviceEvent_fields, &ev,
				  TU_SEC);
	_exit(tu_write_full(out, &rc, sizeof(rc)) ? 4 : 0);
}

/* The stopped producer still holds its lock: nobody may reclaim it. */
static void expect_left_alone(struct pbr_ring *r, struct pbr_reader *rd,
			      pid_t pid)
{
	struct pbr_participant pt[8];
	struct pbr_ring_stats rs;
	struct pbr_view v;
	int i, n, found = 0;

	for (i = 0; i < 10; i++) { /* 10 x 20 ms: ten liveness intervals */
		ck_assert_int_eq(pbr_ring_reclaim(r), 0);
		ck_assert_int_eq(pbr_reader_peek(rd, 20 * TU_MS, &v),
				 -ETIMEDOUT);
	}
	pbr_ring_stats(r, &rs);
	ck_assert_uint_eq(rs.abandoned, 0);
	ck_assert_uint_eq(rs.producers_reaped, 0);
	n = pbr_ring_participants(r, pt, 8);
	for (i = 0; i < n && i < 8; i++)
		if (!pt[i].is_reader && pt[i].pid == (uint32_t)pid) {
			ck_assert_uint_eq(pt[i].alive, 1);
			ck_assert_uint_eq(pt[i].pending & 3, 2); /* a claim */
			found = 1;
		}
	ck_assert(found);
}

static void expect_paused_event(struct pbr_reader *rd)
{
	pbring_demo_v1_DeviceEvent ev = pbring_demo_v1_DeviceEvent_init_zero;
	struct pbr_span span = {NULL, 0};
	struct pbr_view v;
	uint32_t i;

	ev.blob.funcs.decode = pbr_pb_decode_span;
	ev.blob.arg = &span;
	ck_assert_int_eq(pbr_reader_peek(rd, 2 * TU_SEC, &v), 0);
	ck_assert_int_eq(
		pbr_view_decode(&v, pbring_demo_v1_DeviceEvent_fields, &ev, 0),
		0);
	ck_assert_str_eq(ev.id, "paused");
	ck_assert_uint_eq(span.len, BLOB);
	for (i = 0; i < BLOB; i++)
		ck_assert_uint_eq(((const uint8_t *)span.data)[i],
				  blob_byte(i));
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
}

START_TEST(producer_stopped_mid_encode)
{
	const char *name = tu_name("stopenc");
	struct pbr_ring *r = tu_create(name, SLOTS, SLOT_SIZE, 0, 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *q = tu_producer(r, 0);
	int note[2], go[2], out[2], st;
	struct pause_ctl ctl;
	int32_t rc = 1;
	pid_t pid;
	char c;

	ck_assert(!pipe(note) && !pipe(go) && !pipe(out));
	ctl.note = note[1];
	ctl.go = go[0];
	pid = tu_fork();
	if (pid == 0)
		paused_encoder(name, &ctl, out[1]);
	ck_assert_int_eq(tu_read_full(note[0], &c, 1, 5000), 0);
	ck_assert_int_eq(kill(pid, SIGSTOP), 0);
	ck_assert_int_eq(waitpid(pid, &st, WUNTRACED), pid);
	ck_assert(WIFSTOPPED(st));
	tu_send_tag(q, 1); /* a later sequence, committed meanwhile */
	expect_left_alone(r, rd, pid);
	ck_assert_int_eq(kill(pid, SIGCONT), 0);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	ck_assert_int_eq(tu_read_full(out[0], &rc, sizeof(rc), 5000), 0);
	ck_assert_int_eq(rc, 0); /* its commit landed */
	ck_assert_int_eq(tu_exit_code(tu_wait(pid, 5000)), 0);
	expect_paused_event(rd); /* first, whole, then the later one */
	tu_recv_tag(rd, TU_SEC, 1);
	(void)pbr_producer_close(q);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* --- a gating reader stopped with a full ring ----------------------------- */

static void slow_reader(const char *name, int ready, int out)
{
	struct pbr_reader_opts o = {.start = PBR_START_OLDEST};
	struct pbr_reader *rd;
	struct pbr_ring *r;
	struct pbr_view v;
	uint64_t want = 1;

	if (pbr_ring_attach(name, NULL, &r) || pbr_reader_open(r, &o, &rd))
		_exit(3);
	if (write(ready, "r", 1) != 1)
		_exit(4);
	for (;;) {
		if (pbr_reader_peek(rd, 5 * TU_SEC, &v))
			_exit(5);
		if (tu_tag_of(&v) == 999)
			break;
		if (tu_tag_of(&v) != want++ || pbr_reader_release(rd, &v))
			_exit(6);
	}
	_exit(tu_write_full(out, &want, sizeof(want)) ? 7 : 0);
}

/* Stopped, it keeps gating: producers wait and time out, nobody reaps it;
 * continued, it reads everything in order. */
START_TEST(gating_reader_stopped_is_not_reaped)
{
	const char *name = tu_name("stoprd");
	struct pbr_ring *r = tu_create(name, SLOTS, SLOT_SIZE, 0, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	uint64_t buf[2] = {SLOTS + 1, ~(uint64_t)(SLOTS + 1)}, got = 0;
	int ready[2], out[2], st, i;
	struct pbr_ring_stats rs;
	pid_t pid;
	char c;

	ck_assert(!pipe(ready) && !pipe(out));
	pid = tu_fork();
	if (pid == 0)
		slow_reader(name, ready[1], out[1]);
	ck_assert_int_eq(tu_read_full(ready[0], &c, 1, 5000), 0);
	ck_assert_int_eq(kill(pid, SIGSTOP), 0);
	ck_assert_int_eq(waitpid(pid, &st, WUNTRACED), pid);
	for (i = 1; i <= SLOTS; i++)
		tu_send_tag(p, i);
	ck_assert_int_eq(pbr_producer_send(p, buf, 16, 0, 200 * TU_MS),
			 -ETIMEDOUT);
	ck_assert_int_eq(pbr_ring_reclaim(r), 0);
	pbr_ring_stats(r, &rs);
	ck_assert_uint_eq(rs.readers_reaped, 0);
	ck_assert_int_eq(kill(pid, SIGCONT), 0);
	ck_assert_int_eq(pbr_producer_send(p, buf, 16, 0, 2 * TU_SEC), 0);
	buf[0] = 999;
	buf[1] = ~buf[0];
	ck_assert_int_eq(pbr_producer_send(p, buf, 16, 0, 2 * TU_SEC), 0);
	ck_assert_int_eq(tu_read_full(out[0], &got, sizeof(got), 5000), 0);
	ck_assert_uint_eq(got, SLOTS + 2);
	ck_assert_int_eq(tu_exit_code(tu_wait(pid, 5000)), 0);
	(void)pbr_producer_close(p);
	pbr_ring_detach(r);
}
END_TEST

/* --- a late commit from a copy of a dead producer ----------------------- */

/*
 * The grandchild: a fork of the producer taken after its reserve, which
 * closes every inherited descriptor (so the lock is its parent's alone)
 * and commits when told to, after its parent was killed and the slot
 * reclaimed; then, as pbring.h says to after -EOWNERDEAD, closes the
 * producer. Reports the commit's return value.
 */
static void zombie_copy(struct pbr_producer *p, struct pbr_slot *slot,
			int ready, int go, int out)
{
	int32_t rc;
	char c;
	int fd;

	for (fd = 3; fd < 1024; fd++)
		if (fd != ready && fd != go && fd != out)
			close(fd);
	if (write(ready, "z", 1) != 1 || tu_read_full(go, &c, 1, 10000))
		_exit(3);
	rc = pbr_producer_commit(p, slot, 16);
	(void)pbr_producer_close(p);
	_exit(tu_write_full(out, &rc, sizeof(rc)) ? 4 : 0);
}

static void doomed_producer(const char *name, int ready, int go, int out)
{
	uint64_t buf[2] = {2, ~2ull};
	struct pbr_producer *p;
	struct pbr_slot slot;
	struct pbr_ring *r;
	pid_t z;

	if (pbr_ring_attach(name, NULL, &r) || pbr_producer_open(r, NULL, &p) ||
	    pbr_producer_reserve(p, TU_SEC, &slot))
		_exit(3);
	memcpy(slot.data, buf, sizeof(buf));
	z = fork(); /* no PDEATHSIG: it must outlive us */
	if (z == 0)
		zombie_copy(p, &slot, ready, go, out);
	for (;;)
		pause();
}

struct zombie {
	pid_t parent;
	int ready[2], go[2], out[2];
};

/* Start the doomed producer and its copy; wait until both are set. */
static void start_zombie(const char *name, struct zombie *z)
{
	char c;

	ck_assert(!pipe(z->ready) && !pipe(z->go) && !pipe(z->out));
	z->parent = tu_fork();
	if (z->parent == 0)
		doomed_producer(name, z->ready[1], z->go[0], z->out[1]);
	ck_assert_int_eq(tu_read_full(z->ready[0], &c, 1, 5000), 0);
	ck_assert_int_eq(kill(z->parent, SIGKILL), 0);
	ck_assert_int_eq(tu_exit_code(tu_wait(z->parent, 5000)), -SIGKILL);
}

static int32_t zombie_commit(struct zombie *z)
{
	int32_t rc = 1;
	int st;

	ck_assert_int_eq(write(z->go[1], "g", 1), 1);
	ck_assert_int_eq(tu_read_full(z->out[0], &rc, sizeof(rc), 5000), 0);
	/* The copy was reparented to us (a subreaper): reap it. */
	while (waitpid(-1, &st, 0) > 0)
		;
	return rc;
}

static const char *failed_owner(bool pending, bool state, int rc)
{
	static char msg[256];

	snprintf(msg, sizeof(msg),
		 "the zombie %s%s%s; the new owner's commit gave %d (%s)",
		 pending ? "cleared the new owner's pending word" : "",
		 pending && state ? " and " : "",
		 state ? "marked its entry FREE" : "", rc, pbr_strerror(rc));
	return msg;
}

/* A one-entry ring: whoever opens a producer next takes the dead
 * producer's entry. */
static struct pbr_ring *one_entry_ring(const char *name, uint32_t flags)
{
	struct pbr_create_opts o = {.slot_count = SLOTS,
				    .slot_size = SLOT_SIZE,
				    .max_producers = 1,
				    .flags = flags};
	struct pbr_ring *r = NULL;

	ck_assert_int_eq(pbr_ring_create(name, &o, &r), 0);
	return r;
}

static void late_commit_after_death(uint32_t flags)
{
	const char *name = tu_name("zombie");
	struct pbr_ring *r = one_entry_ring(name, flags);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_reader_stats st;
	struct pbr_producer *p;
	struct pbr_view v;
	struct zombie z;

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	p = tu_producer(r, 0);
	tu_send_tag(p, 1);
	ck_assert_int_eq(pbr_producer_close(p), 0);
	start_zombie(name, &z);
	/* The reader finds the dead claim and reclaims it. */
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 100 * TU_MS, &v), -ETIMEDOUT);
	pbr_reader_stats(rd, &st);
	ck_assert_uint_eq(st.abandoned, 1);
	ck_assert_int_eq(zombie_commit(&z), -EOWNERDEAD);
	p = tu_producer(r, 0);
	tu_send_tag(p, 3);
	tu_recv_tag(rd, TU_SEC, 3); /* tag 2 never shows */
	pbr_reader_stats(rd, &st);
	ck_assert_uint_eq(st.delivered, 2);
	ck_assert_uint_eq(st.abandoned, 1);
	(void)pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}

START_TEST(late_commit_after_real_death_multi)
{
	late_commit_after_death(0);
}
END_TEST

START_TEST(late_commit_after_real_death_single)
{
	late_commit_after_death(PBR_CREATE_SINGLE_PRODUCER);
}
END_TEST

/*
 * The same late commit (and close), but by then a new producer owns the
 * entry and has a reservation open. The refused zombie must leave the new
 * owner's entry alone: if it clears its pending word or frees the entry,
 * recovery takes the live new producer's slot for a dead one's and its
 * commit fails.
 */
static const char *zombie_vs_new_owner(uint32_t flags)
{
	const char *name = tu_name("zowner");
	struct pbr_ring *r = one_entry_ring(name, flags);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	uint64_t buf[2] = {3, ~3ull}, pending;
	struct pbr_layout_producer *e;
	struct pbr_producer *p;
	struct pbr_slot slot;
	struct pbr_view v;
	struct tu_raw raw;
	struct zombie z;
	uint32_t state;
	int rc;

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	start_zombie(name, &z);
	p = tu_producer(r, 0); /* reaps the dead one: its slot abandoned */
	ck_assert_int_eq(pbr_producer_reserve(p, TU_SEC, &slot), 0);
	memcpy(slot.data, buf, sizeof(buf));
	ck_assert_int_eq(zombie_commit(&z), -EOWNERDEAD);
	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	e = tu_raw_producer(&raw, 0);
	pending = __atomic_load_n(&e->pending, __ATOMIC_ACQUIRE);
	state = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);
	tu_raw_unmap(&raw);
	/* The reader waits at the new producer's slot for a while. */
	(void)!pbr_reader_peek(rd, 100 * TU_MS, &v);
	rc = pbr_producer_commit(p, &slot, sizeof(buf));
	if (pending != PBR_PENDING_SEQ(slot.seq) || state != PBR_ENTRY_ACTIVE ||
	    rc)
		return failed_owner(pending != PBR_PENDING_SEQ(slot.seq),
				    state != PBR_ENTRY_ACTIVE, rc);
	tu_recv_tag(rd, TU_SEC, 3);
	(void)pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
	return NULL;
}

/* After -EOWNERDEAD a producer touches nothing shared: the entry may
 * belong to another producer by then. */
static void zombie_spares_new_owner(uint32_t flags, const char *test)
{
	const char *err = zombie_vs_new_owner(flags);

	ck_assert_msg(!err, "%s: %s", test, err);
}

START_TEST(late_commit_spares_new_owner_multi)
{
	zombie_spares_new_owner(0, "late_commit_spares_new_owner_multi");
}
END_TEST

START_TEST(late_commit_spares_new_owner_single)
{
	zombie_spares_new_owner(PBR_CREATE_SINGLE_PRODUCER,
				"late_commit_spares_new_owner_single");
}
END_TEST

/* A forged claim far ahead, and every slot saying a later sequence: a
 * gating reader passes over one gated slot per peek as corrupt, never
 * walks towards the forged claim, and loses nothing (FORMAT.md §9.4). */
START_TEST(forged_claim_does_not_send_reader_walking)
{
	const char *name = tu_name("forged");
	struct pbr_ring *r = tu_create(name, 8, 128, 0, 0);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_LATEST, 0);
	const uint64_t far = 1ull << 40;
	struct pbr_reader_stats st;
	struct tu_raw raw;
	struct pbr_view v;
	uint64_t t0;
	int i;

	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	__atomic_store_n(
		(uint64_t *)(raw.base + raw.sb->control_off + PBR_CTL_CLAIM),
		far + 1, __ATOMIC_RELEASE);
	for (i = 0; i < 8; i++)
		__atomic_store_n(&tu_raw_slot(&raw, (uint64_t)i)->commit,
				 PBR_COMMIT_DONE(far - 8 + (uint64_t)i),
				 __ATOMIC_RELEASE);
	t0 = tu_now_ns();
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EBADMSG);
	ck_assert_uint_lt(tu_now_ns() - t0, 100 * TU_MS);
	pbr_reader_stats(rd, &st);
	ck_assert_uint_eq(st.bad, 3);
	ck_assert_uint_eq(st.lost, 0);
	ck_assert_uint_eq(st.cursor, 3);
	tu_raw_unmap(&raw);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* Reader @idx's row of the participant table (asserting it is there). */
static struct pbr_participant reader_row(struct pbr_ring *r, uint32_t idx)
{
	struct pbr_participant pt[16];
	int n = pbr_ring_participants(r, pt, 16), i;

	for (i = 0; i < n && i < 16; i++)
		if (pt[i].is_reader && pt[i].index == idx)
			return pt[i];
	ck_abort_msg("reader %u is not in the table", idx);
	return pt[0];
}

/* Send @n 16-byte messages stamped 25 ms before now. */
static void send_aged(struct pbr_producer *p, int n)
{
	uint64_t buf[2] = {0, 0};
	struct pbr_slot s;
	int i;

	for (i = 0; i < n; i++) {
		ck_assert_int_eq(pbr_producer_reserve(p, 0, &s), 0);
		memcpy(s.data, buf, sizeof(buf));
		s.timestamp_ns = pbr_clock_ns() - 25 * TU_MS;
		ck_assert_int_eq(pbr_producer_commit(p, &s, sizeof(buf)), 0);
	}
}

static void drain(struct pbr_reader *rd, int n)
{
	struct pbr_view v;
	int i;

	for (i = 0; i < n; i++) {
		ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
		ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	}
}

/* A metrics block stamped with another joined_ns than its entry's is an
 * earlier owner's (a 1.0 or 1.1 reader took the entry and left the block
 * alone, FORMAT.md §5.5): whatever it holds, it is not shown. Forged
 * here both ways, by writing the segment. */
START_TEST(forged_stale_metrics_block_ignored)
{
	const char *name = tu_name("stale");
	struct pbr_ring *r = tu_create(name, 16, 256, 0, 0);
	struct pbr_reader *rd =
		tu_reader(r, PBR_READER_LATENCY, PBR_START_OLDEST, 0);
	uint32_t idx = pbr_reader_index(rd);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_layout_metrics *m;
	struct pbr_layout_reader *e;
	struct pbr_participant pt;
	uint64_t joined, zero[PBR_LATENCY_BUCKETS] = {0};
	struct tu_raw raw;

	send_aged(p, 3);
	drain(rd, 3);
	pt = reader_row(r, idx);
	ck_assert_uint_eq(pt.has_latency, 1);
	ck_assert_uint_eq(tu_latency_from(pt.latency, 0), 3);
	ck_assert_uint_eq(tu_latency_from(pt.latency, 17), 3); /* >= 20 ms */

	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	m = tu_raw_metrics(&raw, idx);
	e = tu_raw_reader(&raw, idx);
	joined = m->joined_ns;
	ck_assert_uint_eq(joined, e->joined_ns);
	/* the block's stamp differs: stale */
	__atomic_store_n(&m->joined_ns, joined + 1, __ATOMIC_RELAXED);
	pt = reader_row(r, idx);
	ck_assert_uint_eq(pt.has_latency, 0);
	ck_assert_uint_eq(pt.latency_sum_ns, 0);
	ck_assert_mem_eq(pt.latency, zero, sizeof(zero));
	ck_assert_uint_eq(pt.delivered, 3); /* the entry itself is fine */
	/* back as it was: shown again */
	__atomic_store_n(&m->joined_ns, joined, __ATOMIC_RELAXED);
	pt = reader_row(r, idx);
	ck_assert_uint_eq(pt.has_latency, 1);
	ck_assert_uint_eq(tu_latency_from(pt.latency, 17), 3);
	/* the entry's stamp differs, as when an earlier reader joins it */
	__atomic_store_n(&e->joined_ns, joined + 1000, __ATOMIC_RELAXED);
	pt = reader_row(r, idx);
	ck_assert_uint_eq(pt.has_latency, 0);
	ck_assert_uint_eq(pt.latency_sum_ns, 0);
	ck_assert_mem_eq(pt.latency, zero, sizeof(zero));
	/* an attacher reads it the same way */
	{
		struct pbr_ring *a = tu_attach(name);

		pt = reader_row(a, idx);
		ck_assert_uint_eq(pt.has_latency, 0);
		pbr_ring_detach(a);
	}
	tu_raw_unmap(&raw);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* A ring without READER_METRICS (as a 1.0 or 1.1 creator makes them):
 * attached by a 1.2 library, it works, PBR_READER_LATENCY is accepted
 * and records nothing, no row has a histogram, and nothing is written
 * after the entries, where such a creator may have left nothing or
 * anything (FORMAT.md §14). */
START_TEST(forged_ring_without_metrics_feature)
{
	const char *name = tu_name("nometrics");
	struct pbr_ring *r = tu_create(name, 16, 256, 0, 0);
	struct pbr_participant pt;
	struct pbr_producer *p;
	struct pbr_reader *rd;
	struct tu_raw raw;
	uint64_t after, i;
	uint8_t *tab;

	pbr_ring_detach(r);
	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	raw.sb->features_compat &= ~PBR_FEATURE_READER_METRICS;
	raw.sb->minor = 1;
	tab = raw.base + raw.sb->participants_off;
	after = ((uint64_t)raw.sb->max_producers + raw.sb->max_readers) *
		PBR_ENTRY_SIZE;
	memset(tab + after, 0x77, raw.sb->participants_size - after);
	r = tu_attach(name);
	rd = tu_reader(r, PBR_READER_LATENCY, PBR_START_OLDEST, 0);
	p = tu_producer(r, 0);
	send_aged(p, 3);
	drain(rd, 3);
	pt = reader_row(r, pbr_reader_index(rd));
	ck_assert_uint_eq(pt.delivered, 3);
	ck_assert_uint_eq(pt.has_latency, 0);
	ck_assert_uint_eq(pt.latency_sum_ns, 0);
	for (i = after; i < raw.sb->participants_size; i++)
		ck_assert_msg(tab[i] == 0x77, "byte %llu of the table written",
			      (unsigned long long)i);
	pbr_producer_close(p);
	pbr_reader_close(rd);
	tu_raw_unmap(&raw);
	pbr_ring_detach(r);
}
END_TEST

/* Attachers that find a ring being created only test its creation lock:
 * taking it for a moment made a creator that was about to take it fail
 * (EAGAIN). Two processes attach in a loop while this one creates and
 * removes the ring 6000 times: every create must succeed. */
START_TEST(attach_probe_never_fails_a_create)
{
	const char *name = tu_name("race");
	pid_t kids[2];
	int i, k, fails = 0;

	for (k = 0; k < 2; k++) {
		kids[k] = tu_fork();
		if (kids[k] == 0) {
			struct pbr_attach_opts ao = {.timeout_ns = 1};
			uint64_t end = tu_now_ns() + 20 * TU_SEC;
			struct pbr_ring *a;

			while (tu_now_ns() < end)
				if (pbr_ring_attach(name, &ao, &a) == 0)
					pbr_ring_detach(a);
			_exit(0);
		}
	}
	for (i = 0; i < 6000; i++) {
		struct pbr_create_opts o = {.slot_count = 8, .slot_size = 128};
		struct pbr_ring *r;

		if (pbr_ring_create(name, &o, &r)) {
			fails++;
			continue;
		}
		pbr_ring_detach(r);
		(void)pbr_ring_unlink(name);
	}
	for (k = 0; k < 2; k++)
		kill(kids[k], SIGKILL), tu_wait(kids[k], 5000);
	(void)pbr_ring_unlink(name);
	ck_assert_int_eq(fails, 0);
}
END_TEST

static Suite *hostile_suite(void)
{
	Suite *s = suite_create("hostile");
	TCase *names = tu_tcase("names", 10);
	TCase *env = tu_tcase("environment", 20);
	TCase *paused = tu_tcase("paused", 20);

	tcase_add_test(names, squat_world_writable);
	tcase_add_test(names, squat_other_owner);
	tcase_add_test(names, squat_other_owner_garbage);
	tcase_add_test(names, squat_directory);
	tcase_add_test(names, symlink_to_ring_refused);
	tcase_add_test(names, symlink_dangling_not_followed);
	suite_add_tcase(s, names);
	tcase_add_test(env, truncated_under_reader);
	tcase_add_test(env, truncated_under_tap);
	tcase_add_test(env, enospc_in_small_tmpfs);
	tcase_add_test(env, exit_without_detach_leaves_ring_intact);
	tcase_add_test(env, forged_claim_does_not_send_reader_walking);
	tcase_add_test(env, forged_stale_metrics_block_ignored);
	tcase_add_test(env, forged_ring_without_metrics_feature);
	tcase_add_test(env, attach_probe_never_fails_a_create);
	suite_add_tcase(s, env);
	tcase_add_test(paused, producer_stopped_mid_encode);
	tcase_add_test(paused, gating_reader_stopped_is_not_reaped);
	tcase_add_test(paused, late_commit_after_real_death_multi);
	tcase_add_test(paused, late_commit_after_real_death_single);
	tcase_add_test(paused, late_commit_spares_new_owner_multi);
	tcase_add_test(paused, late_commit_spares_new_owner_single);
	suite_add_tcase(s, paused);
	return s;
}

int main(void)
{
	return tu_run(hostile_suite());
}
