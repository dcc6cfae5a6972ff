"""The lock rule, scripted message by message (Algorithm 1, line 22/28).

Invariant: once a validator precommitted v in round r (it is locked on v), it
never prevotes another value in a later round unless shown a proof of lock
from a round >= r. The textbook schedule below is exactly the one that breaks
agreement without it:

  round 0: the proposer's block v reaches a, b, c but not d (d is the round-1
           proposer). a, b, c prevote v, see each other's prevotes, lock v and
           precommit v. Only x1 receives all three precommits: it decides v.
  round 1: d never saw the proposal, so it has no valid value and proposes a
           fresh block v'. x2 and x3 are locked on v: they must prevote nil.
           If they prevoted v', d, x2, x3 would decide v' != v.
"""

from __future__ import annotations

from consortium import codec
from consortium.codec import Kind
from consortium.consensus import events as ev
from consortium.consensus.replica import Replica
from tests.consensus.test_replica import IDS, T0, VSET, broadcasts, replica


def _deliver(nodes: dict[str, Replica], env: codec.Envelope, to: list[str], now: int) -> dict[str, list[ev.Action]]:
    return {i: nodes[i].step(ev.Received(env, now)) for i in to}


def _votes(actions: list[ev.Action], kind: Kind) -> list[codec.Envelope]:
    return [e for e in broadcasts(actions) if e.kind == kind]


def test_a_locked_validator_never_prevotes_a_different_fresh_proposal() -> None:
    p0, p1 = VSET.proposer(1, 0), VSET.proposer(1, 1)
    assert p0 != p1
    d = p1
    x = [i for i in IDS if i != d]  # a, b, c: includes p0
    x1, x2, x3 = x[0], x[1], x[2]
    nodes = {i: replica(i) for i in IDS}
    out = {i: nodes[i].step(ev.Start(T0)) for i in IDS}
    proposal = broadcasts(out[p0])[0]
    assert proposal.kind == Kind.PROPOSAL

    # round 0: the proposal reaches x (not d); x prevote v
    prevotes: dict[str, codec.Envelope] = {}
    for i in x:
        acts = out[i] if i == p0 else nodes[i].step(ev.Received(proposal, T0))
        if i == p0:  # the proposer prevotes when it records its own proposal
            acts = out[p0]
        prevotes[i] = _votes(acts, Kind.PREVOTE)[0]
    block_v = prevotes[x1].body["block_id"]
    assert block_v is not None and all(p.body["block_id"] == block_v for p in prevotes.values())

    # x see each other's prevotes: lock v, precommit v
    precommits: dict[str, codec.Envelope] = {}
    for i in x:
        acts: list[ev.Action] = []
        for j in x:
            if j != i:
                acts += nodes[i].step(ev.Received(prevotes[j], T0 + 10))
        precommits[i] = _votes(acts, Kind.PRECOMMIT)[0]
        assert precommits[i].body["block_id"] == block_v and nodes[i].locked_round == 0

    # only x1 gets every precommit: it decides v
    for j in (x2, x3):
        nodes[x1].step(ev.Received(precommits[j], T0 + 20))
    assert nodes[x1].last is not None and nodes[x1].last.block.id == block_v

    # d: never saw the proposal; times out, prevotes nil, sees x's prevotes (no proposal,
    # so no valid value), precommits nil after the prevote timeout
    acts = nodes[d].step(ev.TimeoutFired(ev.TimeoutKind.PROPOSE, 1, 0, T0 + 2000))
    d_prevote = _votes(acts, Kind.PREVOTE)[0]
    assert d_prevote.body["block_id"] is None
    for j in x:
        nodes[d].step(ev.Received(prevotes[j], T0 + 2000))
    acts = nodes[d].step(ev.TimeoutFired(ev.TimeoutKind.PREVOTE, 1, 0, T0 + 3000))
    d_precommit = _votes(acts, Kind.PRECOMMIT)[0]
    assert d_precommit.body["block_id"] is None and nodes[d].valid_value is None

    # x2, x3 see d's nil precommit and each other's v precommit: 3 precommits, no quorum for v
    for i, other in ((x2, x3), (x3, x2)):
        nodes[i].step(ev.Received(d_precommit, T0 + 3000))
        nodes[i].step(ev.Received(precommits[other], T0 + 3000))
        assert nodes[i].last is None
    # d sees two of x's precommits (not enough to decide) and its own: precommit timeout armed
    for j in (x2, x3):
        nodes[d].step(ev.Received(precommits[j], T0 + 3000))

    # everyone but x1 moves to round 1 on the precommit timeout; d proposes a fresh block
    round1: dict[str, list[ev.Action]] = {}
    for i in (d, x2, x3):
        round1[i] = nodes[i].step(ev.TimeoutFired(ev.TimeoutKind.PRECOMMIT, 1, 0, T0 + 4000))
    fresh = [e for e in broadcasts(round1[d]) if e.kind == Kind.PROPOSAL][0]
    assert fresh.body["round"] == 1 and fresh.body["valid_round"] == -1
    block_v2 = _votes(round1[d], Kind.PREVOTE)[0].body["block_id"]
    assert block_v2 not in (None, block_v)

    # the lock rule: x2 and x3 are locked on v and must prevote nil on v'
    for i in (x2, x3):
        acts = nodes[i].step(ev.Received(fresh, T0 + 4000))
        vote = _votes(acts, Kind.PREVOTE)[0]
        assert vote.body["round"] == 1
        assert vote.body["block_id"] is None, f"{i} is locked on v but prevoted a different block"
