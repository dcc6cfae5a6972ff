"""Determinism, Byzantine coalitions at and beyond f, and the checkers' teeth."""

from __future__ import annotations

import pytest

from consortium import limits
from consortium.sim.byzantine import BEHAVIOURS
from tests.sim.helpers import config, run


def test_same_seed_same_trace_digest() -> None:
    """Same configuration and seed: byte-identical trace, even with loss and faults."""
    faults = ["500:crash:sh-2", "2500:partition:sh-1,hk-1|sh-2,hk-2", "4000:heal", "4000:restart:sh-2"]
    a = run(config(4, heights=8, seed=42, drop=0.1, faults=faults, bad={"hk-2": "double-vote"}))
    b = run(config(4, heights=8, seed=42, drop=0.1, faults=faults, bad={"hk-2": "double-vote"}))
    assert a.trace_digest == b.trace_digest
    assert a.to_dict() == b.to_dict()
    c = run(config(4, heights=8, seed=43, drop=0.1, faults=faults, bad={"hk-2": "double-vote"}))
    assert c.trace_digest != a.trace_digest


def test_every_behaviour_with_one_faulty_of_four_is_safe_and_live() -> None:
    for b in BEHAVIOURS[1:]:
        r = run(config(4, heights=6, seed=7, bad={"sh-1": b}))
        assert r.ok, (b, r.checks["violations"])
        assert min(h for n, h in r.heights.items() if n != "sh-1") >= 6


def test_f_equivocators_of_3f_plus_1_never_break_agreement() -> None:
    """n = 7, f = 2: two colluding equivocating validators, many seeds."""
    for seed in range(12):
        r = run(config(7, heights=6, seed=seed, bad={"sh-1": "equivocate", "hk-1": "equivocate"}))
        assert r.ok, (seed, r.checks["violations"])


def test_f_plus_1_equivocators_break_agreement_and_the_checker_sees_it() -> None:
    """n = 4, f = 1: two colluding equivocators split the honest nodes and both
    halves decide. This proves the agreement checker can fail."""
    caught = 0
    for seed in range(6):
        r = run(config(4, heights=6, seed=seed, bad={"sh-1": "equivocate", "hk-1": "equivocate"}))
        if r.checks["checks"]["agreement"] != "ok":
            caught += 1
            assert any(v.startswith("agreement:") for v in r.checks["violations"])
    assert caught >= 3, "f+1 equivocators should usually split the honest nodes"


def test_double_votes_become_committed_evidence() -> None:
    r = run(config(4, heights=6, seed=1, bad={"hk-2": "double-vote"}))
    assert r.ok and r.evidence_committed > 0


def test_hostile_frames_are_dropped_and_counted() -> None:
    for behaviour, reason in [("forge", "bad_signature"), ("wrong-chain", "wrong_chain"),
                              ("malformed", "not_msgpack")]:
        r = run(config(4, heights=4, seed=2, bad={"hk-1": behaviour}))
        assert r.ok and r.dropped.get(reason, 0) > 0, (behaviour, r.dropped)


def test_crash_restart_keeps_guard_and_catches_up() -> None:
    """A crashed validator restarts from its store (guard kept), syncs the blocks it
    missed with certificate checks, and never double-signs."""
    faults = ["1500:crash:sh-1", "9000:restart:sh-1"]
    r = run(config(4, heights=12, seed=3, faults=faults))
    assert r.ok, r.checks["violations"]
    assert r.heights["sh-1"] >= 12


def test_crash_more_than_f_stalls_then_recovers() -> None:
    """Two of four crash (more than f): no progress, no safety loss; after restart, progress."""
    faults = ["2000:crash:sh-1", "2000:crash:hk-1", "20000:restart:sh-1", "20000:restart:hk-1"]
    r = run(config(4, heights=10, seed=4, faults=faults))
    assert r.ok, r.checks["violations"]
    assert min(r.heights.values()) >= 10


def test_jurisdiction_partition_and_heal() -> None:
    faults = ["1000:partition:sh-1,sh-2|hk-1,hk-2", "15000:heal"]
    r = run(config(4, heights=8, seed=5, faults=faults))
    assert r.ok and r.liveness["met"], r.checks["violations"]


def test_twenty_percent_loss() -> None:
    r = run(config(7, heights=10, seed=6, drop=0.2))
    assert r.ok and min(r.heights.values()) >= 10, r.checks["violations"]


def test_a_height_decided_beyond_rounds_max_is_a_liveness_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """limits.rounds_max says a height that needs more rounds is a liveness bug: the
    checker reports a height decided beyond it as a liveness violation (not a
    safety one). A partition makes one height need round 1; with rounds_max 0 that
    is reported, with the real bound the same run is clean."""
    faults = ["1000:partition:sh-1,sh-2|hk-1,hk-2", "6000:heal"]
    clean = run(config(4, heights=4, seed=5, faults=faults))
    assert clean.ok and clean.max_round == 1, clean.checks["violations"]
    monkeypatch.setattr(limits, "rounds_max", 0)
    r = run(config(4, heights=4, seed=5, faults=faults))
    assert r.checks["checks"]["liveness"] != "ok" and not r.ok
    assert any(v.startswith("liveness:") and "round 1" in v for v in r.checks["violations"]), r.checks["violations"]
    assert all(r.checks["checks"][c] == "ok" for c in ("agreement", "validity", "certificate", "double_sign"))
