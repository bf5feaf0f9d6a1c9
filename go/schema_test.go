// SPDX-License-Identifier: MIT

package pbring_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	pbring "github.com/pbring/pbring/go"
	"github.com/pbring/pbring/go/demo"
	"github.com/pbring/pbring/go/internal/acmepb"
	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

// The demo message's canonical schema is the committed device.fds, which
// is the C build's descriptor set (checked when PBRING_C_FDS names it).
func TestSchemaOfDemo(t *testing.T) {
	got, err := pbring.SchemaOf(&demov1.DeviceEvent{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, demo.Schema()) {
		t.Fatalf("SchemaOf(DeviceEvent) differs from demo.Schema():\n%x\n%x", got, demo.Schema())
	}
	if p := os.Getenv("PBRING_C_FDS"); p != "" {
		c, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, c) {
			t.Fatalf("SchemaOf(DeviceEvent) differs from the C build's %s", p)
		}
	}
	if _, err := pbring.SchemaOf(nil); err == nil {
		t.Fatal("SchemaOf(nil) accepted")
	}
}

// repoRoot is the repository root (go/ is the module root).
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// A user's schema with an import and the well-known types: SchemaOf gives
// protoc's --include_imports bytes. The well-known types' descriptors come
// from Go's runtime on one side and protoc's include files on the other;
// should they ever differ, the user's files must still match byte for byte
// and the difference is reported (logged), not hidden.
func TestSchemaOfMatchesProtoc(t *testing.T) {
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Skip("protoc not on PATH")
	}
	root := repoRoot(t)
	out := filepath.Join(t.TempDir(), "acme.fds")
	args := []string{"-I", filepath.Join(root, "proto")}
	if _, err := os.Stat("/usr/include/google/protobuf/any.proto"); err == nil {
		args = append(args, "-I", "/usr/include")
	}
	args = append(args, "--include_imports", "--descriptor_set_out="+out,
		filepath.Join(root, "proto/acme/telemetry/v1/reading.proto"))
	if b, err := exec.Command(protoc, args...).CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v: %s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pbring.SchemaOf(&acmepb.Reading{})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, want) {
		return
	}
	var gs, ws descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(got, &gs); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(want, &ws); err != nil {
		t.Fatal(err)
	}
	names := func(s *descriptorpb.FileDescriptorSet) (n []string) {
		for _, f := range s.File {
			n = append(n, f.GetName())
		}
		return n
	}
	if g, w := strings.Join(names(&gs), " "), strings.Join(names(&ws), " "); g != w {
		t.Fatalf("files %s, protoc %s", g, w)
	}
	det := proto.MarshalOptions{Deterministic: true}
	for i, gf := range gs.File {
		wf := ws.File[i]
		gb, _ := det.Marshal(gf)
		wb, _ := det.Marshal(wf)
		if bytes.Equal(gb, wb) {
			continue
		}
		diff := "Go runtime:\n" + prototext.Format(gf) + "\nprotoc:\n" + prototext.Format(wf)
		if strings.HasPrefix(gf.GetName(), "google/protobuf/") {
			t.Logf("well-known type %s differs between Go's runtime and protoc's include files:\n%s",
				gf.GetName(), diff)
			continue
		}
		t.Errorf("%s differs from protoc's:\n%s", gf.GetName(), diff)
	}
	if !t.Failed() {
		t.Logf("SchemaOf differs from protoc only in well-known types (see above)")
	}
}
