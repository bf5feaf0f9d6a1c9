#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpus of the pbring fuzz targets: tests/fuzz/corpus/<target>/.

Each seed is a small, hand-described input in the format documented at the
top of the target's .c file. Run from anywhere; needs protoc (for the
AllTypes seeds, encoded from tests/data/*.txtpb). Rewrites only the files
it names, so inputs added by hand (found by a fuzzer) stay.

    python3 tests/fuzz/gen_corpus.py
"""
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PAGE = 4096
MAGIC = 0x0A474E4952425089
FINGERPRINT = 0x88101008


def u8(v): return struct.pack("<B", v & 0xFF)
def u16(v): return struct.pack("<H", v & 0xFFFF)
def u32(v): return struct.pack("<I", v & 0xFFFFFFFF)
def u64(v): return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- protobuf wire format ---------------------------------------------------
def varint(v):
    v &= (1 << 64) - 1
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def fld(num, wt, payload):
    key = varint((num << 3) | wt)
    if wt == 0:
        return key + varint(payload)
    if wt == 2:
        return key + varint(len(payload)) + payload
    return key + payload  # fixed32/64: payload already packed


def device_event(id_=b"dev-1", status=0, seq=0, sent_ns=0, blob=b""):
    m = b""
    if id_:
        m += fld(1, 2, id_)
    if status:
        m += fld(2, 0, status)
    if seq:
        m += fld(3, 0, seq)
    if sent_ns:
        m += fld(4, 0, sent_ns)
    if blob:
        m += fld(5, 2, blob)
    return m


def protoc_encode(msg_type, txt):
    proto = "pbring/test/v1/alltypes.proto"
    with open(os.path.join(ROOT, "tests", "data", txt), "rb") as f:
        return subprocess.run(
            ["protoc", "-I" + os.path.join(ROOT, "proto"),
             "--encode=" + msg_type, proto],
            input=f.read(), stdout=subprocess.PIPE, check=True,
            cwd=os.path.join(ROOT, "proto")).stdout


# --- superblocks ---------------------------------------------------------------
def page_up(v):
    return (v + PAGE - 1) & ~(PAGE - 1)


def superblock(slot_count=2, slot_size=128, np_=1, nr=1, flags=0, state=1,
               major=1, fingerprint=FINGERPRINT, incompat=0, seq_base=0,
               schema_len=0, name=b"seed", msg_type=b"", **over):
    g = {}
    g["control_off"], g["control_size"] = PAGE, PAGE
    g["participants_off"] = 2 * PAGE
    g["participants_size"] = page_up((np_ + nr) * 128)
    g["schema_off"] = g["participants_off"] + g["participants_size"]
    g["schema_size"] = page_up(schema_len)
    g["slots_off"] = g["schema_off"] + g["schema_size"]
    g["slots_size"] = slot_count * slot_size
    g["total_size"] = g["slots_off"] + g["slots_size"]
    g.update(over)
    sb = struct.pack("<QIHHIIQQQIIII", MAGIC, state, major, 0, fingerprint,
                     flags, incompat, 0, g["total_size"], slot_count,
                     slot_size, np_, nr)
    sb += struct.pack("<8Q", g["control_off"], g["control_size"],
                      g["participants_off"], g["participants_size"],
                      g["schema_off"], g["schema_size"], g["slots_off"],
                      g["slots_size"])
    sb += struct.pack("<QQIIIIQ", seq_base, 0, schema_len, 0, 0, 0, 0)
    sb += b"\0" * 88
    sb += name.ljust(64, b"\0")[:64] + msg_type.ljust(192, b"\0")[:192]
    return sb.rstrip(b"\0"), g["total_size"]


# --- fuzz_attach ------------------------------------------------------------------
M_OVERLAY, M_READY, M_USE, M_SELF = 1, 2, 4, 8


def raw(mode, size, sb):
    return u8(mode) + u32(size) + sb


def overlay(mode, g0, g1, base, ops=b""):
    return u8(mode | M_OVERLAY) + u8(g0) + u8(g1) + u64(base) + ops


def op_patch(off, data):
    return u8(0) + u16(off) + u8(len(data)) + data


def op_add(off, width, delta):
    return u8(1) + u16(off) + u8(1 if width == 8 else 0) + u16(delta)


def op_patch_any(off, data):
    return u8(2) + u32(off) + u8(len(data)) + data


def op_resize(size):
    return u8(3) + u32(size)


def attach_seeds():
    t = "fuzz_attach"
    sb, size = superblock()
    write(t, "raw-valid-use", raw(M_SELF | M_USE, 0, sb))
    write(t, "raw-valid-exact", raw(M_USE, size, sb))
    write(t, "raw-size-mismatch", raw(0, size + PAGE, sb))
    write(t, "raw-short", raw(0, 100, sb[:100]))
    write(t, "raw-not-ready", raw(M_SELF, 0, superblock(state=0)[0]))
    write(t, "raw-force-ready", raw(M_SELF | M_READY, 0,
                                    superblock(state=0)[0]))
    write(t, "raw-bad-magic", raw(M_SELF, 0, b"\0" * 8 + sb[8:]))
    write(t, "raw-major-2", raw(M_SELF, 0, superblock(major=2)[0]))
    write(t, "raw-minor-9", raw(M_SELF | M_USE, 0,
                                sb[:0xE] + u16(9) + sb[0x10:]))
    write(t, "raw-fingerprint", raw(M_SELF, 0,
                                    superblock(fingerprint=0x88101010)[0]))
    write(t, "raw-incompat", raw(M_SELF, 0, superblock(incompat=1 << 5)[0]))
    write(t, "raw-slot-count-3", raw(M_SELF, 0, superblock(slot_count=3)[0]))
    write(t, "raw-slot-size-100", raw(M_SELF, 0, superblock(slot_size=100)[0]))
    write(t, "raw-sp-two", raw(M_SELF, 0, superblock(np_=2, flags=1)[0]))
    write(t, "raw-overlap", raw(M_SELF, 0, superblock(
        participants_off=PAGE)[0]))
    write(t, "raw-slots-past-end", raw(M_SELF, 0, superblock(
        slots_size=1 << 40)[0]))
    write(t, "raw-offset-wrap", raw(M_SELF, 0, superblock(
        schema_off=(1 << 64) - PAGE, schema_size=2 * PAGE)[0]))
    write(t, "raw-schema-len", raw(M_SELF, 0, superblock(schema_len=5,
                                                         schema_size=0)[0]))
    name = raw(M_SELF, 0, superblock(name=b"N" * 64)[0])
    write(t, "raw-name-no-nul", name)
    # A ring with a gap and a big schema region, valid, then used.
    sb2, _ = superblock(slot_count=4, slot_size=256, np_=2, nr=2,
                        schema_len=10, msg_type=b"pbring.demo.v1.DeviceEvent")
    write(t, "raw-typed-use", raw(M_SELF | M_USE, 0, sb2))
    # Overlay mode: a valid ring, edited.
    write(t, "ovl-valid-use", overlay(M_USE, 0x09, 0x09, 0))
    write(t, "ovl-typed-wrap-use", overlay(M_USE, 0x01, 0x80 | 0x40,
                                           (1 << 64) - 3))
    write(t, "ovl-slot-count", overlay(0, 0x01, 0x00, 0,
                                       op_add(0x30, 4, 1)))
    write(t, "ovl-slot-size", overlay(0, 0x08, 0x00, 0, op_add(0x34, 4, 64)))
    write(t, "ovl-slots-off", overlay(M_USE, 0x00, 0x00, 0,
                                      op_add(0x70, 8, PAGE)))
    write(t, "ovl-total-grow", overlay(M_USE, 0x00, 0x00, 0,
                                       op_add(0x28, 8, PAGE) +
                                       op_resize(12544 + PAGE)))
    write(t, "ovl-participants", overlay(0, 0x00, 0x3F, 0,
                                         op_add(0x58, 8, -128)))
    write(t, "ovl-readers-1024", overlay(0, 0x00, 0x00, 0,
                                         op_patch(0x3C, u32(1024))))
    write(t, "ovl-not-ready", overlay(0, 0x00, 0x00, 0,
                                      op_patch(0x8, u32(0))))
    write(t, "ovl-truncated", overlay(0, 0x00, 0x00, 0, op_resize(PAGE)))
    write(t, "ovl-garbage-entries-use", overlay(
        M_USE, 0x00, 0x09, 5,
        op_patch_any(2 * PAGE, u32(1) + u32(0) + u64(6 << 2 | 2)) +
        op_patch_any(2 * PAGE + 2 * 128, u64(99) + u32(1) + u32(1)) +
        op_patch_any(12288, u64(5 << 2 | 3))))


# --- fuzz_reader ---------------------------------------------------------------
def r_commit(slot, kind, delta, raw_=None):
    b = u8(0) + u8(slot) + u8(kind) + u8(delta)
    return b + (u64(raw_) if kind % 5 == 4 else b"")


def r_length(slot, kind, v):
    return u8(1) + u8(slot) + u8(kind) + u32(v)


def r_pflags(slot, v):
    return u8(2) + u8(slot) + u32(v)


def r_crc(slot, right, v=0):
    return u8(3) + u8(slot) + (u8(1) if right else u8(0) + u32(v))


def r_payload(slot, off, data):
    return u8(4) + u8(slot) + u8(off) + u8(len(data)) + data


def r_msg(delta, data):
    return u8(5) + u8(delta) + u8(len(data)) + data


def r_step(lossy=0, hold=0, batch=1):
    return u8(6) + u8(lossy | hold << 1 | (batch - 1) << 2)


def r_claim(delta):
    return u8(7) + u8(delta)


def reader_head(geo, base_kind=0, base=0, claim=0):
    b = u8(geo) + u8(base_kind)
    if base_kind == 1 or base_kind == 2:
        b += u8(base)
    elif base_kind == 3:
        b += u64(base)
    return b + u8(claim)


def events(n, blob=b"\x01\x02"):
    return [device_event(b"dev-%d" % i, i, i + 1, 1000 + i, blob * (i + 1))
            for i in range(n)]


def reader_seeds():
    t = "fuzz_reader"
    ev = events(4)
    msgs = b"".join(r_msg(i, e) for i, e in enumerate(ev))
    steps = r_step() + r_step(1) + r_step(0, 0, 4) + r_step(1, 0, 4)
    write(t, "empty", reader_head(0x01))
    write(t, "four-messages", reader_head(0x01) + msgs + r_claim(4) + steps)
    write(t, "batch-held", reader_head(0x01) + msgs + r_step(0, 1, 4) +
          r_step(1, 1, 3) + r_commit(1, 1, 5) + r_step(0) + r_step(1))
    write(t, "wrap-2p64", reader_head(0x00, 1, 3, 1) + r_msg(0, ev[0]) +
          r_msg(1, ev[1]) + r_msg(2, ev[2]) + steps + steps)
    write(t, "wrap-2p62", reader_head(0x02, 2, 2, 0) + msgs + steps)
    write(t, "base-raw", reader_head(0x05, 3, 0x7FFFFFFFFFFFFFFE, 2) + msgs +
          steps)
    write(t, "length-over-cap", reader_head(0x01) + r_msg(0, ev[0]) +
          r_length(0, 2, 7) + r_step() + r_step(1))
    write(t, "length-huge", reader_head(0x01) + r_msg(0, ev[0]) +
          r_length(0, 0, 0xFFFFFFFF) + r_step() + r_step(1))
    write(t, "abandoned-busy-skip", reader_head(0x01) +
          r_commit(0, 2, 0) + r_commit(1, 3, 1) + r_msg(2, ev[2]) +
          r_pflags(2, 0x2 << 16) + r_claim(3) + steps)
    write(t, "crc-mismatch", reader_head(0x41) + r_msg(0, ev[0]) +
          r_crc(0, False, 0xDEAD) + r_step() + r_step(1))
    write(t, "lapped-lossy", reader_head(0x00, 0, 0, 0) + r_msg(2, ev[0]) +
          r_claim(3) + r_step(1) + r_step(1) + r_step(0))
    write(t, "latest-backlog", reader_head(0x30, 0, 0, 6) + msgs +
          r_commit(0, 1, 0) + steps)
    write(t, "raw-commit-garbage", reader_head(0x03) +
          r_commit(0, 4, 0, 0xFFFFFFFFFFFFFFFF) +
          r_commit(1, 4, 0, 0x5) + r_payload(0, 10, b"\xff" * 20) + steps)
    write(t, "sp-blob-varint", reader_head(0x08) +
          r_msg(0, fld(5, 0, 7)) + r_msg(1, fld(5, 2, b"x" * 40)) + steps)


# --- fuzz_decode -----------------------------------------------------------------
# Table order in fuzz_decode.c.
T_EVENT, T_ACK, T_NESTED, T_ALL, T_MAP1, T_MAP2, T_HOLDER, T_PTR, T_OUTER = \
    range(9)
F_NOVERIFY, F_CRC_OK, F_CRC_BAD, F_SHORT = 1, 2, 4, 8


def decode_seeds():
    t = "fuzz_decode"

    def w(name, typ, flags, payload):
        write(t, name, u8(typ) + u8(flags) + payload)

    ev = device_event(b"sensor-42", -3 & 0xFFFFFFFFFFFFFFFF, 7, 123456789,
                      b"\x00\x01\x02\x03" * 8)
    w("event", T_EVENT, 0, ev)
    w("event-crc", T_EVENT, F_CRC_OK, ev)
    w("event-bad-crc", T_EVENT, F_CRC_BAD, ev)
    w("event-bad-crc-noverify", T_EVENT, F_CRC_BAD | F_NOVERIFY, ev)
    w("event-short-scratch", T_EVENT, F_SHORT, ev)
    w("event-truncated", T_EVENT, 0, ev[:-5])
    w("event-blob-varint", T_EVENT, 0, fld(5, 0, 9))
    w("event-blob-fixed64", T_EVENT, 0, fld(5, 1, u64(9)))
    w("event-blob-twice", T_EVENT, 0, fld(5, 2, b"a") + fld(5, 2, b"bcd"))
    w("event-id-too-long", T_EVENT, 0, fld(1, 2, b"i" * 65))
    w("event-unknown-group", T_EVENT, 0, fld(9, 3, b"") + fld(9, 4, b""))
    w("empty", T_EVENT, 0, b"")
    w("ack", T_ACK, F_CRC_OK, fld(1, 2, b"dev-1") + fld(2, 0, 1))
    w("nested", T_NESTED, 0, fld(1, 0, 5) + fld(2, 2, b"label"))
    at = protoc_encode("pbring.test.v1.AllTypes", "alltypes.txtpb")
    atu = protoc_encode("pbring.test.v1.AllTypes", "alltypes_unpacked.txtpb")
    w("alltypes", T_ALL, 0, at)
    w("alltypes-crc", T_ALL, F_CRC_OK, at)
    w("alltypes-unpacked", T_ALL, 0, atu)
    w("alltypes-truncated", T_ALL, 0, at[: len(at) // 2])
    w("alltypes-too-many", T_ALL, 0, b"".join(fld(18, 0, i) for i in range(5)))
    w("alltypes-packed-overrun", T_ALL, 0, varint(18 << 3 | 2) + varint(100) +
      b"\x01\x02")
    w("map1", T_MAP1, 0, fld(1, 2, b"key") + fld(2, 0, 3))
    w("map2", T_MAP2, 0, fld(1, 0, 3) + fld(2, 2, fld(1, 0, 1)))
    w("holder", T_HOLDER, 0, fld(1, 0, 1))
    w("pointer-refused", T_PTR, 0, fld(1, 2, b"text"))
    w("outer-refused", T_OUTER, 0, fld(1, 2, fld(1, 0, 1)))
    w("varint-overlong", T_NESTED, 0, b"\x08" + b"\xff" * 11)
    w("deep-nesting", T_ALL, 0, varint(17 << 3 | 2) + varint(3) +
      varint(17 << 3 | 2) + b"\x00")


# --- fuzz_shm_adversarial ------------------------------------------------------
def adv_seeds():
    t = "fuzz_shm_adversarial"
    ev = events(3)

    def msg(delta, data):
        return u8(0) + u8(delta) + u8(len(data)) + data

    arm = u8(2)
    step = lambda ctl: u8(3) + u8(ctl)  # noqa: E731
    prod = lambda n: u8(4) + u8(n)  # noqa: E731
    head = u8(0x01) + u8(0)
    msgs = b"".join(msg(i, e) for i, e in enumerate(ev))
    write(t, "plain", head + msgs + step(0) + step(1) + step(12) + prod(8) +
          u8(5))
    # Armed, every load sees the real value (selector 0).
    write(t, "armed-honest", head + msgs + arm + b"\0" * 64 + step(0) +
          b"\0" * 64 + step(13) + b"\0" * 64)
    # Armed, loads return fresh values: commit words, lengths, flags.
    fresh = b"".join(u8(1) + u64(0x1 | (i << 2)) for i in range(6))
    write(t, "armed-fresh", head + msgs + arm + step(4) + fresh +
          u8(2) + u8(0x40) + u8(3) + u8(0x44) + step(1) + fresh)
    write(t, "armed-producer", u8(0x08) + u8(1) + u8(2) + arm + prod(9) +
          b"\x02\x01\x03\x02" * 8 + u8(5) + b"\x01" * 32)
    write(t, "armed-reopen", head + msgs + arm + u8(6) + u8(3) +
          b"\x03\x07" * 16 + step(0) + u8(7) + u8(2))


def main():
    attach_seeds()
    reader_seeds()
    decode_seeds()
    adv_seeds()
    total = 0
    for dp, _, files in os.walk(os.path.join(HERE, "corpus")):
        total += sum(os.path.getsize(os.path.join(dp, f)) for f in files)
    print("corpus: %d bytes" % total, file=sys.stderr)


if __name__ == "__main__":
    main()
