"""The state: root, snapshot, restore.

Invariants, in words:
1. The root depends on the state only, not on the order records were written in.
2. A snapshot is the canonical msgpack encoding of {chain_id, format, state}.
3. restore(snapshot()) gives the same root, and the restored ledger goes on identically.
4. A snapshot that is not ours (garbage, another chain, tampered) is refused.
5. A snapshot orders its keys by their UTF-8 bytes, and text in code-point order is in that
   order too (the snapshot sorts the str keys and writes each key's cached msgpack bytes).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortium import codec
from consortium.errors import LocalError
from consortium.ledger import Ledger, records
from consortium.ledger import state as t
from consortium.ledger.state import State
from consortium.ledger.workload import Workload
from tests.ledger.helpers import GENESIS, KEYS, Net


def party(i: int) -> records.PartyRecord:
    return records.PartyRecord(id=f"p{i}", name=f"P {i}", role="shipper", jurisdiction="HK", public_key=bytes(32),
                         member=False, registered_by="hkma", height=i)


@given(st.permutations(list(range(12))), st.sets(st.integers(0, 11), max_size=4))
def test_root_is_independent_of_write_order(order: list[int], deleted: set[int]) -> None:
    """Equal states have equal roots and snapshots, whatever the order of writes and deletes."""
    a, b = State(), State()
    for i in range(12):
        a.put(t.PARTY, f"p{i}", party(i))
    a.root()  # flush half-way: incremental maintenance must agree with one shot
    for i in sorted(deleted):
        a.delete(t.PARTY, f"p{i}")
    for i in order:
        if i not in deleted:
            b.put(t.PARTY, f"p{i}", party(i))
    assert a.root() == b.root()
    assert a.snapshot("c") == b.snapshot("c")


def test_rolled_back_writes_leave_no_trace() -> None:
    """A rejected transaction's writes vanish: same root as before."""
    s = State()
    before = s.root()
    s.begin()
    s.put(t.PARTY, "p1", party(1))
    assert s.get(t.PARTY, "p1") is not None
    s.rollback()
    assert s.get(t.PARTY, "p1") is None and s.root() == before


def busy_ledger(txs: int = 600, seed: int = 7) -> Ledger:
    ledger = Ledger(GENESIS)
    work = Workload(GENESIS, KEYS, random.Random(seed), invalid_ratio=0.05)
    now = GENESIS.genesis_time_ms + 86_400_000
    for h in range(1, txs // 100 + 1):
        now += 60_000
        ledger.apply(h, now, work.take(100, now))
    return ledger


def test_snapshot_is_canonical_and_restores_the_same_root() -> None:
    """A snapshot is canonical msgpack and restores to the same root and bytes."""
    ledger = busy_ledger()
    snap = ledger.snapshot()
    decoded = codec.decode(snap) if len(snap) <= 1_048_576 else None
    assert decoded is not None and codec.encode(decoded) == snap
    again = Ledger(GENESIS)
    again.restore(snap)
    assert again.state_root() == ledger.state_root() and again.snapshot() == snap


def test_a_restored_ledger_continues_identically() -> None:
    """Crash recovery: restore, then apply the same next blocks as a ledger that never stopped."""
    a = Ledger(GENESIS)
    wa = Workload(GENESIS, KEYS, random.Random(3))
    blocks = []
    now = GENESIS.genesis_time_ms + 86_400_000
    for h in range(1, 7):
        now += 60_000
        blocks.append((h, now, wa.take(50, now)))
    for h, when, txs in blocks[:3]:
        a.apply(h, when, txs)
    b = Ledger(GENESIS)
    b.restore(a.snapshot())
    for h, when, txs in blocks[3:]:
        assert [r.code for r in a.apply(h, when, txs)] == [r.code for r in b.apply(h, when, txs)]
        assert a.state_root() == b.state_root()


def test_foreign_or_tampered_snapshots_are_refused() -> None:
    """Garbage, another chain's or a truncated snapshot is refused (LocalError)."""
    snap = Net().ledger.snapshot()
    ledger = Ledger(GENESIS)
    for bad in (b"", b"\x81\xa1a\x01", snap.replace(b"test-chain", b"tesT-chain"), snap[:-1]):
        with pytest.raises(LocalError):
            ledger.restore(bad)


def test_fast_record_encoding_is_the_canonical_encoding() -> None:
    """records.encode (used for the root) equals codec.encode of the value form, for every
    record of a busy ledger (tuples of records, optional fields, bytes included)."""
    ledger = busy_ledger(txs=400, seed=5)
    seen = set()
    for table in t.TABLES:
        for _, rec in ledger.state.rows(table):
            assert records.encode(rec) == codec.encode(records.to_value(rec))
            seen.add(type(rec).__name__)
    assert {"Ebl", "ChainEntry", "Lc", "Financing", "Share", "Consent", "NonceWindow"} <= seen


@given(st.lists(st.text(st.characters(exclude_categories=["Cs"]), max_size=12), unique=True, max_size=40))
def test_text_order_is_utf8_byte_order(keys: list[str]) -> None:
    assert sorted(keys) == sorted(keys, key=lambda k: k.encode())


def test_the_snapshot_writes_each_key_as_msgpack_in_byte_order() -> None:
    s = State()
    ids = ["b", "a", "\u00e9t\u00e9", "z" * 40, "\U0001f600", "A-1", "a" * 300]
    for i, ident in enumerate(ids):
        s.put(t.PARTY, ident, party(i))
    value = codec.decode(s.snapshot("c"))
    keys = list(value["state"])
    assert keys == sorted(keys, key=lambda k: k.encode()) and len(keys) == len(ids)
