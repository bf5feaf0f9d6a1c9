// SPDX-License-Identifier: MIT

package interop

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	pbring "github.com/pbring/pbring/go"
	"github.com/pbring/pbring/go/demo"
	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

// The CRC policy (format 1.1, FORMAT.md §6.2) across C and Go: a ring made
// by either reads the same policy in both, and C and Go producers
// checksum exactly the payloads the policy asks for.

func crcRingName() string {
	return fmt.Sprintf("interop-crc-%d-%d", os.Getpid(), counter.Add(1))
}

// cStat is `pbring stat RING` (text) and `--json`, decoded.
func cStat(t *testing.T, ring string) (string, map[string]any) {
	t.Helper()
	text, err := exec.Command(cBin, "stat", ring).Output()
	if err != nil {
		t.Fatalf("pbring stat: %v", err)
	}
	js, err := exec.Command(cBin, "stat", ring, "--json").Output()
	if err != nil {
		t.Fatalf("pbring stat --json: %v", err)
	}
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(string(js)))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("stat --json: %v: %s", err, js)
	}
	return string(text), m
}

// C's stat of rings Go made: the policy, its limit and the format (1.2); a
// policy C does not know either reads as full, limit 0.
func TestCRCPolicyGoRingCStat(t *testing.T) {
	needC(t)
	for _, c := range []struct {
		crc   pbring.CRCPolicy
		limit uint32
		poke  uint32 // written into crc_policy after creation, if not 0
		text  string
	}{
		{pbring.CRCFull, 0, 0, "crc full, crc_limit 0"},
		{pbring.CRCNone, 0, 0, "crc none, crc_limit 0"},
		{pbring.CRCUpTo, 100, 0, "crc upto, crc_limit 100"},
		{pbring.CRCUpTo, 1<<32 - 1, 0, "crc upto, crc_limit 4294967295"},
		{pbring.CRCUpTo, 100, 7, "crc full, crc_limit 0"},
	} {
		name := crcRingName()
		o := demo.CreateOptions(16, 256)
		o.CRC, o.CRCLimit = c.crc, c.limit
		r, err := pbring.Create(name, o)
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		t.Cleanup(func() { pbring.Unlink(name) })
		if c.poke != 0 {
			f, err := os.OpenFile("/dev/shm/pbring."+name, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.WriteAt([]byte{byte(c.poke), 0, 0, 0}, 0x09C)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		text, js := cStat(t, name)
		lines := strings.Split(text, "\n")
		format := fmt.Sprintf("%d.%d", pbring.FormatMajor, pbring.FormatMinor)
		if len(lines) < 6 || lines[1][:10] != "format "+format || !strings.HasPrefix(lines[3], "max_producers ") || lines[4] != c.text {
			t.Errorf("%+v: stat:\n%s", c, text)
		}
		want := strings.Fields(strings.ReplaceAll(c.text, ",", ""))
		if js["format"] != format || js["crc"] != want[1] || fmt.Sprint(js["crc_limit"]) != want[3] {
			t.Errorf("%+v: stat --json format %v crc %v crc_limit %v", c, js["format"], js["crc"], js["crc_limit"])
		}
		a, err := pbring.Attach(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if info := a.Info(); info.CRC.String() != want[1] || fmt.Sprint(info.CRCLimit) != want[3] {
			t.Errorf("%+v: Go reads %v %d", c, info.CRC, info.CRCLimit)
		}
		a.Close()
	}
}

// Rings C made with --crc: Go reads the policy, and DeviceEvents from the
// C and the Go producer carry FlagCRC exactly where the policy asks;
// every message decodes, and C's consumer accepts them all.
func TestCRCPolicyCRingProducers(t *testing.T) {
	needC(t)
	for _, c := range []struct {
		arg   string
		crc   pbring.CRCPolicy
		limit uint32
	}{
		{"full", pbring.CRCFull, 0},
		{"none", pbring.CRCNone, 0},
		{"100", pbring.CRCUpTo, 100},
		{"0x40", pbring.CRCUpTo, 64},
		{"0", pbring.CRCUpTo, 0},
	} {
		name := crcRingName()
		if out, err := exec.Command(cBin, "create", name, "--slots", "64", "--crc", c.arg).CombinedOutput(); err != nil {
			t.Fatalf("pbring create --crc %s: %v: %s", c.arg, err, out)
		}
		t.Cleanup(func() { pbring.Unlink(name) })
		r, err := pbring.Attach(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if info := r.Info(); info.CRC != c.crc || info.CRCLimit != c.limit || info.FormatMinor != pbring.FormatMinor {
			t.Fatalf("--crc %s: Go reads %v %d, minor %d", c.arg, info.CRC, info.CRCLimit, info.FormatMinor)
		}
		rd, err := r.NewReader(nil)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, bin := range []string{cBin, goBin} {
			for _, size := range []string{"0", "20", "60", "200"} {
				produce(t, bin, name, "--count", "3", "--size", size, "--no-wait")
				n += 3
			}
		}
		checked := 0
		for i := 0; i < n; i++ {
			v, err := rd.Peek(0)
			if err != nil {
				t.Fatalf("--crc %s: message %d: %v", c.arg, i, err)
			}
			want := c.crc == pbring.CRCFull || c.crc == pbring.CRCUpTo && len(v.Data) <= int(c.limit)
			if got := v.Flags&pbring.FlagCRC != 0; got != want {
				t.Errorf("--crc %s: producer %d, %d bytes: FlagCRC %v, want %v", c.arg, v.Producer, len(v.Data), got, want)
			}
			if want {
				checked++
			}
			var ev demov1.DeviceEvent
			if err := v.Unmarshal(&ev); err != nil {
				t.Fatalf("--crc %s: %v", c.arg, err)
			}
			if err := rd.Release(&v); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := rd.Peek(0); !errors.Is(err, pbring.ErrEmpty) {
			t.Fatalf("--crc %s: more messages: %v", c.arg, err)
		}
		r.Close()
		out, err := exec.Command(cBin, "consume", name, "--count", fmt.Sprint(n), "--quiet", "--timeout", "5").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "crc errors 0, ") {
			t.Fatalf("--crc %s: C consume: %v: %s", c.arg, err, out)
		}
		t.Logf("--crc %s: %d of %d messages with a CRC", c.arg, checked, n)
	}
}

// Format 1.2: rings C and Go make have the same geometry (the participant
// table sized for the reader metrics blocks, READER_METRICS set), and a C
// reader stamps its metrics block where Go looks for it (HasLatency).
func TestReaderMetricsCAndGo(t *testing.T) {
	needC(t)
	cName, goName := crcRingName(), crcRingName()
	if out, err := exec.Command(cBin, "create", cName, "--slots", "16", "--slot-size", "256",
		"--producers", "3", "--readers", "20").CombinedOutput(); err != nil {
		t.Fatalf("pbring create: %v: %s", err, out)
	}
	t.Cleanup(func() { pbring.Unlink(cName) })
	o := demo.CreateOptions(16, 256)
	o.MaxProducers, o.MaxReaders = 3, 20
	r, err := pbring.Create(goName, o)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	t.Cleanup(func() { pbring.Unlink(goName) })
	cb, err := os.ReadFile("/dev/shm/pbring." + cName)
	if err != nil {
		t.Fatal(err)
	}
	gb, err := os.ReadFile("/dev/shm/pbring." + goName)
	if err != nil {
		t.Fatal(err)
	}
	// minor .. slots_size (0x00E-0x07F), created_ns and the name aside.
	if !bytes.Equal(cb[0x0E:0x80], gb[0x0E:0x80]) || binary.LittleEndian.Uint64(cb[0x20:]) != 1 ||
		binary.LittleEndian.Uint64(cb[0x58:]) != 8192 {
		t.Fatalf("superblocks differ:\nC  %x\nGo %x", cb[0x0E:0x80], gb[0x0E:0x80])
	}
	a, err := pbring.Attach(cName, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	cmd := exec.Command(cBin, "consume", cName, "--quiet", "--timeout", "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ps, err := a.Participants()
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 1 && ps[0].IsReader {
			if !ps[0].HasLatency || !ps[0].Gating || ps[0].Flags != 1 {
				t.Fatalf("the C reader: %+v", ps[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no C reader: %+v", ps)
		}
	}
}
