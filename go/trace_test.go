// SPDX-License-Identifier: MIT

package pbring

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	tpOK  = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tpOK2 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
)

// The same cases as C's check_codec test_traceparent_parse.
func TestParseTraceparent(t *testing.T) {
	tid, sid, fl, err := ParseTraceparent(tpOK)
	must(t, err)
	if tid[0] != 0x4b || tid[15] != 0x36 || sid[0] != 0 || sid[7] != 0xb7 || fl != 1 {
		t.Fatalf("parsed %x %x %x", tid, sid, fl)
	}
	if got := FormatTraceparent(tid, sid, fl); got != tpOK {
		t.Fatalf("format %q", got)
	}
	if _, _, fl, err := ParseTraceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-comes"); err != nil || fl != 9 {
		t.Fatalf("a later version: %v %x", err, fl)
	}
	for _, bad := range []string{
		"",
		tpOK[:54],
		tpOK + "-",
		strings.ToUpper(tpOK),
		tpOK[:52] + "_" + tpOK[53:],
		"ff" + tpOK[2:],
		"00-" + strings.Repeat("0", 32) + tpOK[35:],
		tpOK[:36] + strings.Repeat("0", 16) + tpOK[52:],
		tpOK[:51] + "x" + tpOK[52:],
		"0g" + tpOK[2:],
		"01" + tpOK[2:] + "x",
	} {
		if _, _, _, err := ParseTraceparent(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("accepted %q: %v", bad, err)
		}
	}
	if FormatTraceparent([16]byte{}, [8]byte{1}, 1) != "" {
		t.Fatal("an all-zero trace id formatted")
	}
}

// Through a ring: SetTraceparent on a slot, Traceparent on the view, the
// carriers both ways, and a message without a context.
func TestTraceThroughRing(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 256})
	rd, err := r.NewReader(nil)
	must(t, err)
	p, err := r.NewProducer(nil)
	must(t, err)
	s, err := p.Reserve(time.Second)
	must(t, err)
	if err := s.SetTraceparent("nonsense"); !errors.Is(err, ErrInvalid) || s.Flags&FlagTrace != 0 {
		t.Fatalf("bad traceparent: %v, flags %x", err, s.Flags)
	}
	c := SlotCarrier{Slot: s}
	if c.Keys() != nil || c.Get("traceparent") != "" {
		t.Fatal("an empty slot carries a context")
	}
	c.Set("tracestate", "a=b") // not carried
	c.Set("traceparent", tpOK)
	if c.Get("traceparent") != tpOK || len(c.Keys()) != 1 {
		t.Fatalf("carrier: %q %v", c.Get("traceparent"), c.Keys())
	}
	must(t, p.Commit(s, 1))
	must(t, sendU64(t, p, 7, time.Second))
	s, err = p.Reserve(time.Second)
	must(t, err)
	must(t, s.SetTraceparent(tpOK2))
	must(t, p.CommitProto(s, nil))

	v, err := rd.Peek(time.Second)
	must(t, err)
	vc := ViewCarrier{View: &v}
	if v.Traceparent() != tpOK || v.TraceFlags != 1 || vc.Get("traceparent") != tpOK || len(vc.Keys()) != 1 {
		t.Fatalf("view: %q flags %x", v.Traceparent(), v.TraceFlags)
	}
	must(t, rd.Release(&v))
	v, err = rd.Peek(time.Second)
	must(t, err)
	if v.Traceparent() != "" || v.TraceFlags != 0 || (ViewCarrier{View: &v}).Keys() != nil {
		t.Fatalf("no context: %q", v.Traceparent())
	}
	must(t, rd.Release(&v))
	v, err = rd.Peek(time.Second)
	must(t, err)
	if v.Traceparent() != tpOK2 {
		t.Fatalf("CommitProto lost the context: %q", v.Traceparent())
	}
	must(t, rd.Release(&v))
}
