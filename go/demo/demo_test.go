// SPDX-License-Identifier: MIT

package demo

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	pbring "github.com/pbring/pbring/go"
	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

func events() []*demov1.DeviceEvent {
	evs := []*demov1.DeviceEvent{
		{},
		{Id: "1234-0"},
		{Id: "1234-0", Seq: 1, Status: 1, SentNs: 123456789012345},
		{Id: "99-3", Seq: 1<<64 - 1, Status: -7, SentNs: 1, Blob: Blob(1)},
		{Id: "a\"b\\c<>&é", Blob: Blob(2)},
		{Id: "x", Seq: 5, Status: 2, Blob: Blob(3)},
		{Status: 2147483647, Blob: Blob(1000)},
	}
	for n := 0; n < 8; n++ {
		evs = append(evs, &demov1.DeviceEvent{Id: ID(4242, n), Seq: uint64(n), Status: int32(n % 3), Blob: Blob(n)})
	}
	return evs
}

// protoJSON is protojson's output made compact with json.Compact (which
// removes protojson's randomized whitespace).
func protoJSON(t *testing.T, ev *demov1.DeviceEvent) []byte {
	b, err := protojson.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// Byte equality with protojson for everything the demo sends.
func TestJSONMatchesProtojson(t *testing.T) {
	for _, ev := range events() {
		got, want := AppendJSON(nil, ev), protoJSON(t, ev)
		if !bytes.Equal(got, want) {
			t.Errorf("ours  %s\nproto %s", got, want)
		}
	}
}

// Control characters: short escapes where JSON has them, \u00XX for the
// rest, as the C side writes them; the JSON values equal protojson's.
func TestJSONControlCharacters(t *testing.T) {
	ev := &demov1.DeviceEvent{Id: "a\nb\tc\x01", Seq: 3}
	got := AppendJSON(nil, ev)
	if want := `{"id":"a\nb\tc\u0001","seq":"3"}`; string(got) != want {
		t.Fatalf("got %s want %s", got, want)
	}
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(protoJSON(t, ev), &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("%v != %v", a, b)
	}
}

func TestBase64(t *testing.T) {
	for n := 0; n < 70; n++ {
		b := Blob(n)
		if got, want := string(appendBase64(nil, b)), base64.StdEncoding.EncodeToString(b); got != want {
			t.Fatalf("%d: %s != %s", n, got, want)
		}
	}
}

func TestAppendJSONNoAlloc(t *testing.T) {
	ev := &demov1.DeviceEvent{Id: "1-2", Seq: 9, SentNs: 10, Status: 1, Blob: Blob(64)}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = AppendJSON(buf[:0], ev) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func TestBlobPattern(t *testing.T) {
	b := Blob(300)
	if b[0] != 7 || b[1] != 138 || b[2] != 269-256 || !BlobOK(b) {
		t.Fatalf("pattern %v", b[:3])
	}
	b[299]++
	if BlobOK(b) {
		t.Fatal("corrupt blob accepted")
	}
}

// The embedded schema is the demo FileDescriptorSet: it parses, names
// DeviceEvent, and matches the generated descriptor.
func TestSchema(t *testing.T) {
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(Schema(), &set); err != nil {
		t.Fatal(err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		t.Fatal(err)
	}
	d, err := files.FindDescriptorByName(MsgType)
	if err != nil {
		t.Fatal(err)
	}
	gen := (&demov1.DeviceEvent{}).ProtoReflect().Descriptor()
	want := protodesc.ToDescriptorProto(gen)
	if got := protodesc.ToDescriptorProto(d.(protoreflect.MessageDescriptor)); !proto.Equal(got, want) {
		t.Fatalf("schema %v, generated %v", got, want)
	}
	if SchemaHash() == 0 || SchemaHash() != pbring.SchemaHash(fds) {
		t.Fatal("hash")
	}
	// When the C build's descriptor set is at hand, it is the same bytes.
	if p := os.Getenv("PBRING_C_FDS"); p != "" {
		c, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c, fds) {
			t.Fatalf("%s differs from device.fds: regenerate with generate.sh", p)
		}
	}
}
