// SPDX-License-Identifier: MIT

package main

// The torture messages (tests/crash/torture_msg.c): every message names
// its logical producer and that producer's counter and carries bytes
// derived from both. Two thirds are raw sends (Producer.Send, which has
// the "write" crash point between the halves of its copy) with our own
// CRC32C; one third are DeviceEvents through Producer.SendProto (the
// "encoded" crash point), checked by the library's CRC and by decoding.

import (
	"encoding/binary"
	"hash/crc32"
	"strconv"
	"time"

	pbring "github.com/pbring/pbring/go"
	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
	"google.golang.org/protobuf/proto"
)

const (
	rawMagic  = 0x4b4c5454 // "TTLK"
	rawHdr    = 24         // magic, who, counter, len, crc
	rawCRCOff = 20
	blobMax   = 120
	sentXor   = 0x5deece66d
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func mix(who uint32, c uint64) uint64 {
	x := uint64(who+1)*0x9E3779B97F4A7C15 ^ c*0xff51afd7ed558ccd
	x ^= x >> 31
	return x * 0xBF58476D1CE4E5B9
}

// pattern is tu_pattern of tests/testutil.c.
func pattern(who uint32, c uint64, i uint32) byte {
	x := uint64(who)*0x9E3779B97F4A7C15 ^ c*0xC2B2AE3D27D4EB4F ^ uint64(i)*0x165667B1
	x ^= x >> 29
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 32
	return byte(x)
}

func isPB(c uint64) bool { return c%3 == 0 }

func rawLen(cap, who uint32, c uint64) uint32 {
	return rawHdr + uint32(mix(who, c)%uint64(cap-rawHdr+1))
}

func blobLen(cap, who uint32, c uint64) uint32 {
	max := uint32(blobMax)
	if cap <= blobMax+80 {
		max = cap / 4
	}
	return 1 + uint32(mix(who, c)%uint64(max))
}

func fillPattern(b []byte, who uint32, c uint64) {
	for i := range b {
		b[i] = pattern(who, c, uint32(i))
	}
}

func patternOK(b []byte, who uint32, c uint64) bool {
	for i := range b {
		if b[i] != pattern(who, c, uint32(i)) {
			return false
		}
	}
	return true
}

// rawCRC: CRC32C of bytes [0,20) continued over [24,len).
func rawCRC(b []byte) uint32 {
	return crc32.Update(pbring.CRC32C(b[:rawCRCOff]), castagnoli, b[rawHdr:])
}

// sender holds the buffers a producer reuses.
type sender struct {
	p    *pbring.Producer
	cap  uint32
	buf  []byte
	blob []byte
	ev   demov1.DeviceEvent
}

func newSender(p *pbring.Producer, cap uint32) *sender {
	return &sender{p: p, cap: cap, buf: make([]byte, cap), blob: make([]byte, blobMax)}
}

// send is tt_send: message (who, c); corrupt flips a byte after the
// checksum was taken (--inject torn).
func (s *sender) send(who uint32, c uint64, timeout time.Duration, corrupt bool) error {
	if isPB(c) {
		return s.sendEvent(who, c, timeout, corrupt)
	}
	return s.sendRaw(who, c, timeout, corrupt)
}

func (s *sender) sendRaw(who uint32, c uint64, timeout time.Duration, corrupt bool) error {
	n := rawLen(s.cap, who, c)
	b := s.buf[:n]
	putRaw(b, who, c)
	if corrupt {
		b[n-1] ^= 0x10
	}
	return s.p.Send(b, timeout) // no CRC flag, as pbr_producer_send
}

// putRaw fills b with raw message (who, c) of length len(b).
func putRaw(b []byte, who uint32, c uint64) {
	binary.LittleEndian.PutUint32(b[0:], rawMagic)
	binary.LittleEndian.PutUint32(b[4:], who)
	binary.LittleEndian.PutUint64(b[8:], c)
	binary.LittleEndian.PutUint32(b[16:], uint32(len(b)))
	fillPattern(b[rawHdr:], who, c)
	binary.LittleEndian.PutUint32(b[rawCRCOff:], rawCRC(b))
}

func (s *sender) sendEvent(who uint32, c uint64, timeout time.Duration, corrupt bool) error {
	blob := s.blob[:blobLen(s.cap, who, c)]
	fillPattern(blob, who, c)
	if corrupt { // the library's CRC then covers the wrong bytes
		blob[len(blob)-1] ^= 0x10
	}
	ev := &s.ev
	ev.Reset()
	ev.Id = "t" + strconv.FormatUint(uint64(who), 10)
	ev.Status = int32(who)
	ev.Seq = c
	ev.SentNs = c ^ sentXor
	ev.Blob = blob
	// As pbr_producer_send_pb: reserve, encode in place, CRC flag and
	// CRC32C of the payload, timestamp, commit.
	return s.p.SendProto(ev, timeout)
}

// copyView is what a reader keeps of a delivered message: the payload
// copied out before release, and the header fields as peeked.
type copyView struct {
	data  []byte
	seq   uint64
	flags uint16
	crc   uint32
	prod  uint16
}

// verify is tt_verify: who and counter if the copy is intact.
func verify(v *copyView, cap, nprod uint32, ev *demov1.DeviceEvent) (uint32, uint64, bool) {
	if v.flags&pbring.FlagCRC != 0 { // only SendProto sets the CRC flag
		return verifyEvent(v, cap, nprod, ev)
	}
	return verifyRaw(v, nprod)
}

func verifyRaw(v *copyView, nprod uint32) (uint32, uint64, bool) {
	b := v.data
	if len(b) < rawHdr {
		return 0, 0, false
	}
	magic := binary.LittleEndian.Uint32(b[0:])
	who := binary.LittleEndian.Uint32(b[4:])
	c := binary.LittleEndian.Uint64(b[8:])
	n := binary.LittleEndian.Uint32(b[16:])
	crc := binary.LittleEndian.Uint32(b[rawCRCOff:])
	if magic != rawMagic || who >= nprod || int(n) != len(b) || isPB(c) || crc != rawCRC(b) {
		return who, c, false
	}
	// The CRC could be a coincidence; the pattern cannot.
	return who, c, patternOK(b[rawHdr:], who, c)
}

func verifyEvent(v *copyView, cap, nprod uint32, ev *demov1.DeviceEvent) (uint32, uint64, bool) {
	if pbring.CRC32C(v.data) != v.crc {
		return 0, 0, false
	}
	ev.Reset()
	if proto.Unmarshal(v.data, ev) != nil {
		return 0, 0, false
	}
	if ev.Status < 0 || uint32(ev.Status) >= nprod {
		return 0, 0, false
	}
	who, c := uint32(ev.Status), ev.Seq
	if ev.Id != "t"+strconv.FormatUint(uint64(who), 10) || !isPB(c) ||
		ev.SentNs != c^sentXor || uint32(len(ev.Blob)) != blobLen(cap, who, c) {
		return who, c, false
	}
	return who, c, patternOK(ev.Blob, who, c)
}
