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
