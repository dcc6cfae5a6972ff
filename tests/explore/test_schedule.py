"""Schedule generation: a pure function of (seed, options), inside the f bound
unless --beyond-f asks otherwise, always ending healed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consortium import types
from consortium.errors import UserError
from consortium.explore.schedule import Options, generate
from consortium.explore.shrink import candidates
from consortium.sim.byzantine import BEHAVIOURS
from consortium.sim.core import heals

SEEDS = st.integers(0, 2**63)


@settings(max_examples=300)
@given(seed=SEEDS, lo=st.integers(1, 16), span=st.integers(0, 15))
def test_same_seed_same_schedule_and_within_f(seed: int, lo: int, span: int) -> None:
    """The same (seed, options) give the same schedule; the Byzantine coalition holds at
    most f of the voting power; nodes are in the asked range; faults name real nodes and
    the last fault heals (so liveness after it is judged)."""
    opt = Options(lo, min(16, lo + span), heights=5)
    a, b = generate(seed, opt), generate(seed, opt)
    assert a == b and a.faults() == b.faults()
    assert opt.nodes_min <= a.n <= opt.nodes_max
    assert a.byzantine_power() <= types.max_faulty_power(sum(a.powers))
    assert all(beh in BEHAVIOURS[1:] and node in a.ids for node, beh in a.byzantine)
    cfg = a.config()  # parses every fault against the node ids
    if cfg.faults:
        times = [f.at_ms for f in cfg.faults]
        assert times == sorted(times) and times[-1] == a.heal_ms()
        assert heals(cfg.faults[-1])  # the simulator applies equal times in list order


@settings(max_examples=200)
@given(seed=SEEDS)
def test_beyond_f_exceeds_f_only_when_asked(seed: int) -> None:
    """With beyond_f the coalition holds more than f of the power (to show the checkers
    fire); the same seed without it stays within f."""
    wild = generate(seed, Options(beyond_f=True))
    assert wild.byzantine_power() > types.max_faulty_power(sum(wild.powers))
    assert generate(seed, Options()).within_f()


@settings(max_examples=100)
@given(seed=SEEDS)
def test_shrink_candidates_are_smaller_and_stay_within_f(seed: int) -> None:
    """Every single reduction the shrinker tries is a valid schedule (its faults parse
    against its nodes), never bigger, and within f when the original was."""
    s = generate(seed, Options(heights=5))
    for c in candidates(s):
        c.config()
        assert c.fault_count() <= s.fault_count() and c.n <= s.n and c.heights <= s.heights
        assert c.within_f()


def test_bad_node_ranges_are_refused() -> None:
    """A node range outside 1..16 or upside down is a UserError."""
    for lo, hi in ((0, 4), (5, 4), (4, 17)):
        with pytest.raises(UserError):
            Options(lo, hi)
