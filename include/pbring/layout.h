/* SPDX-License-Identifier: MIT */
/*
 * pbring segment layout: the byte offsets and constants of format 1.
 *
 * This header is the segment ABI. docs/FORMAT.md is its normative prose;
 * the Go and Python implementations are written from that document and
 * checked against these numbers. Every multi-byte field is little-endian
 * and naturally aligned. Nothing here is a pointer; nothing is a bitfield.
 * The structs exist only so that the compiler can check the offsets
 * (_Static_assert below); code that touches shared memory goes through
 * shm/atomics.h.
 */
#ifndef PBRING_LAYOUT_H
#define PBRING_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

/* Format version of the segment; independent of the library version. */
#define PBR_FORMAT_MAJOR 1u
#define PBR_FORMAT_MINOR 3u

/* Bytes "\x89PBRING\n" read as a little-endian u64 (byte-order revealing). */
#define PBR_MAGIC 0x0A474E4952425089ull

/* Every independently written word lives in its own block of this size. */
#define PBR_BLOCK 128u
#define PBR_PAGE 4096u

/* Superblock state word (published last with a release store). */
#define PBR_STATE_INIT 0u
#define PBR_STATE_READY 1u

/* The creator holds an OFD write lock on this byte (the superblock's
 * first) from just after the object appears until READY is published: a
 * ring that is not READY and whose creation lock is free is damaged. */
#define PBR_CREATION_LOCK 0

/* Superblock ring flags (fixed at creation). */
#define PBR_RING_SINGLE_PRODUCER 0x1u

/* Feature bits. features_compat bit 0 (1.2): the participant table
 * holds a reader metrics block per reader entry (FORMAT.md §5.5). */
#define PBR_FEATURE_READER_METRICS 0x1ull
/* features_incompat bit 0 (1.3): reader entries may be durable (named):
 * a dead DURABLE reader is never reaped, it keeps gating until a join
 * that names it takes it over or it is dropped (FORMAT.md §8.4, §9.1).
 * Incompatible: a 1.2 participant would reap it and lose its backlog. */
#define PBR_FEATURE_DURABLE_READERS 0x1ull
#define PBR_FEATURES_INCOMPAT_KNOWN PBR_FEATURE_DURABLE_READERS
#define PBR_FEATURES_COMPAT_KNOWN PBR_FEATURE_READER_METRICS

/* Ring NAME is the POSIX shared-memory object "/" PBR_NAME_PREFIX NAME,
 * on Linux the file PBR_SHM_DIR "/" PBR_NAME_PREFIX NAME (FORMAT.md §2). */
#define PBR_NAME_PREFIX "pbring."
#define PBR_SHM_DIR "/dev/shm"

/* Limits enforced at creation and on attach. */
#define PBR_NAME_MAX 63u      /* ring name bytes, without NUL */
#define PBR_MSG_TYPE_MAX 191u /* message full name bytes, without NUL */
#define PBR_SLOT_HDR_SIZE 64u
#define PBR_SLOT_SIZE_MIN 128u
#define PBR_SLOT_SIZE_MAX (1u << 30)
#define PBR_SLOT_COUNT_MIN 2u
#define PBR_SLOT_COUNT_MAX (1u << 24)
#define PBR_PARTICIPANTS_MAX 1024u /* per kind: producers, readers */

/* --- superblock: offset 0, one page ------------------------------------ */
struct pbr_layout_super {
	uint64_t magic;		    /* 0x000 PBR_MAGIC */
	uint32_t state;		    /* 0x008 PBR_STATE_*, release-stored last */
	uint16_t major;		    /* 0x00C PBR_FORMAT_MAJOR */
	uint16_t minor;		    /* 0x00E PBR_FORMAT_MINOR */
	uint32_t fingerprint;	    /* 0x010 PBR_LAYOUT_FINGERPRINT */
	uint32_t ring_flags;	    /* 0x014 PBR_RING_* */
	uint64_t features_incompat; /* 0x018 unknown bit: refuse */
	uint64_t features_compat;   /* 0x020 unknown bit: ignore */
	uint64_t total_size;	    /* 0x028 bytes of the whole segment */
	uint32_t slot_count;	    /* 0x030 power of two */
	uint32_t slot_size;	    /* 0x034 multiple of PBR_BLOCK */
	uint32_t max_producers;	    /* 0x038 producer entries */
	uint32_t max_readers;	    /* 0x03C reader entries */
	uint64_t control_off;	    /* 0x040 */
	uint64_t control_size;	    /* 0x048 */
	uint64_t participants_off;  /* 0x050 */
	uint64_t participants_size; /* 0x058 */
	uint64_t schema_off;	    /* 0x060 */
	uint64_t schema_size;	    /* 0x068 region capacity */
	uint64_t slots_off;	    /* 0x070 */
	uint64_t slots_size;	    /* 0x078 slot_count * slot_size */
	uint64_t seq_base;	    /* 0x080 first sequence number */
	uint64_t schema_hash;	    /* 0x088 0 = none */
	uint32_t schema_len;	    /* 0x090 bytes used in the schema region */
	uint32_t creator_uid;	    /* 0x094 */
	uint32_t creator_pid;	    /* 0x098 */
	uint32_t crc_policy;	    /* 0x09C PBR_CRC_* (1.1; 0 = FULL) */
	uint64_t created_ns;	    /* 0x0A0 CLOCK_REALTIME at creation */
	uint32_t crc_limit;	    /* 0x0A8 PBR_CRC_UPTO: bytes (1.1) */
	uint32_t reserved0;	    /* 0x0AC zero */
	uint64_t reserved1[10];	    /* 0x0B0 zero */
	char name[64];		    /* 0x100 ring name, NUL-padded */
	char msg_type[192];	    /* 0x140 message full name, NUL-padded */
	uint8_t reserved2[3584];    /* 0x200 zero, to the end of the page */
};

/* --- control block: one page, one 128-byte block per writer class ----- */
#define PBR_CTL_CLAIM 0x000u	  /* u64: producers */
#define PBR_CTL_DATA_BELL 0x080u  /* u32 futex, u32 waiters: readers sleep */
#define PBR_CTL_SPACE_BELL 0x100u /* u32 futex, u32 waiters: producers */
#define PBR_CTL_STATS 0x180u	  /* u64 counters written on recovery */
#define PBR_CTL_SIZE PBR_PAGE

struct pbr_layout_bell {
	uint32_t futex;	  /* +0 bumped, then FUTEX_WAKE, by the other side */
	uint32_t waiters; /* +4 sleepers registered on futex */
};

struct pbr_layout_stats {
	uint64_t abandoned; /* +0x00 slots turned into abandoned records */
	uint64_t producers_reaped; /* +0x08 dead producer entries freed */
	uint64_t readers_reaped;   /* +0x10 dead reader entries freed */
};

/* --- participant table: producers then readers, PBR_BLOCK each -------- */
#define PBR_ENTRY_SIZE PBR_BLOCK

#define PBR_ENTRY_FREE 0u
#define PBR_ENTRY_ACTIVE 1u

/* Producer entry "pending" values besides a sequence number. */
#define PBR_PENDING_IDLE 0ull
#define PBR_PENDING_CLAIMING 1ull
/* pending = PBR_PENDING_SEQ(s) while sequence s is claimed, not committed */
#define PBR_PENDING_SEQ(s) ((((uint64_t)(s)) << 2) | 2u)

struct pbr_layout_producer {
	uint32_t state;	    /* 0x00 PBR_ENTRY_* */
	uint32_t pid;	    /* 0x04 diagnostics only; liveness is the lock */
	uint64_t pending;   /* 0x08 PBR_PENDING_* */
	uint64_t committed; /* 0x10 messages committed (statistics) */
	uint64_t joined_ns; /* 0x18 CLOCK_REALTIME at open */
	/* 1.1, statistics written by the owner only (relaxed): */
	uint64_t bytes;	     /* 0x20 payload bytes committed */
	uint64_t aborts;     /* 0x28 skip records published */
	uint64_t blocked_ns; /* 0x30 time waited for space */
	uint8_t reserved[72];
};

#define PBR_READER_GATING 0x1u
#define PBR_READER_LOSSY 0x2u
/* 1.3, with PBR_FEATURE_DURABLE_READERS: a durable (named) gating reader;
 * the entry's name holds 1..PBR_READER_NAME_MAX bytes of [A-Za-z0-9._-],
 * NUL-padded. Written before state becomes ACTIVE, like flags. */
#define PBR_READER_DURABLE 0x4u
#define PBR_READER_NAME_SIZE 32u
#define PBR_READER_NAME_MAX (PBR_READER_NAME_SIZE - 1u)
/* Control-block byte whose OFD write lock serialises durable joins by
 * name (and nothing else): a join holds it from its search for the name
 * until its entry is ACTIVE, so two joins cannot both create one name. */
#define PBR_CTL_NAME_LOCK 0x200u

struct pbr_layout_reader {
	uint64_t cursor;    /* 0x00 next sequence; all below are released */
	uint32_t state;	    /* 0x08 PBR_ENTRY_* */
	uint32_t flags;	    /* 0x0C PBR_READER_GATING or PBR_READER_LOSSY */
	uint32_t pid;	    /* 0x10 diagnostics only */
	uint32_t reserved0; /* 0x14 */
	uint64_t delivered; /* 0x18 statistics, written by the reader only */
	uint64_t lost;	    /* 0x20 */
	uint64_t abandoned; /* 0x28 */
	uint64_t joined_ns; /* 0x30 CLOCK_REALTIME at join */
	/* 1.2, statistics written by the reader only (relaxed): */
	uint64_t bad;		/* 0x38 corrupt slots passed over */
	uint64_t crc_errors;	/* 0x40 payloads that failed their CRC */
	uint64_t decode_errors; /* 0x48 payloads the application rejected */
	/* 1.3, with PBR_READER_DURABLE: the reader's name, NUL-padded */
	char name[PBR_READER_NAME_SIZE]; /* 0x50 */
	uint8_t reserved[16];		 /* 0x70 */
};

/* --- reader metrics blocks (1.2, PBR_FEATURE_READER_METRICS) ---------- */
/*
 * Reader entry j's block is at participants_off + PBR_ENTRY_SIZE *
 * (max_producers + max_readers) + PBR_METRICS_SIZE * j, written by the
 * entry's owner only (relaxed stores). A block whose joined_ns differs
 * from its entry's is stale (an earlier owner's): ignore it.
 */
#define PBR_METRICS_SIZE 256u
#define PBR_LATENCY_BUCKETS 23u /* 22 bounds, then > 1 s */

/* Upper bounds (ns) of latency buckets 0..21; bucket 22 is the rest. */
#define PBR_LATENCY_BOUNDS_NS                                                  \
	{                                                                      \
		100ull, 200ull, 500ull, 1000ull, 2000ull, 5000ull, 10000ull,   \
			20000ull, 50000ull, 100000ull, 200000ull, 500000ull,   \
			1000000ull, 2000000ull, 5000000ull, 10000000ull,       \
			20000000ull, 50000000ull, 100000000ull, 200000000ull,  \
			500000000ull, 1000000000ull                            \
	}
#define PBR_LATENCY_CAP_NS (1ull << 40) /* a sample's cap in the sum */

struct pbr_layout_metrics {
	uint64_t joined_ns;		       /* 0x00 copy of the entry's */
	uint64_t latency_sum_ns;	       /* 0x08 */
	uint64_t latency[PBR_LATENCY_BUCKETS]; /* 0x10 not cumulative */
	uint8_t reserved[56];		       /* 0xC8 */
};

/* --- slots: slot_count * slot_size, page-aligned --------------------- */
/*
 * Commit word encodings. The low two bits are the state, the rest the
 * sequence s modulo 2^62 (s << 2 wraps with s, so a ring may start near
 * 2^64). 0 = never written.
 */
#define PBR_COMMIT_EMPTY 0ull
#define PBR_COMMIT_DONE(s) ((((uint64_t)(s)) << 2) | 1u)      /* published */
#define PBR_COMMIT_ABANDONED(s) ((((uint64_t)(s)) << 2) | 2u) /* recovered */
#define PBR_COMMIT_BUSY(s) ((((uint64_t)(s)) << 2) | 3u)      /* writing */
#define PBR_COMMIT_STATE(v) ((v)&3u)

/* Slot header flags (the high half of the u32 word at 0x10). */
#define PBR_SLOT_F_CRC 0x1u   /* crc32c holds CRC32C of the payload */
#define PBR_SLOT_F_SKIP 0x2u  /* aborted by its producer: skip silently */
#define PBR_SLOT_F_TRACE 0x4u /* trace_id/span_id are set */
/* 1.3: a source id (two little-endian u64, hi then lo) follows the payload
 * at payload offset PBR_SOURCE_OFF(length); only if it fits in the
 * payload capacity (a reader that finds it out of bounds ignores it). */
#define PBR_SLOT_F_SOURCE 0x8u
#define PBR_SOURCE_SIZE 16u
#define PBR_SOURCE_OFF(len) (((((uint64_t)(len)) + 7u) >> 3) << 3)

#define PBR_PRODUCER_NONE 0xFFFFu /* producer field of a recovered slot */

struct pbr_layout_slot {
	uint64_t commit;       /* 0x00 PBR_COMMIT_*, release-stored last */
	uint32_t length;       /* 0x08 payload bytes */
	uint32_t crc32c;       /* 0x0C with PBR_SLOT_F_CRC */
	uint16_t producer;     /* 0x10 producer entry index; read and   */
	uint16_t flags;	       /* 0x12 written as one u32 with flags */
	uint32_t reserved0;    /* 0x14 zero */
	uint64_t timestamp_ns; /* 0x18 producer's clock, 0 = unset */
	uint8_t trace_id[16];  /* 0x20 W3C trace context, with F_TRACE */
	uint8_t span_id[8];    /* 0x30 */
	uint8_t trace_flags;   /* 0x38 W3C trace-flags, with F_TRACE (1.1) */
	uint8_t reserved1[7];  /* 0x39 zero */
	/* 0x40: payload, slot_size - PBR_SLOT_HDR_SIZE bytes */
};

/*
 * Layout fingerprint: the sizes both sides must agree on, one per byte.
 * byte 0 slot header / 8, byte 1 participant entry / 8, byte 2 block / 8,
 * byte 3 0x80 (little-endian) | size of the atomic word.
 */
#define PBR_LAYOUT_FINGERPRINT                                                 \
	((uint32_t)(PBR_SLOT_HDR_SIZE / 8u) |                                  \
	 ((uint32_t)(PBR_ENTRY_SIZE / 8u) << 8) |                              \
	 ((uint32_t)(PBR_BLOCK / 8u) << 16) | ((uint32_t)(0x80u | 8u) << 24))

#define PBR_LAYOUT_ASSERT(cond) _Static_assert(cond, #cond)
#ifndef __cplusplus
PBR_LAYOUT_ASSERT(sizeof(struct pbr_layout_super) == PBR_PAGE);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, state) == 0x008);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, major) == 0x00C);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, fingerprint) == 0x010);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, ring_flags) == 0x014);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, crc_policy) == 0x09C);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, crc_limit) == 0x0A8);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, features_incompat) ==
		  0x018);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, total_size) == 0x028);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, slot_count) == 0x030);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, max_readers) == 0x03C);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, control_off) == 0x040);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, participants_off) == 0x050);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, schema_off) == 0x060);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, slots_off) == 0x070);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, seq_base) == 0x080);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, schema_hash) == 0x088);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, schema_len) == 0x090);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, creator_pid) == 0x098);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, created_ns) == 0x0A0);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, name) == 0x100);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, msg_type) == 0x140);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_super, reserved2) == 0x200);
PBR_LAYOUT_ASSERT(sizeof(struct pbr_layout_bell) == 8);
PBR_LAYOUT_ASSERT(sizeof(struct pbr_layout_stats) == 24);
PBR_LAYOUT_ASSERT(sizeof(struct pbr_layout_producer) == PBR_ENTRY_SIZE);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_producer, pending) == 0x08);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_producer, committed) == 0x10);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_producer, bytes) == 0x20);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_producer, aborts) == 0x28);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_producer, blocked_ns) == 0x30);
PBR_LAYOUT_ASSERT(sizeof(struct pbr_layout_reader) == PBR_ENTRY_SIZE);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_reader, state) == 0x08);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_reader, flags) == 0x0C);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_reader, delivered) == 0x18);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_reader, joined_ns) == 0x30);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_reader, bad) == 0x38);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_reader, crc_errors) == 0x40);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_reader, decode_errors) == 0x48);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_reader, name) == 0x50);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_reader, reserved) == 0x70);
PBR_LAYOUT_ASSERT(PBR_CTL_NAME_LOCK >= PBR_CTL_STATS + PBR_BLOCK &&
		  PBR_CTL_NAME_LOCK < PBR_CTL_SIZE);
PBR_LAYOUT_ASSERT(PBR_SOURCE_OFF(1) == 8 && PBR_SOURCE_OFF(8) == 8 &&
		  PBR_SOURCE_OFF(0) == 0);
PBR_LAYOUT_ASSERT(sizeof(struct pbr_layout_metrics) == PBR_METRICS_SIZE);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_metrics, latency_sum_ns) == 0x08);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_metrics, latency) == 0x10);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_metrics, reserved) == 0xC8);
PBR_LAYOUT_ASSERT(sizeof(struct pbr_layout_slot) == PBR_SLOT_HDR_SIZE);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_slot, length) == 0x08);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_slot, crc32c) == 0x0C);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_slot, producer) == 0x10);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_slot, flags) == 0x12);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_slot, timestamp_ns) == 0x18);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_slot, trace_id) == 0x20);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_slot, trace_flags) == 0x38);
PBR_LAYOUT_ASSERT(offsetof(struct pbr_layout_slot, span_id) == 0x30);
PBR_LAYOUT_ASSERT(PBR_LAYOUT_FINGERPRINT == 0x88101008u);
#endif

#endif /* PBRING_LAYOUT_H */
