/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the pbring Check suites.
 *
 * Ring names: every name a test uses comes from tu_name(), which makes it
 * unique ("t-<runner pid>-<test pid>-<n>-<tag>") and records it. The
 * checked teardown unlinks the recorded names. Check's fork mode exits the
 * test process on the first failed assertion without running the checked
 * teardown, so the runner process also sweeps every /dev/shm/pbring.t-<runner
 * pid>-* object after each test case and at the end (tu_run()).
 *
 * Forked helper processes (tu_fork()) must never call Check assertions:
 * they report through their exit status or a pipe and leave with _exit().
 */
#ifndef PBRING_TESTUTIL_H
#define PBRING_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pbring.h"

#define TU_MS 1000000ll
#define TU_SEC 1000000000ll

/* ctest's SKIP_RETURN_CODE for these suites. */
#define TU_SKIP 77

/* The object backing ring @name is /dev/shm/pbring.<name>. */
#define TU_SHM_DIR "/dev/shm/"
#define TU_SHM_PREFIX "pbring."

/* --- names and fixtures ------------------------------------------------ */

/* A fresh, valid, unique ring name (static storage, valid for the test). */
const char *tu_name(const char *tag);
/* "/dev/shm/pbring.<name>" into @buf. */
void tu_path(const char *name, char *buf, size_t n);
/* Checked fixture: forget names; unlink every name handed out. */
void tu_setup(void);
void tu_teardown(void);
/* Remove every object this runner's tests may have left behind. */
void tu_sweep(void);
/* A test case with the fixtures above and @timeout seconds per test. */
TCase *tu_tcase(const char *name, double timeout);
/* Run @s (CK_NORMAL); returns EXIT_SUCCESS, EXIT_FAILURE or TU_SKIP. */
int tu_run(Suite *s);

/* --- raw access to a segment, to read or corrupt it -------------------- */

struct tu_raw {
	int fd;
	size_t size; /* st_size at map time */
	uint8_t *base;
	struct pbr_layout_super *sb;
};

/* Map /dev/shm/pbring.<name> read-write. 0 or -errno. */
int tu_raw_map(const char *name, struct tu_raw *raw);
void tu_raw_unmap(struct tu_raw *raw);
/* Address of slot header for sequence @seq. */
struct pbr_layout_slot *tu_raw_slot(const struct tu_raw *raw, uint64_t seq);
struct pbr_layout_producer *tu_raw_producer(const struct tu_raw *raw,
					    uint32_t id);
struct pbr_layout_reader *tu_raw_reader(const struct tu_raw *raw, uint32_t idx);
/* Reader @idx's metrics block (format 1.2, FORMAT.md §5.5): after the
 * max_producers + max_readers entries, 256 bytes per reader. */
struct pbr_layout_metrics *tu_raw_metrics(const struct tu_raw *raw,
					  uint32_t idx);

/* --- ring shortcuts (they assert, so only for the test process) -------- */

struct pbr_ring *tu_create(const char *name, uint32_t slots, uint32_t slot_size,
			   uint32_t flags, uint64_t seq_base);
struct pbr_ring *tu_attach(const char *name);
struct pbr_producer *tu_producer(struct pbr_ring *r, enum pbr_wait w);
struct pbr_reader *tu_reader(struct pbr_ring *r, uint32_t flags, uint32_t start,
			     enum pbr_wait w);
/* Send a 16-byte payload that carries @tag (asserting success). */
void tu_send_tag(struct pbr_producer *p, uint64_t tag);
/* Peek one message, check it carries @tag, release it. Returns its seq. */
uint64_t tu_recv_tag(struct pbr_reader *rd, int64_t timeout_ns, uint64_t tag);
/* The tag of a payload written by tu_send_tag(). */
uint64_t tu_tag_of(const struct pbr_view *v);

/* --- processes, time, misc --------------------------------------------- */

/* fork(); the child is SIGKILLed if its parent dies (no orphan spinning). */
pid_t tu_fork(void);
/* Wait up to @timeout_ms for @pid; on expiry SIGKILL it. Returns the wait
 * status, or -1 if it had to be killed. */
int tu_wait(pid_t pid, int timeout_ms);
/* Exit code of a wait status, or a negative value if not a plain exit. */
int tu_exit_code(int status);
/* Read/write exactly @n bytes; read waits up to @timeout_ms. 0 or -errno. */
int tu_read_full(int fd, void *buf, size_t n, int timeout_ms);
int tu_write_full(int fd, const void *buf, size_t n);

uint64_t tu_now_ns(void);      /* CLOCK_MONOTONIC */
uint64_t tu_realtime_ns(void); /* CLOCK_REALTIME */
void tu_sleep_ms(unsigned ms);
uint32_t tu_crc32c(const void *buf, size_t len);
/* The latency bucket FORMAT.md §5.5 puts @ns in: bucket i (0..21) holds
 * b(i-1) < ns <= b(i) with b = 100 200 500 ... 1e9 ns, bucket 22 > 1 s.
 * Written from the document, not from PBR_LATENCY_BOUNDS_NS. */
unsigned tu_latency_bucket(uint64_t ns);
/* Observations in latency buckets @from..22 of @b (23 counts): those at
 * least as slow as bucket @from's lower bound. */
uint64_t tu_latency_from(const uint64_t *b, unsigned from);

/* Payload pattern used by the stress and protocol tests. */
uint8_t tu_pattern(uint32_t who, uint64_t count, uint32_t i);

#endif /* PBRING_TESTUTIL_H */
