// SPDX-License-Identifier: MIT

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// compile runs protoc on file (found under the include dirs) and returns
// its --include_imports descriptor set.
func compile(t *testing.T, file string, includes ...string) *descriptorpb.FileDescriptorSet {
	t.Helper()
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Skip("protoc not on PATH")
	}
	out := filepath.Join(t.TempDir(), "out.fds")
	var args []string
	for _, d := range includes {
		args = append(args, "-I", d)
	}
	args = append(args, "--include_imports", "--descriptor_set_out="+out, file)
	if b, err := exec.Command(protoc, args...).CombinedOutput(); err != nil {
		t.Fatalf("protoc %s: %v: %s", file, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	return &set
}

// Every file is printed, compiled again from the print alone (its own
// imports printed too), and gives the same descriptors but for the file
// options, which the print leaves out.
func TestProtoTextRoundTrip(t *testing.T) {
	wd, _ := os.Getwd()
	root := filepath.Join(wd, "..", "..", "..")
	cases := []struct{ file, dir string }{
		{"printer2.proto", "testdata"},
		{"pbring/demo/v1/device.proto", filepath.Join(root, "proto")},
		{"pbring/test/v1/alltypes.proto", filepath.Join(root, "proto")},
		{"acme/telemetry/v1/reading.proto", filepath.Join(root, "proto")},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			want := compile(t, filepath.Join(c.dir, c.file), c.dir)
			dir := t.TempDir()
			for _, f := range want.File {
				path := filepath.Join(dir, f.GetName())
				os.MkdirAll(filepath.Dir(path), 0o755)
				if err := os.WriteFile(path, []byte(protoText(f)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got := compile(t, filepath.Join(dir, c.file), dir)
			if len(got.File) != len(want.File) {
				t.Fatalf("%d files, want %d", len(got.File), len(want.File))
			}
			for i, w := range want.File {
				g := got.File[i]
				w = proto.Clone(w).(*descriptorpb.FileDescriptorProto)
				w.Options, g.Options = nil, nil
				if !proto.Equal(g, w) {
					t.Errorf("%s differs after printing:\n%s\n got %v\nwant %v", w.GetName(),
						protoText(want.File[i]), g, w)
				}
			}
			if t.Failed() {
				return
			}
			if c.file == "printer2.proto" && !strings.Contains(protoText(want.File[len(want.File)-1]), "group Grp = 10 {") {
				t.Error("group not printed as a group")
			}
		})
	}
}
