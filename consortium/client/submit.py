"""A client of the live consortium: sign a transaction as a party, submit it, wait for its block.

Submission: the signed tx goes in a TX envelope sealed by the same party and
published on consortium/<chain>/<party>/tx (on mosquitto as the CLI client
user, whose ACL allows the trading parties' topics; a member acting as itself
uses its own credentials). Every node checks the envelope, then check_tx puts
the tx in its mempool.

Decision: the client polls the nodes' SQLite stores (tx index, then the
block's results) until one holds the tx, re-publishing the same bytes every
`resend_ms` meanwhile (a node that was restarting may have missed it; the
others find the copy already in their mempool and ignore it).

Nonce: max(the actor's next nonce in a node's state, the wall clock in ms).
The ledger accepts gaps; the clock part keeps two quick submissions by one
actor apart even before the first is decided.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt

from consortium import codec, crypto
from consortium.bus import topics
from consortium.bus.endpoint import Endpoint, endpoint, mqtt_client
from consortium.codec import Kind
from consortium.errors import UserError
from consortium.genesis import Genesis
from consortium.home import load_genesis, load_key
from consortium.ledger import make_tx, queries
from consortium.ledger.tx import tx_hash
from consortium.node.livestore import LiveStore, open_existing

#: Re-publish an undecided tx this often.
resend_ms = 5_000
#: Retry a publish the broker did not take after this long.
retry_ms = 1_000
#: How often the stores are polled for the decision.
poll_ms = 100


@dataclass(frozen=True, slots=True)
class Outcome:
    tx_hash: str
    nonce: int
    height: int | None  # None: not decided within the timeout
    index: int | None
    code: str | None
    detail: str
    node: str | None
    elapsed_ms: int

    @property
    def accepted(self) -> bool:
        return self.code == "OK"

    def to_dict(self) -> dict[str, Any]:
        return {"tx_hash": self.tx_hash, "nonce": self.nonce, "decided": self.height is not None,
                "accepted": self.accepted, "height": self.height, "index": self.index, "code": self.code,
                "detail": self.detail, "node": self.node, "elapsed_ms": self.elapsed_ms}


def member_stores(home: Path, genesis: Genesis, node: str | None) -> dict[str, LiveStore]:
    """Open stores to read: `node`'s, or every member's that exists."""
    ids = [node] if node else [m.id for m in genesis.members]
    if node and genesis.member(node) is None:
        raise UserError(f"--node {node!r}: not a member (members: {', '.join(m.id for m in genesis.members)})")
    stores = {}
    for ident in ids:
        s = open_existing(home, ident)
        if s is not None:
            stores[ident] = s
    if not stores:
        raise UserError(f"no node store under {home / 'nodes'}{f' for {node}' if node else ''} "
                        "(has the consortium run?)")
    return stores


def next_nonce(home: Path, genesis: Genesis, actor: str, node: str | None) -> int:
    stores = member_stores(home, genesis, node)
    try:
        best = max(stores.values(), key=lambda s: s.last_height())
        state_nonce = queries.nonce(best.restore_ledger(genesis), actor)
    finally:
        for s in stores.values():
            s.close()
    return max(state_nonce, time.time_ns() // 1_000_000)


async def publish_tx(ep: Endpoint, actor: str, signer: crypto.Signer, tx: bytes) -> None:
    env = codec.seal_envelope(ep.chain_id, actor, Kind.TX, {"tx": tx}, signer)
    async with mqtt_client(ep, f"tx-{actor}") as c:
        await c.publish(topics.broadcast(ep.chain_id, actor, Kind.TX), env.encode(), qos=1)


async def wait_decided(ep: Endpoint, stores: dict[str, LiveStore], actor: str, signer: crypto.Signer,
                       tx: bytes, timeout_s: float) -> tuple[str, dict[str, Any]] | None:
    """(node, result) once a store holds `tx`, publishing it now and every resend_ms."""
    h = tx_hash(tx)
    deadline = time.monotonic() + timeout_s
    next_send = 0.0
    while time.monotonic() < deadline:
        if time.monotonic() >= next_send:
            try:
                await publish_tx(ep, actor, signer, tx)
                next_send = time.monotonic() + resend_ms / 1000
            except aiomqtt.MqttError:  # broker down or restarting: try again soon, until the timeout
                next_send = time.monotonic() + retry_ms / 1000
        for ident, store in stores.items():
            found = store.tx_result(h)
            if found is not None:
                return ident, found
        await asyncio.sleep(poll_ms / 1000)
    return None


def submit(home: Path, actor: str, kind: str, body: dict[str, Any], *, broker: str | None = None,
           node: str | None = None, timeout_s: float = 30.0, nonce: int | None = None) -> Outcome:
    """Sign `body` of `kind` as `actor`, submit it, wait until decided (or the timeout)."""
    genesis = load_genesis(home)
    signer = crypto.Signer(load_key(home, actor, genesis))
    make_tx(kind, actor, body, signer, 0, genesis.chain_id)  # a malformed body: TxError before anything else
    if nonce is None:
        nonce = next_nonce(home, genesis, actor, node)
    tx = make_tx(kind, actor, body, signer, nonce, genesis.chain_id)  # TxError: refused before sending
    ep = endpoint(home, broker, as_member=actor if genesis.member(actor) else None)
    stores = member_stores(home, genesis, node)
    started = time.monotonic()
    try:
        found = asyncio.run(wait_decided(ep, stores, actor, signer, tx, timeout_s))
    finally:
        for s in stores.values():
            s.close()
    elapsed = int((time.monotonic() - started) * 1000)
    if found is None:
        return Outcome(tx_hash(tx).hex(), nonce, None, None, None, "not decided in time", None, elapsed)
    ident, r = found
    return Outcome(r["tx_hash"], nonce, r["height"], r["index"], r["code"], r["detail"], ident, elapsed)
