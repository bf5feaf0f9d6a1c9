// SPDX-License-Identifier: MIT
/*
 * forge: build a dead participant's exact state in a ring, for the
 * cross-language scenario suite (tests/scenarios). A real producer cannot be
 * stopped deterministically at these points, so forge plays the part of one
 * by writing the words of docs/FORMAT.md itself, then pauses until the test
 * SIGKILLs it, which releases its entry lock exactly as a crash does.
 *
 * usage: forge RING claim-mp      multi-producer claim that overshoots the
 *                                 gating limit, not yet BUSY (§7.1, §8.2)
 *        forge RING claim-busy    claim, begin (BUSY(s)), some payload bytes
 *        forge RING sp-pending    single producer: pending = claim, claim not
 *                                 yet advanced (§7.1, §8.3)
 *        forge RING slot SEQ      print slot(SEQ)'s commit word as
 *                                 "DONE 0", "ABANDONED 16", "BUSY 16", "EMPTY"
 *        forge RING crc SEQ       the CRC of slot(SEQ)'s payload: "crc" (flag
 *                                 set, CRC32C matches), "crc-bad" (set,
 *                                 differs) or "none" (flag clear)
 *        forge RING spoil SEQ     flip a bit of slot(SEQ)'s stored CRC32C, as
 *                                 a stray write would (the slot must carry
 *                                 one); prints "crc-bad"
 *        forge RING claim         print the claim counter
 *        forge RING unfinished    a creator at work (§12.1): state back to
 *                                 initialising, the creation lock held
 *        forge RING probe         list the participants (libpbring's probes,
 *                                 §5.1) in a loop until killed; prints 0
 * The claim commands print the sequence on stdout (one line, flushed) once
 * the state is in place, then pause(). Exit status: 0, 1 runtime error,
 * 2 usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pbring/layout.h"
#include "testutil.h"

#define SEQ62_MASK ((1ull << 62) - 1)
#define WAIT_LIMIT_NS (10ll * 1000000000ll)

static const char *ring_name;

static void die(const char *what, int err)
{
	fprintf(stderr, "forge: %s: %s: %s\n", ring_name, what,
		err ? strerror(err) : "failed");
	exit(1);
}

static uint64_t *claim_word(struct tu_raw *raw)
{
	return (uint64_t *)(raw->base + raw->sb->control_off + PBR_CTL_CLAIM);
}

static int before(uint64_t a, uint64_t b)
{
	return (int64_t)(a - b) < 0;
}

/* Full sequence of a commit word, relative to @seq (FORMAT §6.1). */
static uint64_t full_seq(uint64_t v, uint64_t seq)
{
	uint64_t d = ((v >> 2) - seq) & SEQ62_MASK;

	if (d >= (1ull << 61))
		return seq - ((1ull << 62) - d);
	return seq + d;
}

/* Take the write lock of the first FREE producer entry on a description of
 * our own (§5.1). Returns its index; the descriptor stays open. */
static uint32_t take_free_producer(struct tu_raw *raw)
{
	char path[128];
	uint32_t i;
	int fd;

	tu_path(ring_name, path, sizeof(path));
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("open", errno);
	for (i = 0; i < raw->sb->max_producers; i++) {
		struct pbr_layout_producer *e = tu_raw_producer(raw, i);
		uint64_t off = (uint64_t)((uint8_t *)e - raw->base);
		struct flock fl;

		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		fl.l_start = (off_t)off;
		fl.l_len = 1;
		if (fcntl(fd, F_OFD_SETLK, &fl) < 0)
			continue; /* alive */
		if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) !=
		    PBR_ENTRY_FREE) {
			fl.l_type = F_UNLCK; /* a dead one: not ours to reap */
			(void)fcntl(fd, F_OFD_SETLK, &fl);
			continue;
		}
		__atomic_store_n(&e->pending, PBR_PENDING_IDLE,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&e->committed, 0, __ATOMIC_RELAXED);
		e->pid = (uint32_t)getpid();
		e->joined_ns = tu_realtime_ns();
		__atomic_store_n(&e->state, PBR_ENTRY_ACTIVE, __ATOMIC_SEQ_CST);
		return i;
	}
	fprintf(stderr, "forge: %s: no FREE producer entry\n", ring_name);
	exit(1);
}

/* §7.2 gating_limit(s), without reaping. */
static uint64_t gating_limit(struct tu_raw *raw, uint64_t s)
{
	uint64_t min = s;
	uint32_t j;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (j = 0; j < raw->sb->max_readers; j++) {
		struct pbr_layout_reader *e = tu_raw_reader(raw, j);
		uint64_t c;

		if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) !=
			    PBR_ENTRY_ACTIVE ||
		    !(e->flags & PBR_READER_GATING))
			continue;
		c = __atomic_load_n(&e->cursor, __ATOMIC_ACQUIRE);
		if (before(c, min))
			min = c;
	}
	return min + raw->sb->slot_count;
}

static void announce_and_pause(uint64_t s)
{
	printf("%" PRIu64 "\n", s);
	fflush(stdout);
	for (;;)
		pause();
}

static uint64_t claim_mp(struct tu_raw *raw, uint32_t *id)
{
	struct pbr_layout_producer *e;
	uint64_t s;

	if (raw->sb->ring_flags & PBR_RING_SINGLE_PRODUCER) {
		fprintf(stderr, "forge: %s: single-producer ring\n", ring_name);
		exit(1);
	}
	*id = take_free_producer(raw);
	e = tu_raw_producer(raw, *id);
	__atomic_store_n(&e->pending, PBR_PENDING_CLAIMING, __ATOMIC_SEQ_CST);
	s = __atomic_fetch_add(claim_word(raw), 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&e->pending, PBR_PENDING_SEQ(s), __ATOMIC_SEQ_CST);
	return s;
}

static void cmd_claim_busy(struct tu_raw *raw)
{
	uint64_t n = raw->sb->slot_count, t0 = tu_now_ns(), s, v;
	struct pbr_layout_slot *sl;
	uint32_t id, i;
	uint8_t *payload;

	s = claim_mp(raw, &id);
	sl = tu_raw_slot(raw, s);
	for (;;) {
		if (tu_now_ns() - t0 > WAIT_LIMIT_NS) {
			fprintf(stderr,
				"forge: %s: slot of %" PRIu64
				" never became writable\n",
				ring_name, s);
			exit(1);
		}
		v = __atomic_load_n(&sl->commit, __ATOMIC_ACQUIRE);
		if (!before(s, gating_limit(raw, s))) {
			tu_sleep_ms(1);
			continue;
		}
		if ((v == PBR_COMMIT_EMPTY && s - raw->sb->seq_base < n) ||
		    v == PBR_COMMIT_DONE(s - n) ||
		    v == PBR_COMMIT_ABANDONED(s - n))
			break;
		tu_sleep_ms(1);
	}
	if (!__atomic_compare_exchange_n(&sl->commit, &v, PBR_COMMIT_BUSY(s), 0,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
		fprintf(stderr, "forge: %s: begin CAS of %" PRIu64 " failed\n",
			ring_name, s);
		exit(1);
	}
	__atomic_thread_fence(__ATOMIC_RELEASE);
	payload = (uint8_t *)sl + PBR_SLOT_HDR_SIZE;
	for (i = 0; i < 32 && i < raw->sb->slot_size - PBR_SLOT_HDR_SIZE; i++)
		payload[i] = (uint8_t)(0xA5 ^ i); /* half-written garbage */
	announce_and_pause(s);
}

static void cmd_sp_pending(struct tu_raw *raw)
{
	struct pbr_layout_producer *e;
	uint64_t c;
	uint32_t id;

	if (!(raw->sb->ring_flags & PBR_RING_SINGLE_PRODUCER)) {
		fprintf(stderr, "forge: %s: not a single-producer ring\n",
			ring_name);
		exit(1);
	}
	id = take_free_producer(raw);
	e = tu_raw_producer(raw, id);
	c = __atomic_load_n(claim_word(raw), __ATOMIC_ACQUIRE);
	/* The crash point sp_pending: pending stored, claim not advanced. */
	__atomic_store_n(&e->pending, PBR_PENDING_SEQ(c), __ATOMIC_SEQ_CST);
	announce_and_pause(c);
}

/* A creator that has not published READY yet: killing it leaves a ring
 * that will never be ready, which attachers must call damaged (§12.2). */
static void cmd_unfinished(struct tu_raw *raw)
{
	struct flock fl = {.l_type = F_WRLCK,
			   .l_whence = SEEK_SET,
			   .l_start = PBR_CREATION_LOCK,
			   .l_len = 1};

	if (fcntl(raw->fd, F_OFD_SETLK, &fl) < 0)
		die("creation lock", errno);
	__atomic_store_n(&raw->sb->state, PBR_STATE_INIT, __ATOMIC_SEQ_CST);
	announce_and_pause(0);
}

static void cmd_slot(struct tu_raw *raw, const char *arg)
{
	static const char *names[] = {"INVALID", "DONE", "ABANDONED", "BUSY"};
	char *end;
	uint64_t seq, v;

	errno = 0;
	seq = strtoull(arg, &end, 0);
	if (errno || end == arg || *end) {
		fprintf(stderr, "forge: slot: '%s' is not a sequence\n", arg);
		exit(2);
	}
	v = __atomic_load_n(&tu_raw_slot(raw, seq)->commit, __ATOMIC_ACQUIRE);
	if (v == PBR_COMMIT_EMPTY)
		printf("EMPTY\n");
	else
		printf("%s %" PRIu64 "\n", names[PBR_COMMIT_STATE(v)],
		       full_seq(v, seq));
}

static uint64_t seq_arg(const char *cmd, const char *arg)
{
	char *end;
	uint64_t seq;

	errno = 0;
	seq = strtoull(arg, &end, 0);
	if (errno || end == arg || *end) {
		fprintf(stderr, "forge: %s: '%s' is not a sequence\n", cmd,
			arg);
		exit(2);
	}
	return seq;
}

/* A reader must count the slot as a CRC error, not deliver it (§6.2). */
static void cmd_spoil(struct tu_raw *raw, const char *arg)
{
	struct pbr_layout_slot *sl = tu_raw_slot(raw, seq_arg("spoil", arg));

	if (!(__atomic_load_n(&sl->flags, __ATOMIC_RELAXED) & PBR_SLOT_F_CRC)) {
		fprintf(stderr, "forge: spoil: slot %s carries no CRC\n", arg);
		exit(1);
	}
	__atomic_fetch_xor(&sl->crc32c, 1u, __ATOMIC_RELAXED);
	printf("crc-bad\n");
}

static void cmd_crc(struct tu_raw *raw, const char *arg)
{
	struct pbr_layout_slot *sl;
	uint32_t len, crc, flags;

	sl = tu_raw_slot(raw, seq_arg("crc", arg));
	len = __atomic_load_n(&sl->length, __ATOMIC_RELAXED);
	crc = __atomic_load_n(&sl->crc32c, __ATOMIC_RELAXED);
	flags = __atomic_load_n(&sl->flags, __ATOMIC_RELAXED);
	if (len > raw->sb->slot_size - PBR_SLOT_HDR_SIZE) {
		fprintf(stderr, "forge: crc: length %u out of bounds\n", len);
		exit(1);
	}
	if (!(flags & PBR_SLOT_F_CRC))
		printf("none\n");
	else
		printf("%s\n",
		       tu_crc32c((const uint8_t *)sl + PBR_SLOT_HDR_SIZE,
				 len) == crc
			       ? "crc"
			       : "crc-bad");
}

/* Probe every entry, as fast as it goes, until killed. */
static void cmd_probe(void)
{
	struct pbr_participant pt[64];
	struct pbr_ring *r = NULL;
	int rc;

	if ((rc = pbr_ring_attach(ring_name, NULL, &r)))
		die("attach", -rc);
	printf("0\n");
	while ((rc = pbr_ring_participants(r, pt, 64)) >= 0)
		;
	die("participants", -rc);
}

int main(int argc, char **argv)
{
	struct tu_raw raw;
	const char *cmd;
	uint32_t id;
	int rc;

	if (argc < 3) {
		fprintf(stderr,
			"usage: forge RING claim-mp|claim-busy|"
			"sp-pending|claim|unfinished|probe|slot SEQ|crc SEQ|"
			"spoil SEQ\n");
		return 2;
	}
	ring_name = argv[1];
	cmd = argv[2];
	if ((rc = tu_raw_map(ring_name, &raw)))
		die("map", -rc);
	if (raw.sb->magic != PBR_MAGIC ||
	    __atomic_load_n(&raw.sb->state, __ATOMIC_ACQUIRE) !=
		    PBR_STATE_READY)
		die("not a ready pbring ring", 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "claim-mp") && argc == 3)
		announce_and_pause(claim_mp(&raw, &id));
	else if (!strcmp(cmd, "claim-busy") && argc == 3)
		cmd_claim_busy(&raw);
	else if (!strcmp(cmd, "sp-pending") && argc == 3)
		cmd_sp_pending(&raw);
	else if (!strcmp(cmd, "unfinished") && argc == 3)
		cmd_unfinished(&raw);
	else if (!strcmp(cmd, "probe") && argc == 3)
		cmd_probe();
	else if (!strcmp(cmd, "slot") && argc == 4)
		cmd_slot(&raw, argv[3]);
	else if (!strcmp(cmd, "crc") && argc == 4)
		cmd_crc(&raw, argv[3]);
	else if (!strcmp(cmd, "spoil") && argc == 4)
		cmd_spoil(&raw, argv[3]);
	else if (!strcmp(cmd, "claim") && argc == 3)
		printf("%" PRIu64 "\n",
		       __atomic_load_n(claim_word(&raw), __ATOMIC_ACQUIRE));
	else {
		fprintf(stderr, "forge: bad command '%s'\n", cmd);
		return 2;
	}
	tu_raw_unmap(&raw);
	return 0;
}
