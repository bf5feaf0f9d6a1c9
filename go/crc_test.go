// SPDX-License-Identifier: MIT

package pbring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/protobuf/proto"

	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

// The CRC policy of format 1.1 (FORMAT.md §6.2): fixed at creation in the
// superblock, read once at attach, followed by SendProto/CommitProto.

// eventOfSize is a DeviceEvent whose encoding is exactly n bytes (3..16385).
func eventOfSize(t *testing.T, n int) *demov1.DeviceEvent {
	t.Helper()
	ev := &demov1.DeviceEvent{Blob: make([]byte, n-2)} // tag and one length byte
	if n-2 >= 128 {
		ev.Blob = make([]byte, n-3) // two length bytes
	}
	if got := proto.Size(ev); got != n {
		t.Fatalf("event of %d bytes is %d", n, got)
	}
	return ev
}

func TestCRCPolicyCreateInfo(t *testing.T) {
	for _, c := range []struct {
		o         CreateOptions
		crc       CRCPolicy
		limit     uint32
		below     uint64
		name      string
		wantCheck []int // payload lengths WantsCRC accepts
		wantSkip  []int // and refuses
	}{
		{CreateOptions{}, CRCFull, 0, ^uint64(0), "full", []int{0, 1, 1 << 30}, nil},
		{CreateOptions{CRC: CRCFull}, CRCFull, 0, ^uint64(0), "full", []int{0, 960}, nil},
		{CreateOptions{CRC: CRCNone}, CRCNone, 0, 0, "none", nil, []int{0, 1, 960}},
		{CreateOptions{CRC: CRCUpTo}, CRCUpTo, 0, 1, "upto", []int{0}, []int{1, 960}},
		{CreateOptions{CRC: CRCUpTo, CRCLimit: 100}, CRCUpTo, 100, 101, "upto", []int{0, 100}, []int{101, 960}},
		{CreateOptions{CRC: CRCUpTo, CRCLimit: 1<<32 - 1}, CRCUpTo, 1<<32 - 1, 1 << 32, "upto", []int{0, 1<<32 - 1}, []int{1 << 32}},
	} {
		o := c.o
		o.SlotCount = 4
		r, name := testRing(t, &o)
		for _, info := range []Info{r.Info(), attachInfo(t, name)} {
			if info.CRC != c.crc || info.CRCLimit != c.limit || info.CRC.String() != c.name ||
				info.FormatMajor != 1 || info.FormatMinor != FormatMinor || FormatMinor != 3 {
				t.Errorf("%+v: info %v %d %d.%d", c.o, info.CRC, info.CRCLimit, info.FormatMajor, info.FormatMinor)
			}
		}
		// The bytes of the superblock, as FORMAT.md §3 places them.
		le := binary.LittleEndian
		if p, l, m := le.Uint32(r.mem[0x09C:]), le.Uint32(r.mem[0x0A8:]), le.Uint16(r.mem[0x00E:]); p != uint32(c.crc) || l != c.limit || m != 3 {
			t.Errorf("%+v: superblock crc_policy %d, crc_limit %d, minor %d", c.o, p, l, m)
		}
		if r.g.crcBelow != c.below {
			t.Errorf("%+v: crcBelow %d, want %d", c.o, r.g.crcBelow, c.below)
		}
		p, err := r.NewProducer(nil)
		must(t, err)
		for _, n := range c.wantCheck {
			if !p.WantsCRC(n) {
				t.Errorf("%+v: WantsCRC(%d) false", c.o, n)
			}
		}
		for _, n := range c.wantSkip {
			if p.WantsCRC(n) {
				t.Errorf("%+v: WantsCRC(%d) true", c.o, n)
			}
		}
		must(t, p.Close())
	}
}

func attachInfo(t *testing.T, name string) Info {
	t.Helper()
	r, err := Attach(name, nil)
	must(t, err)
	defer r.Close()
	return r.Info()
}

// sendAndPeek sends m with SendProto and returns the header the reader
// sees, after checking that the message decodes.
func sendAndPeek(t *testing.T, p *Producer, rd *Reader, m proto.Message) View {
	t.Helper()
	must(t, p.SendProto(m, 0))
	v, err := rd.Peek(0)
	must(t, err)
	got := &demov1.DeviceEvent{}
	must(t, v.Unmarshal(got))
	if !proto.Equal(got, m) {
		t.Fatalf("got %v", got)
	}
	must(t, rd.Release(&v))
	return v
}

func TestCRCPolicyNoneSendProto(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 512, CRC: CRCNone})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	for _, n := range []int{3, 50, 200, 448} {
		v := sendAndPeek(t, p, rd, eventOfSize(t, n))
		if v.Flags&FlagCRC != 0 || v.CRC32C != 0 || v.TimestampNs == 0 {
			t.Fatalf("%d bytes: flags %#x crc %#x ts %d", n, v.Flags, v.CRC32C, v.TimestampNs)
		}
	}
}

func TestCRCPolicyUpToSendProto(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 512, CRC: CRCUpTo, CRCLimit: 100})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	for _, c := range []struct {
		n   int
		crc bool
	}{{50, true}, {200, false}, {100, true}, {101, false}, {3, true}, {448, false}} {
		v := sendAndPeek(t, p, rd, eventOfSize(t, c.n))
		if got := v.Flags&FlagCRC != 0; got != c.crc || len(v.Data) != c.n {
			t.Fatalf("%d bytes: FlagCRC %v, want %v", c.n, got, c.crc)
		}
		if c.crc && v.CRC32C != CRC32C(v.Data) || !c.crc && v.CRC32C != 0 {
			t.Fatalf("%d bytes: crc %#x", c.n, v.CRC32C)
		}
	}
	// A FlagCRC the caller set before CommitProto, with a CRC32C that is
	// not of the bytes marshalled, is dropped when the policy wants none,
	// so readers never see a mismatch.
	s, err := p.Reserve(0)
	must(t, err)
	s.Flags, s.CRC32C = FlagCRC, 0xdeadbeef
	must(t, p.CommitProto(s, eventOfSize(t, 200)))
	v, err := rd.Peek(0)
	must(t, err)
	if v.Flags&FlagCRC != 0 || v.Verify() != nil {
		t.Fatalf("stale CRC published: flags %#x crc %#x", v.Flags, v.CRC32C)
	}
	must(t, rd.Release(&v))
}

func TestCRCPolicyInvalid(t *testing.T) {
	name := fmt.Sprintf("gotest-crc-invalid-%d", os.Getpid())
	for _, c := range []struct {
		o    CreateOptions
		text string
	}{
		{CreateOptions{CRC: 3}, "crc: 3 is not a CRC policy (0 full, 1 none, 2 upto)"},
		{CreateOptions{CRC: 7, CRCLimit: 10}, "crc: 7 is not a CRC policy"},
		{CreateOptions{CRC: CRCFull, CRCLimit: 1}, "crc_limit: 1 is given with crc full; a limit needs crc upto"},
		{CreateOptions{CRC: CRCNone, CRCLimit: 4096}, "crc_limit: 4096 is given with crc none; a limit needs crc upto"},
	} {
		r, err := Create(name, &c.o)
		if err == nil {
			r.Close()
			Unlink(name)
			t.Fatalf("%+v: created", c.o)
		}
		if !errors.Is(err, ErrInvalid) || !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%+v: %v", c.o, err)
		}
		if _, err := os.Stat(shmPath(name)); !os.IsNotExist(err) {
			t.Fatalf("%+v: left %s behind: %v", c.o, name, err)
		}
	}
	if s := CRCPolicy(7).String(); s != "CRCPolicy(7)" {
		t.Errorf("String %q", s)
	}
}

// A policy value this package does not know (from a newer minor) is read
// as CRCFull, limit 0: the producer checksums everything. A 1.0 ring
// (minor 0, zero in both fields) is CRCFull too. The policy is read once,
// from the private copy at attach.
func TestCRCPolicyUnknownIsFull(t *testing.T) {
	r, name := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 512, CRC: CRCNone})
	le := binary.LittleEndian
	for _, c := range []struct {
		minor         uint16
		policy, limit uint32
	}{{1, 7, 0}, {1, 7, 10}, {3, 0xffffffff, 1}, {1, 3, 0}, {0, 0, 0}} {
		le.PutUint16(r.mem[sbMinor:], c.minor)
		le.PutUint32(r.mem[sbCRCPolicy:], c.policy)
		le.PutUint32(r.mem[sbCRCLimit:], c.limit)
		r2, err := Attach(name, nil)
		must(t, err)
		if info := r2.Info(); info.CRC != CRCFull || info.CRCLimit != 0 || info.FormatMinor != c.minor {
			t.Errorf("%+v: info %v %d minor %d", c, info.CRC, info.CRCLimit, info.FormatMinor)
		}
		p, err := r2.NewProducer(nil)
		must(t, err)
		rd, err := r2.NewReader(&ReaderOptions{Start: StartLatest})
		must(t, err)
		for _, n := range []int{3, 50, 200, 448} {
			if v := sendAndPeek(t, p, rd, eventOfSize(t, n)); v.Flags&FlagCRC == 0 || v.CRC32C != CRC32C(v.Data) {
				t.Errorf("%+v: %d bytes: flags %#x crc %#x", c, n, v.Flags, v.CRC32C)
			}
		}
		must(t, r2.Close())
	}
	// The handle that attached first keeps what it read then.
	p, _ := r.NewProducer(nil)
	if r.Info().CRC != CRCNone || p.WantsCRC(0) {
		t.Fatalf("first handle: %v, WantsCRC(0) %v", r.Info().CRC, p.WantsCRC(0))
	}
}

// A CRC policy other than FULL changes what producers write, not what
// readers accept: a reader verifies what carries FlagCRC and accepts the
// rest, whatever the ring's policy (a ring written by a 1.0 producer, or
// a caller in place, may hold either).
func TestCRCPolicyReadersUnchanged(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 256, CRC: CRCNone})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	ev := eventOfSize(t, 50)
	b, _ := proto.Marshal(ev)
	s, err := p.Reserve(0)
	must(t, err)
	copy(s.Data, b)
	s.Flags, s.CRC32C = FlagCRC, CRC32C(b) // a writer that checksums anyway
	must(t, p.Commit(s, len(b)))
	s, err = p.Reserve(0)
	must(t, err)
	copy(s.Data, b)
	s.Flags, s.CRC32C = FlagCRC, CRC32C(b)^1 // and one whose CRC is wrong
	must(t, p.Commit(s, len(b)))
	v, err := rd.Peek(0)
	must(t, err)
	var got demov1.DeviceEvent
	if err := v.Unmarshal(&got); err != nil || v.Flags&FlagCRC == 0 || !proto.Equal(&got, ev) {
		t.Fatalf("checksummed message: %v", err)
	}
	must(t, rd.Release(&v))
	v, err = rd.Peek(0)
	must(t, err)
	if err := v.Unmarshal(&got); !errors.Is(err, ErrBadMsg) {
		t.Fatalf("bad CRC on a NONE ring: %v", err)
	}
	must(t, rd.Release(&v))
}

// NoTimestamp: no clock read per message, TimestampNs stays 0 (as C's
// PBR_PRODUCER_NO_TIMESTAMP); the default stamps every message.
func TestProducerNoTimestamp(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 512})
	rd, _ := r.NewReader(nil)
	for _, no := range []bool{true, false} {
		p, err := r.NewProducer(&ProducerOptions{NoTimestamp: no})
		must(t, err)
		v := sendAndPeek(t, p, rd, eventOfSize(t, 50))
		if (v.TimestampNs == 0) != no {
			t.Fatalf("NoTimestamp %v: timestamp %d", no, v.TimestampNs)
		}
		must(t, p.Close())
	}
}
