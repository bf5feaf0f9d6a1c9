/* SPDX-License-Identifier: MIT */
/*
 * torture: SIGKILL torture of a pbring ring (see torture.c for the design).
 *
 * One driver process runs producers and gating and lossy readers as
 * separate processes, kills them at named crash points and at random
 * times, restarts them, and at the end checks what the readers saw against
 * what the producers know they committed. A child is written in C (the
 * torture executable itself, torture_roles.c), in Go (the binary given by
 * --go-child) or in Python (tests/crash/torture_child.py): all three
 * follow the contract below, and any mix of them shares one ring.
 *
 * === The child contract ===================================================
 *
 * argv. A child is executed with exactly these arguments after argv[0] (a
 * Python child: PYTHON torture_child.py, then these), in this order:
 *
 *   --child ROLE INDEX INCARNATION --ring R --dir D --producers P
 *   --witnesses W --rate N --seed S [--inject lost|dup|torn]
 *
 *   ROLE         producer, gating or lossy
 *   INDEX        the logical producer (0 .. P-1, at most TT_MAX_PROD) or
 *                reader (gating 0 .. TT_MAX_GATING-1, lossy 0 ..
 *                TT_MAX_LOSSY-1); every incarnation of it has the same one
 *   INCARNATION  0 for the first process of that role and index, then 1,
 *                2, ... for each restart after a death
 *   R            the ring's name: attach to it (it exists already)
 *   D            the work directory (files below)
 *   P            number of logical producers (a who >= P is foreign)
 *   W            gating readers 0 .. W-1 are the witnesses: never killed,
 *                never armed
 *   N            a producer sleeps 1 ms after each counter c with
 *                (c + 1) % N == 0 (0: never)
 *   S            seed for the child's own random choices (pauses)
 *   X            a deliberate fault, producers only (see "Producer")
 *
 * Environment: PBR_CRASH_AT=name:N may be set; a library built with crash
 * points SIGKILLs the process at the Nth passage of point "name" (the
 * child does nothing about it). The driver sets PBRING_LIBRARY for Python
 * children when it has a crash-point build of libpbring
 * (PBRING_TORTURE_PYLIB).
 *
 * Exit status: enum tt_exit below. Anything else (another code, another
 * signal than SIGKILL) is reported as a failure by the driver. A child's
 * stderr is the driver's: say there why it failed.
 *
 * Files in D (all integers little-endian, the host's byte order):
 *
 *   prod-<i>.log    producer i's log, append-only u64 records (O_APPEND,
 *                   each written with one write() of 8 bytes): a committed
 *                   counter c, or TT_MARK | next at each (re)start
 *   gating-<j>.bin  written by incarnation 0 of gating reader j only
 *                   (created/truncated, mode 0600): every message it
 *                   delivered, in delivery order, as 12-byte records
 *                   (who u32, counter u64); it must be complete at a clean
 *                   exit and flushed whenever the reader has nothing to
 *                   read (the driver may kill a late reader at the end)
 *   shared          struct tt_shared (below), created by the driver with
 *                   sizeof(struct tt_shared) bytes, mapped MAP_SHARED by
 *                   every child; offsets TT_OFF_* below (checked)
 *
 * Producer (ROLE producer, INDEX who):
 *   1. attach R; open prod-<who>.log (O_RDWR|O_APPEND|O_CREAT); let L be
 *      its last whole 8-byte record (size rounded down to 8): next = 0 if
 *      there is none, (L & ~TT_MARK) + 1 if L has TT_MARK, else L + 2 (the
 *      counter after the last logged one may have been in flight when the
 *      predecessor died: it is never sent again). Append TT_MARK | next.
 *   2. open a producer (retry -EBUSY up to 100 times, 10 ms apart).
 *   3. for c = next, next+1, ... while shared.stop == 0: send message
 *      (who, c) (below) with a 10 s timeout (a timeout: exit TT_EX_STUCK;
 *      another error: TT_EX_SEND), then append c to the log (one 8-byte
 *      write, before the next reserve), then sleep 1 ms if N and
 *      (c + 1) % N == 0.
 *   4. close the producer (an error: TT_EX_SEND), detach, exit TT_EX_OK.
 *   --inject, for counters with c % 97 == 48 only: "lost" logs c without
 *   sending it; "dup" sends c twice, then logs it; "torn" sends c with its
 *   last payload byte (raw) or last blob byte (DeviceEvent, before
 *   encoding) XORed with 0x10 after the checksum was taken, then logs it.
 *
 * Messages (torture_msg.c): for counter c of producer who (u32), with cap
 * the ring's payload capacity and all arithmetic modulo 2^64:
 *   mix(who, c):   x = ((who + 1) * 0x9E3779B97F4A7C15) ^
 *                      (c * 0xff51afd7ed558ccd);
 *                  x ^= x >> 31;  return x * 0xBF58476D1CE4E5B9
 *   pattern(who, c, i) = tu_pattern(who, c, i) of tests/testutil.c:
 *                  x = who * 0x9E3779B97F4A7C15 ^ c * 0xC2B2AE3D27D4EB4F
 *                      ^ i * 0x165667B1;
 *                  x ^= x >> 29;  x *= 0xBF58476D1CE4E5B9;  x ^= x >> 32;
 *                  return x & 0xff
 *   c % 3 != 0: a raw message, sent WITHOUT the slot CRC flag (plain
 *     pbr_producer_send / reserve + commit with flags 0), len =
 *     24 + mix(who, c) % (cap - 24 + 1) bytes:
 *       [0,4)   magic 0x4b4c5454 ("TTLK")   [4,8)   who
 *       [8,16)  c                           [16,20) len
 *       [20,24) crc: CRC32C (Castagnoli, pbr_crc32c) of bytes [0,20)
 *               continued over bytes [24,len)
 *       [24,len) pattern(who, c, i) for i = 0 .. len-25
 *   c % 3 == 0: a pbring.demo.v1.DeviceEvent, sent WITH the slot CRC flag
 *     and the library's CRC32C of the whole payload (pbr_producer_send_pb
 *     or any encoder plus a CRC-flagged commit):
 *       id "t<who>" (decimal), status who, seq c, sent_ns c ^ 0x5deece66d,
 *       blob: pattern(who, c, i) for i < 1 + mix(who, c) % M, where
 *             M = 120 if cap > 200, else cap / 4
 *
 * Reader (ROLE gating or lossy, INDEX j):
 *   1. attach R; open a reader (lossy for ROLE lossy, else gating) at
 *      PBR_START_OLDEST (retry -EBUSY as above); incarnation 0 of a gating
 *      reader creates gating-<j>.bin.
 *   2. loop: peek with a 50 ms timeout (batches are fine), copy the
 *      payload and its header (len, flags, crc) out, release THAT message
 *      alone, and only then check the copy. Release -ESTALE: count stale,
 *      discard the copy (a lossy reader lapped, or a gating reader's join
 *      backlog). Peek -EBADMSG: count torn. Other peek/release errors:
 *      exit TT_EX_PEEK / TT_EX_RELEASE.
 *   3. a copy is intact if: flags has CRC, its CRC32C matches, it decodes
 *      as a DeviceEvent with 0 <= status < P, id/seq/sent_ns/blob exactly
 *      as above (seq % 3 == 0); or flags has no CRC and it is a raw
 *      message as above with who < P, len field == payload length, c % 3
 *      != 0, crc and pattern right. Not intact: count torn. Intact: if
 *      this incarnation already delivered a counter >= c of that who,
 *      count dup; then count delivered, store last_ns (CLOCK_MONOTONIC
 *      ns), append to the stream if any, and for gating 0 (witness 0)
 *      store the time into hist_ns[hist_n % TT_HIST] and then hist_n + 1.
 *   4. after each peek, add the growth of the library's reader stats lost,
 *      abandoned (and missed) since the last look to the shared block.
 *   5. a peek timeout: flush the stream; if shared.drain != 0 and the
 *      reader's cursor (pbr_reader_stats) has reached the ring's claim
 *      word (pbr_ring_stats.claimed), detach and exit TT_EX_OK; a cursor
 *      past the claim word stores cursor - claimed into `ahead` and exits.
 *   Killable readers pause now and then (gating j >= W: 1 in 64 messages,
 *   lossy: 1 in 16, up to 2 ms); witnesses never pause.
 *
 * Shared page: every stats block has one writer at a time (the current
 * incarnation of that reader; the driver restarts only after the previous
 * one was reaped), so plain aligned 8-byte stores are enough; the driver
 * reads with atomic loads. stop and drain are written by the driver only.
 */
#ifndef PBRING_TORTURE_H
#define PBRING_TORTURE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "pbring.h"
#include "pbring/pb.h"

#define TT_MAX_PROD 16
#define TT_MAX_GATING 8
#define TT_MAX_LOSSY 8
#define TT_HIST 4096 /* delivery times kept for resume measurements */

/* Producer log record with this bit: a (re)start; the rest is the next
 * counter that incarnation uses. */
#define TT_MARK (1ull << 63)

/* Child exit codes (anything else, or a signal, is unexpected). */
enum tt_exit {
	TT_EX_OK = 0,
	TT_EX_SETUP = 2,   /* attach, open or a file failed */
	TT_EX_SEND = 3,	   /* send failed with an unexpected error */
	TT_EX_STUCK = 4,   /* a wait timed out: the ring made no progress */
	TT_EX_RELEASE = 5, /* release failed with an unexpected error */
	TT_EX_PEEK = 6,	   /* peek failed with an unexpected error */
};

enum tt_role { TT_PRODUCER, TT_GATING, TT_LOSSY };

/* The language a child is written in. */
enum tt_lang { TT_LANG_C, TT_LANG_GO, TT_LANG_PY, TT_NLANGS };

struct tt_config {
	unsigned producers, gating, lossy, witnesses;
	bool single; /* single-producer ring */
	bool quick;
	long kills;   /* stop after this many kills (0: no limit) */
	long seconds; /* stop after this long (0: no limit) */
	unsigned slots, slot_size;
	uint64_t seq_base;
	unsigned rate; /* a producer sleeps 1 ms every rate messages */
	unsigned seed;
	bool keep;	    /* keep the work directory */
	bool discard;	    /* remove it even after a failure */
	const char *inject; /* a deliberate fault, to prove the checks work */
	/* Cross-language runs: languages children are written in (a bit per
	 * enum tt_lang, in the order given), and how to run them. */
	const char *langs_arg;
	unsigned nlangs, langs[TT_NLANGS];
	const char *go_child, *py_child, *py_script, *py_lib;
	bool slow; /* SIGSTOP a gating reader now and then */
	char ring[PBR_NAME_MAX + 1];
	char dir[256];
};

/* Per reader, written by its incarnations only; survives their deaths. */
struct tt_reader_stats {
	_Atomic uint64_t delivered; /* passed every check */
	_Atomic uint64_t torn;	    /* failed a payload check, or EBADMSG */
	_Atomic uint64_t dup;	    /* a counter not above the last one seen */
	_Atomic uint64_t stale;	    /* release said ESTALE: discarded */
	_Atomic uint64_t lost;	    /* reader stats, summed over incarnations */
	_Atomic uint64_t abandoned;
	_Atomic uint64_t last_ns;
	_Atomic uint64_t ahead; /* at the end, its cursor passed the claim */
	_Atomic uint64_t base_lost, base_abandoned; /* of dead incarnations */
};

/* Indices of struct tt_reader_stats's 8-byte words (its layout is part of
 * the child contract). */
enum tt_stat_word {
	TT_S_DELIVERED,
	TT_S_TORN,
	TT_S_DUP,
	TT_S_STALE,
	TT_S_LOST,
	TT_S_ABANDONED,
	TT_S_LAST_NS,
	TT_S_AHEAD,
	TT_S_BASE_LOST,
	TT_S_BASE_ABANDONED,
	TT_S_WORDS
};

struct tt_shared {
	_Atomic uint32_t stop;	/* producers: finish the message and exit */
	_Atomic uint32_t drain; /* readers: exit once caught up */
	/* Delivery times of witness 0 (CLOCK_MONOTONIC), a ring of TT_HIST. */
	_Atomic uint64_t hist_n;
	_Atomic uint64_t hist_ns[TT_HIST];
	struct tt_reader_stats gating[TT_MAX_GATING];
	struct tt_reader_stats lossy[TT_MAX_LOSSY];
	/* Added after the first layout (children may ignore them): the
	 * library's reader stat "missed" (join backlog overwritten before it
	 * was read), summed over incarnations like lost. */
	_Atomic uint64_t gating_missed[TT_MAX_GATING];
	_Atomic uint64_t lossy_missed[TT_MAX_LOSSY];
};

/* The layout the Go and Python children mirror: these never change. */
#define TT_OFF_STOP 0
#define TT_OFF_DRAIN 4
#define TT_OFF_HIST_N 8
#define TT_OFF_HIST_NS 16
/* Byte offsets: gating 32784, lossy 33424, gating_missed 34064,
 * lossy_missed 34128, size 34192; a tt_reader_stats is 80 bytes. */
#define TT_OFF_GATING (TT_OFF_HIST_NS + 8 * TT_HIST)
#define TT_STATS_SIZE (8 * TT_S_WORDS)
#define TT_OFF_LOSSY (TT_OFF_GATING + TT_MAX_GATING * TT_STATS_SIZE)
#define TT_OFF_GATING_MISSED (TT_OFF_LOSSY + TT_MAX_LOSSY * TT_STATS_SIZE)
#define TT_OFF_LOSSY_MISSED (TT_OFF_GATING_MISSED + 8 * TT_MAX_GATING)
#define TT_SHARED_SIZE (TT_OFF_LOSSY_MISSED + 8 * TT_MAX_LOSSY)

#define TT_ASSERT_OFF(type, field, off)                                        \
	_Static_assert(offsetof(type, field) == (off), #type "." #field)
TT_ASSERT_OFF(struct tt_reader_stats, delivered, 8 * TT_S_DELIVERED);
TT_ASSERT_OFF(struct tt_reader_stats, torn, 8 * TT_S_TORN);
TT_ASSERT_OFF(struct tt_reader_stats, dup, 8 * TT_S_DUP);
TT_ASSERT_OFF(struct tt_reader_stats, stale, 8 * TT_S_STALE);
TT_ASSERT_OFF(struct tt_reader_stats, lost, 8 * TT_S_LOST);
TT_ASSERT_OFF(struct tt_reader_stats, abandoned, 8 * TT_S_ABANDONED);
TT_ASSERT_OFF(struct tt_reader_stats, last_ns, 8 * TT_S_LAST_NS);
TT_ASSERT_OFF(struct tt_reader_stats, ahead, 8 * TT_S_AHEAD);
TT_ASSERT_OFF(struct tt_reader_stats, base_lost, 8 * TT_S_BASE_LOST);
TT_ASSERT_OFF(struct tt_reader_stats, base_abandoned, 8 * TT_S_BASE_ABANDONED);
_Static_assert(sizeof(struct tt_reader_stats) == TT_STATS_SIZE,
	       "struct tt_reader_stats size");
TT_ASSERT_OFF(struct tt_shared, stop, TT_OFF_STOP);
TT_ASSERT_OFF(struct tt_shared, drain, TT_OFF_DRAIN);
TT_ASSERT_OFF(struct tt_shared, hist_n, TT_OFF_HIST_N);
TT_ASSERT_OFF(struct tt_shared, hist_ns, TT_OFF_HIST_NS);
TT_ASSERT_OFF(struct tt_shared, gating, TT_OFF_GATING);
TT_ASSERT_OFF(struct tt_shared, lossy, TT_OFF_LOSSY);
TT_ASSERT_OFF(struct tt_shared, gating_missed, TT_OFF_GATING_MISSED);
TT_ASSERT_OFF(struct tt_shared, lossy_missed, TT_OFF_LOSSY_MISSED);
_Static_assert(sizeof(struct tt_shared) == TT_SHARED_SIZE,
	       "struct tt_shared size");
_Static_assert(TT_OFF_GATING == 32784 && TT_OFF_LOSSY == 33424 &&
		       TT_OFF_GATING_MISSED == 34064 &&
		       TT_OFF_LOSSY_MISSED == 34128 && TT_SHARED_SIZE == 34192,
	       "the offsets the Go and Python children use");
_Static_assert(sizeof(_Atomic uint64_t) == 8 && sizeof(_Atomic uint32_t) == 4,
	       "plain-sized atomics");

/* --- messages (torture_msg.c) ------------------------------------------ */

/* Send message (who, counter): raw bytes or a DeviceEvent, by counter.
 * @corrupt flips a payload byte after the checksum was taken (--inject). */
int tt_send(struct pbr_producer *p, uint32_t cap, uint32_t who, uint64_t c,
	    int64_t timeout_ns, bool corrupt);
/* Check a private copy of a delivered message (view fields as peeked, data
 * pointing at the copy) from a ring of payload capacity @cap: 0 and
 * (who, counter) if intact, -1 if torn. */
int tt_verify(const struct pbr_view *v, uint32_t cap, uint32_t nprod,
	      uint32_t *who, uint64_t *c);

/* --- children (torture_roles.c) ---------------------------------------- */

int tt_child_main(const struct tt_config *cf, enum tt_role role, unsigned index,
		  unsigned incarnation);
struct tt_shared *tt_shared_map(const char *dir, bool create);

/* --- the final check (torture_check.c) --------------------------------- */

struct tt_result {
	uint64_t committed, delivered, lost, duplicated, torn, abandoned;
	uint64_t maybe_delivered, disorder, phantom;
};

/* Compare the producers' logs with witness @j's delivery stream. */
int tt_check_witness(const struct tt_config *cf, unsigned j,
		     struct tt_result *res);
/* Do the witnesses 1 .. W-1 deliver the same set of (producer, counter)
 * pairs as witness 0? differ[j]: pairs in exactly one of witness j's and
 * witness 0's streams (differ[0] = 0). */
int tt_compare_witnesses(const struct tt_config *cf, uint64_t *differ);
/* Committed messages per the producers' logs. */
uint64_t tt_count_committed(const struct tt_config *cf);

#endif /* PBRING_TORTURE_H */
