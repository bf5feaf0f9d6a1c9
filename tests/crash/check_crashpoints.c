// SPDX-License-Identifier: MIT
/*
 * check_crashpoints: every named crash point, once, deterministically.
 *
 * Each case forks a helper that sets PBR_CRASH_AT=<point>:1 and runs the
 * step that passes the point, so it SIGKILLs itself exactly there; the
 * test process then checks that the ring recovers as FORMAT.md says: the
 * next producer and reader go on, a claimed but unpublished sequence
 * becomes exactly one abandoned record, a published one is delivered, and
 * a dead reader stops gating. Built against the library copy with the
 * crash points compiled in (tests/CMakeLists.txt, pbring_crash). The
 * random counterpart is the torture driver in this directory.
 *
 * Scenarios return NULL or why they failed rather than assert, so that
 * one test function runs every case with a precise message.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pbring/demo/v1/device.pb.h"
#include "testutil.h"
#include "pbring/pb.h"

#define SLOTS 8
#define SLOT_SIZE 256
#define PREFILL 10		  /* one lap and a bit: every slot has a past */
#define SEQ_BASE (UINT64_MAX - 3) /* and the sequences wrap meanwhile */
#define OP_TIMEOUT (2 * TU_SEC)

enum kind {
	K_PRODUCER,	 /* the helper producer dies sending tag 100 */
	K_READER,	 /* the helper gating reader dies reading */
	K_RECOVER,	 /* the helper reader dies recovering a dead slot */
	K_REAP_PRODUCER, /* the helper producer dies reaping its entry */
	K_REAP_READER,	 /* the helper producer dies reaping a reader */
	K_OVERSHOOT,	 /* a claim past the gating limit, its owner dead */
};

struct pcase {
	const char *point;
	uint32_t flags; /* PBR_CREATE_SINGLE_PRODUCER or 0 */
	enum kind kind;
	unsigned abandoned; /* slots the ring must count as abandoned */
	bool landed;	    /* the dying producer's message was committed */
};

#define SP PBR_CREATE_SINGLE_PRODUCER
static const struct pcase cases[] = {
	{"mp_claiming", 0, K_PRODUCER, 0, false},
	{"mp_claimed", 0, K_PRODUCER, 1, false},
	{"mp_pending", 0, K_PRODUCER, 1, false},
	{"busy", 0, K_PRODUCER, 1, false},
	{"write", 0, K_PRODUCER, 1, false},
	{"encoded", 0, K_PRODUCER, 1, false},
	{"header", 0, K_PRODUCER, 1, false},
	{"committed", 0, K_PRODUCER, 0, true},
	{"sp_pending", SP, K_PRODUCER, 0, false},
	{"sp_claimed", SP, K_PRODUCER, 1, false},
	{"busy", SP, K_PRODUCER, 1, false},
	{"write", SP, K_PRODUCER, 1, false},
	{"encoded", SP, K_PRODUCER, 1, false},
	{"header", SP, K_PRODUCER, 1, false},
	{"committed", SP, K_PRODUCER, 0, true},
	{"peeked", 0, K_READER, 0, false},
	{"release", 0, K_READER, 0, false},
	{"released", 0, K_READER, 0, false},
	{"recover", 0, K_RECOVER, 1, false},
	{"reap_producer", 0, K_REAP_PRODUCER, 1, false},
	{"reap_producer", SP, K_REAP_PRODUCER, 1, false},
	{"reap_reader", 0, K_REAP_READER, 0, false},
	/* point: who recovers the overshooting claim */
	{"pbr_ring_reclaim", 0, K_OVERSHOOT, 1, false},
	{"stuck reader", 0, K_OVERSHOOT, 1, false},
};
#define NCASES (int)(sizeof(cases) / sizeof(cases[0]))

/* --- soft checks ------------------------------------------------------- */

static char why[512];

static const char *failed(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static const char *failed(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return why;
}

#define EXPECT(cond, ...)                                                      \
	do {                                                                   \
		if (!(cond))                                                   \
			return failed(__VA_ARGS__);                            \
	} while (0)

#define TRY(expr)                                                              \
	do {                                                                   \
		const char *e_ = (expr);                                       \
		if (e_)                                                        \
			return e_;                                             \
	} while (0)

/* --- helpers -------------------------------------------------------------- */

static struct pbr_ring *make_ring(const char *name, const struct pcase *c)
{
	struct pbr_create_opts o = {
		.slot_count = SLOTS,
		.slot_size = SLOT_SIZE,
		.flags = c->flags,
		.seq_base = SEQ_BASE,
		/* reap_producer: the helper must take the dead one's entry */
		.max_producers = c->kind == K_REAP_PRODUCER || c->flags ? 1 : 4,
	};
	struct pbr_ring *r = NULL;

	ck_assert_int_eq(pbr_ring_create(name, &o, &r), 0);
	return r;
}

static int send_tag(struct pbr_producer *p, uint64_t tag)
{
	uint64_t buf[2] = {tag, ~tag};

	return pbr_producer_send(p, buf, sizeof(buf), 0, OP_TIMEOUT);
}

static int send_event(struct pbr_producer *p, uint64_t tag)
{
	pbring_demo_v1_DeviceEvent ev = pbring_demo_v1_DeviceEvent_init_zero;

	ev.seq = tag;
	return pbr_producer_send_pb(p, pbring_demo_v1_DeviceEvent_fields, &ev,
				    OP_TIMEOUT);
}

static const char *recv_tag(struct pbr_reader *rd, uint64_t tag)
{
	struct pbr_view v;
	int rc = pbr_reader_peek(rd, OP_TIMEOUT, &v);

	EXPECT(rc == 0, "waiting for tag %llu: peek gave %d (%s)",
	       (unsigned long long)tag, rc, pbr_strerror(rc));
	EXPECT(tu_tag_of(&v) == tag, "expected tag %llu, got %llu (len %u)",
	       (unsigned long long)tag, (unsigned long long)tu_tag_of(&v),
	       v.len);
	rc = pbr_reader_release(rd, &v);
	EXPECT(rc == 0, "release: %d (%s)", rc, pbr_strerror(rc));
	return NULL;
}

static const char *expect_sigkill(pid_t pid, const char *point)
{
	int st = tu_wait(pid, 5000);

	EXPECT(st != -1, "helper armed at %s never ended", point);
	EXPECT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	       "helper armed at %s did not die there: status %d (%d)", point,
	       st, tu_exit_code(st));
	return NULL;
}

/* Fork a helper that arms @point and runs @fn; it exits 0 if it lived. */
static pid_t helper(const char *name, const char *point,
		    void (*fn)(struct pbr_ring *r, int fd), int fd)
{
	pid_t pid = tu_fork();
	struct pbr_ring *r;
	char at[64];

	ck_assert_int_ge(pid, 0);
	if (pid)
		return pid;
	if (point) {
		snprintf(at, sizeof(at), "%s:1", point);
		setenv("PBR_CRASH_AT", at, 1);
	}
	if (pbr_ring_attach(name, NULL, &r))
		_exit(3);
	fn(r, fd);
	_exit(0);
}

static void say_ready(int fd)
{
	if (fd >= 0 && write(fd, "r", 1) != 1)
		_exit(4);
}

static void wait_ready(int fd)
{
	char c;

	ck_assert_int_eq(tu_read_full(fd, &c, 1, 5000), 0);
}

/* A producer that reserves, writes half a message and waits to die. */
static void half_writer(struct pbr_ring *r, int fd)
{
	struct pbr_producer *p;
	struct pbr_slot s;

	if (pbr_producer_open(r, NULL, &p) ||
	    pbr_producer_reserve(p, OP_TIMEOUT, &s))
		_exit(5);
	memset(s.data, 0xEE, 8);
	say_ready(fd);
	for (;;)
		pause();
}

/* Run @fn in a helper that the test kills once it is ready. */
static void dead_helper(const char *name, void (*fn)(struct pbr_ring *, int))
{
	int pfd[2];
	pid_t pid;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = helper(name, NULL, fn, pfd[1]);
	wait_ready(pfd[0]);
	kill(pid, SIGKILL);
	ck_assert_int_eq(tu_exit_code(tu_wait(pid, 5000)), -SIGKILL);
	close(pfd[0]);
	close(pfd[1]);
}

static const char *check_abandoned(struct pbr_ring *r, struct pbr_reader *rd,
				   unsigned want)
{
	struct pbr_reader_stats st;
	struct pbr_ring_stats rs;

	pbr_ring_stats(r, &rs);
	EXPECT(rs.abandoned == want,
	       "ring counts %llu abandoned slots, want %u",
	       (unsigned long long)rs.abandoned, want);
	if (!rd)
		return NULL;
	pbr_reader_stats(rd, &st);
	EXPECT(st.abandoned == want, "reader passed %llu abandoned, want %u",
	       (unsigned long long)st.abandoned, want);
	return NULL;
}

/* --- producer points ------------------------------------------------------ */

static const char *dying_point; /* the case's point, for the helpers */

static void dying_producer(struct pbr_ring *r, int fd)
{
	struct pbr_producer *p;

	(void)fd;
	if (pbr_producer_open(r, NULL, &p))
		_exit(5);
	if (!strcmp(dying_point, "encoded"))
		(void)!send_event(p, 100);
	else
		(void)!send_tag(p, 100);
}

/* The reader passes what the dead left (after the liveness interval), and
 * no further: not past the claim word, into sequences nobody claimed. */
static const char *nothing_unclaimed(struct pbr_ring *r, struct pbr_reader *rd)
{
	struct pbr_reader_stats st;
	struct pbr_ring_stats rs;
	struct pbr_view v;
	int rc = pbr_reader_peek(rd, 50 * TU_MS, &v);

	EXPECT(rc == -ETIMEDOUT, "reader: peek gave %d (%s), want nothing", rc,
	       pbr_strerror(rc));
	pbr_reader_stats(rd, &st);
	pbr_ring_stats(r, &rs);
	EXPECT(st.cursor == rs.claimed,
	       "reader cursor at %+lld from the claim word, want 0",
	       (long long)(st.cursor - rs.claimed));
	return NULL;
}

/* One lap and a bit through the ring, so that slots hold old messages. */
static const char *prefill(struct pbr_ring *r, struct pbr_reader *rd)
{
	struct pbr_producer *p;
	uint64_t i;
	int rc;

	EXPECT(pbr_producer_open(r, NULL, &p) == 0, "prefill: open");
	for (i = 0; i < PREFILL; i++) {
		rc = send_tag(p, i);
		EXPECT(rc == 0, "prefill send: %s", pbr_strerror(rc));
		TRY(recv_tag(rd, i));
	}
	EXPECT(pbr_producer_close(p) == 0, "prefill: close");
	return NULL;
}

static const char *producer_case(const char *name, const struct pcase *c)
{
	struct pbr_ring *r = make_ring(name, c);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p;
	int rc;

	TRY(prefill(r, rd));
	dying_point = c->point;
	TRY(expect_sigkill(helper(name, c->point, dying_producer, -1),
			   c->point));
	rc = pbr_producer_open(r, NULL, &p);
	EXPECT(rc == 0, "next producer: open gave %d (%s)", rc,
	       pbr_strerror(rc));
	if (c->landed)
		TRY(recv_tag(rd, 100));
	TRY(nothing_unclaimed(r, rd));
	rc = send_tag(p, 101);
	EXPECT(rc == 0, "next producer: send gave %d (%s)", rc,
	       pbr_strerror(rc));
	TRY(recv_tag(rd, 101));
	return check_abandoned(r, rd, c->abandoned);
}

/* --- reader points ------------------------------------------------------- */

static void dying_reader(struct pbr_ring *r, int fd)
{
	struct pbr_reader_opts o = {.start = PBR_START_OLDEST};
	struct pbr_reader *rd;
	struct pbr_view v;

	if (pbr_reader_open(r, &o, &rd))
		_exit(5);
	say_ready(fd);
	while (pbr_reader_peek(rd, OP_TIMEOUT, &v) == 0)
		(void)!pbr_reader_release(rd, &v);
}

static const char *reader_case(const char *name, const struct pcase *c)
{
	struct pbr_ring *r = make_ring(name, c);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_ring_stats rs;
	int pfd[2], rc, i;
	pid_t pid;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = helper(name, c->point, dying_reader, pfd[1]);
	wait_ready(pfd[0]);
	EXPECT(send_tag(p, 1) == 0, "first send");
	TRY(expect_sigkill(pid, c->point));
	/* Two laps: only possible once the dead reader stops gating. */
	for (i = 0; i < 2 * SLOTS; i++) {
		rc = send_tag(p, 2 + i);
		EXPECT(rc == 0, "send %d past the dead reader: %d (%s)", i, rc,
		       pbr_strerror(rc));
	}
	pbr_ring_stats(r, &rs);
	EXPECT(rs.readers_reaped == 1, "readers reaped: %llu",
	       (unsigned long long)rs.readers_reaped);
	return check_abandoned(r, NULL, 0);
}

/* --- recovery points ------------------------------------------------------ */

static void stuck_reader(struct pbr_ring *r, int fd)
{
	struct pbr_reader_opts o = {.start = PBR_START_OLDEST};
	struct pbr_reader *rd;
	struct pbr_view v;

	(void)fd;
	if (pbr_reader_open(r, &o, &rd))
		_exit(5);
	/* Stuck on the dead producer's slot: recovers it after 20 ms. */
	(void)!pbr_reader_peek(rd, OP_TIMEOUT, &v);
}

static void reaping_producer(struct pbr_ring *r, int fd)
{
	struct pbr_producer *p;

	(void)fd;
	(void)!pbr_producer_open(r, NULL, &p);
}

/* A dead half-writer, then a helper that dies recovering its slot (in a
 * reader's wait, or reaping its entry at open): the next ones finish. */
static const char *recovery_case(const char *name, const struct pcase *c)
{
	struct pbr_ring *r = make_ring(name, c);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p;
	int rc;

	dead_helper(name, half_writer);
	TRY(expect_sigkill(
		helper(name, c->point,
		       c->kind == K_RECOVER ? stuck_reader : reaping_producer,
		       -1),
		c->point));
	rc = pbr_producer_open(r, NULL, &p);
	EXPECT(rc == 0, "next producer: open gave %d (%s)", rc,
	       pbr_strerror(rc));
	rc = send_tag(p, 7);
	EXPECT(rc == 0, "next producer: send gave %d (%s)", rc,
	       pbr_strerror(rc));
	TRY(recv_tag(rd, 7));
	return check_abandoned(r, rd, c->abandoned);
}

static void idle_reader(struct pbr_ring *r, int fd)
{
	struct pbr_reader_opts o = {.start = PBR_START_OLDEST};
	struct pbr_reader *rd;

	if (pbr_reader_open(r, &o, &rd))
		_exit(5);
	say_ready(fd);
	for (;;)
		pause();
}

static void filling_producer(struct pbr_ring *r, int fd)
{
	struct pbr_producer *p;
	int i;

	(void)fd;
	if (pbr_producer_open(r, NULL, &p))
		_exit(5);
	/* Past a full ring: waits on the dead reader, then reaps it. */
	for (i = 0; i < 2 * SLOTS; i++)
		if (send_tag(p, (uint64_t)i))
			_exit(6);
}

static const char *reap_reader_case(const char *name, const struct pcase *c)
{
	struct pbr_ring *r = make_ring(name, c);
	struct pbr_producer *p;
	struct pbr_ring_stats rs;
	int i, rc;

	dead_helper(name, idle_reader);
	TRY(expect_sigkill(helper(name, c->point, filling_producer, -1),
			   c->point));
	p = tu_producer(r, 0);
	for (i = 0; i < 2 * SLOTS; i++) {
		rc = send_tag(p, 100 + i);
		EXPECT(rc == 0, "send %d past the dead reader: %d (%s)", i, rc,
		       pbr_strerror(rc));
	}
	pbr_ring_stats(r, &rs);
	EXPECT(rs.readers_reaped == 1, "readers reaped: %llu",
	       (unsigned long long)rs.readers_reaped);
	return NULL;
}

/* --- a claim past the gating limit --------------------------------------- */

static void idle_producer(struct pbr_ring *r, int fd)
{
	struct pbr_producer *p;

	if (pbr_producer_open(r, NULL, &p))
		_exit(5);
	say_ready(fd);
	for (;;)
		pause();
}

/*
 * Make the state a producer leaves when it dies at mp_claimed or
 * mp_pending right after a fetch-add that overshot the gating limit (two
 * producers passing the optional pre-check of FORMAT 7.1 together do
 * that; the torture soak met it): a dead entry whose pending word names
 * the claimed sequence s, while a gating reader still holds s - N. The
 * crash points themselves cannot make the overshoot, so the claim and the
 * pending word are written here, as that producer would have.
 */
static uint64_t overshoot(const char *name, struct pbr_ring *r)
{
	struct pbr_participant pt[4];
	struct tu_raw raw;
	uint64_t s;
	int i, n;

	dead_helper(name, idle_producer);
	n = pbr_ring_participants(r, pt, 4);
	for (i = 0; i < n && (pt[i].is_reader || pt[i].alive); i++)
		;
	ck_assert_int_lt(i, n);
	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	s = __atomic_fetch_add(
		(uint64_t *)(raw.base + raw.sb->control_off + PBR_CTL_CLAIM), 1,
		__ATOMIC_ACQ_REL);
	__atomic_store_n(&tu_raw_producer(&raw, pt[i].index)->pending,
			 PBR_PENDING_SEQ(s), __ATOMIC_RELEASE);
	tu_raw_unmap(&raw);
	return s;
}

/* Recovery of s must wait until the slow gating reader released s - N:
 * it reads all N old messages, then passes s as abandoned. */
static const char *overshoot_case(const char *name, const struct pcase *c)
{
	struct pbr_ring *r = make_ring(name, c);
	struct pbr_reader *slow = tu_reader(r, 0, PBR_START_OLDEST, 0);
	struct pbr_producer *p = tu_producer(r, 0);
	struct pbr_reader *ahead;
	struct pbr_view v;
	uint64_t i;

	for (i = 0; i < SLOTS; i++) /* full: the slow reader read nothing */
		EXPECT(send_tag(p, i) == 0, "fill");
	ahead = tu_reader(r, 0, PBR_START_LATEST, 0);
	overshoot(name, r);
	if (!strcmp(c->point, "pbr_ring_reclaim"))
		EXPECT(pbr_ring_reclaim(r) == 1, "reclaim did not reap");
	else /* waits at s, past the liveness interval: recovers s */
		(void)!pbr_reader_peek(ahead, 100 * TU_MS, &v);
	for (i = 0; i < SLOTS; i++)
		TRY(recv_tag(slow, i));
	EXPECT(pbr_reader_peek(slow, 100 * TU_MS, &v) == -ETIMEDOUT,
	       "something after the abandoned slot");
	return check_abandoned(r, slow, c->abandoned);
}

/* --- the cases ----------------------------------------------------------- */

static const char *run_case(const struct pcase *c)
{
	const char *name = tu_name("cp");

	switch (c->kind) {
	case K_PRODUCER:
		return producer_case(name, c);
	case K_READER:
		return reader_case(name, c);
	case K_RECOVER:
	case K_REAP_PRODUCER:
		return recovery_case(name, c);
	case K_REAP_READER:
		return reap_reader_case(name, c);
	case K_OVERSHOOT:
		return overshoot_case(name, c);
	}
	return "unknown case";
}

START_TEST(crash_point)
{
	const struct pcase *c = &cases[_i];
	const char *ring = c->flags ? "single-producer" : "multi-producer";
	const char *err = run_case(c);

	ck_assert_msg(!err, "%s (%s ring): %s", c->point, ring, err);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("crashpoints");
	TCase *tc = tu_tcase("points", 20);

	tcase_add_loop_test(tc, crash_point, 0, NCASES);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
