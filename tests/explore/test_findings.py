"""Findings of `consortium explore` on the landed code, kept as replayable scenario
files in tests/explore/findings/. Each is a known defect until fixed: its test is
an expected failure (strict), so the fix turns it into a failure of this test that
says "move me to the passing scenarios"."""

from __future__ import annotations

from pathlib import Path

import pytest

from consortium.scenario import run

FINDINGS = Path(__file__).resolve().parent / "findings"


@pytest.mark.xfail(strict=True, reason="liveness defect in the landed replica: a node a round ahead helps a "
                   "lagging peer only once per (peer, round) (_help_lagging_peer); if that help is lost to a "
                   "partition, the laggards never see its earlier-round precommit, never reach 2/3 precommits "
                   "for their precommit timeout (L47), and one peer ahead is too little power to skip (L55)")
def test_liveness_after_a_one_way_partition_of_a_node_and_a_withholding_peer() -> None:
    """n=6 (f=1), sh-3 withholds; hk-2 paused 4.7..9.0 s; hk-1 and sh-3 cut one way from
    the others 8.3..11.6 s, then everything heals: every honest node must decide a
    new height within the liveness bound (explore seed 236, shrunk to 2 faults)."""
    result = run(FINDINGS / "explore-236-liveness.toml")
    assert result.checks["checks"]["liveness"] == "ok", result.checks["violations"]
