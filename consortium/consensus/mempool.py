"""The mempool: deduplicated by tx hash, bounded, FIFO, re-checked after commits."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from consortium import crypto, limits


class Mempool:
    def __init__(self, capacity: int = limits.mempool_txs_max) -> None:
        assert capacity > 0
        self.capacity = capacity
        self._txs: dict[bytes, bytes] = {}  # hash -> tx, insertion ordered (FIFO)
        self.rejected = 0  # refused by check_tx
        self.full = 0  # refused because the pool was full

    def __len__(self) -> int:
        return len(self._txs)

    def add(self, tx: bytes, check: Callable[[bytes], str | None]) -> str | None:
        """Add `tx` if new, acceptable and there is room; return a reason if not."""
        h = crypto.digest(tx)
        if h in self._txs:
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
        self._txs[h] = tx
        return None

    def batch(self, txs_max: int, bytes_max: int) -> list[bytes]:
        """The oldest txs that fit one block."""
        out: list[bytes] = []
        size = 0
        for tx in self._txs.values():
            if len(out) >= txs_max:
                break
            if size + len(tx) > bytes_max:
                continue  # a smaller later tx may still fit
            out.append(tx)
            size += len(tx)
        return out

    def remove_committed(self, txs: Iterable[bytes], check: Callable[[bytes], str | None]) -> None:
        """Drop committed txs, then re-check the rest against the new state."""
        for tx in txs:
            self._txs.pop(crypto.digest(tx), None)
        stale = [h for h, tx in self._txs.items() if check(tx) is not None]
        for h in stale:
            del self._txs[h]
