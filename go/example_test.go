// SPDX-License-Identifier: MIT

package pbring_test

import (
	"fmt"
	"log"
	"os"
	"time"

	pbring "github.com/pbring/pbring/go"
	"github.com/pbring/pbring/go/demo"
	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

// A producer and a reader of DeviceEvents on a fresh ring. In real use
// they are different processes: the one that does not create the ring
// calls pbring.Attach.
func Example() {
	name := fmt.Sprintf("example-%d", os.Getpid())
	ring, err := pbring.Create(name, demo.CreateOptions(1024, 1024))
	if err != nil {
		log.Fatal(err)
	}
	defer pbring.Unlink(name)
	defer ring.Close()

	rd, err := ring.NewReader(nil) // gating: producers wait for it
	if err != nil {
		log.Fatal(err)
	}
	p, err := ring.NewProducer(nil)
	if err != nil {
		log.Fatal(err)
	}
	ev := &demov1.DeviceEvent{Id: "sensor-1", Seq: 1, Status: 2, Blob: []byte("hi")}
	if err := p.SendProto(ev, time.Second); err != nil { // marshalled into the slot
		log.Fatal(err)
	}

	v, err := rd.Peek(time.Second) // v.Data points into the ring
	if err != nil {
		log.Fatal(err)
	}
	var got demov1.DeviceEvent
	if err := v.Unmarshal(&got); err != nil { // checks the CRC32C first
		log.Fatal(err)
	}
	if err := rd.Release(&v); err != nil {
		log.Fatal(err)
	}
	fmt.Println(v.Seq, string(demo.AppendJSON(nil, &got)))
	// Output: 0 {"id":"sensor-1","status":2,"seq":"1","blob":"aGk="}
}

// A large field produced straight into the ring: FieldSpan lays out the
// blob's tag and length in the slot and returns the window for its bytes;
// CommitProto marshals the rest of the event after them.
func ExampleProducer_FieldSpan() {
	name := fmt.Sprintf("example-span-%d", os.Getpid())
	ring, err := pbring.Create(name, demo.CreateOptions(16, 4096))
	if err != nil {
		log.Fatal(err)
	}
	defer pbring.Unlink(name)
	defer ring.Close()
	rd, err := ring.NewReader(nil)
	if err != nil {
		log.Fatal(err)
	}
	p, err := ring.NewProducer(nil)
	if err != nil {
		log.Fatal(err)
	}

	s, err := p.Reserve(time.Second)
	if err != nil {
		log.Fatal(err)
	}
	const blob = 5 // DeviceEvent.blob
	frame, err := p.FieldSpan(s, blob, 3000)
	if err != nil {
		log.Fatal(err) // the reservation is still open: Abort it or retry
	}
	for i := range frame { // produce the frame in place
		frame[i] = demo.BlobByte(i)
	}
	ev := &demov1.DeviceEvent{Id: "camera-1", Seq: 1} // Blob left empty
	if err := p.CommitProto(s, ev); err != nil {
		log.Fatal(err)
	}

	v, err := rd.Peek(time.Second)
	if err != nil {
		log.Fatal(err)
	}
	var got demov1.DeviceEvent
	if err := v.Unmarshal(&got); err != nil {
		log.Fatal(err)
	}
	if err := rd.Release(&v); err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Id, got.Seq, len(got.Blob), demo.BlobOK(got.Blob), len(v.Data))
	// Output: camera-1 1 3000 true 3015
}
