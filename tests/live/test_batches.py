"""Batched TX frames inside one node, without a broker: the batcher's limits, and one
Ed25519 check per transaction per node from the TX frame to the applied block."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from consortium import codec, crypto, limits
from consortium.bus.adapter import FrameChecker
from consortium.bus.topics import broadcast
from consortium.client.submit import TxBatcher, tx_frames
from consortium.codec import Kind
from consortium.consensus import events as ev
from consortium.consensus.messages import sign_vote
from consortium.consensus.replica import Replica, Restored
from consortium.home import init_home, load_genesis, load_key
from consortium.ledger import Ledger
from consortium.ledger import tx as ledger_tx
from consortium.ledger.workload import Workload
from consortium.node.runtime import timing_params, validator_set
from tests.conftest import NODES

CHAIN = "batches-1"
PARTIES = ("carrier-sh", "bank-hk", "sh-exporter", "hk-importer")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("batches") / "home"
    init_home(path, NODES, CHAIN, force=False)
    return path


def test_batcher_fills_frames_to_the_limits_keeps_order_and_flushes_in_time(home: Path) -> None:
    """TxBatcher puts txs in TX frames in order, each frame within frame_bytes_max and
    tx_batch_txs_max; a tx that does not fit starts the next frame; a partial batch is
    due once its oldest tx waited tx_batch_flush_ms, not before."""
    genesis = load_genesis(home)
    signer = crypto.Signer(load_key(home, "sh-exporter", genesis))
    txs = [bytes([i % 251]) * (1_000 + i) for i in range(3_000)]  # ~4.5 MB: several frames
    frames = tx_frames(CHAIN, "sh-exporter", signer, txs)
    assert len(frames) > 1
    back = []
    for f in frames:
        assert len(f) <= limits.frame_bytes_max
        env = codec.decode_unverified(f)
        assert env.kind == Kind.TX and len(env.body["txs"]) <= limits.tx_batch_txs_max
        back.extend(env.body["txs"])
    assert back == txs
    many = tx_frames(CHAIN, "sh-exporter", signer, [b"t%d" % i for i in range(limits.tx_batch_txs_max + 1)])
    assert [len(codec.decode_unverified(f).body["txs"]) for f in many] == [limits.tx_batch_txs_max, 1]
    b = TxBatcher(CHAIN, "sh-exporter", signer)
    assert b.add(b"a", 1000.0) is None and b.add(b"b", 1001.0) is None
    assert not b.due(1000.0 + limits.tx_batch_flush_ms - 1)
    assert b.due(1000.0 + limits.tx_batch_flush_ms)
    sealed = b.seal()
    assert sealed is not None and codec.decode_unverified(sealed).body["txs"] == [b"a", b"b"]
    assert b.seal() is None and not b.due(1e12)


def test_one_signature_check_per_tx_per_node_from_frame_to_applied_block(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A node gets six workload txs and one forged tx (its signature altered) in one TX
    frame; another validator proposes a block of the six good txs, and a quorum
    precommits it. From the frame's check to the applied block the node verifies
    exactly one Ed25519 signature per tx (seven): none for the TX frame's envelope,
    one per tx at admission (the forged one is refused, BSIG, and counted), none again
    when it checks the proposal's txs or applies the decided block (the admission memo
    serves both). The proposal and the precommits are verified as envelopes, one each."""
    genesis = load_genesis(home)
    vs = validator_set(genesis)
    signers = {m.id: crypto.Signer(load_key(home, m.id, genesis)) for m in genesis.validators}
    now = genesis.genesis_time_ms + 60_000
    work = Workload(genesis, {p: load_key(home, p, genesis) for p in PARTIES}, random.Random(3))
    good = work.take(6, now)
    spare = work.take(1, now)[0]
    forged = spare[:-1] + bytes([spare[-1] ^ 1])  # the signature is the tx's last byte string

    def replica(me: str) -> Replica:
        return Replica(chain_id=CHAIN, validators=vs, me=me, signer=signers[me], app=Ledger(genesis),
                       params=timing_params(genesis, None), genesis_time_ms=genesis.genesis_time_ms,
                       restored=Restored(None, None))

    proposer = vs.proposer(1, 0)
    me = next(v for v in sorted(signers) if v != proposer)
    p, node = replica(proposer), replica(me)
    for tx in good:
        p.step(ev.TxSubmitted(tx, now))
    proposal = next(a.envelope for a in p.step(ev.Start(now))
                    if isinstance(a, ev.Broadcast) and a.envelope.kind == Kind.PROPOSAL)
    block = proposal.body["block"]
    assert len(block["txs"]) == 6

    verified: list[bytes] = []
    real_verify = crypto.verify

    def counting_verify(key: bytes, message: bytes, sig: bytes) -> bool:
        verified.append(message)
        return real_verify(key, message, sig)

    monkeypatch.setattr(crypto, "verify", counting_verify)
    checker = FrameChecker(CHAIN, me, genesis.keys())
    frame = codec.seal_envelope(CHAIN, "sh-exporter", Kind.TX, {"txs": [good[0], forged, *good[1:]]},
                                crypto.Signer(load_key(home, "sh-exporter", genesis)))
    env = checker.check(broadcast(CHAIN, "sh-exporter", Kind.TX), frame.encode())
    assert env is not None and verified == []  # the frame: no envelope signature check
    node.step(ev.Start(now))
    for tx in env.body["txs"]:
        node.step(ev.TxSubmitted(tx, now))
    assert len(node.mempool) == 6 and node.counters.get("tx_refused_BSIG") == 1
    admitted = len(verified)
    assert admitted == 7 and all(m.startswith(ledger_tx.DOMAIN) for m in verified)

    env = checker.check(broadcast(CHAIN, proposer, Kind.PROPOSAL), proposal.encode())
    assert env is not None
    node.step(ev.Received(env, now))
    block_id = p.h.proposals[0].block.id
    commits = []
    for v in [v for v in sorted(signers) if v != me][:5]:  # 5 of 7 equal powers: a quorum
        vote = sign_vote(CHAIN, signers[v], v, Kind.PRECOMMIT, 1, 0, block_id).envelope(CHAIN)
        checked = checker.check(broadcast(CHAIN, v, Kind.PRECOMMIT), vote.encode())
        assert checked is not None
        commits += [a for a in node.step(ev.Received(checked, now)) if isinstance(a, ev.Commit)]
    assert len(commits) == 1 and list(commits[0].block.txs) == good
    assert all(r.code != "BSIG" for r in commits[0].results)
    after = verified[admitted:]
    assert not any(m.startswith(ledger_tx.DOMAIN) for m in after), "a tx was verified again"
    assert all(m.startswith(codec.DOMAIN) for m in after)  # the proposal and the precommits
