"""A real, fully signed chain written into a node's store without running a consortium.

Each block carries the previous block's certificate as `last_commit`; each
certificate holds a precommit signed by every validator's own key from HOME,
so a store built here passes every check a booting node makes (hashes,
certificates, prev-id links, snapshot and replayed state roots).
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from consortium import codec, crypto
from consortium.codec import Kind
from consortium.consensus import events as ev
from consortium.consensus.app import BlockContext
from consortium.consensus.messages import ZERO_ID, Block, Certificate, sign_vote
from consortium.home import load_genesis, load_key
from consortium.ledger import Ledger
from consortium.ledger.workload import Workload
from consortium.node.livestore import LiveStore, store_path

PARTIES = ("carrier-sh", "bank-hk", "sh-exporter", "hk-importer")


def signed_chain(home: Path, heights: int, txs_per_block: int = 2) -> list[tuple[ev.Commit, bytes]]:
    """(Commit, snapshot after it) for heights 1..`heights`, as real validators would decide them."""
    genesis = load_genesis(home)
    signers = {m.id: crypto.Signer(load_key(home, m.id, genesis)) for m in genesis.validators}
    keys = {i: load_key(home, i, genesis) for i in PARTIES}
    work = Workload(genesis, keys, random.Random(11))
    ledger = Ledger(genesis)
    ids = sorted(signers)
    out: list[tuple[ev.Commit, bytes]] = []
    prev, last_cert = ZERO_ID, None
    for h in range(1, heights + 1):
        time_ms = genesis.genesis_time_ms + h * 1000
        proposer = ids[h % len(ids)]
        txs = tuple(work.take(txs_per_block, time_ms))
        block = Block(h, time_ms, proposer, prev, ledger.state_root(), last_cert, (), txs)
        results = ledger.apply_block(BlockContext(h, time_ms, proposer), txs)
        sigs = tuple((v, sign_vote(genesis.chain_id, signers[v], v, Kind.PRECOMMIT, h, 0, block.id).signature)
                     for v in ids)
        cert = Certificate(h, 0, block.id, sigs)
        out.append((ev.Commit(block, cert, tuple(results), ledger.state_root()), ledger.snapshot()))
        prev, last_cert = block.id, cert
    return out


def write_store(home: Path, node_id: str, heights: int, snapshot_at: int) -> Path:
    """HOME/nodes/<node_id>/store.db holding a signed chain, with a snapshot at `snapshot_at`."""
    genesis = load_genesis(home)
    with LiveStore.open_for(home, node_id, genesis) as store:
        for commit, snapshot in signed_chain(home, heights):
            store.commit(commit, snapshot if commit.block.height == snapshot_at else None)
    return store_path(home, node_id)


def corrupt(path: Path, sql: str, *args: object) -> None:
    """Damage a store the way a disk or a careless hand would: one SQL UPDATE."""
    with sqlite3.connect(path) as db:
        assert db.execute(sql, args).rowcount == 1, sql
    db.close()


def certificate_with_bad_signature(path: Path, height: int) -> bytes:
    """The stored certificate of `height` with one byte of its first signature flipped (still decodes)."""
    with sqlite3.connect(path) as db:
        raw = db.execute("SELECT certificate FROM blocks WHERE height = ?", (height,)).fetchone()[0]
    db.close()
    cert = codec.decode(raw)
    sig = bytearray(cert["signatures"][0][1])
    sig[0] ^= 0xFF
    cert["signatures"][0][1] = bytes(sig)
    return codec.encode(cert)
