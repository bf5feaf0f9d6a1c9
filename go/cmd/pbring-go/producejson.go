// SPDX-License-Identifier: MIT

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pbring "github.com/pbring/pbring/go"
)

// produceJSON is `produce RING --from-json FILE|-`: each non-blank line
// is one proto3 JSON object, parsed with the ring's stored schema into
// its message type and sent (CRC32C and timestamp) in order by one
// producer. The first line that does not parse or send stops it: every
// line before it was committed, nothing of it was.
func produceJSON(c *produceCfg) int {
	r, rc := attach("produce", c.ring, c.anyOwner)
	if r == nil {
		return rc
	}
	defer closeRing(r)
	stopOn(r)
	if r.Info().MsgType == "" {
		fail(c.ring, "ring is untyped: it has no schema to parse JSON with")
		return exitRuntime
	}
	sch, err := loadSchema(r)
	if err != nil {
		fail(c.ring, "%v", err)
		return exitRuntime
	}
	// The file after the ring, as the C command: a bad ring name is a
	// usage error whatever the file.
	in, name := io.Reader(os.Stdin), "-"
	if c.fromJSON != "-" {
		f, err := os.Open(c.fromJSON) // #nosec G304 G703 -- the input file the user names
		if err != nil {
			fail(c.ring, "%s: %s", c.fromJSON, errText(err))
			return exitRuntime
		}
		defer f.Close()
		in, name = f, c.fromJSON
	}
	if !c.noWait {
		if rc := waitReader(r, c.ring, c.timeout); rc != 0 {
			return rc
		}
	}
	p, err := r.NewProducer(nil)
	if err != nil {
		return failErr(c.ring, "open producer", err)
	}
	defer p.Close()
	start := nowNs()
	sent, lineNo, reason := sendJSONLines(c, r, sch, p, bufio.NewReaderSize(in, 1<<16))
	secs := float64(nowNs()-start) / 1e9
	rate := 0.0
	if secs > 0 {
		rate = float64(sent) / secs
	}
	logLine("info", "summary", c.ring, "", "produce: ", fmt.Sprintf("%d messages from %s in %.3f s, %.0f msg/s", sent, name, secs, rate))
	if stopped() != 0 && (reason == "" || reason == stopReason) {
		return stopStatus(c.ring)
	}
	if reason != "" {
		if lineNo > 0 {
			fail(c.ring, "line %d: %s", lineNo, reason)
		} else {
			fail(c.ring, "%s", reason)
		}
		return exitRuntime
	}
	return 0
}

// sendJSONLines sends line after line; it returns the messages sent and,
// on failure, the number of the line at fault (0: not a line's fault)
// and the reason.
func sendJSONLines(c *produceCfg, r *pbring.Ring, sch *ringSchema, p *pbring.Producer, in *bufio.Reader) (uint64, int, string) {
	opts := protojson.UnmarshalOptions{Resolver: sch.types}
	msg := sch.newMessage()
	lines := readLines(in)
	checked := nowNs()
	var sent uint64
	for n := 1; ; n++ {
		var l lineRead
		select {
		case l = <-lines:
		case <-stopCh: // a read of stdin is not interruptible
			return sent, 0, stopReason
		}
		if l.err != nil && l.err != io.EOF {
			return sent, 0, fmt.Sprintf("reading %s: %v", c.fromJSON, l.err)
		}
		if reason := checkRing(r, &checked); reason != "" {
			return sent, 0, reason
		}
		if t := bytes.TrimSpace(l.line); len(t) > 0 {
			proto.Reset(msg)
			if perr := opts.Unmarshal(t, msg); perr != nil {
				return sent, n, jsonReason(perr)
			}
			if serr := sendTraced(p, msg, c.timeout, c.traceparent, nil); serr != nil {
				ln, why := sendFailure(r, msg, n, serr)
				return sent, ln, why
			}
			sent++
		}
		if l.err == io.EOF {
			return sent, 0, ""
		}
	}
}

// sendFailure: the line at fault (0: not a line's fault) and the reason.
func sendFailure(r *pbring.Ring, msg proto.Message, n int, err error) (int, string) {
	switch {
	case errors.Is(err, pbring.ErrTimeout):
		return 0, "ring stayed full for the timeout (is a gating reader stuck?)"
	case errors.Is(err, pbring.ErrMsgSize):
		return n, tooLarge(r, proto.Size(msg))
	case errors.Is(err, pbring.ErrInterrupted) && stopped() != 0:
		return 0, stopReason
	}
	return n, "send: " + errText(err)
}

// checkRing: a producer that never waits would not notice its ring
// removed, so look 4 times a second, between lines; "" if all is well.
func checkRing(r *pbring.Ring, checked *int64) string {
	if now := nowNs(); now-*checked >= int64(250*time.Millisecond) {
		*checked = now
		if err := r.Check(); err != nil {
			return reasonText(r.Name(), err)
		}
	}
	return ""
}

type lineRead struct {
	line []byte
	err  error
}

// readLines reads lines in a goroutine of their own, so that a stop
// signal ends the wait for input at once.
func readLines(in *bufio.Reader) <-chan lineRead {
	ch := make(chan lineRead, 64)
	go func() {
		for {
			line, err := in.ReadBytes('\n')
			ch <- lineRead{line, err}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// stopReason: sendJSONLines stopped for a signal.
const stopReason = "interrupted"

var reJSONPos = regexp.MustCompile(` ?\(line 1:(\d+)\)`)

// jsonReason is protojson's error without its "proto: " prefix, with its
// position inside the one-line document moved to the end as a column:
// `unknown field "x" (column 15)`, `syntax error: unexpected token 5
// (column 11)`.
func jsonReason(err error) string {
	s := strings.TrimPrefix(err.Error(), "proto:")
	s = strings.TrimSpace(strings.ReplaceAll(s, "\u00a0", " "))
	col := ""
	if m := reJSONPos.FindStringSubmatchIndex(s); m != nil {
		col = " (column " + s[m[2]:m[3]] + ")"
		s = s[:m[0]] + s[m[1]:]
	}
	s = strings.TrimSpace(strings.TrimPrefix(s, ":"))
	return s + col
}
