// SPDX-License-Identifier: MIT
package interop

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestConsumeOutputWriteError: both commands fail, with the same line,
// when what they consumed cannot be written out (/dev/full: a full disk),
// instead of exiting 0 with the messages lost.
func TestConsumeOutputWriteError(t *testing.T) {
	needC(t)
	for _, bin := range []string{cBin, goBin} {
		name := newRing(t, 16)
		if out, err := exec.Command(cBin, "produce", name, "--count", "5", "--no-wait").CombinedOutput(); err != nil {
			t.Fatalf("produce: %v: %s", err, out)
		}
		full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
		if err != nil {
			t.Skipf("no /dev/full: %v", err)
		}
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "consume", name, "--count", "5", "--json", "--timeout", "5")
		cmd.Stdout, cmd.Stderr = full, &stderr
		err = cmd.Run()
		full.Close()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("%s consume to /dev/full: %v, want exit 1; stderr:\n%s", bin, err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		want := "pbring: " + name + ": cannot write the output: No space left on device"
		if last := lines[len(lines)-1]; last != want {
			t.Errorf("%s: last line %q, want %q", bin, last, want)
		}
	}
}
