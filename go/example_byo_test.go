// SPDX-License-Identifier: MIT

package pbring_test

import (
	"fmt"
	"log"
	"os"
	"strings"
	"testing"
	"time"

	pbring "github.com/pbring/pbring/go"
	acmepb "github.com/pbring/pbring/go/internal/acmepb"
)

// The README's Go example for a user's .proto ("Bring your own .proto"),
// run as an Example: its body below is the README's block, verbatim (see
// TestReadmeByoGoExample).
func Example_bringYourOwnProto() {
	name := fmt.Sprintf("gotest-byo-%d", os.Getpid())
	_ = pbring.Unlink(name)
	// -- README begin
	schema, err := pbring.SchemaOf(&acmepb.Reading{})
	if err != nil {
		log.Fatal(err)
	}
	r, err := pbring.Create(name, &pbring.CreateOptions{SlotCount: 64,
		MsgType: "acme.telemetry.v1.Reading", Schema: schema})
	if err != nil {
		log.Fatal(err)
	}
	defer pbring.Unlink(name)
	defer r.Close()
	rd, _ := r.NewReader(nil)
	p, _ := r.NewProducer(nil)
	if err := p.SendProto(&acmepb.Reading{DeviceId: "d-1", FDouble: 1.5}, time.Second); err != nil {
		log.Fatal(err)
	}
	v, err := rd.Peek(time.Second)
	if err != nil {
		log.Fatal(err)
	}
	var got acmepb.Reading
	if err := v.Unmarshal(&got); err != nil { // refuses a ring of another type
		log.Fatal(err)
	}
	_ = rd.Release(&v)
	fmt.Println(got.GetDeviceId(), got.GetFDouble())
	// Output: d-1 1.5
}

// TestReadmeByoGoExample: the README's block is the Example's body.
func TestReadmeByoGoExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	at := strings.Index(text, "## Bring your own .proto")
	start := strings.Index(text[at:], "```go\n")
	if at < 0 || start < 0 {
		t.Fatal("no Go block under 'Bring your own .proto' in README.md")
	}
	block := text[at+start+len("```go\n"):]
	block = block[:strings.Index(block, "```")]
	src, err := os.ReadFile("example_byo_test.go")
	if err != nil {
		t.Fatal(err)
	}
	body := string(src)
	body = body[strings.Index(body, "// -- README begin\n")+len("// -- README begin\n"):]
	body = body[:strings.Index(body, "\n}\n")+1]
	var lines []string
	for _, l := range strings.Split(body, "\n") {
		lines = append(lines, strings.TrimPrefix(l, "\t"))
	}
	if got := strings.Join(lines, "\n"); got != block {
		t.Errorf("README's Go block differs from Example_bringYourOwnProto:\n--- README\n%s\n--- example\n%s", block, got)
	}
}
