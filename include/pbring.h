/* SPDX-License-Identifier: MIT */
/*
 * pbring: protobuf messages between processes on one host through a ring of
 * fixed-size slots in POSIX shared memory, without copies.
 *
 * A ring is one shared-memory object, /pbring.<name>. Producers reserve a
 * slot, write the payload straight into it and commit it; readers peek at
 * committed slots in place and release them. Gating readers hold producers
 * back (nothing they have not released is overwritten); lossy readers never
 * do, and are told how many messages they lost when lapped. Every process
 * holds a kernel lock for each producer or reader it opens, so a dead peer
 * is proven dead and its half-written slot or its gating cursor reclaimed.
 *
 * Conventions. Functions return 0 (or a count) on success and -errno on
 * failure; pbr_strerror() explains a code. The library never prints, exits
 * or aborts. Handles are opaque; views (struct pbr_slot, struct pbr_view)
 * are plain structs that point into the shared mapping. A producer or
 * reader handle is used by one thread at a time; distinct handles may be
 * used concurrently. Timeouts are in nanoseconds: 0 does not wait (-EAGAIN),
 * a negative value waits without limit, a positive one fails with
 * -ETIMEDOUT when it runs out.
 *
 * All processes that can write a ring are one trust domain (docs/FORMAT.md,
 * "Trust"). Even so, a reader validates everything it reads from the ring
 * and a corrupt slot yields -EBADMSG, never a crash.
 */
#ifndef PBRING_H
#define PBRING_H

#include <stddef.h>
#include <stdint.h>

#include "pbring/layout.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PBR_API __attribute__((visibility("default")))
#define PBR_MUST_CHECK __attribute__((warn_unused_result))
#else
#define PBR_API
#define PBR_MUST_CHECK
#endif

/* Library version (not the segment format version, see layout.h). */
#define PBRING_VERSION_MAJOR 0
#define PBRING_VERSION_MINOR 1
#define PBRING_VERSION_PATCH 0

/** Library version string, "MAJOR.MINOR.PATCH". */
PBR_API const char *pbr_version(void);

/**
 * Describe an error code returned by this library (negative or positive
 * errno). Never NULL; the string is static.
 */
PBR_API const char *pbr_strerror(int err);

struct pbr_ring;     /* a mapping of one ring */
struct pbr_producer; /* one producer entry of a ring */
struct pbr_reader;   /* one reader entry (cursor) of a ring */

/* ------------------------------------------------------------------------
 * Rings
 */

/** Flags for pbr_create_opts.flags. */
#define PBR_CREATE_SINGLE_PRODUCER 0x1u /* one producer; no RMW per message */
/* Allow durable (named) readers, PBR_READER_DURABLE (format 1.3, feature
 * PBR_FEATURE_DURABLE_READERS). Libraries of format 1.2 and earlier then
 * refuse the ring (-ENOTSUP), since they would reap a dead durable reader. */
#define PBR_CREATE_DURABLE_READERS 0x2u

/**
 * CRC policies (pbr_create_opts.crc): which payloads producers checksum,
 * fixed at creation and followed by every producer in every language
 * (pbr_producer_wants_crc()). Readers verify whatever carries a CRC.
 * Without one, a reader still sees only whole messages from a live
 * writer (the commit protocol guarantees that); the CRC adds a check of
 * the bytes themselves against a buggy or hostile writer and memory
 * faults, at one extra pass over the payload on each side.
 */
#define PBR_CRC_FULL 0u /* every payload (the default) */
#define PBR_CRC_NONE 1u /* no payload */
#define PBR_CRC_UPTO 2u /* payloads of at most crc_limit bytes */

/**
 * Creation options. A zeroed struct (or NULL) means the defaults:
 * 1024 slots of 1024 bytes, 8 producers, 8 readers, mode 0600,
 * multi-producer, sequence numbers from 0, no schema.
 */
struct pbr_create_opts {
	uint32_t slot_count; /* power of two, 2 .. 2^24 */
	uint32_t slot_size;  /* bytes incl. 64-byte header; multiple of 128 */
	uint32_t max_producers; /* 1 .. 1024; 0 or 1 if single-producer */
	uint32_t max_readers;	/* 1 .. 1024 */
	uint32_t mode;		/* permission bits; 0 means 0600 */
	uint32_t flags;		/* PBR_CREATE_* */
	uint64_t seq_base;	/* first sequence number (tests use 2^64 - n) */
	const char *msg_type;	/* protobuf message full name, or NULL */
	const void *schema;	/* serialized FileDescriptorSet, or NULL */
	uint32_t schema_len;	/* bytes at schema */
	uint64_t schema_hash;	/* caller-defined schema identity, 0 = none */
	uint32_t crc;		/* PBR_CRC_*; 0 = PBR_CRC_FULL */
	uint32_t crc_limit;	/* PBR_CRC_UPTO only: bytes; else 0 */
};

/**
 * Create ring @name exclusively and map it. Fails with -EEXIST if the name
 * is taken (a stale ring is unlinked and created afresh, never reused),
 * -EINVAL for a bad name or geometry, -ENOSPC if the shared-memory file
 * system cannot hold it (nothing is left behind), -errno from the system.
 * The ring becomes visible to pbr_ring_attach() only when fully initialised.
 */
PBR_API PBR_MUST_CHECK int pbr_ring_create(const char *name,
					   const struct pbr_create_opts *opts,
					   struct pbr_ring **out);

/** Flags for pbr_attach_opts.flags. */
#define PBR_ATTACH_ANY_OWNER 0x1u /* accept a ring owned by another uid */
#define PBR_ATTACH_READONLY 0x2u  /* map read-only, for tap readers only */

/** Attach options. A zeroed struct (or NULL): wait up to 1 s for ready. */
struct pbr_attach_opts {
	int64_t timeout_ns; /* wait for a ring still being created; 0 = 1 s */
	uint32_t flags;	    /* PBR_ATTACH_* */
};

/**
 * Map an existing ring and validate it before use. Errors, each specific:
 * -EINVAL bad name; -ENOENT no such ring; -EACCES the system denied access;
 * -EPERM the ring belongs to another user (unless PBR_ATTACH_ANY_OWNER) or
 * is writable by everyone; -ENODEV not a regular file; -ETIMEDOUT still
 * being created (its creator is alive) when the timeout ran out; -EPROTO
 * bad magic (not a pbring segment, told at once); -EPROTONOSUPPORT another
 * major format version; -EPROTOTYPE layout fingerprint mismatch; -ENOTSUP
 * an unknown incompatible feature bit; -EUCLEAN the ring is damaged, told
 * at once: its creator died before it was ready, it was truncated, or a
 * geometry field, region offset or size is out of bounds or disagrees
 * with the object's real size (remove it and create it again).
 *
 * With PBR_ATTACH_READONLY the object is opened O_RDONLY and mapped
 * PROT_READ, so read permission is enough (a ring created group-readable,
 * mode 0640, is readable by the group; -EACCES is then a ring this
 * process may not even read). Attach writes nothing to the segment and
 * takes no lock, and neither does anything done later through this
 * handle (FORMAT.md §9.5): the only readers it can open are taps
 * (PBR_READER_TAP); pbr_producer_open(), pbr_reader_open() without
 * PBR_READER_TAP and pbr_ring_reclaim() return -EROFS. Looking works as
 * on any ring: pbr_ring_info(), _stats(), _participants(), _check(),
 * _check_type(). pbr_ring_interrupt() then interrupts this process's
 * waits without touching the ring's futex words (taps do not sleep on
 * them).
 *
 * If the object is later shrunk under the mapping (by a buggy or hostile
 * process), touching the lost pages would raise SIGBUS. The first create
 * or attach installs a SIGBUS handler that, for faults inside a pbring
 * mapping only, maps zero pages over the lost part and marks the ring
 * broken: its producers and readers then get -EUCLEAN. Other faults go to
 * the handler installed before it, or kill the process as usual.
 */
PBR_API PBR_MUST_CHECK int pbr_ring_attach(const char *name,
					   const struct pbr_attach_opts *opts,
					   struct pbr_ring **out);

/**
 * Unmap the ring. Producers and readers opened on it must be closed first
 * (they are closed here if not). The ring itself stays until unlinked.
 */
PBR_API void pbr_ring_detach(struct pbr_ring *ring);

/** Remove ring @name (processes that have it mapped keep their mapping). */
PBR_API int pbr_ring_unlink(const char *name);

/**
 * The format version ring @name says it was made with, read without
 * validating anything else: to explain why pbr_ring_attach() refused it
 * with -EPROTONOSUPPORT. 0 with @major and @minor set; -EINVAL bad name;
 * -ENOENT no such ring; -EUCLEAN too short to hold a version.
 */
PBR_API PBR_MUST_CHECK int pbr_ring_format(const char *name, uint16_t *major,
					   uint16_t *minor);

/** Check a ring name: 0 if valid, -EINVAL if not ([A-Za-z0-9_.-], 1..63,
 *  not starting with '.'). */
PBR_API PBR_MUST_CHECK int pbr_name_check(const char *name);

/** A ring's fixed properties, as validated at attach. */
struct pbr_ring_info {
	char name[PBR_NAME_MAX + 1];
	char msg_type[PBR_MSG_TYPE_MAX + 1];
	uint16_t format_major, format_minor;
	uint32_t ring_flags; /* PBR_RING_* */
	uint32_t slot_count, slot_size, payload_cap;
	uint32_t max_producers, max_readers;
	uint64_t total_size, seq_base, schema_hash, created_ns;
	uint32_t schema_len, creator_uid, creator_pid;
	const void *schema;	    /* inside the mapping, schema_len bytes */
	uint32_t crc, crc_limit;    /* CRC policy (PBR_CRC_*); a policy this
				     * library does not know reads as FULL */
	uint64_t features_incompat; /* PBR_FEATURE_DURABLE_READERS (1.3) */
	uint64_t features_compat;   /* PBR_FEATURE_READER_METRICS (1.2) */
};

PBR_API void pbr_ring_info(const struct pbr_ring *ring,
			   struct pbr_ring_info *info);

/** Ring-wide counters (a snapshot). */
struct pbr_ring_stats {
	uint64_t claimed;	   /* next sequence a producer will claim */
	uint64_t abandoned;	   /* slots recovered from dead producers */
	uint64_t producers_reaped; /* dead producer entries freed */
	uint64_t readers_reaped;   /* dead reader entries freed */
};

PBR_API void pbr_ring_stats(const struct pbr_ring *ring,
			    struct pbr_ring_stats *st);

/** One entry of the participant table (a snapshot). */
/* Public ABI: its field order stays, padding and all. */
/* NOLINTNEXTLINE(clang-analyzer-optin.performance.Padding) */
struct pbr_participant {
	uint32_t index; /* producer id or reader index */
	uint8_t is_reader;
	uint8_t alive;	   /* 1: its lock is held; 0: its holder died */
	uint32_t flags;	   /* readers: PBR_READER_GATING or PBR_READER_LOSSY */
	uint32_t pid;	   /* as recorded at open (diagnostic only) */
	uint64_t position; /* reader cursor, or producer's committed count */
	uint64_t pending;  /* producer pending word (PBR_PENDING_*); a dead
			    * producer's reads IDLE once its sequence is
			    * finished (committed or recovered) */
	uint64_t delivered, lost, abandoned; /* readers */
	/* producers (format 1.1; 0 from a 1.0 producer): payload bytes
	 * committed, skip records published, nanoseconds waited for space */
	uint64_t bytes, aborts, blocked_ns;
	/* readers (format 1.2; 0 from an earlier reader): corrupt slots
	 * passed over, payloads that failed their CRC, payloads the
	 * application could not decode (pbr_reader_verify/_reject) */
	uint64_t bad, crc_errors, decode_errors;
	/* readers that record latency (opened with PBR_READER_LATENCY, on a
	 * format 1.2 ring; FORMAT.md §5.5) have has_latency 1 and their
	 * commit-to-receive histogram: buckets not cumulative, upper bounds
	 * PBR_LATENCY_BOUNDS_NS then > 1 s; all 0 when has_latency is 0 */
	uint8_t has_latency;
	uint64_t latency_sum_ns;
	uint64_t latency[PBR_LATENCY_BUCKETS];
	/* durable readers (format 1.3, PBR_READER_DURABLE in flags): durable
	 * is 1 and name holds the reader's name (validated; "" if the entry's
	 * is malformed); detached is 1 while no process owns it (it keeps
	 * gating at its cursor until taken over or dropped) */
	uint8_t durable, detached;
	char name[PBR_READER_NAME_SIZE];
};

/**
 * Fill @out with up to @max active entries (producers first).
 * Returns the number of active entries, which may exceed @max.
 */
PBR_API PBR_MUST_CHECK int pbr_ring_participants(struct pbr_ring *ring,
						 struct pbr_participant *out,
						 unsigned max);

/**
 * The newest message still in the ring that carries a timestamp: its
 * sequence and timestamp_ns (CLOCK_MONOTONIC, pbr_clock_ns()), looking
 * back from the claim over at most the last min(slot_count, 1024)
 * sequences and passing over skip records, slots not (yet) committed and
 * messages sent without a timestamp. 0 with @seq and @timestamp_ns set;
 * -ENODATA if there is none (nothing sent yet, or none of those messages
 * carries a timestamp); -EUCLEAN if the ring was found shrunk. Reads
 * only: works on a ring attached with PBR_ATTACH_READONLY. For health
 * checks (`pbring check --max-age`): how long ago a producer committed.
 */
PBR_API PBR_MUST_CHECK int pbr_ring_last_commit(struct pbr_ring *ring,
						uint64_t *seq,
						uint64_t *timestamp_ns);

/**
 * Find participants whose process died and reclaim them: a dead producer's
 * unfinished slot becomes an abandoned record (readers skip and count it),
 * a dead reader's entry is freed so it no longer gates producers, except
 * a durable reader's (PBR_READER_DURABLE): it stays, detached, until taken
 * over or dropped (pbr_ring_drop_reader).
 * Returns the number of entries reclaimed. Waits in the library run this
 * on their own while they are stuck, so calling it is optional.
 * -EROFS on a ring attached with PBR_ATTACH_READONLY (reclaiming writes).
 */
PBR_API PBR_MUST_CHECK int pbr_ring_reclaim(struct pbr_ring *ring);

/**
 * Is the ring still in place and whole? 0 if so; -EIDRM if it was
 * removed (pbr_ring_unlink(), `pbring rm`) while mapped here, even if a
 * new ring has taken its name since: nobody new can attach to it, so
 * waiting on it is pointless; -EUCLEAN if it was shrunk under the
 * mapping. Waits run this check on their own about every 100 ms and
 * return its error; a producer that never waits (no gating reader) can
 * call it now and then to notice.
 */
PBR_API PBR_MUST_CHECK int pbr_ring_check(struct pbr_ring *ring);

/* ------------------------------------------------------------------------
 * Waiting
 *
 * Every wait (pbr_producer_reserve/send, pbr_reader_peek/peek_batch and
 * pbr_ring_attach's wait for a ring being created) returns early with
 * -EINTR, nothing lost and nothing published half-way, when
 *  - pbr_ring_interrupt() was called on its ring, from any thread or from
 *    a signal handler; or
 *  - a signal handler ran in the waiting thread while it slept in a
 *    PBR_WAIT_BLOCK wait (as read(2) does for a handler installed without
 *    SA_RESTART; with SA_RESTART too, since a futex sleep is not
 *    restarted). Spinning and yielding waits notice only the interrupt.
 * A multi-producer reserve interrupted after its claim keeps the claimed
 * sequence for the next reserve, as after -ETIMEDOUT; closing the
 * producer publishes it as a skip record. Waits also return -EIDRM or
 * -EUCLEAN when pbr_ring_check() would.
 */

/**
 * Make every wait on @ring, in any thread, return -EINTR at once, and
 * every later wait on it return -EINTR without waiting (the interrupt is
 * sticky: it is meant for shutting down). Operations that do not wait
 * (non-blocking peek, release, commit, close) still work. Async-signal-
 * safe: call it from a SIGINT/SIGTERM handler. A tap's wait polls and
 * sees the interrupt within its next poll (at most about 1 ms); on a ring
 * attached with PBR_ATTACH_READONLY nothing is written to the ring.
 */
PBR_API void pbr_ring_interrupt(struct pbr_ring *ring);

/** 1 if pbr_ring_interrupt() has been called on @ring, else 0. */
PBR_API int pbr_ring_interrupted(const struct pbr_ring *ring);

enum pbr_wait {
	PBR_WAIT_BLOCK = 0, /* spin briefly, then sleep on a futex (default) */
	PBR_WAIT_SPIN = 1,  /* busy-spin (lowest latency, burns a core) */
	PBR_WAIT_YIELD = 2, /* spin, then sched_yield() */
};

/* ------------------------------------------------------------------------
 * Producers
 */
/** Flags for pbr_producer_opts.flags. */
#define PBR_PRODUCER_NO_TIMESTAMP                                              \
	0x1u /* pbr_producer_send_pb and                                       \
	      * pbr_producer_commit_pb leave                                   \
	      * timestamp_ns 0 (no clock read per                              \
	      * message, ~23 ns; readers then show                             \
	      * no latency) */

struct pbr_producer_opts {
	enum pbr_wait wait; /* how reserve waits for space */
	uint32_t flags;	    /* PBR_PRODUCER_* */
};

/**
 * Register a producer on @ring (@o NULL: blocking waits, no flags).
 * -EINVAL for unknown flags. -EBUSY if every producer entry is taken
 * (on a single-producer ring: if a live producer exists). Reclaims dead
 * producer entries it meets.
 */
PBR_API PBR_MUST_CHECK int pbr_producer_open(struct pbr_ring *ring,
					     const struct pbr_producer_opts *o,
					     struct pbr_producer **out);

/**
 * Deregister. A reservation still open is aborted (readers skip it).
 * Returns 0, or -errno if that abort could not be published (the slot is
 * then recovered by the next participant that finds it, as for a crash).
 */
PBR_API int pbr_producer_close(struct pbr_producer *p);

/** This producer's id (its entry index), as stamped into its slots. */
PBR_API uint16_t pbr_producer_id(const struct pbr_producer *p);

/** A reserved slot: writable from reserve until commit or abort. */
struct pbr_slot {
	void *data;	/* payload, cap bytes, inside the ring */
	uint32_t cap;	/* payload capacity */
	uint16_t flags; /* caller may set PBR_SLOT_F_CRC/F_TRACE/F_SOURCE */
	uint8_t trace_flags; /* W3C trace-flags, with PBR_SLOT_F_TRACE */
	uint8_t reserved;
	uint64_t seq;	 /* the sequence number this slot will carry */
	uint32_t crc32c; /* with PBR_SLOT_F_CRC */
	uint32_t reserved2;
	uint64_t timestamp_ns; /* stored as is; 0 = unset */
	uint8_t trace_id[16];  /* with PBR_SLOT_F_TRACE */
	uint8_t span_id[8];
	/* with PBR_SLOT_F_SOURCE (format 1.3): a source id stored after the
	 * payload, atomically with the message (e.g. a Redis stream entry id
	 * <ms>-<seq> as {ms, seq}); needs PBR_SOURCE_OFF(len) + 16 <= cap */
	uint64_t source[2];
};

/**
 * Claim the next sequence and its slot. Waits for space while a gating
 * reader still holds the slot, per the producer's wait mode, up to
 * @timeout_ns. -EAGAIN (timeout 0) or -ETIMEDOUT when the ring stays full;
 * on a multi-producer ring the claimed sequence then stays this producer's
 * and the next reserve continues with it. -EINPROGRESS if a reservation
 * is already open. The slot is zeroed except data/cap/seq.
 */
PBR_API PBR_MUST_CHECK int pbr_producer_reserve(struct pbr_producer *p,
						int64_t timeout_ns,
						struct pbr_slot *slot);

/**
 * Publish the reserved slot with @len payload bytes (and the slot's flags,
 * crc32c, timestamp, trace fields and source id). -EMSGSIZE if len > cap,
 * or with PBR_SLOT_F_SOURCE if PBR_SOURCE_OFF(len) + 16 > cap (nothing is
 * published and the reservation stays open), -EINVAL if @slot is not the
 * open reservation, -EOWNERDEAD if the slot was reclaimed because this
 * producer was taken for dead (the message is lost; reopen the producer).
 */
PBR_API PBR_MUST_CHECK int pbr_producer_commit(struct pbr_producer *p,
					       struct pbr_slot *slot,
					       uint32_t len);

/**
 * Give up the open reservation: the sequence is published as a skip
 * record that readers pass over without delivering or counting it.
 */
PBR_API PBR_MUST_CHECK int pbr_producer_abort(struct pbr_producer *p,
					      struct pbr_slot *slot);

/**
 * Whether the ring's CRC policy asks for a checksum of a payload of @len
 * bytes: 1 or 0 (PBR_CRC_FULL: always; NONE: never; UPTO: len <=
 * crc_limit).
 * pbr_producer_send() and pbr_producer_send_pb() follow it; callers of
 * pbr_producer_reserve() + pbr_producer_commit() should too.
 */
PBR_API int pbr_producer_wants_crc(const struct pbr_producer *p, uint32_t len);

/** Flags for pbr_producer_send(). */
#define PBR_SEND_CRC                                                           \
	0x1u /* CRC32C (PBR_SLOT_F_CRC) as the ring's policy                   \
	      * asks: pbr_producer_wants_crc() */
#define PBR_SEND_TIMESTAMP 0x2u /* stamp pbr_clock_ns() as timestamp_ns */

/**
 * Send a serialized message: reserve, copy @len bytes from @buf, commit.
 * With PBR_SEND_CRC the slot carries the payload's CRC32C where the ring's
 * CRC policy asks for one, and readers that verify (pbr_view_verify, the
 * commands, Go, Python) check it; with
 * PBR_SEND_TIMESTAMP its timestamp_ns is pbr_clock_ns() at commit. Pass
 * both unless you know every reader does without. -EINVAL for a NULL
 * @buf with a length, or unknown flags; -EMSGSIZE before anything is
 * claimed if @len exceeds the payload capacity; otherwise the errors of
 * pbr_producer_reserve() and pbr_producer_commit().
 *
 * Which call sends what: pbr_producer_send() copies a message you have in
 * a buffer; pbr_producer_reserve() + pbr_producer_commit() write it in
 * place (no copy; set slot.crc32c and PBR_SLOT_F_CRC yourself if readers
 * should verify it); pbr_producer_send_pb() (<pbring/pb.h>) encodes a
 * nanopb struct straight into the slot.
 */
PBR_API PBR_MUST_CHECK int pbr_producer_send(struct pbr_producer *p,
					     const void *buf, uint32_t len,
					     unsigned flags,
					     int64_t timeout_ns);

/**
 * pbr_producer_send() with a source id (PBR_SLOT_F_SOURCE, format 1.3):
 * {hi, lo} is stored after the payload and published atomically with it.
 * -EMSGSIZE before anything is claimed if PBR_SOURCE_OFF(len) + 16
 * exceeds the payload capacity; otherwise as pbr_producer_send().
 */
PBR_API PBR_MUST_CHECK int
pbr_producer_send_source(struct pbr_producer *p, const void *buf, uint32_t len,
			 unsigned flags, uint64_t hi, uint64_t lo,
			 int64_t timeout_ns);

/** CLOCK_MONOTONIC nanoseconds: the clock of slot timestamps (FORMAT.md
 * §6), to compare with pbr_view.timestamp_ns from the same host. */
PBR_API uint64_t pbr_clock_ns(void);

/* ------------------------------------------------------------------------
 * Readers
 */
#define PBR_START_OLDEST 0u /* the oldest message still in the ring */
#define PBR_START_LATEST 1u /* only messages committed after open */

/* Reader option (not stored in the entry): record each message's
 * commit-to-receive latency (now - timestamp_ns) in the ring's metrics
 * block (FORMAT.md §5.5), for exporters. Costs one clock read per peek
 * that returns new messages. */
#define PBR_READER_LATENCY 0x100u
/* Reader option: a tap, a read-only observer (FORMAT.md §9.5). It reads
 * as a lossy reader does (PBR_READER_LOSSY is implied) but writes nothing
 * to the ring: it takes no participant entry (never -EBUSY; not listed by
 * pbr_ring_participants(), not in the ring's metrics), never holds
 * producers back, keeps its counters in pbr_reader_stats() only, cannot
 * recover a dead producer's slot, and waits by polling (spin, then sleeps
 * of a few us growing to 1 ms) since it cannot register on a doorbell.
 * The only reader a ring attached with PBR_ATTACH_READONLY can open;
 * works on read-write rings too. Not with PBR_READER_LATENCY (-EINVAL):
 * the histogram lives in a reader entry's block. */
#define PBR_READER_TAP 0x200u

/* PBR_READER_DURABLE (layout.h, 0x4): a durable (named) gating reader,
 * on a ring created with PBR_CREATE_DURABLE_READERS; see pbr_reader_open. */

struct pbr_reader_opts {
	uint32_t flags;	    /* PBR_READER_LOSSY, PBR_READER_LATENCY,
			     * PBR_READER_TAP or PBR_READER_DURABLE; default
			     * is gating, no latency */
	uint32_t start;	    /* PBR_START_*; for a durable reader, where a
			     * new one starts (a resumed one: its cursor) */
	enum pbr_wait wait; /* how peek waits for data */
	const char *name;   /* PBR_READER_DURABLE: 1..31 bytes of
			     * [A-Za-z0-9._-] (pbr_reader_name_check) */
};

/**
 * Register a reader. -EBUSY if every reader entry is taken; -EINVAL for
 * unknown flags, a bad start, or PBR_READER_TAP with PBR_READER_LATENCY;
 * -EROFS on a ring attached with PBR_ATTACH_READONLY unless @o asks for a
 * tap (PBR_READER_TAP).
 *
 * A tap (PBR_READER_TAP) joins nothing: it starts at the claim
 * (PBR_START_LATEST) or at the oldest message still in the ring, reads
 * every message while it keeps up, and when lapped skips ahead and counts
 * what it lost (pbr_reader_stats(); backlog found at open that is
 * overwritten counts as missed). Its views are always PBR_VIEW_UNSTABLE,
 * so trust what was read only once the release returned 0. A producer
 * that died in the middle of a message stalls a tap at that sequence
 * until a participant that can write recovers it (a reader waiting at
 * that sequence, a producer that needs its slot, or pbr_ring_reclaim()).
 *
 * What a gating reader is owed (FORMAT.md §9.1): every message committed
 * after its open, exactly once and in order (or counted as abandoned if
 * its producer died). With PBR_START_OLDEST it also reads the backlog
 * the ring held at open, but producers did not know it needed that, so a
 * backlog message may be overwritten before it is read: it is then never
 * delivered, counted as missed (not lost), and release reports -ESTALE
 * for a view overwritten while held. Check a backlog view's contents only
 * after its release returned 0: release views one at a time, or take the
 * whole batch's -ESTALE as "discard all of it".
 */
PBR_API PBR_MUST_CHECK int pbr_reader_open(struct pbr_ring *ring,
					   const struct pbr_reader_opts *o,
					   struct pbr_reader **out);
/*
 * Durable readers (PBR_READER_DURABLE with o->name; FORMAT.md §9.1, §9.6):
 * a gating reader whose position outlives its process. When its process
 * dies (or closes it) the entry stays, "detached", and keeps gating at
 * its cursor: producers wait for it (-ETIMEDOUT, -EAGAIN) rather than
 * reap it. Opening the same name again takes it over and resumes at its
 * cursor: every message it had not released (peeked or not) is delivered
 * again, so nothing released is delivered twice and nothing is lost.
 * pbr_reader_open() returns 0 when it created the entry, 1 when it took
 * over a detached one; -EBUSY if the named reader's owner is alive (or
 * every entry is taken); -EOPNOTSUPP if the ring was not created with
 * PBR_CREATE_DURABLE_READERS; -EINVAL for a bad or missing name, or
 * DURABLE with LOSSY or TAP; -EUCLEAN if the entry's cursor is not within
 * the ring (a damaged segment).
 */

/** Deregister; the reader stops gating at once. A durable reader is
 *  detached instead: its entry keeps gating at its cursor. */
PBR_API void pbr_reader_close(struct pbr_reader *rd);

/**
 * Close @rd and, if it is durable, remove its entry (it stops gating; the
 * name is free again). 0 (for a non-durable reader: as pbr_reader_close).
 */
PBR_API int pbr_reader_drop(struct pbr_reader *rd);

/**
 * Remove the detached durable reader @name from @ring: it stops gating.
 * 0; -ENOENT no durable reader of that name; -EBUSY its owner is alive;
 * -EINVAL bad name; -EOPNOTSUPP the ring has no durable readers; -EROFS
 * on a ring attached read-only.
 */
PBR_API PBR_MUST_CHECK int pbr_ring_drop_reader(struct pbr_ring *ring,
						const char *name);

/** Check a durable reader's name: 0 if valid (1..31 bytes of
 *  [A-Za-z0-9._-]), -EINVAL if not. */
PBR_API PBR_MUST_CHECK int pbr_reader_name_check(const char *name);

/** 1 if @rd is durable (PBR_READER_DURABLE), else 0. */
PBR_API int pbr_reader_durable(const struct pbr_reader *rd);

/* The view's slot may be overwritten while it is held (a lossy reader,
 * or the backlog a gating reader found at open): trust what was read from
 * it only once its release has returned 0. Without this flag the slot is
 * stable until released. */
#define PBR_VIEW_UNSTABLE 0x1u

/** A committed message, read in place. Valid until released. */
struct pbr_view {
	const void *data;	 /* payload inside the ring */
	uint32_t len;		 /* payload bytes, <= the ring's payload_cap */
	uint16_t producer;	 /* producer id */
	uint16_t flags;		 /* PBR_SLOT_F_CRC, PBR_SLOT_F_TRACE */
	uint64_t seq;		 /* sequence number */
	uint64_t timestamp_ns;	 /* as the producer stored it */
	uint32_t crc32c;	 /* with PBR_SLOT_F_CRC */
	uint32_t vflags;	 /* PBR_VIEW_UNSTABLE */
	const uint8_t *trace_id; /* 16 bytes, with PBR_SLOT_F_TRACE */
	const uint8_t *span_id;	 /* 8 bytes */
	uint8_t trace_flags;	 /* W3C trace-flags, with PBR_SLOT_F_TRACE */
	uint8_t reserved[7];
	/* with PBR_SLOT_F_SOURCE (format 1.3): the message's source id,
	 * copied from the slot; the flag is set only if the slot's trailer
	 * was within the payload capacity. For a PBR_VIEW_UNSTABLE view
	 * trust it, as the payload, only once the release returned 0. */
	uint64_t source[2];
};

/**
 * Return the next unreleased message without consuming it (a second peek
 * returns the same one). Skip and abandoned records are passed over (the
 * latter counted). Returns 0 with @v filled; -EAGAIN (timeout 0) or
 * -ETIMEDOUT if nothing arrives; -EBADMSG if the next slot's header is
 * corrupt: the slot is skipped and counted, v->seq names it, and the next
 * peek continues after it. A lossy reader that was lapped skips ahead and
 * counts the loss (pbr_reader_stats) before returning the next message.
 */
PBR_API PBR_MUST_CHECK int
pbr_reader_peek(struct pbr_reader *rd, int64_t timeout_ns, struct pbr_view *v);

/**
 * Like pbr_reader_peek, for up to @max consecutive messages: returns how
 * many views were filled (>= 1), stopping early at the first slot not yet
 * published or not plainly a message. Release the batch by releasing its
 * last view.
 */
PBR_API PBR_MUST_CHECK int pbr_reader_peek_batch(struct pbr_reader *rd,
						 struct pbr_view *views,
						 unsigned max,
						 int64_t timeout_ns);

/**
 * Release every peeked message up to and including @v: producers may now
 * reuse their slots and the views are invalid. Returns 0; a lossy reader
 * gets -ESTALE if any of those slots was overwritten while it held the
 * view (whatever was read from it must be discarded; counted as lost). A
 * gating reader opened at PBR_START_OLDEST can get the same for the
 * backlog it found at open (counted as missed, see pbr_reader_open); from
 * the messages committed after its open on, it loses nothing.
 * -EINVAL if @v is not a message this reader has peeked.
 */
PBR_API PBR_MUST_CHECK int pbr_reader_release(struct pbr_reader *rd,
					      const struct pbr_view *v);

/** Reader counters; a tap's live only here (it has no entry). */
struct pbr_reader_stats {
	uint64_t cursor;    /* next sequence to read */
	uint64_t delivered; /* messages released */
	uint64_t lost;	    /* lossy, tap: overwritten before they were read */
	uint64_t abandoned; /* slots of dead producers passed over */
	uint64_t bad;	    /* corrupt slots passed over (-EBADMSG) */
	/* Backlog found at open (PBR_START_OLDEST) that was overwritten
	 * before it was read: never delivered, not a loss of the stream. */
	uint64_t missed;
	uint64_t crc_errors;	/* pbr_reader_verify() failures */
	uint64_t decode_errors; /* pbr_reader_reject() calls counted */
};

PBR_API void pbr_reader_stats(const struct pbr_reader *rd,
			      struct pbr_reader_stats *st);

/** Reader index in the participant table; UINT32_MAX for a tap, which
 *  has no entry. */
PBR_API uint32_t pbr_reader_index(const struct pbr_reader *rd);

/* ------------------------------------------------------------------------
 * Checksums and schema identity (FORMAT.md §6.2, §3.2)
 */

/**
 * CRC32C (Castagnoli) of @len bytes, continuing from @crc: pass 0 to start,
 * or an earlier result to extend it (crc(a||b) = pbr_crc32c(crc(a), b)).
 * Standard parameters: pbr_crc32c(0, "123456789", 9) == 0xE3069283.
 * Uses AVX-512 VPCLMULQDQ folding (from 512 bytes) and the SSE4.2 crc32
 * instruction when the CPU has them (about 18 ns per KiB on a Zen 4).
 */
PBR_API uint32_t pbr_crc32c(uint32_t crc, const void *buf, size_t len);

/**
 * Check a view's payload against its CRC32C: 0 if it matches or the
 * producer stored none (no PBR_SLOT_F_CRC), -EBADMSG if it differs.
 */
PBR_API PBR_MUST_CHECK int pbr_view_verify(const struct pbr_view *v);

/**
 * pbr_view_verify() for a view of @rd's, counted in the ring's metrics
 * (a tap's only in pbr_reader_stats()):
 * 0 if the payload matches its CRC32C (or carries none); -EBADMSG if it
 * differs, counted in crc_errors; -ESTALE, not counted, if the view was
 * unstable (PBR_VIEW_UNSTABLE) and its slot has been overwritten since:
 * the message was lost, not corrupt, and its release counts it.
 */
PBR_API PBR_MUST_CHECK int pbr_reader_verify(struct pbr_reader *rd,
					     const struct pbr_view *v);

/**
 * Report that the application could not decode the payload of @v (a
 * view of @rd's, not yet released): 0 once counted in decode_errors (in
 * the ring's metrics; a tap's only in pbr_reader_stats());
 * -ESTALE, not counted, if the view was unstable and its slot has been
 * overwritten since (the bytes decoded were not the message's). Release
 * the view as usual afterwards.
 */
PBR_API int pbr_reader_reject(struct pbr_reader *rd, const struct pbr_view *v);

/* --- trace context (W3C traceparent in the slot header, FORMAT.md §6) --- */

/** Characters of a version-00 traceparent, without its NUL. */
#define PBR_TRACEPARENT_LEN 55

/**
 * Parse a W3C `traceparent` ("00-<32 hex>-<16 hex>-<2 hex>", lowercase)
 * into its trace id (16 bytes), parent (span) id (8) and trace-flags.
 * 0, or -EINVAL
 * (outputs untouched) for anything else: wrong length or separators,
 * uppercase or non-hex digits, version ff, an all-zero trace or span id.
 * A later version's longer header is accepted for its first four fields,
 * as the spec asks.
 */
PBR_API PBR_MUST_CHECK int pbr_traceparent_parse(const char *tp,
						 uint8_t *trace_id,
						 uint8_t *span_id,
						 uint8_t *trace_flags);

/**
 * Write the version-00 `traceparent` of these ids (16 and 8 bytes) into
 * @out (at least
 * PBR_TRACEPARENT_LEN + 1 bytes), NUL-terminated. 0; -ENODATA if either
 * id is all zeros (no valid context); -EINVAL if @n is too small.
 */
PBR_API PBR_MUST_CHECK int pbr_traceparent_format(const uint8_t *trace_id,
						  const uint8_t *span_id,
						  uint8_t trace_flags,
						  char *out, size_t n);

/**
 * Give a reserved slot the trace context @tp (a traceparent): its ids and
 * flags, and PBR_SLOT_F_TRACE, which commit stores. -EINVAL (slot
 * unchanged) if @tp is not a valid traceparent.
 */
PBR_API PBR_MUST_CHECK int pbr_slot_set_traceparent(struct pbr_slot *slot,
						    const char *tp);

/**
 * The trace context of a message as a traceparent in @out (at least
 * PBR_TRACEPARENT_LEN + 1 bytes). 0; -ENODATA if it carries none
 * (no PBR_SLOT_F_TRACE, or an all-zero id); -EINVAL if @n is too small.
 * Read it before releasing the view, as its payload.
 */
PBR_API PBR_MUST_CHECK int pbr_view_traceparent(const struct pbr_view *v,
						char *out, size_t n);

/**
 * Schema identity, as stored in pbr_create_opts.schema_hash: FNV-1a 64 over
 * the bytes of the serialized FileDescriptorSet (offset basis
 * 0xcbf29ce484222325, prime 0x100000001b3, each byte XORed in and then
 * multiplied, modulo 2^64). Two exceptions keep 0 meaning "no schema":
 * no bytes (len 0) hash to 0, and a hash that comes out 0 is returned
 * as 1.
 */
PBR_API uint64_t pbr_schema_hash(const void *fds, size_t len);

/**
 * Does @ring carry @msg_type (a protobuf full name, e.g.
 * "pbring.demo.v1.DeviceEvent")? 0 if the ring's msg_type is exactly
 * @msg_type and, when both @schema_hash and the ring's schema_hash are
 * non-zero, they are equal; -EMEDIUMTYPE otherwise (an untyped ring never
 * matches); -EINVAL if @msg_type is NULL.
 */
PBR_API PBR_MUST_CHECK int pbr_ring_check_type(const struct pbr_ring *ring,
					       const char *msg_type,
					       uint64_t schema_hash);

#ifdef __cplusplus
}
#endif

#endif /* PBRING_H */
