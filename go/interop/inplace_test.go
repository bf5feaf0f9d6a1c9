// SPDX-License-Identifier: MIT

package interop

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	pbring "github.com/pbring/pbring/go"
	"github.com/pbring/pbring/go/demo"
	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

// DeviceEvents whose blob a Go producer wrote in place (FieldSpan, then
// CommitProto: the blob first, the rest after it) are consumed by the C
// command like any other: every one decodes with the demo blob pattern,
// its CRC verifies, and its seq follows the one before.
func TestInPlaceGoToC(t *testing.T) {
	needC(t)
	ring := newRing(t, 64) // 1024-byte slots: 960 bytes of payload
	r, err := pbring.Attach(ring, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := r.NewProducer(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sizes := []int{0, 1, 127, 128, 300, 900}
	ev := &demov1.DeviceEvent{Id: demo.ID(os.Getpid(), 0)}
	for i, size := range sizes {
		s, err := p.Reserve(0)
		if err != nil {
			t.Fatal(err)
		}
		blob, err := p.FieldSpan(s, 5, size) // DeviceEvent.blob
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		for j := range blob {
			blob[j] = demo.BlobByte(j)
		}
		demo.Stamp(ev, uint64(i))
		if err := p.CommitProto(s, ev); err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
	}
	n := len(sizes)
	out, err := exec.Command(cBin, "consume", ring, "--count", strconv.Itoa(n), "--quiet", "--timeout", "5").CombinedOutput()
	line := strings.TrimSpace(string(out))
	t.Logf("%s", line)
	m := reSummary.FindStringSubmatch(line)
	if err != nil || m == nil {
		t.Fatalf("C consume: %v: %s", err, out)
	}
	want := []string{strconv.Itoa(n), "0", "0", "0", "0", "0", "0"}
	if got := summaryCounts(m); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("summary %v, want received/lost/gaps/dups/crc/content/abandoned %v", got, want)
	}
}
