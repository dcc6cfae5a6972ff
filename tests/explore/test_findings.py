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


def test_liveness_of_laggards_against_a_lying_sync_peer() -> None:
    """n=7 with unequal powers: sh-1 equivocates aimed at the Hong Kong side (so it runs as
    two instances), sh-2 equivocates, sh-3 answers sync requests with forged blocks (within f);
    no fault (explore seed 64, shrunk from 5 fault episodes to none). Every honest node must reach the
    target height.

    Before the fix an honest laggard asked sh-3 for the missing block, refused the forged
    answer, and asked sh-3 again at once: a sync ping-pong at network speed (tens of
    thousands of frames) that never ended, and the laggard never caught up. A refused
    answer now waits for the sync retry timer and moves on to the next voter."""
    result = run(FINDINGS / "explore-64-liveness.toml")
    assert result.checks["checks"]["liveness"] == "ok", result.checks["violations"]
    assert min(h for node, h in result.final["heights"].items() if node in ("hk-1", "hk-2", "hk-3", "sh-4")) >= 24


def test_liveness_after_a_restart_from_a_store_rolled_back_behind_its_guard() -> None:
    """n=4, hk-2 sends on the wrong chain (silent, within f); sh-1 crashes and restarts;
    hk-1 crashes after prevoting at height 3 and restarts from its block store one block
    older (its guard, a file of its own, still at height 3). Every honest node must go on
    deciding (explore seed 525, shrunk from 3 fault episodes to 2).

    It stalled for ever before the fix: hk-1 synced back up to height 3, where its guard
    forbids signing again, but it re-sent nothing it had signed there (that happened only
    at a restart into the guard's height) and restored no lock; with hk-2 silent, the other
    two honest nodes needed its prevote, which never came again."""
    result = run(FINDINGS / "explore-525-liveness.toml")
    assert result.checks["checks"]["liveness"] == "ok", result.checks["violations"]


def test_liveness_when_a_rolled_back_node_skips_into_the_round_it_signed_in() -> None:
    """n=5 (f=1), sh-1 equivocates; every frame lost 1.9..3.7 s; sh-3 and sh-2 crash and
    restart from stores rolled back one block (explore seed 3291, shrunk to 3 faults).
    Every honest node must decide a new height within the liveness bound.

    It stalled before the fix: a restarted node synced the lost block, and its peers'
    votes of round 1 took it straight into round 1 (L55) without passing through Start,
    where the guard's signed frames are re-sent; its guard forbade a second prevote in
    that round, so the prevote its peers needed never came and nobody reached 2/3
    prevotes for a timeout. Entering the guard's round by any path now re-sends them
    (and the lock comes back on entering the guard's height by any path)."""
    result = run(FINDINGS / "explore-3291-liveness.toml")
    assert result.checks["checks"]["liveness"] == "ok", result.checks["violations"]


def test_liveness_of_a_rolled_back_heavy_node_behind_a_lying_sync_peer() -> None:
    """n=6 with powers 4/18/1/1/2/4: hk-1 holds 60 % of the power, hk-2 answers sync with
    forged certificates, hk-3 withholds, sh-2 sends malformed frames (6 of 30: within f);
    hk-1 restarts from a store rolled back one block (explore seed 3458). Nothing can be
    decided without hk-1, so it must catch up.

    It stalled before the fix: after each refused answer and its retry timer, hk-1 asked
    whichever peer ahead it heard from first, and that was the lying hk-2 every time (94
    refusals, no block). A peer whose answer was refused is now asked again only after
    every other peer was."""
    result = run(FINDINGS / "explore-3458-liveness.toml")
    assert result.checks["checks"]["liveness"] == "ok", result.checks["violations"]
