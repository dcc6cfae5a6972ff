"""A live node's input log: everything its Replica was given, in order, to replay offline.

Theory of operation. A Replica is a pure function of its start state and the events
it steps through (`Replica.step(event) -> actions`; time arrives only inside the
events). So a live node that writes down, BEFORE each step, the event it is about to
give the replica (and, at each boot, the state the replica is built from) can be
re-run offline by `consortium replay-node` (consortium.node.replay), which must then
produce the same actions, the same blocks and the same state roots, bit for bit.

File: HOME/nodes/<id>/inputs.log, append-only, one file across the node's restarts
(each process run appends a boot record). A record is a 4-byte big-endian length and
that many bytes of msgpack (msgspec; not the canonical codec, whose frame limit a
record holding a full frame would exceed). Record 0 is the header, a map:
{"magic": MAGIC, "version": FORMAT_VERSION, "chain": chain id, "node": member id,
"genesis": genesis digest}. Every later record is a list whose first item is a tag:

  ["B", seq, {...}]                 boot: the Replica's start state (see BootInfo)
  ["S", seq, now_ms, mono_ms]               Start
  ["R", seq, now_ms, frame, mono_ms]        Received: the frame as checked by the adapter,
                                            after the network filter (and any filter delay)
  ["T", seq, now_ms, kind, h, r, mono_ms]   TimeoutFired
  ["X", seq, now_ms, tx, mono_ms]           TxSubmitted (a transaction admission attempt)
  ["O", seq, digest]                the digest of the actions the step of input `seq`
                                    returned (only when it returned any, or raised)
  ["C", seq, height, id, root]      the block id and state root the node committed at
                                    `height` (durable in its store) during input `seq`

`now_ms` is the event's time as the replica got it: ledger time (wall clock plus the
run's clock offset, which a scenario's `advance` fault moves by days). `mono_ms`
(format version 2) is when the node logged the event on the host's monotonic clock
(`time.monotonic()` in ms, shared by every process of the machine): a live scenario's
trace puts each node's timeouts and received frames on its own time base with it
(consortium/scenario/tracing.py `from_input_logs`). Version 1 logs (without it) are
refused with a one-line error, like any other version.

`seq` numbers the inputs (S, R, T, X) of the file from 0, continuing across restarts
(a boot record carries the next one), so a missing input shows as a gap. Each record
is one os.write of an unbuffered descriptor: a kill -9 loses at most the record being
written (no fsync: a power loss may lose more; the store, not this log, is what the
node needs to restart). A node that finds a torn last record when it opens the file
(it died mid-write) cuts it off before appending; a reader reports a torn last record
and reads everything before it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from consortium import codec, limits
from consortium.consensus import events as ev
from consortium.consensus.messages import Decided
from consortium.consensus.replica import Guard
from consortium.errors import UserError

log = logging.getLogger(__name__)

MAGIC = "consortium-input-log"
FORMAT_VERSION = 2  # 2: input records end with mono_ms
LOG_FILE = "inputs.log"
#: Environment variable: "1" turns recording on in a node process (set by `up --record`).
RECORD_ENV = "CONSORTIUM_RECORD"

_LEN = struct.Struct(">I")
_ENC = msgspec.msgpack.Encoder()
_DEC = msgspec.msgpack.Decoder()

#: Input tags and the names `replay-node` reports them by.
INPUT_TAGS = {"S": "start", "R": "received", "T": "timeout", "X": "tx"}


def log_path(home: Path, node_id: str) -> Path:
    return home / "nodes" / node_id / LOG_FILE


class LogError(UserError):
    """The log is not a readable input log of this format (bad input: exit 2)."""

    def __init__(self, path: Path, index: int, message: str) -> None:
        super().__init__(f"{path}: record {index}: {message}")
        self.index = index


@dataclass(frozen=True, slots=True)
class Header:
    chain: str
    node: str
    genesis: bytes
    version: int = FORMAT_VERSION

    def to_wire(self) -> dict[str, Any]:
        return {"magic": MAGIC, "version": self.version, "chain": self.chain, "node": self.node,
                "genesis": self.genesis}


@dataclass(frozen=True, slots=True)
class BootInfo:
    """What a node process built its Replica from (NodeRuntime._boot, _learn_chain_height)."""

    seq: int  # the number the next input will get
    height: int  # the store's (and the ledger's) last height
    state_root: bytes  # the ledger's state root at boot
    snapshot_height: int  # the snapshot the ledger was restored from (0: from genesis)
    decided: Decided | None  # Restored.decided
    guard: Guard | None  # Restored.guard
    follow_to: int  # Restored.follow_to
    params: dict[str, int] = field(default_factory=dict)  # timing params (block-interval override included)
    pid: int = 0
    time_ms: int = 0

    def to_wire(self) -> dict[str, Any]:
        g = self.guard
        return {"height": self.height, "state_root": self.state_root, "snapshot_height": self.snapshot_height,
                "decided": self.decided.to_wire() if self.decided is not None else None,
                "guard": [g.height, g.round, int(g.step), g.payload, g.lock] if g is not None else None,
                "follow_to": self.follow_to, "params": dict(self.params), "pid": self.pid, "time_ms": self.time_ms}

    @staticmethod
    def from_wire(seq: int, m: Any) -> BootInfo:
        """Raises ValueError/KeyError/TypeError/DecodeError on a malformed record."""
        g = m["guard"]
        guard = None if g is None else Guard(int(g[0]), int(g[1]), ev.Step(g[2]), bytes(g[3]), bytes(g[4]))
        decided = None if m["decided"] is None else Decided.from_wire(m["decided"])
        params = m["params"]
        if not isinstance(params, dict) or not all(isinstance(k, str) and type(v) is int for k, v in params.items()):
            raise ValueError("params is not a map of ints")
        return BootInfo(seq, int(m["height"]), bytes(m["state_root"]), int(m["snapshot_height"]), decided, guard,
                        int(m["follow_to"]), params, int(m.get("pid", 0)), int(m.get("time_ms", 0)))


# ---------------------------------------------------------------- events <-> records


def event_record(seq: int, e: ev.Event, mono_ms: int) -> list[Any]:
    if isinstance(e, ev.Received):
        return ["R", seq, e.now_ms, e.envelope.encode(), mono_ms]
    if isinstance(e, ev.TxSubmitted):
        return ["X", seq, e.now_ms, e.tx, mono_ms]
    if isinstance(e, ev.TimeoutFired):
        return ["T", seq, e.now_ms, str(e.kind), e.height, e.round, mono_ms]
    return ["S", seq, e.now_ms, mono_ms]


def mono_ms_of(rec: list[Any]) -> int:
    """When the node logged an input record, on the host's monotonic clock (ms): its last field."""
    t = rec[-1]
    if type(t) is not int:
        raise ValueError("mono_ms is not an int")
    return t


def event_of(rec: list[Any]) -> ev.Event:
    """The event of an input record. DecodeError if a logged frame does not decode;
    ValueError/TypeError/IndexError if the record has the wrong shape."""
    tag, now = rec[0], rec[2]
    if type(now) is not int:
        raise ValueError("now_ms is not an int")
    if tag == "R":
        return ev.Received(codec.decode_unverified(_bytes(rec[3])), now)
    if tag == "X":
        return ev.TxSubmitted(_bytes(rec[3]), now)
    if tag == "T":
        return ev.TimeoutFired(ev.TimeoutKind(rec[3]), int(rec[4]), int(rec[5]), now)
    if tag == "S":
        return ev.Start(now)
    raise ValueError(f"{tag!r} is not an input")


def _bytes(v: Any) -> bytes:
    if not isinstance(v, bytes):
        raise TypeError("expected bytes")
    return v


def describe(e: ev.Event, height: int) -> tuple[str, int]:
    """(what the input was, the height it concerns) for reports."""
    if isinstance(e, ev.Received):
        env = e.envelope
        h = env.body.get("height") if isinstance(env.body, dict) else None
        return f"received {env.kind} from {env.sender}", h if isinstance(h, int) else height
    if isinstance(e, ev.TimeoutFired):
        return f"timeout {e.kind} (round {e.round})", e.height
    if isinstance(e, ev.TxSubmitted):
        return "tx admission", height
    return "start", height


def outputs_digest(actions: Sequence[ev.Action] | None) -> bytes:
    """A digest of the actions one step returned (None: the step raised). Everything
    the driver carries out goes in: signed frames, guard records, commits (block,
    certificate, results, root), timers, evidence."""
    h = hashlib.blake2b(digest_size=limits.input_log_digest_bytes)
    if actions is None:
        h.update(b"raised")
        return h.digest()
    for a in actions:
        if isinstance(a, ev.Broadcast):
            part: list[Any] = ["B", a.envelope.encode()]
        elif isinstance(a, ev.SendTo):
            part = ["S", a.to, a.envelope.encode()]
        elif isinstance(a, ev.Persist):
            part = ["P", a.height, a.round, int(a.step), a.payload, a.lock]
        elif isinstance(a, ev.Commit):
            part = ["C", a.block.id, a.state_root, codec.encode(a.certificate.to_wire()),
                    [[r.tx_hash, r.code, r.detail] for r in a.results]]
        elif isinstance(a, ev.ScheduleTimeout):
            part = ["T", str(a.kind), a.height, a.round, a.delay_ms]
        else:
            part = ["E", codec.encode(a.evidence.to_wire())]
        h.update(_ENC.encode(part))
    return h.digest()


# ---------------------------------------------------------------- writing


class InputLog:
    """The writer a recording node holds (NodeRuntime, `record`)."""

    def __init__(self, path: Path, header: Header) -> None:
        self.path = path
        self.header = header
        self.next_seq = 0
        self.last_seq = -1
        self.records = 0
        self.failed = False
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > 0:
            self._resume()
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        else:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._write(header.to_wire())

    def _resume(self) -> None:
        """Append to an earlier run's log: same header, torn tail cut off, seq continued."""
        reader = LogReader(self.path)
        if reader.header != self.header:
            raise UserError(f"{self.path}: input log of another chain, node or format "
                            f"({reader.header.chain}/{reader.header.node}, version {reader.header.version}); "
                            "move it away to record a new one")
        last: list[Any] | None = None
        for _, rec in reader.records():
            last = rec
        if reader.torn is not None:
            log.warning("%s: cutting off a torn last record at byte %d (%s)", self.path, reader.good_bytes,
                        reader.torn)
            os.truncate(self.path, reader.good_bytes)
        if last is not None:
            self.next_seq = last[1] if last[0] == "B" else last[1] + 1

    def _write(self, value: Any) -> None:
        if self.failed:
            return
        body = _ENC.encode(value)
        try:
            os.write(self._fd, _LEN.pack(len(body)) + body)
        except OSError as exc:  # disk full: stop recording (the log ends here), keep the node running
            self.failed = True
            log.error("%s: recording stopped: %s", self.path, exc)
            return
        self.records += 1

    def boot(self, info: BootInfo) -> None:
        self._write(["B", self.next_seq, info.to_wire()])

    def event(self, e: ev.Event) -> None:
        self.last_seq = self.next_seq
        self.next_seq += 1
        self._write(event_record(self.last_seq, e, time.monotonic_ns() // 1_000_000))

    def outputs(self, actions: Sequence[ev.Action] | None) -> None:
        if actions is None or actions:
            self._write(["O", self.last_seq, outputs_digest(actions)])

    def commit(self, height: int, block_id: bytes, state_root: bytes) -> None:
        self._write(["C", self.last_seq, height, block_id, state_root])

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


# ---------------------------------------------------------------- reading


class LogReader:
    """Reads an input log record by record. The header is read (and its format
    checked) on construction; LogError names the record that is wrong. A torn last
    record (the node died writing it) ends the iteration: `torn` says what was cut."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.torn: str | None = None
        self.good_bytes = 0  # bytes of complete records read so far
        self.size = path.stat().st_size
        with open(path, "rb") as f:
            raw = self._frame(f, 0)
        if raw is None:
            raise LogError(path, 0, "no header: not an input log (empty or cut short)")
        try:
            m = _DEC.decode(raw)
        except msgspec.DecodeError:
            raise LogError(path, 0, "not an input log (the header does not decode)") from None
        if not isinstance(m, dict) or m.get("magic") != MAGIC:
            raise LogError(path, 0, "not an input log (no consortium input-log header)")
        if m.get("version") != FORMAT_VERSION:
            raise LogError(path, 0, f"input log format version {m.get('version')!r}; this consortium reads "
                                    f"version {FORMAT_VERSION}")
        try:
            self.header = Header(str(m["chain"]), str(m["node"]), _bytes(m["genesis"]), FORMAT_VERSION)
        except (KeyError, TypeError):
            raise LogError(path, 0, "header lacks chain, node or genesis") from None

    def _frame(self, f: BinaryIO, index: int) -> bytes | None:
        """The next record's bytes; None at a clean end or a torn tail (self.torn)."""
        head = f.read(_LEN.size)
        if not head:
            return None
        if len(head) < _LEN.size:
            self.torn = f"record {index}: {len(head)} of {_LEN.size} length bytes"
            return None
        (n,) = _LEN.unpack(head)
        if n > limits.input_log_record_bytes_max:
            raise LogError(self.path, index, f"length {n} > {limits.input_log_record_bytes_max} bytes (not a record)")
        body = f.read(n)
        if len(body) < n:
            self.torn = f"record {index}: {len(body)} of {n} bytes"
            return None
        self.good_bytes += _LEN.size + n
        return body

    def records(self) -> Iterator[tuple[int, list[Any]]]:
        """(index, record) after the header, in file order; checks tag and seq types."""
        self.torn, self.good_bytes = None, 0
        with open(self.path, "rb") as f:
            self._frame(f, 0)
            index = 0
            while True:
                index += 1
                raw = self._frame(f, index)
                if raw is None:
                    return
                try:
                    rec = _DEC.decode(raw)
                except msgspec.DecodeError:
                    if f.tell() == self.size:  # a last record that does not decode: torn as well
                        self.good_bytes -= _LEN.size + len(raw)
                        self.torn = f"record {index}: does not decode"
                        return
                    raise LogError(self.path, index, "does not decode (msgpack)") from None
                if (not isinstance(rec, list) or len(rec) < 2 or rec[0] not in _TAGS
                        or type(rec[1]) is not int or len(rec) != _TAGS[rec[0]]):
                    raise LogError(self.path, index, "not a record of this format (tag, seq, fields)")
                yield index, rec


_TAGS = {"B": 3, "S": 4, "R": 5, "T": 7, "X": 5, "O": 3, "C": 5}


def check_record(path: Path, index: int, rec: list[Any]) -> None:
    """Field types of a record (beyond tag and seq), LogError if wrong."""
    tag = rec[0]
    ok = True
    if tag in ("O",):
        ok = isinstance(rec[2], bytes)
    elif tag == "C":
        ok = type(rec[2]) is int and isinstance(rec[3], bytes) and isinstance(rec[4], bytes)
    elif tag == "B":
        ok = isinstance(rec[2], dict)
    if not ok:
        raise LogError(path, index, f"{tag!r} record has fields of the wrong type")
