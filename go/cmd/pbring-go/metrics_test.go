// SPDX-License-Identifier: MIT

package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	pbring "github.com/pbring/pbring/go"
	"github.com/pbring/pbring/go/internal/acmepb"
)

// consume keeps the ring's reader metrics (format 1.2): what it found
// corrupt is in its entry's crc_errors and decode_errors, and its
// latency histogram in its metrics block. The consumer has left when
// this looks, so the entry is read from the ring's file (FORMAT.md §5.4,
// §5.5 offsets).
func TestConsumeCountsInRingMetrics(t *testing.T) {
	name, r := newRing(t, &acmepb.Reading{}, 16, 256)
	p, err := r.NewProducer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SendProto(&acmepb.Reading{FInt32: 1}, 0); err != nil { // timed
		t.Fatal(err)
	}
	if err := p.Send([]byte{0xff, 0xff, 0xff}, 0); err != nil { // not protobuf, no timestamp
		t.Fatal(err)
	}
	s, err := p.Reserve(0)
	if err != nil {
		t.Fatal(err)
	}
	n := copy(s.Data, []byte{0x18, 0x05}) // a wrong CRC, no timestamp
	s.Flags, s.CRC32C = pbring.FlagCRC, pbring.CRC32C(s.Data[:n])^1
	if err := p.Commit(s, n); err != nil {
		t.Fatal(err)
	}
	if err := p.SendProto(&acmepb.Reading{FInt32: 2}, 0); err != nil { // timed
		t.Fatal(err)
	}
	res := pbringGo(t, nil, "consume", name, "--count", "2", "--timeout", "1")
	if rc, crc, ce := summary(t, res.stderr); res.code != 1 || rc != "2" || crc != "1" || ce != "1" {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	b, err := os.ReadFile("/dev/shm/pbring." + name)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	partOff := le.Uint64(b[0x50:])
	np, nr := uint64(le.Uint32(b[0x38:])), uint64(le.Uint32(b[0x3C:]))
	e := partOff + np*128 // reader 0: the consumer's
	m := partOff + (np+nr)*128
	if le.Uint32(b[e+0x0C:]) != 1 || le.Uint64(b[e+0x18:]) != 4 {
		t.Fatalf("reader 0: flags %d, delivered %d", le.Uint32(b[e+0x0C:]), le.Uint64(b[e+0x18:]))
	}
	if crc, dec := le.Uint64(b[e+0x40:]), le.Uint64(b[e+0x48:]); crc != 1 || dec != 1 {
		t.Errorf("crc_errors %d, decode_errors %d", crc, dec)
	}
	if le.Uint64(b[m:]) != le.Uint64(b[e+0x30:]) {
		t.Fatal("the block is not the consumer's")
	}
	count := uint64(0)
	for i := uint64(0); i < pbring.LatencyBuckets; i++ {
		count += le.Uint64(b[m+0x10+8*i:])
	}
	if count != 2 || le.Uint64(b[m+0x08:]) == 0 {
		t.Errorf("latency: %d observations, sum %d", count, le.Uint64(b[m+0x08:]))
	}
}

// Usage errors are one line, the C command's words and exit status 2: a
// bad option, a missing value, an invalid ring name (which C and Python
// call a usage error too).
func TestUsageErrorsOneLine(t *testing.T) {
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"consume", "r", "--bogus"}, "unknown option '--bogus'"},
		{[]string{"consume", "r", "--json=1"}, "unknown option '--json=1'"},
		{[]string{"consume", "r", "-x"}, "unknown option '-x'"},
		{[]string{"consume", "r", "--count"}, "option '--count' needs a value"},
		{[]string{"consume", "r", "--co"}, "option '--co' needs a value"},
		{[]string{"consume", "a/b"}, "invalid ring name 'a/b' (use 1-63 of [A-Za-z0-9_.-])"},
		{[]string{"produce", "a/b", "--no-wait"}, "invalid ring name 'a/b' (use 1-63 of [A-Za-z0-9_.-])"},
		{[]string{"produce", ".x", "--from-json", "/nonexistent"}, "invalid ring name '.x' (use 1-63 of [A-Za-z0-9_.-])"},
		{[]string{"produce", "r", "--bogus"}, "unknown option '--bogus'"},
		{[]string{"schema", "a/b"}, "invalid ring name 'a/b' (use 1-63 of [A-Za-z0-9_.-])"},
		{[]string{"schema", "r", "--descriptor-set"}, "option '--descriptor-set' needs a value"},
	}
	cBin := os.Getenv("PBRING_BIN")
	for _, c := range cases {
		res := pbringGo(t, nil, c.args...)
		want := "pbring-go " + c.args[0] + ": " + c.msg + " (see 'pbring-go " + c.args[0] + " --help')\n"
		if res.code != 2 || string(res.stderr) != want || len(res.stdout) != 0 {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, res.code, res.stderr, want)
		}
		res = pbringGo(t, nil, append([]string{"--log-format", "json"}, c.args...)...)
		var obj map[string]any
		if err := json.Unmarshal(res.stderr, &obj); err != nil || res.code != 2 ||
			obj["event"] != c.args[0]+".usage" || obj["message"] != c.msg || bytes.Count(res.stderr, []byte("\n")) != 1 {
			t.Errorf("%v, JSON: exit %d, %s", c.args, res.code, res.stderr)
		}
		if cBin == "" {
			continue
		}
		// The C command says the same, but for its name.
		cmd := exec.Command(cBin, c.args...)
		var cerr bytes.Buffer
		cmd.Stderr = &cerr
		err := cmd.Run()
		ee, _ := err.(*exec.ExitError)
		if ee == nil || ee.ExitCode() != 2 || strings.ReplaceAll(want, "pbring-go", "pbring") != cerr.String() {
			t.Errorf("%v: C says %v %q", c.args, err, cerr.String())
		}
	}
}
