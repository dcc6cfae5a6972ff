"""The exploration loop: seeds -> schedules -> outcomes on an executor; every
failing schedule (up to limits.explore_replay_violations_max of them) shrunk and
written as a replayable scenario file."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consortium import limits
from consortium.errors import UserError
from consortium.explore.executor import Executor
from consortium.explore.run import Outcome
from consortium.explore.schedule import Options, generate
from consortium.explore.shrink import shrink
from consortium.explore.to_scenario import write_scenario


@dataclass
class Found:
    seed: int
    prop: str
    message: str
    faults_before: int
    faults_after: int = -1
    shrink_runs: int = 0
    scenario: str = ""
    replayed: bool = False
    report: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "property": self.prop, "message": self.message,
                "faults": self.faults_before, "shrunk_faults": self.faults_after,
                "shrink_runs": self.shrink_runs, "scenario": self.scenario, "replayed": self.replayed,
                "report": self.report}


@dataclass
class Report:
    seed: int
    options: Options
    workers: int
    outcomes: list[Outcome] = field(default_factory=list)
    found: list[Found] = field(default_factory=list)
    search_s: float = 0.0
    first_violation_s: float | None = None  # wall time from the start to the first failing outcome
    interrupted: bool = False

    @property
    def schedules(self) -> int:
        return len(self.outcomes)

    @property
    def failing(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def rate_per_s(self) -> float:
        return self.schedules / self.search_s if self.search_s else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "schedules": self.schedules, "violations": len(self.failing),
                "seconds": round(self.search_s, 2),
                "first_violation_s": None if self.first_violation_s is None else round(self.first_violation_s, 2), "per_second": round(self.rate_per_s, 2),
                "per_minute": round(self.rate_per_s * 60, 1), "workers": self.workers,
                "nodes": f"{self.options.nodes_min}..{self.options.nodes_max}",
                "heights": self.options.heights, "beyond_f": self.options.beyond_f,
                "generator": self.options.generator,
                "interrupted": self.interrupted,
                "failing_seeds": [o.seed for o in self.failing],
                "found": [f.to_dict() for f in self.found]}


def explore(executor: Executor, *, seed: int, options: Options, schedules: int | None = None,
            minutes: float | None = None, out: Path | None = None, first: bool = False,
            on_outcome: Callable[[Outcome], None] | None = None,
            on_shrink: Callable[[int, int], None] | None = None) -> Report:
    """Run schedules seed, seed+1, ... (N of them, or as many as fit in `minutes`),
    then shrink and write the failing ones to `out` (with `first`, stop starting new
    schedules at the first failure). Ctrl-C stops either phase cleanly:
    the report says what was done (interrupted=True)."""
    if (schedules is None) == (minutes is None):
        raise UserError("give one of --schedules N and --minutes M")
    if schedules is not None and schedules < 1:
        raise UserError(f"--schedules must be >= 1, got {schedules}")
    if minutes is not None and not minutes > 0:
        raise UserError(f"--minutes must be > 0, got {minutes}")
    if seed < 0:
        raise UserError(f"--seed must be >= 0, got {seed}")
    report = Report(seed, options, executor.workers)
    started = time.monotonic()
    deadline = started + minutes * 60 if minutes is not None else None
    seeds = iter(range(seed, seed + schedules)) if schedules is not None else itertools.count(seed)
    try:
        try:
            def more() -> bool:
                if first and report.first_violation_s is not None:
                    return False
                return deadline is None or time.monotonic() < deadline

            for o in executor.outcomes(seeds, options, more):
                report.outcomes.append(o)
                if not o.ok and report.first_violation_s is None:
                    report.first_violation_s = time.monotonic() - started
                if on_outcome is not None:
                    on_outcome(o)
        finally:
            report.search_s = time.monotonic() - started
            executor.close()
        report.outcomes.sort(key=lambda o: o.seed)
        for o in report.failing[: limits.explore_replay_violations_max]:
            report.found.append(_shrink_one(o, options, out, on_shrink))
    except KeyboardInterrupt:
        report.interrupted = True
        report.outcomes.sort(key=lambda o: o.seed)
    return report


def _shrink_one(o: Outcome, options: Options, out: Path | None,
                on_shrink: Callable[[int, int], None] | None) -> Found:
    prop = o.violated[0]
    found = Found(o.seed, prop, o.violations[0] if o.violations else prop, o.faults)
    if on_shrink is not None:
        on_shrink(o.seed, o.faults)
    s = generate(o.seed, options)
    result = shrink(s, prop, first=o)
    found.faults_after, found.shrink_runs = result.schedule.fault_count(), result.runs
    if out is not None:
        note = (f"seed {o.seed}, shrunk from {o.faults} to {found.faults_after} fault episodes "
                f"in {result.runs} runs")
        path, found.replayed = write_scenario(result.schedule, result.outcome, prop, out, note=note)
        found.scenario = str(path)
        found.report = _report(path)
    return found


def _report(scenario: Path) -> str:
    """The HTML report of a written finding, beside its scenario and trace (DIR/explore-
    SEED-PROP.html): validator lanes, the faults shaded, the sequence of messages. Empty
    when no trace was written or plotly is missing (consortium[report]): the scenario and
    its trace are the finding; the report is a view of them."""
    trace = scenario.with_suffix(".trace.jsonl")
    if not trace.is_file():
        return ""
    try:
        import plotly  # noqa: F401
    except ImportError:
        return ""
    from consortium import report

    out = scenario.with_suffix(".html")
    report.build(out, trace=trace)
    return str(out)
