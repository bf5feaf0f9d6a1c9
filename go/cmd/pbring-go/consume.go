// SPDX-License-Identifier: MIT

package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	pbring "github.com/pbring/pbring/go"
	"github.com/pbring/pbring/go/demo"
	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

const consumeHelp = `usage: pbring-go consume RING [options]
Receive messages, check and summarise them. Demo rings: each
pbring.demo.v1.DeviceEvent is checked and printed as text (or --json).
Other typed rings: each message is decoded with the ring's schema and
printed as one line of proto3 JSON.
  --count N            stop after N messages (default: until interrupted)
  --timeout SEC        stop when nothing arrives for SEC seconds
  --from oldest|latest start at the oldest message in the ring (default:
                       replay what it holds) or only take messages sent
                       from now on
  --lossy              never hold producers back; count what is lost
  --tap                observe read-only: needs only read permission (a
                       ring made with --mode 0640), accepts any owner,
                       takes no reader entry (not in stat) and never holds
                       producers back; lossy, it counts what is lost (not
                       with --lossy)
  --durable NAME       a durable reader (a ring made with --durable-readers):
                       resumes where NAME left off, or creates it (from
                       --from); once this exits or dies NAME stays, holding
                       producers back, until resumed or dropped (pbring rm
                       RING --reader NAME); says on stderr which it did
  --json               one canonical protobuf JSON object per message on stdout
  --envelope           with --json: each line is {"seq", "producer",
                       "timestamp_ns", "traceparent" (when the message
                       carries one), "source": "HI-LO" (when it carries
                       a source id), "message": the message's JSON}
  --quiet              no per-message output, only the summary
  --raw                no decoding: each payload as a 4-byte little-endian
                       length and its bytes on stdout (any ring; the only
                       way to read an untyped ring)
  --any-owner          accept a ring owned by another user (see SECURITY.md)
The summary on stderr counts:
  received        messages taken intact
  lost            messages overwritten before this lossy reader or tap read
                  them, or missing from a demo producer's seq
  missed          replayed backlog overwritten before it was read
  gaps            times a demo producer's seq jumped ahead
  duplicates      times a demo producer's seq went back
  crc errors      payloads whose CRC32C does not match
  content errors  corrupt slot headers, payloads that do not decode or
                  fail the demo checks
  abandoned       messages whose producer died while writing them
  rate            received / time from the first message to the last
  latency         p50, p99, max from each message's commit to its receipt:
                  transport plus time queued in the ring, which is most of
                  it when the ring is full; replayed messages, committed
                  before the consumer started, are not timed
A corrupt message counts once, as a crc or content error, and is named on
stderr by its ring seq. Exits 1 if it saw a CRC or content error or, as a
gating reader of a demo ring, a gap or duplicate in any producer's seq.
Ctrl-C or SIGTERM stops it at once: summary, then exit 130 / 143.
`

const (
	batch    = 64
	ids      = 4096 // producer ids tracked for continuity, as in C
	step     = 200 * time.Millisecond
	namedMax = 10 // corrupt messages named on stderr, at most
)

type consumeCfg struct {
	ring                                   string
	count                                  uint64
	timeout                                time.Duration // idle; < 0 = none
	start                                  pbring.Start
	lossy, tap, json, quiet, raw, anyOwner bool
	envelope                               bool   // --envelope: ring metadata around each message
	durable                                string // --durable NAME (checked), or ""
}

// seqTrack follows one producer's seq.
type seqTrack struct {
	next  uint64
	epoch uint64 // consumeState.missEpoch when last seen
	seen  bool
}

// How messages are taken: checked demo events, decoded with the ring's
// schema, or raw frames.
const (
	takeDemo = iota
	takeSchema
	takeRaw
)

type consumeState struct {
	cfg                                                   *consumeCfg
	rd                                                    *pbring.Reader
	out                                                   *bufio.Writer
	ids                                                   map[string]*seqTrack
	hist                                                  hist
	received, gaps, gapMsgs, dups, crcErrs, badMsgs, untr uint64
	kind                                                  int
	schema                                                *ringSchema
	dyn                                                   *dynamicpb.Message
	jsonOpts                                              protojson.MarshalOptions
	scratch                                               []byte
	// missEpoch is bumped whenever join backlog was missed (overwritten
	// before we read it): the next message of every producer may jump.
	missEpoch, missedSeen uint64
	startNs, lastNs       int64
	// Messages committed before openNs are replayed backlog: their age is
	// not a latency, so they are counted, not timed.
	openNs   uint64
	replayed uint64
	// Corrupt messages not yet seen as a jump in their producer's seq, by
	// ring producer id, and of unknown producer (a corrupt header): the
	// jump they make is not a gap too.
	corruptOwed    [pbring.ParticipantsMax]uint64
	corruptOwedAny uint64
	named          int // corrupt messages named on stderr
	msgType        string
	line           []byte
	ev             demov1.DeviceEvent
	progressNs     int64  // the last progress line
	progressN      uint64 // received at that time
	showProgress   bool
}

var consumeOpts = []option{{"count", true}, {"timeout", true}, {"from", true},
	{"lossy", false}, {"tap", false}, {"json", false}, {"quiet", false}, {"raw", false},
	{"any-owner", false}, {"envelope", false}, {"durable", true}, {"help", false}}

func parseConsume(args []string) (*consumeCfg, int) {
	got, operands, ok := parseArgs("consume", args, consumeOpts)
	if !ok {
		return nil, exitUsage // parseArgs said why
	}
	c := &consumeCfg{timeout: -1}
	for _, kv := range got {
		if rc := c.set(kv[0], kv[1]); rc != 0 {
			return nil, rc
		}
	}
	if len(operands) != 1 {
		return nil, usage("consume", "expects exactly one RING")
	}
	if c.json && c.quiet || c.json && c.raw || c.quiet && c.raw {
		return nil, usage("consume", "--json, --quiet and --raw exclude each other")
	}
	if c.envelope && !c.json {
		return nil, usage("consume", "--envelope needs --json")
	}
	if c.tap && c.lossy {
		return nil, usage("consume", "--tap and --lossy exclude each other (a tap is lossy already)")
	}
	if c.durable != "" && (c.tap || c.lossy) {
		which := "--lossy"
		if c.tap {
			which = "--tap"
		}
		return nil, usage("consume", "--durable excludes %s (a durable reader holds producers back)", which)
	}
	c.ring = operands[0]
	return c, 0
}

func (c *consumeCfg) set(name, arg string) int {
	var ok bool
	switch name {
	case "help":
		fmt.Print(consumeHelp)
		return -1
	case "count":
		if c.count, ok = parseU64(arg, 1, 1<<63-1); !ok {
			return usage("consume", "--count: '%s' is not a positive number", arg)
		}
	case "timeout":
		d, ok := parseSeconds(arg)
		if !ok {
			return usage("consume", "--timeout: '%s' is not a number of seconds", arg)
		}
		c.timeout = time.Duration(d * 1e9)
	case "from":
		switch arg {
		case "oldest":
			c.start = pbring.StartOldest
		case "latest":
			c.start = pbring.StartLatest
		default:
			return usage("consume", "--from: '%s' is not oldest or latest", arg)
		}
	case "lossy":
		c.lossy = true
	case "tap":
		c.tap = true
	case "json":
		c.json = true
	case "quiet":
		c.quiet = true
	case "raw":
		c.raw = true
	case "any-owner":
		c.anyOwner = true
	case "envelope":
		c.envelope = true
	case "durable":
		if pbring.CheckReaderName(arg) != nil {
			return usage("consume", "--durable: '%s' is not 1..31 bytes of [A-Za-z0-9._-]", arg)
		}
		c.durable = arg
	}
	return 0
}

func cmdConsume(args []string) int {
	c, rc := parseConsume(args)
	if c == nil {
		return max(rc, 0)
	}
	installStop()
	r, rc := c.attach()
	if r == nil {
		return rc
	}
	defer closeRing(r)
	stopOn(r)
	s := &consumeState{cfg: c, out: bufio.NewWriterSize(os.Stdout, 1<<20),
		ids: map[string]*seqTrack{}, line: make([]byte, 0, 256), msgType: r.Info().MsgType}
	if s.msgType == "" {
		s.msgType = "message"
	}
	switch t := r.Info().MsgType; {
	case c.raw:
		s.kind = takeRaw
	case t == "":
		fail(c.ring, "ring is untyped: use --raw")
		return exitRuntime
	case t == demo.MsgType:
		s.kind = takeDemo
	default:
		sch, err := loadSchema(r)
		if err != nil {
			fail(c.ring, "%v: use --raw", err)
			return exitRuntime
		}
		s.kind, s.schema, s.dyn = takeSchema, sch, sch.newMessage()
		s.jsonOpts = protojson.MarshalOptions{Resolver: sch.types}
	}
	s.openNs = pbring.MonotonicNs()
	rd, err := r.NewReader(c.readerOptions())
	if err != nil {
		return c.openFailed(err)
	}
	defer rd.Close()
	if c.durable != "" {
		how := "created"
		if rd.Resumed() {
			how = "resumed"
		}
		fmt.Fprintf(os.Stderr, "consume: durable reader %s %s at seq %d\n", c.durable, how, rd.Stats().Cursor)
	}
	s.rd = rd
	s.showProgress = isTTY(2) && !logJSON && (c.quiet || !isTTY(1))
	err = s.loop()
	// A full disk or a closed file: the messages taken since are lost, so
	// the run fails and says so, as the C command does (bufio keeps the
	// first write error, so this one check covers every write).
	outErr := s.out.Flush()
	if s.showProgress {
		fmt.Fprint(os.Stderr, "\r\033[K") // the summary replaces it
	}
	s.summary()
	rc = s.verdict(err)
	if outErr != nil {
		fail(c.ring, "cannot write the output: %s", errText(outErr))
		rc = exitRuntime
	}
	if stopped() != 0 && rc != exitRuntime {
		return stopStatus(c.ring)
	}
	return rc
}

// openFailed says why the reader could not be opened, in one line, as C.
func (c *consumeCfg) openFailed(err error) int {
	switch {
	case c.durable != "" && (errors.Is(err, pbring.ErrReaderAlive) || errors.Is(err, pbring.ErrBusy)):
		fail(c.ring, "durable reader %s is in use by a live process (or every reader entry is taken)", c.durable)
	case c.durable != "" && errors.Is(err, pbring.ErrNotDurable):
		fail(c.ring, "ring has no durable readers (create it with --durable-readers)")
	default:
		return failErr(c.ring, "open reader", err)
	}
	return exitRuntime
}

// attach maps the ring: read-only for a tap, which accepts any owner.
func (c *consumeCfg) attach() (*pbring.Ring, int) {
	if c.tap {
		return attachTap("consume", c.ring)
	}
	return attach("consume", c.ring, c.anyOwner)
}

// readerOptions: with Latency the ring's metrics block gets our
// commit-to-receive histogram, for exporters (as the C command's
// consumer); a tap writes nothing, so it keeps its latency to itself.
func (c *consumeCfg) readerOptions() *pbring.ReaderOptions {
	if c.tap {
		return &pbring.ReaderOptions{Tap: true, Start: c.start}
	}
	return &pbring.ReaderOptions{Lossy: c.lossy, Start: c.start, Latency: true, Durable: c.durable}
}

// progress prints "consume: N received, R msg/s" on a terminal, 4 times
// a second, when the messages themselves do not go to it.
func (s *consumeState) progress(now int64) {
	dt := float64(now-s.progressNs) / 1e9
	if !s.showProgress || dt < 0.25 {
		return
	}
	fmt.Fprintf(os.Stderr, "\rconsume: %d received, %.0f msg/s   ", s.received,
		float64(s.received-s.progressN)/dt)
	s.progressNs, s.progressN = now, s.received
}

// loop receives until --count, the idle --timeout, or a signal (which
// interrupts the wait itself). It peeks in steps of at most 200 ms, for
// the progress line and the idle timeout.
func (s *consumeState) loop() error {
	c := s.cfg
	idleFrom := nowNs()
	views := make([]pbring.View, batch)
	wait := step
	if c.timeout >= 0 && c.timeout < step {
		wait = c.timeout
	}
	s.progressNs = idleFrom
	for c.count == 0 || s.received < c.count {
		if stopped() != 0 {
			return pbring.ErrInterrupted
		}
		s.progress(nowNs())
		n, err := s.rd.PeekBatch(views, wait)
		s.noteMissed() // peek skips a lapped backlog by itself
		switch {
		case errors.Is(err, pbring.ErrTimeout):
			if c.timeout >= 0 && nowNs()-idleFrom >= int64(c.timeout) {
				return err
			}
			continue
		case errors.Is(err, pbring.ErrBadMsg): // counted in the reader's stats as bad
			s.corruptOwedAny++
			s.nameCorrupt(views[0].Seq, -1, "corrupt slot header", "")
			continue
		case err != nil:
			return err
		}
		idleFrom = nowNs()
		if s.startNs == 0 {
			s.startNs = idleFrom
		}
		err = s.takeBatch(views[:n])
		s.lastNs = nowNs() // after the batch: a rate over one batch too
		if err != nil {
			return err
		}
	}
	return nil
}

// What takeOne found.
const (
	takenOK      = iota
	takenCRC     // CRC32C mismatch
	takenContent // does not decode, or fails the demo checks
)

// takeOne decodes and checks one message while its slot is still ours,
// and formats it (not counted yet: Release may tell that it was
// overwritten). The reader's Verify counts a CRC mismatch in the ring's
// metrics (crc_errors) unless the slot was overwritten meanwhile.
func (s *consumeState) takeOne(v *pbring.View) int {
	if s.rd.Verify(v) != nil {
		return takenCRC
	}
	switch s.kind {
	case takeRaw:
		if !s.cfg.quiet {
			s.line = binary.LittleEndian.AppendUint32(s.line[:0], uint32(len(v.Data))) // #nosec G115 -- a payload: at most the slot size, 2^30
			var err error
			if s.line, err = v.AppendPayload(s.line); err != nil {
				return takenContent
			}
		}
		return takenOK
	case takeSchema:
		proto.Reset(s.dyn)
		if v.UnmarshalNoVerify(proto.UnmarshalOptions{Resolver: s.schema.types}, s.dyn) != nil {
			return takenContent
		}
		if !s.cfg.quiet {
			var err error
			if s.scratch, err = s.jsonOpts.MarshalAppend(s.scratch[:0], s.dyn); err != nil {
				return takenContent // e.g. an Any of a type the schema lacks
			}
			// protojson varies its whitespace on purpose: take it out.
			buf := bytes.NewBuffer(s.line[:0])
			if json.Compact(buf, s.scratch) != nil {
				return takenContent
			}
			s.line = buf.Bytes()
		}
		return takenOK
	}
	if v.UnmarshalNoVerify(proto.UnmarshalOptions{}, &s.ev) != nil || !demo.Check(&s.ev) {
		return takenContent
	}
	if s.cfg.json {
		s.line = demo.AppendJSON(s.line[:0], &s.ev)
	}
	return takenOK
}

// latency adds now - sent (CLOCK_MONOTONIC ns, the slot's timestamp at
// commit) to the histogram; replayed backlog is counted instead (openNs).
func (s *consumeState) latency(sent uint64) {
	now := pbring.MonotonicNs()
	switch {
	case sent == 0: // committed without a timestamp
	case sent < s.openNs:
		s.replayed++
	case now >= sent:
		s.hist.add(now - sent)
	}
}

func (s *consumeState) emit(v *pbring.View) {
	if s.kind == takeDemo {
		s.checkSeq(v.Producer)
	}
	s.latency(v.TimestampNs)
	s.received++
	switch {
	case s.cfg.quiet:
	case s.kind == takeRaw:
		// bufio keeps the first write error: the Flush at the end checks.
		_, _ = s.out.Write(s.line)
	case s.cfg.envelope:
		s.writeEnvelope(v)
	case s.cfg.json || s.kind == takeSchema:
		_, _ = s.out.Write(s.line) // as above
		_ = s.out.WriteByte('\n')
	default:
		fmt.Fprintf(s.out, "seq %d id %s status %d blob %d B (ring seq %d, producer %d)\n",
			s.ev.Seq, cID(s.ev.Id), s.ev.Status, len(s.ev.Blob), v.Seq, v.Producer)
	}
}

// writeEnvelope writes --envelope's line: the ring's metadata, then the
// message's JSON (s.line), as the C command does.
func (s *consumeState) writeEnvelope(v *pbring.View) {
	b := append(s.scratch[:0], `{"seq":"`...)
	b = strconv.AppendUint(b, v.Seq, 10)
	b = append(b, `","producer":`...)
	b = strconv.AppendUint(b, uint64(v.Producer), 10)
	b = append(b, `,"timestamp_ns":"`...)
	b = strconv.AppendUint(b, v.TimestampNs, 10)
	b = append(b, `",`...)
	if tp := v.Traceparent(); tp != "" {
		b = append(b, `"traceparent":"`...)
		b = append(b, tp...)
		b = append(b, `",`...)
	}
	if hi, lo, ok := v.Source(); ok {
		b = append(b, `"source":"`...)
		b = strconv.AppendUint(b, hi, 10)
		b = append(b, '-')
		b = strconv.AppendUint(b, lo, 10)
		b = append(b, `",`...)
	}
	b = append(b, `"message":`...)
	b = append(b, s.line...)
	b = append(b, "}\n"...)
	s.scratch = b
	_, _ = s.out.Write(b) // bufio keeps the error: the Flush at the end checks
}

// cID is the id as the C consumer holds it: a C string.
func cID(id string) string {
	for i := 0; i < len(id); i++ {
		if id[i] == 0 {
			return id[:i]
		}
	}
	return id
}

// unexplained is how much of a jump of n in the seq of ring producer p
// the corrupt messages already counted do not explain. p's next message
// after its corrupt ones settles what p owes; a corrupt header's producer
// is not known, so any producer's jump settles that.
func (s *consumeState) unexplained(p uint16, n uint64) uint64 {
	if int(p) < len(s.corruptOwed) {
		k := min(s.corruptOwed[p], n)
		n -= k
		s.corruptOwed[p] = 0
	}
	k := min(s.corruptOwedAny, n)
	s.corruptOwedAny -= k
	return n - k
}

// checkSeq follows each producer's seq; the first one seen sets the
// start, since a consumer may join a producer that is already running,
// and so does the first one after missed backlog, whose producer cannot
// be known (FORMAT.md §9.1). Going backwards is a duplicate either way.
func (s *consumeState) checkSeq(producer uint16) {
	id := cID(s.ev.Id)
	t, ok := s.ids[id]
	if !ok {
		if len(s.ids) >= ids {
			s.untr++
			return
		}
		t = &seqTrack{}
		s.ids[id] = t
	}
	seq := s.ev.Seq
	resumed := t.epoch != s.missEpoch
	t.epoch = s.missEpoch
	jump := uint64(0)
	if t.seen && seq > t.next && !resumed {
		jump = seq - t.next
	} else if t.seen && seq < t.next {
		s.dups++
	}
	if jump = s.unexplained(producer, jump); jump != 0 {
		s.gaps++
		s.gapMsgs += jump
	}
	t.seen = true
	if seq >= t.next {
		t.next = seq + 1
	}
}

// noteMissed bumps missEpoch if the reader missed backlog since last time.
func (s *consumeState) noteMissed() {
	if m := s.rd.Stats().Missed; m != s.missedSeen {
		s.missedSeen = m
		s.missEpoch++
	}
}

// takeBatch takes the views one at a time, up to --count.
func (s *consumeState) takeBatch(views []pbring.View) error {
	for i := range views {
		if s.cfg.count != 0 && s.received >= s.cfg.count {
			return nil
		}
		if err := s.takeReleased(&views[i]); err != nil {
			return err
		}
	}
	return nil
}

// takeReleased checks one message, releases it, and only then counts it:
// a lossy reader's slot, or a gating reader's join backlog, may be
// overwritten while it is read, and Release is what tells (ErrStale:
// discard it; it is counted as lost or missed, never as corrupt or
// delivered).
func (s *consumeState) takeReleased(v *pbring.View) error {
	what := s.takeOne(v)
	if what == takenContent {
		// In the ring's metrics (decode_errors), unless the slot was
		// overwritten meanwhile (ErrStale, which Release reports too).
		_ = s.rd.Reject(v)
	}
	err := s.rd.Release(v)
	s.noteMissed()
	if errors.Is(err, pbring.ErrStale) {
		return nil
	}
	if what == takenOK {
		s.emit(v)
	} else {
		s.corrupt(v, what)
	}
	return err
}

// corrupt counts a corrupt message once: as a crc or content error, never
// also as the gap it leaves in its producer's seq (see unexplained).
func (s *consumeState) corrupt(v *pbring.View, what int) {
	why := "CRC mismatch"
	if what == takenCRC {
		s.crcErrs++
	} else {
		s.badMsgs++
		why = "payload is not a valid " + s.msgType
	}
	if int(v.Producer) < len(s.corruptOwed) {
		s.corruptOwed[v.Producer]++
	} else {
		s.corruptOwedAny++
	}
	tid := v.Traceparent()
	if tid != "" {
		tid = tid[3:35] // the trace id of its W3C traceparent
	}
	s.nameCorrupt(v.Seq, int(v.Producer), why, tid)
}

// nameCorrupt names a corrupt message on stderr (the first namedMax of
// them, so that a flood of them does not bury the summary); p < 0: its
// producer is not known.
func (s *consumeState) nameCorrupt(seq uint64, p int, why, traceID string) {
	s.named++
	pre := "pbring: " + s.cfg.ring + ": "
	switch {
	case s.named == namedMax+1:
		fail(s.cfg.ring, "more corrupt messages: not named")
	case s.named > namedMax:
	case p < 0:
		logLine("error", "corrupt", s.cfg.ring, traceID, pre, fmt.Sprintf("seq %d: %s", seq, why))
	default:
		logLine("error", "corrupt", s.cfg.ring, traceID, pre, fmt.Sprintf("seq %d (producer %d): %s", seq, p, why))
	}
}

// summary prints the C command's summary line on stderr.
func (s *consumeState) summary() {
	st := s.rd.Stats()
	secs := float64(s.lastNs-s.startNs) / 1e9
	rate := 0.0
	if secs > 0 {
		rate = float64(s.received) / secs
	}
	mode := "gating"
	if s.cfg.lossy {
		mode = "lossy"
	} else if s.cfg.tap {
		mode = "tap"
	}
	logLine("info", "summary", s.cfg.ring, "", "consume ", fmt.Sprintf("(%s): received %d, lost %d, missed %d, gaps %d, duplicates %d, "+
		"crc errors %d, content errors %d, abandoned %d, rate %.0f msg/s, %s",
		mode, s.received, max(st.Lost, s.gapMsgs), st.Missed, s.gaps, s.dups, s.crcErrs, s.badMsgs+st.Bad,
		st.Abandoned, rate, s.latencyText()))
}

// latencyText is "latency p50 P p99 Q max X (what it measures)".
func (s *consumeState) latencyText() string {
	p50, p99, mx, replayed := "-", "-", "-", ""
	if s.hist.count != 0 {
		p50, p99, mx = duration(s.hist.pct(50)), duration(s.hist.pct(99)), duration(s.hist.max)
	}
	if s.replayed != 0 {
		replayed = fmt.Sprintf("; %d replayed messages not timed", s.replayed)
	}
	return fmt.Sprintf("latency p50 %s p99 %s max %s (commit to receive, including time queued in the ring%s)",
		p50, p99, mx, replayed)
}

func (s *consumeState) verdict(err error) int {
	c, st := s.cfg, s.rd.Stats()
	if errors.Is(err, pbring.ErrInterrupted) && stopped() != 0 {
		err = nil // the checks below still apply; the status is 130
	}
	timedOut := errors.Is(err, pbring.ErrTimeout)
	switch {
	case timedOut && c.count != 0:
		fail(c.ring, "timed out after %d of %d messages", s.received, c.count)
		return exitRuntime
	case err != nil && !timedOut:
		return failErr(c.ring, "receive", err)
	case s.crcErrs+s.badMsgs+st.Bad != 0:
		fail(c.ring, "%d corrupt messages", s.crcErrs+s.badMsgs+st.Bad)
		return exitRuntime
	case !c.lossy && !c.tap && (s.gaps != 0 || s.dups != 0):
		fail(c.ring, "%d gaps and %d duplicates in producer sequences", s.gaps, s.dups)
		return exitRuntime
	}
	return 0
}
