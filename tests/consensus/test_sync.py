"""Sync: a decided block fetched from a peer is accepted only with a valid certificate.

Invariant: a replica never trusts the peer that answers its sync request. It
commits a synced block only if the block's certificate holds valid precommit
signatures of distinct validators with more than 2/3 of the voting power, for
exactly that block at exactly its height, and the block is valid on the
replica's own state. Anything else is refused, and refusing leaves the replica
able to accept a good answer afterwards.
"""

from __future__ import annotations

from typing import Any

import pytest

from consortium.consensus.messages import Certificate, Decided, sign_vote
from tests.consensus.harness import CHAIN, PRECOMMIT, TK, Network, commits

X = "a"
PEERS = ["b", "c", "d"]


def network(**kw: Any) -> Network:
    net = Network(live=[X], **kw)
    net.start()
    return net


def test_a_block_with_a_valid_certificate_is_accepted() -> None:
    """A synced block with precommits of > 2/3 of the power for it is committed as
    decided, with that certificate, and the replica moves to the next height."""
    net = network()
    v = net.block()
    cert = net.certificate(v, PEERS)
    [c] = commits(net.receive(X, net.sync_response("b", [Decided(v, cert).to_wire()])))
    assert (c.block, c.certificate) == (v, cert)
    assert net.view(X).height == 2 and net.replicas[X].counters["synced_blocks"] == 1


def _refused(net: Network, case: str) -> Any:
    """The wire item of a sync response that must be refused."""
    v = net.block()
    good = net.certificate(v, PEERS)
    if case == "no_certificate":
        return {"block": v.to_wire()}
    if case == "empty_certificate":
        return Decided(v, Certificate(1, 0, v.id, ())).to_wire()
    if case == "forged_signature":
        sigs = tuple((who, s if who != "d" else bytes(64)) for who, s in good.signatures)
        return Decided(v, Certificate(1, 0, v.id, sigs)).to_wire()
    if case == "signed_by_the_wrong_keys":  # one key signs in every validator's name
        sigs = tuple((who, sign_vote(CHAIN, net.signers["b"], who, PRECOMMIT, 1, 0, v.id).signature)
                     for who in PEERS)
        return Decided(v, Certificate(1, 0, v.id, sigs)).to_wire()
    if case == "too_little_power":
        return Decided(v, net.certificate(v, ["b", "c"])).to_wire()
    if case == "repeated_signer":
        sigs = good.signatures[:2] + good.signatures[:1]
        return Decided(v, Certificate(1, 0, v.id, sigs)).to_wire()
    if case == "certificate_of_another_block":
        return Decided(v, net.certificate(net.block(proposer="c"), PEERS)).to_wire()
    if case == "certificate_of_another_round":  # real signatures of round 0, labelled round 1
        return Decided(v, Certificate(1, 1, v.id, good.signatures)).to_wire()
    if case == "invalid_block":
        bad = net.block(app_hash=b"\x01" * 32)
        return Decided(bad, net.certificate(bad, PEERS)).to_wire()
    raise AssertionError(case)


CASES = ["no_certificate", "empty_certificate", "forged_signature", "signed_by_the_wrong_keys",
         "too_little_power", "repeated_signer", "certificate_of_another_block",
         "certificate_of_another_round", "invalid_block"]


@pytest.mark.parametrize("case", CASES)
def test_a_block_without_a_valid_certificate_is_refused(case: str) -> None:
    """No certificate, a forged or too weak one, one for another block, or a valid
    certificate for a block that is invalid on our state: nothing is committed and
    the replica stays at its height; a good answer afterwards is accepted."""
    net = network()
    assert commits(net.receive(X, net.sync_response("b", [_refused(net, case)]))) == []
    assert net.view(X).height == 1 and net.decided(X) == []
    v = net.block()
    ok = net.sync_response("c", [Decided(v, net.certificate(v, PEERS)).to_wire()])
    assert [c.block for c in commits(net.receive(X, ok))] == [v]


def test_certificate_power_is_voting_power_not_heads() -> None:
    """Powers 40/10/10/10 (quorum 47 of 70): three light validators (30) do not make
    a certificate even though they are 3 of 4; the heavy one and one light one (50) do."""
    net = Network(powers=[40, 10, 10, 10], live=["c"])
    net.start()
    v = net.block()
    weak = Decided(v, net.certificate(v, ["b", "c", "d"])).to_wire()
    assert commits(net.receive("c", net.sync_response("b", [weak]))) == []
    strong = Decided(v, net.certificate(v, ["a", "b"])).to_wire()
    assert [c.block for c in commits(net.receive("c", net.sync_response("b", [strong])))] == [v]


def test_a_lagging_replica_catches_up_through_its_peers_driver() -> None:
    """End to end: a replica cut off during height 1 hears a height-2 message, asks
    that peer for the decided blocks, the peer's driver answers from its store
    (`sync_reply`) and the replica commits height 1 exactly as the others did, then
    follows height 2 with them."""
    net = Network()
    net.isolate("a")
    net.start()
    net.settle()
    assert [len(net.decided(i)) for i in net.ids] == [0, 1, 1, 1]
    net.fire_all(TK.COMMIT)  # b, c, d start height 2; c proposes
    net.drop()
    net.heal()
    net.fire_timeout("c", TK.RETRANSMIT)  # c re-sends its height-2 proposal, now to a as well
    net.settle()
    assert net.replicas["a"].counters["synced_blocks"] == 1
    assert len(net.decided("b")) == 2 and all(net.decided(i) == net.decided("b") for i in net.ids)
