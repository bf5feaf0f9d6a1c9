// SPDX-License-Identifier: MIT

// Package otel shows and tests OpenTelemetry's trace context through a
// pbring ring, with the OpenTelemetry SDK on both ends: the producer
// injects its current span into the slot (pbring.SlotCarrier), the
// reader extracts it (pbring.ViewCarrier) and starts its span as the
// producer's child. It is a module of its own so that the pbring module
// does not depend on OpenTelemetry; the carriers it uses are the pbring
// module's, which need nothing from OpenTelemetry.
package otel
