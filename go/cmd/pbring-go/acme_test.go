// SPDX-License-Identifier: MIT

package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	pbring "github.com/pbring/pbring/go"
	"github.com/pbring/pbring/go/internal/acmepb"
)

// The tests run the command as a child process: this test binary, with
// PBRING_GO_MAIN=1, is pbring-go.
func TestMain(m *testing.M) {
	if os.Getenv("PBRING_GO_MAIN") == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// result is a finished command.
type result struct {
	code           int
	stdout, stderr []byte
}

func pbringGo(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "PBRING_GO_MAIN=1")
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.Bytes(), errb.Bytes()}
}

var ringNo atomic.Int32

// newRing creates a ring carrying m's type with its canonical schema (nil
// m: an untyped ring).
func newRing(t *testing.T, m proto.Message, slots, slotSize uint32) (string, *pbring.Ring) {
	t.Helper()
	name := fmt.Sprintf("gocli-%d-%d", os.Getpid(), ringNo.Add(1))
	pbring.Unlink(name)
	o := &pbring.CreateOptions{SlotCount: slots, SlotSize: slotSize}
	if m != nil {
		fds, err := pbring.SchemaOf(m)
		if err != nil {
			t.Fatal(err)
		}
		o.MsgType, o.Schema = string(m.ProtoReflect().Descriptor().FullName()), fds
	}
	r, err := pbring.Create(name, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); pbring.Unlink(name) })
	return name, r
}

// ringTypes links the ring's stored schema: the message type and the
// resolver for Any.
func ringTypes(t *testing.T, r *pbring.Ring) (protoreflect.MessageDescriptor, *dynamicpb.Types) {
	t.Helper()
	b, err := r.Schema()
	if err != nil {
		t.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		t.Fatal(err)
	}
	d, err := files.FindDescriptorByName(protoreflect.FullName(r.Info().MsgType))
	if err != nil {
		t.Fatal(err)
	}
	return d.(protoreflect.MessageDescriptor), dynamicpb.NewTypes(files)
}

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// readings are Readings with every kind of field and awkward values.
func readings(t *testing.T) []*acmepb.Reading {
	loc := func(i int) *acmepb.Location {
		return &acmepb.Location{Lat: float64(i) / 3, Lon: -float64(i) * 1.5, SiteName: fmt.Sprintf("site-%d-é", i)}
	}
	tree := func(depth int) *acmepb.Tree {
		var mk func(d int, name string) *acmepb.Tree
		mk = func(d int, name string) *acmepb.Tree {
			n := &acmepb.Tree{Name: name}
			if d > 0 {
				n.Children = []*acmepb.Tree{mk(d-1, name+".0"), mk(d-1, name+".1")}
			}
			return n
		}
		return mk(depth, "root")
	}
	st, err := structpb.NewStruct(map[string]any{"a": 1.5, "b": []any{"x", true, nil, 2.0},
		"c": map[string]any{"deep": map[string]any{"er": "\u0000nul"}}, "d": nil})
	if err != nil {
		t.Fatal(err)
	}
	rs := []*acmepb.Reading{
		{}, // all defaults: "{}"
		{FInt64: math.MaxInt64, FUint64: math.MaxUint64, FSint64: math.MinInt64, FSfixed64: math.MinInt64,
			FFixed64: math.MaxUint64, FInt32: math.MinInt32, FUint32: math.MaxUint32, FSint32: math.MaxInt32,
			FFixed32: math.MaxUint32, FSfixed32: math.MinInt32},
		{FInt64: math.MinInt64, FSint64: math.MaxInt64, FSfixed64: math.MaxInt64, FInt32: math.MaxInt32, FSint32: math.MinInt32},
		{FDouble: math.Inf(1), FFloat: float32(math.Inf(-1))},
		{FDouble: math.NaN(), FFloat: float32(math.NaN())},
		{FDouble: math.SmallestNonzeroFloat64, FFloat: math.MaxFloat32},
		{FDouble: -math.MaxFloat64, FFloat: math.SmallestNonzeroFloat32},
		{FDouble: 0.1, FFloat: 0.1, FBool: true},
		{DeviceId: "nul\x00inside\x00", Raw: []byte{0, 0, 0}},
		{DeviceId: "日本語 ☃ 🎉 \"quoted\" \\ back\nslash\t\u2028\u2029", Raw: []byte{0xff, 0, 0xfe, 0, 1}},
		{DeviceId: "\x01\x1f\x7f</script>&<>", Raw: bytes.Repeat([]byte{0, 0xaa}, 100)},
		{Unit: acmepb.Unit_UNIT_VOLT, Units: []acmepb.Unit{0, 1, 2}},
		{Unit: acmepb.Unit(42), Units: []acmepb.Unit{-1, 99, acmepb.Unit_UNIT_CELSIUS, 2147483647, -2147483648}},
		{Where: loc(1), Path: []*acmepb.Location{loc(2), {}, loc(3)}},
		{Tree: tree(0)},
		{Tree: tree(4)},
		{Tree: &acmepb.Tree{Children: []*acmepb.Tree{{}, {Children: []*acmepb.Tree{{Name: "x"}}}}}},
		{Samples: []int32{0, -1, math.MaxInt32, math.MinInt32}, Unpacked: []uint32{0, 1, math.MaxUint32}},
		{Tags: []string{"", "a", "\x00", "ü"}},
		{Gauges: map[string]float64{"": 0, "temp": 21.5, "neg": -1e300, "ü\x00": 1}},
		{ById: map[int64]*acmepb.Location{math.MinInt64: loc(4), 0: {}, math.MaxInt64: loc(5), -1: loc(6)}},
		{Payload: &acmepb.Reading_Note{Note: ""}},
		{Payload: &acmepb.Reading_Note{Note: "a note"}},
		{Payload: &acmepb.Reading_Code{Code: 0}},
		{Payload: &acmepb.Reading_Code{Code: math.MinInt64}},
		{Payload: &acmepb.Reading_Fix{Fix: &acmepb.Location{}}},
		{Payload: &acmepb.Reading_Fix{Fix: loc(7)}},
		{TakenAt: &timestamppb.Timestamp{}},
		{TakenAt: &timestamppb.Timestamp{Seconds: 1700000000, Nanos: 123456789}},
		{TakenAt: &timestamppb.Timestamp{Seconds: 253402300799, Nanos: 999999999}},
		{TakenAt: &timestamppb.Timestamp{Seconds: -62135596800}},
		{Exposure: &durationpb.Duration{Seconds: -5, Nanos: -500000000}},
		{Exposure: &durationpb.Duration{Seconds: 315576000000, Nanos: 999999999}},
		{Exposure: &durationpb.Duration{}},
		{Extra: st},
		{Extra: &structpb.Struct{}},
		{MaybeCount: wrapperspb.Int64(0), MaybeLabel: wrapperspb.String("")},
		{MaybeCount: wrapperspb.Int64(math.MinInt64), MaybeLabel: wrapperspb.String("lbl\x00")},
		{Detail: mustAny(t, loc(8))},
		{Detail: mustAny(t, &acmepb.Location{})},
		{Detail: mustAny(t, durationpb.New(1500*time.Millisecond))},
		{Detail: mustAny(t, &acmepb.Tree{Name: "t", Children: []*acmepb.Tree{{Name: "u"}}})},
		{Detail: mustAny(t, mustAny(t, loc(9)))},
		{ExplicitZero: proto.Int32(0)},
		{ExplicitZero: proto.Int32(-7)},
		{JsonRenamed: "renamed"},
	}
	for i := 0; len(rs) < 64; i++ { // and some full ones
		rs = append(rs, &acmepb.Reading{
			FDouble: float64(i) * 1.25, FFloat: float32(i) / 7, FInt32: int32(-i), FInt64: int64(i) << 40,
			FUint32: uint32(i), FUint64: uint64(i) << 50, FSint32: int32(i * -3), FSint64: int64(i) * -1e15,
			FFixed32: uint32(i * 7), FFixed64: uint64(i) * 1e17, FSfixed32: int32(-i), FSfixed64: int64(-i) << 33,
			FBool: i%2 == 0, DeviceId: fmt.Sprintf("dev-%d-\x00-ß", i), Raw: []byte{byte(i), 0, byte(i)},
			Unit: acmepb.Unit(i % 5), Where: loc(i), Tree: tree(i % 3),
			Samples: []int32{int32(i), -int32(i)}, Unpacked: []uint32{uint32(i)}, Tags: []string{fmt.Sprint(i)},
			Path: []*acmepb.Location{loc(i)}, Units: []acmepb.Unit{acmepb.Unit(i % 4)},
			Gauges: map[string]float64{fmt.Sprint("g", i): float64(i)}, ById: map[int64]*acmepb.Location{int64(-i): loc(i)},
			Payload:    &acmepb.Reading_Code{Code: int64(i)},
			TakenAt:    timestamppb.New(time.Unix(int64(i)*1000, int64(i))),
			Exposure:   durationpb.New(time.Duration(i) * time.Millisecond),
			MaybeCount: wrapperspb.Int64(int64(i)), Detail: mustAny(t, loc(i)),
			ExplicitZero: proto.Int32(int32(i)), JsonRenamed: fmt.Sprint("r", i),
		})
	}
	return rs
}

// jsonLines is one protojson line per message.
func jsonLines(t *testing.T, ms []*acmepb.Reading) []byte {
	var b bytes.Buffer
	for _, m := range ms {
		j, err := protojson.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// asDynamic is m re-read with the ring's schema.
func asDynamic(t *testing.T, md protoreflect.MessageDescriptor, types *dynamicpb.Types, m proto.Message) proto.Message {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	d := dynamicpb.NewMessage(md)
	if err := (proto.UnmarshalOptions{Resolver: types}).Unmarshal(b, d); err != nil {
		t.Fatal(err)
	}
	return d
}

var reSummary = regexp.MustCompile(`^consume \((gating|lossy|tap)\): received (\d+), lost (\d+), missed (\d+), gaps (\d+), duplicates (\d+), crc errors (\d+), content errors (\d+), abandoned (\d+), rate \d+ msg/s, ` +
	`latency p50 (?:-|[\d.]+ [nmu]?s) p99 (?:-|[\d.]+ [nmu]?s) max (?:-|[\d.]+ [nmu]?s) \(commit to receive, including time queued in the ring(?:; \d+ replayed messages not timed)?\)$`)

// summary parses the consumer's summary line: received, crc, content.
func summary(t *testing.T, stderr []byte) (received, crc, content string) {
	t.Helper()
	for _, l := range strings.Split(string(stderr), "\n") {
		if m := reSummary.FindStringSubmatch(l); m != nil {
			return m[2], m[7], m[8]
		}
	}
	t.Fatalf("no summary line in %q", stderr)
	return
}

// JSON lines in, JSON lines out, the same messages: produce --from-json
// and consume (with and without --json) on a ring of a user's type.
func TestJSONRoundTrip(t *testing.T) {
	ms := readings(t)
	in := jsonLines(t, ms)
	// A blank line and CRLF endings are fine too.
	in = append([]byte("\n  \r\n"), in...)
	name, r := newRing(t, &acmepb.Reading{}, 128, 4096)
	md, types := ringTypes(t, r)
	file := filepath.Join(t.TempDir(), "in.json")
	if err := os.WriteFile(file, in, 0o644); err != nil {
		t.Fatal(err)
	}
	prod := pbringGo(t, nil, "produce", name, "--from-json", file, "--no-wait")
	if prod.code != 0 || !regexp.MustCompile(fmt.Sprintf(`^produce: %d messages from %s in [\d.]+ s, \d+ msg/s\n$`,
		len(ms), regexp.QuoteMeta(file))).Match(prod.stderr) {
		t.Fatalf("produce: %d %s", prod.code, prod.stderr)
	}
	prod = pbringGo(t, in, "produce", name, "--from-json", "-", "--no-wait")
	if prod.code != 0 || !bytes.Contains(prod.stderr, []byte(fmt.Sprintf("produce: %d messages from - in", len(ms)))) {
		t.Fatalf("produce from stdin: %d %s", prod.code, prod.stderr)
	}
	for _, flag := range []string{"--json", ""} {
		args := []string{"consume", name, "--count", fmt.Sprint(2 * len(ms)), "--timeout", "5"}
		if flag != "" {
			args = append(args, flag)
		}
		res := pbringGo(t, nil, args...)
		if res.code != 0 {
			t.Fatalf("consume %s: %d %s", flag, res.code, res.stderr)
		}
		if rc, crc, ce := summary(t, res.stderr); rc != fmt.Sprint(2*len(ms)) || crc != "0" || ce != "0" {
			t.Fatalf("summary %s", res.stderr)
		}
		lines := strings.Split(strings.TrimSuffix(string(res.stdout), "\n"), "\n")
		if len(lines) != 2*len(ms) {
			t.Fatalf("%d lines", len(lines))
		}
		for i, l := range lines {
			want := asDynamic(t, md, types, ms[i%len(ms)])
			got := dynamicpb.NewMessage(md)
			if err := (protojson.UnmarshalOptions{Resolver: types}).Unmarshal([]byte(l), got); err != nil {
				t.Fatalf("line %d %s: %v", i+1, l, err)
			}
			if !proto.Equal(got, want) {
				t.Fatalf("line %d: %s\nwant %v", i+1, l, want)
			}
			if strings.ContainsAny(l, "\n") || strings.Contains(l, ": ") || strings.Contains(l, ", ") {
				t.Fatalf("line %d is not compact: %s", i+1, l)
			}
		}
	}
}

// A bad line stops produce with its line number; the lines before it were
// committed, it and the lines after were not.
func TestJSONBadLine(t *testing.T) {
	ms := readings(t)[:8]
	good := jsonLines(t, ms[:3])
	cases := []struct{ name, line, reason string }{
		{"unknown field", `{"fInt32": 1, "noSuchField": 2}`, `unknown field "noSuchField" (column 15)`},
		{"wrong type", `{"fInt32": "abc"}`, `invalid value for int32 field fInt32`},
		{"wrong type object", `{"where": 5}`, `unexpected token 5`},
		{"syntax", `{"fInt32": 1,`, `unexpected EOF`},
		{"syntax garbage", `{"fInt32" 1}`, `syntax error: unexpected character 1, missing ":" after field name (column 11)`},
		{"not an object", `[1]`, `unexpected token [`},
		{"enum name", `{"unit": "UNIT_KELVIN"}`, `invalid value for enum field unit`},
		{"out of range", `{"fInt32": 2147483648}`, `invalid value for int32 field fInt32`},
		{"unknown Any type", `{"detail": {"@type": "type.googleapis.com/no.Such", "x": 1}}`, `no.Such`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name, r := newRing(t, &acmepb.Reading{}, 64, 2048)
			md, types := ringTypes(t, r)
			in := append(append(append([]byte{}, good...), "\n"+c.line+"\n"...), jsonLines(t, ms[3:])...)
			res := pbringGo(t, in, "produce", name, "--from-json", "-", "--no-wait")
			if res.code != 1 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			lines := strings.Split(strings.TrimSpace(string(res.stderr)), "\n")
			last := lines[len(lines)-1]
			if prefix := "pbring: " + name + ": line 5: "; !strings.HasPrefix(last, prefix) || !strings.Contains(last, c.reason) {
				t.Fatalf("error %q, want %q...%q", last, prefix, c.reason)
			}
			t.Log(last)
			if !strings.HasPrefix(lines[0], "produce: 3 messages from - in ") {
				t.Fatalf("summary %q", lines[0])
			}
			rd, err := r.NewReader(nil)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			for i := 0; i < 3; i++ {
				v, err := rd.Peek(0)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				got := dynamicpb.NewMessage(md)
				if err := v.Unmarshal(got); err != nil {
					t.Fatal(err)
				}
				if v.Flags&pbring.FlagCRC == 0 || v.TimestampNs == 0 {
					t.Fatalf("message %d without CRC or timestamp", i)
				}
				if !proto.Equal(got, asDynamic(t, md, types, ms[i])) {
					t.Fatalf("message %d: %v", i, got)
				}
				rd.Release(&v)
			}
			if _, err := rd.Peek(0); err == nil {
				t.Fatal("more than the 3 good lines were committed")
			}
		})
	}
}

// Untyped rings: refused without --raw; --raw frames carry the payloads.
func TestUntypedAndRaw(t *testing.T) {
	name, r := newRing(t, nil, 16, 256)
	res := pbringGo(t, nil, "consume", name, "--count", "1", "--timeout", "0")
	if want := fmt.Sprintf("pbring: %s: ring is untyped: use --raw\n", name); res.code != 1 || string(res.stderr) != want {
		t.Fatalf("consume untyped: %d %q", res.code, res.stderr)
	}
	res = pbringGo(t, []byte("{}\n"), "produce", name, "--from-json", "-", "--no-wait")
	if want := fmt.Sprintf("pbring: %s: ring is untyped: it has no schema to parse JSON with\n", name); res.code != 1 || string(res.stderr) != want {
		t.Fatalf("produce untyped: %d %q", res.code, res.stderr)
	}
	res = pbringGo(t, nil, "schema", name)
	if want := fmt.Sprintf("pbring: %s: ring is untyped (no schema)\n", name); res.code != 1 || string(res.stderr) != want {
		t.Fatalf("schema untyped: %d %q", res.code, res.stderr)
	}
	p, err := r.NewProducer(nil)
	if err != nil {
		t.Fatal(err)
	}
	payloads := [][]byte{{}, {0}, []byte("hello"), bytes.Repeat([]byte{0, 1, 2}, 60)}
	for _, b := range payloads {
		if err := p.Send(b, 0); err != nil {
			t.Fatal(err)
		}
	}
	res = pbringGo(t, nil, "consume", name, "--raw", "--count", fmt.Sprint(len(payloads)), "--timeout", "2")
	if res.code != 0 {
		t.Fatalf("consume --raw: %d %s", res.code, res.stderr)
	}
	if rc, crc, ce := summary(t, res.stderr); rc != "4" || crc != "0" || ce != "0" {
		t.Fatalf("summary %s", res.stderr)
	}
	out := res.stdout
	for i, want := range payloads {
		if len(out) < 4 {
			t.Fatalf("frame %d missing", i)
		}
		n := binary.LittleEndian.Uint32(out)
		if int(n) != len(want) || !bytes.Equal(out[4:4+n], want) {
			t.Fatalf("frame %d: %d bytes", i, n)
		}
		out = out[4+n:]
	}
	if len(out) != 0 {
		t.Fatalf("%d bytes after the frames", len(out))
	}
	if res := pbringGo(t, nil, "consume", name, "--raw", "--json"); res.code != 2 {
		t.Fatalf("--raw --json: %d", res.code)
	}
}

// CRC mismatches and undecodable payloads are counted apart, and either
// makes the command exit 1.
func TestCRCAndContentErrors(t *testing.T) {
	name, r := newRing(t, &acmepb.Reading{}, 16, 256)
	p, err := r.NewProducer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SendProto(&acmepb.Reading{FInt32: 1}, 0); err != nil {
		t.Fatal(err)
	}
	if err := p.Send([]byte{0xff, 0xff, 0xff}, 0); err != nil { // not protobuf
		t.Fatal(err)
	}
	s, err := p.Reserve(0)
	if err != nil {
		t.Fatal(err)
	}
	n := copy(s.Data, []byte{0x18, 0x05}) // f_int32: 5, with a wrong CRC
	s.Flags |= pbring.FlagCRC
	s.CRC32C = pbring.CRC32C(s.Data[:n]) ^ 1
	if err := p.Commit(s, n); err != nil {
		t.Fatal(err)
	}
	if err := p.SendProto(&acmepb.Reading{FInt32: 2}, 0); err != nil {
		t.Fatal(err)
	}
	res := pbringGo(t, nil, "consume", name, "--count", "2", "--timeout", "1")
	if res.code != 1 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if rc, crc, ce := summary(t, res.stderr); rc != "2" || crc != "1" || ce != "1" {
		t.Fatalf("summary %s", res.stderr)
	}
	if string(res.stdout) != "{\"fInt32\":1}\n{\"fInt32\":2}\n" {
		t.Fatalf("stdout %q", res.stdout)
	}
	// --raw does not decode: only the CRC error remains.
	res = pbringGo(t, nil, "consume", name, "--raw", "--count", "3", "--timeout", "1")
	if rc, crc, ce := summary(t, res.stderr); res.code != 1 || rc != "3" || crc != "1" || ce != "0" {
		t.Fatalf("raw: %d %s", res.code, res.stderr)
	}
}

// schema --descriptor-set writes the stored bytes; schema prints .proto
// text that protoc compiles back to the same descriptors.
func TestSchemaCommand(t *testing.T) {
	name, r := newRing(t, &acmepb.Reading{}, 16, 256)
	stored, _ := r.Schema()
	res := pbringGo(t, nil, "schema", name, "--descriptor-set", "-")
	if res.code != 0 || !bytes.Equal(res.stdout, stored) {
		t.Fatalf("--descriptor-set -: %d %s", res.code, res.stderr)
	}
	file := filepath.Join(t.TempDir(), "out.fds")
	if res := pbringGo(t, nil, "schema", name, "--descriptor-set", file); res.code != 0 {
		t.Fatalf("--descriptor-set FILE: %d %s", res.code, res.stderr)
	}
	if b, _ := os.ReadFile(file); !bytes.Equal(b, stored) {
		t.Fatal("--descriptor-set FILE: not the stored bytes")
	}
	res = pbringGo(t, nil, "schema", name)
	if res.code != 0 {
		t.Fatalf("schema: %d %s", res.code, res.stderr)
	}
	checkProtoText(t, res.stdout, stored, "acme.telemetry.v1.Reading")
}

// checkProtoText splits the printed text at its "// file:" lines, has
// protoc compile it, and compares the descriptors with the stored ones
// (file options, which the text leaves out, aside).
func checkProtoText(t *testing.T, text, stored []byte, msgType string) {
	t.Helper()
	if first := strings.SplitN(string(text), "\n", 2)[0]; first != "// message: "+msgType {
		t.Fatalf("first line %q", first)
	}
	var want descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(stored, &want); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	parts := regexp.MustCompile(`(?m)^// file: (.*)\n`).FindAllSubmatchIndex(text, -1)
	if len(parts) != len(want.File) {
		t.Fatalf("%d files printed, %d stored:\n%s", len(parts), len(want.File), text)
	}
	for i, p := range parts {
		fname := string(text[p[2]:p[3]])
		if fname != want.File[i].GetName() {
			t.Fatalf("file %d is %s, want %s", i, fname, want.File[i].GetName())
		}
		end := len(text)
		if i+1 < len(parts) {
			end = parts[i+1][0]
		}
		path := filepath.Join(dir, fname)
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, text[p[1]:end], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Skip("protoc not on PATH: the printed text is not compiled back")
	}
	out := filepath.Join(dir, "back.fds")
	last := want.File[len(want.File)-1].GetName()
	// Only dir on the include path: the printed well-known types are used,
	// not protoc's own.
	cmd := exec.Command(protoc, "-I", dir, "--include_imports", "--descriptor_set_out="+out, filepath.Join(dir, last))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v: %s\n%s", err, b, text)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.File) != len(want.File) {
		t.Fatalf("protoc made %d files, want %d", len(got.File), len(want.File))
	}
	for i := range want.File {
		w := proto.Clone(want.File[i]).(*descriptorpb.FileDescriptorProto)
		g := got.File[i]
		w.Options, g.Options = nil, nil
		if !proto.Equal(g, w) {
			t.Errorf("%s compiled back differs:\n got %v\nwant %v", w.GetName(), g, w)
		}
	}
}

// A typed ring that names its type without storing the schema cannot be
// decoded or fed JSON.
func TestTypedWithoutSchema(t *testing.T) {
	name := fmt.Sprintf("gocli-%d-%d", os.Getpid(), ringNo.Add(1))
	pbring.Unlink(name)
	r, err := pbring.Create(name, &pbring.CreateOptions{SlotCount: 8, SlotSize: 256, MsgType: "acme.telemetry.v1.Reading"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); pbring.Unlink(name) })
	pre := "pbring: " + name + ": ring holds acme.telemetry.v1.Reading without its schema"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"consume", name, "--count", "1"}, pre + ": use --raw\n"},
		{[]string{"produce", name, "--from-json", "-", "--no-wait"}, pre + "\n"},
		{[]string{"schema", name}, pre + "\n"},
		{[]string{"schema", name, "--descriptor-set", "-"}, pre + "\n"},
	} {
		if res := pbringGo(t, []byte("{}\n"), c.args...); res.code != 1 || string(res.stderr) != c.want {
			t.Errorf("%v: %d %q", c.args, res.code, res.stderr)
		}
	}
}
