// SPDX-License-Identifier: MIT

package pbring

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"runtime/debug"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Liveness (FORMAT.md §5.1, §8). Each producer and reader holds an
// open-file-description lock on the first byte of its entry, on a file
// description of its own: the kernel drops it when the process dies, so a
// lock that can be taken proves its owner gone. PIDs and clocks are never
// used for that.
//
// OFD locks belong to the description, not the goroutine or thread, so two
// goroutines taking one byte through one description would both "win".
// The ring therefore uses two descriptions of its own: fd to probe (a
// test with F_OFD_GETLK, which takes nothing), reapFd, behind reapMu, to
// hold an entry while reaping it. A reap may probe other entries
// meanwhile (to recover its corpse's sequence).

var errLocked = fmt.Errorf("entry lock held")

// reopen opens a new file description of fd's object: OFD locks are per
// description, so each participant needs its own. /proc/self/fd works
// after the name is unlinked, unlike a second open by name.
func reopen(fd int) (int, error) {
	nfd, err := syscall.Open(fmt.Sprintf("/proc/self/fd/%d", fd), syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1, fromErrno(err)
	}
	return nfd, nil
}

func lockOp(fd int, off uint64, typ int16) error {
	fl := unix.Flock_t{Type: typ, Whence: io.SeekStart, Start: int64(off), Len: 1} // #nosec G115 -- off < total_size = st_size (validGeometry), an int64
	for {
		err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &fl)
		switch err {
		case nil:
			return nil
		case unix.EINTR:
			continue
		case unix.EAGAIN, unix.EACCES:
			return errLocked
		}
		return fromErrno(err)
	}
}

func lockTake(fd int, off uint64) error { return lockOp(fd, off, unix.F_WRLCK) }
func lockDrop(fd int, off uint64)       { _ = lockOp(fd, off, unix.F_UNLCK) }

// creatorAlive: does a creator still hold the creation lock? Only
// tested (F_OFD_GETLK): taking it, even for a moment, could make a
// creator that is about to take it fail.
func creatorAlive(fd int) bool { return lockHeld(fd, creationLock) }

// entryAlive: does a live process hold the lock of the entry at off?
// A test, not a take (§5.1): a probe that held the lock even for a moment
// would send a producer joining at that moment to another entry, leaving
// the dead one, and the sequence it holds, for somebody else to recover.
func (r *Ring) entryAlive(off uint64) bool {
	return lockHeld(r.fd, off)
}

// lockHeld: F_OFD_GETLK, which tests without taking. It cannot tell for
// a lock held through fd itself (a sibling's reap): that one's owner is
// dead, which is the answer wanted.
func lockHeld(fd int, off uint64) bool {
	fl := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart, Start: int64(off), Len: 1} // #nosec G115 -- as lockOp
	for {
		err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, &fl)
		if err == unix.EINTR {
			continue
		}
		return err != nil || fl.Type != unix.F_UNLCK // cannot tell: alive
	}
}

// gatingLimit returns the bound below which sequences may be written
// without overwriting anything a gating reader still holds (§7.2).
func (r *Ring) gatingLimit(s uint64) uint64 {
	// E4 (producer side): the loads below are sequentially consistent,
	// ordered after this producer's own claim store; a reader this scan
	// misses has read our claim.
	m := s
	for i := uint32(0); i < r.g.maxReaders; i++ {
		e := r.readerEntry(i)
		if r.u32(e+reState).Load() != entryActive ||
			r.u32(e+reFlags).Load()&readerGating == 0 {
			continue
		}
		// A2: pairs with R2, the reader's cursor store.
		if c := r.u64(e + reCursor).Load(); seqBefore(c, m) {
			m = c
		}
	}
	return m + uint64(r.g.slotCount)
}

// liveClaimant: might a live producer own sequence s (§8.1)?
func (r *Ring) liveClaimant(s uint64) bool {
	for i := uint32(0); i < r.g.maxProducers; i++ {
		e := r.producerEntry(i)
		if r.u32(e+peState).Load() == entryFree {
			continue
		}
		// A6: pairs with R6 (IDLE after commit) and R3 (claim after
		// pending = CLAIMING or s).
		p := r.u64(e + pePending).Load()
		if p != pendingSeq(s) && p != pendingClaiming {
			continue
		}
		if r.entryAlive(e) {
			return true
		}
	}
	return false
}

// recoverSeq turns claimed-but-dead sequence s into an abandoned record
// (§8.2). It reports whether s is finished (recovered now or before).
func (r *Ring) recoverSeq(s uint64) bool {
	// A3: pairs with R3: if s is claimed, its claimant's pending word is
	// visible now.
	if !seqBefore(s, r.u64(r.g.ctl+ctlClaim).Load()) || r.liveClaimant(s) {
		return false
	}
	h := r.u64(r.slotOff(s) + shCommit)
	v := h.Load()
	if v == commitDoneOf(s) || v == commitAbandOf(s) {
		return true
	}
	if v != commitBusyOf(s) && !r.prevFinished(s, v) {
		return false // an earlier lap is stuck: that one first
	}
	// A claim may overshoot the gating limit (the fetch-add comes before
	// the wait for space). Until its owner marked the slot BUSY, the slot
	// still holds s - N for a gating reader that has not read it.
	if v != commitBusyOf(s) && !seqBefore(s, r.gatingLimit(s)) {
		return false
	}
	crashPoint("recover")
	// R5: one recoverer wins; a late commit's CAS (or check) then fails.
	if !h.CompareAndSwap(v, commitAbandOf(s)) {
		return commitCmp(h.Load(), s) >= 0
	}
	r.u64(r.g.ctl + ctlStats + statAbandoned).Add(1)
	r.bellRing(ctlDataBell)
	return true
}

// fullSeq: the sequence whose low 62 bits are in pending word p, taken in
// (claim - 2^62, claim] (§8.3): a single producer records s in pending
// before it publishes claim = s + 1, so s may equal claim (not claimed
// yet, and then recoverSeq leaves it alone).
func (r *Ring) fullSeq(p uint64) uint64 {
	c := r.u64(r.g.ctl + ctlClaim).Load()
	return c - (c-p>>2)&seq62Mask
}

// reapProducer frees a dead producer's entry at e, whose lock the caller
// holds, recovering its claimed sequence first (§8.3).
func (r *Ring) reapProducer(e uint64) {
	pw := r.u64(e + pePending)
	p := pw.Load()
	// Clear pending first: recovery of the corpse's sequence must not take
	// this entry for its live owner.
	pw.Store(pendingIdle)
	crashPoint("reap_producer")
	if p&3 == pendingSeqTag {
		r.recoverSeq(r.fullSeq(p))
	}
	if r.u32(e+peState).CompareAndSwap(entryActive, entryFree) {
		r.u64(r.g.ctl + ctlStats + statProducersReaped).Add(1)
	}
}

// reapReader frees a dead reader's entry at e (lock held), so it stops
// gating, and wakes producers it held back (§8.4).
func (r *Ring) reapReader(e uint64) bool {
	// A dead durable reader is detached, not dead: it keeps gating at its
	// cursor until taken over or dropped (§8.4).
	if r.isDurable(e) {
		return false
	}
	crashPoint("reap_reader")
	if !r.u32(e+reState).CompareAndSwap(entryActive, entryFree) {
		return false
	}
	r.u64(r.g.ctl + ctlStats + statReadersReaped).Add(1)
	r.bellRing(ctlSpaceBell)
	return true
}

// reapIfDead takes the entry's lock with reapFd; if that works while the
// entry is ACTIVE its owner is dead and reap runs; true if reap freed it.
// reapMu is held.
func (r *Ring) reapIfDead(e, stateOff uint64, reap func(uint64) bool) bool {
	if r.u32(e+stateOff).Load() != entryActive || lockTake(r.reapFd, e) != nil {
		return false
	}
	defer lockDrop(r.reapFd, e)
	if r.u32(e+stateOff).Load() != entryActive {
		return false
	}
	return reap(e)
}

func (r *Ring) reapDeadReaders() int {
	r.reapMu.Lock()
	defer r.reapMu.Unlock()
	n := 0
	for i := uint32(0); i < r.g.maxReaders; i++ {
		if r.reapIfDead(r.readerEntry(i), reState, r.reapReader) {
			n++
		}
	}
	return n
}

func (r *Ring) reapDeadProducers() int {
	r.reapMu.Lock()
	defer r.reapMu.Unlock()
	n := 0
	for i := uint32(0); i < r.g.maxProducers; i++ {
		if r.reapIfDead(r.producerEntry(i), peState, func(e uint64) bool { r.reapProducer(e); return true }) {
			n++
		}
	}
	return n
}

// Reclaim finds participants whose process died and frees their entries:
// a dead producer's unfinished slot becomes an abandoned record (readers
// skip and count it), a dead reader stops gating. It returns how many
// entries it reclaimed. Waits run this on their own when stuck, so
// calling it is optional. ErrReadOnly on a ring attached read-only.
func (r *Ring) Reclaim() (n int, err error) {
	if r.readOnly {
		return 0, wrap(r.name, "reclaim", ErrReadOnly)
	}
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, r.name, "reclaim")
	return r.reapDeadProducers() + r.reapDeadReaders(), nil
}

// Participant describes one ACTIVE producer or reader entry.
type Participant struct {
	Index    uint32 // entry index among the producers, or the readers
	IsReader bool   // a reader entry (else a producer's)
	Alive    bool   // its liveness lock is held
	// Gating: readers: a gating reader, that is, not lossy: entry flags
	// without the LOSSY bit (2), as C and Python name the mode.
	Gating    bool
	Flags     uint32 // readers: the entry's flags (1 GATING, 2 LOSSY)
	PID       uint32 // diagnostic only
	Pending   uint64 // producers: the pending word
	Position  uint64 // producers: messages committed; readers: cursor
	Delivered uint64 // readers
	Lost      uint64 // readers
	Abandoned uint64 // readers
	// Producers (format 1.1; 0 from a 1.0 producer): payload bytes
	// committed, skip records published, nanoseconds waited for space.
	Bytes, Aborts, BlockedNs uint64
	// Readers (format 1.2; 0 from an earlier reader): corrupt slots
	// passed over, payloads that failed their CRC, payloads the
	// application could not decode (Reader.Verify, Reader.Reject).
	Bad, CRCErrors, DecodeErrors uint64
	// HasLatency: the reader records latency (opened with
	// ReaderOptions.Latency on a format 1.2 ring: its block stamped with
	// the entry's joined_ns, FORMAT.md §5.5). Latency holds its
	// commit-to-receive histogram, buckets not cumulative, upper bounds
	// LatencyBoundsNs then > 1 s, and LatencySumNs their sum; all 0 when
	// HasLatency is false.
	HasLatency   bool
	LatencySumNs uint64
	Latency      [LatencyBuckets]uint64
	// Durable readers (format 1.3): Durable, the reader's Name ("" if the
	// entry's is malformed), and Detached while no process owns it: it
	// keeps gating at its cursor until taken over or dropped.
	Durable  bool
	Detached bool
	Name     string
}

// Participants lists the ring's ACTIVE entries, probing each one's lock.
func (r *Ring) Participants() (out []Participant, err error) {
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, r.name, "participants")
	for i := uint32(0); i < r.g.maxProducers; i++ {
		if e := r.producerEntry(i); r.u32(e+peState).Load() == entryActive {
			out = append(out, r.describeProducer(i, e))
		}
	}
	for i := uint32(0); i < r.g.maxReaders; i++ {
		if e := r.readerEntry(i); r.u32(e+reState).Load() == entryActive {
			out = append(out, r.describeReader(i, e))
		}
	}
	return out, nil
}

func (r *Ring) describeProducer(i uint32, e uint64) Participant {
	p := Participant{Index: i, Alive: r.entryAlive(e),
		PID: r.u32(e + pePID).Load(), Pending: r.u64(e + pePending).Load(),
		Position: r.u64(e + peCommitted).Load(),
		Bytes:    r.u64(e + peBytes).Load(), Aborts: r.u64(e + peAborts).Load(),
		BlockedNs: r.u64(e + peBlockedNs).Load()}
	if !p.Alive {
		p.Pending = r.settledPending(p.Pending)
	}
	return p
}

// settledPending is a dead producer's pending word as far as anyone still
// owes it work: a corpse keeps its word until it is reaped, even once its
// sequence was committed, recovered into an abandoned record or passed by
// a later lap (or, single producer, never claimed); then it reads idle,
// as in C.
func (r *Ring) settledPending(p uint64) uint64 {
	if p&3 != pendingSeqTag {
		return p
	}
	s := r.fullSeq(p)
	if s == r.u64(r.g.ctl+ctlClaim).Load() {
		return pendingIdle
	}
	v := r.u64(r.slotOff(s)).Load()
	if commitCmp(v, s) > 0 || v == commitDoneOf(s) || v == commitAbandOf(s) {
		return pendingIdle
	}
	return p
}

func (r *Ring) describeReader(i uint32, e uint64) Participant {
	flags := r.u32(e + reFlags).Load()
	p := Participant{Index: i, IsReader: true, Alive: r.entryAlive(e),
		Gating: flags&readerLossy == 0, Flags: flags,
		PID:          r.u32(e + rePID).Load(),
		Position:     r.u64(e + reCursor).Load(),
		Delivered:    r.u64(e + reDelivered).Load(),
		Lost:         r.u64(e + reLost).Load(),
		Abandoned:    r.u64(e + reAbandoned).Load(),
		Bad:          r.u64(e + reBad).Load(),
		CRCErrors:    r.u64(e + reCRCErrors).Load(),
		DecodeErrors: r.u64(e + reDecodeErr).Load()}
	r.describeLatency(i, e, &p)
	if r.g.durable && flags&readerDurable != 0 {
		p.Durable, p.Detached = true, !p.Alive
		p.Name, _ = r.readerName(e)
	}
	return p
}

// describeLatency reads reader i's latency histogram if its block is its
// own: a block stamped with another joined_ns is an earlier owner's
// (§5.5).
func (r *Ring) describeLatency(i uint32, e uint64, p *Participant) {
	m := r.readerMetrics(i)
	if m == 0 || r.u64(m+mbJoinedNs).Load() != r.u64(e+reJoinedNs).Load() {
		return
	}
	p.HasLatency = true
	p.LatencySumNs = r.u64(m + mbLatencySumNs).Load()
	for b := uint64(0); b < LatencyBuckets; b++ {
		p.Latency[b] = r.u64(m + mbLatency + 8*b).Load()
	}
}

// isDurable: is reader entry e durable (DURABLE on a ring with the
// feature)? Meaningful with e's lock held, or as a snapshot.
func (r *Ring) isDurable(e uint64) bool {
	return r.g.durable && r.u32(e+reFlags).Load()&readerDurable != 0
}

// detachedDurable: is reader entry e, whose lock we hold, a detached
// durable reader (not free: passed over by joiners, §5.2)?
func (r *Ring) detachedDurable(e uint64) bool {
	return r.u32(e+reState).Load() == entryActive && r.isDurable(e)
}

// CheckReaderName checks a durable reader's name: nil if it is 1 to 31
// bytes of [A-Za-z0-9._-] (FORMAT.md §5.4), else ErrInvalid.
func CheckReaderName(name string) error {
	if len(name) == 0 || len(name) > ReaderNameMax {
		return invalid("durable reader name: 1..%d bytes of [A-Za-z0-9._-]", ReaderNameMax)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-') {
			return invalid("durable reader name: 1..%d bytes of [A-Za-z0-9._-]", ReaderNameMax)
		}
	}
	return nil
}

// readerName copies entry e's name once (word loads: a joiner may be
// writing a FREE entry's) and validates the copy: the name and true, or
// "" and false for a malformed one (§5.4: untrusted).
func (r *Ring) readerName(e uint64) (string, bool) {
	var b [readerNameSize]byte
	for i := uint64(0); i < readerNameSize; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.u64(e+reName+i).Load())
	}
	n := bytes.IndexByte(b[:], 0)
	if n < 0 {
		return "", false
	}
	name := string(b[:n])
	if CheckReaderName(name) != nil {
		return "", false
	}
	return name, true
}

// writeName stores name, NUL-padded, into entry e with word stores.
func (r *Ring) writeName(e uint64, name string) {
	var b [readerNameSize]byte
	copy(b[:], name)
	for i := uint64(0); i < readerNameSize; i += 8 {
		r.u64(e + reName + i).Store(binary.LittleEndian.Uint64(b[i:]))
	}
}

func (r *Ring) nameLockOff() uint64 { return r.g.ctl + ctlNameLock }

// nameLock takes the name lock (§9.6) with fd, retrying for about 1 s:
// it is held only across a search and one join or drop.
func (r *Ring) nameLock(fd int) error {
	for attempt := 0; attempt < 1000; attempt++ {
		if lockTake(fd, r.nameLockOff()) == nil {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return ErrBusy
}

func (r *Ring) nameUnlock(fd int) { lockDrop(fd, r.nameLockOff()) }

// durableFind is the entry of the durable reader called name, if any.
func (r *Ring) durableFind(name string) (uint64, uint32, bool) {
	for i := uint32(0); i < r.g.maxReaders; i++ {
		e := r.readerEntry(i)
		if r.u32(e+reState).Load() != entryActive || !r.isDurable(e) {
			continue
		}
		if got, ok := r.readerName(e); ok && got == name {
			return e, i, true
		}
	}
	return 0, 0, false
}

// durableTake locks the durable reader called name with fd, its owner
// being dead: ErrNoReader if there is none, ErrReaderAlive if its lock
// stays held (a prober or a passing joiner holds it only for a moment).
func (r *Ring) durableTake(fd int, name string) (uint64, uint32, error) {
	for attempt := 0; attempt < 20; attempt++ {
		e, i, ok := r.durableFind(name)
		if !ok {
			return 0, 0, ErrNoReader
		}
		if lockTake(fd, e) != nil {
			time.Sleep(time.Millisecond)
			continue
		}
		// Under the lock: still that reader (not dropped since)?
		if got, ok := r.readerName(e); ok && got == name && r.detachedDurable(e) {
			return e, i, nil
		}
		lockDrop(fd, e)
	}
	return 0, 0, ErrReaderAlive
}

// durableRemove frees durable reader entry e, whose lock fd holds (§9.6):
// it stops gating. Not a reap: readers_reaped does not count it.
func (r *Ring) durableRemove(fd int, e uint64) {
	r.u32(e+reState).CompareAndSwap(entryActive, entryFree)
	r.bellRing(ctlSpaceBell)
	lockDrop(fd, e)
}

// DropReader removes the detached durable reader called name (FORMAT.md
// §9.6): it stops gating. ErrNoReader if there is none, ErrReaderAlive if
// its owner is alive, ErrNotDurable on a ring without durable readers,
// ErrInvalid for a bad name, ErrReadOnly on a ring attached read-only.
func (r *Ring) DropReader(name string) (err error) {
	if r.readOnly {
		return wrap(r.name, "drop reader", ErrReadOnly)
	}
	if !r.g.durable {
		return wrap(r.name, "drop reader", ErrNotDurable)
	}
	if err = CheckReaderName(name); err != nil {
		return wrap(r.name, "drop reader", err)
	}
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, r.name, "drop reader")
	fd, err := reopen(r.fd) // our own: the locks are not this ring's probes'
	if err != nil {
		return wrap(r.name, "drop reader", err)
	}
	defer syscall.Close(fd)
	if err = r.nameLock(fd); err != nil {
		return wrap(r.name, "drop reader", err)
	}
	defer r.nameUnlock(fd)
	e, _, err := r.durableTake(fd, name)
	if err != nil {
		return wrap(r.name, "drop reader", err)
	}
	r.durableRemove(fd, e)
	return nil
}
