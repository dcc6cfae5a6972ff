"""The split generator: a few links cut at chosen steps of three rounds, so that a polka
and then a decision are seen by some nodes only. What the lock rules (L22, L28) are for:
the landed code stays safe and live under it, and a replica without the L28 lock
condition (tests/mutants/no-lock-l28.patch) forks."""

from __future__ import annotations

import pytest

from consortium import types
from consortium.codec import Kind
from consortium.consensus.replica import Replica, Step
from consortium.explore.run import run_schedule
from consortium.explore.schedule import Options, generate
from consortium.explore.shrink import candidates

SPLIT = Options(generator="split")
SEEDS = range(4)  # split schedules 0..3: n = 7 and n = 4, each with the whole pattern placed or a near miss


def _without_the_l28_lock(self: Replica) -> bool:
    """Rule L28 with the lock condition removed (what tests/mutants/no-lock-l28.patch does)."""
    p = self.h.proposals.get(self.round)
    if self.round_step != Step.PROPOSE or p is None or not 0 <= p.valid_round < self.round:
        return False
    if not self._quorum(Kind.PREVOTE, p.valid_round, p.block.id):
        return False
    self._cast(Kind.PREVOTE, p.block.id if self._valid(p.block) else None)
    return True


def test_split_schedules_are_safe_on_the_landed_code_and_fork_without_the_l28_lock(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Split schedules are honest-only (within f), n = 3f+1, at most 5 cuts and nothing
    else; the landed code passes every check on them (agreement and liveness included).
    With the lock condition of L28 alone dropped, at least one of the same schedules
    violates agreement: a node locked on a block in round a+1 prevotes the re-proposal
    of round a's block, and two honest nodes decide different blocks at one height."""
    schedules = [generate(s, SPLIT) for s in SEEDS]
    for s in schedules:
        assert s.within_f() and not s.byzantine and not s.twins and not s.episodes
        assert (s.n - 1) % 3 == 0 and len(set(s.powers)) == 1 and 1 <= s.fault_count() <= 5
        assert types.max_faulty_power(sum(s.powers)) // s.powers[0] == (s.n - 1) // 3  # f whole validators
    for s in schedules:
        out = run_schedule(s)
        assert out.ok, (s.describe(), out.violations)
    monkeypatch.setattr(Replica, "_rule_prevote_valid_round", _without_the_l28_lock)
    forks = [s.seed for s in schedules if "agreement" in run_schedule(s).violated]
    assert forks, "no split schedule broke the L28 mutant"


def test_mixed_draws_split_schedules_and_keeps_the_seeds_that_found_the_other_mutants() -> None:
    """`mixed` draws split schedules (about one in six) beside twins and random ones; the
    split share is carved out of the twins third, so a seed `mixed` gave the random
    generator before keeps its schedule: seed 6 is still n = 4 with hk-1 equivocating
    aimed at sh-2 then sh-1 (what found no-lock-l22-l28 and guard-ignored-after-restart,
    tests/mutants/found/)."""
    kinds = {"split": 0, "twins": 0, "random": 0}
    for seed in range(120):
        s = generate(seed, Options())
        kinds["twins" if s.twins else "split" if s.round_partitions else "random"] += 1
    assert all(kinds.values()) and 10 <= kinds["split"] <= 35, kinds
    six = generate(6, Options())
    assert six.n == 4 and six.byzantine == (("hk-1", "equivocate"),) and six.targets == (("hk-1", ("sh-2", "sh-1")),)


def test_shrinking_moves_the_cuts_to_an_earlier_height() -> None:
    """A finding's cuts all at one height h > 1 shrink toward height 1: among the single
    reductions is the same schedule with every cut at height 1 and h - 1 fewer heights to
    run (a kept finding then replays in a run of a few blocks)."""
    s = next(x for x in (generate(seed, SPLIT) for seed in range(50)) if min(p.height for p in x.round_partitions) > 2)
    low = min(p.height for p in s.round_partitions)
    moved = [c for c in candidates(s) if c.round_partitions and min(p.height for p in c.round_partitions) == 1]
    assert moved and moved[0].heights == s.heights - (low - 1)
    assert [(p.round, p.step, p.groups) for p in moved[0].round_partitions] == \
        [(p.round, p.step, p.groups) for p in s.round_partitions]
