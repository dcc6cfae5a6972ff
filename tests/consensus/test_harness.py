"""The scripted network's verbs do what the rule tests rely on.

Invariant: frames move only when the test moves them (deliver, drop, reorder,
isolate/heal), timers fire only when the test fires them, and a network of
honest replicas driven this way decides one block, with the submitted txs.
"""

from __future__ import annotations

from tests.consensus.harness import PRECOMMIT, PREVOTE, PROPOSAL, TK, Network


def test_a_perfect_network_decides_the_submitted_tx() -> None:
    """Four live replicas, a tx submitted to all, every frame delivered: everyone
    decides the same block at height 1 holding the tx, and nothing is left in flight."""
    net = Network()
    net.submit(b"kv:cargo=loaded")
    net.start()
    assert [m.kind for m in net.inflight] == [PROPOSAL] * 3 + [PREVOTE] * 3  # b's proposal and prevote
    net.settle()
    assert net.inflight == []
    assert all(net.decided(i) == net.decided("b") for i in net.ids)
    assert net.decided("b")[0].txs == (b"kv:cargo=loaded",)


def test_deliver_and_drop_take_filters_and_nothing_else_moves() -> None:
    """deliver(kind=..., dst=...) moves only the matching frames; what they cause
    stays in flight; drop loses frames for good (c never sees the proposal, so it
    signs nothing and learns the decision through sync)."""
    net = Network()
    net.start()
    assert [m.dst for m in net.deliver(kind=PROPOSAL, dst="a")] == ["a"]
    assert [(m.src, m.kind) for m in net.pending(src="a")] == [("a", PREVOTE)] * 3
    assert net.signed("c", PREVOTE) == {}  # c has not seen the proposal yet
    lost = net.drop(dst="c")
    assert [(m.src, m.kind) for m in lost] == [("b", PROPOSAL), ("b", PREVOTE), ("a", PREVOTE)]
    net.settle()
    assert net.signed("c", PREVOTE) == {} and net.signed("c", PRECOMMIT) == {}
    assert all(net.decided(i) == net.decided("a") for i in net.ids)
    assert net.replicas["c"].counters["synced_blocks"] == 1


def test_reordered_precommits_before_the_proposal_still_decide() -> None:
    """Reorder: node a gets everyone's precommits before the proposal (L49 then
    waits for the proposal)."""
    net = Network()
    net.start()
    net.deliver(kind=PROPOSAL, where=lambda m: m.dst != "a")
    net.deliver(kind=PREVOTE, where=lambda m: m.dst != "a")
    [proposal] = net.pending(kind=PROPOSAL, dst="a")
    precommits = net.pending(kind=PRECOMMIT, dst="a")
    assert len(precommits) == 3
    net.deliver_in_order(precommits)
    assert net.decided("a") == []
    net.deliver_in_order([proposal])
    assert [b.id for b in net.decided("a")] == [proposal.value]


def test_isolate_heal_and_timeouts() -> None:
    """An isolated node neither sends nor receives; it only moves on its own timers."""
    net = Network()
    net.isolate("a")
    net.start()
    net.settle()
    assert net.decided("a") == [] and all(len(net.decided(i)) == 1 for i in ("b", "c", "d"))
    net.fire_timeout("a", TK.PROPOSE)
    assert net.signed("a", PREVOTE) == {0: None} and net.pending(src="a") == []
    net.heal()
    net.fire_timeout("a", TK.RETRANSMIT)  # a re-sends its nil prevote, now reaching b, c, d
    assert {m.dst for m in net.pending(src="a")} == {"b", "c", "d"}
