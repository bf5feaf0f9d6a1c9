// SPDX-License-Identifier: MIT

package pbring

import (
	"context"
	"errors"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"
)

// Reading (FORMAT.md §9). A reader owns a cursor: every sequence before
// it is released. It spins on the commit word of the slot at its cursor,
// a line it needs anyway, never on the producers' claim word. Gating
// readers hold producers back, so a slot they peek is stable until
// released. Lossy readers do not: they re-check the commit word after
// reading (a seqlock) and Release reports ErrStale when the slot was
// overwritten meanwhile. A gating reader treats the backlog it found at
// join the same way, since producers whose cached gating limit predates
// the join may still overwrite it.
//
// A tap (ReaderOptions.Tap, FORMAT.md §9.5) is a lossy reader without an
// entry: it writes nothing to the segment, so it works on a ring attached
// read-only. Its cursor and counters are private, producers never see it,
// it cannot recover a dead producer's slot (it waits for a writer to),
// and it cannot register on the data bell, so it waits by polling.

// Start says where a new reader begins.
type Start int

// Start positions.
const (
	StartOldest Start = iota // the oldest message still in the ring
	StartLatest              // only messages committed after the reader joined
)

// ReaderOptions tune a reader. The zero value (or nil) is a gating reader
// from the oldest message that blocks on the futex doorbell.
type ReaderOptions struct {
	Lossy bool     // never hold producers back; count what is overwritten
	Start Start    // where to begin
	Wait  WaitMode // how Peek waits for data
	// Latency records each message's commit-to-receive latency (now -
	// TimestampNs) in the ring's metrics block (format 1.2, FORMAT.md
	// §5.5), for exporters (Participant.Latency), as C's
	// PBR_READER_LATENCY. It costs one clock read per peek that returns
	// new messages. On a ring without metrics blocks it does nothing.
	Latency bool
	// Tap reads without joining (see Reader): lossy, with no entry, no
	// counters in the ring and nothing written; the only reader a ring
	// attached read-only allows. It is not among Participants, Index is
	// NoIndex, and its Stats are its own. WaitBlock polls, sleeping from
	// a few µs up to 1 ms between looks. With Latency: ErrInvalid.
	Tap bool
	// Durable, if not "", opens the durable reader of that name (format
	// 1.3, FORMAT.md §9.6; 1..31 bytes of [A-Za-z0-9._-]) on a ring
	// created with CreateOptions.DurableReaders: a gating reader whose
	// position outlives its process. Closed or dead, it stays, detached,
	// and keeps gating at its cursor (producers wait for it); opening the
	// name again takes it over and resumes there (Reader.Resumed), so
	// every message not yet released is delivered again and nothing
	// released is. Start applies only to a new one. ErrReaderAlive if
	// its owner is alive; ErrNotDurable on a ring without durable
	// readers; ErrInvalid for a bad name, or with Lossy or Tap.
	Durable string
}

// NoIndex is the Index of a tap, which has no participant entry.
const NoIndex = ^uint32(0)

// ReaderStats are a reader's counters.
type ReaderStats struct {
	Cursor    uint64 // next sequence to read
	Delivered uint64 // messages released
	Lost      uint64 // lossy: overwritten before they were read
	Abandoned uint64 // slots of dead producers passed over
	Bad       uint64 // corrupt slots passed over (ErrBadMsg)
	// Missed: backlog found at join (StartOldest) that was overwritten
	// before it was read: never delivered, not a loss of the stream.
	Missed       uint64
	CRCErrors    uint64 // Reader.Verify failures
	DecodeErrors uint64 // Reader.Reject calls counted
}

// View is a committed message, read in place. Data points into the ring
// and is valid until the view is released; a lossy reader must also check
// that Release does not report ErrStale before trusting what it read.
type View struct {
	Data        []byte   // the payload, inside the ring
	Seq         uint64   // sequence number
	TimestampNs uint64   // as the producer stored it
	CRC32C      uint32   // valid with FlagCRC
	Producer    uint16   // producer id
	Flags       uint16   // FlagCRC, FlagTrace
	TraceID     [16]byte // with FlagTrace (else zero)
	SpanID      [8]byte  // with FlagTrace (else zero)
	TraceFlags  byte     // with FlagTrace (else zero): W3C trace-flags
	source      [2]uint64
	// Unstable: the slot may be overwritten while the view is held (a
	// lossy reader or tap, or the backlog a gating reader found at join): trust
	// what was read only once its Release returned nil.
	Unstable bool

	msgType string // the ring's msg_type: what Unmarshal accepts
}

// Reader is one reader entry (cursor) of a ring, or a tap, which has a
// cursor of its own only. Use it from one goroutine at a time; distinct
// readers may be used concurrently.
type Reader struct {
	r      *Ring
	e      uint64 // the entry's offset; 0 for a tap, which has none
	fd     int
	index  uint32
	lossy  bool // lossy, or a tap
	tap    bool // no entry: nothing may be written to the segment
	wait   WaitMode
	closed bool

	name     string // a durable reader's, else ""
	resumed  bool   // took over a detached durable reader
	dropping bool   // Drop: leave frees the entry

	cursor      uint64 // next unreleased sequence
	checkedFrom uint64 // before it, slots need the seqlock re-check
	peekedEnd   uint64 // one past the last sequence peeked
	observedEnd uint64 // latency: sequences before it were observed
	metrics     uint64 // our metrics block with Latency, else 0
	stuckSeq    uint64 // liveness bookkeeping while waiting
	stuckSince  int64
	st          ReaderStats
	pubLost     uint64 // counters last published to the entry
	pubAband    uint64
	pubBad      uint64

	one        [1]View       // Peek's batch of one
	fenceWord  atomic.Uint64 // private: its read-modify-write is a fence
	errEmpty   error         // preallocated: returned without allocating
	errTimeout error
}

// What inspect finds in a slot.
const (
	slotNothing   = 0
	slotMessage   = 1
	slotSkip      = 2
	slotAbandoned = 3
	slotBad       = 4
	slotStale     = 5
)

// NewReader registers a reader on the ring. ErrBusy if every reader entry
// is taken.
//
// What a gating reader is owed (FORMAT.md §9.1): every message committed
// after it joined, exactly once and in order (or counted as abandoned if
// its producer died). With StartOldest it also reads the backlog the ring
// held at join, but producers did not know it needed that, so a backlog
// message may be overwritten before it is read: it is then never
// delivered, counted in Stats().Missed (not Lost), and Release reports
// ErrStale for a view overwritten while held. Trust a backlog view's
// contents only after its Release returned nil.
//
// A tap (o.Tap) is owed nothing: what it reads intact is delivered in
// order, what producers overwrote first is counted in Stats().Lost (or
// Missed, for the backlog). On a ring attached read-only every reader
// but a tap fails with ErrReadOnly.
func (r *Ring) NewReader(o *ReaderOptions) (rd *Reader, err error) {
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, r.name, "open reader")
	if o == nil {
		o = &ReaderOptions{}
	}
	if err = r.checkReaderOptions(o); err != nil {
		return nil, wrap(r.name, "open reader", err)
	}
	rd = &Reader{r: r, lossy: o.Lossy || o.Tap, tap: o.Tap, wait: o.Wait, fd: -1,
		errEmpty: wrap(r.name, "peek", ErrEmpty), errTimeout: wrap(r.name, "peek", ErrTimeout)}
	if o.Tap {
		return rd.joinTap(o.Start)
	}
	if rd.fd, err = reopen(r.fd); err != nil {
		return nil, wrap(r.name, "open reader", err)
	}
	if o.Durable != "" {
		return rd.openDurable(o)
	}
	if err = rd.takeEntry(); err == nil {
		err = r.register(nil, rd)
	}
	if err != nil {
		rd.release()
		return nil, wrap(r.name, "open reader", err)
	}
	rd.join(o.Start, o.Latency)
	return rd, nil
}

// openDurable takes over the durable reader o.Durable or creates it,
// under the name lock (§9.6), so two joins cannot both create one name.
func (rd *Reader) openDurable(o *ReaderOptions) (*Reader, error) {
	r := rd.r
	rd.name = o.Durable
	err := r.nameLock(rd.fd)
	if err == nil {
		err = rd.durableJoinLocked(o)
		r.nameUnlock(rd.fd)
	}
	if err == nil {
		if err = r.register(nil, rd); err != nil {
			rd.leave()
		}
	}
	if err != nil {
		rd.release()
		return nil, wrap(r.name, "open reader", err)
	}
	return rd, nil
}

func (rd *Reader) durableJoinLocked(o *ReaderOptions) error {
	r := rd.r
	e, i, err := r.durableTake(rd.fd, rd.name)
	if err == nil {
		rd.e, rd.index = e, i
		if err = rd.resume(o.Latency); err != nil {
			lockDrop(rd.fd, e)
		}
		return err
	}
	if err != ErrNoReader {
		return err
	}
	if err = rd.takeEntry(); err != nil {
		return err
	}
	rd.join(o.Start, o.Latency)
	return nil
}

// resume takes over the detached durable reader in our locked entry: its
// cursor stays, and everything from it on was gated all along, so nothing
// needs the re-check (checkedFrom = cursor, §9.6); the statistics restart.
// ErrCorrupt for a cursor no correct ring holds (after the claim, or
// further behind it than the slots and the producers' overshoot allow).
func (rd *Reader) resume(latency bool) error {
	r, e := rd.r, rd.e
	c := r.u64(e + reCursor).Load() // pairs with the last owner's R2
	claim := r.u64(r.g.ctl + ctlClaim).Load()
	if seqBefore(claim, c) || claim-c > uint64(r.g.slotCount)+uint64(r.g.maxProducers) {
		return ErrCorrupt
	}
	for off := uint64(reDelivered); off < reName; off += 8 {
		r.u64(e + off).Store(0) // statistics
	}
	r.u32(e + reFlags).Store(readerGating | readerDurable)
	r.u32(e + rePID).Store(selfPID())
	joined := uint64(time.Now().UnixNano())
	r.u64(e + reJoinedNs).Store(joined)
	rd.joinMetrics(joined, latency)
	rd.place(c, StartLatest) // all of it gated while detached: no backlog
	rd.resumed = true
	rd.publishCursor()
	return nil
}

// Resumed reports whether NewReader took over a detached durable reader
// (resuming at its cursor) rather than creating it.
func (rd *Reader) Resumed() bool { return rd.resumed }

// Durable is the durable reader's name, "" for any other reader.
func (rd *Reader) Durable() string { return rd.name }

// Drop closes the reader and, if it is durable, removes its entry
// (FORMAT.md §9.6): it stops gating and the name is free again. For any
// other reader it is Close.
func (rd *Reader) Drop() error {
	rd.dropping = true
	return rd.Close()
}

// checkReaderOptions refuses options no reader can have on this ring.
func (r *Ring) checkReaderOptions(o *ReaderOptions) error {
	switch {
	case o.Start != StartOldest && o.Start != StartLatest:
		return ErrInvalid
	case o.Tap && o.Latency:
		return invalid("a tap records no latency: it writes nothing to the ring")
	case o.Durable != "" && (o.Lossy || o.Tap):
		return invalid("a durable reader gates: not lossy, not a tap")
	case o.Durable != "":
		if err := CheckReaderName(o.Durable); err != nil {
			return err
		}
	}
	switch {
	case r.readOnly && !o.Tap:
		return ErrReadOnly
	case o.Durable != "" && !r.g.durable:
		return ErrNotDurable
	}
	return nil
}

// joinTap places a tap's cursor as join places a lossy reader's, without
// an entry: no producer waits for a tap, so nothing needs publishing and
// no E4 pairing is needed.
func (rd *Reader) joinTap(start Start) (*Reader, error) {
	r := rd.r
	if err := r.register(nil, rd); err != nil {
		return nil, wrap(r.name, "open reader", err)
	}
	rd.index = NoIndex
	// Acquire (Go loads are sequentially consistent); nothing pairs with
	// it: every sequence a tap peeks gets the A1 load and the A4 re-check.
	rd.place(r.u64(r.g.ctl+ctlClaim).Load(), start)
	return rd, nil
}

// takeEntry locks a reader entry that is free or a dead reader's, passing
// over detached durable readers (§5.2, §8.4): their lock is free but the
// entry is not.
func (rd *Reader) takeEntry() error {
	r := rd.r
	for attempt := 0; attempt < 50; attempt++ {
		for i := uint32(0); i < r.g.maxReaders; i++ {
			e := r.readerEntry(i)
			if lockTake(rd.fd, e) != nil {
				continue
			}
			if !r.detachedDurable(e) {
				rd.e, rd.index = e, i
				return nil
			}
			lockDrop(rd.fd, e)
		}
		time.Sleep(time.Millisecond)
	}
	return ErrBusy
}

func (rd *Reader) release() {
	if rd.fd >= 0 {
		_ = syscall.Close(rd.fd) // our lock fd: nothing to do on failure
		rd.fd = -1
	}
}

// join fills the entry and places the cursor (§9.1).
func (rd *Reader) join(start Start, latency bool) {
	r, e := rd.r, rd.e
	claim := r.u64(r.g.ctl + ctlClaim)
	c0 := claim.Load()
	if r.u32(e+reState).Load() != entryFree {
		r.reapReader(e) // a dead reader's entry
	}
	for off := uint64(rePID); off < entrySize; off += 4 {
		r.u32(e + off).Store(0)
	}
	flags := uint32(readerGating)
	if rd.lossy {
		flags = readerLossy
	}
	if rd.name != "" {
		flags |= readerDurable
		r.writeName(e, rd.name) // before ACTIVE, like flags (§5.4)
	}
	r.u64(e + reCursor).Store(c0)
	r.u32(e + reFlags).Store(flags)
	r.u32(e + rePID).Store(selfPID())
	joined := uint64(time.Now().UnixNano())
	r.u64(e + reJoinedNs).Store(joined)
	rd.joinMetrics(joined, latency)
	// E4 (reader side): ACTIVE, sequentially consistent, before we read
	// the claim; pairs with the producer's scan in gatingLimit. Every
	// sequence from c on is gated.
	r.u32(e + reState).Store(entryActive)
	rd.place(claim.Load(), start)
	rd.publishCursor()
}

// place puts the cursor where start says, given claim c read at join;
// sequences before c are the backlog (checkedFrom).
func (rd *Reader) place(c uint64, start Start) {
	r := rd.r
	rd.checkedFrom, rd.cursor = c, c
	if start == StartOldest {
		rd.cursor = r.g.seqBase
		if c-r.g.seqBase > uint64(r.g.slotCount) {
			rd.cursor = c - uint64(r.g.slotCount)
		}
	}
	rd.peekedEnd, rd.observedEnd = rd.cursor, rd.cursor
}

// joinMetrics makes our metrics block (§5.5) ours: zeroed, then stamped
// with the entry's joined_ns, which exporters compare, if we record
// latency; without the Latency option it is stamped 0, so exporters show
// no histogram for us.
func (rd *Reader) joinMetrics(joined uint64, latency bool) {
	r := rd.r
	m := r.readerMetrics(rd.index)
	if m == 0 {
		return
	}
	for off := uint64(mbLatencySumNs); off < metricsSize; off += 8 {
		r.u64(m + off).Store(0)
	}
	if !latency {
		joined = 0
	}
	r.u64(m + mbJoinedNs).Store(joined)
	if latency {
		rd.metrics = m
	}
}

// Index is the reader's index in the participant table; NoIndex for a
// tap, which has no entry.
func (rd *Reader) Index() uint32 { return rd.index }

// Tap reports whether the reader is a tap (ReaderOptions.Tap).
func (rd *Reader) Tap() bool { return rd.tap }

// Ring is the ring this reader reads.
func (rd *Reader) Ring() *Ring { return rd.r }

// Stats returns the reader's counters.
func (rd *Reader) Stats() ReaderStats {
	st := rd.st
	st.Cursor = rd.cursor
	return st
}

// publishCursor publishes the counters, then the cursor (R2), and wakes
// producers that a gating reader may have held back. A tap publishes
// nothing: it has no entry, and nobody waits for it.
func (rd *Reader) publishCursor() {
	if rd.tap {
		return
	}
	r, e := rd.r, rd.e
	r.u64(e + reDelivered).Store(rd.st.Delivered)
	if rd.st.Lost != rd.pubLost || rd.st.Abandoned != rd.pubAband || rd.st.Bad != rd.pubBad {
		r.u64(e + reLost).Store(rd.st.Lost)
		r.u64(e + reAbandoned).Store(rd.st.Abandoned)
		r.u64(e + reBad).Store(rd.st.Bad)
		rd.pubLost, rd.pubAband, rd.pubBad = rd.st.Lost, rd.st.Abandoned, rd.st.Bad
	}
	// R2: our reads of every slot before the cursor happen before a
	// producer may reuse them; pairs with A2 in gatingLimit.
	r.u64(e + reCursor).Store(rd.cursor)
	if !rd.lossy {
		r.bellRing(ctlSpaceBell)
	}
}

// fence is a full memory barrier: a read-modify-write of a private word
// (LOCK XADD, LDADDAL). It is the A4 acquire fence, which Go does not
// offer otherwise: plain payload reads before it, commit re-reads after.
func (rd *Reader) fence() { rd.fenceWord.Add(1) }

// needsCheck: slots a producer may overwrite while we read them.
func (rd *Reader) needsCheck(p uint64) bool {
	return rd.lossy || seqBefore(p, rd.checkedFrom)
}

// resync passes over lapped sequence p and counts the loss (§9.4). A
// gating reader is lapped only in its join backlog (inspect): it passes
// over only the overwritten slot, as the next may be intact (the backlog
// is at most slotCount long); a lossy one skips to well inside the ring.
func (rd *Reader) resync(p uint64) {
	r := rd.r
	to := p + 1
	if rd.lossy {
		to = r.u64(r.g.ctl+ctlClaim).Load() - uint64(r.g.slotCount>>1)
		if !seqBefore(p, to) {
			to = p + 1
		}
	}
	rd.countOverwritten(p, to)
	rd.cursor, rd.peekedEnd = to, to
}

// countOverwritten counts sequences [p, to) passed over because they were
// overwritten: the part in the join backlog (before checkedFrom) was
// missed, the rest, on a lossy reader, lost (§9.1).
func (rd *Reader) countOverwritten(p, to uint64) {
	backlog := uint64(0)
	if seqBefore(p, rd.checkedFrom) {
		backlog = to - p
		if seqBefore(rd.checkedFrom, to) {
			backlog = rd.checkedFrom - p
		}
	}
	rd.st.Missed += backlog
	rd.st.Lost += to - p - backlog
}

// lapped: was p overwritten? Only if p was claimed: a commit word about a
// sequence beyond the claim is garbage (a corrupt or hostile segment), and
// taking it for a lap would walk the cursor towards it (§9.4).
func (rd *Reader) lapped(p, v uint64) bool {
	return commitCmp(v, p) > 0 && seqBefore(p, rd.r.u64(rd.r.g.ctl+ctlClaim).Load())
}

// inspect classifies the slot of sequence p (§9.2), filling view for a
// message. Each header word is read once into a local; only locals are
// used, and the length is checked against the payload capacity.
func (rd *Reader) inspect(p uint64, view *View) int {
	r := rd.r
	h := r.slotOff(p)
	// A1: pairs with R1 (commit) and R5 (recovery).
	v := r.u64(h + shCommit).Load()
	if v == commitAbandOf(p) {
		return slotAbandoned
	}
	if v != commitDoneOf(p) {
		if !rd.lapped(p, v) {
			return slotNothing
		}
		// A gated slot is never overwritten before we release it: a
		// later sequence there is a corrupt or hostile segment. Pass
		// over that one slot as corrupt (one per peek, so a forged
		// claim cannot send us walking, §9.4).
		if rd.needsCheck(p) {
			return slotStale
		}
		return slotBad
	}
	n := r.u32(h + shLength).Load()
	pf := r.u32(h + shProducer).Load()
	if (pf>>16)&FlagSkip != 0 {
		return slotSkip
	}
	if n > r.g.payCap {
		// A torn header of an overwritten slot is a loss, not corruption.
		rd.fence()
		if rd.needsCheck(p) && r.u64(h+shCommit).Load() != v {
			return slotStale
		}
		return slotBad
	}
	rd.fill(view, p, h, n, pf)
	return slotMessage
}

func (rd *Reader) fill(view *View, p, h uint64, n, pf uint32) {
	r := rd.r
	start := h + SlotHeaderSize
	end := start + uint64(n)
	view.Data = r.mem[start:end:end]
	view.msgType = r.info.MsgType
	view.Seq = p
	view.Producer = uint16(pf & 0xffff) // the word's low half; the flags are the high half
	view.Flags = uint16(pf >> 16)
	view.Unstable = rd.needsCheck(p)
	view.TimestampNs = r.u64(h + shTimestampNs).Load()
	view.CRC32C = r.u32(h + shCRC32C).Load()
	if view.Flags&FlagTrace != 0 {
		copy(view.TraceID[:], r.mem[h+shTraceID:])
		copy(view.SpanID[:], r.mem[h+shSpanID:])
		view.TraceFlags = r.mem[h+shTraceFlags]
	} else {
		view.TraceID, view.SpanID, view.TraceFlags = [16]byte{}, [8]byte{}, 0
	}
	rd.fillSource(view, h, n)
}

// fillSource reads the source id after the payload (§6.3) if the flag says
// so and the trailer lies within the payload capacity (n, read once and
// checked, places it); else the view has no source.
func (rd *Reader) fillSource(view *View, h uint64, n uint32) {
	if view.Flags&FlagSource == 0 { // Source() reads nothing then
		return
	}
	t := sourceOff(uint64(n))
	if t+sourceSize > uint64(rd.r.g.payCap) {
		view.Flags &^= FlagSource
		return
	}
	at := h + SlotHeaderSize + t // 8-aligned: slot sizes are multiples of 128
	view.source = [2]uint64{rd.r.u64(at).Load(), rd.r.u64(at + 8).Load()}
}

// Source is the message's source id (format 1.3, FlagSource, FORMAT.md
// §6.3), as (hi, lo), and true; or false if it carries none (or its
// trailer was out of bounds). For an Unstable view, trust it only once
// Release returned nil, as the payload.
func (v *View) Source() (hi, lo uint64, ok bool) {
	if v.Flags&FlagSource == 0 {
		return 0, 0, false
	}
	return v.source[0], v.source[1], true
}

// consumeHead passes over the record at the cursor, counting it.
func (rd *Reader) consumeHead(p uint64, what int) {
	if what == slotStale {
		rd.resync(p)
		return
	}
	rd.cursor = p + 1
	switch what {
	case slotAbandoned:
		rd.st.Abandoned++
	case slotBad:
		rd.st.Bad++
	}
}

// scan fills up to len(views) consecutive messages from the cursor.
// Records to pass over are consumed only at the head, so a batch is
// always consecutive sequences. It returns the count, or 0 with
// ErrBadMsg for a corrupt head (views[0].Seq names it).
func (rd *Reader) scan(views []View) (int, error) {
	head, n := rd.cursor, 0
	var err error
	for n < len(views) {
		p := rd.cursor + uint64(n)
		what := rd.inspect(p, &views[n])
		if what == slotMessage {
			n++
			continue
		}
		if n > 0 || what == slotNothing {
			break
		}
		rd.consumeHead(p, what)
		if what == slotBad {
			views[0] = View{Seq: p}
			err = ErrBadMsg
			break
		}
	}
	rd.peekedEnd = rd.cursor + uint64(n)
	if rd.cursor != head {
		rd.publishCursor()
	}
	if n > 0 {
		if rd.metrics != 0 {
			rd.observe(views[:n])
		}
		crashPoint("peeked")
	}
	return n, err
}

// observe records the commit-to-receive latency of the views not
// observed before (a second peek returns the same ones; a resync may
// have moved the cursor past observedEnd). One clock read serves the
// batch; only we write the block, so a load and a store suffice.
func (rd *Reader) observe(views []View) {
	r, m, n := rd.r, rd.metrics, uint64(len(views))
	i := uint64(0)
	if seqBefore(rd.cursor, rd.observedEnd) {
		i = rd.observedEnd - rd.cursor
	}
	if i >= n {
		return
	}
	rd.observedEnd = rd.cursor + n
	now := MonotonicNs()
	sumW := r.u64(m + mbLatencySumNs)
	sum := sumW.Load()
	for ; i < n; i++ {
		ts := views[i].TimestampNs
		if ts == 0 {
			continue
		}
		l := uint64(0)
		if now > ts {
			l = now - ts
		}
		b := r.u64(m + mbLatency + 8*latencyBucket(l))
		b.Store(b.Load() + 1)
		sum += min(l, latencyCapNs)
	}
	sumW.Store(sum)
}

// slotMoved: would the slot at the cursor give scan something to do?
func (rd *Reader) slotMoved() bool {
	v := rd.r.u64(rd.r.slotOff(rd.cursor) + shCommit).Load()
	return v == commitDoneOf(rd.cursor) || v&3 == commitAbandoned || commitCmp(v, rd.cursor) > 0
}

// checkStuck: nothing at the cursor for a while; is its producer dead?
// After 20 ms of a sequence claimed but unpublished, recover it (§8.2).
// Not a tap: recovering is a write; it waits for a writer to recover.
func (rd *Reader) checkStuck(waited bool) {
	r := rd.r
	if rd.tap {
		return
	}
	if !waited && !seqBefore(rd.cursor, r.u64(r.g.ctl+ctlClaim).Load()) {
		return // idle, not stuck
	}
	now := mono()
	if rd.stuckSeq != rd.cursor || rd.stuckSince == 0 {
		rd.stuckSeq, rd.stuckSince = rd.cursor, now
		return
	}
	if now-rd.stuckSince >= livenessNs {
		r.recoverSeq(rd.cursor)
		rd.stuckSince = now
	}
}

// Peek returns the next unreleased message without consuming it (a
// second Peek returns the same one). Skip and abandoned records are
// passed over (the latter counted). timeout 0 does not wait (ErrEmpty), a
// negative one waits without limit, a positive one fails with
// ErrTimeout. ErrBadMsg if the next slot's header is corrupt: the slot is
// skipped and counted, the view's Seq names it, and the next Peek
// continues after it. A lossy reader that was lapped skips ahead and
// counts the loss before returning the next message.
func (rd *Reader) Peek(timeout time.Duration) (View, error) {
	_, err := rd.peekWith(rd.one[:], timeout, nil)
	return rd.one[0], err
}

// PeekContext is Peek bounded by ctx instead of a timeout.
func (rd *Reader) PeekContext(ctx context.Context) (View, error) {
	_, err := rd.peekWith(rd.one[:], -1, ctx)
	return rd.one[0], err
}

// PeekBatch is Peek for up to len(views) consecutive messages: it returns
// how many views it filled (at least 1 unless err != nil), stopping early
// at the first slot not yet published or not plainly a message. Release
// the batch by releasing its last view.
func (rd *Reader) PeekBatch(views []View, timeout time.Duration) (int, error) {
	return rd.peekWith(views, timeout, nil)
}

// PeekBatchContext is PeekBatch bounded by ctx.
func (rd *Reader) PeekBatchContext(ctx context.Context, views []View) (int, error) {
	return rd.peekWith(views, -1, ctx)
}

func (rd *Reader) peekWith(views []View, timeout time.Duration, ctx context.Context) (n int, err error) {
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, rd.r.name, "peek")
	if rd.closed || len(views) == 0 {
		return 0, rd.fail(ErrInvalid)
	}
	var w waiter
	w.init(rd.r, rd.wait, timeout, ctx)
	n, err = rd.peekLoop(views, &w)
	w.done()
	return n, rd.fail(err)
}

func (rd *Reader) peekLoop(views []View, w *waiter) (int, error) {
	for {
		if n, err := rd.scan(views); n > 0 || err != nil {
			return n, err
		}
		sleep, err := w.step()
		if err != nil {
			rd.checkStuck(false)
			return 0, err
		}
		if sleep {
			rd.sleep(w)
		}
		if w.livenessDue() {
			rd.checkStuck(true)
		}
	}
}

// sleep waits for the slot at the cursor to change: on the data bell, or,
// for a tap, which may not register there as a sleeper, by polling.
func (rd *Reader) sleep(w *waiter) {
	if rd.tap {
		w.pollSleep()
		return
	}
	r := rd.r
	seen := r.bellPrepare(ctlDataBell)
	if !rd.slotMoved() {
		r.bellSleep(ctlDataBell, seen, w)
	}
	r.bellFinish(ctlDataBell)
}

func (rd *Reader) fail(err error) error {
	switch err {
	case nil:
		return nil
	case errAgain:
		return rd.errEmpty
	case ErrTimeout:
		return rd.errTimeout
	case ErrClosed, ErrInvalid:
		if rd.closed {
			err = ErrClosed
		}
	}
	return wrap(rd.r.name, "peek", err)
}

// countStale is the seqlock re-check of [from, to): how many of those
// slots were overwritten while we held them, counted as missed (join
// backlog) or lost (lossy reader).
func (rd *Reader) countStale(from, to uint64) uint64 {
	// A4: our reads of the payloads happen before the re-check; pairs
	// with R4, the producer's barrier after marking a slot BUSY.
	rd.fence()
	stale := uint64(0)
	for q := from; q != to && rd.needsCheck(q); q++ {
		if rd.r.u64(rd.r.slotOff(q)+shCommit).Load() != commitDoneOf(q) {
			rd.countOverwritten(q, q+1)
			stale++
		}
	}
	return stale
}

// Release releases every peeked message up to and including v: producers
// may reuse their slots and the views are invalid. ErrStale if any of
// them was overwritten while held (lossy readers, or the backlog a gating
// reader found at join): whatever was read from them must be discarded;
// they are counted as lost (lossy) or missed (backlog). ErrInvalid if v
// is not a message this reader has peeked.
func (rd *Reader) Release(v *View) (err error) {
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, rd.r.name, "release")
	if rd.closed || v == nil || seqBefore(v.Seq, rd.cursor) || !seqBefore(v.Seq, rd.peekedEnd) {
		return wrap(rd.r.name, "release", ErrInvalid)
	}
	end, stale := v.Seq+1, uint64(0)
	if rd.needsCheck(rd.cursor) {
		stale = rd.countStale(rd.cursor, end)
	}
	rd.st.Delivered += end - rd.cursor - stale
	rd.cursor = end
	crashPoint("release")
	rd.publishCursor()
	crashPoint("released")
	if stale != 0 {
		return wrap(rd.r.name, "release", ErrStale)
	}
	return nil
}

// viewCurrent: v is a view of ours, peeked and not released (else
// ErrInvalid), whose slot still holds it (else ErrStale: the message was
// overwritten, so it is lost or missed, not bad; §5.6). Only an unstable
// view needs the re-check.
func (rd *Reader) viewCurrent(v *View) error {
	if rd.closed || v == nil || seqBefore(v.Seq, rd.cursor) || !seqBefore(v.Seq, rd.peekedEnd) {
		return ErrInvalid
	}
	if !rd.needsCheck(v.Seq) {
		return nil
	}
	// A4 as in countStale: what was read from the payload happens before
	// the re-check; pairs with R4.
	rd.fence()
	if rd.r.u64(rd.r.slotOff(v.Seq)+shCommit).Load() != commitDoneOf(v.Seq) {
		return ErrStale
	}
	return nil
}

// Verify is View.Verify for a view of this reader's, counted in the
// ring's metrics (C's pbr_reader_verify): nil if the payload matches its
// CRC32C or carries none; ErrBadMsg (as View.Verify returns it) if it
// differs, counted in Stats().CRCErrors and the entry's crc_errors;
// ErrStale, not counted, if the view is Unstable and its slot was
// overwritten since: the message was lost, not corrupt, and its Release
// counts it. ErrInvalid for a view this reader has not peeked or has
// released.
func (rd *Reader) Verify(v *View) (err error) {
	if v == nil {
		return wrap(rd.r.name, "verify", ErrInvalid)
	}
	if err = v.Verify(); !errors.Is(err, ErrBadMsg) {
		return err // nil, or a fault
	}
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, rd.r.name, "verify")
	if e := rd.viewCurrent(v); e != nil {
		return wrap(rd.r.name, "verify", e)
	}
	rd.st.CRCErrors++
	if !rd.tap { // a tap counts in its Stats only
		rd.r.u64(rd.e + reCRCErrors).Store(rd.st.CRCErrors)
	}
	return ErrBadMsg
}

// Reject reports that the application could not decode the payload of
// v, a view of this reader's not yet released (C's pbr_reader_reject):
// nil once counted in Stats().DecodeErrors and the entry's decode_errors;
// ErrStale, not counted, if the view is Unstable and its slot was
// overwritten since (the bytes decoded were not the message's);
// ErrInvalid for a view this reader has not peeked or has released.
// Release the view as usual afterwards.
func (rd *Reader) Reject(v *View) (err error) {
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, rd.r.name, "reject")
	if e := rd.viewCurrent(v); e != nil {
		return wrap(rd.r.name, "reject", e)
	}
	rd.st.DecodeErrors++
	if !rd.tap { // a tap counts in its Stats only
		rd.r.u64(rd.e + reDecodeErr).Store(rd.st.DecodeErrors)
	}
	return nil
}

// Close deregisters the reader; it stops gating at once. A tap just
// stops: it has no entry to free.
func (rd *Reader) Close() (err error) {
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, rd.r.name, "close reader")
	if rd.closed {
		return nil
	}
	rd.closed = true
	if !rd.tap {
		rd.leave()
	}
	rd.r.unregister(nil, rd)
	return nil
}

// leave frees the entry (§5.2) and wakes producers we may have held back.
// A durable reader detaches instead (§9.6): its entry stays ACTIVE and
// gating, and its lock, once free, says nobody owns it; Drop frees it.
func (rd *Reader) leave() {
	if rd.name == "" || rd.dropping {
		rd.r.u32(rd.e + reState).Store(entryFree)
	}
	rd.r.bellRing(ctlSpaceBell) // we stop gating
	lockDrop(rd.fd, rd.e)
	rd.release()
}
