# SPDX-License-Identifier: MIT
"""torture's Python child: a producer, gating reader or lossy reader of the
SIGKILL torture (tests/crash/torture.c), through the pbring Python package.

    PYTHON torture_child.py --child ROLE INDEX INCARNATION --ring R --dir D
        --producers P --witnesses W --rate R --seed S [--inject X]

It follows the child contract at the top of tests/crash/torture.h exactly
as the C child (torture_roles.c, torture_msg.c) does: the same files in D,
the same struct tt_shared offsets, the same messages byte for byte (raw
ones) or field for field (DeviceEvents), the same exit codes. The driver
sets PBRING_LIBRARY to a crash-point build of libpbring when it arms
Python children (PBR_CRASH_AT then fires inside the C calls); the named
points "write" and "encoded" lie in C functions Python does not call, so
the driver never arms them here.
"""
from __future__ import annotations

import ctypes
import mmap
import os
import random
import struct
import sys
import time

import pbring
from pbring import _lib
from google.protobuf.message import DecodeError

# --- the contract (torture.h) ----------------------------------------------

TT_MAX_PROD = 16
TT_MAX_GATING = 8
TT_MAX_LOSSY = 8
TT_HIST = 4096
TT_MARK = 1 << 63

EX_OK, EX_SETUP, EX_SEND, EX_STUCK, EX_RELEASE, EX_PEEK = 0, 2, 3, 4, 5, 6

# struct tt_shared, in 8-byte words (torture.h: TT_OFF_*)
W_HIST_N = 1                    # byte 8
W_HIST_NS = 2                   # byte 16
W_GATING = W_HIST_NS + TT_HIST  # byte 32784
STATS_WORDS = 10                # struct tt_reader_stats: 80 bytes
W_LOSSY = W_GATING + TT_MAX_GATING * STATS_WORDS     # byte 33424
W_MISSED_GATING = W_LOSSY + TT_MAX_LOSSY * STATS_WORDS  # byte 34064
W_MISSED_LOSSY = W_MISSED_GATING + TT_MAX_GATING     # byte 34128
SHARED_MIN = W_LOSSY * 8 + TT_MAX_LOSSY * STATS_WORDS * 8  # 34064
# fields of struct tt_reader_stats, in words
S_DELIVERED, S_TORN, S_DUP, S_STALE, S_LOST, S_ABANDONED, S_LAST_NS, \
    S_AHEAD = range(8)

OP_TIMEOUT = 10.0      # s: longer than any honest wait
PEEK_TIMEOUT = 0.050   # s
MAX_COMPLAINTS = 5
INJECT_EVERY = 97

# --- messages (torture_msg.c) -----------------------------------------------

M64 = (1 << 64) - 1
M40 = (1 << 40) - 1
RAW_MAGIC = 0x4B4C5454  # "TTLK"
RAW_HDR = 24
RAW_CRC_OFF = 20
BLOB_MAX = 120
SENT_XOR = 0x5DEECE66D
_HDR = struct.Struct("<IIQI")   # magic, who, counter, len (crc follows)
_REC = struct.Struct("<IQ")     # stream record: who, counter
_U64 = struct.Struct("<Q")

# tu_pattern(who, c, i): i * 0x165667B1 never exceeds 64 bits for i < 2^32
_IK = [i * 0x165667B1 for i in range(1024)]


def _ik(n: int) -> list:
    global _IK
    if n > len(_IK):
        _IK = [i * 0x165667B1 for i in range(n)]
    return _IK[:n]


def pattern(who: int, c: int, n: int) -> bytes:
    """tu_pattern(who, c, i) for i < n (tests/testutil.c). Only bits 0..39
    of the product matter to the byte returned, so they are all we keep."""
    base = ((who * 0x9E3779B97F4A7C15) ^ (c * 0xC2B2AE3D27D4EB4F)) & M64
    ys = [base ^ t for t in _ik(n)]
    zs = [((y ^ (y >> 29)) * 0xBF58476D1CE4E5B9) & M40 for y in ys]
    return bytes([(z ^ (z >> 32)) & 0xFF for z in zs])


def mix(who: int, c: int) -> int:
    x = ((((who + 1) & 0xFFFFFFFF) * 0x9E3779B97F4A7C15) ^
         (c * 0xFF51AFD7ED558CCD)) & M64
    x ^= x >> 31
    return (x * 0xBF58476D1CE4E5B9) & M64


def is_pb(c: int) -> bool:
    return c % 3 == 0


def raw_len(cap: int, who: int, c: int) -> int:
    return RAW_HDR + mix(who, c) % (cap - RAW_HDR + 1)


def blob_len(cap: int, who: int, c: int) -> int:
    mx = BLOB_MAX if cap > BLOB_MAX + 80 else cap // 4
    return 1 + mix(who, c) % mx


def raw_crc(b: bytes) -> int:
    return pbring.crc32c(b[RAW_HDR:], pbring.crc32c(b[:RAW_CRC_OFF]))


def raw_message(cap: int, who: int, c: int, corrupt: bool) -> bytes:
    n = raw_len(cap, who, c)
    b = bytearray(_HDR.pack(RAW_MAGIC, who, c, n))
    b += b"\0\0\0\0"
    b += pattern(who, c, n - RAW_HDR)
    struct.pack_into("<I", b, RAW_CRC_OFF, raw_crc(b))
    if corrupt:
        b[n - 1] ^= 0x10
    return bytes(b)


def event_message(cap: int, who: int, c: int, corrupt: bool):
    blob = bytearray(pattern(who, c, blob_len(cap, who, c)))
    if corrupt:  # the library's CRC then covers the wrong bytes
        blob[-1] ^= 0x10
    return pbring.DeviceEvent(id="t%d" % who, status=who, seq=c,
                              sent_ns=c ^ SENT_XOR, blob=bytes(blob))


def verify_raw(b: bytes, nprod: int):
    if len(b) < RAW_HDR:
        return None
    magic, who, c, n = _HDR.unpack_from(b)
    crc, = struct.unpack_from("<I", b, RAW_CRC_OFF)
    if (magic != RAW_MAGIC or who >= nprod or n != len(b) or is_pb(c) or
            crc != raw_crc(b)):
        return None
    # The CRC could be a coincidence; the pattern cannot.
    if b[RAW_HDR:] != pattern(who, c, n - RAW_HDR):
        return None
    return who, c


def verify_event(b: bytes, cap: int, nprod: int, crc: int):
    if pbring.crc32c(b) != crc:
        return None
    try:
        ev = pbring.DeviceEvent.FromString(b)
    except DecodeError:
        return None
    who, c = ev.status, ev.seq
    if who < 0 or who >= nprod:
        return None
    if (ev.id != "t%d" % who or not is_pb(c) or ev.sent_ns != c ^ SENT_XOR
            or len(ev.blob) != blob_len(cap, who, c)):
        return None
    if ev.blob != pattern(who, c, len(ev.blob)):
        return None
    return who, c


def verify(b: bytes, flags: int, crc: int, cap: int, nprod: int):
    """(who, counter) of an intact message, else None (torn)."""
    if flags & _lib.PBR_SLOT_F_CRC:  # only DeviceEvents carry the CRC flag
        return verify_event(b, cap, nprod, crc)
    return verify_raw(b, nprod)


# --- the shared page ---------------------------------------------------------

class Shared:
    def __init__(self, d: str) -> None:
        fd = os.open(os.path.join(d, "shared"), os.O_RDWR | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            if size < SHARED_MIN:
                raise OSError(f"shared page is {size} bytes, want >= "
                              f"{SHARED_MIN}")
            self.mm = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self.q = memoryview(self.mm).cast("Q")
        self.w = memoryview(self.mm).cast("I")
        self.has_missed = size >= (W_MISSED_LOSSY + TT_MAX_LOSSY) * 8

    def stop(self) -> bool:
        return self.w[0] != 0

    def drain(self) -> bool:
        return self.w[1] != 0


# --- producers -----------------------------------------------------------------

def log_resume(d: str, who: int):
    """Open producer @who's log; the counter to use next, past the one a
    dead predecessor may have had in flight (torture_roles.c)."""
    fd = os.open(os.path.join(d, "prod-%d.log" % who),
                 os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    end = os.lseek(fd, 0, os.SEEK_END) // 8 * 8
    nxt = 0
    if end > 0:
        rec = os.pread(fd, 8, end - 8)
        if len(rec) == 8:
            r, = _U64.unpack(rec)
            nxt = (r & ~TT_MARK) + 1 if r & TT_MARK else r + 2
    os.write(fd, _U64.pack(TT_MARK | nxt))
    return fd, nxt


def producer_main(a, sh: Shared) -> int:
    try:
        ring = pbring.Ring.attach(a.ring)
    except pbring.PbringError as e:
        print(f"torture py child: attach {a.ring}: {e}", file=sys.stderr)
        return EX_SETUP
    try:
        log, c = log_resume(a.dir, a.index)
    except OSError:
        return EX_SETUP
    p = None
    for _ in range(100):  # EBUSY only while a prober holds an entry lock
        try:
            p = ring.producer(timeout=OP_TIMEOUT, crc=False)
            break
        except pbring.Busy:
            time.sleep(0.01)
        except pbring.PbringError as e:
            print(f"torture py producer: open: {e}", file=sys.stderr)
            return EX_SETUP
    if p is None:
        return EX_SETUP
    cap = ring.info.payload_cap
    who, rate, inj = a.index, a.rate, a.inject

    def send(c: int, corrupt: bool) -> None:
        if is_pb(c):
            p.crc = True
            p.send(event_message(cap, who, c, corrupt))
        else:
            p.crc = False
            p.send_bytes(raw_message(cap, who, c, corrupt))

    while not sh.stop():
        try:
            if inj and c % INJECT_EVERY == INJECT_EVERY // 2:
                if inj == "dup":
                    send(c, False)
                    send(c, False)
                elif inj == "torn":
                    send(c, True)
                # "lost": logged as committed, never sent
            else:
                send(c, False)
        except pbring.RingFull as e:
            print(f"torture py producer {who}: send {c}: {e}",
                  file=sys.stderr)
            return EX_STUCK
        except pbring.PbringError as e:
            print(f"torture py producer {who}: send {c}: {e}",
                  file=sys.stderr)
            return EX_SEND
        # Logged before the next reserve: a kill from here on leaves
        # nothing in flight.
        if os.write(log, _U64.pack(c)) != 8:
            return EX_SETUP
        if rate and (c + 1) % rate == 0:
            time.sleep(0.001)
        c += 1
    os.close(log)
    try:
        p.close()
    except pbring.PbringError:
        return EX_SEND
    ring.close()
    return EX_OK


# --- readers -------------------------------------------------------------------

class _RStats(ctypes.Structure):
    # struct pbr_reader_stats, with room to spare: older bindings declare
    # fewer fields than the library fills.
    _fields_ = [("cursor", ctypes.c_uint64), ("delivered", ctypes.c_uint64),
                ("lost", ctypes.c_uint64), ("abandoned", ctypes.c_uint64),
                ("bad", ctypes.c_uint64), ("missed", ctypes.c_uint64),
                ("spare", ctypes.c_uint64 * 10)]


class ReaderChild:
    def __init__(self, a, sh: Shared, lossy: bool) -> None:
        self.a = a
        self.sh = sh
        self.lossy = lossy
        self.index = a.index
        self.witness = not lossy and a.index < a.witnesses
        self.hist = not lossy and a.index == 0
        base = W_LOSSY if lossy else W_GATING
        self.st = base + a.index * STATS_WORDS
        self.missed_w = ((W_MISSED_LOSSY if lossy else W_MISSED_GATING) +
                         a.index if sh.has_missed else -1)
        # Slow readers make producers wait (gating) or get lapped (lossy);
        # witnesses do not pause, so their delivery times measure resume.
        self.pause_odds = 16 if lossy else (64 if a.index >= a.witnesses
                                            else 0)
        self.rng = random.Random(a.seed ^ (a.index * 7919) ^ os.getpid())
        self.complaints = 0
        self.lost = self.abandoned = self.missed = 0
        self.last = {}
        self.stream = None
        self.sbuf = bytearray()
        self.rs = _RStats()
        self.rs_p = ctypes.byref(self.rs)
        f = _lib.lib["pbr_reader_stats"]  # a function object of our own
        f.restype = None
        f.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self._stats_fn = f

    def add(self, field: int, n: int = 1) -> None:
        # One writer per stats block at a time: a plain 8-byte store.
        q = self.sh.q
        q[self.st + field] = (q[self.st + field] + n) & M64

    def complain(self, what: str, seq: int, length: int, flags: int) -> None:
        self.complaints += 1
        if self.complaints > MAX_COMPLAINTS:
            return
        print(f"torture py {'lossy' if self.lossy else 'gating'} reader "
              f"{self.index}: {what} at seq {seq} (len {length}, flags "
              f"0x{flags:x})", file=sys.stderr)

    def stats(self) -> _RStats:
        self._stats_fn(self.rd._hc, self.rs_p)
        return self.rs

    def sync_stats(self) -> None:
        rs = self.stats()
        if rs.lost != self.lost:
            if self.witness:
                print(f"torture py witness {self.index}: the library "
                      f"skipped {rs.lost - self.lost} sequences before "
                      f"{rs.cursor}", file=sys.stderr)
            self.add(S_LOST, rs.lost - self.lost)
            self.lost = rs.lost
        if rs.abandoned != self.abandoned:
            self.add(S_ABANDONED, rs.abandoned - self.abandoned)
            self.abandoned = rs.abandoned
        if rs.missed != self.missed and self.missed_w >= 0:
            q = self.sh.q
            q[self.missed_w] = (q[self.missed_w] + rs.missed -
                                self.missed) & M64
        self.missed = rs.missed

    def note_time(self) -> None:
        now = time.monotonic_ns()
        q = self.sh.q
        q[self.st + S_LAST_NS] = now
        if self.hist:
            n = q[W_HIST_N]
            q[W_HIST_NS + n % TT_HIST] = now
            q[W_HIST_N] = n + 1

    def record(self, who: int, c: int) -> bool:
        """False if the counter did not go up (a duplicate)."""
        prev = self.last.get(who)
        ok = prev is None or c > prev
        if not ok:
            self.add(S_DUP)
        self.last[who] = c
        self.add(S_DELIVERED)
        self.note_time()
        if self.stream is not None:
            self.sbuf += _REC.pack(who, c)
            if len(self.sbuf) >= 1 << 16:
                self.flush()
        return ok

    def flush(self) -> None:
        if self.stream is not None and self.sbuf:
            b = memoryview(self.sbuf)
            while b:
                n = os.write(self.stream, b)
                b = b[n:]
            del b
            self.sbuf.clear()

    def caught_up(self) -> bool:
        """Everything published is read and no producer is left; records
        a cursor past the claim word for the driver."""
        self.flush()  # the stream must survive a kill at the end
        if not self.sh.drain():
            return False
        cursor = self.stats().cursor
        claimed = self.ring.stats().claimed
        d = (claimed - cursor) & M64
        if d >= 1 << 63:  # cursor past the claim word
            self.sh.q[self.st + S_AHEAD] = (cursor - claimed) & M64
            return True
        return d == 0

    def open(self, incarnation: int) -> int:
        a = self.a
        try:
            self.ring = pbring.Ring.attach(a.ring)
        except pbring.PbringError as e:
            print(f"torture py child: attach {a.ring}: {e}", file=sys.stderr)
            return EX_SETUP
        for _ in range(100):
            try:
                self.rd = self.ring.reader(lossy=self.lossy, start="oldest",
                                           timeout=PEEK_TIMEOUT)
                break
            except pbring.Busy:
                time.sleep(0.01)
            except pbring.PbringError as e:
                print(f"torture py reader: open: {e}", file=sys.stderr)
                return EX_SETUP
        else:
            return EX_SETUP
        self.cap = self.ring.info.payload_cap
        # Only a first incarnation saw everything from the start.
        if not self.lossy and incarnation == 0:
            try:
                self.stream = os.open(
                    os.path.join(a.dir, "gating-%d.bin" % self.index),
                    os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                    0o600)
            except OSError:
                return EX_SETUP
        return EX_OK

    def run(self) -> int:
        rd = self.rd
        nprod = self.a.producers
        cap = self.cap
        rng = self.rng
        while True:
            # peek() takes a batch from C and hands it out one at a time;
            # each message is released on its own, so that -ESTALE names
            # the one overwritten.
            try:
                v = rd.peek()
            except pbring.RingEmpty:
                self.sync_stats()
                if self.caught_up():
                    return EX_OK
                continue
            except pbring.Corrupt as e:
                self.sync_stats()
                self.add(S_TORN)
                self.complain("corrupt slot header (EBADMSG)",
                              getattr(e, "seq", None), 0, 0)
                continue
            except pbring.PbringError as e:
                print(f"torture py reader {self.index}: peek: {e}",
                      file=sys.stderr)
                return EX_PEEK
            info = rd.last
            data = bytes(v)  # copy, release, and only then check
            del v
            try:
                rd.release()
            except pbring.Stale:
                self.sync_stats()
                self.add(S_STALE)
                continue
            except pbring.PbringError as e:
                print(f"torture py reader {self.index}: release: {e}",
                      file=sys.stderr)
                return EX_RELEASE
            self.sync_stats()
            r = verify(data, info.flags, info.crc32c, cap, nprod)
            if r is None:
                self.add(S_TORN)
                self.complain("torn or foreign message", info.seq,
                              info.length, info.flags)
            elif not self.record(*r):
                self.complain("counter did not go up", info.seq,
                              info.length, info.flags)
            if self.pause_odds and rng.randrange(self.pause_odds) == 0:
                time.sleep(rng.randrange(2000) / 1e6)

    def close(self) -> int:
        rc = EX_OK
        try:
            self.flush()
            if self.stream is not None:
                os.close(self.stream)
        except OSError:
            rc = EX_SETUP
        self.ring.close()
        return rc


def reader_main(a, sh: Shared, lossy: bool) -> int:
    x = ReaderChild(a, sh, lossy)
    rc = x.open(a.incarnation)
    if rc:
        return rc
    rc = x.run()
    rc2 = x.close()
    return rc or rc2


# --- main ----------------------------------------------------------------------

class Args:
    ring = dir = inject = None
    producers = witnesses = rate = seed = 0
    role = None
    index = incarnation = 0


def parse(argv) -> Args:
    """The contract's argv: options in any order (the C child uses
    getopt_long, which permutes), INDEX and INCARNATION positional."""
    a = Args()
    pos = []
    it = iter(argv)
    for s in it:
        if s.startswith("--"):
            name = s[2:]
            val = None
            if "=" in name:
                name, val = name.split("=", 1)
            if val is None:
                val = next(it)
            if name == "child":
                a.role = val
            elif name in ("ring", "dir", "inject"):
                setattr(a, name, val)
            elif name in ("producers", "witnesses", "rate", "seed"):
                setattr(a, name, int(val, 0))
            # other driver options are not meant for children: ignored
        else:
            pos.append(s)
    if a.role not in ("producer", "gating", "lossy") or len(pos) != 2 or \
            not a.ring or not a.dir:
        raise SystemExit(f"usage: torture_child.py --child "
                         f"producer|gating|lossy INDEX INCARNATION --ring R "
                         f"--dir D --producers P --witnesses W --rate R "
                         f"--seed S [--inject X] (got {argv})")
    a.index, a.incarnation = int(pos[0]), int(pos[1])
    if a.inject not in (None, "lost", "dup", "torn"):
        raise SystemExit(f"torture_child.py: --inject {a.inject}?")
    lim = {"producer": TT_MAX_PROD, "gating": TT_MAX_GATING,
           "lossy": TT_MAX_LOSSY}[a.role]
    if not 0 <= a.index < lim or not 0 < a.producers <= TT_MAX_PROD:
        raise SystemExit("torture_child.py: index or producers out of range")
    return a


def main(argv) -> int:
    a = parse(argv)
    try:
        sh = Shared(a.dir)
    except OSError as e:
        print(f"torture py child: shared page: {e}", file=sys.stderr)
        return EX_SETUP
    if a.role == "producer":
        return producer_main(a, sh)
    return reader_main(a, sh, a.role == "lossy")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
