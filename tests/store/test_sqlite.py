"""The node store: atomic commits, crash safety (real kill -9), guard, chain checks."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from consortium import crypto
from consortium.errors import LocalError, UserError
from consortium.store.sqlite import NodeStore
from tests.store.crash_writer import CHAIN, GENESIS, block_of, commit, snapshot_of, tx_hashes_of

ROOT = Path(__file__).resolve().parents[2]


def _open(path: Path) -> NodeStore:
    return NodeStore.open(path, CHAIN, GENESIS)


def _check_consistent(store: NodeStore) -> int:
    """Every committed height is complete and the snapshot belongs to the last one."""
    last = store.last_height()
    for h in range(1, last + 1):
        got = store.block(h)
        assert got == (block_of(h), b"cert%d" % h), h
        assert store.results(h) == b"results%d" % h
        for i, tx in enumerate(tx_hashes_of(h)):
            assert store.find_tx(tx) == (h, i)
    latest = store.latest()
    if last == 0:
        assert latest is None
    else:
        assert latest is not None and latest.height == last
        assert latest.snapshot == snapshot_of(last)
        assert latest.state_root == crypto.digest(latest.snapshot)
        assert latest.block_id == crypto.digest(block_of(last))
    assert store.block(last + 1) is None
    return last


def test_empty_store(tmp_path: Path) -> None:
    with _open(tmp_path / "n.db") as store:
        assert store.last_height() == 0
        assert store.latest() is None and store.load_guard() is None
        assert store.block(1) is None and store.results(1) is None
        assert store.find_tx(b"\x00" * 32) is None
        assert store.blocks(1, 10, 10) == []


def test_commit_read_back_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    with _open(path) as store:
        for h in range(1, 6):
            commit(store, h)
        assert _check_consistent(store) == 5
        got = store.blocks(2, 4, 10)
        assert [b.height for b in got] == [2, 3, 4]
        assert [b.height for b in store.blocks(1, 100, 2)] == [1, 2]
        one = store.blocks(1, 5, 10, bytes_max=1)  # always at least one block
        assert [b.height for b in one] == [1]
    with _open(path) as store:
        assert _check_consistent(store) == 5
        assert store.journal_mode() == "wal"


def test_commit_must_be_next_height(tmp_path: Path) -> None:
    with _open(tmp_path / "n.db") as store:
        with pytest.raises(LocalError, match="in order"):
            commit(store, 2)
        commit(store, 1)
        with pytest.raises(LocalError, match="in order"):
            commit(store, 1)
        with pytest.raises(LocalError, match="in order"):
            commit(store, 3)
        assert _check_consistent(store) == 1


def test_failed_commit_leaves_nothing(tmp_path: Path) -> None:
    with _open(tmp_path / "n.db") as store:
        commit(store, 1)
        with pytest.raises(LocalError):  # a bad digest is refused before anything is written
            store.commit_block(2, b"short", b"b", b"c", b"r", b"\x00" * 32, b"s")
        # fails after the block row went in: the whole height must roll back
        unbindable: list[bytes] = [object()]  # type: ignore[list-item]
        with pytest.raises(sqlite3.Error):
            store.commit_block(2, b"\x01" * 32, b"b", b"c", b"r", b"\x02" * 32, b"s", unbindable)
        assert _check_consistent(store) == 1
        commit(store, 2)
        assert _check_consistent(store) == 2


def test_guard_only_moves_forward(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    with _open(path) as store:
        store.save_guard(3, 1, 2, b"a")
        store.save_guard(3, 1, 2, b"a")  # the same vote again: fine (re-send after restart)
        with pytest.raises(LocalError, match="different vote"):
            store.save_guard(3, 1, 2, b"b")
        for back in [(3, 1, 1), (3, 0, 3), (2, 9, 9)]:
            with pytest.raises(LocalError, match="move back"):
                store.save_guard(*back, b"x")
        store.save_guard(3, 1, 3, b"c")
        store.save_guard(3, 2, 0, b"d")
        store.save_guard(4, 0, 0, b"e")
    with _open(path) as store:
        guard = store.load_guard()
        assert guard is not None and guard.position() == (4, 0, 0) and guard.payload == b"e"
        with pytest.raises(LocalError):
            store.save_guard(3, 5, 5, b"x")


def test_wrong_chain_or_genesis_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    _open(path).close()
    with pytest.raises(UserError, match="belongs to chain 'crash-test'"):
        NodeStore.open(path, "other-chain", GENESIS)
    with pytest.raises(UserError, match="another genesis"):
        NodeStore.open(path, CHAIN, crypto.digest(b"other"))


def test_not_a_database_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(UserError, match="not a usable node store"):
        NodeStore.open(junk, CHAIN, GENESIS)
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(UserError, match="not a consortium node store"):
        NodeStore.open(foreign, CHAIN, GENESIS)
    with pytest.raises(UserError, match="directory"):
        NodeStore.open(tmp_path, CHAIN, GENESIS)


def test_use_after_close_is_a_local_error(tmp_path: Path) -> None:
    store = _open(tmp_path / "n.db")
    store.close()
    store.close()  # idempotent
    with pytest.raises(LocalError):
        store.last_height()


def _run_writer_and_kill(path: Path, min_height: int, timeout_s: float = 30.0) -> int:
    """Start the writer, let it commit past `min_height`, kill -9 it mid-loop;
    return the last height it reported as committed."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.store.crash_writer", str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reported = 0
    deadline = time.monotonic() + timeout_s
    try:
        assert proc.stdout is not None
        while reported < min_height:
            assert time.monotonic() < deadline, "writer too slow"
            line = proc.stdout.readline()
            assert line, f"writer died: {proc.stderr.read() if proc.stderr else ''}"
            reported = int(line)
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # no cleanup, no atexit: a real crash
        proc.wait(timeout=10)
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout.read().split():  # heights printed before the kill landed
            reported = max(reported, int(line))
        proc.stdout.close()
        proc.stderr.close()
    return reported


def test_kill_9_mid_loop_keeps_every_reported_height(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    target = 0
    for _ in range(5):  # five crashes, each resumed from the store
        target += 30
        reported = _run_writer_and_kill(path, target)
        with _open(path) as store:
            last = _check_consistent(store)
            assert last >= reported, "a height reported as committed was lost"
            guard = store.load_guard()
            assert guard is not None and guard.height >= reported
            assert guard.payload == b"vote%d" % guard.height
            target = last
