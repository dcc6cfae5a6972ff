"""Shrinking: reduce a failing schedule while it keeps failing the same way.

Greedy, one reduction at a time (drop a fault episode, halve one's duration,
drop a Byzantine member, equal powers, one node fewer, fewer heights, less
workload): a candidate is kept only if it still violates the same property.
Stops when no single reduction keeps failing, or after `runs_max` simulator runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from consortium import limits
from consortium.explore.run import Outcome, run_schedule
from consortium.explore.schedule import Episode, Schedule
from consortium.sim.core import synthetic_nodes
from consortium.sim.faults import RoundPartition, twin_of


@dataclass(frozen=True)
class Shrunk:
    schedule: Schedule
    outcome: Outcome
    runs: int
    steps: int  # reductions kept
    complete: bool  # False if runs_max stopped it first


def shrink(s: Schedule, prop: str, *, run: Callable[[Schedule], Outcome] = run_schedule,
           runs_max: int = limits.explore_shrink_runs_max, first: Outcome | None = None) -> Shrunk:
    """The smallest schedule found that still violates `prop` (s itself if none)."""
    best, best_out = s, first or run(s)
    assert prop in best_out.violated, f"the schedule does not violate {prop}"
    runs = 0 if first else 1
    steps = 0
    improved = True
    while improved:
        improved = False
        for cand in candidates(best):
            if runs >= runs_max:
                return Shrunk(best, best_out, runs, steps, complete=False)
            out = run(cand)
            runs += 1
            if prop in out.violated:
                best, best_out, steps, improved = cand, out, steps + 1, True
                break
    return Shrunk(best, best_out, runs, steps, complete=True)


def candidates(s: Schedule) -> Iterator[Schedule]:
    """Single reductions of `s`, biggest first; each is a valid schedule."""
    eps = s.episodes
    for i in range(len(eps)):  # drop one fault
        yield replace(s, episodes=eps[:i] + eps[i + 1:])
    for i in range(len(s.byzantine)):  # one Byzantine member fewer (and its targets)
        gone = s.byzantine[i][0]
        yield replace(s, byzantine=s.byzantine[:i] + s.byzantine[i + 1:],
                      targets=tuple(t for t in s.targets if t[0] != gone))
    parts = s.round_partitions
    for i in range(len(parts)):  # one Twins cut fewer
        yield replace(s, round_partitions=parts[:i] + parts[i + 1:])
    for t in s.twins:  # one twin fewer: its second instance leaves every cut
        yield replace(s, twins=tuple(x for x in s.twins if x != t),
                      round_partitions=_without(parts, twin_of(t)))
    for i, (node, chosen) in enumerate(s.targets):  # untargeted, or one chosen node fewer
        yield replace(s, targets=s.targets[:i] + s.targets[i + 1:])
        if len(chosen) > 1:
            for j in range(len(chosen)):
                narrower = (node, chosen[:j] + chosen[j + 1:])
                yield replace(s, targets=s.targets[:i] + (narrower,) + s.targets[i + 1:])
    if s.heights > 1:
        yield replace(s, heights=max(1, s.heights // 2))
    low = min((p.height for p in parts), default=1)
    for d in dict.fromkeys((low - 1, 1)) if low > 1 else ():  # the cuts at height 1, or one height earlier
        yield replace(s, heights=max(1, s.heights - d),
                      round_partitions=tuple(replace(p, height=p.height - d) for p in parts))
    fewer = _one_node_fewer(s)
    if fewer is not None:
        yield fewer
    if len(set(s.powers)) > 1:
        equal = replace(s, powers=(s.powers[0],) * s.n)
        if s.beyond_f or equal.within_f():
            yield equal
    if s.tx_per_s:
        yield replace(s, tx_per_s=0)
    for i, e in enumerate(eps):  # shorter faults
        if e.dur_ms // 2 >= limits.explore_fault_duration_ms_min:
            yield replace(s, episodes=eps[:i] + (replace(e, dur_ms=e.dur_ms // 2),) + eps[i + 1:])
    for i, e in enumerate(eps):  # a rollback of one block
        if e.op == "rollback" and e.value > 1:
            yield replace(s, episodes=eps[:i] + (replace(e, value=1),) + eps[i + 1:])
    for i, e in enumerate(eps):  # earlier faults (a shorter run)
        if e.at_ms // 2 > 0:
            yield replace(s, episodes=eps[:i] + (replace(e, at_ms=e.at_ms // 2),) + eps[i + 1:])
    if s.heights > 1:
        yield replace(s, heights=s.heights - 1)


def _without(parts: tuple[RoundPartition, ...], gone: str) -> tuple[RoundPartition, ...]:
    """The cuts without instance `gone` (a cut left with fewer than two groups is dropped)."""
    out = []
    for p in parts:
        groups = tuple(g for g in (tuple(x for x in g if x != gone) for g in p.groups) if g)
        if len(groups) >= 2:
            out.append(replace(p, groups=groups))
    return tuple(out)


def _one_node_fewer(s: Schedule) -> Schedule | None:
    """Without the last synthetic node (the others keep their ids), if nothing needs it."""
    if s.n <= 1:
        return None
    gone = s.ids[-1]
    if any(node == gone for node, _ in s.byzantine) or gone in s.twins:
        return None
    if any(gone in chosen for _, chosen in s.targets):
        return None
    eps: list[Episode] = []
    for e in s.episodes:
        if e.node == gone:
            return None
        groups = tuple(g for g in (tuple(n for n in g if n != gone) for g in e.groups) if g)
        if e.groups and len(groups) < 2:
            return None
        eps.append(replace(e, groups=groups))
    out = replace(s, powers=s.powers[:-1], episodes=tuple(eps), round_partitions=_without(s.round_partitions, gone))
    assert [x.id for x in synthetic_nodes(out.n, list(out.powers))] == s.ids[:-1]
    if not s.beyond_f and not out.within_f():
        return None
    return out
