// SPDX-License-Identifier: MIT

package pbring

import "strconv"

// The numbers of segment format 1 (docs/FORMAT.md), mirroring
// include/pbring/layout.h. layout_test.go parses that header and checks
// every constant and offset here against it, so the header stays the one
// source of truth.

// Format identity and limits.
const (
	FormatMajor = 1                  // format major version this package speaks
	FormatMinor = 3                  // format minor version it writes
	Magic       = 0x0A474E4952425089 // "\x89PBRING\n" as a little-endian u64
	// LayoutFingerprint encodes the sizes both sides must agree on (§3.1).
	LayoutFingerprint = 0x88101008

	blockSize = 128  // every independently written word has its own block
	pageSize  = 4096 // regions start on page boundaries

	NameMax         = 63      // ring name bytes
	MsgTypeMax      = 191     // message full name bytes
	SlotHeaderSize  = 64      // bytes before each slot's payload
	SlotSizeMin     = 128     // smallest slot, header included
	SlotSizeMax     = 1 << 30 // largest slot
	SlotCountMin    = 2       // fewest slots
	SlotCountMax    = 1 << 24 // most slots
	ParticipantsMax = 1024    // most producers, and most readers

	// A ring NAME is the file ShmDir/NamePrefix+NAME (§2).
	NamePrefix = "pbring."
	ShmDir     = "/dev/shm"

	stateInit  = 0 // superblock state while the creator fills it
	stateReady = 1 // published last (R0)
	// creationLock: the byte whose OFD lock the creator holds until READY.
	creationLock = 0

	ringSingleProducer = 0x1 // superblock ring_flags bit

	// featureReaderMetrics, features_compat bit 0 (1.2): the participant
	// table holds a metrics block per reader entry (§5.5). A 1.2 creator
	// sets it on every ring.
	featureReaderMetrics = 0x1
	// featureDurableReaders, features_incompat bit 0 (1.3): reader entries
	// may be durable (§9.6); a dead durable reader is never reaped (§8.4).
	featureDurableReaders = 0x1
	featuresIncompatKnown = featureDurableReaders
	featuresCompatKnown   = featureReaderMetrics
)

// CRCPolicy is a ring's CRC policy, the superblock's crc_policy (format
// 1.1, FORMAT.md §6.2): which payloads producers checksum, fixed at
// creation and followed by every producer in every language (see
// Producer.WantsCRC). Readers verify whatever carries FlagCRC. Without a
// CRC a reader still sees only whole messages from a live writer (the
// commit protocol guarantees that); the CRC adds a check of the bytes
// themselves against a buggy or hostile writer and memory faults, at one
// extra pass over the payload on each side. The values mirror C's
// PBR_CRC_FULL, PBR_CRC_NONE and PBR_CRC_UPTO (include/pbring.h).
type CRCPolicy uint32

// CRC policies.
const (
	CRCFull CRCPolicy = 0 // every payload (the default; what 1.0 rings have)
	CRCNone CRCPolicy = 1 // no payload
	CRCUpTo CRCPolicy = 2 // payloads of at most the ring's CRC limit bytes
)

// String is the policy's name in `pbring stat` and `pbring create --crc`:
// "full", "none", "upto"; "CRCPolicy(N)" for a value that is none of them.
func (c CRCPolicy) String() string {
	switch c {
	case CRCFull:
		return "full"
	case CRCNone:
		return "none"
	case CRCUpTo:
		return "upto"
	}
	return "CRCPolicy(" + strconv.FormatUint(uint64(c), 10) + ")"
}

// Slot flags, the high 16 bits of the slot header's producer_flags word.
const (
	FlagCRC   = 0x1 // the crc32c header field holds the payload's CRC32C
	FlagSkip  = 0x2 // an aborted sequence: readers pass over it silently
	FlagTrace = 0x4 // trace_id and span_id are set
	// FlagSource (1.3): a source id follows the payload (§6.3); see
	// Slot.SetSource and View.Source.
	FlagSource = 0x8
	sourceSize = 16 // bytes of the source id trailer

	// ProducerNone is the producer id of a recovered slot.
	ProducerNone = 0xFFFF
)

// Superblock offsets (§3).
const (
	sbMagic            = 0x000
	sbState            = 0x008
	sbMajor            = 0x00C
	sbMinor            = 0x00E
	sbFingerprint      = 0x010
	sbRingFlags        = 0x014
	sbFeaturesIncompat = 0x018
	sbFeaturesCompat   = 0x020
	sbTotalSize        = 0x028
	sbSlotCount        = 0x030
	sbSlotSize         = 0x034
	sbMaxProducers     = 0x038
	sbMaxReaders       = 0x03C
	sbControlOff       = 0x040
	sbControlSize      = 0x048
	sbParticipantsOff  = 0x050
	sbParticipantsSize = 0x058
	sbSchemaOff        = 0x060
	sbSchemaSize       = 0x068
	sbSlotsOff         = 0x070
	sbSlotsSize        = 0x078
	sbSeqBase          = 0x080
	sbSchemaHash       = 0x088
	sbSchemaLen        = 0x090
	sbCreatorUID       = 0x094
	sbCreatorPID       = 0x098
	sbCRCPolicy        = 0x09C // 1.1
	sbCreatedNs        = 0x0A0
	sbCRCLimit         = 0x0A8 // 1.1
	sbName             = 0x100
	sbNameSize         = 64
	sbMsgType          = 0x140
	sbMsgTypeSize      = 192
	sbSize             = pageSize
)

// Control block (§4).
const (
	ctlClaim     = 0x000
	ctlDataBell  = 0x080 // readers sleep here
	ctlSpaceBell = 0x100 // producers sleep here
	ctlStats     = 0x180
	ctlSize      = pageSize
	// ctlNameLock (1.3): the control-block byte whose OFD lock serialises
	// durable joins and drops by name (§9.6); never written.
	ctlNameLock = 0x200

	bellFutex   = 0x0 // u32 futex word, within a bell
	bellWaiters = 0x4 // u32 sleepers registered

	statAbandoned       = 0x00 // within ctlStats
	statProducersReaped = 0x08
	statReadersReaped   = 0x10
)

// Participant entries (§5).
const (
	entrySize   = blockSize
	entryFree   = 0
	entryActive = 1

	peState     = 0x00 // producer entry
	pePID       = 0x04
	pePending   = 0x08
	peCommitted = 0x10
	peJoinedNs  = 0x18
	peBytes     = 0x20 // 1.1 statistics, written by the owner only
	peAborts    = 0x28
	peBlockedNs = 0x30

	pendingIdle     = 0
	pendingClaiming = 1
	pendingSeqTag   = 2 // pending = s<<2 | 2 while s is claimed

	reCursor    = 0x00 // reader entry
	reState     = 0x08
	reFlags     = 0x0C
	rePID       = 0x10
	reDelivered = 0x18
	reLost      = 0x20
	reAbandoned = 0x28
	reJoinedNs  = 0x30
	reBad       = 0x38 // 1.2 statistics, written by the owner only
	reCRCErrors = 0x40
	reDecodeErr = 0x48
	reName      = 0x50 // 1.3: a durable reader's name, NUL-padded

	readerGating   = 0x1
	readerLossy    = 0x2
	readerDurable  = 0x4 // 1.3, with featureDurableReaders
	readerNameSize = 32
	// ReaderNameMax is the longest durable reader name, in bytes (§5.4).
	ReaderNameMax = readerNameSize - 1
)

// Reader metrics blocks (1.2, featureReaderMetrics, §5.5): reader entry
// j's block is at participants_off + entrySize*(max_producers +
// max_readers) + metricsSize*j, written by the entry's owner only.
const (
	metricsSize    = 256
	mbJoinedNs     = 0x00 // a copy of the entry's joined_ns: the block is its
	mbLatencySumNs = 0x08
	mbLatency      = 0x10 // LatencyBuckets u64, not cumulative

	// LatencyBuckets is the number of latency histogram buckets: one per
	// bound of LatencyBoundsNs, then one for latencies above 1 s.
	LatencyBuckets = 23
	latencyCapNs   = 1 << 40 // a sample's cap in latency_sum_ns
)

// LatencyBoundsNs are the upper bounds, in nanoseconds, of latency
// buckets 0..21 (FORMAT.md §5.5): bucket i counts latencies L with
// LatencyBoundsNs[i-1] < L <= LatencyBoundsNs[i]; bucket 22 counts L > 1 s.
var LatencyBoundsNs = [LatencyBuckets - 1]uint64{
	100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5,
	1e6, 2e6, 5e6, 1e7, 2e7, 5e7, 1e8, 2e8, 5e8, 1e9,
}

// latencyBounds: the package's own copy, which a caller cannot change.
var latencyBounds = LatencyBoundsNs

// latencyBucket is the bucket of a latency of l ns (most land in the
// first few).
func latencyBucket(l uint64) uint64 {
	i := uint64(0)
	for i < LatencyBuckets-1 && l > latencyBounds[i] {
		i++
	}
	return i
}

// Slot header (§6).
const (
	shCommit      = 0x00
	shLength      = 0x08
	shCRC32C      = 0x0C
	shProducer    = 0x10 // u16 producer id, read and written as one u32 with flags
	shFlags       = 0x12
	shTimestampNs = 0x18
	shTraceID     = 0x20
	shSpanID      = 0x30
	shTraceFlags  = 0x38 // 1.1: u8 W3C trace-flags, with FlagTrace

	commitEmpty     = 0
	commitDone      = 1 // low two bits of the commit word
	commitAbandoned = 2
	commitBusy      = 3

	seq62Mask = 1<<62 - 1
)

func pendingSeq(s uint64) uint64    { return s<<2 | pendingSeqTag }
func sourceOff(n uint64) uint64     { return (n + 7) &^ 7 } // align8: §6.3
func commitDoneOf(s uint64) uint64  { return s<<2 | commitDone }
func commitAbandOf(s uint64) uint64 { return s<<2 | commitAbandoned }
func commitBusyOf(s uint64) uint64  { return s<<2 | commitBusy }

// seqBefore: a comes before b in the wrapping order of sequences.
func seqBefore(a, b uint64) bool { return int64(a-b) < 0 } // #nosec G115 -- the wrap is the point: the sign of the difference

// commitCmp places commit word v relative to sequence s: 0 about s, > 0
// about a later sequence (s was overwritten), < 0 an earlier one (§6.1).
func commitCmp(v, s uint64) int {
	if v == commitEmpty {
		return -1
	}
	d := (v>>2 - s) & seq62Mask
	switch {
	case d == 0:
		return 0
	case d < 1<<61:
		return 1
	}
	return -1
}
