// SPDX-License-Identifier: MIT
/*
 * torture children: a producer, a gating reader or a lossy reader, each a
 * process of its own that attaches by ring name, so that its liveness locks
 * are its own and die with it.
 *
 * Producer: it knows what it committed because it appends every counter
 * whose commit returned 0 to its log (one write() before the next
 * reserve). When it is killed, at most one counter, the one after the last
 * logged, was in flight: it may or may not have landed. A restarted
 * producer therefore skips it (it logs a restart mark and continues two
 * past the last logged counter), so that counter is delivered at most once
 * or not at all, and no counter is ever sent twice.
 *
 * Readers: each delivery is copied out, released, and only then checked
 * (a lossy reader's copy may be torn by an overwrite that release then
 * reports as -ESTALE; such a copy is discarded, not judged). The checks
 * made here survive a kill because they go straight to the shared page:
 * torn payloads and, per incarnation, a counter of a producer that does
 * not go up. The first incarnation of a gating reader also writes every
 * delivery to its stream file, for the exactly-once check at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"
#include "torture.h"

#define OP_TIMEOUT (10 * TU_SEC) /* longer than any honest wait */
#define PEEK_TIMEOUT (50 * TU_MS)
#define MAX_COMPLAINTS 5

struct tt_shared *tt_shared_map(const char *dir, bool create)
{
	char path[300];
	void *m;
	int fd;

	snprintf(path, sizeof(path), "%s/shared", dir);
	fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0),
		  0600);
	if (fd < 0)
		return NULL;
	if (create && ftruncate(fd, sizeof(struct tt_shared)) < 0) {
		close(fd);
		return NULL;
	}
	m = mmap(NULL, sizeof(struct tt_shared), PROT_READ | PROT_WRITE,
		 MAP_SHARED, fd, 0);
	close(fd);
	return m == MAP_FAILED ? NULL : m;
}

static int attach(const struct tt_config *cf, struct pbr_ring **r)
{
	int rc = pbr_ring_attach(cf->ring, NULL, r);

	if (rc)
		fprintf(stderr, "torture child: attach %s: %s\n", cf->ring,
			pbr_strerror(rc));
	return rc;
}

/* --- producers ----------------------------------------------------------- */

/* Open (or create) producer @who's log; return the counter to use next,
 * after the one a dead predecessor may have had in flight. */
static int log_resume(const struct tt_config *cf, unsigned who, uint64_t *next)
{
	char path[300];
	uint64_t rec = 0, mark;
	off_t end;
	int fd;

	snprintf(path, sizeof(path), "%s/prod-%u.log", cf->dir, who);
	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	/* Records only grow, so the last one bounds everything logged. A
	 * kill cannot split an 8-byte write within one page. */
	end = lseek(fd, 0, SEEK_END) / 8 * 8;
	*next = 0;
	if (end > 0 && pread(fd, &rec, 8, end - 8) == 8)
		*next = (rec & TT_MARK) ? (rec & ~TT_MARK) + 1 : rec + 2;
	mark = TT_MARK | *next;
	if (tu_write_full(fd, &mark, sizeof(mark))) {
		close(fd);
		return -EIO;
	}
	return fd;
}

static int open_producer(struct pbr_ring *r, struct pbr_producer **p)
{
	int rc, tries;

	/* -EBUSY only while a prober holds an entry lock for a moment. */
	for (tries = 0; tries < 100; tries++) {
		rc = pbr_producer_open(r, NULL, p);
		if (rc != -EBUSY)
			break;
		tu_sleep_ms(10);
	}
	if (rc)
		fprintf(stderr, "torture producer: open: %s\n",
			pbr_strerror(rc));
	return rc;
}

/*
 * --inject: a deliberate fault every INJECT_EVERY messages, to show that
 * the checks catch it: "lost" logs a counter as committed without
 * sending it, "dup" sends a counter twice, "torn" sends a payload whose
 * bytes disagree with its checksum. Returns what send gave, or 0.
 */
#define INJECT_EVERY 97

static int inject(const struct tt_config *cf, struct pbr_producer *p,
		  uint32_t cap, unsigned who, uint64_t c, bool *skip)
{
	*skip = false;
	if (!cf->inject || c % INJECT_EVERY != INJECT_EVERY / 2)
		return 0;
	if (!strcmp(cf->inject, "lost")) {
		*skip = true;
		return 0;
	}
	if (!strcmp(cf->inject, "dup"))
		return tt_send(p, cap, who, c, OP_TIMEOUT, false);
	*skip = !strcmp(cf->inject, "torn");
	return *skip ? tt_send(p, cap, who, c, OP_TIMEOUT, true) : 0;
}

static int send_one(const struct tt_config *cf, struct pbr_producer *p,
		    uint32_t cap, unsigned who, uint64_t c)
{
	bool skip;
	int rc = inject(cf, p, cap, who, c, &skip);

	if (!rc && !skip)
		rc = tt_send(p, cap, who, c, OP_TIMEOUT, false);
	if (rc)
		fprintf(stderr, "torture producer %u: send %llu: %d %s\n", who,
			(unsigned long long)c, rc, pbr_strerror(rc));
	return rc;
}

static int produce(const struct tt_config *cf, struct tt_shared *sh,
		   struct pbr_producer *p, uint32_t cap, unsigned who, int log,
		   uint64_t c)
{
	int rc;

	for (; !atomic_load(&sh->stop); c++) {
		rc = send_one(cf, p, cap, who, c);
		if (rc)
			return rc == -ETIMEDOUT ? TT_EX_STUCK : TT_EX_SEND;
		/* Logged before the next reserve: a kill from here on
		 * leaves nothing in flight. */
		if (tu_write_full(log, &c, sizeof(c)))
			return TT_EX_SETUP;
		if (cf->rate && (c + 1) % cf->rate == 0)
			tu_sleep_ms(1);
	}
	return TT_EX_OK;
}

static int producer_main(const struct tt_config *cf, struct tt_shared *sh,
			 unsigned who)
{
	struct pbr_producer *p = NULL;
	struct pbr_ring_info info;
	struct pbr_ring *r;
	uint64_t next = 0;
	int log, rc;

	if (attach(cf, &r))
		return TT_EX_SETUP;
	log = log_resume(cf, who, &next);
	if (log < 0 || open_producer(r, &p))
		return TT_EX_SETUP;
	pbr_ring_info(r, &info);
	rc = produce(cf, sh, p, info.payload_cap, who, log, next);
	close(log);
	if (rc == TT_EX_OK && pbr_producer_close(p))
		rc = TT_EX_SEND;
	pbr_ring_detach(r);
	return rc;
}

/* --- readers ------------------------------------------------------------- */

struct reader {
	const struct tt_config *cf;
	struct tt_shared *sh;
	struct tt_reader_stats *st;
	struct pbr_ring *r;
	struct pbr_reader *rd;
	uint32_t cap;
	bool lossy, hist, witness;
	unsigned index, pause_odds, complaints;
	FILE *stream;
	uint64_t lost, abandoned, missed; /* already added to st */
	_Atomic uint64_t *missed_st;
	uint64_t cursor;   /* before the current peek */
	struct tu_raw raw; /* witnesses: to explain a loss */
	uint64_t last[TT_MAX_PROD];
	bool seen[TT_MAX_PROD];
	uint8_t buf[PBR_SLOT_SIZE_MAX < 65536 ? PBR_SLOT_SIZE_MAX : 65536];
};

static void complain(struct reader *x, const char *what,
		     const struct pbr_view *v)
{
	if (x->complaints++ >= MAX_COMPLAINTS)
		return;
	fprintf(stderr,
		"torture %s reader %u: %s at seq %llu (len %u, producer %u, "
		"flags 0x%x)\n",
		x->lossy ? "lossy" : "gating", x->index, what,
		(unsigned long long)v->seq, v->len, v->producer, v->flags);
}

/*
 * A witness never loses anything, so a loss the library reports means it
 * found a later lap's record in a slot it had not released. Say which
 * record: an abandoned one was written by a recovery, a published one by a
 * producer that did not wait for this reader.
 */
static void explain_loss(struct reader *x, uint64_t n)
{
	static const char *state[] = {"EMPTY", "DONE", "ABANDONED", "BUSY"};
	struct pbr_layout_slot *h;
	uint64_t v;

	if (!x->raw.base)
		return;
	h = tu_raw_slot(&x->raw, x->cursor);
	v = __atomic_load_n(&h->commit, __ATOMIC_ACQUIRE);
	fprintf(stderr,
		"torture witness %u: the library skipped %llu sequences at "
		"%llu, whose slot now holds %s of sequence %+lld from it\n",
		x->index, (unsigned long long)n, (unsigned long long)x->cursor,
		state[v & 3], (long long)((((v >> 2) - x->cursor) << 2) >> 2));
}

/* Move this incarnation's reader counters into the shared page. */
static void sync_stats(struct reader *x)
{
	struct pbr_reader_stats rs;

	pbr_reader_stats(x->rd, &rs);
	if (x->witness && rs.lost != x->lost)
		explain_loss(x, rs.lost - x->lost);
	atomic_fetch_add(&x->st->lost, rs.lost - x->lost);
	atomic_fetch_add(&x->st->abandoned, rs.abandoned - x->abandoned);
	atomic_fetch_add(x->missed_st, rs.missed - x->missed);
	x->lost = rs.lost;
	x->abandoned = rs.abandoned;
	x->missed = rs.missed;
}

static void note_time(struct reader *x)
{
	uint64_t now = tu_now_ns(), n;

	atomic_store(&x->st->last_ns, now);
	if (!x->hist)
		return;
	n = atomic_load(&x->sh->hist_n);
	atomic_store(&x->sh->hist_ns[n % TT_HIST], now);
	atomic_store(&x->sh->hist_n, n + 1);
}

static int record(struct reader *x, uint32_t who, uint64_t c)
{
	uint8_t rec[12];

	if (x->seen[who] && c <= x->last[who])
		atomic_fetch_add(&x->st->dup, 1);
	x->seen[who] = true;
	x->last[who] = c;
	atomic_fetch_add(&x->st->delivered, 1);
	note_time(x);
	if (!x->stream)
		return 0;
	memcpy(rec, &who, 4);
	memcpy(rec + 4, &c, 8);
	return fwrite(rec, sizeof(rec), 1, x->stream) == 1 ? 0 : TT_EX_SETUP;
}

static int deliver(struct reader *x, struct pbr_view *v)
{
	uint64_t before = atomic_load(&x->st->dup);
	uint32_t who;
	uint64_t c;
	int rc;

	v->data = x->buf;
	if (tt_verify(v, x->cap, x->cf->producers, &who, &c)) {
		atomic_fetch_add(&x->st->torn, 1);
		complain(x, "torn or foreign message", v);
		return 0;
	}
	rc = record(x, who, c);
	if (atomic_load(&x->st->dup) != before)
		complain(x, "counter did not go up", v);
	return rc;
}

/*
 * Everything published has been read and no producer is left. A cursor
 * past the claim word means the reader consumed a sequence that nobody
 * claimed: recorded for the driver, and nothing is left to wait for.
 */
static bool caught_up(struct reader *x)
{
	struct pbr_reader_stats rs;
	struct pbr_ring_stats st;

	/* The stream must survive a kill by the driver at the end. */
	if (x->stream)
		fflush(x->stream);
	if (!atomic_load(&x->sh->drain))
		return false;
	pbr_reader_stats(x->rd, &rs);
	pbr_ring_stats(x->r, &st);
	if ((int64_t)(st.claimed - rs.cursor) < 0)
		atomic_store(&x->st->ahead, rs.cursor - st.claimed);
	return (int64_t)(st.claimed - rs.cursor) <= 0;
}

/* One message: 1 when done, 0 to go on, or a negative exit code. */
static int read_one(struct reader *x)
{
	struct pbr_reader_stats rs;
	struct pbr_view v;
	int rc;

	pbr_reader_stats(x->rd, &rs);
	x->cursor = rs.cursor;
	rc = pbr_reader_peek(x->rd, PEEK_TIMEOUT, &v);

	sync_stats(x);
	if (rc == -ETIMEDOUT)
		return caught_up(x) ? 1 : 0;
	if (rc == -EBADMSG) {
		atomic_fetch_add(&x->st->torn, 1);
		complain(x, "corrupt slot header (EBADMSG)", &v);
		return 0;
	}
	if (rc)
		return -TT_EX_PEEK;
	memcpy(x->buf, v.data, v.len);
	rc = pbr_reader_release(x->rd, &v);
	if (rc == -ESTALE) {
		atomic_fetch_add(&x->st->stale, 1);
		return 0;
	}
	if (rc)
		return -TT_EX_RELEASE;
	rc = deliver(x, &v);
	if (x->pause_odds && rand() % x->pause_odds == 0)
		usleep(rand() % 2000);
	return -rc;
}

static int open_stream(struct reader *x, unsigned incarnation)
{
	char path[300];

	/* Only a first incarnation saw everything from the start. */
	if (x->lossy || incarnation)
		return 0;
	snprintf(path, sizeof(path), "%s/gating-%u.bin", x->cf->dir, x->index);
	x->stream = fopen(path, "we");
	if (!x->stream)
		return -errno;
	setvbuf(x->stream, NULL, _IOFBF, 1 << 20);
	return 0;
}

static int open_reader(struct reader *x)
{
	struct pbr_reader_opts o = {
		.flags = x->lossy ? PBR_READER_LOSSY : 0,
		.start = PBR_START_OLDEST,
	};
	struct pbr_ring_info info;
	int rc, tries;

	for (tries = 0; tries < 100; tries++) {
		rc = pbr_reader_open(x->r, &o, &x->rd);
		if (rc != -EBUSY)
			break;
		tu_sleep_ms(10);
	}
	if (rc)
		fprintf(stderr, "torture reader: open: %s\n", pbr_strerror(rc));
	pbr_ring_info(x->r, &info);
	x->cap = info.payload_cap;
	return rc;
}

static int reader_main(const struct tt_config *cf, struct tt_shared *sh,
		       enum tt_role role, unsigned index, unsigned incarnation)
{
	static struct reader x; /* large buffer: not on the stack */
	int rc;

	x.cf = cf;
	x.sh = sh;
	x.lossy = role == TT_LOSSY;
	x.index = index;
	x.st = x.lossy ? &sh->lossy[index] : &sh->gating[index];
	x.missed_st =
		x.lossy ? &sh->lossy_missed[index] : &sh->gating_missed[index];
	x.hist = !x.lossy && index == 0;
	x.witness = !x.lossy && index < cf->witnesses;
	/* Slow readers make producers wait (gating) or get lapped (lossy);
	 * witnesses do not pause, so their delivery times measure resume. */
	x.pause_odds = x.lossy ? 16 : index >= cf->witnesses ? 64 : 0;
	srand(cf->seed ^ (index * 7919u) ^ (unsigned)getpid());
	if (attach(cf, &x.r) || open_reader(&x) || open_stream(&x, incarnation))
		return TT_EX_SETUP;
	if (x.witness && tu_raw_map(cf->ring, &x.raw))
		x.raw.base = NULL;
	do
		rc = read_one(&x);
	while (rc == 0);
	if (x.stream && fclose(x.stream))
		rc = -TT_EX_SETUP;
	pbr_ring_detach(x.r);
	return rc < 0 ? -rc : TT_EX_OK;
}

int tt_child_main(const struct tt_config *cf, enum tt_role role, unsigned index,
		  unsigned incarnation)
{
	struct tt_shared *sh = tt_shared_map(cf->dir, false);

	if (!sh)
		return TT_EX_SETUP;
	if (role == TT_PRODUCER)
		return producer_main(cf, sh, index);
	return reader_main(cf, sh, role, index, incarnation);
}
