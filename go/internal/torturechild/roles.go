// SPDX-License-Identifier: MIT

package main

// The roles, as tests/crash/torture_roles.c plays them.
//
// Producer: it knows what it committed because it appends every counter
// whose send returned nil to its log (one write before the next reserve).
// When it is killed, at most one counter, the one after the last logged,
// was in flight; a restarted producer skips it (log_resume).
//
// Readers: each delivery is copied out, released, and only then checked;
// a copy whose release says ErrStale is discarded, not judged.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	pbring "github.com/pbring/pbring/go"
	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
	"golang.org/x/sys/unix"
)

const (
	opTimeout     = 10 * time.Second // longer than any honest wait
	peekTimeout   = 50 * time.Millisecond
	maxComplaints = 5
	injectEvery   = 97
)

// monoNs is tu_now_ns: CLOCK_MONOTONIC in nanoseconds.
func monoNs() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Sec)*1e9 + uint64(ts.Nsec)
}

func attach(cf *config) (*pbring.Ring, error) {
	r, err := pbring.Attach(cf.ring, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "torture go child: attach %s: %v\n", cf.ring, err)
	}
	return r, err
}

// --- producers ---------------------------------------------------------------

// plog is a producer's log, append-only u64 records.
type plog struct {
	f   *os.File
	rec [8]byte
}

// append writes one record with one write (O_APPEND).
func (l *plog) append(v uint64) error {
	binary.LittleEndian.PutUint64(l.rec[:], v)
	_, err := l.f.Write(l.rec[:])
	return err
}

// logResume opens (or creates) producer who's log and returns the counter
// to use next, after the one a dead predecessor may have had in flight.
func logResume(cf *config, who uint32) (*plog, uint64, error) {
	path := filepath.Join(cf.dir, "prod-"+strconv.FormatUint(uint64(who), 10)+".log")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0600)
	if err != nil {
		return nil, 0, err
	}
	l := &plog{f: f}
	// Records only grow, so the last one bounds everything logged. A
	// kill cannot split an 8-byte write within one page.
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	end = end / 8 * 8
	next := uint64(0)
	var b [8]byte
	if end > 0 {
		if n, _ := f.ReadAt(b[:], end-8); n == 8 {
			rec := binary.LittleEndian.Uint64(b[:])
			if rec&ttMark != 0 {
				next = rec&^ttMark + 1
			} else {
				next = rec + 2
			}
		}
	}
	if err := l.append(ttMark | next); err != nil {
		f.Close()
		return nil, 0, err
	}
	return l, next, nil
}

func openProducer(r *pbring.Ring) (*pbring.Producer, error) {
	var p *pbring.Producer
	var err error
	// ErrBusy only while a prober holds an entry lock for a moment.
	for tries := 0; tries < 100; tries++ {
		if p, err = r.NewProducer(nil); !errors.Is(err, pbring.ErrBusy) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "torture go producer: open: %v\n", err)
	}
	return p, err
}

// inject: a deliberate fault every injectEvery messages (--inject).
// skip: the message was dealt with (or deliberately not sent).
func inject(cf *config, s *sender, who uint32, c uint64) (skip bool, err error) {
	if cf.inject == "" || c%injectEvery != injectEvery/2 {
		return false, nil
	}
	switch cf.inject {
	case "lost":
		return true, nil
	case "dup":
		return false, s.send(who, c, opTimeout, false)
	case "torn":
		return true, s.send(who, c, opTimeout, true)
	}
	return false, nil
}

func sendOne(cf *config, s *sender, who uint32, c uint64) error {
	skip, err := inject(cf, s, who, c)
	if err == nil && !skip {
		err = s.send(who, c, opTimeout, false)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "torture go producer %d: send %d: %v\n", who, c, err)
	}
	return err
}

func produce(cf *config, sh *shared, s *sender, who uint32, log *plog, c uint64) int {
	for ; !sh.stop(); c++ {
		if err := sendOne(cf, s, who, c); err != nil {
			if errors.Is(err, pbring.ErrTimeout) {
				return exStuck
			}
			return exSend
		}
		// Logged before the next reserve: a kill from here on leaves
		// nothing in flight.
		if log.append(c) != nil {
			return exSetup
		}
		if cf.rate != 0 && (c+1)%uint64(cf.rate) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return exOK
}

func producerMain(cf *config, sh *shared) int {
	who := cf.index
	r, err := attach(cf)
	if err != nil {
		return exSetup
	}
	log, next, err := logResume(cf, who)
	if err != nil {
		fmt.Fprintf(os.Stderr, "torture go producer %d: log: %v\n", who, err)
		return exSetup
	}
	p, err := openProducer(r)
	if err != nil {
		return exSetup
	}
	rc := produce(cf, sh, newSender(p, r.Info().PayloadCap), who, log, next)
	log.f.Close()
	if rc == exOK {
		if err := p.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "torture go producer %d: close: %v\n", who, err)
			rc = exSend
		}
	}
	r.Close()
	return rc
}

// --- readers -----------------------------------------------------------------

type reader struct {
	cf             *config
	sh             *shared
	st             int // offset of our struct tt_reader_stats
	missedW        int // offset of our missed word, or -1
	r              *pbring.Ring
	rd             *pbring.Reader
	cap            uint32
	lossy          bool
	hist, witness  bool
	index          uint32
	pauseOdds      int
	complaints     int
	stream         *os.File
	sw             *bufio.Writer
	lost, abandond uint64 // already added to the shared page
	missed         uint64
	cursor         uint64 // before the current peek
	raw            []byte // witnesses: the ring, to explain a loss
	last           [maxProd]uint64
	seen           [maxProd]bool
	buf            []byte
	rng            *rand.Rand
	ev             demov1.DeviceEvent
	rec            [12]byte
}

func (x *reader) stat(w int) uint64Word { return uint64Word{x.sh, x.st + 8*w} }

type uint64Word struct {
	sh  *shared
	off int
}

func (w uint64Word) add(n uint64)   { w.sh.u64(w.off).Add(n) }
func (w uint64Word) store(v uint64) { w.sh.u64(w.off).Store(v) }
func (w uint64Word) load() uint64   { return w.sh.u64(w.off).Load() }

func (x *reader) complain(what string, v *copyView) {
	if x.complaints >= maxComplaints {
		return
	}
	x.complaints++
	kind := "gating"
	if x.lossy {
		kind = "lossy"
	}
	fmt.Fprintf(os.Stderr, "torture go %s reader %d: %s at seq %d (len %d, producer %d, flags 0x%x)\n",
		kind, x.index, what, v.seq, len(v.data), v.prod, v.flags)
}

// explainLoss: a witness never loses anything, so a loss the library
// reports means it found a later lap's record in a slot it had not
// released. Say which record.
func (x *reader) explainLoss(n uint64) {
	fmt.Fprintf(os.Stderr, "torture go witness %d: the library skipped %d sequences at %d", x.index, n, x.cursor)
	if x.raw != nil {
		info := x.r.Info()
		slots := binary.LittleEndian.Uint64(x.raw[0x70:])
		off := slots + (x.cursor&uint64(info.SlotCount-1))*uint64(info.SlotSize)
		if off+8 <= uint64(len(x.raw)) {
			v := binary.LittleEndian.Uint64(x.raw[off:])
			state := [4]string{"EMPTY", "DONE", "ABANDONED", "BUSY"}[v&3]
			fmt.Fprintf(os.Stderr, ", whose slot now holds %s of sequence %+d from it",
				state, int64((v>>2-x.cursor)<<2)>>2)
		}
	}
	fmt.Fprintln(os.Stderr)
}

// syncStats moves this incarnation's reader counters into the shared page.
func (x *reader) syncStats() {
	rs := x.rd.Stats()
	if x.witness && rs.Lost != x.lost {
		x.explainLoss(rs.Lost - x.lost)
	}
	x.stat(sLost).add(rs.Lost - x.lost)
	x.stat(sAbandoned).add(rs.Abandoned - x.abandond)
	if x.missedW >= 0 {
		x.sh.u64(x.missedW).Add(rs.Missed - x.missed)
	}
	x.lost, x.abandond, x.missed = rs.Lost, rs.Abandoned, rs.Missed
}

func (x *reader) noteTime() {
	now := monoNs()
	x.stat(sLastNs).store(now)
	if !x.hist {
		return
	}
	n := x.sh.u64(offHistN).Load()
	x.sh.u64(offHistNs + 8*int(n%histN)).Store(now)
	x.sh.u64(offHistN).Store(n + 1)
}

func (x *reader) record(who uint32, c uint64) int {
	if x.seen[who] && c <= x.last[who] {
		x.stat(sDup).add(1)
	}
	x.seen[who], x.last[who] = true, c
	x.stat(sDelivered).add(1)
	x.noteTime()
	if x.sw == nil {
		return 0
	}
	binary.LittleEndian.PutUint32(x.rec[0:], who)
	binary.LittleEndian.PutUint64(x.rec[4:], c)
	if _, err := x.sw.Write(x.rec[:]); err != nil {
		return exSetup
	}
	return 0
}

func (x *reader) deliver(v *copyView) int {
	before := x.stat(sDup).load()
	who, c, ok := verify(v, x.cap, x.cf.producers, &x.ev)
	if !ok {
		x.stat(sTorn).add(1)
		x.complain("torn or foreign message", v)
		return 0
	}
	rc := x.record(who, c)
	if x.stat(sDup).load() != before {
		x.complain("counter did not go up", v)
	}
	return rc
}

// caughtUp: everything published has been read and no producer is left.
// A cursor past the claim word means the reader consumed a sequence that
// nobody claimed: recorded for the driver, and nothing is left to wait for.
func (x *reader) caughtUp() bool {
	if x.sw != nil { // the stream must survive a kill by the driver at the end
		x.sw.Flush()
	}
	if !x.sh.drain() {
		return false
	}
	rs := x.rd.Stats()
	st, _ := x.r.Stats()
	d := int64(st.Claimed - rs.Cursor)
	if d < 0 {
		x.stat(sAhead).store(rs.Cursor - st.Claimed)
	}
	return d <= 0
}

// readOne handles one message: 1 when done, 0 to go on, or a negative
// exit code.
func (x *reader) readOne() int {
	x.cursor = x.rd.Stats().Cursor
	v, err := x.rd.Peek(peekTimeout)
	x.syncStats()
	if errors.Is(err, pbring.ErrTimeout) {
		if x.caughtUp() {
			return 1
		}
		return 0
	}
	if errors.Is(err, pbring.ErrBadMsg) {
		x.stat(sTorn).add(1)
		x.complain("corrupt slot header (ErrBadMsg)", &copyView{seq: v.Seq, prod: v.Producer, flags: v.Flags})
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "torture go reader %d: peek: %v\n", x.index, err)
		return -exPeek
	}
	if x.buf, err = v.AppendPayload(x.buf[:0]); err != nil {
		fmt.Fprintf(os.Stderr, "torture go reader %d: copy: %v\n", x.index, err)
		return -exPeek
	}
	cv := copyView{data: x.buf, seq: v.Seq, flags: v.Flags, crc: v.CRC32C, prod: v.Producer}
	err = x.rd.Release(&v)
	if errors.Is(err, pbring.ErrStale) {
		x.stat(sStale).add(1)
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "torture go reader %d: release: %v\n", x.index, err)
		return -exRelease
	}
	rc := x.deliver(&cv)
	if x.pauseOdds != 0 && x.rng.IntN(x.pauseOdds) == 0 {
		time.Sleep(time.Duration(x.rng.IntN(2000)) * time.Microsecond)
	}
	return -rc
}

func (x *reader) openStream(incarnation uint32) error {
	// Only a first incarnation saw everything from the start.
	if x.lossy || incarnation != 0 {
		return nil
	}
	path := filepath.Join(x.cf.dir, "gating-"+strconv.FormatUint(uint64(x.index), 10)+".bin")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0600)
	if err != nil {
		return err
	}
	x.stream, x.sw = f, bufio.NewWriterSize(f, 1<<20)
	return nil
}

func (x *reader) openReader() error {
	var err error
	o := &pbring.ReaderOptions{Lossy: x.lossy, Start: pbring.StartOldest}
	for tries := 0; tries < 100; tries++ {
		if x.rd, err = x.r.NewReader(o); !errors.Is(err, pbring.ErrBusy) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "torture go reader: open: %v\n", err)
	}
	x.cap = x.r.Info().PayloadCap
	return err
}

// mapRaw maps the ring read-only, for explainLoss; nil if that fails.
func mapRaw(ring string) []byte {
	f, err := os.Open("/dev/shm/pbring." + ring)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() < 4096 {
		return nil
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil
	}
	return m
}

func readerMain(cf *config, sh *shared) int {
	x := &reader{cf: cf, sh: sh, lossy: cf.role == "lossy", index: cf.index,
		buf: make([]byte, 0, maxMsg)}
	x.st = statsOff(x.lossy, x.index)
	x.missedW = sh.missedOff(x.lossy, x.index)
	x.hist = !x.lossy && x.index == 0
	x.witness = !x.lossy && x.index < cf.witnesses
	// Slow readers make producers wait (gating) or get lapped (lossy);
	// witnesses do not pause, so their delivery times measure resume.
	switch {
	case x.lossy:
		x.pauseOdds = 16
	case x.index >= cf.witnesses:
		x.pauseOdds = 64
	}
	seed := cf.seed ^ x.index*7919 ^ uint32(os.Getpid())
	x.rng = rand.New(rand.NewPCG(uint64(seed), 0))
	var err error
	if x.r, err = attach(cf); err != nil {
		return exSetup
	}
	if x.openReader() != nil {
		return exSetup
	}
	if err := x.openStream(cf.incarnation); err != nil {
		fmt.Fprintf(os.Stderr, "torture go reader %d: stream: %v\n", x.index, err)
		return exSetup
	}
	if x.witness {
		x.raw = mapRaw(cf.ring)
	}
	rc := 0
	for rc == 0 {
		rc = x.readOne()
	}
	if x.stream != nil {
		ferr := x.sw.Flush()
		if cerr := x.stream.Close(); ferr != nil || cerr != nil {
			rc = -exSetup
		}
	}
	x.r.Close()
	if rc < 0 {
		return -rc
	}
	return exOK
}
