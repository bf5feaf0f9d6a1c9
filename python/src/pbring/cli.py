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
import functools
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

from . import _early, _lib, demo, schema
from .errors import Corrupt, Interrupted, PbringError, RingEmpty, Stale, strerror
from .producer import Producer
from .producer import _traceparent as _producer_traceparent
from .prototext import proto_text
from .reader import CRC_MISMATCH, Reader
from .ring import Ring

EXIT_RUNTIME = 1
EXIT_USAGE = 2
IDS = 4096  # producer ids tracked for continuity, as the C command
NAMED_MAX = 10  # corrupt messages named on stderr, at most
PARTICIPANTS_MAX = 1024

PRODUCE_HELP = """\
usage: pbring produce RING --from-json FILE|- [--timeout SEC] [--no-wait]
       pbring produce RING [options]
Send messages of the ring's type from proto3 JSON, one object per line
(blank lines skipped; '-' is stdin), in order, each with its timestamp
and a CRC32C where the ring's CRC policy asks (create --crc); a line
that does not parse stops it (exit 1), every line
before it sent. Without --from-json: send pbring.demo.v1.DeviceEvent
messages to a demo ring.
  --from-json FILE the JSON lines to send (any typed ring)
  --count N        messages per producer (default: until interrupted)
  --rate HZ        total messages per second (default: as fast as possible)
  --size BYTES     blob bytes per message (default 0); a slot holds
                   --slot-size - 64 bytes, the event's other fields ~40
  --producers K    producer threads, each with its own id and seq (default 1)
  --timeout SEC    give up when no gating reader comes, or the ring stays
                   full, this long (default 10)
  --no-wait        start at once, even if no gating reader is attached
                   (by default it waits up to --timeout for one, so that
                   nothing is sent into a ring that nobody reads)
  --traceparent TP give every message this W3C trace context
                   (00-<32 hex>-<16 hex>-<2 hex>; consume --envelope shows it)
  --source HI-LO   give message i of each producer the source id (HI, LO+i)
                   (format 1.3, as a Redis stream entry id ms-seq; consume
                   --envelope shows it)
  --raw            skip the message type check (for untyped rings)
  --any-owner      accept a ring owned by another user (see SECURITY.md)
Ctrl-C or SIGTERM stops it at once: summary, then exit 130 / 143.
"""

CONSUME_HELP = """\
usage: pbring consume RING [options]
Receive messages, check and summarise them. Demo rings: each
pbring.demo.v1.DeviceEvent is checked and printed as text (or --json).
Other typed rings: each message is decoded with the ring's schema and
printed as one line of proto3 JSON.
  --count N            stop after N messages (default: until interrupted)
  --timeout SEC        stop when nothing arrives for SEC seconds
  --from oldest|latest start at the oldest message in the ring (default:
                       replay what it holds) or only take messages sent
                       from now on
  --lossy              never hold producers back; count what is lost
  --tap                observe read-only: needs only read permission (a
                       ring made with --mode 0640), accepts any owner,
                       takes no reader entry (not in stat) and never holds
                       producers back; lossy, it counts what is lost (not
                       with --lossy)
  --durable NAME       a durable reader (a ring made with --durable-readers):
                       resumes where NAME left off, or creates it (from
                       --from); once this exits or dies NAME stays, holding
                       producers back, until resumed or dropped (pbring rm
                       RING --reader NAME); says on stderr which it did
  --json               one canonical protobuf JSON object per message on stdout
  --envelope           with --json: each line is {"seq", "producer",
                       "timestamp_ns", "traceparent" (when the message
                       carries one), "source": "HI-LO" (when it carries
                       a source id), "message": the message's JSON}
  --quiet              no per-message output, only the summary
  --raw                no decoding: each payload as a 4-byte little-endian
                       length and its bytes on stdout (any ring; the only
                       way to read an untyped ring)
  --any-owner          accept a ring owned by another user (see SECURITY.md)
The summary on stderr counts:
  received        messages taken intact
  lost            messages overwritten before this lossy reader or tap read
                  them, or missing from a demo producer's seq
  missed          replayed backlog overwritten before it was read
  gaps            times a demo producer's seq jumped ahead
  duplicates      times a demo producer's seq went back
  crc errors      payloads whose CRC32C does not match
  content errors  corrupt slot headers, payloads that do not decode or
                  fail the demo checks
  abandoned       messages whose producer died while writing them
  rate            received / time from the first message to the last
  latency         p50, p99, max from each message's commit to its receipt:
                  transport plus time queued in the ring, which is most of
                  it when the ring is full; replayed messages, committed
                  before the consumer started, are not timed
A corrupt message counts once, as a crc or content error, and is named on
stderr by its ring seq. Exits 1 if it saw a CRC or content error or, as a
gating reader of a demo ring, a gap or duplicate in any producer's seq.
Ctrl-C or SIGTERM stops it at once: summary, then exit 130 / 143.
"""

SCHEMA_HELP = """\
usage: pbring schema RING [--descriptor-set FILE|-]
Print the ring's message type and its stored schema as .proto text
(every file of the set, dependencies first, each after a
'// file: NAME' line).
  --descriptor-set FILE  write the stored FileDescriptorSet bytes exactly
                         instead ('-': stdout)
  --any-owner            accept a ring owned by another user (see SECURITY.md)
"""

CHECK_HELP = """\
usage: pbring check RING [--producers N] [--readers N] [--max-lag N]
                    [--max-age SEC] [--wait SEC] [--quiet]
Exit 0 if the ring is intact and every condition given holds; else
exit 1 with one line on stderr naming the first that failed, in
this order: the ring exists, can be read and is not damaged; then
  --producers N  at least N live producers (default: any number)
  --readers N    at least N live readers, gating or lossy (taps are
                 not listed; default: any number)
  --max-lag N    no live gating reader (nor detached durable one)
                 more than N messages behind the claim
  --max-age SEC  a message committed within SEC seconds (the newest
                 slot's timestamp); a ring that never had one counts
                 from its creation
  --wait SEC     retry every 100 ms until healthy, up to SEC seconds
                 (Ctrl-C stops), then report the last failure
  -q, --quiet    print nothing on success (else one 'ok:' line on
                 stdout)
Read-only: read permission is enough (any owner's ring); it writes
nothing, takes no entry, reclaims nothing. Exit 2: bad usage.
"""

MAIN_HELP = """\
usage: python -m pbring [--log-format json] COMMAND [ARGS]
Protobuf messages between processes through a shared-memory ring (Python).

commands:
  produce RING   send messages: JSON lines, or demo DeviceEvents
  consume RING   receive, check and summarise messages (JSON, raw)
  schema RING    show a ring's message type and schema
  check RING     health check: exit 0 if intact, live, keeping up

'python -m pbring COMMAND --help' describes each. Exit status: 0 success,
1 runtime error, 2 usage error. (create, stat, ls, rm and demo are the C
command's.)
  --log-format json  (before COMMAND) every line on stderr as a JSON
                     object: ts, level, service, event, ring, trace_id,
                     message
"""


class Usage(Exception):
    pass


class _Help(Exception):
    pass


class _Log:
    """--log-format json (before the command): every line on stderr a JSON
    object, as the C command writes it (docs/CLI.md, "Logs")."""
    json = False
    cmd = "pbring"


def _json_str(s: str) -> str:
    """@s as a JSON string, escaped as the C command does: quote,
    backslash and control characters (as \\u00XX), the rest as is."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:  # a byte of argv that is not UTF-8
            out.append("\\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def log_line(level: str, kind: str, ring: Optional[str],
             trace_id: Optional[str], text_prefix: str, msg: str) -> None:
    """One line on stderr: @text_prefix + @msg, or with --log-format json
    {ts, level, service, event, ring, trace_id, message}."""
    if not _Log.json:
        sys.stderr.write(f"{text_prefix}{msg}\n")
        sys.stderr.flush()
        return
    now = time.time()
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + \
        f".{int(now * 1000) % 1000:03d}Z"
    parts = [f'{{"ts":"{ts}","level":{_json_str(level)},'
             f'"service":"pbring","event":{_json_str(_Log.cmd + "." + kind)}']
    if ring:
        parts.append(f',"ring":{_json_str(ring)}')
    if trace_id:
        parts.append(f',"trace_id":{_json_str(trace_id)}')
    parts.append(f',"message":{_json_str(msg)}}}\n')
    sys.stderr.write("".join(parts))
    sys.stderr.flush()


def fail(ring: Optional[str], msg: str) -> int:
    """``pbring: RING: msg`` on stderr; returns EXIT_RUNTIME. A damaged
    ring stays damaged: the message says what clears it."""
    if ring and msg.endswith(strerror(errno.EUCLEAN)):
        msg += f"; remove it with 'pbring rm {ring}'"
    log_line("error", "error", ring, None,
             f"pbring: {ring}: " if ring else "pbring: ", msg)
    return EXIT_RUNTIME


def usage(cmd: str, msg: str) -> int:
    if _Log.json:
        log_line("error", "usage", None, None, "", msg)
        return EXIT_USAGE
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


def _attach(cmd: str, name: str, any_owner: bool = False,
            read_only: bool = False) -> Tuple[Optional[Ring], int]:
    """The ring, or None and the exit status (after one line on stderr);
    @any_owner (--any-owner) accepts a ring owned by another user;
    @read_only (consume --tap) maps it read-only, for a tap reader."""
    try:
        return Ring.attach(name, any_owner=any_owner,
                           read_only=read_only), 0
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
        if e.errno == errno.EPERM:
            msg = _refused(name) or msg
        return None, fail(name, msg)


def _refused(name: str) -> Optional[str]:
    """Which of EPERM's two refusals it was, and what accepts the first,
    as the C command says it; None if the ring cannot be looked at."""
    try:
        st = os.stat(f"/dev/shm/pbring.{name}")  # nosec B108 # the ring's file
    except OSError:
        return None
    if st.st_mode & 0o002:
        return (f"ring writable by everyone (mode {st.st_mode & 0o7777:04o}): "
                "refused (see SECURITY.md)")
    if st.st_uid != os.geteuid():
        return (f"ring owned by another user (uid {st.st_uid}): use "
                "--any-owner to accept it")
    return None


def duration(ns: int) -> str:
    """A duration with its unit chosen for it, as the C command's
    cli_duration(): "850 ns", "12.3 us", "2.6 ms", "41.9 s"."""
    if ns < 1000:
        return f"{ns} ns"
    if ns < 999950:
        return f"{ns / 1e3:.1f} us"
    if ns < 999950000:
        return f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e9:.1f} s"


def _too_large(ring: Ring, size: int) -> str:
    info = ring.info
    return (f"a message of {size} bytes does not fit in a slot (payload "
            f"capacity {info.payload_cap} bytes of --slot-size "
            f"{info.slot_size})")


def _ring_major(name: str) -> int:
    """The major format version of a ring refused for it, or -1."""
    try:
        fd = os.open(f"/dev/shm/pbring.{name}",  # nosec B108 # the ring's file
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
        self.size = 0  # the encoding that did not fit (EMSGSIZE)

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
        if cfg.traceparent is not None:
            send = functools.partial(p.send_bytes,
                                     traceparent=cfg.traceparent)
        ser = msg.SerializeToString
        src = cfg.source
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
                    if due > now and stop.wait((due - now) / 1e9):
                        break  # told to stop while pacing
                msg.seq = i
                msg.status = i % 3
                msg.sent_ns = mono()
                if src is None:
                    send(ser())
                else:
                    send(ser(), source=(src[0], src[1] + i))
                i += 1
                self.sent = i
        except Interrupted:
            pass  # Ctrl-C, or the watch: the main thread says which
        except PbringError as e:
            self.err = e
            if e.errno == errno.EMSGSIZE:
                self.size = msg.ByteSize()
        finally:
            self.sent = i
            try:
                p.close()
            except PbringError:
                pass


_DEMO_ONLY = ("count", "rate", "size", "producers", "raw", "source")


def _source(s: str) -> Tuple[int, int]:
    """--source HI-LO: two decimal u64, or a usage error."""
    hi, dash, lo = s.partition("-")
    if (dash and hi.isdigit() and lo.isdigit() and hi.isascii()
            and lo.isascii() and int(hi) < 1 << 64 and int(lo) < 1 << 64):
        return int(hi), int(lo)
    raise Usage(f"--source: '{s}' is not HI-LO (two decimal numbers)")


def _traceparent(s: str) -> str:
    """--traceparent: a W3C traceparent, or a usage error."""
    try:
        _producer_traceparent(s)
    except ValueError:
        raise Usage(f"--traceparent: '{s}' is not a W3C traceparent "
                    "(00-<32 hex>-<16 hex>-<2 hex>, lowercase, ids not all "
                    "zero)") from None
    return s


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
        if not cfg.no_wait and (rc := _wait_reader(name, ring, cfg.timeout)):
            return rc
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

    stopped = _on_signals(p.ring)

    def handler(sig: int, frame: Any) -> None:
        first = not _Stop.sig
        _stop_handler(sig, frame)
        if reading[0] and first:
            raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
    start = checked = time.monotonic()
    sent = lineno = 0
    try:
        while not stopped.is_set():
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
            if time.monotonic() - checked >= 0.25:
                # never waiting, it would not notice the ring removed
                checked = time.monotonic()
                try:
                    p.ring.check()
                except PbringError as e:
                    return fail(name, strerror(e.errno or 0))
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
                p.send_bytes(data, traceparent=cfg.traceparent)
            except Interrupted:
                break
            except PbringError as e:
                if e.errno == errno.EMSGSIZE:
                    return fail(name, f"line {lineno}: "
                                      f"{_too_large(p.ring, len(data))}")
                if e.errno in (errno.ETIMEDOUT, errno.EAGAIN):
                    return fail(name, "ring stayed full for the timeout (is "
                                      "a gating reader stuck?)")
                return fail(name, f"send: {strerror(e.errno or 0)}")
            sent += 1
    except KeyboardInterrupt:
        pass  # raised only while waiting for a line: nothing half sent
    secs = time.monotonic() - start
    log_line("info", "summary", name, None, "produce: ",
             f"{sent} messages from {cfg.from_json} in "
             f"{secs:.3f} s, {sent / secs if secs > 0 else 0.0:.0f} msg/s")
    return _stop_status(name) if _Stop.sig else 0


def _show_progress(ring: Ring, name: str, threads: List[_ProduceThread],
                   start: float) -> Optional[PbringError]:
    """The rate line on a terminal, and the watch (dead gating readers,
    the ring removed) on any output, until every thread is done; returns
    the watch's error, if it stopped them. Joins in short steps: the main
    thread must stay able to run the signal handlers."""
    tty = sys.stderr.isatty() and not _Log.json  # progress: text only
    watch = _Watch(ring, name)
    werr: Optional[PbringError] = None
    last, last_t = 0, start
    for t in threads:
        while t.is_alive():
            t.join(0.25)
            err = watch.poll()
            if err is not None and werr is None:
                werr = err
                ring.interrupt()  # stop the threads
            now = time.monotonic()
            total = sum(x.sent for x in threads)
            if not threads[0].cfg.rate:  # paced: slow on purpose
                watch.note(total, now)
            if not tty:
                continue
            rate = (total - last) / (now - last_t) if now > last_t else 0.0
            sys.stderr.write(f"\rproduce: {total} sent, {rate:.0f} msg/s   ")
            sys.stderr.flush()
            last, last_t = total, now
    if tty:
        sys.stderr.write("\r\033[K")  # the summary replaces it
    watch.poll()  # a reader that died in the last moments
    return werr


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
    ap.add("any-owner")
    ap.add("traceparent", _traceparent, None)
    ap.add("source", _source, None)
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
    _on_signals(None)
    ring, rc = _attach("produce", name, cfg.any_owner)
    if ring is None:
        return 128 + _Stop.sig if _Stop.sig else rc
    try:
        stop = _on_signals(ring)
        if cfg.from_json is not None:
            return _produce_json(name, ring, cfg)
        if not cfg.raw and _check_type(name, ring):
            return EXIT_RUNTIME
        if not cfg.no_wait and (rc := _wait_reader(name, ring, cfg.timeout)):
            return rc
        if cfg.rate:
            cfg.rate /= cfg.producers
        start = time.monotonic()
        threads = [_ProduceThread(ring, k, cfg, stop)
                   for k in range(cfg.producers)]
        for t in threads:
            t.start()
        werr = _show_progress(ring, name, threads, start)
        secs = time.monotonic() - start
        total = sum(t.sent for t in threads)
        log_line("info", "summary", name, None, "produce: ",
                 f"{total} messages from {cfg.producers} "
                 f"producer{'' if cfg.producers == 1 else 's'} in "
                 f"{secs:.3f} s, "
                 f"{total / secs if secs > 0 else 0.0:.0f} msg/s")
        if werr is not None:
            return fail(name, strerror(werr.errno or 0))
        bad = next((t for t in threads if t.err is not None), None)
        if _Stop.sig and bad is None:
            return _stop_status(name)
        if bad is None or bad.err is None:
            return 0
        err = bad.err
        if err.errno == errno.ETIMEDOUT or err.errno == errno.EAGAIN:
            return fail(name, "ring stayed full for the timeout (is a gating "
                              "reader stuck?)")
        if err.errno == errno.EMSGSIZE:
            return fail(name, f"{_too_large(ring, bad.size)}: use a smaller "
                              "--size or a larger --slot-size")
        return fail(name, f"{bad.what}: {strerror(err.errno or 0)}")
    finally:
        _Stop.ring = None  # the handler must not interrupt a closed ring
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
        self.show_progress = False
        self.progress_ns = self.progress_n = 0
        self.pattern = demo.blob_pattern(reader.ring.info.payload_cap)
        # Messages committed before open_ns are replayed backlog: their age
        # is not a latency, so they are counted, not timed.
        self.open_ns = 0
        self.replayed = 0
        # Corrupt messages not yet seen as a jump in their producer's seq,
        # by ring producer id, and of unknown producer (a corrupt header):
        # the jump they make is not a gap too.
        self.owed: Dict[int, int] = {}
        self.owed_any = 0
        self.named = 0  # corrupt messages named on stderr
        self.msg_type = reader.ring.info.msg_type or "message"

    def latency(self, sent: int, now: int) -> None:
        """now - sent (the slot's timestamp at commit) into the histogram;
        replayed backlog is counted instead (open_ns)."""
        if not sent:
            return  # committed without a timestamp
        if sent < self.open_ns:
            self.replayed += 1
        elif now >= sent:
            self.hist.add(now - sent)

    def name_corrupt(self, seq: int, producer: int, why: str,
                     trace: Optional[str] = None) -> None:
        """Name a corrupt message on stderr (the first NAMED_MAX of them, so
        that a flood does not bury the summary); producer < 0: unknown.
        @trace: its traceparent, whose trace id a JSON log line carries."""
        self.named += 1
        name = self.cfg.ring
        tid = trace[3:35] if trace else None
        if self.named == NAMED_MAX + 1:
            fail(name, "more corrupt messages: not named")
        elif self.named > NAMED_MAX:
            pass
        elif producer < 0:
            log_line("error", "corrupt", name, tid, f"pbring: {name}: ",
                     f"seq {seq}: {why}")
        else:
            log_line("error", "corrupt", name, tid, f"pbring: {name}: ",
                     f"seq {seq} (producer {producer}): {why}")

    def corrupt(self, seq: int, producer: int, crc: bool,
                trace: Optional[str] = None) -> None:
        """Count a corrupt message once: as a crc or content error, never
        also as the gap it leaves in its producer's seq (unexplained())."""
        if crc:
            self.crc_errors += 1
            why = "CRC mismatch"
        else:
            self.content_errors += 1
            why = f"payload is not a valid {self.msg_type}"
        if 0 <= producer < PARTICIPANTS_MAX:
            self.owed[producer] = self.owed.get(producer, 0) + 1
        else:
            self.owed_any += 1
        self.name_corrupt(seq, producer, why, trace)

    def bad_header(self, seq: int) -> None:
        """A corrupt slot header (counted by the reader as stats().bad)."""
        self.owed_any += 1
        self.name_corrupt(seq, -1, "corrupt slot header")

    def unexplained(self, producer: int, n: int) -> int:
        """How much of a jump of @n in the seq of ring producer @producer
        the corrupt messages already counted do not explain. Its next
        message after its corrupt ones settles what it owes; a corrupt
        header's producer is not known, so any producer's jump settles
        that."""
        k = min(self.owed.pop(producer, 0), n)
        n -= k
        k = min(self.owed_any, n)
        self.owed_any -= k
        return n - k

    def note_missed(self) -> None:
        missed = self.rd.stats().missed
        if missed != self.missed_seen:
            self.missed_seen = missed
            self.miss_epoch += 1

    def check_seq(self, id_: str, seq: int, producer: int) -> None:
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
        jump = 0
        if t[1] and seq > t[0] and not resumed:
            jump = seq - t[0]
        elif t[1] and seq < t[0]:
            self.dups += 1
        jump = self.unexplained(producer, jump)
        if jump:
            self.gaps += 1
            self.gap_msgs += jump
        t[1] = True
        if seq >= t[0]:
            t[0] = seq + 1

    def _step(self) -> float:
        timeout = self.cfg.timeout
        return 0.2 if timeout is None or timeout > 0.2 else float(timeout)

    def progress(self) -> None:
        """"consume: N received, R msg/s" on a terminal, 4 times a
        second, when the messages themselves do not go to it."""
        now = time.monotonic_ns()
        dt = (now - self.progress_ns) / 1e9
        if not self.show_progress or dt < 0.25:
            return
        rate = (self.received - self.progress_n) / dt
        sys.stderr.write(f"\rconsume: {self.received} received, "
                         f"{rate:.0f} msg/s   ")
        sys.stderr.flush()
        self.progress_ns, self.progress_n = now, self.received

    def _idle(self, idle_from: int) -> bool:
        timeout = self.cfg.timeout
        return timeout is not None and \
            time.monotonic_ns() - idle_from >= timeout * 1e9

    def _content_check(self, to_json: Callable[[Message], str],
                       line: List[str]) -> Optional[Callable[[Message],
                                                             None]]:
        """recv()'s check, run while the slot is held, so that a message
        that fails it is counted in the ring's reader metrics
        (decode_errors) as the C command counts it: the demo blob's
        pattern, or (typed, not --quiet) the JSON line, kept in @line."""
        pattern = self.pattern

        def demo_blob(msg: Message) -> None:
            blob = msg.blob  # type: ignore[attr-defined]
            if blob and blob != pattern[:len(blob)]:
                raise ValueError("blob does not match the pattern")

        def json_line(msg: Message) -> None:
            line[0] = to_json(msg)  # fails on e.g. an Any of unknown type

        if self.kind == "demo":
            return demo_blob
        return None if self.cfg.quiet else json_line

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
        out = self.out
        json_out = cfg.json
        envelope = cfg.envelope
        quiet = cfg.quiet
        latency = self.latency
        show = self.show_progress
        typed_line = [""]  # the JSON of a typed message, made by check
        check = self._content_check(to_json, typed_line)
        while not count or self.received < count:
            if stop.is_set():
                return None
            if show and not self.received & 1023:
                self.progress()
            try:
                msg = rd.recv(cls, timeout=step, check=check)
            except RingEmpty as e:
                if self._idle(idle_from):
                    return e
                self.progress()
                continue
            except Corrupt as e:
                # A bad header is counted by the reader (stats().bad); a bad
                # CRC or payload here.
                if e.what == "peek":
                    self.bad_header(e.seq or 0)
                else:
                    last = rd.last
                    self.corrupt(e.seq or 0, last.producer if last else -1,
                                 e.strerror == CRC_MISMATCH,
                                 last.traceparent if last else None)
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
            info = rd.last
            assert info is not None  # nosec B101 # for mypy: read() just set it
            if not is_demo:
                latency(info.timestamp_ns, now)
                self.received += 1
                if not quiet:
                    line = typed_line[0]
                    if envelope:
                        line = _envelope(info, line)
                    out.write(line.encode("utf-8", "surrogateescape") + b"\n")
                self.last_ns = mono()
                continue
            if cfg.start == "oldest":
                self.note_missed()
            blob = msg.blob
            latency(info.timestamp_ns, now)
            self.check_seq(msg.id, msg.seq, info.producer)
            self.received += 1
            if quiet:
                self.last_ns = mono()
                continue
            if json_out:
                line = demo.canonical_json(msg)
                if envelope:
                    line = _envelope(info, line)
            else:
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
                self.progress()
                continue
            except Corrupt as e:  # a bad header, counted as stats().bad
                self.bad_header(e.seq or 0)
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
                rd.verify()  # counted in the ring's reader metrics
                crc_ok = True
            except Corrupt:
                crc_ok = False
            except Stale:
                crc_ok = True  # overwritten: the release says so
            try:
                rd.release()
            except Stale:
                continue  # overwritten while read: lost or missed
            except PbringError as e:
                return e
            assert info is not None  # nosec B101 # for mypy: read() just set it
            if not crc_ok:
                self.corrupt(info.seq, info.producer, True,
                             info.traceparent)
                self.last_ns = mono()
                continue
            self.latency(info.timestamp_ns, now)
            self.received += 1
            out.write(len(data).to_bytes(4, "little"))
            out.write(data)
            self.last_ns = mono()
        return None

    def content(self) -> int:
        return self.content_errors + self.rd.stats().bad

    def summary(self) -> None:
        st = self.rd.stats()
        secs = (self.last_ns - self.start_ns) / 1e9
        cfg = self.cfg
        kind = "tap" if cfg.tap else "lossy" if cfg.lossy else "gating"
        log_line(
            "info", "summary", cfg.ring, None, "consume ",
            f"({kind}): "
            f"received {self.received}, "
            f"lost {max(st.lost, self.gap_msgs)}, missed {st.missed}, "
            f"gaps {self.gaps}, "
            f"duplicates {self.dups}, crc errors {self.crc_errors}, "
            f"content errors {self.content_errors + st.bad}, "
            f"abandoned {st.abandoned}, "
            f"rate {self.received / secs if secs > 0 else 0.0:.0f} msg/s, "
            f"{self.latency_text()}")

    def latency_text(self) -> str:
        """``latency p50 P p99 Q max X (what it measures)``."""
        h = self.hist
        p50 = p99 = mx = "-"
        if h.count:
            p50, p99, mx = duration(h.pct(50)), duration(h.pct(99)), \
                duration(h.max)
        replayed = (f"; {self.replayed} replayed messages not timed"
                    if self.replayed else "")
        return (f"latency p50 {p50} p99 {p99} max {mx} (commit to receive, "
                f"including time queued in the ring{replayed})")

    def verdict(self, err: Optional[PbringError]) -> int:
        cfg = self.cfg
        name = cfg.ring
        if isinstance(err, Interrupted) and _Stop.sig:
            err = None  # the checks below still apply; the status is 130
        if isinstance(err, RingEmpty) and cfg.count:
            return fail(name, f"timed out after {self.received} of "
                              f"{cfg.count} messages")
        if err is not None and not isinstance(err, RingEmpty):
            return fail(name, f"receive: {strerror(err.errno or 0)}")
        bad = self.crc_errors + self.content()
        if bad:
            return fail(name, f"{bad} corrupt messages")
        if not cfg.lossy and not cfg.tap and (self.gaps or self.dups):
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


def _envelope(info: Any, message_json: str) -> str:
    """consume --envelope: the ring's metadata around the message's JSON,
    as the C command writes it."""
    tp = (f'"traceparent":"{info.traceparent}",' if info.traceparent
          else "")
    src = (f'"source":"{info.source[0]}-{info.source[1]}",' if info.source
           else "")
    return (f'{{"seq":"{info.seq}","producer":{info.producer},'
            f'"timestamp_ns":"{info.timestamp_ns}",{tp}{src}'
            f'"message":{message_json}}}')


def _reader_name(s: str) -> str:
    """--durable: a durable reader's name, or a usage error."""
    if _lib.pbr_reader_name_check(s.encode("utf-8", "replace")):
        raise Usage(f"--durable: '{s}' is not 1..31 bytes of "
                    "[A-Za-z0-9._-]")
    return s


def _open_failed(name: str, durable: Optional[str], e: PbringError) -> int:
    """Why the reader could not be opened, in the C command's words."""
    if durable is not None and e.errno == errno.EBUSY:
        return fail(name, f"durable reader {durable} is in use by a live "
                    "process (or every reader entry is taken)")
    if durable is not None and e.errno == errno.EOPNOTSUPP:
        return fail(name, "ring has no durable readers (create it with "
                    "--durable-readers)")
    return fail(name, f"open reader: {e.strerror}")


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
    ap.add("any-owner")
    ap.add("envelope")
    ap.add("tap")
    ap.add("durable", _reader_name, None)
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
        if cfg.envelope and not cfg.json:
            raise Usage("--envelope needs --json")
        if cfg.tap and cfg.lossy:
            raise Usage("--tap and --lossy exclude each other (a tap is "
                        "lossy already)")
        if cfg.durable is not None and (cfg.tap or cfg.lossy):
            raise Usage(f"--durable excludes "
                        f"{'--tap' if cfg.tap else '--lossy'} (a durable "
                        "reader holds producers back)")
        cfg.ring = rest[0]
    except _Help:
        sys.stdout.write(CONSUME_HELP)
        return 0
    except Usage as e:
        return usage("consume", str(e))
    name = cfg.ring
    _on_signals(None)
    # A tap writes nothing, so the owner check, which protects what
    # participants write, does not apply; read permission is enough.
    ring, rc = (_attach("consume", name, any_owner=True, read_only=True)
                if cfg.tap else _attach("consume", name, cfg.any_owner))
    if ring is None:
        return 128 + _Stop.sig if _Stop.sig else rc
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
        open_ns = time.monotonic_ns()
        try:
            # latency: the ring's metrics block gets our commit-to-receive
            # histogram, for exporters (as the C command's consumer); a tap
            # has no entry, so no block to record into
            rd = Reader(ring, lossy=cfg.lossy, start=cfg.start,
                        verify=True, latency=not cfg.tap, tap=cfg.tap,
                        durable=cfg.durable)
        except PbringError as e:
            return _open_failed(name, cfg.durable, e)
        if cfg.durable is not None:
            sys.stderr.write(
                f"consume: durable reader {cfg.durable} "
                f"{'resumed' if rd.resumed else 'created'} at seq "
                f"{rd.stats().cursor}\n")
        out = open(sys.stdout.fileno(), "wb", buffering=1 << 20,
                   closefd=False)
        stop = _on_signals(ring)
        c = _Consumer(cfg, rd, out, kind, cls)
        c.show_progress = sys.stderr.isatty() and not _Log.json and (
            cfg.quiet or not sys.stdout.isatty())
        c.open_ns = open_ns
        try:
            err = c.loop(stop)
        finally:
            try:
                out.flush()
            except BrokenPipeError:
                pass
        if c.show_progress:
            sys.stderr.write("\r\033[K")  # the summary replaces it
        c.summary()
        rc = c.verdict(err)
        rd.close()
        if _Stop.sig and rc != EXIT_RUNTIME:
            return _stop_status(name)
        return rc
    finally:
        _Stop.ring = None  # the handler must not interrupt a closed ring
        ring.close()


# ---------------------------------------------------------------- schema


def cmd_schema(argv: Sequence[str]) -> int:
    ap = _Options()
    ap.add("descriptor-set", _path("--descriptor-set"), None)
    ap.add("any-owner")
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
    ring, rc = _attach("schema", name, cfg.any_owner)
    if ring is None:
        return rc
    try:
        info = ring.info
    finally:
        _Stop.ring = None  # the handler must not interrupt a closed ring
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


# ---------------------------------------------------------------- check

# attach's refusals that mean the segment itself is bad
_DAMAGED = (errno.EPROTO, errno.EPROTOTYPE, errno.EUCLEAN, errno.ENODEV)


class _Unhealthy(Exception):
    """The first condition `check` found failing."""


def _check_parse(argv: Sequence[str]) -> Tuple[argparse.Namespace, str]:
    ap = _Options()
    count = "is not a count (0 .. 1024)"
    ap.add("producers", _u64("check", "--producers", count, 0,
                             PARTICIPANTS_MAX), 0)
    ap.add("readers", _u64("check", "--readers", count, 0,
                           PARTICIPANTS_MAX), 0)
    ap.add("max-lag", _u64("check", "--max-lag", "is not a number of "
                           "messages", 0, 2**64 - 1), None)
    ap.add("max-age", _seconds("--max-age", "is not a number of seconds"),
           None)
    ap.add("wait", _seconds("--wait", "is not a number of seconds"), None)
    ap.add("quiet")
    ap.add("help")
    argv = ["--quiet" if a == "-q" else a for a in argv]
    cfg, rest = ap.parse(argv)
    if len(rest) != 1:
        raise Usage("expects exactly one RING")
    return cfg, rest[0]


def _check_entries(ps: List[Any], claimed: int) -> Tuple[int, int, int]:
    """Live producers, live readers, the largest lag of a live gating
    reader; a cursor beyond the claim is damage."""
    producers = readers = lag = 0
    for p in ps:
        if not p.is_reader:
            producers += p.alive
            continue
        d = (claimed - p.position) % 2**64
        if d >= 2**63:
            raise _Unhealthy(f"damaged ring: reader {p.index}'s cursor "
                             f"{p.position} is beyond the claim {claimed}")
        readers += p.alive
        if _holds_back(p):
            lag = max(lag, d)
    return producers, readers, lag


def _holds_back(p: Any) -> bool:
    """A reader whose cursor producers wait for: a live gating one, or a
    durable one nobody owns (format 1.3: it gates while detached)."""
    return bool(p.is_reader and p.gating
                and (p.alive or (p.durable and p.detached)))


def _lag_line(p: Any, d: int, most: int) -> str:
    if p.durable and p.detached:
        return (f"durable reader {p.name} (detached) lags by {d} messages "
                f"(max {most})")
    return f"reader {p.index} (pid {p.pid}) lags by {d} messages (max {most})"


def _check_count(what: str, want: int, found: int) -> None:
    if found >= want:
        return
    if found:
        raise _Unhealthy(f"too few live {what}s (want {want}, found "
                         f"{found})")
    raise _Unhealthy(f"no live {what} (want {want}, found 0)")


def _check_age(ring: Ring, claimed: int,
               max_age: Optional[float]) -> str:
    """The ok line's words on the last commit; _Unhealthy if it is older
    than @max_age seconds (or its age cannot be told)."""
    info = ring.info
    if claimed == info.seq_base:  # never a message: count from creation
        age, kind = max(0, time.time_ns() - info.created_ns), 1
    else:
        last = ring.last_commit()
        age = max(0, time.monotonic_ns() - last[1]) if last else 0
        kind = 0 if last else 2
    d = duration(age)
    if max_age is not None and (kind == 2 or age > int(max_age * 1e9)):
        if kind == 0:
            raise _Unhealthy(f"nothing committed for {d} (max {max_age:g} "
                             "s)")
        if kind == 1:
            raise _Unhealthy(f"nothing committed since the ring was created "
                             f"{d} ago (max {max_age:g} s)")
        raise _Unhealthy("cannot tell when the last message was committed: "
                         "the newest messages carry no timestamp")
    return [f"last commit {d} ago", "nothing committed yet",
            "last commit time unknown"][kind]


def _check_ring(ring: Ring, cfg: argparse.Namespace) -> str:
    """The conditions in the documented order: the ok line's tail, or
    _Unhealthy."""
    ring.check()
    ps = ring.participants()
    # the counters after the entries: claimed is then at least every
    # reader's cursor (as in stat)
    claimed = ring.stats().claimed
    producers, readers, lag = _check_entries(ps, claimed)
    _check_count("producer", cfg.producers, producers)
    _check_count("reader", cfg.readers, readers)
    if cfg.max_lag is not None:
        for p in ps:
            d = (claimed - p.position) % 2**64
            if _holds_back(p) and d > cfg.max_lag:
                raise _Unhealthy(_lag_line(p, d, cfg.max_lag))
    last = _check_age(ring, claimed, cfg.max_age)
    return f"producers {producers}, readers {readers}, lag {lag}, {last}"


def _check_why(err: int) -> str:
    """A library error as the check's line says it."""
    if err == errno.EPERM:  # any owner is accepted: only this is left
        return "ring writable by everyone: refused (see SECURITY.md)"
    return ("damaged ring: " if err in _DAMAGED else "") + strerror(err)


def _check_once(name: str, cfg: argparse.Namespace) -> str:
    """One look: the ok line, or _Unhealthy naming what failed."""
    try:
        # read-only: the owner check, which protects what participants
        # write, does not apply (as for consume --tap)
        ring = Ring.attach(name, any_owner=True, read_only=True)
    except PbringError as e:
        raise _Unhealthy(_check_why(e.errno or 0)) from None
    try:
        return f"ok: {name}: {_check_ring(ring, cfg)}"
    except PbringError as e:
        raise _Unhealthy(_check_why(e.errno or 0)) from None
    finally:
        ring.close()


def cmd_check(argv: Sequence[str]) -> int:
    try:
        cfg, name = _check_parse(argv)
        if _lib.pbr_name_check(name.encode("utf-8", "surrogateescape")):
            raise Usage(f"invalid ring name '{name}' (use 1-63 of "
                        "[A-Za-z0-9_.-])")
    except _Help:
        sys.stdout.write(CHECK_HELP)
        return 0
    except Usage as e:
        return usage("check", str(e))
    stop = _on_signals(None) if cfg.wait is not None else None
    until = time.monotonic() + (cfg.wait or 0)
    while True:
        try:
            line = _check_once(name, cfg)
            if not cfg.quiet:
                sys.stdout.write(line + "\n")
            return 0
        except _Unhealthy as e:
            why = str(e)
        if stop is None or time.monotonic() >= until or \
                stop.wait(min(0.1, max(0.0, until - time.monotonic()))):
            break
    if _Stop.sig:
        return _stop_status(name)
    log_line("error", "unhealthy", name, None, "pbring check: ",
             f"{name}: {why}")
    return EXIT_RUNTIME


# ---------------------------------------------------------------- main


class _Stop:
    """Ctrl-C and SIGTERM, as in the C command (cli/stop.c): the handler
    records the signal, sets @event and interrupts the ring's waits, so a
    command blocked on a full or an empty ring stops at once, prints its
    summary and exits 128 + signal. A second signal kills at once."""
    sig = 0
    ring: Optional[Ring] = None
    event = threading.Event()


def _stop_handler(sig: int, frame: Any) -> None:
    if _Stop.sig:
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        return
    _Stop.sig = sig
    _Stop.event.set()
    if _Stop.ring is not None:
        _Stop.ring.interrupt()


def _on_signals(ring: Optional[Ring]) -> threading.Event:
    _Stop.ring = ring
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _stop_handler)
        signal.signal(signal.SIGTERM, _stop_handler)
    if ring is not None and _Stop.sig:
        ring.interrupt()
    return _Stop.event


def _stop_status(name: str) -> int:
    """"pbring: RING: interrupted"; the exit status, 128 + signal."""
    fail(name, "interrupted")
    return 128 + (_Stop.sig or signal.SIGINT)


def _wait_reader(name: str, ring: Ring, timeout: Optional[float]) -> int:
    """Wait for a gating reader, saying once that it waits: 0, or the
    exit status."""
    try:
        if ring.has_gating_reader():
            return 0
        log_line("info", "waiting", name, None, "pbring: ",
                 f"waiting for a gating reader on {name} "
                 "(start a consumer, or use --no-wait)")
        if ring.wait_gating_reader(timeout):
            return 0
    except Interrupted:
        log_line("info", "summary", name, None, "produce: ", "0 messages")
        return _stop_status(name)
    except PbringError as e:
        return fail(name, strerror(e.errno or 0))
    return fail(name, "no gating reader attached (start a consumer "
                      "first, or use --no-wait)")


class _Watch:
    """What changed under a running producer: gating readers that died
    (reaped by our waits or anyone's), the ring removed or shrunk."""

    def __init__(self, ring: Ring, name: str) -> None:
        self.ring = ring
        self.name = name
        self.reaped = ring.stats().readers_reaped
        self.gating = self._snapshot()
        self.seen, self.moved, self.said = 0, time.monotonic(), False

    def _snapshot(self) -> List[Tuple[int, int]]:
        return [(p.index, p.pid) for p in self.ring.participants()
                if p.is_reader and p.gating]

    def full(self) -> None:
        """Say which gating reader a full ring waits for: the one
        furthest behind (in wrapping order)."""
        slow = None
        for p in self.ring.participants():
            if p.is_reader and p.gating and (
                    slow is None or
                    (p.position - slow.position) % 2**64 >= 2**63):
                slow = p
        if slow is not None:
            dead = "" if slow.alive else ", dead"
            fail(self.name, f"ring is full: waiting for gating reader "
                            f"{slow.index} (pid {slow.pid}{dead}) to read")

    def note(self, sum_: int, now: float) -> None:
        """No message sent for a second: say once, per stall, what the
        producers wait for."""
        if sum_ != self.seen:
            self.seen, self.moved, self.said = sum_, now, False
        elif not self.said and now - self.moved >= 1.0:
            self.said = True
            self.full()

    def poll(self) -> Optional[PbringError]:
        reaped = self.ring.stats().readers_reaped
        now = self._snapshot()
        if reaped != self.reaped:
            gone = [g for g in self.gating if g not in now]
            # More left than were reaped: some closed normally, and which
            # ones cannot be told.
            how = "left or died" if len(gone) > reaped - self.reaped \
                else "died"
            self.reaped = reaped
            tail = ("" if now else "; no gating reader left, so nothing "
                    "holds messages back now")
            for index, pid in gone:
                fail(self.name,
                     f"gating reader {index} (pid {pid}) {how}{tail}")
        self.gating = now
        try:
            self.ring.check()
        except PbringError as e:
            return e
        return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    if (sig := _early.take()):
        return 128 + sig  # Ctrl-C while loading: quietly, as later
    args = list(sys.argv[1:] if argv is None else argv)
    if args and (args[0] == "--log-format" or
                 args[0].startswith("--log-format=")):
        v = args[0][len("--log-format="):] if "=" in args[0] else \
            (args[1] if len(args) > 1 else "")
        if v not in ("json", "text"):
            sys.stderr.write(f"pbring: --log-format: '{v}' is not json or "
                             "text (see 'pbring --help')\n")
            return EXIT_USAGE
        _Log.json = v == "json"
        args = args[1 if "=" in args[0] else 2:]
    cmd = args[0] if args else None
    _Log.cmd = cmd or "pbring"
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
        if cmd == "check":
            return cmd_check(args[1:])
    except BrokenPipeError:
        return EXIT_RUNTIME
    _Log.cmd = "pbring"
    if _Log.json:
        log_line("error", "usage", None, None, "", f"unknown command '{cmd}'")
    else:
        sys.stderr.write(f"pbring: unknown command '{cmd}' (see 'pbring "
                         "--help')\n")
    return EXIT_USAGE
