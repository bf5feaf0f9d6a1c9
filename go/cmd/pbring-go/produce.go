// SPDX-License-Identifier: MIT

package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	pbring "github.com/pbring/pbring/go"
	"github.com/pbring/pbring/go/demo"
)

const produceHelp = `usage: pbring-go produce RING --from-json FILE|- [--timeout SEC] [--no-wait]
       pbring-go produce RING [options]
Send messages: with --from-json, one proto3 JSON object per line of FILE
('-': stdin), parsed with the schema stored in the ring into its message
type and sent in order by one producer (any typed ring; blank lines are
skipped; a line that does not parse stops the command with exit 1, every
line before it sent). Otherwise pbring.demo.v1.DeviceEvent messages:
  --from-json FILE|-  the JSON lines to send
  --count N        messages per producer (default: until interrupted)
  --rate HZ        total messages per second (default: as fast as possible)
  --size BYTES     blob bytes per message (default 0); a slot holds
                   --slot-size - 64 bytes, the event's other fields ~40
  --producers K    producer goroutines, each with its own id and seq (default 1)
  --timeout SEC    give up when no gating reader comes, or the ring stays
                   full, this long (default 10)
  --no-wait        start at once, even if no gating reader is attached
                   (by default it waits up to --timeout for one, so that
                   nothing is sent into a ring that nobody reads)
  --traceparent TP give every message this W3C trace context
                   (00-<32 hex>-<16 hex>-<2 hex>; consume --envelope shows it)
  --source HI-LO   give message i of each producer the source id (HI, LO+i)
                   (format 1.3, as a Redis stream entry id ms-seq; consume
                   --envelope shows it)
  --raw            skip the message type check (for untyped rings)
  --any-owner      accept a ring owned by another user (see SECURITY.md)
Ctrl-C or SIGTERM stops it at once: summary, then exit 130 / 143.
`

type produceCfg struct {
	ring        string
	count       uint64  // per producer; 0 = unlimited
	rate        float64 // per producer
	size        int
	producers   int
	timeout     time.Duration
	raw, noWait bool
	anyOwner    bool
	fromJSON    string     // --from-json FILE, "-" for stdin
	traceparent string     // --traceparent (checked), or ""
	source      *[2]uint64 // --source HI-LO, or nil
	given       map[string]bool
}

// producerRun is one producer goroutine's state.
type producerRun struct {
	k        int
	sent     uint64
	err      error
	size     int // the encoding that did not fit (ErrMsgSize)
	progress atomic.Uint64
}

var produceOpts = []option{{"count", true}, {"rate", true}, {"size", true},
	{"producers", true}, {"timeout", true}, {"raw", false}, {"no-wait", false},
	{"from-json", true}, {"any-owner", false}, {"traceparent", true},
	{"source", true}, {"help", false}}

// parseProduce returns the config, or an exit code (-1: help printed).
func parseProduce(args []string) (*produceCfg, int) {
	got, operands, ok := parseArgs("produce", args, produceOpts)
	if !ok {
		return nil, exitUsage // parseArgs said why
	}
	c := &produceCfg{producers: 1, timeout: 10 * time.Second, given: map[string]bool{}}
	for _, kv := range got {
		if rc := c.set(kv[0], kv[1]); rc != 0 {
			return nil, rc
		}
		c.given[kv[0]] = true
	}
	if len(operands) != 1 {
		return nil, usage("produce", "expects exactly one RING")
	}
	if c.given["from-json"] {
		for _, o := range []string{"count", "rate", "size", "producers", "raw", "source"} {
			if c.given[o] {
				return nil, usage("produce", "--%s does not go with --from-json", o)
			}
		}
	}
	c.ring = operands[0]
	if c.rate > 0 {
		c.rate /= float64(c.producers)
	}
	return c, 0
}

func (c *produceCfg) set(name, arg string) int {
	var ok bool
	var v uint64
	switch name {
	case "help":
		fmt.Print(produceHelp)
		return -1
	case "count":
		if c.count, ok = parseU64(arg, 1, 1<<63-1); !ok {
			return usage("produce", "--count: '%s' is not a positive number", arg)
		}
	case "rate":
		if c.rate, ok = parseSeconds(arg); !ok || c.rate <= 0 {
			return usage("produce", "--rate: '%s' is not a positive rate", arg)
		}
	case "size":
		if v, ok = parseU64(arg, 0, 1<<30); !ok {
			return usage("produce", "--size: '%s' is not a size in bytes", arg)
		}
		c.size = int(v) // #nosec G115 -- parseU64 bounded it to 2^30
	case "producers":
		if v, ok = parseU64(arg, 1, pbring.ParticipantsMax); !ok {
			return usage("produce", "--producers: '%s' is not in 1..1024", arg)
		}
		c.producers = int(v) // #nosec G115 -- parseU64 bounded it to 1024
	case "timeout":
		d, ok := parseSeconds(arg)
		if !ok {
			return usage("produce", "--timeout: '%s' is not a number of seconds", arg)
		}
		c.timeout = time.Duration(d * 1e9)
	case "raw":
		c.raw = true
	case "no-wait":
		c.noWait = true
	case "any-owner":
		c.anyOwner = true
	case "from-json":
		if arg == "" {
			return usage("produce", "--from-json: expects a FILE or -")
		}
		c.fromJSON = arg
	case "traceparent":
		if _, _, _, err := pbring.ParseTraceparent(arg); err != nil {
			return usage("produce", "--traceparent: '%s' is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>, lowercase, ids not all zero)", arg)
		}
		c.traceparent = arg
	case "source":
		var ok bool
		if c.source, ok = parseSource(arg); !ok {
			return usage("produce", "--source: '%s' is not HI-LO (two decimal numbers)", arg)
		}
	}
	return 0
}

// sendTraced is SendProto, with the trace context tp (checked when
// parsed) unless it is "", and the source id src unless it is nil.
func sendTraced(p *pbring.Producer, m proto.Message, timeout time.Duration, tp string, src *[2]uint64) error {
	if tp == "" && src == nil {
		return p.SendProto(m, timeout)
	}
	s, err := p.Reserve(timeout)
	if err != nil {
		return err
	}
	if src != nil {
		s.SetSource(src[0], src[1])
	}
	if tp == "" {
		return p.CommitProto(s, m)
	}
	if err := s.SetTraceparent(tp); err != nil {
		if aerr := p.Abort(s); aerr != nil {
			return aerr
		}
		return err
	}
	return p.CommitProto(s, m)
}

// parseSource reads --source HI-LO: two decimal u64.
func parseSource(arg string) (*[2]uint64, bool) {
	hi, lo, ok := strings.Cut(arg, "-")
	h, err1 := strconv.ParseUint(hi, 10, 64)
	l, err2 := strconv.ParseUint(lo, 10, 64)
	if !ok || hi == "" || lo == "" || hi[0] == '+' || lo[0] == '+' || err1 != nil || err2 != nil {
		return nil, false
	}
	return &[2]uint64{h, l}, true
}

func cmdProduce(args []string) int {
	c, rc := parseProduce(args)
	if c == nil {
		return max(rc, 0)
	}
	installStop()
	if c.fromJSON != "" {
		return produceJSON(c)
	}
	r, rc := attach("produce", c.ring, c.anyOwner)
	if r == nil {
		return rc
	}
	defer closeRing(r)
	stopOn(r)
	if !c.raw && !checkType(c.ring, r) {
		return exitRuntime
	}
	if !c.noWait {
		if rc := waitReader(r, c.ring, c.timeout); rc != 0 {
			return rc
		}
	}
	start := nowNs()
	runs := make([]*producerRun, c.producers)
	var wg sync.WaitGroup
	for k := range runs {
		runs[k] = &producerRun{k: k}
		wg.Add(1)
		go func(t *producerRun) {
			defer wg.Done()
			produceRun(c, r, t)
		}(runs[k])
	}
	werr := showProgress(r, c.ring, c.rate, runs, &wg, start)
	return produceReport(c, r, runs, start, werr)
}

// produceRun sends this producer's messages: id "<pid>-<k>", seq from 0.
func produceRun(c *produceCfg, r *pbring.Ring, t *producerRun) {
	p, err := r.NewProducer(nil)
	if err != nil {
		t.err = err
		return
	}
	defer p.Close()
	ev := demo.NewEvent(os.Getpid(), t.k, c.size)
	start := nowNs()
	var i uint64
	for i = 0; c.count == 0 || i < c.count; i++ {
		if stopped() != 0 {
			break
		}
		if c.rate > 0 && !pace(start, c.rate, i) {
			break
		}
		demo.Stamp(ev, i)
		var src *[2]uint64
		if c.source != nil {
			src = &[2]uint64{c.source[0], c.source[1] + i}
		}
		if t.err = sendTraced(p, ev, c.timeout, c.traceparent, src); t.err != nil {
			if errors.Is(t.err, pbring.ErrMsgSize) {
				t.size = proto.Size(ev)
			}
			break
		}
		t.progress.Store(i + 1)
	}
	t.sent = i
}

// pace sleeps until message i is due; false if told to stop meanwhile.
func pace(start int64, rate float64, i uint64) bool {
	due := start + int64(float64(i)*1e9/rate)
	if d := due - nowNs(); d > 0 {
		return sleepUnlessStopped(time.Duration(d))
	}
	return stopped() == 0
}

// showProgress prints a live rate line on a terminal, and polls the watch
// (dead gating readers, the ring removed) on any output, until every
// producer is done. It returns the watch's error, if it stopped them.
func showProgress(r *pbring.Ring, name string, paced float64, runs []*producerRun, wg *sync.WaitGroup, start int64) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tty, w := isTTY(2) && !logJSON, newWatch(r, name) // progress: text only
	st := stall{movedNs: start}
	var werr error
	last, lastNs := uint64(0), start
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			if tty {
				fmt.Fprint(os.Stderr, "\r\033[K") // the summary replaces it
			}
			_ = w.poll() // a reader that died in the last moments (best effort)
			return werr
		case <-tick.C:
		}
		if err := w.poll(); err != nil && werr == nil {
			werr = err
			r.Interrupt() // stop the producers
		}
		now, sum := nowNs(), uint64(0)
		for _, t := range runs {
			sum += t.progress.Load()
		}
		if paced == 0 { // paced: slow on purpose
			st.note(w, sum, now)
		}
		if !tty {
			continue
		}
		fmt.Fprintf(os.Stderr, "\rproduce: %d sent, %.0f msg/s   ", sum,
			float64(sum-last)*1e9/float64(now-lastNs))
		last, lastNs = sum, now
	}
}

func produceReport(c *produceCfg, r *pbring.Ring, runs []*producerRun, start int64, werr error) int {
	secs := float64(nowNs()-start) / 1e9
	sum, size := uint64(0), 0
	var err error
	for _, t := range runs {
		sum += t.sent
		if t.err != nil && err == nil {
			err, size = t.err, t.size
		}
	}
	plural := "s"
	if c.producers == 1 {
		plural = ""
	}
	rate := 0.0
	if secs > 0 {
		rate = float64(sum) / secs
	}
	logLine("info", "summary", c.ring, "", "produce: ", fmt.Sprintf("%d messages from %d producer%s in %.3f s, %.0f msg/s",
		sum, c.producers, plural, secs, rate))
	switch {
	case werr != nil:
		return failErr(c.ring, "", werr)
	case errors.Is(err, pbring.ErrInterrupted) && stopped() != 0:
		return stopStatus(c.ring)
	case err == nil && stopped() != 0:
		return stopStatus(c.ring)
	case err == nil:
		return 0
	case errors.Is(err, pbring.ErrTimeout):
		fail(c.ring, "ring stayed full for the timeout (is a gating reader stuck?)")
	case errors.Is(err, pbring.ErrMsgSize):
		fail(c.ring, "%s: use a smaller --size or a larger --slot-size", tooLarge(r, size))
	default:
		failErr(c.ring, "send", err)
	}
	return exitRuntime
}
