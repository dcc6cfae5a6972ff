"""The faster apply path computes exactly what the former one did (issue 12).

Invariants, in words:
1. records.encode (msgspec, fields sorted) gives the bytes of the former encoder (fields
   sorted by their UTF-8 bytes, packed by msgpack-python) for every record: the workload's
   and randomly altered ones (any str, 64-bit ints, bytes, optional and nested fields).
2. records.replace gives the record dataclasses.replace gives, and fails alike (an
   invariant a record asserts: AssertionError; a misspelt field: TypeError).
3. NonceWindow.spend gives the window the former sort-and-trim built, for any fresh nonce.
4. The incremental state root after every block equals the root computed from scratch by
   its definition (every record encoded by the former encoder, 4096 buckets).
5. Over the bench workload (several seeds, with deliberate faults), every check_tx verdict,
   check_block verdict, tx result (hash, code, detail), state root after every block and
   the final snapshot are those the former code produced (digests pinned from it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortium import crypto, limits
from consortium.bench.ledger import consortium_genesis, generate
from consortium.consensus.app import BlockContext
from consortium.ledger import Ledger, records
from consortium.ledger import state as t
from consortium.ledger.records import Record

# ------------------------------------------------------------------ the former implementations


def former_encode(rec: Record) -> bytes:
    """records.encode before issue 12: a dict in field order sorted by UTF-8 bytes, packed."""
    return msgpack.packb(_former_sorted_value(rec), use_bin_type=True)  # type: ignore[no-any-return]


def _former_sorted_value(rec: Record) -> dict[str, Any]:
    names = sorted((f.name for f in dataclasses.fields(rec)), key=lambda n: n.encode())
    out: dict[str, Any] = {}
    for n in names:
        v = getattr(rec, n)
        if isinstance(v, Record):
            v = _former_sorted_value(v)
        elif isinstance(v, tuple):
            v = [_former_sorted_value(x) if isinstance(x, Record) else x for x in v]
        out[n] = v
    return out


def former_spend(w: records.NonceWindow, nonce: int) -> records.NonceWindow:
    """Ledger._consume_nonce before issue 12."""
    used = tuple(sorted(w.used + (nonce,)))
    floor = w.floor
    if len(used) > limits.used_nonces_max:
        floor, used = used[0], used[1:]
    return records.NonceWindow(floor=floor, used=used)


def root_from_scratch(state: t.State) -> bytes:
    """The state root by its definition (state.py), from every committed record."""
    buckets: list[list[tuple[bytes, bytes]]] = [[] for _ in range(t.BUCKETS)]
    for table in t.TABLES:
        for key, rec in state.items(table):
            hk = crypto.digest(f"{table.name}/{key}".encode())
            b = int.from_bytes(hk[:2], "big") >> (16 - t.BUCKET_BITS)
            buckets[b].append((hk, crypto.digest(former_encode(rec))))
    hashes = [crypto.digest(b"".join(k + v for k, v in sorted(leaves))) for leaves in buckets]
    return crypto.digest(t.ROOT_DOMAIN + b"".join(hashes))


# ------------------------------------------------------------------ corpora


def _workload_blocks(txs: int, block: int, seed: int, invalid: float) -> list[tuple[BlockContext, list[bytes]]]:
    genesis, keys = consortium_genesis()
    return generate(genesis, keys, txs, block, seed, invalid)


def _nested(rec: Record) -> list[Record]:
    out = [rec]
    for f in dataclasses.fields(rec):
        v = getattr(rec, f.name)
        for x in v if isinstance(v, tuple) else (v,):
            if isinstance(x, Record):
                out += _nested(x)
    return out


def _settlement_examples() -> list[Record]:
    """Records the bench workload does not write (settlement, VSA, LC amendments)."""
    return [
        records.Account(bank="bank-hk", currency="HKD", holder="hk-importer", balance=1_000),
        records.Liabilities(bank="bank-hk", currency="HKD", amount=1_000),
        records.Position(currency="CNY", debtor="bank-hk", creditor="bank-sh", amount=5),
        records.Flow(origin="HK", destination="CN-SH", currency="CNY", count=2, total=7),
        records.Settled(obligation="LC", ref="lc-1/p-1", payer="bank-hk", payee="sh-exporter", currency="CNY", paid=3),
        records.DvpRec(dvp_id="d1", ebl="e" * 64, buyer="hk-importer", bank="bank-hk", seller="sh-exporter",
                       seller_bank="bank-sh", currency="CNY", amount=9, status="SETTLED", height=3, settled_height=4),
        records.Vsa(carrier="carrier-hk", agreements=("v1", "v2"), partners=("carrier-sh",), height=2),
        records.Amendment(seq=1, amount=None, expiry_date="2026-01-01", latest_shipment_date=None,
                          documents_required=("BL", "INVOICE"), status="PROPOSED", height=5),
        records.Meta(height=2**63 - 1, time_ms=2**64 - 1),
        records.NonceWindow(floor=-(2**63), used=(-5, 0, 2**40)),
    ]


def _corpus() -> list[Record]:
    blocks = _workload_blocks(1_200, 256, 11, 0.05)
    genesis, _ = consortium_genesis()
    ledger = Ledger(genesis)
    for ctx, txs in blocks:
        ledger.apply_block(ctx, txs)
    found = [rec for table in t.TABLES for _, rec in ledger.state.items(table)]
    return [x for rec in found + _settlement_examples() for x in _nested(rec)]


CORPUS = _corpus()
BY_CLASS: dict[type, list[Record]] = {}
for _rec in CORPUS:
    BY_CLASS.setdefault(type(_rec), []).append(_rec)
RECORD_CLASSES = sorted(BY_CLASS, key=lambda c: c.__name__)
WORDS = ["ISSUED", "VOIDED", "UTILIZED", "PRESENTED", "REFUSED", "HONOURED", "DUE", "PAID", "LIVE", "REPAID",
         "REQUESTED", "GRANTED", "REVOKED", "ACTIVE", "ERASED", "OFFERED", "SETTLED", "CANCELLED", "PROPOSED",
         "ACCEPTED", "ISSUE", "TRANSFER", "RETURN"]


def _values(hint: Any) -> st.SearchStrategy[Any]:
    if hint is NoneType:
        return st.none()
    origin = get_origin(hint)
    if origin in (Union, UnionType):
        return st.one_of(*(_values(a) for a in get_args(hint)))
    if origin is tuple:
        return st.lists(_values(get_args(hint)[0]), max_size=4).map(tuple)
    if isinstance(hint, type) and issubclass(hint, Record):
        return st.sampled_from(BY_CLASS[hint])
    simple: dict[type, st.SearchStrategy[Any]] = {
        str: st.one_of(st.sampled_from(WORDS), st.text(max_size=40)),
        int: st.integers(-(2**63), 2**64 - 1) | st.integers(-40, 300),
        bool: st.booleans(), bytes: st.one_of(st.binary(max_size=300), st.binary(min_size=32, max_size=32))}
    return simple[hint]


@st.composite
def altered(draw: st.DrawFn) -> tuple[Record, dict[str, Any]]:
    """A corpus record and a few of its fields set to arbitrary values of their types."""
    cls = draw(st.sampled_from(RECORD_CLASSES))
    rec = draw(st.sampled_from(BY_CLASS[cls]))
    hints = records._hints(cls)
    names = draw(st.lists(st.sampled_from(sorted(hints)), max_size=4, unique=True)) if hints else []
    return rec, {n: draw(_values(hints[n])) for n in names}


def _outcome(fn: Any, rec: Record, changes: dict[str, Any]) -> Any:
    try:
        return fn(rec, **changes)
    except (AssertionError, TypeError) as exc:
        return type(exc)


# ------------------------------------------------------------------ 1-3: the record functions


def test_encode_equals_the_former_encoder_on_the_corpus() -> None:
    """Every record a workload leaves in the state (and the nested ones, and the settlement
    examples) encodes to the former encoder's bytes."""
    assert {"Ebl", "ChainEntry", "Lc", "LcTerms", "Presentation", "Financing", "CollateralRec", "Share", "Consent",
            "NonceWindow", "LoadIndex", "LoadRef", "CalendarRec", "Account", "DvpRec", "Amendment"} <= {
        c.__name__ for c in RECORD_CLASSES}
    for rec in CORPUS:
        assert records.encode(rec) == former_encode(rec), rec


@given(altered())
def test_replace_and_encode_equal_the_former_ones(case: tuple[Record, dict[str, Any]]) -> None:
    """replace = dataclasses.replace (result or exception type), and the result encodes
    to the former encoder's bytes."""
    rec, changes = case
    new, old = _outcome(records.replace, rec, changes), _outcome(dataclasses.replace, rec, changes)
    assert new == old
    if isinstance(new, Record):
        assert type(new) is type(rec) and records.encode(new) == former_encode(new)


def test_replace_refuses_what_dataclasses_replace_refuses() -> None:
    """A misspelt field is a TypeError; a broken record invariant an AssertionError."""
    rec = BY_CLASS[records.Ebl][0]
    with pytest.raises(TypeError):
        records.replace(rec, posessor="x")
    with pytest.raises(AssertionError):
        records.replace(rec, status="LOST")


@given(st.integers(-3, 200), st.sets(st.integers(0, 200), max_size=limits.used_nonces_max),
       st.lists(st.integers(-3, 300), max_size=80))
def test_spend_equals_the_former_window(floor: int, used: set[int], nonces: list[int]) -> None:
    """Spending fresh nonces one by one builds the windows the former sort-and-trim built."""
    w = records.NonceWindow(floor=floor, used=tuple(sorted(u for u in used if u > floor)))
    for n in nonces:
        if n <= w.floor or n in w.used:
            continue  # _check_nonce refuses it (DUPE) before any spend
        new, old = w.spend(n), former_spend(w, n)
        assert new == old and records.encode(new) == former_encode(old)
        w = new


# ------------------------------------------------------------------ 4-5: the ledger


@pytest.mark.parametrize(("txs", "block", "seed", "invalid", "expected"), [
    (2_000, 256, 1, 0.05, ("6b0e86a48ebc884f4691d9cb8523f7fa", "6ac2eaa91d6069692805861803dee1cc")),
    (2_000, 97, 3, 0.2, ("f86ca9eff425d60c70d3f7f3e83d4fea", "631722c7b60ba71f7799f06f4a7fe840")),
])
def test_workload_verdicts_results_roots_and_snapshot_are_the_former_ones(
        txs: int, block: int, seed: int, invalid: float, expected: tuple[str, str]) -> None:
    """A node's ledger calls over the bench workload (check_tx per tx, check_block,
    apply_block, state_root): digests pinned from the code before issue 12. The root after
    every block also equals the from-scratch root."""
    blocks = _workload_blocks(txs, block, seed, invalid)
    genesis, _ = consortium_genesis()
    ledger = Ledger(genesis)
    h = hashlib.sha256()
    rng = random.Random(seed)
    for ctx, raw in blocks:
        for x in raw:
            h.update(repr(("check", ledger.check_tx(bytes(bytearray(x)) if rng.random() < 0.3 else x))).encode())
        h.update(repr(ledger.check_block(ctx, raw)).encode())
        for r in ledger.apply_block(ctx, raw):
            h.update(repr((r.tx_hash, r.code, r.detail)).encode())
        root = ledger.state_root()
        h.update(root)
        if ctx.height % 4 == 1:
            assert root == root_from_scratch(ledger.state)
    assert ledger.state_root() == root_from_scratch(ledger.state)
    snapshot = ledger.snapshot()
    assert (h.hexdigest()[:32], hashlib.sha256(snapshot).hexdigest()[:32]) == expected
    again = Ledger(genesis)
    again.restore(snapshot)
    assert again.state_root() == ledger.state_root()


def test_root_stays_the_definition_through_deletes_and_rewrites() -> None:
    """Writes, rewrites, deletes and re-creations of the same keys across roots: the
    incremental root is the from-scratch root each time."""
    rng = random.Random(5)
    s = t.State()
    pool = [rec for rec in CORPUS if isinstance(rec, records.PartyRecord | records.Account | records.Ebl)]
    for _ in range(30):
        for _ in range(rng.randrange(1, 40)):
            rec = rng.choice(pool)
            table = {records.PartyRecord: t.PARTY, records.Account: t.ACCOUNT, records.Ebl: t.EBL}[type(rec)]
            key = f"k{rng.randrange(60)}"
            if rng.random() < 0.3:
                s.delete(table, key)
            else:
                s.put(table, key, rec)
        assert s.root() == root_from_scratch(s)
