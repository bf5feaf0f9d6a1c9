// SPDX-License-Identifier: MIT

// Package demo is the demo message of pbring, pbring.demo.v1.DeviceEvent,
// as every language's `produce` and `consume` commands send and check it:
// the same id, seq, status, blob pattern and canonical JSON as the C
// command (cli/demo/demo_event.c), so any producer can be checked by any
// consumer.
//
// The generated code is in
// github.com/pbring/pbring/go/proto/pbring/demo/v1; generate.sh
// regenerates it and device.fds (see there).
package demo

import (
	_ "embed"
	"strconv"

	pbring "github.com/pbring/pbring/go"
	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

// MsgType is the message full name demo rings carry.
const MsgType = "pbring.demo.v1.DeviceEvent"

// IDMax is the longest id the C decoder accepts (device.options:
// max_size 65 including the NUL); a longer one is a corrupt message.
const IDMax = 64

// fds is the demo FileDescriptorSet exactly as the C library embeds it
// (protoc --include_imports --descriptor_set_out, no source info).
//
//go:embed device.fds
var fds []byte

// Schema returns the serialized FileDescriptorSet of the demo schema, as
// stored in rings that `pbring create` makes.
func Schema() []byte { return append([]byte(nil), fds...) }

// SchemaHash is pbring.SchemaHash(Schema()), the hash C demo rings store.
func SchemaHash() uint64 { return pbring.SchemaHash(fds) }

// CreateOptions returns the options of a demo ring (as `pbring create
// RING` makes one): the demo message type and schema, with the given
// geometry.
func CreateOptions(slots, slotSize uint32) *pbring.CreateOptions {
	return &pbring.CreateOptions{SlotCount: slots, SlotSize: slotSize,
		MsgType: MsgType, Schema: Schema(), SchemaHash: SchemaHash()}
}

// BlobByte is byte i of every demo blob: a fixed pattern, so a consumer
// tells a torn or corrupted blob from a good one without the producer.
func BlobByte(i int) byte { return byte((i*131 + 7) & 0xff) }

// Blob returns size bytes of the pattern.
func Blob(size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = BlobByte(i)
	}
	return b
}

// BlobOK reports whether b is the pattern.
func BlobOK(b []byte) bool {
	for i, c := range b {
		if c != BlobByte(i) {
			return false
		}
	}
	return true
}

// ID is the id of producer k of process pid: "<pid>-<k>".
func ID(pid, k int) string { return strconv.Itoa(pid) + "-" + strconv.Itoa(k) }

// NewEvent prepares the event that producer k of process pid sends, with
// a blob of size bytes.
func NewEvent(pid, k, size int) *demov1.DeviceEvent {
	return &demov1.DeviceEvent{Id: ID(pid, k), Blob: Blob(size)}
}

// Stamp makes ev message number seq of its producer: seq, status =
// seq % 3, sent_ns = CLOCK_MONOTONIC now.
func Stamp(ev *demov1.DeviceEvent, seq uint64) {
	ev.Seq = seq
	ev.Status = int32(seq % 3)
	ev.SentNs = pbring.MonotonicNs()
}

// Check reports whether a decoded event is well-formed as the C consumer
// judges it: an id the C decoder accepts and the blob pattern.
func Check(ev *demov1.DeviceEvent) bool {
	return len(ev.Id) <= IDMax && BlobOK(ev.Blob)
}
