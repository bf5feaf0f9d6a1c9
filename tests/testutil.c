// SPDX-License-Identifier: MIT
/* Helpers shared by the pbring Check suites; see testutil.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* OFD locks, prctl, mkfifo: also set by the build */
#endif
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TU_MAX_NAMES 32

/* Set in the runner; forked test processes inherit it. */
static pid_t tu_runner_pid;
static unsigned tu_counter;
static unsigned tu_nnames;
static char tu_names[TU_MAX_NAMES][PBR_NAME_MAX + 1];

static void tu_prefix(char *buf, size_t n)
{
	snprintf(buf, n, "t-%d-", (int)tu_runner_pid);
}

const char *tu_name(const char *tag)
{
	char *dst;

	ck_assert_msg(tu_nnames < TU_MAX_NAMES, "too many ring names");
	dst = tu_names[tu_nnames++];
	/* The test pid keeps names apart between forked tests, whose counter
	 * restarts from the runner's value each time. */
	snprintf(dst, PBR_NAME_MAX + 1, "t-%d-%d-%u-%s", (int)tu_runner_pid,
		 (int)getpid(), tu_counter++, tag);
	return dst;
}

void tu_path(const char *name, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s%s", TU_SHM_DIR, TU_SHM_PREFIX, name);
}

void tu_setup(void)
{
	tu_nnames = 0;
}

void tu_teardown(void)
{
	char path[128];
	unsigned i;

	for (i = 0; i < tu_nnames; i++) {
		/* The library may be what is under test: remove the file
		 * directly too, whatever pbr_ring_unlink() did. */
		(void)!pbr_ring_unlink(tu_names[i]);
		tu_path(tu_names[i], path, sizeof(path));
		unlink(path);
	}
	tu_nnames = 0;
}

void tu_sweep(void)
{
	char want[64], full[128];
	struct dirent *de;
	size_t n;
	DIR *d;

	tu_prefix(want, sizeof(want));
	snprintf(full, sizeof(full), "%s%s", TU_SHM_PREFIX, want);
	n = strlen(full);
	d = opendir(TU_SHM_DIR);
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, full, n) == 0)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

TCase *tu_tcase(const char *name, double timeout)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
	/* Runs in the runner process, so it also cleans up after a test
	 * that died on a failed assertion or a timeout. */
	tcase_add_unchecked_fixture(tc, NULL, tu_sweep);
	tcase_set_timeout(tc, timeout);
	return tc;
}

static int tu_shm_usable(void)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s%sprobe-%d", TU_SHM_DIR, TU_SHM_PREFIX,
		 (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return 0;
	close(fd);
	unlink(path);
	return 1;
}

int tu_run(Suite *s)
{
	SRunner *sr;
	int failed;

	tu_runner_pid = getpid();
	if (!tu_shm_usable()) {
		fprintf(stderr, "SKIP: %s is not writable\n", TU_SHM_DIR);
		srunner_free(srunner_create(s)); /* frees the suite */
		return TU_SKIP;
	}
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	tu_sweep();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* --- raw access -------------------------------------------------------- */

int tu_raw_map(const char *name, struct tu_raw *raw)
{
	char path[128];
	struct stat st;
	void *p;

	memset(raw, 0, sizeof(*raw));
	raw->fd = -1;
	tu_path(name, path, sizeof(path));
	raw->fd = open(path, O_RDWR | O_CLOEXEC);
	if (raw->fd < 0)
		return -errno;
	if (fstat(raw->fd, &st) < 0 || st.st_size < (off_t)PBR_PAGE) {
		close(raw->fd);
		raw->fd = -1;
		return -EUCLEAN;
	}
	p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, raw->fd,
		 0);
	if (p == MAP_FAILED) {
		int err = -errno;

		close(raw->fd);
		raw->fd = -1;
		return err;
	}
	raw->size = st.st_size;
	raw->base = p;
	raw->sb = p;
	return 0;
}

void tu_raw_unmap(struct tu_raw *raw)
{
	if (raw->base)
		munmap(raw->base, raw->size);
	if (raw->fd >= 0)
		close(raw->fd);
	memset(raw, 0, sizeof(*raw));
	raw->fd = -1;
}

struct pbr_layout_slot *tu_raw_slot(const struct tu_raw *raw, uint64_t seq)
{
	uint64_t i = seq & (raw->sb->slot_count - 1);

	return (void *)(raw->base + raw->sb->slots_off +
			i * raw->sb->slot_size);
}

struct pbr_layout_producer *tu_raw_producer(const struct tu_raw *raw,
					    uint32_t id)
{
	return (void *)(raw->base + raw->sb->participants_off +
			(uint64_t)id * PBR_ENTRY_SIZE);
}

struct pbr_layout_reader *tu_raw_reader(const struct tu_raw *raw, uint32_t idx)
{
	/* Producers first, then readers (layout.h). */
	uint64_t n = (uint64_t)raw->sb->max_producers + idx;

	return (void *)(raw->base + raw->sb->participants_off +
			n * PBR_ENTRY_SIZE);
}

struct pbr_layout_metrics *tu_raw_metrics(const struct tu_raw *raw,
					  uint32_t idx)
{
	uint64_t entries =
		(uint64_t)raw->sb->max_producers + raw->sb->max_readers;

	return (void *)(raw->base + raw->sb->participants_off + entries * 128 +
			(uint64_t)idx * 256);
}

/* --- ring shortcuts ---------------------------------------------------- */

struct pbr_ring *tu_create(const char *name, uint32_t slots, uint32_t slot_size,
			   uint32_t flags, uint64_t seq_base)
{
	struct pbr_create_opts o = {
		.slot_count = slots,
		.slot_size = slot_size,
		.flags = flags,
		.seq_base = seq_base,
	};
	struct pbr_ring *r = NULL;
	int rc = pbr_ring_create(name, &o, &r);

	ck_assert_msg(rc == 0, "pbr_ring_create(%s): %d %s", name, rc,
		      pbr_strerror(rc));
	ck_assert_ptr_nonnull(r);
	return r;
}

struct pbr_ring *tu_attach(const char *name)
{
	struct pbr_ring *r = NULL;
	int rc = pbr_ring_attach(name, NULL, &r);

	ck_assert_msg(rc == 0, "pbr_ring_attach(%s): %d %s", name, rc,
		      pbr_strerror(rc));
	ck_assert_ptr_nonnull(r);
	return r;
}

struct pbr_producer *tu_producer(struct pbr_ring *r, enum pbr_wait w)
{
	struct pbr_producer_opts o = {.wait = w};
	struct pbr_producer *p = NULL;
	int rc = pbr_producer_open(r, &o, &p);

	ck_assert_msg(rc == 0, "pbr_producer_open: %d %s", rc,
		      pbr_strerror(rc));
	ck_assert_ptr_nonnull(p);
	return p;
}

struct pbr_reader *tu_reader(struct pbr_ring *r, uint32_t flags, uint32_t start,
			     enum pbr_wait w)
{
	struct pbr_reader_opts o = {.flags = flags, .start = start, .wait = w};
	struct pbr_reader *rd = NULL;
	int rc = pbr_reader_open(r, &o, &rd);

	ck_assert_msg(rc == 0, "pbr_reader_open: %d %s", rc, pbr_strerror(rc));
	ck_assert_ptr_nonnull(rd);
	return rd;
}

void tu_send_tag(struct pbr_producer *p, uint64_t tag)
{
	uint64_t buf[2] = {tag, ~tag};
	int rc = pbr_producer_send(p, buf, sizeof(buf), 0, 0);

	ck_assert_msg(rc == 0, "send tag %llu: %d %s", (unsigned long long)tag,
		      rc, pbr_strerror(rc));
}

uint64_t tu_tag_of(const struct pbr_view *v)
{
	uint64_t buf[2];

	if (v->len != sizeof(buf))
		return UINT64_MAX;
	memcpy(buf, v->data, sizeof(buf));
	if (buf[1] != ~buf[0])
		return UINT64_MAX - 1;
	return buf[0];
}

uint64_t tu_recv_tag(struct pbr_reader *rd, int64_t timeout_ns, uint64_t tag)
{
	struct pbr_view v;
	int rc = pbr_reader_peek(rd, timeout_ns, &v);

	ck_assert_msg(rc == 0, "peek for tag %llu: %d %s",
		      (unsigned long long)tag, rc, pbr_strerror(rc));
	ck_assert_uint_eq(v.len, 16);
	ck_assert_uint_eq(tu_tag_of(&v), tag);
	rc = pbr_reader_release(rd, &v);
	ck_assert_msg(rc == 0, "release: %d %s", rc, pbr_strerror(rc));
	return v.seq;
}

/* --- processes --------------------------------------------------------- */

pid_t tu_fork(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* The parent may have died before prctl took effect. */
		if (getppid() != parent)
			_exit(99);
	}
	return pid;
}

int tu_wait(pid_t pid, int timeout_ms)
{
	uint64_t end = tu_now_ns() + (uint64_t)timeout_ms * TU_MS;
	int status;

	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			return status;
		if (w < 0 && errno != EINTR)
			return -1;
		if (tu_now_ns() > end)
			break;
		tu_sleep_ms(2);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

int tu_exit_code(int status)
{
	if (status == -1)
		return -1000; /* timed out and killed */
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return -WTERMSIG(status);
	return -2000;
}

int tu_read_full(int fd, void *buf, size_t n, int timeout_ms)
{
	uint8_t *p = buf;

	while (n) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t got;
		int rc = poll(&pfd, 1, timeout_ms);

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -errno;
		if (rc == 0)
			return -ETIMEDOUT;
		got = read(fd, p, n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			return -EPIPE;
		p += got;
		n -= got;
	}
	return 0;
}

int tu_write_full(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n) {
		ssize_t put = write(fd, p, n);

		if (put < 0 && errno == EINTR)
			continue;
		if (put < 0)
			return -errno;
		p += put;
		n -= put;
	}
	return 0;
}

/* --- time and misc ----------------------------------------------------- */

uint64_t tu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * TU_SEC + ts.tv_nsec;
}

uint64_t tu_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * TU_SEC + ts.tv_nsec;
}

void tu_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (long)(ms % 1000) * TU_MS};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

uint32_t tu_crc32c(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t crc = ~0u;
	int k;

	/* Bitwise CRC32C (Castagnoli, reflected): slow, obviously right. */
	while (len--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
	}
	return ~crc;
}

unsigned tu_latency_bucket(uint64_t ns)
{
	/* FORMAT.md §5.5: 1, 2, 5 per decade from 100 ns to 1 s. */
	static const uint64_t b[22] = {
		100,	   200,	      500,	 1000,	    2000,     5000,
		10000,	   20000,     50000,	 100000,    200000,   500000,
		1000000,   2000000,   5000000,	 10000000,  20000000, 50000000,
		100000000, 200000000, 500000000, 1000000000};
	unsigned i = 0;

	while (i < 22 && ns > b[i])
		i++;
	return i;
}

uint64_t tu_latency_from(const uint64_t *b, unsigned from)
{
	uint64_t n = 0;

	for (; from < 23; from++)
		n += b[from];
	return n;
}

uint8_t tu_pattern(uint32_t who, uint64_t count, uint32_t i)
{
	uint64_t x = (uint64_t)who * 0x9E3779B97F4A7C15ull ^
		     count * 0xC2B2AE3D27D4EB4Full ^
		     (uint64_t)i * 0x165667B1ull;

	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 32;
	return (uint8_t)x;
}
