/* SPDX-License-Identifier: MIT */
/*
 * Recovery edge cases: a late commit from a producer that was taken for
 * dead fails; a paused (not dead) producer is never reclaimed; a reader
 * stuck on a dead producer's slot recovers it by itself.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

/* Bitmap of the open descriptors of this process. */
static void fd_set_now(unsigned char *set, size_t n)
{
	struct dirent *d;
	DIR *dir = opendir("/proc/self/fd");

	memset(set, 0, n);
	ck_assert_ptr_nonnull(dir);
	while ((d = readdir(dir))) {
		long fd = strtol(d->d_name, NULL, 10);

		/* the listing's own descriptor is not ours to report */
		if (d->d_name[0] != '.' && fd != dirfd(dir) && fd >= 0 &&
		    (size_t)fd < n)
			set[fd] = 1;
	}
	closedir(dir);
}

/*
 * Open a producer and return the descriptor that holds its liveness lock
 * (the one descriptor pbr_producer_open adds). Closing it makes a live
 * producer look dead: the situation a late commit must survive.
 */
static struct pbr_producer *producer_with_lock_fd(struct pbr_ring *r, int *fd)
{
	unsigned char before[1024], after[1024];
	struct pbr_producer *p;
	int i;

	fd_set_now(before, sizeof(before));
	p = tu_producer(r, PBR_WAIT_BLOCK);
	fd_set_now(after, sizeof(after));
	*fd = -1;
	for (i = 0; i < 1024; i++)
		if (after[i] && !before[i] && *fd < 0)
			*fd = i;
	ck_assert_int_ge(*fd, 0);
	return p;
}

static void late_commit(uint32_t flags)
{
	const char *name = tu_name("late");
	struct pbr_ring *r = tu_create(name, 8, 256, flags, 0);
	struct pbr_reader *rd =
		tu_reader(r, 0, PBR_START_OLDEST, PBR_WAIT_BLOCK);
	struct pbr_reader_stats st;
	struct pbr_slot slot;
	struct pbr_producer *p;
	int fd;

	p = producer_with_lock_fd(r, &fd);
	tu_send_tag(p, 1);
	ck_assert_int_eq(pbr_producer_reserve(p, 0, &slot), 0);
	memset(slot.data, 0xab, 16);
	close(fd); /* the lock is gone: p now looks dead */
	ck_assert_int_ge(pbr_ring_reclaim(r), 1);
	ck_assert_int_eq(pbr_producer_commit(p, &slot, 16), -EOWNERDEAD);
	(void)pbr_producer_close(p);

	tu_recv_tag(rd, TU_SEC, 1);
	p = tu_producer(r, PBR_WAIT_BLOCK);
	tu_send_tag(p, 2);
	tu_recv_tag(rd, TU_SEC, 2);
	pbr_reader_stats(rd, &st);
	ck_assert_uint_eq(st.abandoned, 1);
	ck_assert_uint_eq(st.delivered, 2);
	(void)pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}

START_TEST(late_commit_multi_producer_fails)
{
	late_commit(0);
}
END_TEST

START_TEST(late_commit_single_producer_fails)
{
	late_commit(PBR_CREATE_SINGLE_PRODUCER);
}
END_TEST

/* A child producer that reserves, then stops itself until SIGCONT, then
 * commits tag 7. Exit 0 if the commit succeeded. */
static void paused_child(const char *name)
{
	struct pbr_ring *r;
	struct pbr_producer *p;
	struct pbr_slot slot;
	uint64_t buf[2] = {7, ~7ull};

	if (pbr_ring_attach(name, NULL, &r) || pbr_producer_open(r, NULL, &p) ||
	    pbr_producer_reserve(p, TU_SEC, &slot))
		_exit(3);
	memcpy(slot.data, buf, sizeof(buf));
	raise(SIGSTOP);
	/* cppcheck-suppress unreachableCode ; SIGSTOP returns on SIGCONT */
	_exit(pbr_producer_commit(p, &slot, sizeof(buf)) ? 4 : 0);
}

START_TEST(paused_producer_is_never_reclaimed)
{
	const char *name = tu_name("paused");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_reader *rd =
		tu_reader(r, 0, PBR_START_OLDEST, PBR_WAIT_BLOCK);
	struct pbr_reader_stats st;
	struct pbr_view v;
	int status;
	pid_t pid = tu_fork();

	if (pid == 0)
		paused_child(name);
	ck_assert_int_eq(waitpid(pid, &status, WUNTRACED), pid);
	ck_assert(WIFSTOPPED(status));
	/* Well past the liveness interval: still not reclaimed. */
	ck_assert_int_eq(pbr_reader_peek(rd, 200 * TU_MS, &v), -ETIMEDOUT);
	ck_assert_int_eq(pbr_ring_reclaim(r), 0);
	kill(pid, SIGCONT);
	tu_recv_tag(rd, 2 * TU_SEC, 7);
	ck_assert_int_eq(tu_exit_code(tu_wait(pid, 5000)), 0);
	pbr_reader_stats(rd, &st);
	ck_assert_uint_eq(st.abandoned, 0);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* The reader finds the dead producer's slot on its own: nobody calls
 * pbr_ring_reclaim and no producer reuses the dead one's entry. */
START_TEST(waiting_reader_recovers_dead_producer_slot)
{
	const char *name = tu_name("selfheal");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_reader *rd =
		tu_reader(r, 0, PBR_START_OLDEST, PBR_WAIT_BLOCK);
	struct pbr_producer *p = tu_producer(r, PBR_WAIT_BLOCK);
	struct pbr_reader_stats st;
	struct pbr_ring_stats rs;
	int pfd[2];
	char c;
	pid_t pid;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = tu_fork();
	if (pid == 0) {
		struct pbr_ring *r2;
		struct pbr_producer *p2;
		struct pbr_slot slot;

		if (pbr_ring_attach(name, NULL, &r2) ||
		    pbr_producer_open(r2, NULL, &p2) ||
		    pbr_producer_reserve(p2, TU_SEC, &slot))
			_exit(3);
		memset(slot.data, 0x5a,
		       32); /* half a message, never committed */
		if (write(pfd[1], "x", 1) != 1)
			_exit(4);
		pause();
		_exit(5);
	}
	ck_assert_int_eq(tu_read_full(pfd[0], &c, 1, 5000), 0);
	kill(pid, SIGKILL);
	tu_wait(pid, 5000);
	tu_send_tag(p, 42); /* sequence after the dead one's */
	tu_recv_tag(rd, 2 * TU_SEC, 42);
	pbr_reader_stats(rd, &st);
	pbr_ring_stats(r, &rs);
	ck_assert_uint_eq(st.abandoned, 1);
	ck_assert_uint_eq(rs.abandoned, 1);
	close(pfd[0]);
	close(pfd[1]);
	(void)pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* A multi-producer reserve on a full ring checks for space before its
 * fetch-add: it claims nothing, so closing it leaves no hole. */
START_TEST(reserve_on_full_ring_claims_nothing)
{
	const char *name = tu_name("closeclaim");
	struct pbr_ring *r = tu_create(name, 2, 256, 0, 0);
	struct pbr_reader *rd =
		tu_reader(r, 0, PBR_START_OLDEST, PBR_WAIT_BLOCK);
	struct pbr_producer *p = tu_producer(r, PBR_WAIT_BLOCK);
	struct pbr_producer *q = tu_producer(r, PBR_WAIT_BLOCK);
	struct pbr_reader_stats st;
	struct pbr_slot slot;

	tu_send_tag(p, 1);
	tu_send_tag(p, 2);
	ck_assert_int_eq(pbr_producer_reserve(q, 0, &slot), -EAGAIN);
	ck_assert_int_eq(pbr_producer_close(q), 0);
	tu_recv_tag(rd, TU_SEC, 1);
	tu_recv_tag(rd, TU_SEC, 2);
	tu_send_tag(p, 3);
	tu_recv_tag(rd, 2 * TU_SEC, 3);
	pbr_reader_stats(rd, &st);
	ck_assert_uint_eq(st.delivered, 3);
	ck_assert_uint_eq(st.abandoned, 0);
	(void)pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* A ring shrunk under our mapping: the reader and the producer get
 * -EUCLEAN instead of dying of SIGBUS. */
START_TEST(truncated_ring_reports_euclean_not_sigbus)
{
	const char *name = tu_name("trunc");
	struct pbr_ring *r = tu_create(name, 64, 1024, 0, 0);
	struct pbr_reader *rd =
		tu_reader(r, 0, PBR_START_OLDEST, PBR_WAIT_BLOCK);
	struct pbr_producer *p = tu_producer(r, PBR_WAIT_BLOCK);
	struct pbr_ring *again;
	struct pbr_view v;
	char path[128];
	int rc;

	tu_send_tag(p, 1);
	tu_recv_tag(rd, TU_SEC, 1);
	tu_path(name, path, sizeof(path));
	ck_assert_int_eq(truncate(path, 3 * 4096), 0); /* slots are gone */
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), -EUCLEAN);
	ck_assert_int_eq(pbr_reader_peek(rd, 10 * TU_MS, &v), -EUCLEAN);
	rc = pbr_producer_send(p, "x", 1, 0, 0);
	/* the send that touched the gone page may still pass; the next not */
	if (rc == 0)
		rc = pbr_producer_send(p, "x", 1, 0, 0);
	ck_assert_int_eq(rc, -EUCLEAN);
	ck_assert_int_eq(pbr_ring_attach(name, NULL, &again), -EUCLEAN);
	(void)pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

static Suite *recovery_suite(void)
{
	Suite *s = suite_create("recovery");
	TCase *tc = tu_tcase("recovery", 20);

	tcase_add_test(tc, late_commit_multi_producer_fails);
	tcase_add_test(tc, late_commit_single_producer_fails);
	tcase_add_test(tc, paused_producer_is_never_reclaimed);
	tcase_add_test(tc, waiting_reader_recovers_dead_producer_slot);
	tcase_add_test(tc, reserve_on_full_ring_claims_nothing);
	tcase_add_test(tc, truncated_ring_reports_euclean_not_sigbus);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(recovery_suite());
}
