// SPDX-License-Identifier: MIT

package pbring

import (
	"context"
	"runtime/debug"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"
)

// Producing (FORMAT.md §7). A single-producer ring claims with a private
// counter mirrored into the shared claim word by a plain store: no
// read-modify-write per message. A multi-producer ring claims with one
// fetch-add; producers never wait for each other, and readers stop at the
// first slot not yet committed. Each producer caches the gating limit and
// rescans the reader table only when a claim reaches it.

// ProducerOptions tune a producer. The zero value (or nil) blocks on the
// futex doorbell when the ring is full and marshals with protobuf's
// default options.
type ProducerOptions struct {
	Wait WaitMode // how Reserve waits for space
	// Marshal are the options SendProto and CommitProto marshal with
	// (Deterministic, AllowPartial, ...). UseCachedSize is managed by
	// the producer: it sizes the message first, then marshals with the
	// sizes that pass cached.
	Marshal proto.MarshalOptions
	// NoTimestamp: SendProto and CommitProto leave TimestampNs 0 (no
	// clock read per message; readers then show no latency), as C's
	// PBR_PRODUCER_NO_TIMESTAMP.
	NoTimestamp bool
}

// Producer is one producer entry of a ring. Use it from one goroutine at
// a time; distinct producers may be used concurrently.
type Producer struct {
	r      *Ring
	e      uint64 // entry offset, the byte its lock covers
	fd     int    // holds the entry's liveness lock
	id     uint16
	single bool
	wait   WaitMode
	// crcBelow: the ring's CRC policy as one comparison (WantsCRC).
	crcBelow uint64
	// marshal: ProducerOptions.Marshal (UseCachedSize cleared).
	marshal proto.MarshalOptions
	stamp   bool // CommitProto stamps TimestampNs (no NoTimestamp)

	claimed  bool // seq is claimed (maybe not yet writable)
	reserved bool // seq's slot is BUSY and handed out
	closed   bool

	next      uint64 // single-producer: the next sequence to claim
	seq       uint64 // the claimed sequence
	limit     uint64 // cached: sequences before it are not gated
	committed uint64
	// statistics mirrored in the entry (format 1.1)
	bytes, aborts, blockedNs uint64
	slot                     Slot

	errFull, errTimeout error // preallocated: returned without allocating
}

// Slot is a reserved slot, writable from Reserve until Commit or Abort.
type Slot struct {
	// Data is the payload area inside the ring, len == cap == the ring's
	// payload capacity. Write the message into it, then Commit its length.
	Data        []byte
	Seq         uint64   // the sequence number the message will carry
	Flags       uint16   // FlagCRC, FlagTrace, FlagSource; others are ignored
	CRC32C      uint32   // stored with FlagCRC
	TimestampNs uint64   // stored as is; 0 = unset
	TraceID     [16]byte // stored with FlagTrace (W3C trace context)
	SpanID      [8]byte  // stored with FlagTrace
	TraceFlags  byte     // stored with FlagTrace: W3C trace-flags
	source      [2]uint64

	// used: the bytes at the start of Data that FieldSpan laid out, where
	// CommitProto marshals the rest of the message. Reserve zeroes it.
	used int
}

// Used is the number of bytes at the start of Data taken by the fields
// Producer.FieldSpan laid out (0 if none): CommitProto marshals the rest
// of the message from there. A caller that encodes the rest itself writes
// it at Data[Used():] and commits Used() plus its length.
func (s *Slot) Used() int { return s.used }

// SetSource gives the message a source id (format 1.3, FlagSource,
// FORMAT.md §6.3): (hi, lo) is stored after the payload and published
// atomically with it, e.g. a Redis stream entry id <ms>-<seq> as (ms,
// seq). Commit then fails with ErrMsgSize unless the payload, rounded up
// to 8 bytes, leaves 16 bytes of the payload capacity.
func (s *Slot) SetSource(hi, lo uint64) {
	s.Flags |= FlagSource
	s.source = [2]uint64{hi, lo}
}

// sourceFits: does a source id fit after n payload bytes (§6.3)?
func sourceFits(n, payCap uint64) bool { return sourceOff(n)+sourceSize <= payCap }

// NewProducer registers a producer on the ring. ErrBusy if every producer
// entry is taken (on a single-producer ring: if a live producer exists).
// Dead producers' entries met on the way are reclaimed. ErrReadOnly on a
// ring attached read-only.
func (r *Ring) NewProducer(o *ProducerOptions) (p *Producer, err error) {
	if r.readOnly {
		return nil, wrap(r.name, "open producer", ErrReadOnly)
	}
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, r.name, "open producer")
	if o == nil {
		o = &ProducerOptions{}
	}
	p = &Producer{r: r, wait: o.Wait, marshal: marshalOptions(o.Marshal), stamp: !o.NoTimestamp, single: r.g.ringFlags&ringSingleProducer != 0,
		errFull: wrap(r.name, "reserve", ErrFull), errTimeout: wrap(r.name, "reserve", ErrTimeout)}
	p.crcBelow = r.g.crcBelow // the CRC policy, read at attach (WantsCRC)
	if p.fd, err = reopen(r.fd); err != nil {
		return nil, wrap(r.name, "open producer", err)
	}
	if err = p.takeEntry(); err == nil {
		err = r.register(p, nil)
	}
	if err != nil {
		p.release()
		return nil, wrap(r.name, "open producer", err)
	}
	p.join()
	return p, nil
}

// takeEntry locks a producer entry. A prober may hold a free entry's lock
// for a moment, so it retries for about 50 ms.
func (p *Producer) takeEntry() error {
	r := p.r
	for attempt := 0; attempt < 50; attempt++ {
		for i := uint32(0); i < r.g.maxProducers; i++ {
			if lockTake(p.fd, r.producerEntry(i)) == nil {
				p.e, p.id = r.producerEntry(i), uint16(i)
				return nil
			}
		}
		if r.g.maxProducers == 1 && r.u32(r.producerEntry(0)+peState).Load() == entryActive {
			break // a live single producer: no point waiting
		}
		time.Sleep(time.Millisecond)
	}
	_ = syscall.Close(p.fd) // our lock fd: nothing to do on failure
	p.fd = -1
	return ErrBusy
}

// join fills the entry (§5.2). The lock is ours, so an entry that is not
// FREE is a dead producer's: reap it first.
func (p *Producer) join() {
	r := p.r
	if r.u32(p.e+peState).Load() != entryFree {
		r.reapProducer(p.e)
	}
	r.u32(p.e + pePID).Store(selfPID())
	r.u64(p.e + peCommitted).Store(0)
	r.u64(p.e + peBytes).Store(0)
	r.u64(p.e + peAborts).Store(0)
	r.u64(p.e + peBlockedNs).Store(0)
	r.u64(p.e + peJoinedNs).Store(uint64(time.Now().UnixNano()))
	r.u64(p.e + pePending).Store(pendingIdle)
	r.u32(p.e + peState).Store(entryActive)
	p.next = r.u64(r.g.ctl + ctlClaim).Load()
	p.limit = p.next // forces a scan of the readers on first use
}

func (p *Producer) release() {
	if p.fd >= 0 {
		_ = syscall.Close(p.fd) // as above
		p.fd = -1
	}
}

// WantsCRC reports whether the ring's CRC policy asks for a checksum of a
// payload of n >= 0 bytes: always with CRCFull, never with CRCNone, with
// CRCUpTo if n is at most the ring's CRC limit (Info.CRCLimit); as C's
// pbr_producer_wants_crc. SendProto and CommitProto follow it; a caller
// that writes a slot in place and sets FlagCRC itself should too. The
// policy is read once, at attach: this is one comparison.
func (p *Producer) WantsCRC(n int) bool { return uint64(n) < p.crcBelow } // #nosec G115 -- n >= 0 by contract (Commit refuses less)

// ID is this producer's id (its entry index), stamped into its slots.
func (p *Producer) ID() uint16 { return p.id }

// Ring is the ring this producer writes.
func (p *Producer) Ring() *Ring { return p.r }

// waitSpace waits until sequence s may be written without overwriting a
// slot a gating reader still holds; dead gating readers are reaped
// meanwhile (§7.2).
func (p *Producer) waitSpace(s uint64, w *waiter) error {
	if seqBefore(s, p.limit) {
		return nil
	}
	if p.limit = p.r.gatingLimit(s); seqBefore(s, p.limit) {
		return nil
	}
	// The ring is full: the statistics' blocked time (the clock is read
	// only here, never on the way through; a long wait shows as it goes).
	t0 := MonotonicNs()
	err := p.waitSpaceLoop(s, w, t0)
	p.blockedNs += MonotonicNs() - t0
	p.r.u64(p.e + peBlockedNs).Store(p.blockedNs)
	return err
}

func (p *Producer) waitSpaceLoop(s uint64, w *waiter, t0 uint64) error {
	r := p.r
	for !seqBefore(s, p.limit) {
		p.limit = r.gatingLimit(s)
		if seqBefore(s, p.limit) {
			break
		}
		sleep, err := w.step()
		if err == errAgain && r.reapDeadReaders() > 0 {
			continue
		}
		if err != nil {
			return err
		}
		if sleep {
			seen := r.bellPrepare(ctlSpaceBell)
			if p.limit = r.gatingLimit(s); !seqBefore(s, p.limit) {
				r.bellSleep(ctlSpaceBell, seen, w)
			}
			r.bellFinish(ctlSpaceBell)
		}
		if w.livenessDue() {
			r.reapDeadReaders()
			r.u64(p.e + peBlockedNs).Store(p.blockedNs + MonotonicNs() - t0)
		}
	}
	return nil
}

// claim takes the next sequence into p.seq (§7.1).
func (p *Producer) claim(w *waiter) error {
	r := p.r
	pending, claim := r.u64(p.e+pePending), r.u64(r.g.ctl+ctlClaim)
	if p.single {
		// A single producer claims nothing it cannot write yet.
		if err := p.waitSpace(p.next, w); err != nil {
			return err
		}
		p.seq = p.next
		p.next++
		pending.Store(pendingSeq(p.seq))
		crashPoint("sp_pending")
		claim.Store(p.next) // R3: pending before claim
		crashPoint("sp_claimed")
	} else {
		// Wait while the ring looks full, so that a claim rarely has to
		// wait for space after the fetch-add.
		if err := p.waitSpace(claim.Load(), w); err != nil {
			return err
		}
		pending.Store(pendingClaiming)
		crashPoint("mp_claiming")
		p.seq = claim.Add(1) - 1 // R3: publishes pending = CLAIMING
		crashPoint("mp_claimed")
		pending.Store(pendingSeq(p.seq))
		crashPoint("mp_pending")
	}
	p.claimed = true
	return nil
}

func (p *Producer) dropClaim() {
	p.claimed, p.reserved = false, false
	p.r.u64(p.e + pePending).Store(pendingIdle) // R6: pairs with A6
}

// begin marks slot(seq) BUSY once its previous occupant is finished (§7.3).
func (p *Producer) begin(w *waiter) error {
	r, s := p.r, p.seq
	h := r.u64(r.slotOff(s) + shCommit)
	v := h.Load()
	for !r.prevFinished(s, v) {
		if v == commitAbandOf(s) {
			p.dropClaim()
			return ErrOwnerDead // taken for dead meanwhile
		}
		sleep, err := w.step()
		if err != nil {
			return err
		}
		if sleep || w.livenessDue() {
			r.recoverSeq(s - uint64(r.g.slotCount))
		}
		if sleep {
			time.Sleep(100 * time.Microsecond)
		}
		v = h.Load()
	}
	// R4: BUSY must be visible before any payload byte. Swap and
	// CompareAndSwap are full barriers (XCHG, LOCK CMPXCHG; SWPAL, CASAL),
	// which is the release fence of §7.3 and more.
	if p.single {
		h.Swap(commitBusyOf(s))
	} else if !h.CompareAndSwap(v, commitBusyOf(s)) {
		p.dropClaim()
		return ErrOwnerDead
	}
	p.reserved = true
	crashPoint("busy") // after the private flag: C's shared state, no code untagged
	return nil
}

// Reserve claims the next sequence and its slot, waiting for space while a
// gating reader holds it: timeout 0 does not wait (ErrFull), a negative
// one waits without limit, a positive one fails with ErrTimeout. On a
// multi-producer ring a sequence claimed before a timeout stays this
// producer's and the next Reserve continues with it. ErrInProgress if a
// reservation is open. The returned slot belongs to the producer and is
// valid until Commit or Abort.
func (p *Producer) Reserve(timeout time.Duration) (*Slot, error) {
	return p.reserveWith(timeout, nil)
}

// ReserveContext is Reserve bounded by ctx instead of a timeout; when ctx
// is done it returns ctx's error (a deadline also matches ErrTimeout).
func (p *Producer) ReserveContext(ctx context.Context) (*Slot, error) {
	return p.reserveWith(-1, ctx)
}

func (p *Producer) reserveWith(timeout time.Duration, ctx context.Context) (s *Slot, err error) {
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, p.r.name, "reserve")
	var w waiter
	w.init(p.r, p.wait, timeout, ctx)
	err = p.reserve(&w)
	w.done()
	if err != nil {
		return nil, p.fail("reserve", err)
	}
	return &p.slot, nil
}

func (p *Producer) reserve(w *waiter) error {
	if p.closed {
		return ErrClosed
	}
	if p.reserved {
		return ErrInProgress
	}
	if !p.claimed {
		if err := p.claim(w); err != nil {
			return err
		}
	}
	if err := p.waitSpace(p.seq, w); err != nil {
		return err
	}
	if err := p.begin(w); err != nil {
		return err
	}
	off := p.r.slotOff(p.seq) + SlotHeaderSize
	end := off + uint64(p.r.g.payCap)
	p.slot = Slot{Data: p.r.mem[off:end:end], Seq: p.seq}
	return nil
}

// fail wraps err with the ring's name, without allocating for the
// expected outcomes of a wait.
func (p *Producer) fail(op string, err error) error {
	switch err {
	case errAgain:
		return p.errFull
	case ErrTimeout:
		return p.errTimeout
	}
	return wrap(p.r.name, op, err)
}

func (p *Producer) checkSlot(s *Slot) error {
	if !p.reserved || s == nil || s.Seq != p.seq {
		return ErrInvalid
	}
	return nil
}

// Commit publishes the reserved slot with n payload bytes, and the slot's
// Flags, CRC32C, TimestampNs and trace fields. FlagCRC is stored as the
// caller set it: one writing the payload in place decides whether to
// checksum it, and should follow the ring's CRC policy (WantsCRC).
// ErrMsgSize if n exceeds the payload capacity (nothing is published; the
// reservation stays open), ErrInvalid if s is not the open reservation,
// ErrOwnerDead if the slot was reclaimed because this producer was taken
// for dead (the message is lost; close and reopen the producer).
func (p *Producer) Commit(s *Slot, n int) (err error) {
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, p.r.name, "commit")
	if err = p.checkSlot(s); err == nil && (n < 0 || n > int(p.r.g.payCap)) {
		err = ErrMsgSize
	}
	if err == nil && s.Flags&FlagSource != 0 && !sourceFits(uint64(n), uint64(p.r.g.payCap)) { // #nosec G115 -- 0 <= n checked above
		err = ErrMsgSize // the source id must fit after the payload
	}
	if err == nil {
		err = p.publish(s, uint32(n), uint32(s.Flags)&(FlagCRC|FlagTrace|FlagSource)) // #nosec G115 -- 0 <= n <= payCap checked above
	}
	return wrap(p.r.name, "commit", err)
}

// Abort gives up the open reservation: its sequence is published as a
// skip record that readers pass over without delivering or counting.
func (p *Producer) Abort(s *Slot) (err error) {
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, p.r.name, "abort")
	if err = p.checkSlot(s); err == nil {
		err = p.publish(s, 0, FlagSkip)
	}
	return wrap(p.r.name, "abort", err)
}

// publish writes the header words, then the commit word last (§7.4).
func (p *Producer) publish(s *Slot, n, flags uint32) error {
	r, h := p.r, p.r.slotOff(p.seq)
	crc := uint32(0)
	if flags&FlagCRC != 0 {
		crc = s.CRC32C
	}
	r.u32(h + shLength).Store(n)
	r.u32(h + shCRC32C).Store(crc)
	r.u32(h + shProducer).Store(uint32(p.id) | flags<<16)
	r.u64(h + shTimestampNs).Store(s.TimestampNs)
	if flags&FlagTrace != 0 {
		copy(r.mem[h+shTraceID:h+shTraceID+16], s.TraceID[:])
		copy(r.mem[h+shSpanID:h+shSpanID+8], s.SpanID[:])
		r.mem[h+shTraceFlags] = s.TraceFlags
	}
	if flags&FlagSource != 0 { // fits: checked by Commit
		t := h + SlotHeaderSize + sourceOff(uint64(n))
		r.u64(t).Store(s.source[0])
		r.u64(t + 8).Store(s.source[1])
	}
	crashPoint("header")
	won := p.commitWord()
	crashPoint("committed")
	if !won {
		p.dropClaim()
		return ErrOwnerDead
	}
	p.dropClaim()
	p.committed++
	r.u64(p.e + peCommitted).Store(p.committed)
	if flags&FlagSkip != 0 {
		p.aborts++
		r.u64(p.e + peAborts).Store(p.aborts)
	} else {
		p.bytes += uint64(n)
		r.u64(p.e + peBytes).Store(p.bytes)
	}
	r.bellRing(ctlDataBell)
	return nil
}

// commitWord turns BUSY(seq) into DONE(seq) (R1). It fails if recovery
// turned the slot into ABANDONED(seq) because we were taken for dead.
func (p *Producer) commitWord() bool {
	c := p.r.u64(p.r.slotOff(p.seq) + shCommit)
	busy := commitBusyOf(p.seq)
	if !p.single {
		return c.CompareAndSwap(busy, commitDoneOf(p.seq))
	}
	// Only a recoverer can have changed the word; FORMAT.md "Late
	// commits" explains why the window between load and store is benign.
	if c.Load() != busy {
		return false
	}
	c.Store(commitDoneOf(p.seq))
	return true
}

// Send reserves a slot, copies b into it and commits it, without a CRC
// (as C's pbr_producer_send without PBR_SEND_CRC) or timestamp: to store
// them, Reserve, copy, set FlagCRC and CRC32C where WantsCRC(len(b)) says
// so, and Commit.
func (p *Producer) Send(b []byte, timeout time.Duration) error {
	return p.sendWith(b, timeout, nil)
}

// SendContext is Send bounded by ctx.
func (p *Producer) SendContext(ctx context.Context, b []byte) error {
	return p.sendWith(b, -1, ctx)
}

// SendSource is Send with a source id (format 1.3, see Slot.SetSource):
// ErrMsgSize, before anything is claimed, if it does not fit after b.
func (p *Producer) SendSource(b []byte, hi, lo uint64, timeout time.Duration) error {
	return p.sendSrc(b, &[2]uint64{hi, lo}, timeout, nil)
}

func (p *Producer) sendWith(b []byte, timeout time.Duration, ctx context.Context) error {
	return p.sendSrc(b, nil, timeout, ctx)
}

func (p *Producer) sendSrc(b []byte, src *[2]uint64, timeout time.Duration, ctx context.Context) error {
	if len(b) > int(p.r.g.payCap) || src != nil && !sourceFits(uint64(len(b)), uint64(p.r.g.payCap)) {
		return wrap(p.r.name, "send", ErrMsgSize)
	}
	s, err := p.reserveWith(timeout, ctx)
	if err != nil {
		return err
	}
	if err := p.copyIn(s, b); err != nil {
		return err
	}
	if src != nil {
		s.SetSource(src[0], src[1])
	}
	return p.Commit(s, len(b))
}

func (p *Producer) copyIn(s *Slot, b []byte) (err error) {
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, p.r.name, "send")
	if crashPoints { // half the payload, then the "write" point, as C
		copy(s.Data, b[:len(b)/2])
		crashPoint("write")
		copy(s.Data[len(b)/2:], b[len(b)/2:])
		return nil
	}
	copy(s.Data, b)
	return nil
}

// Close deregisters the producer. A reservation still open is aborted
// (readers skip it); a sequence claimed but not yet reserved is published
// as a skip record if its slot is free now, else (ErrFull) left to be
// recovered by the next participant that finds it, as after a crash.
func (p *Producer) Close() (err error) {
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, p.r.name, "close producer")
	if p.closed {
		return nil
	}
	if p.claimed && !p.reserved {
		var w waiter
		w.init(p.r, p.wait, 0, nil)
		err = p.reserve(&w)
	}
	if p.reserved {
		err = p.publish(&p.slot, 0, FlagSkip)
	}
	p.closed = true
	p.r.u32(p.e + peState).Store(entryFree)
	lockDrop(p.fd, p.e)
	p.release()
	p.r.unregister(p, nil)
	if err == errAgain {
		err = ErrFull // the claim is left to recovery, as in C
	}
	return wrap(p.r.name, "close producer", err)
}
