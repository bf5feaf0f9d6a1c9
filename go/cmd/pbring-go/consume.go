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
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	pbring "github.com/pbring/pbring/go"
	"github.com/pbring/pbring/go/demo"
	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

const consumeHelp = `usage: pbring-go consume RING [options]
Receive messages, check and summarise them. On a demo ring
(pbring.demo.v1.DeviceEvent) each message is checked (blob pattern, id,
per-producer seq); on any other typed ring each is decoded with the
schema stored in the ring and printed as one line of proto3 JSON.
  --count N            stop after N messages (default: until interrupted)
  --timeout SEC        stop when nothing arrives for SEC seconds
  --from oldest|latest start at the oldest message in the ring (default)
                       or only take messages sent from now on; backlog
                       overwritten before it is read is counted as missed
  --lossy              never hold producers back; count what is lost
  --json               one canonical protobuf JSON object per message on stdout
  --quiet              no per-message output, only the summary
  --raw                no decoding: write each payload to stdout as a 4-byte
                       little-endian length and the payload bytes (any
                       ring; the only way to read an untyped ring)
Exits 1 if it saw a CRC or content error (a corrupt slot header, a payload
that does not decode, a demo check failure) or, as a gating reader on a
demo ring, a gap in any producer's seq; the summary on stderr says what it
saw.
`

const (
	batch = 64
	ids   = 4096 // producer ids tracked for continuity, as in C
	step  = 200 * time.Millisecond
)

type consumeCfg struct {
	ring                    string
	count                   uint64
	timeout                 time.Duration // idle; < 0 = none
	start                   pbring.Start
	lossy, json, quiet, raw bool
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
	line                  []byte
	ev                    demov1.DeviceEvent
	stop                  atomic.Bool
}

var consumeOpts = []option{{"count", true}, {"timeout", true}, {"from", true},
	{"lossy", false}, {"json", false}, {"quiet", false}, {"raw", false}, {"help", false}}

func parseConsume(args []string) (*consumeCfg, int) {
	got, operands, ok := parseArgs("consume", args, consumeOpts)
	if !ok {
		return nil, usage("consume", "bad option")
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
	case "json":
		c.json = true
	case "quiet":
		c.quiet = true
	case "raw":
		c.raw = true
	}
	return 0
}

func cmdConsume(args []string) int {
	c, rc := parseConsume(args)
	if c == nil {
		return max(rc, 0)
	}
	r, ok := attach(c.ring)
	if !ok {
		return exitRuntime
	}
	defer r.Close()
	s := &consumeState{cfg: c, out: bufio.NewWriterSize(os.Stdout, 1<<20),
		ids: map[string]*seqTrack{}, line: make([]byte, 0, 256)}
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
	rd, err := r.NewReader(&pbring.ReaderOptions{Lossy: c.lossy, Start: c.start})
	if err != nil {
		return failErr(c.ring, "open reader", err)
	}
	defer rd.Close()
	s.rd = rd
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sigs; s.stop.Store(true) }()
	err = s.loop()
	s.out.Flush()
	s.summary()
	return s.verdict(err)
}

// loop receives until --count, the idle --timeout, or a signal. It peeks
// in steps of at most 200 ms so that a signal is seen promptly.
func (s *consumeState) loop() error {
	c := s.cfg
	idleFrom := nowNs()
	views := make([]pbring.View, batch)
	wait := step
	if c.timeout >= 0 && c.timeout < step {
		wait = c.timeout
	}
	for c.count == 0 || s.received < c.count {
		if s.stop.Load() {
			return nil
		}
		n, err := s.rd.PeekBatch(views, wait)
		s.noteMissed() // peek skips a lapped backlog by itself
		switch {
		case errors.Is(err, pbring.ErrTimeout):
			if c.timeout >= 0 && nowNs()-idleFrom >= int64(c.timeout) {
				return err
			}
			continue
		case errors.Is(err, pbring.ErrBadMsg):
			continue // counted in the reader's stats as bad
		case err != nil:
			return err
		}
		idleFrom = nowNs()
		s.lastNs = idleFrom
		if s.startNs == 0 {
			s.startNs = idleFrom
		}
		if err = s.takeBatch(views[:n]); err != nil {
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
// overwritten).
func (s *consumeState) takeOne(v *pbring.View) int {
	if v.Verify() != nil {
		return takenCRC
	}
	switch s.kind {
	case takeRaw:
		s.latency(v.TimestampNs)
		if !s.cfg.quiet {
			s.line = binary.LittleEndian.AppendUint32(s.line[:0], uint32(len(v.Data)))
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
		s.latency(v.TimestampNs)
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
	s.latency(s.ev.SentNs)
	if s.cfg.json {
		s.line = demo.AppendJSON(s.line[:0], &s.ev)
	}
	return takenOK
}

// latency adds now - sent (CLOCK_MONOTONIC ns) to the histogram.
func (s *consumeState) latency(sent uint64) {
	if now := uint64(nowNs()); sent != 0 && now >= sent {
		s.hist.add(now - sent)
	}
}

func (s *consumeState) emit(v *pbring.View) {
	if s.kind == takeDemo {
		s.checkSeq()
	}
	s.received++
	switch {
	case s.cfg.quiet:
	case s.kind == takeRaw:
		s.out.Write(s.line)
	case s.cfg.json || s.kind == takeSchema:
		s.out.Write(s.line)
		s.out.WriteByte('\n')
	default:
		fmt.Fprintf(s.out, "seq %d id %s status %d blob %d B (ring seq %d, producer %d)\n",
			s.ev.Seq, cID(s.ev.Id), s.ev.Status, len(s.ev.Blob), v.Seq, v.Producer)
	}
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

// checkSeq follows each producer's seq; the first one seen sets the
// start, since a consumer may join a producer that is already running,
// and so does the first one after missed backlog, whose producer cannot
// be known (FORMAT.md §9.1). Going backwards is a duplicate either way.
func (s *consumeState) checkSeq() {
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
	if t.seen && seq > t.next && !resumed {
		s.gaps++
		s.gapMsgs += seq - t.next
	} else if t.seen && seq < t.next {
		s.dups++
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
	err := s.rd.Release(v)
	s.noteMissed()
	if errors.Is(err, pbring.ErrStale) {
		return nil
	}
	switch what {
	case takenOK:
		s.emit(v)
	case takenCRC:
		s.crcErrs++
	default:
		s.badMsgs++
	}
	return err
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
	}
	fmt.Fprintf(os.Stderr, "consume (%s): received %d, lost %d, missed %d, gaps %d, duplicates %d, "+
		"crc errors %d, content errors %d, abandoned %d, rate %.0f msg/s, "+
		"latency p50 %.1f us p99 %.1f us max %.1f us\n",
		mode, s.received, max(st.Lost, s.gapMsgs), st.Missed, s.gaps, s.dups, s.crcErrs, s.badMsgs+st.Bad,
		st.Abandoned, rate, float64(s.hist.pct(50))/1e3, float64(s.hist.pct(99))/1e3,
		float64(s.hist.max)/1e3)
}

func (s *consumeState) verdict(err error) int {
	c, st := s.cfg, s.rd.Stats()
	timedOut := errors.Is(err, pbring.ErrTimeout)
	switch {
	case timedOut && c.count != 0:
		fail(c.ring, "timed out after %d of %d messages", s.received, c.count)
		return exitRuntime
	case err != nil && !timedOut:
		return failErr(c.ring, "receive", err)
	case s.crcErrs+s.badMsgs+st.Bad != 0:
		fail(c.ring, "%d corrupt messages (%d crc errors, %d content errors)",
			s.crcErrs+s.badMsgs+st.Bad, s.crcErrs, s.badMsgs+st.Bad)
		return exitRuntime
	case !c.lossy && (s.gaps != 0 || s.dups != 0):
		fail(c.ring, "%d gaps and %d duplicates in producer sequences", s.gaps, s.dups)
		return exitRuntime
	}
	return 0
}
