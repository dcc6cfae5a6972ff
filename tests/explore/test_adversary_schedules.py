"""The explorer's newer adversary in schedules and scenario files: twins with round
partitions, targeted equivocation and rolled-back restarts are generated, shrunk, written
in the scenario format and replayed by the scenario runner to the same simulator run."""

from __future__ import annotations

from pathlib import Path

from consortium import types
from consortium.explore.run import run_schedule
from consortium.explore.schedule import Episode, Options, Schedule, generate
from consortium.explore.shrink import candidates
from consortium.explore.to_scenario import scenario_text
from consortium.scenario import run as run_scenario
from consortium.scenario.schema import parse
from consortium.sim.faults import RoundPartition


def test_generators_draw_twins_targets_and_rollbacks_within_f() -> None:
    """`twins` schedules twin at most f of the power and cut rounds step by step; `random`
    ones aim equivocation at chosen nodes and restart nodes from rolled-back stores; `mixed`
    draws both kinds; every schedule stays within f."""
    twins = [generate(s, Options(generator="twins")) for s in range(40)]
    rand = [generate(s, Options(generator="random")) for s in range(200)]
    mixed = [generate(s, Options()) for s in range(60)]
    assert all(s.twins and s.round_partitions and not s.byzantine for s in twins)
    assert any(s.targets for s in rand) and any(e.op == "rollback" for s in rand for e in s.episodes)
    assert any(s.twins for s in mixed) and any(not s.twins for s in mixed)
    for s in twins + rand + mixed:
        assert s.within_f() and s.byzantine_power() <= types.max_faulty_power(sum(s.powers))
        assert all(dict(s.byzantine)[m] == "equivocate" and chosen for m, chosen in s.targets)


def _adversary_schedule() -> Schedule:
    """n=5 (f=1 at equal power): hk-1 twinned, two cuts of height 3; no other Byzantine."""
    cuts = (RoundPartition(3, 0, "propose", (("sh-1", "hk-1"), ("sh-2", "hk-2", "sh-3", "hk-1'"))),
            RoundPartition(3, 0, "precommit", (("sh-1",), ("sh-2", "hk-2", "sh-3", "hk-1", "hk-1'"))))
    return Schedule(seed=11, powers=(10,) * 5, heights=6, tx_per_s=20, twins=("hk-1",), round_partitions=cuts,
                    episodes=(Episode(2000, 400, "rollback", node="sh-2", value=2),))


def test_twins_and_rollback_schedules_replay_exactly_from_their_scenario_file(tmp_path: Path) -> None:
    """A schedule with a twinned validator, round cuts and a rolled-back restart, written as
    a scenario file ([sim] twins, [[sim.round_partitions]], a rollback step), is replayed
    by the scenario runner to the very same run (same trace digest), and passes."""
    s = _adversary_schedule()
    out = run_schedule(s)
    assert out.ok, out.violations
    text = scenario_text(s, "none")
    assert 'twins = ["hk-1"]' in text and "[[sim.round_partitions]]" in text and 'fault = "rollback"' in text
    sc = parse(text, source="t.toml", base=tmp_path)
    assert run_scenario(sc).trace_digest == out.trace_digest


def test_targeted_schedules_replay_exactly_and_shrink_their_targets(tmp_path: Path) -> None:
    """An equivocating member aimed at the Shanghai side is written as [sim] targets and
    replayed to the same run; shrinking offers the schedule untargeted and with one chosen
    node fewer, and without the twin."""
    s = Schedule(seed=3, powers=(10,) * 4, heights=6, tx_per_s=5, byzantine=(("hk-1", "equivocate"),),
                 targets=(("hk-1", ("sh-1", "sh-2")),))
    out = run_schedule(s)
    assert out.ok, out.violations
    text = scenario_text(s, "none")
    assert 'targets = {"hk-1" = ["sh-1", "sh-2"]}' in text
    assert run_scenario(parse(text, source="t.toml", base=tmp_path)).trace_digest == out.trace_digest
    cands = list(candidates(s))
    assert any(c.targets == () and c.byzantine == s.byzantine for c in cands)
    assert any(c.targets == (("hk-1", ("sh-2",)),) for c in cands)
    assert any(c.byzantine == () and c.targets == () for c in cands)
    t = _adversary_schedule()
    assert any(c.twins == () and all("hk-1'" not in g for p in c.round_partitions for g in p.groups)
               for c in candidates(t))
