"""Persist before send, for every signed message, over whole simulator runs.

Invariant (driver contract of consortium/consensus/events.py): in every action
list a replica returns, every proposal or vote it signed is preceded by a Persist
covering exactly that (height, round, step) and frame; persisted slots strictly
increase and no slot is signed twice, across crashes and restarts. The audit
wraps every replica's `receive`, `timeout`, `admit` and `step` (Start), the places
the simulator gets action lists from (it calls them directly, as SimNode's doors
do), so every step of the run is checked, restarted replicas included.
"""

from __future__ import annotations

from typing import Any

import pytest

from consortium import codec
from consortium.consensus import events as ev
from consortium.consensus.replica import Replica
from consortium.sim import node as sim_node
from consortium.sim.core import SimConfig, SimResult, Simulation
from tests.consensus.harness import SigningAudit
from tests.sim.helpers import config


def audited_run(cfg: SimConfig) -> tuple[SigningAudit, SimResult]:
    audit = SigningAudit()

    class Audited(Replica):
        def _audit(self, actions: list[ev.Action]) -> list[ev.Action]:
            audit.check(self.me, actions)  # (no twins in these runs: one replica per validator at a time)
            return actions

        def step(self, event: ev.Event) -> list[ev.Action]:
            out = super().step(event)  # Received, TxSubmitted, TimeoutFired route to the methods below
            return self._audit(out) if isinstance(event, ev.Start) else out

        def receive(self, env: codec.Envelope, now_ms: int) -> list[ev.Action]:
            return self._audit(super().receive(env, now_ms))

        def timeout(self, kind: ev.TimeoutKind, height: int, rnd: int, now_ms: int) -> list[ev.Action]:
            return self._audit(super().timeout(kind, height, rnd, now_ms))

        def admit(self, tx: bytes, now_ms: int) -> list[ev.Action]:
            return self._audit(super().admit(tx, now_ms))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sim_node, "Replica", Audited)
        return audit, Simulation(cfg).run()


RUNS: dict[str, dict[str, Any]] = {
    "n4-clean": dict(nodes=4, heights=6, seed=11),
    "n4-loss-crash-partition": dict(nodes=4, heights=8, seed=12, drop=0.1, faults=[
        "500:crash:sh-2", "2500:partition:sh-1,hk-1|sh-2,hk-2", "4000:heal", "4000:restart:sh-2"]),
    "n4-double-vote": dict(nodes=4, heights=6, seed=13, bad={"hk-2": "double-vote"}),
    "n7-equivocators-and-crash": dict(nodes=7, heights=6, seed=14, bad={"sh-1": "equivocate", "hk-1": "equivocate"},
                                      faults=["1500:crash:sh-3", "6000:restart:sh-3"]),
    "n7-loss-pause": dict(nodes=7, heights=6, seed=15, drop=0.2, faults=["1000:pause:hk-2", "5000:resume:hk-2"]),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_every_signed_frame_of_a_simulator_run_is_persisted_first(name: str) -> None:
    """Every step of every node of the run (Byzantine nodes' honest replicas included)
    obeys the signing contract; the run itself stays safe."""
    kw = dict(RUNS[name])
    nodes, heights = kw.pop("nodes"), kw["heights"]
    audit, result = audited_run(config(nodes, **kw))
    assert result.ok, result.checks["violations"]
    # not vacuous: at least a prevote and a precommit per height from a quorum of nodes
    assert audit.frames >= 2 * heights * (2 * nodes // 3 + 1), (audit.frames, audit.lists)
