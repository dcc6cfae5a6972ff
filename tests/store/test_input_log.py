"""The input log of a recording node (consortium.node.record), written and read back in-process."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from consortium import codec, crypto
from consortium.codec import Kind
from consortium.consensus import events as ev
from consortium.errors import UserError
from consortium.node.record import BootInfo, Header, InputLog, LogError, LogReader, event_of, mono_ms_of

SIGNER = crypto.Signer(crypto.keypair_from_entropy(b"input-log-test"))
HEADER = Header("test-chain", "hkma", crypto.digest(b"genesis"))


def _events() -> list[ev.Event]:
    vote = codec.seal_envelope("test-chain", "sdb", Kind.PREVOTE,
                               {"height": 3, "round": 0, "block_id": crypto.digest(b"b")}, SIGNER)
    return [ev.Start(1_000), ev.Received(vote, 1_001), ev.TimeoutFired(ev.TimeoutKind.PROPOSE, 3, 1, 1_002),
            ev.TxSubmitted(b"\x01\x02tx", 1_003)]


def _boot(seq: int) -> BootInfo:
    return BootInfo(seq, 0, crypto.digest(b"root"), 0, None, None, 0, {"block_interval_ms": 100})


def _write(path: Path, events: list[ev.Event]) -> InputLog:
    w = InputLog(path, HEADER)
    w.boot(_boot(w.next_seq))
    for e in events:
        w.event(e)
        w.outputs([])
    w.commit(3, crypto.digest(b"id"), crypto.digest(b"root3"))
    return w


def test_events_round_trip_and_a_torn_tail_is_cut_and_continued(tmp_path: Path) -> None:
    """Every kind of input written by the node reads back as the same event, with
    input numbers 0, 1, 2...; a last record cut short (kill -9 while writing it) is
    reported by the reader, not fatal; the next run of the node cuts it off and
    continues the numbering after the last complete input, behind a new boot record. Each
    input record ends with when the node logged it on the host's monotonic clock (ms)."""
    path = tmp_path / "inputs.log"
    events = _events()
    before = time.monotonic_ns() // 1_000_000
    _write(path, events).close()
    after = time.monotonic_ns() // 1_000_000
    reader = LogReader(path)
    assert reader.header == HEADER
    records = [r for _, r in reader.records()]
    inputs = [r for r in records if r[0] in "SRTX"]
    assert [r[1] for r in inputs] == [0, 1, 2, 3]
    assert all(before <= mono_ms_of(r) <= after for r in inputs)  # when logged, on the host's monotonic clock
    assert [event_of(r) for r in inputs] == events
    assert [r[0] for r in records] == ["B", "S", "R", "T", "X", "C"]  # no "O" for a step without actions
    assert reader.torn is None

    whole = path.read_bytes()
    path.write_bytes(whole[:-7])  # the commit record, torn
    reader = LogReader(path)
    assert [r[0] for _, r in reader.records()] == ["B", "S", "R", "T", "X"]
    assert reader.torn is not None and "record 6" in reader.torn

    w = InputLog(path, HEADER)  # the node's next run
    assert w.next_seq == 4
    w.boot(_boot(w.next_seq))
    w.event(ev.Start(2_000))
    w.close()
    reader = LogReader(path)
    tail = [r for _, r in reader.records()][-2:]
    assert reader.torn is None
    assert tail[0][0] == "B" and tail[0][1] == 4 and tail[1][:3] == ["S", 4, 2_000]


def test_bad_logs_are_one_line_errors(tmp_path: Path) -> None:
    """A file that is no input log, another format version, a length that is no record,
    or a log of another chain reopened by a node: one error naming the file and record."""
    path = tmp_path / "inputs.log"
    _write(path, _events()).close()
    good = path.read_bytes()

    path.write_bytes(good.replace(b"\xa7version\x02", b"\xa7version\x01", 1))  # a log of before mono_ms
    with pytest.raises(LogError, match=r"inputs.log: record 0: input log format version 1; this consortium reads "
                                       r"version 2"):
        LogReader(path)

    path.write_bytes(good[:9])
    with pytest.raises(LogError, match="record 0: no header"):
        LogReader(path)

    path.write_bytes(b"hello, this is text and not a log")
    with pytest.raises(LogError, match="record 0"):
        LogReader(path)

    first = 4 + int.from_bytes(good[:4], "big")  # the header's frame
    path.write_bytes(good[:first] + b"\xff\xff\xff\xff" + good[first:])
    with pytest.raises(LogError, match=r"record 1: length \d+ >"):
        list(LogReader(path).records())

    path.write_bytes(good)
    with pytest.raises(UserError, match="another chain, node or format"):
        InputLog(path, Header("other-chain", "hkma", HEADER.genesis))
