"""Scenarios: one file, two back-ends (the simulator and live processes).

A Python API for notebooks:

    from consortium import scenario
    sc = scenario.load("scenarios/lc-happy-path.toml")   # or a shipped one by name: "lc-happy-path"
    result = scenario.run(sc)                 # simulator; backend="live" for real processes
    scenario.run(sc, seed=3, network={"loss": 0.2}, trace="t.jsonl")   # overrides; the trace keeps them
    result.ok, result.to_dict()               # expectations, steps, checks as plain records
    scenario.replay("trace.jsonl")            # re-execute a simulator trace, compare state roots
    runs = scenario.sweep("loss-20-percent", seeds="1..10", settings={"network.loss": [0, 0.1, 0.3]})
    pandas.DataFrame(runs); runs.points       # one record per run; one summary per grid point
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from consortium.config import shipped_dir
from consortium.errors import UserError
from consortium.scenario.runner import ReplayReport, ScenarioResult, check_options
from consortium.scenario.runner import replay as _replay
from consortium.scenario.runner import run as _run
from consortium.scenario.schema import Scenario, with_network
from consortium.scenario.schema import load as _load
from consortium.scenario.sweep import SweepResult, sweep


def locate(path: str | Path) -> Path:
    """The scenario file `path` names: the file itself (or NAME.toml) when it exists here or has a
    directory part; otherwise a bare name is the shipped scenario of that name (scenarios/)."""
    p = Path(path)
    local = [p] if p.suffix == ".toml" else [p, Path(f"{p}.toml")]
    found = next((c for c in local if c.is_file()), None)
    if found is not None or p.parent != Path("."):
        return found or p
    shipped = shipped_dir("scenarios")
    found = next((c for c in (shipped / f.name for f in local) if c.is_file()), None)
    if found is None:
        names = ", ".join(sorted(f.stem for f in shipped.glob("*.toml")))
        raise UserError(f"{path}: no such scenario file here, nor a shipped scenario of that name "
                        f"(shipped: {names})")
    return found


def load(path: str | Path) -> Scenario:
    return _load(locate(path))


def run(sc: Scenario | str | Path, *, backend: str = "sim", seed: int | None = None,
        trace: str | Path | None = None, network: dict[str, Any] | None = None, **live: Any) -> ScenarioResult:
    """Run a scenario (a Scenario or a file). `seed` and `network` (some [network]
    fields, e.g. {"loss": 0.2}) override the scenario's own, and a trace records the
    scenario as run. With backend="live": broker, home, keep_home. Any other keyword
    is a TypeError."""
    check_options(backend, live)
    if not isinstance(sc, Scenario):
        sc = load(sc)
    if network is not None:
        sc = with_network(sc, network)
    return _run(sc, backend=backend, seed=seed, trace=Path(trace) if trace else None, live=live or None)


def replay(trace: str | Path) -> ReplayReport:
    return _replay(Path(trace))


__all__ = ["ReplayReport", "Scenario", "ScenarioResult", "SweepResult", "load", "locate", "replay", "run", "sweep"]
