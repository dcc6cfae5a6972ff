"""Persist before send, for every signed message, over whole simulator runs.

Invariant (driver contract of consortium/consensus/events.py): in every action
list a replica returns, every proposal or vote it signed is preceded by a Persist
covering exactly that (height, round, step) and frame; persisted slots strictly
increase and no slot is signed twice, across crashes and restarts. The audit
wraps each SimNode's `deliver`, `event`, `timeout` and `admit`, the places the
simulator gets action lists from its replica, so every step of the run is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from consortium.consensus import events as ev
from consortium.sim.core import SimConfig, SimResult, Simulation
from tests.consensus.harness import SigningAudit
from tests.sim.helpers import config


def audited_run(cfg: SimConfig) -> tuple[SigningAudit, SimResult]:
    sim = Simulation(cfg)
    audit = SigningAudit()
    for node in sim.nodes.values():
        for name in ("deliver", "event", "timeout", "admit"):
            inner: Callable[..., list[ev.Action]] = getattr(node, name)

            def checked(*args: Any, _inner: Callable[..., list[ev.Action]] = inner, _id: str = node.id
                        ) -> list[ev.Action]:
                actions = _inner(*args)
                audit.check(_id, actions)
                return actions

            setattr(node, name, checked)
    return audit, sim.run()


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
