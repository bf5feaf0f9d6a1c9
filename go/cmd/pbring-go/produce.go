// SPDX-License-Identifier: MIT

package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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
  --size BYTES     blob bytes per message (default 0)
  --producers K    producer goroutines, each with its own id and seq (default 1)
  --timeout SEC    give up when the ring stays full this long (default 10)
  --no-wait        start at once, even if no gating reader is attached
                   (by default it waits up to --timeout for one, so that
                   nothing is sent into a ring that nobody reads)
  --raw            skip the message type check (for untyped rings)
`

type produceCfg struct {
	ring        string
	count       uint64  // per producer; 0 = unlimited
	rate        float64 // per producer
	size        int
	producers   int
	timeout     time.Duration
	raw, noWait bool
	fromJSON    string // --from-json FILE, "-" for stdin
	payCap      uint32 // the ring's slot payload capacity
	given       map[string]bool
}

// producerRun is one producer goroutine's state.
type producerRun struct {
	k        int
	sent     uint64
	err      error
	progress atomic.Uint64
}

var produceOpts = []option{{"count", true}, {"rate", true}, {"size", true},
	{"producers", true}, {"timeout", true}, {"raw", false}, {"no-wait", false},
	{"from-json", true}, {"help", false}}

// parseProduce returns the config, or an exit code (-1: help printed).
func parseProduce(args []string) (*produceCfg, int) {
	got, operands, ok := parseArgs("produce", args, produceOpts)
	if !ok {
		return nil, usage("produce", "bad option")
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
		for _, o := range []string{"count", "rate", "size", "producers", "raw"} {
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
		c.size = int(v)
	case "producers":
		if v, ok = parseU64(arg, 1, pbring.ParticipantsMax); !ok {
			return usage("produce", "--producers: '%s' is not in 1..1024", arg)
		}
		c.producers = int(v)
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
	case "from-json":
		if arg == "" {
			return usage("produce", "--from-json: expects a FILE or -")
		}
		c.fromJSON = arg
	}
	return 0
}

func cmdProduce(args []string) int {
	c, rc := parseProduce(args)
	if c == nil {
		return max(rc, 0)
	}
	if c.fromJSON != "" {
		return produceJSON(c)
	}
	r, ok := attach(c.ring)
	if !ok {
		return exitRuntime
	}
	defer r.Close()
	if !c.raw && !checkType(c.ring, r) {
		return exitRuntime
	}
	if !c.noWait && !waitGatingReader(r, c.timeout) {
		fail(c.ring, "no gating reader attached (start a consumer first, or use --no-wait)")
		return exitRuntime
	}
	var stop atomic.Bool
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sigs; stop.Store(true) }()
	start := nowNs()
	runs := make([]*producerRun, c.producers)
	var wg sync.WaitGroup
	for k := range runs {
		runs[k] = &producerRun{k: k}
		wg.Add(1)
		go func(t *producerRun) {
			defer wg.Done()
			produceRun(c, r, t, &stop)
		}(runs[k])
	}
	showProgress(runs, &wg, start)
	return produceReport(c, runs, start)
}

// produceRun sends this producer's messages: id "<pid>-<k>", seq from 0.
func produceRun(c *produceCfg, r *pbring.Ring, t *producerRun, stop *atomic.Bool) {
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
		if stop.Load() {
			break
		}
		if c.rate > 0 {
			pace(start, c.rate, i)
		}
		demo.Stamp(ev, i)
		if t.err = p.SendProto(ev, c.timeout); t.err != nil {
			break
		}
		t.progress.Store(i + 1)
	}
	t.sent = i
}

// pace sleeps until message i is due.
func pace(start int64, rate float64, i uint64) {
	due := start + int64(float64(i)*1e9/rate)
	if d := due - nowNs(); d > 0 {
		time.Sleep(time.Duration(d))
	}
}

// showProgress prints a live rate line on a terminal until every
// producer is done.
func showProgress(runs []*producerRun, wg *sync.WaitGroup, start int64) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	if !isTTY(2) {
		<-done
		return
	}
	last, lastNs := uint64(0), start
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			fmt.Fprintln(os.Stderr)
			return
		case <-tick.C:
		}
		now, sum := nowNs(), uint64(0)
		for _, t := range runs {
			sum += t.progress.Load()
		}
		fmt.Fprintf(os.Stderr, "\rproduce: %d sent, %.0f msg/s   ", sum,
			float64(sum-last)*1e9/float64(now-lastNs))
		last, lastNs = sum, now
	}
}

func produceReport(c *produceCfg, runs []*producerRun, start int64) int {
	secs := float64(nowNs()-start) / 1e9
	sum := uint64(0)
	var err error
	for _, t := range runs {
		sum += t.sent
		if t.err != nil && err == nil {
			err = t.err
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
	fmt.Fprintf(os.Stderr, "produce: %d messages from %d producer%s in %.3f s, %.0f msg/s\n",
		sum, c.producers, plural, secs, rate)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, pbring.ErrTimeout):
		fail(c.ring, "ring stayed full for the timeout (is a gating reader stuck?)")
	case errors.Is(err, pbring.ErrMsgSize):
		fail(c.ring, "message does not fit in a slot (use a smaller --size or a larger --slot-size)")
	default:
		failErr(c.ring, "send", err)
	}
	return exitRuntime
}
