// SPDX-License-Identifier: MIT

package interop

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/anypb"

	pbring "github.com/pbring/pbring/go"
	"github.com/pbring/pbring/go/demo"
	"github.com/pbring/pbring/go/internal/acmepb"
	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

// ran is a finished command.
type ran struct {
	code           int
	stdout, stderr []byte
}

func runCmd(t *testing.T, stdin []byte, bin string, args ...string) ran {
	t.Helper()
	cmd := exec.Command(bin, args...)
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
	return ran{code, out.Bytes(), errb.Bytes()}
}

// counts parses a summary line out of stderr.
func counts(t *testing.T, stderr []byte) []string {
	t.Helper()
	for _, l := range strings.Split(string(stderr), "\n") {
		if m := reSummary.FindStringSubmatch(l); m != nil {
			return summaryCounts(m)
		}
	}
	t.Fatalf("no summary in %q", stderr)
	return nil
}

// demoLines are n canonical DeviceEvent JSON lines of one producer, as the
// demo consumers check them.
func demoLines(n int) []byte {
	var b []byte
	ev := demo.NewEvent(os.Getpid(), 0, 24)
	for i := 0; i < n; i++ {
		demo.Stamp(ev, uint64(i))
		b = demo.AppendJSON(b, ev)
		b = append(b, '\n')
	}
	return b
}

// JSON lines into a demo ring the C command made, by pbring-go produce
// --from-json; the C and Go consumers print the very same lines.
func TestDemoFromJSON(t *testing.T) {
	needC(t)
	const n = 2000
	ring := newRing(t, 4096)
	in := demoLines(n)
	res := runCmd(t, in, goBin, "produce", ring, "--from-json", "-", "--no-wait")
	if res.code != 0 {
		t.Fatalf("produce --from-json: %d %s", res.code, res.stderr)
	}
	for _, bin := range []string{cBin, goBin} {
		res := runCmd(t, nil, bin, "consume", ring, "--json", "--count", strconv.Itoa(n), "--timeout", "5")
		if res.code != 0 {
			t.Fatalf("%s consume: %d %s", filepath.Base(bin), res.code, res.stderr)
		}
		if got := counts(t, res.stderr); got[0] != strconv.Itoa(n) || strings.Join(got[1:], " ") != "0 0 0 0 0 0" {
			t.Fatalf("%s summary %s", filepath.Base(bin), res.stderr)
		}
		if !bytes.Equal(res.stdout, in) {
			t.Fatalf("%s consume --json printed other lines than were produced", filepath.Base(bin))
		}
	}
}

// An untyped ring the C command made: the C producer's raw sends come out
// of pbring-go consume --raw as frames; without --raw it is refused.
func TestRawFramesFromC(t *testing.T) {
	needC(t)
	const n = 500
	ring := fmt.Sprintf("interop-%d-%d", os.Getpid(), counter.Add(1))
	pbring.Unlink(ring)
	if out, err := exec.Command(cBin, "create", ring, "--slots", "1024", "--schema", "none").CombinedOutput(); err != nil {
		t.Fatalf("pbring create --schema none: %v: %s", err, out)
	}
	t.Cleanup(func() { pbring.Unlink(ring) })
	res := runCmd(t, nil, goBin, "consume", ring, "--count", "1", "--timeout", "0")
	if want := "pbring: " + ring + ": ring is untyped: use --raw\n"; res.code != 1 || string(res.stderr) != want {
		t.Fatalf("consume of an untyped ring: %d %q", res.code, res.stderr)
	}
	produce(t, cBin, ring, "--raw", "--no-wait", "--count", strconv.Itoa(n), "--size", "40")
	res = runCmd(t, nil, goBin, "consume", ring, "--raw", "--count", strconv.Itoa(n), "--timeout", "5")
	if res.code != 0 {
		t.Fatalf("consume --raw: %d %s", res.code, res.stderr)
	}
	out := res.stdout
	for i := 0; i < n; i++ {
		if len(out) < 4 {
			t.Fatalf("frame %d missing", i)
		}
		size := binary.LittleEndian.Uint32(out)
		var ev demov1.DeviceEvent
		if err := proto.Unmarshal(out[4:4+size], &ev); err != nil || ev.Seq != uint64(i) || !demo.Check(&ev) || len(ev.Blob) != 40 {
			t.Fatalf("frame %d: %v %v", i, err, &ev)
		}
		out = out[4+size:]
	}
	if len(out) != 0 {
		t.Fatalf("%d bytes after the frames", len(out))
	}
}

// A ring of a user's type: made by the C command from the .proto when it
// can (`create --schema FILE --type NAME`), else by Go; either way it
// stores SchemaOf's bytes. JSON lines go in through pbring-go, and come
// out of pbring-go (and of the C command, when it decodes such rings) as
// the same messages.
func TestUserSchema(t *testing.T) {
	want, err := pbring.SchemaOf(&acmepb.Reading{})
	if err != nil {
		t.Fatal(err)
	}
	ring := fmt.Sprintf("interop-%d-%d", os.Getpid(), counter.Add(1))
	pbring.Unlink(ring)
	t.Cleanup(func() { pbring.Unlink(ring) })
	madeByC := false
	if cBin != "" {
		wd, _ := os.Getwd()
		protoDir := filepath.Join(wd, "..", "..", "proto")
		out, err := exec.Command(cBin, "create", ring, "--slots", "256", "--slot-size", "4096",
			"--schema", filepath.Join(protoDir, "acme/telemetry/v1/reading.proto"), "-I", protoDir,
			"--type", "acme.telemetry.v1.Reading").CombinedOutput()
		if err == nil {
			madeByC = true
		} else {
			t.Logf("the C command cannot make this ring (%v: %s); Go makes it", err, bytes.TrimSpace(out))
			pbring.Unlink(ring)
		}
	}
	if !madeByC {
		r, err := pbring.Create(ring, &pbring.CreateOptions{SlotCount: 256, SlotSize: 4096,
			MsgType: "acme.telemetry.v1.Reading", Schema: want})
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	r, err := pbring.Attach(ring, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	stored, _ := r.Schema()
	if !bytes.Equal(stored, want) || r.Info().SchemaHash != pbring.SchemaHash(want) {
		t.Fatalf("the ring (made by C: %v) stores other schema bytes than SchemaOf", madeByC)
	}
	// pbring-go schema prints the stored bytes back.
	if res := runCmd(t, nil, goBin, "schema", ring, "--descriptor-set", "-"); res.code != 0 || !bytes.Equal(res.stdout, want) {
		t.Fatalf("schema --descriptor-set -: %d %s", res.code, res.stderr)
	}

	md, types := linkSchema(t, want)
	ms := userMessages(t, md, types)
	var in []byte
	for _, m := range ms {
		j, err := protojson.MarshalOptions{Resolver: types}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		in = append(append(in, j...), '\n')
	}
	if res := runCmd(t, in, goBin, "produce", ring, "--from-json", "-", "--no-wait"); res.code != 0 {
		t.Fatalf("produce --from-json: %d %s", res.code, res.stderr)
	}
	consumers := []string{goBin}
	if cBin != "" {
		consumers = append(consumers, cBin)
	}
	for _, bin := range consumers {
		res := runCmd(t, nil, bin, "consume", ring, "--json", "--count", strconv.Itoa(len(ms)), "--timeout", "5")
		if bin == cBin && res.code != 0 {
			t.Logf("the C command does not decode this ring yet: %d %s", res.code, bytes.TrimSpace(res.stderr))
			continue
		}
		if res.code != 0 {
			t.Fatalf("%s consume: %d %s", filepath.Base(bin), res.code, res.stderr)
		}
		lines := strings.Split(strings.TrimSuffix(string(res.stdout), "\n"), "\n")
		if len(lines) != len(ms) {
			t.Fatalf("%s: %d lines, want %d", filepath.Base(bin), len(lines), len(ms))
		}
		for i, l := range lines {
			got := dynamicpb.NewMessage(md)
			if err := (protojson.UnmarshalOptions{Resolver: types}).Unmarshal([]byte(l), got); err != nil {
				t.Fatalf("%s line %d: %v: %s", filepath.Base(bin), i+1, err, l)
			}
			if !proto.Equal(got, ms[i]) {
				t.Fatalf("%s line %d: %s\nwant %v", filepath.Base(bin), i+1, l, ms[i])
			}
		}
	}
}

func linkSchema(t *testing.T, fds []byte) (protoreflect.MessageDescriptor, *dynamicpb.Types) {
	t.Helper()
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(fds, &set); err != nil {
		t.Fatal(err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		t.Fatal(err)
	}
	d, err := files.FindDescriptorByName("acme.telemetry.v1.Reading")
	if err != nil {
		t.Fatal(err)
	}
	return d.(protoreflect.MessageDescriptor), dynamicpb.NewTypes(files)
}

// userMessages are varied Readings, as messages of the ring's schema.
func userMessages(t *testing.T, md protoreflect.MessageDescriptor, types *dynamicpb.Types) []proto.Message {
	var out []proto.Message
	for i := 0; i < 60; i++ {
		loc := &acmepb.Location{Lat: float64(i) / 7, Lon: -1e300, SiteName: fmt.Sprintf("ü-%d\x00", i)}
		a, err := anypb.New(loc)
		if err != nil {
			t.Fatal(err)
		}
		m := &acmepb.Reading{
			FInt64: int64(-1) << (i % 64), FUint64: ^uint64(0) >> (i % 64), FSint64: -int64(i) << 40,
			FFloat: float32(i) / 3, DeviceId: fmt.Sprintf("dev\x00%d-日本", i), Raw: []byte{0, byte(i), 0},
			Unit: acmepb.Unit(i % 6), Units: []acmepb.Unit{acmepb.Unit(i), -1},
			Gauges: map[string]float64{fmt.Sprint("k", i): float64(i), "": -0.5},
			ById:   map[int64]*acmepb.Location{int64(i) - 30: loc},
			Tree:   &acmepb.Tree{Name: "r", Children: []*acmepb.Tree{{Name: fmt.Sprint(i), Children: []*acmepb.Tree{{}}}}},
			Detail: a, ExplicitZero: proto.Int32(0), JsonRenamed: "j",
		}
		switch i % 3 {
		case 0:
			m.Payload = &acmepb.Reading_Note{Note: "n\x00"}
		case 1:
			m.Payload = &acmepb.Reading_Code{Code: -1 << 63}
		default:
			m.Payload = &acmepb.Reading_Fix{Fix: loc}
		}
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		d := dynamicpb.NewMessage(md)
		if err := (proto.UnmarshalOptions{Resolver: types}).Unmarshal(b, d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}
