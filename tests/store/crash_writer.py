"""Child process for the crash-safety test: commits heights in a loop and prints
each height once `commit_block` and `save_guard` have returned, until killed.

Run: python -m tests.store.crash_writer PATH [START_PAUSE_S]"""

from __future__ import annotations

import sys
from pathlib import Path

from consortium import crypto
from consortium.store.sqlite import NodeStore

CHAIN = "crash-test"
GENESIS = crypto.digest(b"crash-test genesis")


def block_of(height: int) -> bytes:
    # a few KB that differ per height, so a torn write would be visible
    return crypto.digest(b"block%d" % height) * (64 + height % 64)


def snapshot_of(height: int) -> bytes:
    return b"".join(crypto.digest(b"state%d/%d" % (height, i)) for i in range(200 + height % 50))


def tx_hashes_of(height: int) -> list[bytes]:
    return [crypto.digest(b"tx%d/%d" % (height, i)) for i in range(height % 7)]


def commit(store: NodeStore, height: int) -> None:
    snap = snapshot_of(height)
    store.commit_block(height, crypto.digest(block_of(height)), block_of(height), b"cert%d" % height,
                       b"results%d" % height, crypto.digest(snap), snap, tx_hashes_of(height))
    store.save_guard(height, 0, 3, b"vote%d" % height)


def main() -> None:
    store = NodeStore.open(Path(sys.argv[1]), CHAIN, GENESIS)
    height = store.last_height()
    while True:
        height += 1
        commit(store, height)
        print(height, flush=True)


if __name__ == "__main__":
    main()
