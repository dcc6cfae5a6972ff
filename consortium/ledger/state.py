"""The ledger state: typed tables, atomic per-transaction writes, an incremental root.

Theory of operation
- Every record lives under a full key "table/id". Handlers read and write
  through `get`/`put`/`delete` inside `begin()`..`commit()`; `rollback()`
  drops a rejected transaction's writes, so a tx is applied whole or not at all.
- The state root is a two-level hash: a key hashes (SHA-256) into one of 4096
  buckets; a bucket's hash covers its (key hash, value hash) leaves in key-hash
  order; the root hashes the domain tag and the 4096 bucket hashes in order.
  Only buckets touched since the last root are recomputed, and values are
  encoded once per block, so the cost of `root()` follows the block, not the
  size of the state; with no write since the last root it is that root (the
  4096 bucket hashes alone take ~130 us to hash, and a node asks for the root
  several times a height: commit, proposal built or checked, status record).
  Equal states give equal roots whatever the write order.
- A snapshot is the canonical msgpack map {chain_id, format, state: {key: value}}
  (keys sorted); it is assembled from the cached encodings.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgpack

from consortium import crypto, limits
from consortium.errors import LocalError
from consortium.ledger import records as r

R = TypeVar("R", bound=r.Record)

ROOT_DOMAIN = b"consortium/ledger-state/v1\x00"
SNAPSHOT_FORMAT = "consortium-ledger-snapshot/1"
BUCKET_BITS = 12
BUCKETS = 1 << BUCKET_BITS
_EMPTY_BUCKET = crypto.digest(b"")
_sha256 = hashlib.sha256  # crypto.digest(x) is _sha256(x).digest()
_DELETED = object()


@dataclass(frozen=True, slots=True)
class Table(Generic[R]):
    name: str
    cls: type[R]


PARTY = Table("party", r.PartyRecord)
NONCE = Table("nonce", r.NonceWindow)
META = Table("meta", r.Meta)
EBL = Table("ebl", r.Ebl)
CHAIN = Table("chain", r.ChainEntry)
DOC = Table("doc", r.Doc)
REF = Table("ref", r.RefIndex)
EVENT = Table("event", r.CargoEventRec)
LOAD = Table("load", r.LoadIndex)
LC = Table("lc", r.Lc)
PRES = Table("pres", r.Presentation)
FIN = Table("fin", r.Financing)
LIEN = Table("lien", r.Lien)
DATA = Table("data", r.Attestation)
CONSENT = Table("consent", r.Consent)
SHARE = Table("share", r.Share)
ACCOUNT = Table("acct", r.Account)  # settlement: key bank/currency/holder
LIAB = Table("liab", r.Liabilities)  # key bank/currency
POSITION = Table("ibpos", r.Position)  # key currency/bank/bank (ids sorted)
FLOW = Table("flow", r.Flow)  # key origin>destination/currency
SETTLED = Table("settled", r.Settled)  # key obligation/ref
DVP = Table("dvp", r.DvpRec)
CAL = Table("cal", r.CalendarRec)  # banking calendar per jurisdiction, from the genesis (UCP 600)
VSA = Table("vsa", r.Vsa)  # vessel-sharing partners per carrier (rules/cargo.py)
TABLES: tuple[Table[Any], ...] = (PARTY, NONCE, META, EBL, CHAIN, DOC, REF, EVENT, LOAD, LC, PRES, FIN,
                                  LIEN, DATA, CONSENT, SHARE, ACCOUNT, LIAB, POSITION, FLOW, SETTLED, DVP, CAL, VSA)
BY_NAME: dict[str, Table[Any]] = {t.name: t for t in TABLES}


def chain_key(ebl: str, seq: int) -> str:
    return f"{ebl}/{seq:08d}"


class State:
    """All records, by table. Not thread-safe; one writer (the ledger)."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, r.Record]] = {t.name: {} for t in TABLES}
        self._pending: dict[tuple[str, str], object] | None = None
        self._enc: dict[str, bytes] = {}  # full key -> canonical value bytes (clean keys)
        self._vhash: dict[str, bytes] = {}  # full key -> SHA-256 of those bytes
        self._dirty: set[str] = set()  # full keys written since the last root
        # full key -> (its SHA-256, its bucket, the key as msgpack: the snapshot's map key)
        self._where: dict[str, tuple[bytes, int, bytes]] = {}
        self._buckets: list[dict[bytes, bytes]] = [{} for _ in range(BUCKETS)]  # key hash -> leaf
        self._bucket_hash: list[bytes] = [_EMPTY_BUCKET] * BUCKETS
        self._dirty_buckets: set[int] = set()
        self._root: bytes | None = None  # the root while nothing changed since it was computed
        self._touched: set[str] | None = set()  # keys written since drain_touched (None: overflowed)

    # ---------------------------------------------------------------- reads and writes

    def get(self, table: Table[R], key: str) -> R | None:
        if self._pending:  # None outside a transaction; empty until its first write
            found = self._pending.get((table.name, key))
            if found is _DELETED:
                return None
            if found is not None:
                return found  # type: ignore[return-value]
        return self._data[table.name].get(key)  # type: ignore[return-value]

    def put(self, table: Table[R], key: str, rec: R) -> None:
        assert isinstance(rec, table.cls), (table.name, type(rec))
        if self._pending is not None:
            self._pending[(table.name, key)] = rec
        else:
            self._write(table.name, key, rec)

    def delete(self, table: Table[Any], key: str) -> None:
        if self._pending is not None:
            self._pending[(table.name, key)] = _DELETED
        else:
            self._write(table.name, key, None)

    def begin(self) -> None:
        assert self._pending is None, "transactions do not nest"
        self._pending = {}

    def commit(self) -> None:
        """_write of every pending record, inlined (once per transaction)."""
        assert self._pending is not None
        pending, self._pending = self._pending, None
        data, dirty, touched = self._data, self._dirty, self._touched
        for (name, key), rec in pending.items():
            if rec is _DELETED:
                data[name].pop(key, None)
            else:
                data[name][key] = rec  # type: ignore[assignment]
            full = f"{name}/{key}"
            dirty.add(full)
            if touched is not None:
                touched.add(full)
        if touched is not None and len(touched) > limits.state_touched_keys_max:
            self._touched = None  # the consumer falls back to a full pass

    def rollback(self) -> None:
        assert self._pending is not None
        self._pending = None

    def _write(self, name: str, key: str, rec: r.Record | None) -> None:
        if rec is None:
            self._data[name].pop(key, None)
        else:
            self._data[name][key] = rec
        full = f"{name}/{key}"
        self._dirty.add(full)
        if self._touched is not None:
            self._touched.add(full)
            if len(self._touched) > limits.state_touched_keys_max:
                self._touched = None  # the consumer falls back to a full pass

    def rows(self, table: Table[R]) -> list[tuple[str, R]]:
        """Committed records of a table, sorted by key (queries and invariants only)."""
        data = self._data[table.name]
        return [(k, data[k]) for k in sorted(data)]  # type: ignore[misc]

    def items(self, table: Table[R]) -> list[tuple[str, R]]:
        """Committed records of a table in no particular order (cheaper than rows)."""
        return list(self._data[table.name].items())  # type: ignore[arg-type]

    def digests(self) -> list[tuple[str, bytes]]:
        """(full key, SHA-256 of the record's encoding) of every record (call root() first)."""
        assert not self._dirty, "digests are current only after root()"
        return list(self._vhash.items())

    def record(self, full_key: str) -> r.Record | None:
        name, _, key = full_key.partition("/")
        return self._data[name].get(key)

    def drain_touched(self) -> set[str] | None:
        """Full keys written since the last call (None if too many to track): lets the
        invariant checker look at what changed only."""
        touched, self._touched = self._touched, set()
        return touched

    def count(self, table: Table[Any]) -> int:
        return len(self._data[table.name])

    def digest_of(self, table: Table[Any], key: str) -> bytes | None:
        """SHA-256 of a committed record's canonical encoding (call root() first)."""
        assert not self._dirty, "digests are current only after root()"
        return self._vhash.get(f"{table.name}/{key}")

    # ---------------------------------------------------------------- the root

    def root(self) -> bytes:
        assert self._pending is None, "root of a half-applied transaction"
        self._flush()
        if not self._dirty_buckets and self._root is not None:
            return self._root  # a proposal check, a block built, a status record: no write since
        buckets, bucket_hash, join, sha256 = self._buckets, self._bucket_hash, b"".join, _sha256
        for b in sorted(self._dirty_buckets):
            # the leaves (key hash + value hash, one bytes object each) in key-hash order: key
            # hashes are unique and 32 bytes long, so sorting the leaves sorts by key hash
            bucket_hash[b] = sha256(join(sorted(buckets[b].values()))).digest()
        self._dirty_buckets.clear()
        self._root = crypto.digest(ROOT_DOMAIN + b"".join(self._bucket_hash))
        return self._root

    def _flush(self) -> None:
        """Encode every dirty record once and update its bucket leaf."""
        data, where, enc_of, vhash, buckets = self._data, self._where, self._enc, self._vhash, self._buckets
        dirty_buckets = self._dirty_buckets
        encode, sha256 = r.ENCODER.encode, _sha256  # r.encode and crypto.digest, inlined
        for full in sorted(self._dirty):
            name, _, key = full.partition("/")
            rec = data[name].get(key)
            loc = where.get(full)
            if loc is None:
                hk = sha256(full.encode()).digest()
                loc = where[full] = (hk, int.from_bytes(hk[:2], "big") >> (16 - BUCKET_BITS), _pack(full))
            hk, b, _ = loc
            if rec is None:
                enc_of.pop(full, None)
                vhash.pop(full, None)
                buckets[b].pop(hk, None)
                del where[full]
            else:
                enc = enc_of[full] = encode(rec)
                vh = vhash[full] = sha256(enc).digest()
                buckets[b][hk] = hk + vh  # the leaf, joined once here rather than at every root
            dirty_buckets.add(b)
        self._dirty.clear()

    # ---------------------------------------------------------------- snapshot / restore

    def snapshot(self, chain_id: str) -> bytes:
        self.root()  # flush: every encoding is current
        parts = [_map_header(3), _pack("chain_id"), _pack(chain_id), _pack("format"), _pack(SNAPSHOT_FORMAT),
                 _pack("state"), _map_header(len(self._enc))]
        enc, where = self._enc, self._where
        # keys in the order of their UTF-8 bytes, which is their str order: UTF-8 keeps the
        # order of code points (and a key is valid text, or it could not be encoded)
        for full in sorted(enc):
            parts.append(where[full][2])
            parts.append(enc[full])
        return b"".join(parts)

    @classmethod
    def restore(cls, data: bytes, chain_id: str) -> State:
        """Rebuild from `snapshot` bytes; LocalError if they are not one of ours."""
        try:
            value = msgpack.unpackb(data, raw=False, strict_map_key=True, max_map_len=limits.snapshot_container_len_max,
                                    max_array_len=limits.snapshot_container_len_max,
                                    max_str_len=limits.snapshot_container_len_max,
                                    max_bin_len=limits.snapshot_container_len_max)
        except Exception as exc:  # msgpack raises many types
            raise LocalError(f"snapshot is not msgpack ({type(exc).__name__})") from None
        if not isinstance(value, dict) or value.get("format") != SNAPSHOT_FORMAT:
            raise LocalError("not a ledger snapshot")
        if value.get("chain_id") != chain_id:
            raise LocalError(f"snapshot of chain {value.get('chain_id')!r}, not {chain_id!r}")
        state = cls()
        for full, rec_value in value["state"].items():
            name, _, key = full.partition("/")
            table = BY_NAME.get(name)
            if table is None:
                raise LocalError(f"snapshot holds unknown table {name!r}")
            try:
                state._write(name, key, r.from_value(table.cls, rec_value))
            except (ValueError, TypeError, AssertionError) as exc:
                raise LocalError(f"snapshot record {full!r} is invalid ({exc})") from None
        if state.snapshot(chain_id) != data:
            raise LocalError("snapshot is not canonical")
        return state


#: msgpack.packb(value, use_bin_type=True) without a new Packer per call (once per new key)
_pack = msgpack.Packer(use_bin_type=True).pack


def _map_header(n: int) -> bytes:
    """msgpack map header, shortest form (as msgpack-python writes it)."""
    if n < 16:
        return bytes([0x80 | n])
    if n < 2**16:
        return b"\xde" + struct.pack(">H", n)
    return b"\xdf" + struct.pack(">I", n)
