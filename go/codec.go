// SPDX-License-Identifier: MIT

package pbring

import (
	"context"
	"fmt"
	"hash/crc32"
	"runtime/debug"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Protobuf messages in slots: marshal straight into a reserved slot,
// unmarshal from a peeked slot, CRC32C, and the schema identity that the
// C codec defines (include/pbring.h, "Codec").

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32C is the CRC32C (Castagnoli) of b, as the C library's
// pbr_crc32c(0, b, len(b)) computes it. crc32.Update(crc, table, b)
// continues a CRC the same way pbr_crc32c(crc, ...) does.
func CRC32C(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

const (
	fnvOffset = 0xcbf29ce484222325
	fnvPrime  = 0x100000001b3
)

// SchemaHash is the schema identity stored in a ring's superblock:
// FNV-1a 64 over the serialized FileDescriptorSet. No bytes hash to 0
// ("no schema"), and a hash that comes out 0 is returned as 1.
func SchemaHash(fds []byte) uint64 {
	if len(fds) == 0 {
		return 0
	}
	h := uint64(fnvOffset)
	for _, b := range fds {
		h ^= uint64(b)
		h *= fnvPrime
	}
	if h == 0 {
		return 1
	}
	return h
}

// CheckType reports whether the ring carries msgType (a protobuf full
// name): nil if its msg_type is exactly msgType and, when both schemaHash
// and the ring's hash are non-zero, they are equal; ErrWrongType
// otherwise (an untyped ring never matches).
func (r *Ring) CheckType(msgType string, schemaHash uint64) error {
	if r.info.MsgType == "" || r.info.MsgType != msgType ||
		(schemaHash != 0 && r.info.SchemaHash != 0 && schemaHash != r.info.SchemaHash) {
		return wrap(r.name, "check type", ErrWrongType)
	}
	return nil
}

// MonotonicNs is CLOCK_MONOTONIC in nanoseconds, the clock C producers
// stamp into slots and sent_ns, read without a system call.
func MonotonicNs() uint64 { return uint64(nanotime()) } // #nosec G115 -- ns since boot: never negative

// CommitProto marshals m into the reserved slot with the producer's
// ProducerOptions.Marshal (MarshalAppend on the slot's own buffer, never
// reallocating it), after the fields FieldSpan laid out if any (from
// Data[s.Used():]), sets FlagCRC with the payload's CRC32C where the
// ring's CRC policy asks for one (WantsCRC of the whole payload, those
// fields included; otherwise FlagCRC is cleared), a CLOCK_MONOTONIC
// timestamp unless the slot already has one or the producer was opened
// with NoTimestamp, and commits the whole.
// On a typed ring, a message whose full name is not the ring's msg_type
// is ErrWrongType (as C's pbr_ring_check_type), not a misencoded slot.
// If m is of the wrong type, does not fit (ErrMsgSize; after the in-place
// fields, if any) or cannot be marshalled (ErrInvalid, with protobuf's reason), the reservation is
// aborted, so readers never see it and its sequence is not reused; an
// error of that abort is returned instead.
func (p *Producer) CommitProto(s *Slot, m proto.Message) error {
	if err := p.r.checkMessage(m); err != nil {
		if aerr := p.Abort(s); aerr != nil {
			return aerr
		}
		return wrap(p.r.name, "check type", err)
	}
	n, err := p.marshalInto(s, m)
	if err != nil {
		if aerr := p.Abort(s); aerr != nil {
			return aerr
		}
		return wrap(p.r.name, "marshal", err)
	}
	return p.Commit(s, n)
}

// marshalOptions: the producer sizes first and then marshals with the
// cached sizes, whatever the caller set.
func marshalOptions(o proto.MarshalOptions) proto.MarshalOptions {
	o.UseCachedSize = false
	return o
}

// checkMessage: on a typed ring, m must be of the ring's message type.
func (r *Ring) checkMessage(m proto.Message) error {
	return checkMsgType(r.info.MsgType, m)
}

// checkMsgType is nil if msgType is "" (untyped: any bytes go) or m's
// full name; ErrWrongType, saying both names, otherwise.
func checkMsgType(msgType string, m proto.Message) error {
	if msgType == "" || m == nil {
		return nil
	}
	if name := m.ProtoReflect().Descriptor().FullName(); string(name) != msgType {
		return &wrongType{ring: msgType, msg: string(name)}
	}
	return nil
}

// wrongType is a message of another type than the ring's; it matches
// ErrWrongType (and EMEDIUMTYPE).
type wrongType struct{ ring, msg string }

// Error names both types.
func (e *wrongType) Error() string {
	return ErrWrongType.text + ": ring holds " + e.ring + ", message is " + e.msg
}

// Unwrap matches ErrWrongType.
func (e *wrongType) Unwrap() error { return ErrWrongType }

func (p *Producer) marshalInto(s *Slot, m proto.Message) (n int, err error) {
	if err := p.checkSlot(s); err != nil {
		return 0, err
	}
	// The rest of the message goes after the in-place fields (FieldSpan,
	// which keeps used within Data).
	used := s.used
	// Size first: a message that does not fit must not make MarshalAppend
	// allocate a buffer of its size. UseCachedSize then reuses the sizes
	// this pass cached in the message.
	o := p.marshal
	if n = o.Size(m); n > len(s.Data)-used {
		return 0, ErrMsgSize
	}
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, p.r.name, "marshal")
	buf := s.Data[used:used]
	o.UseCachedSize = true
	out, err := o.MarshalAppend(buf, m)
	if err != nil {
		// As C's -EINVAL when nanopb refuses a message.
		return 0, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(out) != n || n > 0 && &out[0] != &s.Data[used] {
		return 0, ErrMsgSize // it grew or moved: never publish a copy
	}
	crashPoint("encoded")
	n += used
	// The CRC is taken while the bytes just written are still hot.
	if p.WantsCRC(n) {
		s.Flags |= FlagCRC
		s.CRC32C = CRC32C(s.Data[:n])
	} else {
		s.Flags &^= FlagCRC // a CRC32C set beforehand is not of these bytes
	}
	if s.TimestampNs == 0 && p.stamp {
		s.TimestampNs = MonotonicNs()
	}
	return n, nil
}

// FieldSpan writes a large field in place: a camera frame or a tensor is
// produced straight into the ring, with no copy. It lays out field num
// (1 .. protowire.MaxValidNumber, a top-level bytes or string field) of n
// bytes in the reserved slot s, after the fields laid out before (at
// Data[s.Used():]): the field's tag and minimal varint length, and
// returns the window for its n bytes, inside the ring (len == cap == n,
// so an append cannot run into what follows). The bytes are not
// initialised: fill all n of them. Then CommitProto marshals the rest of
// the message after them and commits the whole:
//
//	s, err := p.Reserve(-1)
//	pixels, err := p.FieldSpan(s, 3, n) // Frame.pixels = 3
//	render(pixels)                      // all n bytes
//	err = p.CommitProto(s, frame)       // frame.Pixels left empty
//
// pbring copies, zeroes and reads none of those bytes, except for the CRC
// where the ring's policy asks for one. Protobuf lets fields come in any
// order, and every parser (Go, C's nanopb, Python, C++) accepts the field
// first: readers decode it like any other. Leave it empty in the message
// given to CommitProto: a singular field sent twice is read as the last
// one. Several in-place fields may precede the rest, each with its own
// FieldSpan; a field nested in a submessage cannot be written this way.
//
// ErrInvalid for a field number out of range, a negative n or an s that
// is not the open reservation; ErrMsgSize if the field does not fit in the
// rest of the slot. On an error nothing is written and the reservation
// stays open. Commit, unlike CommitProto, publishes only the length it is
// given, which must then count s.Used(). As C's pbr_slot_pb_span, with
// CommitProto as pbr_producer_commit_pb.
func (p *Producer) FieldSpan(s *Slot, num protowire.Number, n int) (b []byte, err error) {
	if err = p.checkSlot(s); err == nil {
		switch {
		case num < protowire.MinValidNumber || num > protowire.MaxValidNumber:
			err = invalid("field number %d is not in 1..%d", num, protowire.MaxValidNumber)
		case n < 0:
			err = invalid("field length %d is negative", n)
		}
	}
	if err != nil {
		return nil, wrap(p.r.name, "field span", err)
	}
	tag := protowire.EncodeTag(num, protowire.BytesType)
	head := protowire.SizeVarint(tag) + protowire.SizeVarint(uint64(n)) // #nosec G115 -- n < 0 refused above
	at := s.used
	if room := len(s.Data) - at; n > room || head > room-n {
		return nil, wrap(p.r.name, "field span", ErrMsgSize)
	}
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, p.r.name, "field span")
	// The room was checked: the appends write into the slot.
	hdr := protowire.AppendVarint(s.Data[at:at:at+head], tag)
	protowire.AppendVarint(hdr, uint64(n)) // #nosec G115 -- n < 0 refused above
	at += head
	s.used = at + n
	return s.Data[at:s.used:s.used], nil
}

// SendProto reserves a slot (waiting as Reserve does), marshals m into it
// and commits it with a timestamp and, where the ring's CRC policy asks
// for one, a CRC32C; see CommitProto. A message of the wrong type is
// refused (ErrWrongType) before reserving.
func (p *Producer) SendProto(m proto.Message, timeout time.Duration) error {
	if err := p.r.checkMessage(m); err != nil {
		return wrap(p.r.name, "check type", err)
	}
	s, err := p.Reserve(timeout)
	if err != nil {
		return err
	}
	return p.CommitProto(s, m)
}

// SendProtoContext is SendProto bounded by ctx.
func (p *Producer) SendProtoContext(ctx context.Context, m proto.Message) error {
	if err := p.r.checkMessage(m); err != nil {
		return wrap(p.r.name, "check type", err)
	}
	s, err := p.ReserveContext(ctx)
	if err != nil {
		return err
	}
	return p.CommitProto(s, m)
}

// Verify checks the payload against the CRC32C its producer stored: nil
// if it matches or there is none (no FlagCRC), ErrBadMsg if it differs.
// For a lossy reader a mismatch may also mean the slot was overwritten;
// Release then reports ErrStale.
func (v *View) Verify() (err error) {
	if v.Flags&FlagCRC == 0 {
		return nil
	}
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, "", "verify")
	if CRC32C(v.Data) != v.CRC32C {
		return ErrBadMsg
	}
	return nil
}

// Unmarshal verifies the CRC (when the producer stored one) and decodes
// the payload into m, straight from the slot. The decoded message does not
// point into the ring (the protobuf runtime copies bytes and strings), so
// it outlives Release; a lossy reader must still discard it if Release
// reports ErrStale. A CRC mismatch or an invalid encoding is ErrBadMsg;
// on a typed ring, an m of another type than the ring's msg_type is
// ErrWrongType (nothing is decoded).
func (v *View) Unmarshal(m proto.Message) error {
	if err := checkMsgType(v.msgType, m); err != nil {
		return err
	}
	if err := v.Verify(); err != nil {
		return err
	}
	return v.UnmarshalNoVerify(proto.UnmarshalOptions{}, m)
}

// UnmarshalNoVerify decodes with the given options and no CRC check, for
// callers that ran Verify (or decode from a copy they verified). It checks
// m's type as Unmarshal does.
func (v *View) UnmarshalNoVerify(o proto.UnmarshalOptions, m proto.Message) (err error) {
	if err := checkMsgType(v.msgType, m); err != nil {
		return err
	}
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, "", "unmarshal")
	if err := o.Unmarshal(v.Data, m); err != nil {
		return &decodeError{err}
	}
	return nil
}

// AppendPayload appends a private copy of the payload to dst: decode from
// it when the writers are not trusted, so that the bytes checked are the
// bytes decoded. Reading happens under the fault guard.
func (v *View) AppendPayload(dst []byte) (out []byte, err error) {
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, "", "copy")
	return append(dst, v.Data...), nil
}

// decodeError is a protobuf decoding failure; it matches ErrBadMsg.
type decodeError struct{ err error }

// Error says why protobuf refused the payload.
func (e *decodeError) Error() string { return ErrBadMsg.text + ": " + e.err.Error() }

// Unwrap matches ErrBadMsg and the protobuf error.
func (e *decodeError) Unwrap() []error {
	return []error{ErrBadMsg, e.err}
}
