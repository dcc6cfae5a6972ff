"""A live node's SQLite store, seen from the driver: replica actions in, replica state out.

Encodings (all canonical msgpack, consortium.codec):
- blocks.block / blocks.certificate: `Block.to_wire()` / `Certificate.to_wire()`.
- blocks.results: [[tx_hash, code, detail], ...], one entry per tx of the block.
- guard.payload: {"payload": Persist.payload, "lock": Persist.lock}. The store's
  guard row has no lock column; the replica needs both back after a restart
  (what it signed, to re-send it; its lock, so that it never prevotes against a
  value it precommitted), so they travel together in the payload blob.

Snapshots. The ledger snapshot is the whole state: its cost grows with the
state (about 1.5 s and 12 MB after 20,000 workload txs on the reference
machine), so writing it with every block would make block time grow without
bound. A decided height is committed atomically WITH its state root but, except
every `snapshot_every_heights` heights, WITHOUT a new snapshot. Booting
restores the newest snapshot and re-applies the blocks stored after it,
checking each resulting root against the root stored with the block: the same
state, since apply_block is deterministic (NodeStore.commit_block with
snapshot None keeps the older snapshot row, in the same transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from consortium import codec
from consortium.consensus import events as ev
from consortium.consensus.app import BlockContext, TxResult
from consortium.consensus.messages import Block, Certificate, Decided
from consortium.consensus.replica import Guard
from consortium.errors import LocalError
from consortium.genesis import Genesis
from consortium.home import load_genesis
from consortium.ledger import Ledger
from consortium.store.sqlite import NodeStore

#: A full snapshot about this often (heights; each node at its own phase, see
#: NodeRuntime._snapshot_due); boot re-applies at most twice this many blocks.
snapshot_every_heights = 64
STORE_FILE = "store.db"


def store_path(home: Path, node_id: str) -> Path:
    return home / "nodes" / node_id / STORE_FILE


class LiveStore(NodeStore):
    """NodeStore plus the driver-side encodings and the snapshot cadence."""

    @classmethod
    def open_for(cls, home: Path, node_id: str, genesis: Genesis) -> LiveStore:
        return cls(store_path(home, node_id), genesis.chain_id, genesis.digest())

    # ------------------------------------------------------------ writes (driver actions)

    def persist(self, p: ev.Persist) -> None:
        """The double-sign guard, durable when this returns."""
        self.save_guard(p.height, p.round, int(p.step), codec.encode({"payload": p.payload, "lock": p.lock}))

    def commit(self, c: ev.Commit, snapshot: bytes | None) -> None:
        """Height c.block.height, durable and all-or-nothing when this returns;
        with a new snapshot when `snapshot` is given."""
        args = (c.block.height, c.block.id, codec.encode(c.block.to_wire()), codec.encode(c.certificate.to_wire()),
                encode_results(c.results), c.state_root)
        self.commit_block(*args, snapshot=snapshot, tx_hashes=[r.tx_hash for r in c.results])

    def snapshot_height(self) -> int:
        latest = self.latest()
        return latest.height if latest is not None else 0

    # ------------------------------------------------------------ reads (boot, sync, queries)

    def replica_guard(self) -> Guard | None:
        g = self.load_guard()
        if g is None:
            return None
        m = codec.decode(g.payload)  # our own bytes
        return Guard(g.height, g.round, ev.Step(g.step), m["payload"], m["lock"])

    def decided(self, height: int) -> Decided | None:
        row = self.block(height)
        if row is None:
            return None
        return Decided(Block.from_wire(codec.decode(row[0])), Certificate.from_wire(codec.decode(row[1])))

    def decided_wire(self, height: int) -> dict[str, Any]:
        """Decided.to_wire() of a stored height (for sync replies)."""
        row = self.block(height)
        if row is None:
            raise LocalError(f"height {height} is not in the store")
        return {"block": codec.decode(row[0]), "certificate": codec.decode(row[1])}

    def last_decided(self) -> Decided | None:
        h = self.last_height()
        return self.decided(h) if h else None

    def tx_result(self, tx_hash: bytes) -> dict[str, Any] | None:
        """Where a decided tx is and what became of it: {height, index, code, detail}."""
        where = self.find_tx(tx_hash)
        if where is None:
            return None
        height, index = where
        raw = self.results(height)
        assert raw is not None
        h, code, detail = decode_results(raw)[index]
        return {"height": height, "index": index, "code": code, "detail": detail, "tx_hash": h.hex()}

    def restore_ledger(self, genesis: Genesis) -> Ledger:
        """The ledger after the last stored height: newest snapshot plus replayed blocks."""
        ledger = Ledger(genesis)
        latest = self.latest()
        start = 0
        if latest is not None:
            ledger.restore(latest.snapshot)
            _check_root(ledger, latest.height, latest.state_root, self.path)
            start = latest.height
        for h in range(start + 1, self.last_height() + 1):
            d = self.decided(h)
            info = self.block_info(h)
            assert d is not None and info is not None
            b = d.block
            ledger.apply_block(BlockContext(b.height, b.time_ms, b.proposer), b.txs)
            _check_root(ledger, h, info[1], self.path)
        return ledger


def _check_root(ledger: Ledger, height: int, expected: bytes, path: Path) -> None:
    if ledger.state_root() != expected:
        raise LocalError(f"{path}: state root after height {height} differs from the stored one "
                         "(corrupt store or non-deterministic ledger)")


def encode_results(results: Sequence[TxResult]) -> bytes:
    return codec.encode([[r.tx_hash, r.code, r.detail] for r in results])


def decode_results(raw: bytes) -> list[tuple[bytes, str, str]]:
    return [(h, code, detail) for h, code, detail in codec.decode(raw)]


def open_existing(home: Path, node_id: str) -> LiveStore | None:
    """A node's store if it exists (for readers: query, tx, tests), else None."""
    path = store_path(home, node_id)
    if not path.exists():
        return None
    return LiveStore.open_for(home, node_id, load_genesis(home))
