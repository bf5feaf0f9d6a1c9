// SPDX-License-Identifier: MIT

package pbring

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// Format 1.2 reader metrics (FORMAT.md §5.4-§5.6): the counters in the
// reader entry, the metrics block with its latency histogram, and the
// READER_METRICS feature bit that sizes the participant table for it.

// A created ring has the bit, minor 3 (since 1.3), and a participant table sized for
// the blocks, which sit after every entry, 256 bytes per reader.
func TestMetricsNewRingLayout(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128, MaxProducers: 3, MaxReaders: 20})
	le := binary.LittleEndian
	partOff, partSz := le.Uint64(r.mem[sbParticipantsOff:]), le.Uint64(r.mem[sbParticipantsSize:])
	if f := le.Uint64(r.mem[sbFeaturesCompat:]); f != 1 || le.Uint16(r.mem[sbMinor:]) != 3 {
		t.Fatalf("features_compat %#x, minor %d", f, le.Uint16(r.mem[sbMinor:]))
	}
	// (3+20)*128 + 20*256 = 8064: two pages (one without the blocks).
	if partSz != 8192 || le.Uint64(r.mem[sbSchemaOff:]) != partOff+8192 {
		t.Fatalf("participants_size %d", partSz)
	}
	if want := partOff + 128*23; r.g.mtab != want || r.readerMetrics(2) != want+512 {
		t.Fatalf("blocks at %#x, reader 2's at %#x, want %#x", r.g.mtab, r.readerMetrics(2), want)
	}
	// Readers 0..2: the third one's join stamps its block at the offset
	// FORMAT.md gives, with the entry's joined_ns (it records latency);
	// the second's is stamped 0 (it does not).
	var rds []*Reader
	for i := 0; i < 3; i++ {
		rd, err := r.NewReader(&ReaderOptions{Latency: i == 2})
		must(t, err)
		rds = append(rds, rd)
	}
	e := partOff + 128*(3+2)
	b := partOff + 128*(3+20) + 256*2
	if j := le.Uint64(r.mem[e+0x30:]); j == 0 || le.Uint64(r.mem[b:]) != j {
		t.Fatalf("block joined_ns %d, entry %d", le.Uint64(r.mem[b:]), j)
	}
	if j := le.Uint64(r.mem[b-256:]); j != 0 {
		t.Fatalf("block of a reader without Latency stamped %d", j)
	}
	// The same geometry as the C library's (plan_layout).
	var sb superblock
	o := &CreateOptions{MaxProducers: 1, MaxReaders: 1}
	must(t, planLayout(o, &sb))
	if sb.partSz != 4096 {
		t.Fatalf("1+1 entries: participants_size %d", sb.partSz)
	}
	o = &CreateOptions{MaxProducers: 1024, MaxReaders: 1024}
	must(t, planLayout(o, &sb))
	if sb.partSz != 2048*128+1024*256 {
		t.Fatalf("1024+1024 entries: participants_size %d", sb.partSz)
	}
}

// Attach: with the bit, a table too small for the blocks is damaged;
// without it (a 1.0 or 1.1 ring), the entries alone suffice.
func TestMetricsAttachGeometry(t *testing.T) {
	le := binary.LittleEndian
	entries := uint64(8+8) * entrySize // corrupt's ring: 8 producers, 8 readers
	for _, c := range []struct {
		name  string
		feat  uint64
		size  uint64
		wantE error
	}{
		{"bit, room for the blocks", 1, entries + 8*metricsSize, nil},
		{"bit, entries only", 1, entries, ErrCorrupt},
		{"bit, one word short", 1, entries + 8*metricsSize - 8, ErrCorrupt},
		{"no bit, entries only", 0, entries, nil},
		{"no bit, one word short", 0, entries - 8, ErrCorrupt},
		{"unknown compat bits and the bit", 0xff, entries, ErrCorrupt},
		{"unknown compat bits only", 0xfe, entries, nil},
	} {
		err := corrupt(t, func(b []byte) {
			le.PutUint64(b[sbFeaturesCompat:], c.feat)
			le.PutUint64(b[sbParticipantsSize:], c.size)
		})
		if c.wantE == nil && err != nil || c.wantE != nil && !errors.Is(err, c.wantE) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.wantE)
		}
	}
}

// sendAt commits an 8-byte message with timestamp ts (0: unset).
func sendAt(t *testing.T, p *Producer, ts uint64) {
	t.Helper()
	s, err := p.Reserve(0)
	must(t, err)
	s.TimestampNs = ts
	must(t, p.Commit(s, 8))
}

// reader returns the participant entry of reader index i.
func readerPart(t *testing.T, r *Ring, i uint32) Participant {
	t.Helper()
	ps, err := r.Participants()
	must(t, err)
	for _, p := range ps {
		if p.IsReader && p.Index == i {
			return p
		}
	}
	t.Fatalf("reader %d is not listed", i)
	return Participant{}
}

func bucketSum(p Participant) uint64 {
	n := uint64(0)
	for _, c := range p.Latency {
		n += c
	}
	return n
}

const old = uint64(30 * time.Second) // older than the last bound: bucket 22

// A reader with Latency observes each message once, when a peek first
// returns it: not again when peeked again before release; timestamps in
// the future observe 0, unset ones nothing.
func TestLatencyHistogram(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 16, SlotSize: 128})
	p, err := r.NewProducer(nil)
	must(t, err)
	rd, err := r.NewReader(&ReaderOptions{Latency: true})
	must(t, err)
	plain, err := r.NewReader(nil) // no Latency: its buckets stay 0
	must(t, err)
	now := MonotonicNs()
	sendAt(t, p, now-old)
	sendAt(t, p, now+uint64(time.Hour)) // after now: observes 0, bucket 0
	sendAt(t, p, 0)                     // unset: not observed
	sendAt(t, p, now-old)
	views := make([]View, 8)
	check := func(what string, n22, n0, sumMin uint64) {
		t.Helper()
		q := readerPart(t, r, rd.Index())
		if !q.HasLatency || q.Latency[22] != n22 || q.Latency[0] != n0 || bucketSum(q) != n22+n0 {
			t.Fatalf("%s: has %v buckets %v", what, q.HasLatency, q.Latency)
		}
		if q.LatencySumNs < sumMin || q.LatencySumNs > sumMin+n22*uint64(time.Minute) {
			t.Fatalf("%s: sum %d, want at least %d", what, q.LatencySumNs, sumMin)
		}
	}
	n, err := rd.PeekBatch(views, 0)
	must(t, err)
	if n != 4 {
		t.Fatalf("batch of %d", n)
	}
	check("first peek", 2, 1, 2*old)
	if _, err := rd.Peek(0); err != nil {
		t.Fatal(err)
	}
	if _, err := rd.PeekBatch(views, 0); err != nil {
		t.Fatal(err)
	}
	check("peeked again", 2, 1, 2*old)
	must(t, rd.Release(&views[1]))
	sendAt(t, p, now-old)
	n, err = rd.PeekBatch(views, 0)
	must(t, err)
	if n != 3 || views[0].Seq != 2 {
		t.Fatalf("batch of %d from %d", n, views[0].Seq)
	}
	check("one new message", 3, 1, 3*old)
	must(t, rd.Release(&views[n-1]))
	// The reader without the option: its block stamped 0, no histogram.
	for {
		v, err := plain.Peek(0)
		if errors.Is(err, ErrEmpty) {
			break
		}
		must(t, err)
		must(t, plain.Release(&v))
	}
	q := readerPart(t, r, plain.Index())
	if q.HasLatency || bucketSum(q) != 0 || q.LatencySumNs != 0 || q.Delivered != 5 {
		t.Fatalf("reader without Latency: %+v", q)
	}
}

// A lossy reader lapped while it holds a view resyncs past what it
// observed: the messages after the jump are observed, each once.
func TestLatencyAfterResync(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128})
	p, _ := r.NewProducer(nil)
	rd, err := r.NewReader(&ReaderOptions{Lossy: true, Latency: true})
	must(t, err)
	now := MonotonicNs()
	sendAt(t, p, now-old)
	if _, err := rd.Peek(0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		sendAt(t, p, now-old) // laps the reader
	}
	v, err := rd.Peek(0) // resyncs to claim - 4 = 17
	must(t, err)
	if v.Seq != 17 {
		t.Fatalf("resynced to %d", v.Seq)
	}
	views := make([]View, 8)
	n, err := rd.PeekBatch(views, 0)
	must(t, err)
	if n != 4 {
		t.Fatalf("batch of %d", n)
	}
	if q := readerPart(t, r, rd.Index()); q.Latency[22] != 1+4 || bucketSum(q) != 5 {
		t.Fatalf("buckets %v", q.Latency)
	}
}

// The bucket bounds, and the cap on a sample in the sum.
func TestLatencyBuckets(t *testing.T) {
	for l, want := range map[uint64]uint64{0: 0, 100: 0, 101: 1, 200: 1, 999: 3, 1000: 3,
		1001: 4, 5e8: 20, 1e9: 21, 1e9 + 1: 22, 1 << 62: 22} {
		if b := latencyBucket(l); b != want {
			t.Errorf("latency %d: bucket %d, want %d", l, b, want)
		}
	}
	now := MonotonicNs()
	if now <= 2*latencyCapNs {
		t.Skipf("CLOCK_MONOTONIC %d is below 2^41: cannot make a sample above the cap", now)
	}
	r, _ := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128})
	p, _ := r.NewProducer(nil)
	rd, err := r.NewReader(&ReaderOptions{Latency: true})
	must(t, err)
	sendAt(t, p, 1) // latency: about the uptime, above 2^40 ns
	_, err = rd.Peek(0)
	must(t, err)
	if q := readerPart(t, r, rd.Index()); q.LatencySumNs != latencyCapNs || q.Latency[22] != 1 {
		t.Fatalf("sum %d, buckets %v", q.LatencySumNs, q.Latency)
	}
}

// A block whose joined_ns is not its entry's is an earlier owner's:
// exporters ignore it. A new reader in the entry zeroes its block, and
// the entry's 1.2 counters.
func TestLatencyStaleBlock(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128})
	p, _ := r.NewProducer(nil)
	rd, err := r.NewReader(&ReaderOptions{Latency: true})
	must(t, err)
	sendAt(t, p, MonotonicNs()-old)
	_, err = rd.Peek(0)
	must(t, err)
	i := rd.Index()
	m, e := r.readerMetrics(i), r.readerEntry(i)
	if q := readerPart(t, r, i); !q.HasLatency || q.Latency[22] != 1 {
		t.Fatalf("own block: %+v", q)
	}
	r.u64(m + mbJoinedNs).Add(1) // as an earlier reader's join leaves it
	if q := readerPart(t, r, i); q.HasLatency || bucketSum(q) != 0 || q.LatencySumNs != 0 {
		t.Fatalf("stale block taken: %+v", q)
	}
	must(t, rd.Close())
	// Garbage a previous owner might leave, in the entry and the block.
	for off := uint64(reBad); off < reDecodeErr+8; off += 8 {
		r.u64(e + off).Store(7)
	}
	for off := uint64(mbLatencySumNs); off < metricsSize; off += 8 {
		r.u64(m + off).Store(9)
	}
	rd, err = r.NewReader(&ReaderOptions{Latency: true})
	must(t, err)
	if rd.Index() != i {
		t.Fatalf("entry %d, not %d", rd.Index(), i)
	}
	q := readerPart(t, r, i)
	if !q.HasLatency || bucketSum(q) != 0 || q.LatencySumNs != 0 || q.Bad+q.CRCErrors+q.DecodeErrors != 0 {
		t.Fatalf("after a new join: %+v", q)
	}
	for off := uint64(mbLatencySumNs); off < metricsSize; off += 8 {
		if r.u64(m+off).Load() != 0 {
			t.Fatalf("block word %#x not zeroed at join", off)
		}
	}
}

// A ring without the bit (1.0 or 1.1) works, without metrics blocks: a
// reader with Latency writes nothing past the entries, and exporters see
// no histogram.
func TestLatencyWithoutFeature(t *testing.T) {
	r, name := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128})
	binary.LittleEndian.PutUint64(r.mem[sbFeaturesCompat:], 0)
	r2, err := Attach(name, nil)
	must(t, err)
	defer r2.Close()
	if r2.g.mtab != 0 || r2.readerMetrics(0) != 0 {
		t.Fatalf("blocks at %#x without the bit", r2.g.mtab)
	}
	p, _ := r2.NewProducer(nil)
	rd, err := r2.NewReader(&ReaderOptions{Latency: true})
	must(t, err)
	sendAt(t, p, MonotonicNs()-old)
	v, err := rd.Peek(0)
	must(t, err)
	must(t, rd.Release(&v))
	for _, h := range []*Ring{r2, r} {
		if q := readerPart(t, h, rd.Index()); q.HasLatency || bucketSum(q) != 0 || q.Delivered != 1 {
			t.Fatalf("%+v", q)
		}
	}
	for off := r.g.mtab; off < r.g.mtab+uint64(r.g.maxReaders)*metricsSize; off++ {
		if r.mem[off] != 0 {
			t.Fatalf("byte %#x of the table written", off)
		}
	}
}

// Reader.Verify counts a CRC mismatch; Reject a payload the application
// could not decode; both only for views of this reader's not released.
func TestReaderVerifyReject(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128})
	p, _ := r.NewProducer(nil)
	rd, err := r.NewReader(nil)
	must(t, err)
	payload := []byte("payload!")
	for i, crc := range []uint32{CRC32C(payload), CRC32C(payload) ^ 1, 0} {
		s, err := p.Reserve(0)
		must(t, err)
		copy(s.Data, payload)
		if i < 2 {
			s.Flags, s.CRC32C = FlagCRC, crc
		}
		must(t, p.Commit(s, len(payload)))
	}
	counts := func(what string, crc, dec uint64) {
		t.Helper()
		st, q := rd.Stats(), readerPart(t, r, rd.Index())
		if st.CRCErrors != crc || st.DecodeErrors != dec || q.CRCErrors != crc || q.DecodeErrors != dec {
			t.Fatalf("%s: stats %+v, entry %+v", what, st, q)
		}
	}
	v, err := rd.Peek(0)
	must(t, err)
	must(t, rd.Verify(&v))
	must(t, rd.Release(&v))
	v, err = rd.Peek(0)
	must(t, err)
	if err := rd.Verify(&v); err != ErrBadMsg || v.Verify() != err {
		t.Fatalf("wrong CRC: %v", err)
	}
	counts("a CRC error", 1, 0)
	must(t, rd.Reject(&v))
	counts("a decode error", 1, 1)
	must(t, rd.Release(&v))
	// Released: not this reader's any more.
	if err := rd.Verify(&v); !errors.Is(err, ErrInvalid) {
		t.Fatalf("verify of a released view: %v", err)
	}
	if err := rd.Reject(&v); !errors.Is(err, ErrInvalid) {
		t.Fatalf("reject of a released view: %v", err)
	}
	if err := rd.Reject(nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("reject of nil: %v", err)
	}
	if err := rd.Verify(nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("verify of nil: %v", err)
	}
	counts("refused", 1, 1)
	v, err = rd.Peek(0)
	must(t, err)
	must(t, rd.Verify(&v)) // no CRC
	// Another reader's view is not ours.
	other, err := r.NewReader(&ReaderOptions{Start: StartLatest})
	must(t, err)
	if err := other.Reject(&v); !errors.Is(err, ErrInvalid) {
		t.Fatalf("another reader's view: %v", err)
	}
	must(t, rd.Reject(&v))
	counts("no CRC, rejected", 1, 2)
	must(t, rd.Release(&v))
	if readerPart(t, r, other.Index()).DecodeErrors != 0 {
		t.Fatal("counted at the other reader")
	}
}

// §5.6: a bad payload of an unstable view counts only if its slot still
// holds it; overwritten, it is lost (Release says so), not bad.
func TestReaderVerifyRejectStale(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128})
	p, _ := r.NewProducer(nil)
	rd, err := r.NewReader(&ReaderOptions{Lossy: true})
	must(t, err)
	s, err := p.Reserve(0)
	must(t, err)
	n := copy(s.Data, "bad crc")
	s.Flags, s.CRC32C = FlagCRC, CRC32C(s.Data[:n])^1
	must(t, p.Commit(s, n))
	v, err := rd.Peek(0)
	must(t, err)
	if !v.Unstable {
		t.Fatal("a lossy reader's view is stable")
	}
	// Intact: counted.
	if err := rd.Verify(&v); err != ErrBadMsg {
		t.Fatalf("intact: %v", err)
	}
	for i := uint64(1); i <= 4; i++ {
		must(t, sendU64(t, p, i, 0)) // seq 4 overwrites the slot we hold
	}
	if err := rd.Verify(&v); !errors.Is(err, ErrStale) {
		t.Fatalf("verify of an overwritten slot: %v", err)
	}
	if err := rd.Reject(&v); !errors.Is(err, ErrStale) {
		t.Fatalf("reject of an overwritten slot: %v", err)
	}
	if err := rd.Release(&v); !errors.Is(err, ErrStale) {
		t.Fatalf("release: %v", err)
	}
	st, q := rd.Stats(), readerPart(t, r, rd.Index())
	if st.CRCErrors != 1 || st.DecodeErrors != 0 || st.Lost != 1 || q.CRCErrors != 1 || q.DecodeErrors != 0 || q.Lost != 1 {
		t.Fatalf("stats %+v, entry %+v", st, q)
	}
}

// A corrupt header passed over is in the entry's bad counter.
func TestBadInParticipants(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128})
	p, _ := r.NewProducer(nil)
	rd, err := r.NewReader(nil)
	must(t, err)
	for i := uint64(0); i < 3; i++ {
		must(t, sendU64(t, p, i, 0))
	}
	r.u32(r.slotOff(1) + shLength).Store(65) // beyond the payload capacity
	v, err := rd.Peek(0)
	must(t, err)
	must(t, rd.Release(&v))
	if _, err := rd.Peek(0); !errors.Is(err, ErrBadMsg) {
		t.Fatalf("corrupt header: %v", err)
	}
	q := readerPart(t, r, rd.Index())
	if q.Bad != 1 || rd.Stats().Bad != 1 || q.Position != 2 {
		t.Fatalf("entry %+v, stats %+v", q, rd.Stats())
	}
	v, err = rd.Peek(0)
	must(t, err)
	must(t, rd.Release(&v))
	if q := readerPart(t, r, rd.Index()); q.Bad != 1 || q.Delivered != 2 {
		t.Fatalf("after: %+v", q)
	}
}

// A reader's mode, as C and Python name it: lossy iff the LOSSY bit is
// set, whatever else a corrupt entry holds.
func TestParticipantModeFromLossyBit(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128})
	rd, err := r.NewReader(nil)
	must(t, err)
	e := r.readerEntry(rd.Index())
	for flags, gating := range map[uint32]bool{0: true, 1: true, 2: false, 3: false, 5: true, 6: false} {
		r.u32(e + reFlags).Store(flags)
		if q := readerPart(t, r, rd.Index()); q.Gating != gating || q.Flags != flags {
			t.Errorf("flags %d: gating %v, Flags %d", flags, q.Gating, q.Flags)
		}
	}
}
