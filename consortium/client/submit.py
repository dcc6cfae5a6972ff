"""A client of the live consortium: sign a transaction as a party, submit it, wait for its block.

Submission: the signed tx goes in a TX envelope (a batch of one; load processes
batch many, `TxBatcher`) sealed by the same party and published on
consortium/<chain>/<party>/tx (on mosquitto as the CLI client
user, whose ACL allows the trading parties' topics; a member acting as itself
uses its own credentials). Every node checks the envelope (not its signature:
each tx carries its own), then check_tx puts each tx in its mempool.

Decision: the client polls the nodes' SQLite stores (tx index, then the
block's results) until one holds the tx, re-publishing the same bytes every
`limits.tx_resend_ms` meanwhile (a node that was restarting may have missed it; the
others find the copy already in their mempool and ignore it).

Refusal: a node whose admission check (mempool + ledger.check_tx) refuses the
tx tells the submitter at once with a signed TX_REFUSED frame on
consortium/<chain>/<node>/to/<actor>/tx_refused (subscribed before the tx goes
out, every frame checked like a node checks it). The refusal counts once
validators with more than f's voting power gave the same reason (`Refusals`):
a Byzantine minority can neither make up a refusal nor hide one.

Broker: the first connection must succeed, else UserError at once naming the
address and the reason; a connection lost later is retried until the timeout.

Nonce: max(the actor's next nonce in a node's state, the wall clock in ms).
The ledger accepts gaps; the clock part keeps two quick submissions by one
actor apart even before the first is decided.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from consortium import codec, crypto, limits
from consortium.bus import topics
from consortium.bus.endpoint import Endpoint, connect_problem, endpoint, mqtt_client
from consortium.codec import Envelope, Kind
from consortium.consensus.validators import ValidatorSet
from consortium.errors import RemoteError, UserError
from consortium.genesis import Genesis
from consortium.home import load_genesis, load_key
from consortium.ledger import make_tx, queries
from consortium.ledger.codes import DESCRIPTIONS, Code
from consortium.ledger.tx import tx_hash
from consortium.node.livestore import LiveStore, open_existing
from consortium.node.runtime import validator_set


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
    refused_by: tuple[str, ...] = ()  # validators that refused it at admission (it reached no block)

    @property
    def accepted(self) -> bool:
        return self.code == "OK"

    @property
    def refused(self) -> bool:
        return bool(self.refused_by)

    def to_dict(self) -> dict[str, Any]:
        return {"tx_hash": self.tx_hash, "nonce": self.nonce, "decided": self.height is not None,
                "accepted": self.accepted, "height": self.height, "index": self.index, "code": self.code,
                "detail": self.detail, "node": self.node, "elapsed_ms": self.elapsed_ms,
                "refused_by": list(self.refused_by)}


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


class TxBatcher:
    """Transactions -> TX frames (no I/O): each frame carries as many txs as fit
    (limits.tx_batch_bytes_max of tx bytes with their msgpack headers, at most
    limits.tx_batch_txs_max), sealed by `sender`.

        frame = batcher.add(tx, now_ms)    # a full frame to publish now, or None
        if batcher.due(now_ms): frame = batcher.seal()   # flush within tx_batch_flush_ms

    Nodes admit each tx of a frame on its own signature; the frame's envelope
    signature is not checked by nodes (docs/CONSENSUS.md), so one sealing per
    frame is all a publisher spends on it."""

    def __init__(self, chain_id: str, sender: str, signer: crypto.Signer) -> None:
        self.chain_id, self.sender, self.signer = chain_id, sender, signer
        self._txs: list[bytes] = []
        self._size = 0
        self._since_ms = 0.0

    def __len__(self) -> int:
        return len(self._txs)

    def add(self, tx: bytes, now_ms: float) -> bytes | None:
        """Queue `tx`; if it does not fit the current batch, that batch's frame is
        returned (publish it now) and `tx` starts the next one."""
        cost = len(tx) + limits.tx_batch_tx_header_bytes
        out = None
        if self._txs and (self._size + cost > limits.tx_batch_bytes_max
                          or len(self._txs) >= limits.tx_batch_txs_max):
            out = self.seal()
        if not self._txs:
            self._since_ms = now_ms
        self._txs.append(tx)
        self._size += cost
        return out

    def due(self, now_ms: float) -> bool:
        """The oldest queued tx has waited limits.tx_batch_flush_ms: seal and publish."""
        return bool(self._txs) and now_ms - self._since_ms >= limits.tx_batch_flush_ms

    def seal(self) -> bytes | None:
        """The frame of every queued tx (None if none); the batcher is empty after."""
        if not self._txs:
            return None
        txs, self._txs, self._size = self._txs, [], 0
        return codec.seal_envelope(self.chain_id, self.sender, Kind.TX, {"txs": txs}, self.signer).encode()


def tx_frames(chain_id: str, sender: str, signer: crypto.Signer, txs: list[bytes]) -> list[bytes]:
    """`txs` in as few TX frames as they fit (in order)."""
    b = TxBatcher(chain_id, sender, signer)
    frames = [f for tx in txs if (f := b.add(tx, 0)) is not None]
    last = b.seal()
    return frames + ([last] if last is not None else [])


async def publish_tx(ep: Endpoint, actor: str, signer: crypto.Signer, tx: bytes) -> None:
    env = codec.seal_envelope(ep.chain_id, actor, Kind.TX, {"txs": [tx]}, signer)
    async with mqtt_client(ep, f"tx-{actor}") as c:
        await c.publish(topics.broadcast(ep.chain_id, actor, Kind.TX), env.encode(), qos=1)


@dataclass
class Refusals:
    """TX_REFUSED frames for one tx, by validator.

    One node's refusal proves nothing: a Byzantine node may claim any reason. The
    refusal is conclusive once validators whose voting power exceeds what f
    faulty validators can hold (`ValidatorSet.skip`, f + 1 for equal powers)
    gave the same reason: at least one honest validator refused the tx, and
    every honest node runs the same admission check."""

    validators: ValidatorSet
    tx_hash: bytes
    codes: dict[str, str] = field(default_factory=dict)  # validator -> its reason code (first one counts)

    def add(self, env: Envelope) -> bool:
        """Take a checked envelope; True if it is a refusal of our tx by a validator."""
        if env.kind != Kind.TX_REFUSED or env.body["tx_hash"] != self.tx_hash:
            return False
        if self.validators.get(env.sender) is None:  # a party or non-validator cannot refuse
            return False
        self.codes.setdefault(env.sender, env.body["code"])
        return True

    def conclusive(self) -> tuple[str, list[str]] | None:
        """(code, refusing validators) once enough of them agree, else None."""
        by_code: dict[str, list[str]] = {}
        for node, code in sorted(self.codes.items()):
            by_code.setdefault(code, []).append(node)
        for code, nodes in sorted(by_code.items(), key=lambda kv: -len(kv[1])):
            if sum(self.validators.power(n) for n in nodes) >= self.validators.skip:
                return code, nodes
        return None


def check_refusal_frame(ep: Endpoint, actor: str, topic: str, payload: bytes) -> Envelope:
    """Check a frame from the bus like a node does (topic, size, canonical
    envelope, chain, known sender, signature, topic sender and kind, addressed to
    `actor`); RemoteError/DecodeError otherwise."""
    where = topics.parse(topic, ep.chain_id)
    if len(payload) > limits.frame_bytes_max:
        raise RemoteError(codec.Reason.TOO_LARGE, f"{len(payload)} bytes")
    env = codec.decode_envelope(payload, chain_id=ep.chain_id, keys=ep.keys)
    if env.sender != where.sender or env.kind != where.kind or where.recipient != actor:
        raise RemoteError(topics.TOPIC, f"{env.sender}/{env.kind} on {topic!r}")
    return env


@dataclass(frozen=True, slots=True)
class Decision:
    node: str | None = None  # whose store holds the result
    result: dict[str, Any] | None = None  # the store's {height, index, code, detail, tx_hash}
    refused: tuple[str, list[str]] | None = None  # conclusive refusal: (code, nodes)
    refusals: dict[str, str] = field(default_factory=dict)  # every refusal seen, conclusive or not


async def wait_decided(ep: Endpoint, stores: dict[str, LiveStore], actor: str, signer: crypto.Signer,
                       tx: bytes, timeout_s: float, validators: ValidatorSet) -> Decision:
    """Publish `tx` (now and every limits.tx_resend_ms) and wait until a store holds
    its result, enough validators refused it (Refusals), or the timeout.

    The first connection must succeed: a broker that cannot be reached is a
    UserError at once, naming the address. A connection lost later (a broker
    restart) is retried every limits.tx_retry_ms until the timeout."""
    h = tx_hash(tx)
    frame = codec.seal_envelope(ep.chain_id, actor, Kind.TX, {"txs": [tx]}, signer).encode()
    refusals = Refusals(validators, h)
    deadline = time.monotonic() + timeout_s
    connected = False
    while True:
        try:
            async with mqtt_client(ep, f"tx-{actor}") as client:
                connected = True
                return await _session(client, ep, stores, actor, frame, h, refusals, deadline)
        except aiomqtt.MqttError as exc:
            if not connected:
                raise UserError(connect_problem(ep, exc)) from None
        found = _find(stores, h)  # the broker went away: the stores still tell
        if found is not None or time.monotonic() >= deadline:
            return Decision(*found) if found else Decision(refusals=dict(refusals.codes))
        await asyncio.sleep(limits.tx_retry_ms / 1000)


async def _session(client: aiomqtt.Client, ep: Endpoint, stores: dict[str, LiveStore], actor: str, frame: bytes,
                   h: bytes, refusals: Refusals, deadline: float) -> Decision:
    """One broker connection: refusals subscribed before the tx goes out."""
    await client.subscribe(topics.refusals_for(ep.chain_id, actor), qos=1)
    reader = asyncio.create_task(_read_refusals(client, ep, actor, refusals))
    next_send = 0.0
    try:
        while True:
            if reader.done():
                reader.result()  # the connection ended: MqttError to the caller
            if time.monotonic() >= next_send:
                await client.publish(topics.broadcast(ep.chain_id, actor, Kind.TX), frame, qos=1)
                next_send = time.monotonic() + limits.tx_resend_ms / 1000
            found = _find(stores, h)
            if found is not None:
                return Decision(*found, refusals=dict(refusals.codes))
            refused = refusals.conclusive()
            if refused is not None:
                found = _find(stores, h)  # a block that holds it after all wins over any refusal
                return Decision(*found) if found else Decision(refused=refused, refusals=dict(refusals.codes))
            if time.monotonic() >= deadline:
                return Decision(refusals=dict(refusals.codes))
            await asyncio.sleep(limits.tx_poll_ms / 1000)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await reader


async def _read_refusals(client: aiomqtt.Client, ep: Endpoint, actor: str, refusals: Refusals) -> None:
    async for message in client.messages:
        payload = message.payload
        if not isinstance(payload, (bytes, bytearray)):
            continue
        try:
            env = check_refusal_frame(ep, actor, str(message.topic), bytes(payload))
        except (RemoteError, UnicodeDecodeError):  # a bad frame is dropped, like a node drops it
            continue
        refusals.add(env)


def _find(stores: dict[str, LiveStore], h: bytes) -> tuple[str, dict[str, Any]] | None:
    for ident, store in stores.items():
        found = store.tx_result(h)
        if found is not None:
            return ident, found
    return None


def refusal_sentence(code: str) -> str:
    """The ledger's sentence for a reason code (mempool codes have their own)."""
    if code == "TOO_LARGE":
        return f"the transaction is larger than {limits.tx_bytes_max} bytes"
    try:
        return DESCRIPTIONS[Code(code)]
    except (ValueError, KeyError):
        return "refused at admission (no description for this code)"


def submit(home: Path, actor: str, kind: str, body: dict[str, Any], *, broker: str | None = None,
           node: str | None = None, timeout_s: float = limits.tx_wait_ms / 1000, nonce: int | None = None) -> Outcome:
    """Sign `body` of `kind` as `actor`, submit it, wait until decided (or the timeout)."""
    genesis = load_genesis(home)
    if actor not in genesis.keys():
        raise UserError(f"{actor} is not a member or party of this consortium (chain {genesis.chain_id}; "
                        f"see {home / 'genesis.json'})")
    signer = crypto.Signer(load_key(home, actor, genesis))
    make_tx(kind, actor, body, signer, 0, genesis.chain_id)  # a malformed body: TxError before anything else
    if nonce is None:
        nonce = next_nonce(home, genesis, actor, node)
    tx = make_tx(kind, actor, body, signer, nonce, genesis.chain_id)  # TxError: refused before sending
    ep = endpoint(home, broker, as_member=actor if genesis.member(actor) else None)
    stores = member_stores(home, genesis, node)
    started = time.monotonic()
    try:
        d = asyncio.run(wait_decided(ep, stores, actor, signer, tx, timeout_s, validator_set(genesis)))
    finally:
        for s in stores.values():
            s.close()
    elapsed = int((time.monotonic() - started) * 1000)
    if d.refused is not None:
        code, nodes = d.refused
        return Outcome(tx_hash(tx).hex(), nonce, None, None, code, refusal_sentence(code), None, elapsed,
                       tuple(nodes))
    if d.result is None:
        seen = "; ".join(f"{n} refused it ({c})" for n, c in sorted(d.refusals.items()))
        return Outcome(tx_hash(tx).hex(), nonce, None, None, None,
                       "not decided in time" + (f" ({seen}: too few to count)" if seen else ""), None, elapsed)
    r = d.result
    return Outcome(r["tx_hash"], nonce, r["height"], r["index"], r["code"], r["detail"], d.node, elapsed)
