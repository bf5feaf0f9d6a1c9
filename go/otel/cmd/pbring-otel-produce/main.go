// SPDX-License-Identifier: MIT

// Command pbring-otel-produce sends one demo DeviceEvent into RING under
// an active OpenTelemetry span (SDK tracer, W3C trace context
// propagator) and prints that span's trace id and span id, hex, on one
// line: what a consumer's span must have as its parent. Used by the
// Python tests (python/tests/test_trace.py) for the Go producer ->
// Python consumer case.
//
//	pbring-otel-produce RING
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	pbring "github.com/pbring/pbring/go"
	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: pbring-otel-produce RING")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "pbring-otel-produce:", err)
		os.Exit(1)
	}
}

func run(name string) error {
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("pbring-otel-produce").Start(context.Background(), "produce")
	defer span.End()

	r, err := pbring.Attach(name, nil)
	if err != nil {
		return err
	}
	defer r.Close()
	p, err := r.NewProducer(nil)
	if err != nil {
		return err
	}
	defer p.Close()
	s, err := p.Reserve(5 * time.Second)
	if err != nil {
		return err
	}
	propagation.TraceContext{}.Inject(ctx, pbring.SlotCarrier{Slot: s})
	if err := p.CommitProto(s, &demov1.DeviceEvent{Id: "otel", Seq: 1}); err != nil {
		return err
	}
	sc := span.SpanContext()
	fmt.Println(sc.TraceID().String(), sc.SpanID().String())
	return nil
}
