"""Teeth, fast version: a planted safety bug (the commit quorum lowered to 2f of
3f+1, i.e. half the voting power) applied to a copy of the repository is found by
`consortium explore` within a minute, shrunk to at most 5 faults, and the written
scenario replays the violation under `consortium run` on the mutant. The other
mutants (tests/mutants/*.patch) run with `run_mutants.py` (minutes each)."""

from __future__ import annotations

from pathlib import Path

from tests.mutants.run_mutants import MUTANTS, hunt


def test_the_lowered_commit_quorum_is_found_shrunk_and_replayed(tmp_path: Path) -> None:
    """On the quorum-2f mutant, explore finds a violation (a commit certificate short
    of the quorum) within its one-minute budget, shrinks it to <= 5 faults, and the
    scenario it writes replays to the same violation (exit 1, property named)."""
    assert "quorum-2f" in MUTANTS
    r = hunt("quorum-2f", minutes=1, seed=1, workers=2, heights=10, keep=tmp_path)
    assert r.found and r.to_find_s is not None and r.to_find_s < 60
    assert r.property in ("certificate", "agreement") and 0 <= r.shrunk_faults <= 5
    assert r.replays
