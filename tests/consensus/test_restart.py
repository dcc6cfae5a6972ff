"""Restart with the double-sign guard.

Invariant: a validator that signed something at (height, round, step) and then
crashed never signs a different message for that slot after it restarts from its
store, whatever it is shown afterwards. It re-sends what it signed byte for byte,
and its lock survives the crash with the guard.
"""

from __future__ import annotations

import pytest

from consortium.consensus.messages import Block
from tests.consensus.harness import (
    NIL,
    PRECOMMIT,
    PREVOTE,
    PROPOSAL,
    TK,
    Network,
    Step,
    sent,
    sent_votes,
)

X = "a"
PUPPETS = ["b", "c", "d"]


def _precommitted(net: Network) -> tuple[Block, list[bytes]]:
    """X prevotes and precommits b's block v in round 0 (locks it); the frames it sent."""
    v = net.block()
    acts = net.receive(X, net.sign_proposal(0, v))
    acts += net.receive(X, *net.sign_votes(PREVOTE, 0, v.id, ["b", "c"]))
    assert sent_votes(acts, PRECOMMIT) == [(0, v.id)]
    return v, [e.encode() for e in sent(acts)]


@pytest.mark.parametrize("other", ["another_value", "nil"])
def test_a_restarted_replica_never_signs_a_different_precommit_in_that_round(other: str) -> None:
    """X precommitted v at (1, 0) and restarts. It re-sends its prevote and precommit
    byte for byte, keeps its lock, and then, even shown a round-0 proposal of w with
    2f+1 prevotes for it (L36) or 2f+1 nil prevotes (L44) and its prevote timeout
    (L61), signs no other prevote or precommit for round 0."""
    net = Network(live=[X])
    net.start()
    v, frames = _precommitted(net)
    acts = net.restart(X)
    assert [e.encode() for e in sent(acts)] == frames
    view = net.view(X)
    assert (view.height, view.round, view.step, view.locked, view.locked_round) == (1, 0, Step.PRECOMMIT, v.id, 0)

    w = net.block(proposer="c")
    target = w.id if other == "another_value" else NIL
    net.receive(X, net.sign_proposal(0, w))  # b equivocates: X forgot it saw v proposed
    net.receive(X, *net.sign_votes(PREVOTE, 0, target, PUPPETS))
    net.fire(X, TK.PREVOTE, round=0)
    net.fire(X, TK.PROPOSE, round=0)
    assert net.signed(X, PREVOTE) == {0: v.id}
    assert net.signed(X, PRECOMMIT) == {0: v.id}


def test_a_restarted_proposer_never_proposes_a_different_block() -> None:
    """The proposer of (1, 0) proposed v and restarts 5 s later (a fresh block would
    carry a later time, so a different id). It re-sends v's proposal byte for byte and
    signs no second proposal for (1, 0)."""
    net = Network(live=["b"])
    net.start()
    [proposal] = sent(net.log["b"][-1], PROPOSAL)
    net.now += 5_000
    acts = net.restart("b")
    assert [e.encode() for e in sent(acts, PROPOSAL)] == [proposal.encode()]
    assert list(net.signed("b", PROPOSAL)) == [0]


def test_the_lock_survives_a_restart() -> None:
    """Locked on v in round 0, X restarts; in round 1 a fresh proposal of w != v gets
    a nil prevote (L22), exactly as without the crash."""
    net = Network(live=[X])
    net.start()
    _precommitted(net)
    net.restart(X)
    net.receive(X, *net.sign_votes(PRECOMMIT, 0, NIL, PUPPETS))
    net.fire_timeout(X, TK.PRECOMMIT)
    acts = net.receive(X, net.sign_proposal(1, net.block(proposer="c")))
    assert sent_votes(acts, PREVOTE) == [(1, NIL)]


def test_the_valid_value_survives_a_restart() -> None:
    """validValue/validRound travel with the guard like the lock (docs/CONSENSUS.md),
    and validRound >= lockedRound always holds in Algorithm 1. X precommits v in
    round 0 (L36: lockedValue = validValue = v), restarts, and rounds 0-2 end without
    a decision: as proposer of round 3 it must re-propose v with validRound 0, as it
    does without the crash (test_L36_valid_value_is_reproposed_with_its_proof_of_lock).
    Today it restores the lock but not the valid value, proposes a fresh block and
    prevotes nil on its own proposal."""
    net = Network(live=[X])
    net.start()
    v, _ = _precommitted(net)
    net.restart(X)
    assert (net.view(X).locked, net.view(X).locked_round) == (v.id, 0)
    for rnd in range(3):
        net.receive(X, *net.sign_votes(PRECOMMIT, rnd, NIL, PUPPETS))
        net.fire_timeout(X, TK.PRECOMMIT, round=rnd)
    [proposal] = sent(net.log[X][-1], PROPOSAL)
    assert (proposal.body["round"], proposal.body["valid_round"]) == (3, 0)
    assert Block.from_wire(proposal.body["block"]).id == v.id
