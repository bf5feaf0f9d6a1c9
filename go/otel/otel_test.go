// SPDX-License-Identifier: MIT

package otel

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	pbring "github.com/pbring/pbring/go"
	"github.com/pbring/pbring/go/demo"
	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

// A Go producer's span is the parent of a Go consumer's, through the
// slot, with OpenTelemetry's own propagator and SDK on both ends.
func TestSpanThroughTheRing(t *testing.T) {
	name := fmt.Sprintf("gootel-%d", os.Getpid())
	r, err := pbring.Create(name, demo.CreateOptions(8, 256))
	if err != nil {
		t.Fatal(err)
	}
	defer pbring.Unlink(name)
	defer r.Close()
	rd, err := r.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.NewProducer(nil)
	if err != nil {
		t.Fatal(err)
	}
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	tr := tp.Tracer("test")
	prop := propagation.TraceContext{}

	ctx, ps := tr.Start(context.Background(), "produce")
	s, err := p.Reserve(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	prop.Inject(ctx, pbring.SlotCarrier{Slot: s})
	if err := p.CommitProto(s, &demov1.DeviceEvent{Id: "t"}); err != nil {
		t.Fatal(err)
	}
	ps.End()

	v, err := rd.Peek(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cctx := prop.Extract(context.Background(), pbring.ViewCarrier{View: &v})
	_, cs := tr.Start(cctx, "consume")
	cs.End()
	if err := rd.Release(&v); err != nil {
		t.Fatal(err)
	}

	got := spans.GetSpans()
	if len(got) != 2 {
		t.Fatalf("%d spans", len(got))
	}
	prod, cons := got[0], got[1]
	if cons.SpanContext.TraceID() != prod.SpanContext.TraceID() {
		t.Fatalf("trace %s, producer's %s", cons.SpanContext.TraceID(), prod.SpanContext.TraceID())
	}
	if !cons.Parent.IsRemote() || cons.Parent.SpanID() != prod.SpanContext.SpanID() {
		t.Fatalf("parent %v, want the producer's span %s", cons.Parent, prod.SpanContext.SpanID())
	}
	if !cons.Parent.IsSampled() {
		t.Fatal("the sampled flag was lost")
	}
}
