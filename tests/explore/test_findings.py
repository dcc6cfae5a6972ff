"""Findings of `consortium explore` on landed code, kept as replayable scenario files
in tests/explore/findings/ after they were fixed: each must now pass (a regression
test written by the explorer itself)."""

from __future__ import annotations

from pathlib import Path

from consortium.scenario import run

FINDINGS = Path(__file__).resolve().parent / "findings"


def test_liveness_after_a_one_way_partition_of_a_node_and_a_withholding_peer() -> None:
    """n=6 (f=1), sh-3 withholds; hk-2 paused 4.7..9.0 s; hk-1 and sh-3 cut one way from
    the others 8.3..11.6 s, then everything heals: every honest node must decide a
    new height within the liveness bound (explore seed 236, shrunk to 2 faults).

    It stalled forever before the fix: hk-1, a round ahead, helped each lagging peer
    only once per (peer, round); that one send was lost to the partition, the
    laggards never reached 2/3 precommits for their L47 timeout, and one peer ahead
    is too little power to skip (L55). Help is now renewed every retransmit period."""
    result = run(FINDINGS / "explore-236-liveness.toml")
    assert result.checks["checks"]["liveness"] == "ok", result.checks["violations"]
