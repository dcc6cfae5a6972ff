"""Run one schedule on the simulator and judge it: a small picklable Outcome.

Checks are the simulator's (consortium.sim.checkers): agreement, validity,
commit certificates, no honest double-sign, equal state roots, the
application's invariants, and liveness within Simulation.liveness_bound_ms
after the last fault (every schedule ends with a heal)."""

from __future__ import annotations

from dataclasses import dataclass

from consortium.explore.schedule import Options, Schedule, generate
from consortium.sim.checkers import CHECKS
from consortium.sim.core import Simulation


@dataclass(frozen=True)
class Outcome:
    seed: int
    ok: bool
    violated: tuple[str, ...]  # the checks that failed, in CHECKS order
    violations: tuple[str, ...]  # the first messages (what, where)
    min_height: int
    virtual_ms: int
    frames: int
    faults: int  # fault episodes in the schedule
    byzantine_power: int
    within_f: bool
    trace_digest: str

    def to_dict(self) -> dict[str, object]:
        return {"seed": self.seed, "ok": self.ok, "violated": list(self.violated),
                "violations": list(self.violations), "min_height": self.min_height,
                "virtual_ms": self.virtual_ms, "frames": self.frames, "faults": self.faults,
                "byzantine_power": self.byzantine_power, "within_f": self.within_f,
                "trace_digest": self.trace_digest}


ERROR = "error"  # the pseudo-property of a run that raised
_MESSAGES_KEPT = 3  # violation messages an Outcome carries (the checkers count every one)


def run_schedule(s: Schedule) -> Outcome:
    """Simulate `s` to its end (or its first safety violation) and judge it. An exception
    inside the simulation (an assertion of the replica or the simulator) is a finding
    too: the property `error`, with the exception as its message."""
    try:
        r = Simulation(s.config()).run()
    except Exception as exc:  # noqa: BLE001 - whatever breaks is reported, not raised
        return Outcome(seed=s.seed, ok=False, violated=(ERROR,), violations=(f"{ERROR}: {exc!r}"[:500],),
                       min_height=0, virtual_ms=0, frames=0, faults=s.fault_count(),
                       byzantine_power=s.byzantine_power(), within_f=s.within_f(), trace_digest="")
    honest = set(s.ids) - set(dict(s.byzantine)) - set(s.twins)
    failures = r.checks["checks"]
    violated = tuple(c for c in CHECKS if failures.get(c, "ok") != "ok")
    return Outcome(seed=s.seed, ok=r.ok and not violated, violated=violated,
                   violations=tuple(r.checks["violations"][:_MESSAGES_KEPT]),
                   min_height=min((h for i, h in r.heights.items() if i in honest), default=0), virtual_ms=r.virtual_ms,
                   frames=r.messages["frames_sent"], faults=s.fault_count(),
                   byzantine_power=s.byzantine_power(), within_f=s.within_f(), trace_digest=r.trace_digest)


def run_seed(seed: int, options: Options) -> Outcome:
    """Generate the schedule of `seed` and run it (what a pool worker does)."""
    return run_schedule(generate(seed, options))
