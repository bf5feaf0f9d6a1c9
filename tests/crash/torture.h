/* SPDX-License-Identifier: MIT */
/*
 * torture: SIGKILL torture of a pbring ring (see torture.c for the design).
 *
 * One driver process runs producers and gating and lossy readers as
 * separate processes (fork + exec of itself with a role), kills them at
 * named crash points and at random times, restarts them, and at the end
 * checks what the readers saw against what the producers know they
 * committed.
 *
 * Files in the work directory:
 *   prod-<i>.log    per logical producer, append-only u64 records: a
 *                   committed counter, or TT_MARK | next at each (re)start
 *   gating-<j>.bin  the first incarnation of gating reader j: every
 *                   delivered (who u32, counter u64) in order
 *   shared          struct tt_shared, mapped by every process
 */
#ifndef PBRING_TORTURE_H
#define PBRING_TORTURE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "pbring.h"

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

struct tt_shared {
	_Atomic uint32_t stop;	/* producers: finish the message and exit */
	_Atomic uint32_t drain; /* readers: exit once caught up */
	/* Delivery times of witness 0 (CLOCK_MONOTONIC), a ring of TT_HIST. */
	_Atomic uint64_t hist_n;
	_Atomic uint64_t hist_ns[TT_HIST];
	struct tt_reader_stats gating[TT_MAX_GATING];
	struct tt_reader_stats lossy[TT_MAX_LOSSY];
};

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
/* Committed messages per the producers' logs. */
uint64_t tt_count_committed(const struct tt_config *cf);

#endif /* PBRING_TORTURE_H */
