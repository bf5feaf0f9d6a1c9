# SPDX-License-Identifier: MIT
"""``python -m pbring produce|consume|schema``: the C ``pbring`` command's
produce, consume and schema, in Python, with the same flags, output and
exit status (docs/CLI.md).

Exit status 0 is success, 1 a runtime error, 2 a usage error, always with
one line on stderr: ``pbring: RING: reason`` (runtime) or ``pbring CMD:
reason (see 'pbring CMD --help')`` (usage).
"""
from __future__ import annotations

import argparse
import errno
import json
import math
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from google.protobuf import descriptor_pb2, json_format
from google.protobuf.message import Message

from . import demo, schema
from .errors import Corrupt, PbringError, RingEmpty, Stale, strerror
from .producer import Producer
from .prototext import proto_text
from .reader import CRC_MISMATCH, Reader
from .ring import Ring

EXIT_RUNTIME = 1
EXIT_USAGE = 2
IDS = 4096  # producer ids tracked for continuity, as the C command

PRODUCE_HELP = """\
usage: pbring produce RING --from-json FILE|- [--timeout SEC] [--no-wait]
       pbring produce RING [options]
Send messages of the ring's type from proto3 JSON, one object per line
(blank lines skipped; '-' is stdin), in order, each with its CRC32C and
timestamp; a line that does not parse stops it (exit 1), every line
before it sent. Without --from-json: send pbring.demo.v1.DeviceEvent
messages to a demo ring.
  --from-json FILE the JSON lines to send (any typed ring)
  --count N        messages per producer (default: until interrupted)
  --rate HZ        total messages per second (default: as fast as possible)
  --size BYTES     blob bytes per message (default 0)
  --producers K    producer threads, each with its own id and seq (default 1)
  --timeout SEC    give up when the ring stays full this long (default 10)
  --no-wait        start at once, even if no gating reader is attached
                   (by default it waits up to --timeout for one, so that
                   nothing is sent into a ring that nobody reads)
  --raw            skip the message type check (for untyped rings)
"""

CONSUME_HELP = """\
usage: pbring consume RING [options]
Receive messages, check and summarise them. Demo rings: each
pbring.demo.v1.DeviceEvent is checked and printed as text (or --json).
Other typed rings: each message is decoded with the ring's schema and
printed as one line of proto3 JSON.
  --count N            stop after N messages (default: until interrupted)
  --timeout SEC        stop when nothing arrives for SEC seconds
  --from oldest|latest start at the oldest message in the ring (default)
                       or only take messages sent from now on; backlog
                       overwritten before it is read is counted as missed
  --lossy              never hold producers back; count what is lost
  --json               one canonical protobuf JSON object per message on stdout
  --quiet              no per-message output, only the summary
  --raw                no decoding: each payload as a 4-byte little-endian
                       length and its bytes on stdout (any ring; the only
                       way to read an untyped ring)
Exits 1 if it saw a CRC or content error or, as a gating reader of a
demo ring, a gap in any producer's seq; the summary on stderr says what
it saw.
"""

SCHEMA_HELP = """\
usage: pbring schema RING [--descriptor-set FILE|-]
Print the ring's message type and its stored schema as .proto text
(every file of the set, dependencies first, each after a
'// file: NAME' line).
  --descriptor-set FILE  write the stored FileDescriptorSet bytes exactly
                         instead ('-': stdout)
"""

MAIN_HELP = """\
usage: python -m pbring COMMAND [ARGS]
Protobuf messages between processes through a shared-memory ring (Python).

commands:
  produce RING   send messages: JSON lines, or demo DeviceEvents
  consume RING   receive, check and summarise messages (JSON, raw)
  schema RING    show a ring's message type and schema

'python -m pbring COMMAND --help' describes each. Exit status: 0 success,
1 runtime error, 2 usage error. (create, stat, ls, rm and demo are the C
command's.)
"""


class Usage(Exception):
    pass


class _Help(Exception):
    pass


def fail(ring: Optional[str], msg: str) -> int:
    """``pbring: RING: msg`` on stderr; returns EXIT_RUNTIME."""
    sys.stderr.write(f"pbring: {ring}: {msg}\n" if ring else
                     f"pbring: {msg}\n")
    sys.stderr.flush()
    return EXIT_RUNTIME


def usage(cmd: str, msg: str) -> int:
    sys.stderr.write(f"pbring {cmd}: {msg} (see 'pbring {cmd} --help')\n")
    return EXIT_USAGE


class _Options:
    """getopt_long(3) as the C command uses it (optstring ":h", opterr 0):
    long options by full name or unique prefix, ``--opt=value`` or
    ``--opt value``, options and operands in any order, ``--`` ends the
    options. Errors are Usage exceptions with the C command's wording."""

    def __init__(self) -> None:
        self.opts: Dict[str, Tuple[str, Any, Any]] = {}

    def add(self, name: str, parse: Any = None, default: Any = None,
            dest: Optional[str] = None) -> None:
        """A long option; @parse converts its value (None: a flag)."""
        self.opts[name] = (dest or name.replace("-", "_"), parse, default)

    def parse(self, argv: Sequence[str]) -> Tuple[argparse.Namespace,
                                                  List[str]]:
        ns = argparse.Namespace()
        for dest, parse, default in self.opts.values():
            setattr(ns, dest, False if parse is None else default)
        ns.given = []  # the options given, by full name, in order
        operands: List[str] = []
        args = list(argv)
        i = 0
        while i < len(args):
            a = args[i]
            i += 1
            if a == "--":
                operands.extend(args[i:])
                break
            if not a.startswith("-") or a == "-":
                operands.append(a)
                continue
            if a == "-h":
                raise _Help()
            if not a.startswith("--"):
                raise Usage(f"unknown option '{a}'")
            name, eq, value = a[2:].partition("=")
            match = [n for n in self.opts if n == name] or \
                [n for n in self.opts if n.startswith(name)]
            if len(match) != 1 or not name:
                raise Usage(f"unknown option '{a}'")
            dest, parse, _ = self.opts[match[0]]
            if match[0] == "help" and not eq:
                raise _Help()
            ns.given.append(match[0])
            if parse is None:
                if eq:
                    raise Usage(f"unknown option '{a}'")
                setattr(ns, dest, True)
                continue
            if not eq:
                if i >= len(args):
                    raise Usage(f"option '{a}' needs a value")
                value = args[i]
                i += 1
            setattr(ns, dest, parse(value))
        return ns, operands


def _u64(cmd: str, flag: str, what: str, lo: int,
         hi: int) -> Callable[[str], int]:
    def parse(s: str) -> int:
        # As strtoull(s, 0): decimal, 0x hex or 0 octal; the whole string.
        try:
            if not s or s[0] in "-+ \t" or s != s.strip():
                raise ValueError
            if s.lower().startswith("0x"):
                v = int(s[2:], 16)
            elif len(s) > 1 and s[0] == "0":
                v = int(s[1:], 8)
            else:
                v = int(s, 10)
            if not lo <= v <= hi:
                raise ValueError
        except ValueError:
            raise Usage(f"{flag}: '{s}' {what}") from None
        return v
    return parse


def _seconds(flag: str, what: str,
             positive: bool = False) -> Callable[[str], float]:
    def parse(s: str) -> float:
        try:
            v = float(s)
            if not (v >= 0) or v > 1e9 or (positive and v == 0):
                raise ValueError
        except ValueError:
            raise Usage(f"{flag}: '{s}' {what}") from None
        return v
    return parse


def _choice(flag: str, what: str,
            choices: Sequence[str]) -> Callable[[str], str]:
    def parse(s: str) -> str:
        if s not in choices:
            raise Usage(f"{flag}: '{s}' {what}")
        return s
    return parse


def _attach(cmd: str, name: str) -> Tuple[Optional[Ring], int]:
    """The ring, or None and the exit status (after one line on stderr)."""
    try:
        return Ring.attach(name), 0
    except PbringError as e:
        if e.errno == errno.EINVAL:
            return None, usage(cmd, f"invalid ring name '{name}' (use 1-63 "
                                    "of [A-Za-z0-9_.-])")
        major = _ring_major(name) if e.errno == errno.EPROTONOSUPPORT \
            else -1
        if major >= 0:
            return None, fail(name, f"ring made by format {major}.x; this "
                                    "pbring reads format 1.x")
        msg = e.strerror or strerror(e.errno or 0)
        if e.errno == errno.EUCLEAN:
            msg += f"; remove it with 'pbring rm {name}'"
        return None, fail(name, msg)


def _ring_major(name: str) -> int:
    """The major format version of a ring refused for it, or -1."""
    try:
        fd = os.open(f"/dev/shm/pbring.{name}",
                     os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return -1
    try:
        b = os.pread(fd, 2, 0x00C)
    finally:
        os.close(fd)
    return int.from_bytes(b, "little") if len(b) == 2 else -1


def _check_type(name: str, ring: Ring) -> int:
    mt = ring.info.msg_type
    if mt == schema.DEMO_MSG_TYPE:
        return 0
    if not mt:
        return fail(name, f"ring holds raw bytes, not {schema.DEMO_MSG_TYPE}"
                    " (use --raw)")
    return fail(name, f"ring holds {mt}, not {schema.DEMO_MSG_TYPE}")


# ---------------------------------------------------------------- produce


class _ProduceThread(threading.Thread):
    def __init__(self, ring: Ring, k: int, cfg: argparse.Namespace,
                 stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.ring = ring
        self.k = k
        self.cfg = cfg
        self.stop = stop
        self.sent = 0
        self.err: Optional[PbringError] = None
        self.what = "send"

    def run(self) -> None:
        cfg = self.cfg
        try:
            p = Producer(self.ring, timeout=cfg.timeout)
        except PbringError as e:
            self.err = e
            self.what = "open producer"
            return
        msg = schema.DeviceEvent(id=f"{os.getpid()}-{self.k}",
                                 blob=demo.blob_pattern(cfg.size))
        count = cfg.count
        rate = cfg.rate
        stop = self.stop
        send = p.send_bytes
        ser = msg.SerializeToString
        mono = time.monotonic_ns
        start = mono()
        i = 0
        try:
            while not count or i < count:
                if stop.is_set():
                    break
                if rate:
                    due = start + int(i * 1e9 / rate)
                    now = mono()
                    if due > now:
                        time.sleep((due - now) / 1e9)
                msg.seq = i
                msg.status = i % 3
                msg.sent_ns = mono()
                send(ser())
                i += 1
                self.sent = i
        except PbringError as e:
            self.err = e
        finally:
            self.sent = i
            try:
                p.close()
            except PbringError:
                pass


_DEMO_ONLY = ("count", "rate", "size", "producers", "raw")


def _path(flag: str) -> Callable[[str], str]:
    def parse(s: str) -> str:
        if not s:
            raise Usage(f"{flag}: expects a FILE or -")
        return s
    return parse


def _reason(e: BaseException) -> str:
    """One line saying why @e (a JSON parse error, mostly) happened."""
    text = " ".join(str(e).split("\n", 1)[0].split())
    return text or type(e).__name__


def _json_object(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    """A JSON object, refusing a key given twice (as json_format.Parse)."""
    out: Dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k}")
        out[k] = v
    return out


def _json_int(s: str) -> Any:
    # "-0" (Go's and C's negative zero double) as -0.0: as an int it would
    # lose its sign (an integer field takes -0.0 as 0 all the same)
    return -0.0 if s == "-0" else int(s)


def _ring_class(name: str, ring: Ring,
                untyped: str, no_schema: str) -> Tuple[Any, int]:
    """The ring's message class built from its stored schema, or None and
    the exit status (after one line on stderr)."""
    info = ring.info
    if not info.msg_type:
        return None, fail(name, untyped)
    if not info.schema:
        return None, fail(name, f"ring holds {info.msg_type} without its "
                                f"schema{no_schema}")
    try:
        return ring.message_class, 0
    except PbringError as e:
        return None, fail(name, e.strerror or "bad stored schema")


def _produce_json(name: str, ring: Ring, cfg: argparse.Namespace) -> int:
    """produce --from-json: one proto3 JSON object per line, parsed into
    the ring's message type (its stored schema) and sent, in order, with
    CRC32C and timestamp; stops at the first line that does not parse."""
    cls, rc = _ring_class(
        name, ring, "ring is untyped: it has no schema to parse JSON with",
        ": cannot parse JSON")
    if cls is None:
        return rc
    pool = cls.DESCRIPTOR.file.pool
    path = cfg.from_json
    try:
        src: Any = sys.stdin.buffer if path == "-" else open(path, "rb")
    except OSError as e:
        return fail(name, f"{path}: {e.strerror}")
    try:
        if not cfg.no_wait and not ring.wait_gating_reader(cfg.timeout):
            return fail(name, "no gating reader attached (start a consumer "
                              "first, or use --no-wait)")
        try:
            p = Producer(ring, timeout=cfg.timeout)
        except PbringError as e:
            return fail(name, f"open producer: {strerror(e.errno or 0)}")
        try:
            return _send_lines(name, cfg, src, p, cls, pool)
        finally:
            try:
                p.close()
            except PbringError:
                pass
    finally:
        if src is not sys.stdin.buffer:
            src.close()


def _send_lines(name: str, cfg: argparse.Namespace, src: Any, p: Producer,
                cls: Any, pool: Any) -> int:
    # Ctrl-C / SIGTERM stop between lines: the handler interrupts a read
    # that waits for input, never a send.
    reading = [False]

    def handler(sig: int, frame: Any) -> None:
        if reading[0]:
            raise KeyboardInterrupt
        stopped[0] = True

    stopped = [False]
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
    start = time.monotonic()
    sent = lineno = 0
    try:
        while not stopped[0]:
            reading[0] = True
            try:
                line = src.readline()
            except OSError as e:
                return fail(name, f"{cfg.from_json}: {e.strerror}")
            finally:
                reading[0] = False
            if not line:
                break
            lineno += 1
            if not line.strip(b" \t\r\n"):
                continue
            try:
                obj = json.loads(line.decode("utf-8").strip(),
                                 object_pairs_hook=_json_object,
                                 parse_int=_json_int)
                if not isinstance(obj, dict):
                    return fail(name, f"line {lineno}: not a JSON object")
                msg = cls()
                json_format.ParseDict(obj, msg, descriptor_pool=pool)
                data = msg.SerializeToString()
            except UnicodeDecodeError:
                return fail(name, f"line {lineno}: not UTF-8")
            except json.JSONDecodeError as e:
                return fail(name, f"line {lineno}: invalid JSON: {e}")
            except Exception as e:  # ParseError mostly; anything else too
                return fail(name, f"line {lineno}: {_reason(e)}")
            try:
                p.send_bytes(data)
            except PbringError as e:
                if e.errno == errno.EMSGSIZE:
                    return fail(name, f"line {lineno}: a message of "
                                      f"{len(data)} bytes does not fit in a "
                                      "slot")
                if e.errno in (errno.ETIMEDOUT, errno.EAGAIN):
                    return fail(name, "ring stayed full for the timeout (is "
                                      "a gating reader stuck?)")
                return fail(name, f"send: {strerror(e.errno or 0)}")
            sent += 1
    except KeyboardInterrupt:
        pass  # raised only while waiting for a line: nothing half sent
    secs = time.monotonic() - start
    sys.stderr.write(f"produce: {sent} messages from {cfg.from_json} in "
                     f"{secs:.3f} s, {sent / secs if secs > 0 else 0.0:.0f} "
                     "msg/s\n")
    return 0


def _show_progress(threads: List[_ProduceThread], start: float) -> None:
    tty = sys.stderr.isatty()
    last, last_t = 0, start
    for t in threads:
        while tty and t.is_alive():
            t.join(0.25)
            now = time.monotonic()
            total = sum(x.sent for x in threads)
            rate = (total - last) / (now - last_t) if now > last_t else 0.0
            sys.stderr.write(f"\rproduce: {total} sent, {rate:.0f} msg/s   ")
            sys.stderr.flush()
            last, last_t = total, now
        # join in short steps: the main thread must stay able to run the
        # signal handlers
        while t.is_alive():
            t.join(0.25)
    if tty:
        sys.stderr.write("\n")


def cmd_produce(argv: Sequence[str]) -> int:
    ap = _Options()
    ap.add("count", _u64("produce", "--count", "is not a positive number",
                         1, 2**63 - 1), 0)
    ap.add("rate", _seconds("--rate", "is not a positive rate",
                            positive=True), 0.0)
    ap.add("size", _u64("produce", "--size", "is not a size in bytes", 0,
                        1 << 30), 0)
    ap.add("producers", _u64("produce", "--producers", "is not in 1..1024",
                             1, 1024), 1)
    ap.add("timeout", _seconds("--timeout", "is not a number of seconds"),
           10.0)
    ap.add("raw")
    ap.add("no-wait")
    ap.add("from-json", _path("--from-json"), None)
    ap.add("help")
    try:
        cfg, rest = ap.parse(argv)
        if len(rest) != 1:
            raise Usage("expects exactly one RING")
        demo_opt = next((g for g in cfg.given if g in _DEMO_ONLY), None)
        if cfg.from_json is not None and demo_opt:
            raise Usage(f"--from-json and --{demo_opt} exclude each other")
        cfg.ring = rest[0]
    except _Help:
        sys.stdout.write(PRODUCE_HELP)
        return 0
    except Usage as e:
        return usage("produce", str(e))
    name = cfg.ring
    ring, rc = _attach("produce", name)
    if ring is None:
        return rc
    try:
        if cfg.from_json is not None:
            return _produce_json(name, ring, cfg)
        if not cfg.raw and _check_type(name, ring):
            return EXIT_RUNTIME
        if not cfg.no_wait and not ring.wait_gating_reader(cfg.timeout):
            return fail(name, "no gating reader attached (start a consumer "
                              "first, or use --no-wait)")
        if cfg.rate:
            cfg.rate /= cfg.producers
        stop = threading.Event()
        _on_signals(stop)
        start = time.monotonic()
        threads = [_ProduceThread(ring, k, cfg, stop)
                   for k in range(cfg.producers)]
        for t in threads:
            t.start()
        _show_progress(threads, start)
        secs = time.monotonic() - start
        total = sum(t.sent for t in threads)
        sys.stderr.write(
            f"produce: {total} messages from {cfg.producers} "
            f"producer{'' if cfg.producers == 1 else 's'} in {secs:.3f} s, "
            f"{total / secs if secs > 0 else 0.0:.0f} msg/s\n")
        bad = next((t for t in threads if t.err is not None), None)
        if bad is None or bad.err is None:
            return 0
        err = bad.err
        if err.errno == errno.ETIMEDOUT or err.errno == errno.EAGAIN:
            return fail(name, "ring stayed full for the timeout (is a gating "
                              "reader stuck?)")
        if err.errno == errno.EMSGSIZE:
            return fail(name, "message does not fit in a slot (use a smaller "
                              "--size or a larger --slot-size)")
        return fail(name, f"{bad.what}: {strerror(err.errno or 0)}")
    finally:
        ring.close()


# ---------------------------------------------------------------- consume


class Hist:
    """The C command's log-linear latency histogram (64 octaves x 32 steps,
    about 3 % resolution)."""

    SUB = 32

    def __init__(self) -> None:
        self.bucket = [0] * (64 * self.SUB)
        self.count = 0
        self.max = 0
        self.min = 0

    def add(self, v: int) -> None:
        if v < self.SUB:
            i = v
        else:
            octave = v.bit_length() - 1
            i = (octave - 4) * self.SUB + ((v >> (octave - 5)) & 31)
        self.bucket[i] += 1
        if not self.count or v < self.min:
            self.min = v
        if v > self.max:
            self.max = v
        self.count += 1

    def _value(self, i: int) -> int:
        if i < self.SUB:
            return i
        octave, sub = i // self.SUB + 4, i % self.SUB
        return ((self.SUB + sub) << (octave - 5)) + ((1 << (octave - 5)) >> 1)

    def pct(self, p: float) -> int:
        if not self.count:
            return 0
        want = max(1, math.ceil(p / 100.0 * self.count))
        seen = 0
        for i, n in enumerate(self.bucket):
            seen += n
            if seen >= want:
                v = self._value(i)
                return min(max(v, self.min), self.max)
        return self.max


class _Consumer:
    """The receive loop and its counts. @kind: "demo" (DeviceEvents,
    decoded and checked), "typed" (decoded with @cls, the ring's stored
    schema, and printed as JSON) or "raw" (payloads as length-prefixed
    frames)."""

    def __init__(self, cfg: argparse.Namespace, reader: Reader, out: Any,
                 kind: str, cls: Any) -> None:
        self.cfg = cfg
        self.rd = reader
        self.out = out
        self.kind = kind
        self.cls = cls
        self.ids: Dict[str, List[Any]] = {}  # id -> [next, seen, epoch]
        # Bumped whenever join backlog was missed (overwritten before it
        # was read): the next message of every producer may jump ahead.
        self.miss_epoch = self.missed_seen = 0
        self.hist = Hist()
        self.received = self.gaps = self.gap_msgs = 0
        self.dups = self.untracked = 0
        self.crc_errors = 0      # CRC32C mismatches
        self.content_errors = 0  # undecodable payloads, failed checks
        self.start_ns = self.last_ns = 0
        self.pattern = demo.blob_pattern(reader.ring.info.payload_cap)

    def note_missed(self) -> None:
        missed = self.rd.stats().missed
        if missed != self.missed_seen:
            self.missed_seen = missed
            self.miss_epoch += 1

    def check_seq(self, id_: str, seq: int) -> None:
        """Continuity of one producer's seq: the first one seen sets the
        start, and so does the first one after missed backlog, whose
        producer cannot be known (FORMAT.md §9.1)."""
        t = self.ids.get(id_)
        if t is None:
            if len(self.ids) >= IDS:
                self.untracked += 1
                return
            t = self.ids[id_] = [0, False, self.miss_epoch]
        resumed = t[2] != self.miss_epoch
        t[2] = self.miss_epoch
        if t[1] and seq > t[0] and not resumed:
            self.gaps += 1
            self.gap_msgs += seq - t[0]
        elif t[1] and seq < t[0]:
            self.dups += 1
        t[1] = True
        if seq >= t[0]:
            t[0] = seq + 1

    def _step(self) -> float:
        timeout = self.cfg.timeout
        return 0.2 if timeout is None or timeout > 0.2 else float(timeout)

    def _idle(self, idle_from: int) -> bool:
        timeout = self.cfg.timeout
        return timeout is not None and \
            time.monotonic_ns() - idle_from >= timeout * 1e9

    def loop(self, stop: threading.Event) -> Optional[PbringError]:
        """Receive until --count, the idle timeout or a signal; returns the
        error that ended it, if any."""
        if self.kind == "raw":
            return self.loop_raw(stop)
        cfg = self.cfg
        rd = self.rd
        cls = self.cls
        is_demo = self.kind == "demo"
        to_json = _json_printer(cls)
        mono = time.monotonic_ns
        count = cfg.count
        step = self._step()
        idle_from = mono()
        pattern = self.pattern
        out = self.out
        json_out = cfg.json
        quiet = cfg.quiet
        hist_add = self.hist.add
        while not count or self.received < count:
            if stop.is_set():
                return None
            try:
                msg = rd.recv(cls, timeout=step)
            except RingEmpty as e:
                if self._idle(idle_from):
                    return e
                continue
            except Corrupt as e:
                # A bad header is counted by the reader (stats().bad); a bad
                # CRC or payload here.
                if e.what != "peek":
                    if e.strerror == CRC_MISMATCH:
                        self.crc_errors += 1
                    else:
                        self.content_errors += 1
                idle_from = self.last_ns = mono()
                if not self.start_ns:
                    self.start_ns = idle_from
                continue
            except PbringError as e:
                return e
            now = mono()
            idle_from = now
            if not self.start_ns:
                self.start_ns = now
            if not is_demo:
                line = ""
                if not quiet:
                    try:
                        line = to_json(msg)
                    except Exception:  # e.g. an Any of an unknown type
                        self.content_errors += 1
                        self.last_ns = now
                        continue
                info = rd.last
                if info is not None and info.timestamp_ns and \
                        now >= info.timestamp_ns:
                    hist_add(now - info.timestamp_ns)
                self.received += 1
                self.last_ns = now
                if not quiet:
                    out.write(line.encode("utf-8", "surrogateescape") + b"\n")
                continue
            if cfg.start == "oldest":
                self.note_missed()
            blob = msg.blob
            if blob and blob != pattern[:len(blob)]:
                self.content_errors += 1
                continue
            sent = msg.sent_ns
            if sent and now >= sent:
                hist_add(now - sent)
            self.check_seq(msg.id, msg.seq)
            self.received += 1
            self.last_ns = now
            if quiet:
                continue
            if json_out:
                line = demo.canonical_json(msg)
            else:
                info = rd.last
                assert info is not None
                line = (f"seq {msg.seq} id {msg.id} status {msg.status} "
                        f"blob {len(blob)} B (ring seq {info.seq}, producer "
                        f"{info.producer})")
            out.write(line.encode("utf-8", "surrogateescape") + b"\n")
            self.last_ns = mono()
        return None

    def loop_raw(self, stop: threading.Event) -> Optional[PbringError]:
        """--raw: each payload, CRC-checked but not decoded, as a 4-byte
        little-endian length and its bytes."""
        rd = self.rd
        mono = time.monotonic_ns
        count = self.cfg.count
        step = self._step()
        idle_from = mono()
        out = self.out
        while not count or self.received < count:
            if stop.is_set():
                return None
            try:
                view = rd.peek(timeout=step)
            except RingEmpty as e:
                if self._idle(idle_from):
                    return e
                continue
            except Corrupt:  # a bad header, counted as stats().bad
                idle_from = self.last_ns = mono()
                if not self.start_ns:
                    self.start_ns = idle_from
                continue
            except PbringError as e:
                return e
            now = idle_from = mono()
            if not self.start_ns:
                self.start_ns = now
            info = rd.last
            data = bytes(view)
            view.release()
            del view
            try:
                rd.verify()
                crc_ok = True
            except Corrupt:
                crc_ok = False
            try:
                rd.release()
            except Stale:
                continue  # overwritten while read: lost or missed
            except PbringError as e:
                return e
            self.last_ns = now
            if not crc_ok:
                self.crc_errors += 1
                continue
            if info is not None and info.timestamp_ns and \
                    now >= info.timestamp_ns:
                self.hist.add(now - info.timestamp_ns)
            self.received += 1
            out.write(len(data).to_bytes(4, "little"))
            out.write(data)
        return None

    def content(self) -> int:
        return self.content_errors + self.rd.stats().bad

    def summary(self) -> None:
        st = self.rd.stats()
        secs = (self.last_ns - self.start_ns) / 1e9
        h = self.hist
        sys.stderr.write(
            f"consume ({'lossy' if self.cfg.lossy else 'gating'}): "
            f"received {self.received}, "
            f"lost {max(st.lost, self.gap_msgs)}, missed {st.missed}, "
            f"gaps {self.gaps}, "
            f"duplicates {self.dups}, crc errors {self.crc_errors}, "
            f"content errors {self.content_errors + st.bad}, "
            f"abandoned {st.abandoned}, "
            f"rate {self.received / secs if secs > 0 else 0.0:.0f} msg/s, "
            f"latency p50 {h.pct(50) / 1e3:.1f} us "
            f"p99 {h.pct(99) / 1e3:.1f} us max {h.max / 1e3:.1f} us\n")

    def verdict(self, err: Optional[PbringError]) -> int:
        cfg = self.cfg
        name = cfg.ring
        if isinstance(err, RingEmpty) and cfg.count:
            return fail(name, f"timed out after {self.received} of "
                              f"{cfg.count} messages")
        if err is not None and not isinstance(err, RingEmpty):
            return fail(name, f"receive: {strerror(err.errno or 0)}")
        bad = self.crc_errors + self.content()
        if bad:
            return fail(name, f"{bad} corrupt messages")
        if not cfg.lossy and (self.gaps or self.dups):
            return fail(name, f"{self.gaps} gaps and {self.dups} duplicates "
                              "in producer sequences")
        return 0


def _json_printer(cls: Any) -> Callable[[Message], str]:
    """Compact proto3 JSON of a message of @cls (protobuf's JSON mapping,
    ``Any`` resolved through the pool @cls was built in): what
    :func:`pbring.demo.canonical_json` writes for the demo message."""
    pool = cls.DESCRIPTOR.file.pool
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                             allow_nan=False).encode

    def to_json(msg: Message) -> str:
        return dumps(json_format.MessageToDict(msg, descriptor_pool=pool))
    return to_json


def cmd_consume(argv: Sequence[str]) -> int:
    ap = _Options()
    ap.add("count", _u64("consume", "--count", "is not a positive number",
                         1, 2**63 - 1), 0)
    ap.add("timeout", _seconds("--timeout", "is not a number of seconds"),
           None)
    ap.add("from", _choice("--from", "is not oldest or latest",
                           ("oldest", "latest")), "oldest", dest="start")
    ap.add("lossy")
    ap.add("json")
    ap.add("quiet")
    ap.add("raw")
    ap.add("help")
    try:
        cfg, rest = ap.parse(argv)
        if len(rest) != 1:
            raise Usage("expects exactly one RING")
        if cfg.json + cfg.quiet + cfg.raw > 1:
            raise Usage(
                ("--json and --quiet" if not cfg.raw else
                 "--json and --raw" if not cfg.quiet else
                 "--quiet and --raw" if not cfg.json else
                 "--json, --quiet and --raw") + " exclude each other")
        cfg.ring = rest[0]
    except _Help:
        sys.stdout.write(CONSUME_HELP)
        return 0
    except Usage as e:
        return usage("consume", str(e))
    name = cfg.ring
    ring, rc = _attach("consume", name)
    if ring is None:
        return rc
    try:
        cls: Any = None
        if cfg.raw:
            kind = "raw"
        elif ring.info.msg_type == schema.DEMO_MSG_TYPE:
            kind, cls = "demo", schema.DeviceEvent
        else:
            kind = "typed"
            cls, rc = _ring_class(name, ring, "ring is untyped: use --raw",
                                  ": use --raw")
            if cls is None:
                return rc
        try:
            rd = Reader(ring, lossy=cfg.lossy, start=cfg.start,
                        verify=True)
        except PbringError as e:
            return fail(name, f"open reader: {e.strerror}")
        out = open(sys.stdout.fileno(), "wb", buffering=1 << 20,
                   closefd=False)
        stop = threading.Event()
        _on_signals(stop)
        c = _Consumer(cfg, rd, out, kind, cls)
        try:
            err = c.loop(stop)
        finally:
            try:
                out.flush()
            except BrokenPipeError:
                pass
        c.summary()
        rc = c.verdict(err)
        rd.close()
        return rc
    finally:
        ring.close()


# ---------------------------------------------------------------- schema


def cmd_schema(argv: Sequence[str]) -> int:
    ap = _Options()
    ap.add("descriptor-set", _path("--descriptor-set"), None)
    ap.add("help")
    try:
        cfg, rest = ap.parse(argv)
        if len(rest) != 1:
            raise Usage("expects exactly one RING")
    except _Help:
        sys.stdout.write(SCHEMA_HELP)
        return 0
    except Usage as e:
        return usage("schema", str(e))
    name = rest[0]
    ring, rc = _attach("schema", name)
    if ring is None:
        return rc
    try:
        info = ring.info
    finally:
        ring.close()
    if not info.msg_type:
        return fail(name, "ring is untyped (no schema)")
    if not info.schema:
        return fail(name, f"ring holds {info.msg_type} without its schema")
    out = cfg.descriptor_set
    if out is not None:
        return _write_bytes(name, out, info.schema)
    try:
        fds = descriptor_pb2.FileDescriptorSet.FromString(info.schema)
        text = "\n".join(f"// file: {f.name}\n{proto_text(f)}"
                         for f in fds.file)
    except Exception as e:
        return fail(name, f"stored schema is not a FileDescriptorSet: "
                          f"{_reason(e)}")
    data = f"// message: {info.msg_type}\n\n{text}".encode()
    return _write_bytes(name, "-", data)


def _write_bytes(name: str, path: str, data: bytes) -> int:
    try:
        if path == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            with open(path, "wb") as f:
                f.write(data)
    except BrokenPipeError:
        raise
    except OSError as e:
        return fail(name, f"{path}: {e.strerror}")
    return 0


# ---------------------------------------------------------------- main


def _on_signals(stop: threading.Event) -> None:
    def handler(sig: int, frame: Any) -> None:
        stop.set()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    cmd = args[0] if args else None
    if cmd is None:
        sys.stderr.write(MAIN_HELP)
        return EXIT_USAGE
    if cmd in ("-h", "--help", "help"):
        sys.stdout.write(MAIN_HELP)
        return 0
    if cmd == "--version":
        from . import __version__
        from .ring import version
        sys.stdout.write(f"pbring (Python {__version__}, libpbring "
                         f"{version()})\n")
        return 0
    try:
        if cmd == "produce":
            return cmd_produce(args[1:])
        if cmd == "consume":
            return cmd_consume(args[1:])
        if cmd == "schema":
            return cmd_schema(args[1:])
    except BrokenPipeError:
        return EXIT_RUNTIME
    sys.stderr.write(f"pbring: unknown command '{cmd}' (see 'pbring "
                     "--help')\n")
    return EXIT_USAGE
