# SPDX-License-Identifier: MIT
"""W3C trace context through the slot (FORMAT.md §6): send(...,
traceparent=), a reservation's set_traceparent(), SlotInfo.traceparent on
the reading side (read before recv() releases the slot), bad input, and
OpenTelemetry's own propagator and SDK on both ends: the consumer's span
is a child of the producer's."""
from __future__ import annotations

import pytest

import pbring
from pbring import DeviceEvent, Reader, Ring

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TP2 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
BLOB = 5  # DeviceEvent.blob


@pytest.fixture
def demo(name):
    with Ring.create(name, slots=8, slot_size=512, schema="demo") as r:
        yield r


def test_send_and_recv(demo):
    with Reader(demo, timeout=1) as rd, demo.producer() as p:
        p.send(DeviceEvent(id="a", seq=1), traceparent=TP)
        p.send(DeviceEvent(id="b", seq=2))
        p.send_bytes(DeviceEvent(id="c", seq=3).SerializeToString(),
                     traceparent=TP2)
        assert rd.recv().id == "a"
        assert rd.last.traceparent == TP
        assert rd.last.flags & pbring._lib.PBR_SLOT_F_TRACE
        assert rd.recv().id == "b"
        assert rd.last.traceparent is None
        assert rd.recv().id == "c"
        assert rd.last.traceparent == TP2


def test_kept_after_the_slot_is_reused(name):
    """recv() releases the slot: what last says was read before, not from
    a slot a producer has written again since."""
    with Ring.create(name, slots=2, slot_size=256, schema="demo") as ring, \
            Reader(ring, timeout=1) as rd, ring.producer() as p:
        p.send(DeviceEvent(id="a"), traceparent=TP)
        assert rd.recv().id == "a"
        for i in range(4):  # both slots written again, other contexts
            p.send(DeviceEvent(id="x"), traceparent=TP2)
            rd.recv()
        p.send(DeviceEvent(id="y"))
        assert rd.recv().id == "y"
        assert rd.last.traceparent is None


def test_peek_and_views(demo):
    with Reader(demo, timeout=1) as rd, demo.producer() as p:
        p.send(DeviceEvent(id="a"), traceparent=TP)
        p.send(DeviceEvent(id="b"), traceparent=TP2)
        rd.peek()
        assert rd.last.traceparent == TP
        rd.release()
        got = []
        for _ in rd.views(timeout=0):
            got.append(rd.last.traceparent)
        assert got == [TP2]


def test_reservations(demo):
    with Reader(demo, timeout=1) as rd, demo.producer() as p:
        with p.reserve(3) as buf:
            buf[:] = DeviceEvent(id="r").SerializeToString()[:3]
            p.reservation.set_traceparent(TP)
        rd.recv_bytes()
        assert rd.last.traceparent == TP
        with p.reserve_message(crc=True) as r:
            r.field_span(BLOB, 10)[:] = pbring.demo.blob_pattern(10)
            r.set_traceparent(TP2)
            r.commit(DeviceEvent(id="m"))
        ev = rd.recv()
        assert ev.id == "m" and rd.last.has_crc  # CRC and TRACE both
        assert rd.last.traceparent == TP2


@pytest.mark.parametrize("bad", [
    "", "nonsense", TP.upper(), TP[:-1], TP + "-", "ff" + TP[2:],
    "00-" + "0" * 32 + TP[35:], TP[:36] + "0" * 16 + TP[52:], "00-é" + TP[4:],
])
def test_bad_traceparent(demo, bad):
    with Reader(demo, timeout=0) as rd, demo.producer() as p:
        before = demo.stats().claim if hasattr(demo.stats(), "claim") \
            else None
        with pytest.raises(ValueError, match="not a W3C traceparent"):
            p.send(DeviceEvent(id="a"), traceparent=bad)
        with pytest.raises(pbring.RingEmpty):
            rd.recv()  # nothing was sent, nothing was claimed
        if before is not None:
            assert demo.stats().claim == before
        with p.reserve(1) as buf:
            buf[0] = 0
            with pytest.raises(ValueError):
                p.reservation.set_traceparent(bad)
        rd.recv_bytes()
        assert rd.last.traceparent is None


def test_opentelemetry_parent(demo):
    """The producer injects its current span with OpenTelemetry's global
    propagator; the consumer extracts it and starts a span whose parent
    is the producer's, in the same trace (the in-memory exporter of the
    OpenTelemetry SDK records both)."""
    # run_tests.sh installs the SDK (the package's "test" extra)
    from opentelemetry import propagate
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import \
        InMemorySpanExporter

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = provider.get_tracer("pbring-test")
    with Reader(demo, timeout=1) as rd, demo.producer() as p:
        with tracer.start_as_current_span("produce") as ps:
            carrier: dict = {}
            propagate.inject(carrier)
            p.send(DeviceEvent(id="t"), traceparent=carrier["traceparent"])
        rd.recv()
        ctx = propagate.extract({"traceparent": rd.last.traceparent})
        with tracer.start_as_current_span("consume", context=ctx):
            pass
    done = {s.name: s for s in spans.get_finished_spans()}
    prod, cons = done["produce"], done["consume"]
    assert cons.context.trace_id == prod.context.trace_id == \
        ps.get_span_context().trace_id
    assert cons.parent is not None and cons.parent.is_remote
    assert cons.parent.span_id == prod.context.span_id


@pytest.fixture(scope="session")
def go_otel_produce(tmp_path_factory):
    """go/otel/cmd/pbring-otel-produce, built with the Go toolchain (the
    Go peer of the interop tests: skipped, with the reason, without Go)."""
    import os
    import shutil
    import subprocess
    go = shutil.which("go")
    src = os.path.join(os.path.dirname(__file__), "..", "..", "go", "otel")
    if not go:
        pytest.skip("Go peer unavailable: no `go` command on PATH")
    out = str(tmp_path_factory.mktemp("gootel") / "pbring-otel-produce")
    cp = subprocess.run([go, "build", "-o", out,
                         "./cmd/pbring-otel-produce"], cwd=src,
                        capture_output=True, text=True, timeout=600)
    assert cp.returncode == 0, cp.stderr
    return out


def test_go_producer_span_is_the_python_consumers_parent(demo,
                                                          go_otel_produce):
    """A Go producer sends under an active OpenTelemetry span (SDK,
    W3C propagator, pbring.SlotCarrier); this Python consumer's span,
    started from the message's context, is its child in the same trace."""
    import subprocess

    from opentelemetry import propagate
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import \
        InMemorySpanExporter

    with Reader(demo, timeout=5) as rd:
        cp = subprocess.run([go_otel_produce, demo.name],
                            capture_output=True, text=True, timeout=60)
        assert cp.returncode == 0, cp.stderr
        trace_hex, span_hex = cp.stdout.split()
        ev = rd.recv()
        assert ev.id == "otel"
        tp = rd.last.traceparent
        assert tp == f"00-{trace_hex}-{span_hex}-01"
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    ctx = propagate.extract({"traceparent": tp})
    with provider.get_tracer("t").start_as_current_span("consume",
                                                         context=ctx):
        pass
    (cons,) = spans.get_finished_spans()
    assert format(cons.context.trace_id, "032x") == trace_hex
    assert cons.parent is not None and cons.parent.is_remote
    assert format(cons.parent.span_id, "016x") == span_hex


def test_traceparent_with_a_nul_refused(demo):
    """As Go's parser, which counts the whole string: C would stop at the
    NUL and take what is before it."""
    with demo.producer() as p:
        for bad in (TP + "\x00", TP + "\x00junk"):
            with pytest.raises(ValueError, match="not a W3C traceparent"):
                p.send(DeviceEvent(id="a"), traceparent=bad)
