"""What the explorer's adversary can do in the simulator: twins (two instances of one
validator under one key, cut per round and step), targeted equivocation (a member's
block aimed at a chosen set of nodes), and restarts from a rolled-back block store."""

from __future__ import annotations

import pytest

from consortium.codec import Kind
from consortium.consensus.replica import Replica, Step
from consortium.sim.core import SimConfig, Simulation, synthetic_nodes
from consortium.sim.faults import RoundPartition, parse_fault, twin_of

IDS = {"sh-1", "hk-1", "sh-2", "hk-2"}


def test_twins_equivocate_by_construction_and_honest_nodes_still_agree() -> None:
    """hk-1 runs twice (hk-1 and hk-1', one key, each its own store). At height 4, whose
    round 0 hk-1 leads, the two instances propose to different sides (a propose-step cut):
    two blocks under one key. The honest nodes reach the target height and
    agree, and the pair's conflicting signatures are not charged as an honest double-sign
    (the pair is one faulty validator), while honest nodes record them as evidence."""
    sim = Simulation(SimConfig(nodes=synthetic_nodes(4), seed=5, heights=6, tx_per_s=0, twins=("hk-1",),
                               round_partitions=(
                                   RoundPartition(4, 0, "propose", (("sh-1", "hk-1"), ("sh-2", "hk-2", "hk-1'"))),
                               )))
    assert sim.validators.proposer(4, 0) == "hk-1"
    assert set(sim.nodes) == IDS | {twin_of("hk-1")} and not sim.honest("hk-1'") and not sim.honest("hk-1")
    r = sim.run()
    assert r.ok, r.checks["violations"]
    assert r.checks["checks"]["double_sign"] == "ok" and r.checks["checks"]["agreement"] == "ok"
    assert all(r.heights[i] >= 6 for i in ("sh-1", "sh-2", "hk-2")) and r.heights["hk-1'"] >= 4
    assert r.messages["twins_cut"] > 0
    evidence = sum(n.replica.counters.get("equivocating_proposal", 0) for i, n in sim.nodes.items() if sim.honest(i))
    assert evidence + r.evidence_committed > 0  # the pair's two blocks (or votes) were seen as such


def _without_the_l22_lock(self: Replica) -> bool:
    """Rule L22 with the lock condition removed (tests/mutants/no-lock-l22-l28.patch)."""
    p = self.h.proposals.get(self.round)
    if self.round_step != Step.PROPOSE or p is None or p.valid_round != -1:
        return False
    self._cast(Kind.PREVOTE, p.block.id if self._timely_valid(p.block) else None)
    return True


def test_targeted_equivocation_is_what_the_l22_lock_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    """hk-1 (n=4, f=1) equivocates aimed at sh-1 then sh-2 (the Shanghai side): when it leads
    height 4, one instance gives the Shanghai side block A and its precommit to sh-1 alone,
    the other gives hk-2 block A'. sh-1 decides A; sh-2 is left locked on A. With the landed
    lock rule every honest node still agrees; with the L22 lock removed, sh-2 prevotes
    hk-2's fresh block in round 1 and hk-2 decides it: an agreement violation."""
    cfg = SimConfig(nodes=synthetic_nodes(4), seed=2, heights=6, tx_per_s=0, byzantine={"hk-1": "equivocate"},
                    targets={"hk-1": ("sh-1", "sh-2")})
    sim = Simulation(cfg)
    assert sim.validators.proposer(4, 0) == "hk-1" and set(sim.nodes) == IDS | {"hk-1'"}
    r = sim.run()
    assert r.ok, r.checks["violations"]
    monkeypatch.setattr(Replica, "_rule_prevote_fresh", _without_the_l22_lock)
    r = Simulation(cfg).run()
    assert r.checks["checks"]["agreement"] != "ok" and "at h=4" in r.checks["violations"][0]


def test_a_restart_from_a_rolled_back_store_keeps_the_guard_and_catches_up() -> None:
    """sh-2 crashes at 6 s and restarts at 6.3 s from its block store as it was 3 blocks
    earlier (the guard, its own file, is current): it decides those heights again through
    sync, never signs twice (no double-sign), and every node reaches the target height."""
    faults = [parse_fault(f, IDS) for f in ("6000:crash:sh-2", "6300:rollback:sh-2:3", "6300:heal")]
    assert faults[1].op == "rollback" and faults[1].value == 3
    sim = Simulation(SimConfig(nodes=synthetic_nodes(4), seed=4, heights=14, tx_per_s=20, faults=faults))
    before: list[int] = []
    original = sim.nodes["sh-2"].roll_back

    def watch(blocks: int) -> None:
        before.append(sim.nodes["sh-2"].height)
        original(blocks)
        before.append(sim.nodes["sh-2"].height)

    sim.nodes["sh-2"].roll_back = watch  # type: ignore[method-assign]
    r = sim.run()
    assert r.ok, r.checks["violations"]
    assert before and before[1] == max(0, before[0] - 3) and before[0] >= 3
    assert r.heights["sh-2"] >= 14 and r.liveness["met"]
    assert sim.nodes["sh-2"].store.guard is not None
