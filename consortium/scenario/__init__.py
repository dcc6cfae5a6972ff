"""Scenarios: one file, two back-ends (the simulator and live processes).

A Python API for notebooks:

    from consortium import scenario
    sc = scenario.load("scenarios/lc-happy-path.toml")
    result = scenario.run(sc)                 # simulator; backend="live" for real processes
    result.ok, result.to_dict()               # expectations, steps, checks as plain records
    scenario.replay("trace.jsonl")            # re-execute a simulator trace, compare state roots
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from consortium.scenario.runner import ReplayReport, ScenarioResult
from consortium.scenario.runner import replay as _replay
from consortium.scenario.runner import run as _run
from consortium.scenario.schema import Scenario
from consortium.scenario.schema import load as _load


def load(path: str | Path) -> Scenario:
    return _load(Path(path))


def run(sc: Scenario | str | Path, *, backend: str = "sim", seed: int | None = None,
        trace: str | Path | None = None, **live: Any) -> ScenarioResult:
    if not isinstance(sc, Scenario):
        sc = load(sc)
    return _run(sc, backend=backend, seed=seed, trace=Path(trace) if trace else None, live=live or None)


def replay(trace: str | Path) -> ReplayReport:
    return _replay(Path(trace))


__all__ = ["ReplayReport", "Scenario", "ScenarioResult", "load", "replay", "run"]
