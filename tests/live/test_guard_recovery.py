"""A validator whose store went back in time must not sign twice.

Real node processes on the embedded broker; an observer records every proposal
and vote on the bus.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from consortium.home import load_genesis
from consortium.node.livestore import store_path
from consortium.node.runtime import validator_set
from tests.live.conftest import Live, VoteObserver, wait_for

NODE = "carrier-sh"


def _copy(src: Path, dst: Path) -> tuple[int, tuple[int, int, int] | None]:
    """A consistent copy of a live store (SQLite's backup API); its last height and guard slot."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(src)) as a, contextlib.closing(sqlite3.connect(dst)) as b:
        a.backup(b)
    with contextlib.closing(sqlite3.connect(dst)) as b:
        height = b.execute("SELECT MAX(height) FROM blocks").fetchone()[0] or 0
        guard = b.execute("SELECT height, round, step FROM guard").fetchone()
    return height, None if guard is None else (guard[0], guard[1], guard[2])


@pytest.mark.broker
def test_a_store_restored_from_an_older_copy_never_signs_twice(live_embedded: Live, tmp_path: Path) -> None:
    """A validator is killed, and its store replaced by an older copy: one taken
    when it had decided h0 and had not yet proposed round 0 of h0 + 1, where it is
    the proposer (so a careless restart would propose there at once). Restarted on
    that copy, it must sign no second, different proposal or vote for any
    (height, round, step) it signed before; it follows the peers to the height they
    report before signing, it then takes part again, and its log names the lost
    state (its own precommits found in synced certificates beyond its stored guard)."""
    live = live_embedded
    live.up()
    vs = validator_set(load_genesis(live.home))
    src, older = store_path(live.home, NODE), tmp_path / "older.db"
    with VoteObserver(live.home) as observer:
        live.wait_height(2)

        def older_copy() -> int | None:
            height, guard = _copy(src, older)
            fresh = guard is None or guard < (height + 1, 0, 0)
            return height if height >= 2 and vs.proposer(height + 1, 0) == NODE and fresh else None

        h0 = wait_for(f"a copy of {NODE}'s store just before it proposes", older_copy, 60, every_s=0.01)
        assert isinstance(h0, int)
        live.wait_height(h0 + 12, [NODE])  # it signs a dozen heights more, then crashes
        live.kill(NODE)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{src}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(older, src)
        top = max(live.heights().values())
        live.restart(NODE)
        live.wait_height(top + 5, [NODE], timeout_s=60)
        wait_for(f"{NODE} to sign again above height {top}",
                 lambda: any(s == NODE and h > top for s, _, h, _ in list(observer.signed)), 30)
        twice = {slot: n for slot, n in observer.double_signs().items() if slot[0] == NODE}
    assert not twice, f"{NODE} signed twice after its store went back to height {h0}: {twice}"
    assert any(s == NODE and h == h0 + 1 for s, _, h, _ in observer.signed), "the observer saw the first life"
    log = (live.home / "run" / f"{NODE}.log").read_text()
    assert "following (signing nothing)" in log
    assert "double-sign guard of the store was behind" in log, log[-3000:]
