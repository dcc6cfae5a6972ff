"""Algorithm 1 of "The latest gossip on BFT consensus" (arXiv:1807.04938), one upon-rule at a time.

Each test drives one live replica X through the rule named after its line in the
paper. The other validators are puppets: the test signs exactly the messages X
sees. Four validators of equal power: f = 1, 2f+1 = 3 of them (quorum 27 of 40),
f+1 = 2 of them (skip 14). X is the proposer of round 3 only, so rounds 0, 1, 2 are
proposed by puppets ("b", "c", "d").
"""

from __future__ import annotations

from typing import Any

import pytest

from consortium import limits
from consortium.consensus import events as ev
from consortium.consensus.messages import Block
from consortium.genesis import DEFAULT_GENESIS_TIME_MS
from tests.consensus.harness import (
    NIL,
    PRECOMMIT,
    PREVOTE,
    PROPOSAL,
    TK,
    Network,
    Step,
    View,
    armed,
    commits,
    sent,
    sent_votes,
)

X = "a"
PUPPETS = ["b", "c", "d"]


def network() -> Network:
    net = Network(live=[X])
    assert [net.proposer(r) for r in range(4)] == ["b", "c", "d", X]
    net.start()
    return net


def timeout_ms(net: Network, step: str, rnd: int) -> int:
    return net.params[f"{step}_timeout_ms"] + rnd * net.params[f"{step}_timeout_ms_delta"]


def next_round(net: Network) -> None:
    """Every puppet precommits nil in X's round (2f+1 precommits: L47 arms the
    timeout) and the timeout fires (L65): X is in the next round."""
    rnd = net.view(X).round
    net.receive(X, *net.sign_votes(PRECOMMIT, rnd, NIL, by=PUPPETS))
    net.fire_timeout(X, TK.PRECOMMIT, round=rnd)
    assert net.view(X).round == rnd + 1


def lock(net: Network, rnd: int, v: Block, proposal_valid_round: int = -1) -> None:
    """In round rnd X receives the proposal of v and 2f+1 prevotes for it: it locks v (L36)."""
    pol = net.pol(proposal_valid_round, v, PUPPETS) if proposal_valid_round >= 0 else ()
    net.receive(X, net.sign_proposal(rnd, v, valid_round=proposal_valid_round, pol=pol))
    net.receive(X, *net.sign_votes(PREVOTE, rnd, v.id, by=PUPPETS))
    assert (net.view(X).locked, net.view(X).locked_round) == (v.id, rnd)


# ------------------------------------------------------------------ L22


def test_L22_a_fresh_valid_proposal_is_prevoted() -> None:
    """L22: upon proposal(h, r, v, -1) from proposer(h, r) while step = propose, a
    replica with no lock prevotes id(v) if valid(v), and moves to step prevote."""
    net = network()
    v = net.block()
    acts = net.receive(X, net.sign_proposal(0, v))
    assert sent_votes(acts, PREVOTE) == [(0, v.id)]
    assert net.view(X).step == Step.PREVOTE


def _broken(net: Network, what: str) -> Block:
    """A block that fails valid(v) in one way."""
    table: dict[str, dict[str, Any]] = {
        "app_hash": {"app_hash": b"\x01" * 32},
        "prev_id": {"prev_id": b"\x02" * 32},
        "malformed_tx": {"txs": (b"not a kv tx",)},
        "duplicate_tx": {"txs": (b"kv:k=1", b"kv:k=1")},
        "time_not_after_parent": {"time_ms": DEFAULT_GENESIS_TIME_MS},
        "time_far_ahead": {"time_ms": net.now + limits.block_time_skew_ms_max + 1},
    }
    return net.block(**table[what])


BROKEN = ["app_hash", "prev_id", "malformed_tx", "duplicate_tx", "time_not_after_parent",
          "time_far_ahead"]


@pytest.mark.parametrize("broken", BROKEN)
def test_L22_an_invalid_proposal_is_prevoted_nil(broken: str) -> None:
    """L22, else branch: if not valid(v) the replica prevotes nil (and still leaves step propose)."""
    net = network()
    acts = net.receive(X, net.sign_proposal(0, _broken(net, broken)))
    assert sent_votes(acts, PREVOTE) == [(0, NIL)]
    assert net.view(X).step == Step.PREVOTE


def test_L22_a_proposal_from_a_non_proposer_is_ignored() -> None:
    """L22 only listens to proposer(h, r): a block proposed by anyone else gets no vote at all."""
    net = network()
    acts = net.receive(X, net.sign_proposal(0, net.block(), by="c"))
    assert sent(acts) == [] and net.view(X).step == Step.PROPOSE


def test_L22_a_locked_replica_prevotes_nil_for_a_different_value() -> None:
    """L22 lock clause: locked on v (lockedRound = 0), a fresh proposal of w != v
    (validRound -1) in round 1 gets a nil prevote."""
    net = network()
    v, w = net.block(), net.block(proposer="c")
    lock(net, 0, v)
    next_round(net)
    acts = net.receive(X, net.sign_proposal(1, w))
    assert sent_votes(acts, PREVOTE) == [(1, NIL)]
    assert net.signed(X, PREVOTE) == {0: v.id, 1: NIL}


def test_L22_a_locked_replica_prevotes_its_locked_value() -> None:
    """L22 lock clause, second disjunct: lockedValue = v, so a fresh proposal of v is prevoted."""
    net = network()
    v = net.block()
    lock(net, 0, v)
    next_round(net)
    acts = net.receive(X, net.sign_proposal(1, v))
    assert sent_votes(acts, PREVOTE) == [(1, v.id)]


def test_L22_fires_only_in_step_propose() -> None:
    """L22 requires step = propose: a proposal arriving after the replica prevoted nil
    on its propose timeout (L57) gets no second prevote."""
    net = network()
    net.fire_timeout(X, TK.PROPOSE)
    acts = net.receive(X, net.sign_proposal(0, net.block()))
    assert sent(acts) == []
    assert net.signed(X, PREVOTE) == {0: NIL} and net.view(X).step == Step.PREVOTE


# ------------------------------------------------------------------ L28


def _missed_round_0(net: Network) -> Block:
    """Round 0: b proposes v, the puppets prevote v, but X hears none of it (it
    prevotes nil on its timeout) and the puppets precommit nil: X enters round 1."""
    v = net.block()
    net.fire_timeout(X, TK.PROPOSE)
    next_round(net)
    return v


def test_L28_a_reproposal_with_its_proof_of_lock_is_prevoted() -> None:
    """L28: upon proposal(h, r, v, vr) with 2f+1 prevote(h, vr, id(v)), step = propose,
    vr < r: prevote id(v) if valid(v) and (lockedRound <= vr or lockedValue = v).
    Here lockedRound = -1. X never saw the round-0 prevotes: the proof of lock the
    re-proposal carries supplies them."""
    net = network()
    v = _missed_round_0(net)
    acts = net.receive(X, net.sign_proposal(1, v, valid_round=0, pol=net.pol(0, v, PUPPETS)))
    assert sent_votes(acts, PREVOTE) == [(1, v.id)]


@pytest.mark.parametrize("pol", ["none", "too_little_power", "forged_signature", "other_round"])
def test_L28_without_2f1_prevotes_in_valid_round_the_rule_does_not_fire(pol: str) -> None:
    """L28 needs 2f+1 prevotes for v in vr: with an empty, too small, forged or
    wrong-round proof of lock X neither prevotes v nor nil; it stays in step propose
    until its propose timeout (L57) makes it prevote nil."""
    net = network()
    v = _missed_round_0(net)
    proof = {
        "none": (),
        "too_little_power": net.pol(0, v, ["b", "c"]),
        "forged_signature": net.pol(0, v, ["b", "c"]) + (("d", b"\x00" * 64),),
        "other_round": (),
    }[pol]
    if pol == "other_round":  # real prevotes, but of round 1, presented as round 0's
        proof = tuple(sorted((e.sender, e.signature) for e in net.sign_votes(PREVOTE, 1, v.id, PUPPETS)))
    acts = net.receive(X, net.sign_proposal(1, v, valid_round=0, pol=tuple(sorted(proof))))
    assert sent(acts) == [] and net.view(X).step == Step.PROPOSE
    acts = net.fire_timeout(X, TK.PROPOSE)
    assert sent_votes(acts, PREVOTE) == [(1, NIL)]


def test_L28_a_lock_older_than_the_valid_round_does_not_block() -> None:
    """L28, lockedRound <= vr: X locked v0 in round 0; in round 2 the value v1 that
    got 2f+1 prevotes in round 1 (X missed them) is re-proposed with vr = 1: X prevotes v1."""
    net = network()
    v0, v1 = net.block(), net.block(proposer="c")
    lock(net, 0, v0)
    next_round(net)
    acts = net.receive(X, net.sign_proposal(1, v1))  # L22: locked on v0, so nil
    assert sent_votes(acts, PREVOTE) == [(1, NIL)]
    next_round(net)
    acts = net.receive(X, net.sign_proposal(2, v1, valid_round=1, pol=net.pol(1, v1, PUPPETS)))
    assert sent_votes(acts, PREVOTE) == [(2, v1.id)]


def test_L28_a_lock_newer_than_the_valid_round_on_another_value_prevotes_nil() -> None:
    """L28 negative branch: X locked w in round 1; a Byzantine proposer re-proposes v
    with vr = 0 < lockedRound and v != lockedValue: X prevotes nil."""
    net = network()
    v = _missed_round_0(net)
    w = net.block(proposer="c")
    lock(net, 1, w)
    next_round(net)
    acts = net.receive(X, net.sign_proposal(2, v, valid_round=0, pol=net.pol(0, v, PUPPETS)))
    assert sent_votes(acts, PREVOTE) == [(2, NIL)]


def test_L28_a_reproposal_of_the_locked_value_is_prevoted_whatever_its_valid_round() -> None:
    """L28, lockedValue = v: X locked v in round 1; v re-proposed in round 2 with
    vr = 0 < lockedRound is still prevoted."""
    net = network()
    v = _missed_round_0(net)
    lock(net, 1, v, proposal_valid_round=0)
    next_round(net)
    acts = net.receive(X, net.sign_proposal(2, v, valid_round=0, pol=net.pol(0, v, PUPPETS)))
    assert sent_votes(acts, PREVOTE) == [(2, v.id)]


def test_L28_an_invalid_reproposal_is_prevoted_nil() -> None:
    """L28: even with 2f+1 prevotes in vr, an invalid v gets a nil prevote."""
    net = network()
    _missed_round_0(net)
    bad = _broken(net, "app_hash")
    acts = net.receive(X, net.sign_proposal(1, bad, valid_round=0, pol=net.pol(0, bad, PUPPETS)))
    assert sent_votes(acts, PREVOTE) == [(1, NIL)]


# ------------------------------------------------------------------ L34


def test_L34_2f1_prevotes_for_anything_arm_the_prevote_timeout_once() -> None:
    """L34: upon 2f+1 prevote(h, r, *) while step = prevote, for the first time:
    schedule OnTimeoutPrevote(h, r) after timeoutPrevote(r). Mixed values count."""
    net = network()
    v, w = net.block(), net.block(proposer="c")
    net.fire_timeout(X, TK.PROPOSE)  # X prevotes nil
    acts = net.receive(X, net.sign_vote("b", PREVOTE, 0, v.id))
    assert armed(acts, TK.PREVOTE) == []  # 20 of 40
    acts = net.receive(X, net.sign_vote("c", PREVOTE, 0, w.id))
    assert armed(acts, TK.PREVOTE) == [ev.ScheduleTimeout(TK.PREVOTE, 1, 0, timeout_ms(net, "prevote", 0))]
    assert sent(acts) == []  # no value has a quorum: no precommit yet
    acts = net.receive(X, net.sign_vote("d", PREVOTE, 0, v.id))
    assert armed(acts, TK.PREVOTE) == [], "only the first time"


def test_L34_does_not_fire_in_step_propose() -> None:
    """L34 requires step = prevote: 2f+1 prevotes seen in step propose arm nothing
    until the replica itself prevotes."""
    net = network()
    v, w = net.block(), net.block(proposer="c")
    acts = net.receive(X, net.sign_vote("b", PREVOTE, 0, v.id), net.sign_vote("c", PREVOTE, 0, w.id),
                       net.sign_vote("d", PREVOTE, 0, v.id))
    assert armed(acts, TK.PREVOTE) == []
    acts = net.fire_timeout(X, TK.PROPOSE)
    assert sent_votes(acts, PREVOTE) == [(0, NIL)]
    assert armed(acts, TK.PREVOTE) == [ev.ScheduleTimeout(TK.PREVOTE, 1, 0, timeout_ms(net, "prevote", 0))]


# ------------------------------------------------------------------ L36


def test_L36_2f1_prevotes_for_the_proposal_lock_it_and_precommit() -> None:
    """L36: upon proposal(h, r, v, *) and 2f+1 prevote(h, r, id(v)) while valid(v) and
    step >= prevote, first time: if step = prevote, lockedValue := v, lockedRound := r,
    precommit id(v), step := precommit; and validValue := v, validRound := r."""
    net = network()
    v = net.block()
    net.receive(X, net.sign_proposal(0, v))
    acts = net.receive(X, net.sign_vote("b", PREVOTE, 0, v.id))
    assert sent(acts) == [] and net.view(X).locked is None  # 20 of 40: not yet
    acts = net.receive(X, net.sign_vote("c", PREVOTE, 0, v.id))
    assert sent_votes(acts, PRECOMMIT) == [(0, v.id)]
    view = net.view(X)
    assert (view.step, view.locked, view.locked_round, view.valid, view.valid_round) == (
        Step.PRECOMMIT, v.id, 0, v.id, 0)
    acts = net.receive(X, net.sign_vote("d", PREVOTE, 0, v.id))
    assert sent(acts) == [], "only the first time"


def test_L36_needs_the_proposal() -> None:
    """L36 fires on the proposal *and* 2f+1 prevotes: prevotes alone lock nothing;
    the proposal arriving later completes the rule."""
    net = network()
    v = net.block()
    net.fire_timeout(X, TK.PROPOSE)  # X prevotes nil
    acts = net.receive(X, *net.sign_votes(PREVOTE, 0, v.id, PUPPETS))
    assert sent(acts) == [] and net.view(X).locked is None
    acts = net.receive(X, net.sign_proposal(0, v))
    assert sent_votes(acts, PRECOMMIT) == [(0, v.id)] and net.view(X).locked == v.id


def test_L36_an_invalid_value_is_never_locked() -> None:
    """L36 requires valid(v): even 2f+1 prevotes for an invalid block (more than f
    faulty validators) make X neither lock, nor precommit, nor take it as validValue."""
    net = network()
    bad = _broken(net, "app_hash")
    net.receive(X, net.sign_proposal(0, bad))  # L22: X prevotes nil
    acts = net.receive(X, *net.sign_votes(PREVOTE, 0, bad.id, PUPPETS))
    assert sent(acts) == []
    view = net.view(X)
    assert (view.step, view.locked, view.valid) == (Step.PREVOTE, None, None)


def test_L36_in_step_precommit_only_the_valid_value_moves() -> None:
    """L36 when step = precommit already (X precommitted nil on its prevote timeout):
    no lock, no second precommit, but validValue := v, validRound := r."""
    net = network()
    v = net.block()
    net.fire_timeout(X, TK.PROPOSE)
    net.receive(X, *net.sign_votes(PREVOTE, 0, v.id, ["b", "c"]))  # 2f+1 prevotes (X's is nil): L34
    net.fire_timeout(X, TK.PREVOTE)  # L61: precommit nil
    net.receive(X, net.sign_proposal(0, v))
    acts = net.receive(X, net.sign_vote("d", PREVOTE, 0, v.id))
    assert sent(acts) == []
    view = net.view(X)
    assert (view.locked, view.locked_round, view.valid, view.valid_round) == (None, -1, v.id, 0)
    assert net.signed(X, PRECOMMIT) == {0: NIL}


def test_L36_valid_value_is_reproposed_with_its_proof_of_lock() -> None:
    """L36 + L14-L16: the validValue is what the replica proposes when its turn comes,
    with validRound and the 2f+1 prevotes that justify it."""
    net = network()
    v = net.block()
    net.receive(X, net.sign_proposal(0, v))
    net.receive(X, *net.sign_votes(PREVOTE, 0, v.id, PUPPETS))
    for _ in range(3):
        next_round(net)  # rounds 0, 1, 2 end without a decision; X proposes round 3
    [proposal] = sent(net.log[X][-1], PROPOSAL)
    body = proposal.body
    assert (body["round"], body["valid_round"], Block.from_wire(body["block"]).id) == (3, 0, v.id)
    assert sorted(s for s, _ in body["pol"]) == [X, *PUPPETS]


# ------------------------------------------------------------------ L44


def test_L44_2f1_nil_prevotes_precommit_nil() -> None:
    """L44: upon 2f+1 prevote(h, r, nil) while step = prevote: precommit nil, step := precommit."""
    net = network()
    net.fire_timeout(X, TK.PROPOSE)
    acts = net.receive(X, net.sign_vote("b", PREVOTE, 0, NIL))
    assert sent(acts) == []  # 20 of 40
    acts = net.receive(X, net.sign_vote("c", PREVOTE, 0, NIL))
    assert sent_votes(acts, PRECOMMIT) == [(0, NIL)]
    assert net.view(X).step == Step.PRECOMMIT and net.view(X).locked_round == -1


def test_L44_does_not_fire_in_step_propose() -> None:
    """L44 requires step = prevote: nil prevotes seen in step propose sign nothing;
    the replica precommits nil right after it prevotes."""
    net = network()
    acts = net.receive(X, *net.sign_votes(PREVOTE, 0, NIL, PUPPETS))
    assert sent(acts) == [] and net.view(X).step == Step.PROPOSE
    acts = net.fire_timeout(X, TK.PROPOSE)
    assert [(e.kind, e.body["block_id"]) for e in sent(acts)] == [(PREVOTE, NIL), (PRECOMMIT, NIL)]


# ------------------------------------------------------------------ L47


def test_L47_2f1_precommits_for_anything_arm_the_precommit_timeout_once() -> None:
    """L47: upon 2f+1 precommit(h, r, *) for the first time (any step): schedule
    OnTimeoutPrecommit(h, r) after timeoutPrecommit(r)."""
    net = network()
    v, w = net.block(), net.block(proposer="c")
    acts = net.receive(X, net.sign_vote("b", PRECOMMIT, 0, v.id), net.sign_vote("c", PRECOMMIT, 0, NIL))
    assert armed(acts, TK.PRECOMMIT) == []
    acts = net.receive(X, net.sign_vote("d", PRECOMMIT, 0, w.id))
    assert armed(acts, TK.PRECOMMIT) == [
        ev.ScheduleTimeout(TK.PRECOMMIT, 1, 0, timeout_ms(net, "precommit", 0))]
    assert net.view(X).step == Step.PROPOSE and net.view(X).round == 0
    # X's own precommit (L44) is a fourth one: no second timer
    net.fire_timeout(X, TK.PROPOSE)
    acts = net.receive(X, *net.sign_votes(PREVOTE, 0, NIL, ["b", "c"]))
    assert sent_votes(acts, PRECOMMIT) == [(0, NIL)]
    assert armed(acts, TK.PRECOMMIT) == []


# ------------------------------------------------------------------ L49


def test_L49_proposal_and_2f1_precommits_decide() -> None:
    """L49: upon proposal(h, r, v, *) and 2f+1 precommit(h, r, id(v)), valid(v):
    decide v with its certificate, move to height h+1 (round 0, lock and valid reset)."""
    net = network()
    v = net.block()
    net.receive(X, net.sign_proposal(0, v))
    acts = net.receive(X, *net.sign_votes(PRECOMMIT, 0, v.id, ["b", "c"]))
    assert commits(acts) == []  # 20 of 40
    acts = net.receive(X, net.sign_vote("d", PRECOMMIT, 0, v.id))
    [c] = commits(acts)
    assert c.block == v
    assert (c.certificate.height, c.certificate.round, c.certificate.block_id) == (1, 0, v.id)
    assert [s for s, _ in c.certificate.signatures] == PUPPETS
    assert net.view(X) == View(height=2, round=0, step=Step.PROPOSE, locked_round=-1, locked=None,
                            valid_round=-1, valid=None, waiting=True)
    assert armed(acts, TK.COMMIT) == [ev.ScheduleTimeout(TK.COMMIT, 2, 0, net.params["block_interval_ms"])]
    assert net.decided(X) == [v]


def test_L49_decides_a_value_of_an_earlier_round() -> None:
    """L49 holds for any round r: X already moved on to round 2 when the round-1
    precommits for v arrive; it decides v with a round-1 certificate."""
    net = network()
    net.fire_timeout(X, TK.PROPOSE)
    next_round(net)
    v = net.block()
    net.receive(X, net.sign_proposal(1, v, by="c"))
    net.receive(X, *net.sign_votes(PREVOTE, 2, NIL, ["c", "d"]))  # f+1 in round 2: L55
    assert net.view(X).round == 2
    [c] = commits(net.receive(X, *net.sign_votes(PRECOMMIT, 1, v.id, PUPPETS)))
    assert c.block == v and c.certificate.round == 1


def test_L49_without_the_proposal_there_is_no_decision_and_the_block_is_fetched() -> None:
    """L49 needs the proposal itself: 2f+1 precommits for an unknown block decide
    nothing; X asks one of the precommitters for the decided block (sync), and
    decides once the proposal arrives."""
    net = network()
    v = net.block()
    acts = net.receive(X, *net.sign_votes(PRECOMMIT, 0, v.id, PUPPETS))
    assert commits(acts) == []
    [req] = sent(acts)
    assert req.kind == "sync_request" and req.body == {"from_height": 1, "to_height": 1}
    assert [a.to for a in acts if isinstance(a, ev.SendTo)][0] in PUPPETS
    assert [c.block for c in commits(net.receive(X, net.sign_proposal(0, v)))] == [v]


def test_L49_an_invalid_value_is_never_decided() -> None:
    """L49 requires valid(v): 2f+1 precommits for an invalid block (more than f
    faulty validators) decide nothing."""
    net = network()
    bad = _broken(net, "app_hash")
    net.receive(X, net.sign_proposal(0, bad))
    acts = net.receive(X, *net.sign_votes(PRECOMMIT, 0, bad.id, PUPPETS))
    assert commits(acts) == [] and net.view(X).height == 1


def test_L49_the_quorum_is_power_not_heads() -> None:
    """L49 with powers 40/10/10/10 (quorum 47 of 70): the heavy validator and one
    light one decide (2 of 4 heads); three light ones (30) would not."""
    net = Network(powers=[40, 10, 10, 10], live=["c"])
    net.start()
    v = net.block()
    net.receive("c", net.sign_proposal(0, v))  # c prevotes v
    acts = net.receive("c", *net.sign_votes(PRECOMMIT, 0, v.id, ["b", "d"]))
    assert commits(acts) == []
    [c] = commits(net.receive("c", net.sign_vote("a", PRECOMMIT, 0, v.id)))
    assert [s for s, _ in c.certificate.signatures] == ["a", "b", "d"]
    net2 = Network(powers=[40, 10, 10, 10], live=["c"])
    net2.start()
    net2.receive("c", net2.sign_proposal(0, v))
    [c2] = commits(net2.receive("c", *net2.sign_votes(PRECOMMIT, 0, v.id, ["a", "b"])))
    assert [s for s, _ in c2.certificate.signatures] == ["a", "b"]


# ------------------------------------------------------------------ L55


def test_L55_f1_power_in_a_higher_round_makes_the_replica_jump() -> None:
    """L55: upon f+1 messages of round > round_p (from distinct validators, any kind):
    StartRound(that round). One validator sending two messages is still one sender."""
    net = network()
    acts = net.receive(X, net.sign_vote("b", PREVOTE, 2, NIL), net.sign_vote("b", PRECOMMIT, 2, NIL))
    assert net.view(X).round == 0 and armed(acts, TK.PROPOSE) == []
    acts = net.receive(X, net.sign_vote("c", PREVOTE, 2, NIL))
    assert (net.view(X).round, net.view(X).step) == (2, Step.PROPOSE)
    assert armed(acts, TK.PROPOSE) == [ev.ScheduleTimeout(TK.PROPOSE, 1, 2, timeout_ms(net, "propose", 2))]
    assert sent(acts) == []  # round 2 is d's to propose; X signs nothing on the jump


def test_L55_lower_rounds_never_move_the_replica() -> None:
    """L55 only looks ahead: 2f+1 messages of an earlier round leave the round alone."""
    net = network()
    net.receive(X, *net.sign_votes(PREVOTE, 2, NIL, ["b", "c"]))
    net.receive(X, *net.sign_votes(PREVOTE, 1, NIL, PUPPETS))
    assert net.view(X).round == 2


def test_L55_counts_power_not_heads() -> None:
    """L55 with powers 40/10/10/10 (f+1 power is 24 of 70): the heavy validator
    alone moves a replica; two light ones (20) do not."""
    net = Network(powers=[40, 10, 10, 10], live=["c"])
    net.start()
    net.receive("c", *net.sign_votes(PREVOTE, 5, NIL, ["b", "d"]))
    assert net.view("c").round == 0
    net.receive("c", net.sign_vote("a", PREVOTE, 5, NIL))
    assert net.view("c").round == 5


# ------------------------------------------------------------------ L57 / L61 / L65


def test_L57_propose_timeout_prevotes_nil() -> None:
    """L57: OnTimeoutPropose(h, r) while h = h_p, r = round_p, step = propose:
    prevote nil, step := prevote. StartRound armed it with timeoutPropose(r)."""
    net = network()
    assert net.armed(X, TK.PROPOSE) == [ev.ScheduleTimeout(TK.PROPOSE, 1, 0, timeout_ms(net, "propose", 0))]
    acts = net.fire_timeout(X, TK.PROPOSE)
    assert sent_votes(acts, PREVOTE) == [(0, NIL)] and net.view(X).step == Step.PREVOTE


def test_L57_is_ignored_once_the_replica_left_step_propose() -> None:
    """L57 requires step = propose: a replica that already precommitted stays in
    step precommit and signs nothing when its propose timeout fires."""
    net = network()
    lock(net, 0, net.block())
    acts = net.fire_timeout(X, TK.PROPOSE)
    assert sent(acts) == [] and net.view(X).step == Step.PRECOMMIT


def test_L61_prevote_timeout_precommits_nil() -> None:
    """L61: OnTimeoutPrevote(h, r) while step = prevote: precommit nil, step := precommit.
    In step propose (a timeout no rule armed) it does nothing."""
    net = network()
    assert sent(net.fire(X, TK.PREVOTE, round=0)) == [] and net.view(X).step == Step.PROPOSE
    v, w = net.block(), net.block(proposer="c")
    net.receive(X, net.sign_proposal(0, v))
    net.receive(X, net.sign_vote("b", PREVOTE, 0, NIL), net.sign_vote("c", PREVOTE, 0, w.id))
    acts = net.fire_timeout(X, TK.PREVOTE)
    assert sent_votes(acts, PRECOMMIT) == [(0, NIL)] and net.view(X).step == Step.PRECOMMIT
    assert net.view(X).locked is None


def test_L65_precommit_timeout_starts_the_next_round() -> None:
    """L65: OnTimeoutPrecommit(h, r) (any step): StartRound(r + 1), which arms the
    longer timeoutPropose(r + 1) when the replica is not its proposer."""
    net = network()
    net.receive(X, *net.sign_votes(PRECOMMIT, 0, NIL, PUPPETS))
    acts = net.fire_timeout(X, TK.PRECOMMIT)
    assert (net.view(X).round, net.view(X).step) == (1, Step.PROPOSE)
    assert armed(acts, TK.PROPOSE) == [ev.ScheduleTimeout(TK.PROPOSE, 1, 1, timeout_ms(net, "propose", 1))]
    assert sent(acts) == []


def test_L65_the_next_proposer_proposes_a_fresh_value() -> None:
    """L65 -> StartRound(r + 1) on the proposer of r + 1 with no validValue: it
    proposes a fresh block with validRound -1 (and prevotes it, L22)."""
    net = Network(live=["c"])
    net.start()
    net.receive("c", *net.sign_votes(PRECOMMIT, 0, NIL, ["a", "b", "d"]))
    acts = net.fire_timeout("c", TK.PRECOMMIT)
    [p] = sent(acts, PROPOSAL)
    assert (p.body["round"], p.body["valid_round"], p.body["pol"]) == (1, -1, [])
    assert sent_votes(acts, PREVOTE) == [(1, Block.from_wire(p.body["block"]).id)]


@pytest.mark.parametrize("kind", [TK.PROPOSE, TK.PREVOTE, TK.PRECOMMIT])
def test_timeouts_of_an_earlier_round_are_ignored(kind: ev.TimeoutKind) -> None:
    """L57/L61/L65 all require r = round_p: a round-0 timeout that fires late, when X
    is in round 1 (in the step that timeout would act on), signs nothing and changes
    neither round nor step."""
    net = network()
    v, w = net.block(), net.block(proposer="c")
    net.receive(X, net.sign_vote("b", PREVOTE, 1, v.id), net.sign_vote("c", PREVOTE, 1, w.id))  # L55
    if kind != TK.PROPOSE:
        net.fire_timeout(X, TK.PROPOSE, round=1)  # X prevotes nil in round 1: step prevote
    before = net.view(X)
    assert before.round == 1 and before.step == (Step.PROPOSE if kind == TK.PROPOSE else Step.PREVOTE)
    acts = net.fire(X, kind, round=0)
    assert sent(acts) == [] and net.view(X) == before
