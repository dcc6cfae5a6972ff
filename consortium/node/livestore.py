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
every `limits.snapshot_every_heights` heights, WITHOUT a new snapshot. Booting
restores the newest snapshot and re-applies the blocks stored after it,
checking each resulting root against the root stored with the block: the same
state, since apply_block is deterministic (NodeStore.commit_block with
snapshot None keeps the older snapshot row, in the same transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from consortium import codec, crypto, limits
from consortium.consensus import events as ev
from consortium.consensus.app import BlockContext, TxResult
from consortium.consensus.messages import ZERO_ID, Block, Certificate, Decided
from consortium.consensus.replica import Guard
from consortium.consensus.validators import ValidatorSet
from consortium.errors import ConsortiumError, LocalError
from consortium.genesis import Genesis
from consortium.home import load_genesis
from consortium.ledger import Ledger
from consortium.store.sqlite import NodeStore

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
        """Decided.to_wire() of a stored height (for sync replies); StoreDamaged if
        the stored block is not the one its id names or does not decode."""
        row = self.block(height)
        info = self.block_info(height)
        if row is None or info is None:
            raise LocalError(f"height {height} is not in the store")
        if crypto.digest(row[0]) != info[0]:
            raise self._damaged(height, "block hash differs from its stored id (the block was altered)")
        try:
            return {"block": codec.decode(row[0]), "certificate": codec.decode(row[1])}
        except ConsortiumError as exc:
            raise self._damaged(height, f"block or certificate does not decode ({exc})") from None

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

    def check(self, genesis: Genesis, validators: ValidatorSet) -> Ledger:
        """Check the whole store before a node runs on it; the ledger after its last height.

        Every height: the stored id is the block's hash (NodeStore.check_chain),
        block and certificate decode, the certificate certifies this very block
        with a quorum of distinct validators (signatures re-verified for the newest
        `limits.store_check_verify_heights_max` heights), the block links to the
        previous one (prev_id, last_commit: a quorum certifying that block). Then the double-sign guard decodes,
        and the ledger restored from the newest snapshot has the state root stored
        with that height, as has every block replayed after it. The first problem
        raises StoreDamaged naming the height and what is wrong."""
        chain = genesis.chain_id
        verify_from = self.last_height() - limits.store_check_verify_heights_max + 1
        prev: list[Block | None] = [None]

        def visit(height: int, raw_block: bytes, raw_cert: bytes) -> None:
            try:
                block = Block.from_wire(codec.decode(raw_block))
            except ConsortiumError as exc:
                raise self._damaged(height, f"block does not decode ({exc})") from None
            try:
                cert = Certificate.from_wire(codec.decode(raw_cert))
            except ConsortiumError as exc:
                raise self._damaged(height, f"certificate does not decode ({exc})") from None
            before = prev[0]
            problem = _link_problem(height, block, cert, before)
            if problem is None:
                problem = _certificate_problem(cert, chain, validators, height >= verify_from)
            if problem is None and before is not None:
                assert block.last_commit is not None  # _link_problem
                lc = _certificate_problem(block.last_commit, chain, validators, False)  # checked as a certificate below
                problem = None if lc is None else f"last_commit (certificate of height {height - 1}): {lc}"
            if problem is not None:
                raise self._damaged(height, problem)
            prev[0] = block

        last = self.check_chain(visit)
        guard = self.load_guard()
        if guard is not None:
            try:
                self.replica_guard()
            except ConsortiumError as exc:
                raise self._damaged(guard.height, f"double-sign guard record does not decode ({exc})") from None
        return self._restore(genesis, last)

    def restore_ledger(self, genesis: Genesis) -> Ledger:
        """The ledger after the last stored height: newest snapshot plus replayed blocks."""
        return self._restore(genesis, self.last_height())

    def _restore(self, genesis: Genesis, last: int) -> Ledger:
        ledger = Ledger(genesis)
        latest = self.latest()
        start = 0
        if latest is not None:
            try:
                ledger.restore(latest.snapshot)
            except Exception as exc:  # our own bytes, but read back from a disk
                raise self._damaged(latest.height, f"snapshot does not restore ({type(exc).__name__}: {exc})") from None
            self._check_root(ledger, latest.height, latest.state_root, "of the snapshot")
            start = latest.height
        for h in range(start + 1, last + 1):
            try:
                d = self.decided(h)
            except ConsortiumError as exc:
                raise self._damaged(h, f"block does not decode ({exc})") from None
            info = self.block_info(h)
            assert d is not None and info is not None
            b = d.block
            ledger.apply_block(BlockContext(b.height, b.time_ms, b.proposer), b.txs)
            self._check_root(ledger, h, info[1], f"after height {h}")
        return ledger

    def _check_root(self, ledger: Ledger, height: int, expected: bytes, which: str) -> None:
        if ledger.state_root() != expected:
            raise self._damaged(height, f"state root {which} differs from the stored one "
                                "(corrupt store or non-deterministic ledger)")


def _link_problem(height: int, block: Block, cert: Certificate, prev: Block | None) -> str | None:
    """How the block at `height` fails to be that height's block, certified, after `prev`."""
    if block.height != height:
        return f"the stored block is of height {block.height}"
    if cert.height != height or cert.block_id != block.id:
        return "certificate is not for this block"
    if block.prev_id != (prev.id if prev is not None else ZERO_ID):
        return "prev_id does not link to the block below (chain broken)"
    lc = block.last_commit
    if prev is None:
        return None if lc is None else "last_commit at height 1"
    if lc is None or lc.height != height - 1 or lc.block_id != prev.id:
        return "last_commit does not certify the block below"
    return None


def _certificate_problem(cert: Certificate, chain: str, validators: ValidatorSet, verify: bool) -> str | None:
    """Certificate.problem, or (verify False) the same without the signature checks."""
    if verify:
        problem = cert.problem(chain, validators)
        return None if problem is None else f"certificate: {problem}"
    signers = [v for v, _ in cert.signatures]
    if len(set(signers)) != len(signers) or any(validators.get(v) is None for v in signers):
        return "certificate: signature by an unknown or repeated validator"
    power = sum(validators.power(v) for v in signers)
    return None if power >= validators.quorum else f"certificate: power {power} < quorum {validators.quorum}"


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
