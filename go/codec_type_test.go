// SPDX-License-Identifier: MIT

package pbring

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/pbring/pbring/go/internal/acmepb"
	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

// typedRing creates a ring carrying m's type with SchemaOf's bytes.
func typedRing(t *testing.T, m proto.Message) *Ring {
	t.Helper()
	fds, err := SchemaOf(m)
	must(t, err)
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 1024,
		MsgType: string(m.ProtoReflect().Descriptor().FullName()), Schema: fds, SchemaHash: SchemaHash(fds)})
	return r
}

func isWrongType(err error) bool {
	return errors.Is(err, ErrWrongType) && errors.Is(err, syscall.EMEDIUMTYPE)
}

// A message of another type than the ring's is refused on both sides as
// ErrWrongType (EMEDIUMTYPE), never sent or misdecoded.
func TestWrongMessageType(t *testing.T) {
	r := typedRing(t, &demov1.DeviceEvent{})
	p, err := r.NewProducer(nil)
	must(t, err)
	rd, err := r.NewReader(nil)
	must(t, err)
	wrong := &acmepb.Location{Lat: 1, SiteName: "x"}
	if err := p.SendProto(wrong, 0); !isWrongType(err) {
		t.Fatalf("SendProto of a Location: %v", err)
	}
	s, err := p.Reserve(0)
	must(t, err)
	if err := p.CommitProto(s, wrapperspb.String("x")); !isWrongType(err) {
		t.Fatalf("CommitProto of a StringValue: %v", err)
	}
	if _, err := rd.Peek(0); !errors.Is(err, ErrEmpty) {
		t.Fatalf("the refused messages reached the reader: %v", err)
	}
	ev := &demov1.DeviceEvent{Id: "1-0", Seq: 3}
	must(t, p.SendProto(ev, 0))
	v, err := rd.Peek(0)
	must(t, err)
	if err := v.Unmarshal(&acmepb.Location{}); !isWrongType(err) {
		t.Fatalf("Unmarshal into a Location: %v", err)
	}
	if err := v.UnmarshalNoVerify(proto.UnmarshalOptions{}, &acmepb.Location{}); !isWrongType(err) {
		t.Fatalf("UnmarshalNoVerify into a Location: %v", err)
	}
	var got demov1.DeviceEvent
	must(t, v.Unmarshal(&got))
	if !proto.Equal(&got, ev) {
		t.Fatalf("got %v", &got)
	}
	// A dynamic message built from the ring's own schema is the right type.
	dyn := dynamicpb.NewMessage(schemaMessage(t, r))
	must(t, v.Unmarshal(dyn))
	must(t, rd.Release(&v))

	// An untyped ring takes any message.
	u, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 256})
	up, err := u.NewProducer(nil)
	must(t, err)
	must(t, up.SendProto(wrong, 0))
	must(t, up.SendProto(ev, 0))
}

func schemaMessage(t *testing.T, r *Ring) protoreflect.MessageDescriptor {
	t.Helper()
	b, err := r.Schema()
	must(t, err)
	var set descriptorpb.FileDescriptorSet
	must(t, proto.Unmarshal(b, &set))
	files, err := protodesc.NewFiles(&set)
	must(t, err)
	d, err := files.FindDescriptorByName(protoreflect.FullName(r.Info().MsgType))
	must(t, err)
	return d.(protoreflect.MessageDescriptor)
}

// ProducerOptions.Marshal is what SendProto marshals with.
func TestProducerMarshalOptions(t *testing.T) {
	r := typedRing(t, &acmepb.Reading{})
	p, err := r.NewProducer(&ProducerOptions{Marshal: proto.MarshalOptions{Deterministic: true, UseCachedSize: true}})
	must(t, err)
	rd, err := r.NewReader(nil)
	must(t, err)
	m := &acmepb.Reading{Gauges: map[string]float64{}, ById: map[int64]*acmepb.Location{}}
	for i := 0; i < 20; i++ {
		m.Gauges[fmt.Sprint("g", i)] = float64(i)
		m.ById[int64(i*7919)] = &acmepb.Location{Lat: float64(i)}
	}
	want, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	must(t, err)
	for i := 0; i < 4; i++ { // map order is random per marshal without Deterministic
		must(t, p.SendProto(m, 0))
		v, err := rd.Peek(0)
		must(t, err)
		if !bytes.Equal(v.Data, want) {
			t.Fatalf("message %d is not the deterministic encoding", i)
		}
		must(t, rd.Release(&v))
	}
}
