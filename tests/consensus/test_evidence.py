"""Evidence: a validator's conflicting votes end up on chain, once.

Invariant: when an honest replica sees one validator sign two different votes for
one (height, round, kind), it reports the pair (`ReportEvidence`), the next block
an honest proposer builds carries it as `DuplicateVote` evidence, every honest
node commits that block, and no later block may carry the same evidence again
(such a block is invalid: honest replicas prevote nil on it).
"""

from __future__ import annotations

from consortium.consensus import events as ev
from tests.consensus.harness import CHAIN, NIL, PREVOTE, PROPOSAL, TK, Network, sent_votes

EQUIVOCATOR = "d"


def _agree(net: Network) -> bool:
    """Every node decided the same chain (block ids: the proposer's in-memory copy
    may hold an evidence pair in arrival order, the wire form is canonical)."""
    return len({tuple(b.id for b in net.decided(i)) for i in net.ids}) == 1


def _run_height(net: Network) -> None:
    """Everyone starts the next height (commit timeout) and the network settles."""
    net.fire_all(TK.COMMIT)
    net.settle()


def test_a_double_vote_is_reported_and_committed_on_chain_once() -> None:
    """d prevotes the height-1 block and, to a, b and c, also nil: each of them reports
    the pair; height 2's block (proposed by c) commits it; height 3's does not repeat it."""
    net = Network()
    net.start()
    net.deliver(kind=PROPOSAL)  # everyone prevotes b's block v
    [v_vote] = net.pending(kind=PREVOTE, src=EQUIVOCATOR, dst="a")
    net.send(net.sign_vote(EQUIVOCATOR, PREVOTE, 0, NIL))  # the conflicting prevote, to a, b, c
    net.settle()
    assert all(len(net.decided(i)) == 1 for i in net.ids)

    key = (EQUIVOCATOR, "prevote", 1, 0)
    for i in ("a", "b", "c"):
        [e] = net.stores[i].evidence
        assert e.key == key and {e.a.block_id, e.b.block_id} == {v_vote.value, NIL}
        assert e.problem(CHAIN, net.validators) is None
    assert net.stores[EQUIVOCATOR].evidence == []  # d never saw its own two votes

    _run_height(net)
    assert net.proposer(0, height=2) == "c"
    block2 = net.decided("a")[1]
    assert [e.key for e in block2.evidence] == [key]
    assert _agree(net)

    _run_height(net)
    assert net.decided("a")[2].evidence == ()
    assert _agree(net)


def test_a_block_repeating_committed_evidence_is_invalid() -> None:
    """After the evidence is on chain, a proposal that carries it again is invalid:
    an honest replica prevotes nil on it."""
    net = Network()
    net.start()
    net.deliver(kind=PROPOSAL)
    net.send(net.sign_vote(EQUIVOCATOR, PREVOTE, 0, NIL))
    net.settle()
    _run_height(net)
    evidence = net.decided("a")[1].evidence
    assert evidence
    _run_height(net)  # height 3; everyone now waits for height 4
    chain = net.stores["a"].decided
    proposer = net.proposer(0, height=4)
    replay = net.block(chain=chain, proposer=proposer, evidence=evidence)
    fresh = net.block(chain=chain, proposer=proposer)
    voter = next(i for i in net.ids if i != proposer)
    net.receive(voter, net.sign_proposal(0, replay))
    acts = net.fire_timeout(voter, TK.COMMIT)  # round 0 of height 4 starts; L22 on the replayed evidence
    assert sent_votes(acts, PREVOTE) == [(0, NIL)]
    other = next(i for i in net.ids if i not in (proposer, voter))
    net.receive(other, net.sign_proposal(0, fresh))
    acts = net.fire_timeout(other, TK.COMMIT)  # the same block without it is fine
    assert sent_votes(acts, PREVOTE) == [(0, fresh.id)]
    assert not [a for a in net.actions(voter) if isinstance(a, ev.Commit) and a.block.height == 4]
