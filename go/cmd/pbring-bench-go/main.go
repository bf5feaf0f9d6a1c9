// SPDX-License-Identifier: MIT

// Command pbring-bench-go is the Go side of `pbring-bench --reader go`:
// the echoing process of a ping-pong run, so that a Go reader's one-way
// latency is measured by the same harness, method and histogram code as
// the C reader's, in the same run.
//
//	pbring-bench-go echo KIND IN OUT WARM MODE
//
// KIND is raw (the first 16 bytes of the payload are the stamp and the
// sequence, read in place) or pb (a demo DeviceEvent: View.Unmarshal,
// which verifies the CRC32C the ring asks for and decodes, as a Go
// consumer would). IN is the ring it reads (the harness writes it), OUT
// the ring it answers on; WARM is the number of warm-up messages (not
// timed); MODE is spin or block.
//
// With the harness, over stdout: "ready\n" once both ends are open; then,
// after the message whose sequence has bit 63 set (the last), a block of
// little-endian uint64: the number of samples, the end time, and the
// samples (CLOCK_MONOTONIC ns from the initiator's stamp to this
// process's receipt, for messages from WARM on). Errors: one line on
// stderr and exit status 1; usage: 2.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"

	pbring "github.com/pbring/pbring/go"
	"github.com/pbring/pbring/go/demo"
	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

const msgLast = 1 << 63

type echo struct {
	kind    string
	rd      *pbring.Reader
	p       *pbring.Producer
	warm    uint64
	samples []uint64
	ev      demov1.DeviceEvent
	src     []byte // raw: the payload pattern
	checked bool   // the first message is checked byte for byte
}

func main() {
	if len(os.Args) != 7 || os.Args[1] != "echo" ||
		(os.Args[2] != "raw" && os.Args[2] != "pb") ||
		(os.Args[6] != "spin" && os.Args[6] != "block") {
		fmt.Fprintln(os.Stderr, "usage: pbring-bench-go echo raw|pb IN OUT WARM spin|block")
		os.Exit(2)
	}
	warm, err := strconv.ParseUint(os.Args[5], 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pbring-bench-go: WARM is not a number")
		os.Exit(2)
	}
	if err := run(os.Args[2], os.Args[3], os.Args[4], warm, os.Args[6]); err != nil {
		fmt.Fprintln(os.Stderr, "pbring-bench-go:", err)
		os.Exit(1)
	}
}

func run(kind, in, out string, warm uint64, mode string) error {
	wait := pbring.WaitBlock
	if mode == "spin" {
		wait = pbring.WaitSpin
	}
	// The harness opens A's producer on IN and reader on OUT; this side
	// opens IN's reader first, as the C echo does.
	rin, err := pbring.Attach(in, nil)
	if err != nil {
		return err
	}
	defer rin.Close()
	rout, err := pbring.Attach(out, nil)
	if err != nil {
		return err
	}
	defer rout.Close()
	e := &echo{kind: kind, warm: warm}
	if e.rd, err = rin.NewReader(&pbring.ReaderOptions{Wait: wait}); err != nil {
		return err
	}
	if e.p, err = rout.NewProducer(&pbring.ProducerOptions{Wait: wait, NoTimestamp: true}); err != nil {
		return err
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<16)
	if _, err := w.WriteString("ready\n"); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	end, err := e.loop()
	if err != nil {
		return err
	}
	return e.report(w, end)
}

// loop echoes every message until the last; returns the time it got it.
func (e *echo) loop() (uint64, error) {
	for {
		v, err := e.rd.Peek(-1)
		if err != nil {
			return 0, fmt.Errorf("echo receive: %w", err)
		}
		stamp, seq, err := e.take(&v)
		t := pbring.MonotonicNs()
		if err != nil {
			return 0, err
		}
		if seq&^msgLast >= e.warm {
			d := uint64(0)
			if t > stamp {
				d = t - stamp
			}
			e.samples = append(e.samples, d)
		}
		if err := e.answer(&v); err != nil {
			return 0, fmt.Errorf("echo send: %w", err)
		}
		if seq&msgLast != 0 {
			return t, nil
		}
	}
}

// take reads the stamp and sequence of v (and, for pb, decodes it into
// e.ev); the first message is checked in full.
func (e *echo) take(v *pbring.View) (stamp, seq uint64, err error) {
	if e.kind == "raw" {
		if len(v.Data) < 16 {
			return 0, 0, errors.New("raw message shorter than 16 bytes")
		}
		stamp = binary.LittleEndian.Uint64(v.Data)
		seq = binary.LittleEndian.Uint64(v.Data[8:])
		if !e.checked && !rawOK(v.Data) {
			return 0, 0, errors.New("raw payload is not the pattern")
		}
		e.checked = true
		return stamp, seq, nil
	}
	if err := v.Unmarshal(&e.ev); err != nil {
		return 0, 0, fmt.Errorf("decode: %w", err)
	}
	if !e.checked && !demo.BlobOK(e.ev.Blob) {
		return 0, 0, errors.New("blob is not the pattern")
	}
	e.checked = true
	return e.ev.SentNs, e.ev.Seq, nil
}

func rawOK(b []byte) bool {
	for i := 16; i < len(b); i++ {
		if b[i] != demo.BlobByte(i) {
			return false
		}
	}
	return true
}

// answer releases v and sends the echo: the same bytes (raw, copied from
// the pattern as the C sender does) or the decoded event, re-encoded.
func (e *echo) answer(v *pbring.View) error {
	if e.kind == "pb" {
		if err := e.rd.Release(v); err != nil {
			return err
		}
		return e.p.SendProto(&e.ev, -1)
	}
	n := len(v.Data)
	var head [16]byte
	copy(head[:], v.Data[:16])
	if err := e.rd.Release(v); err != nil {
		return err
	}
	if len(e.src) < n {
		e.src = make([]byte, n)
		for i := range e.src {
			e.src[i] = demo.BlobByte(i)
		}
	}
	s, err := e.p.Reserve(-1)
	if err != nil {
		return err
	}
	if len(s.Data) < n {
		return errors.New("echo ring's slots are smaller than the message")
	}
	copy(s.Data[16:n], e.src[16:n])
	copy(s.Data, head[:])
	return e.p.Commit(s, n)
}

func (e *echo) report(w *bufio.Writer, end uint64) error {
	buf := binary.LittleEndian.AppendUint64(nil, uint64(len(e.samples)))
	buf = binary.LittleEndian.AppendUint64(buf, end)
	if _, err := w.Write(buf); err != nil {
		return err
	}
	var b [8]byte
	for _, s := range e.samples {
		binary.LittleEndian.PutUint64(b[:], s)
		if _, err := w.Write(b[:]); err != nil {
			return err
		}
	}
	return w.Flush()
}
