// SPDX-License-Identifier: MIT

package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// consume --tap (issue 16): a read-only reader that writes nothing to the
// ring, accepts any owner, and says "(tap)" in its summary.

func TestConsumeTap(t *testing.T) {
	name := newDemoRing(t, 64, 1024)
	if r := pbringGo(t, nil, "produce", name, "--no-wait", "--count", "10", "--size", "16"); r.code != 0 {
		t.Fatalf("produce: %d %s", r.code, r.stderr)
	}
	path := "/dev/shm/pbring." + name
	if os.Geteuid() == 0 {
		// Another owner's ring, group-readable: a tap needs no
		// --any-owner, since the owner check protects writers.
		if err := os.Chown(path, 65534, -1); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := pbringGo(t, nil, "consume", name, "--tap", "--json", "--count", "10", "--timeout", "5")
	if r.code != 0 {
		t.Fatalf("consume --tap: %d %s", r.code, r.stderr)
	}
	if lines := strings.Count(string(r.stdout), "\n"); lines != 10 {
		t.Errorf("%d JSON lines: %s", lines, r.stdout)
	}
	_, f := summaryLine(t, r.stderr)
	if f["mode"] != "tap" || f["received"] != "10" || f["lost"] != "0" || f["gaps"] != "0" {
		t.Errorf("summary %v in %s", f, r.stderr)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("consume --tap changed the ring")
	}
}

// --tap with --lossy is a usage error: one line, exit 2.
func TestConsumeTapLossyUsage(t *testing.T) {
	r := pbringGo(t, nil, "consume", "ring", "--tap", "--lossy")
	want := "pbring-go consume: --tap and --lossy exclude each other (a tap is lossy already) (see 'pbring-go consume --help')\n"
	if r.code != exitUsage || string(r.stderr) != want || len(r.stdout) != 0 {
		t.Errorf("%d %q %q", r.code, r.stderr, r.stdout)
	}
	if c, rc := parseConsume([]string{"ring", "--tap"}); c == nil || rc != 0 || !c.tap || c.lossy {
		t.Errorf("--tap: %+v %d", c, rc)
	}
	h := pbringGo(t, nil, "consume", "--help")
	if h.code != 0 || !strings.Contains(string(h.stdout), "\n  --tap ") {
		t.Errorf("help: %d %s", h.code, h.stdout)
	}
}

// Read permission is what a tap needs: as uid 65534 (gid 0), a root ring
// of mode 0600 is refused ("permission denied", as the C command says),
// one of mode 0640 is tapped, and a read-write consumer is still refused.
func TestConsumeTapReadPermission(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the command as another user")
	}
	name := newDemoRing(t, 64, 1024)
	if r := pbringGo(t, nil, "produce", name, "--no-wait", "--count", "5", "--size", "16"); r.code != 0 {
		t.Fatalf("produce: %d %s", r.code, r.stderr)
	}
	bin := nobodyCopy(t)
	denied := "pbring: " + name + ": permission denied\n"
	if r := asNobody(t, bin, "consume", name, "--tap", "--quiet", "--timeout", "0.1"); r.code != 1 || string(r.stderr) != denied {
		t.Errorf("tap of a 0600 ring: %d %q", r.code, r.stderr)
	}
	if err := os.Chmod("/dev/shm/pbring."+name, 0o640); err != nil {
		t.Fatal(err)
	}
	r := asNobody(t, bin, "consume", name, "--tap", "--quiet", "--count", "5", "--timeout", "5")
	if _, f := summaryLine(t, r.stderr); r.code != 0 || f["mode"] != "tap" || f["received"] != "5" {
		t.Errorf("tap of a 0640 ring: %d %s", r.code, r.stderr)
	}
	if r := asNobody(t, bin, "consume", name, "--any-owner", "--quiet", "--timeout", "0.1"); r.code != 1 || string(r.stderr) != denied {
		t.Errorf("gating consumer of a 0640 ring: %d %q", r.code, r.stderr)
	}
}

// nobodyCopy copies this test binary where uid 65534 can run it (go
// test's own directory is private).
func nobodyCopy(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pbring-go-tap")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	bin := filepath.Join(dir, "pbring-go")
	out, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err == nil {
		_, err = io.Copy(out, in)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// asNobody runs bin as pbring-go with uid 65534, gid 0, no other groups.
func asNobody(t *testing.T, bin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = append(os.Environ(), "PBRING_GO_MAIN=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 0, Groups: []uint32{}}}
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
