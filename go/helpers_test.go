// SPDX-License-Identifier: MIT

package pbring

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
)

var ringCounter atomic.Uint32

// testRing creates a fresh ring, unlinked and closed when the test ends.
func testRing(t testing.TB, o *CreateOptions) (*Ring, string) {
	t.Helper()
	name := fmt.Sprintf("gotest-%d-%d", os.Getpid(), ringCounter.Add(1))
	_ = Unlink(name)
	r, err := Create(name, o)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() {
		r.Close()
		Unlink(name)
	})
	return r, name
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
