"""The mempool: deduplicated, bounded, FIFO, re-checked after commits.

Keyed by the tx bytes themselves: two txs are the same tx exactly when their bytes
(and so their SHA-256 hashes) are equal, and a dict lookup hashes a bytes object
once (CPython caches it), where a digest was computed per node, per admission and
per commit (tests/consensus/test_mempool_fast.py replays the hash-keyed original)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from consortium import limits


class Mempool:
    def __init__(self, capacity: int = limits.mempool_txs_max) -> None:
        assert capacity > 0
        self.capacity = capacity
        self._txs: dict[bytes, None] = {}  # the txs, insertion ordered (FIFO)
        self.rejected = 0  # refused by check_tx
        self.full = 0  # refused because the pool was full

    def __len__(self) -> int:
        return len(self._txs)

    def add(self, tx: bytes, check: Callable[[bytes], str | None]) -> str | None:
        """Add `tx` if new, acceptable and there is room; return a reason if not."""
        if type(tx) is not bytes:
            tx = bytes(tx)  # a hashable key (a bytearray or memoryview is not)
        if tx in self._txs:
            return "DUPE"
        if len(tx) > limits.tx_bytes_max:
            self.rejected += 1
            return "TOO_LARGE"
        if len(self._txs) >= self.capacity:
            self.full += 1
            return "MEMPOOL_FULL"
        reason = check(tx)
        if reason is not None:
            self.rejected += 1
            return reason
        self._txs[tx] = None
        return None

    def batch(self, txs_max: int, bytes_max: int) -> list[bytes]:
        """The oldest txs that fit one block."""
        out: list[bytes] = []
        size = 0
        for tx in self._txs:
            if len(out) >= txs_max:
                break
            if size + len(tx) > bytes_max:
                continue  # a smaller later tx may still fit
            out.append(tx)
            size += len(tx)
        return out

    def remove_committed(self, txs: Iterable[bytes], check: Callable[[bytes], str | None]) -> None:
        """Drop committed txs, then re-check the rest against the new state."""
        pool = self._txs
        for tx in txs:
            pool.pop(tx, None)
        stale = [tx for tx in pool if check(tx) is not None]
        for tx in stale:
            del pool[tx]
