"""A small deterministic application for consensus tests: a key-value store.

A tx is b"kv:<key>=<value>" (ASCII, key and value at most 64 bytes). Anything
else can never be valid: check_tx / check_block refuse it, so a proposal that
holds one is invalid (the Byzantine "invalid-tx" proposer relies on that).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from consortium import codec, crypto, limits
from consortium.consensus.app import BlockContext, TxResult

PREFIX = b"kv:"


def tx_problem(tx: bytes) -> str | None:
    return _verdict(tx)[0]


@functools.lru_cache(maxsize=limits.sim_kv_verdicts_max)
def _verdict(tx: bytes) -> tuple[str | None, TxResult]:
    """(problem or None, its result in a block) of a tx: a pure function of its bytes (the
    result is immutable), asked by every node of a simulation at admission, in check_block
    and in apply_block, so remembered (bounded)."""
    problem = _problem(tx)
    return problem, TxResult(crypto.digest(tx), problem or "OK")


def _problem(tx: bytes) -> str | None:
    if not tx.startswith(PREFIX) or b"=" not in tx:
        return "MALFORMED"
    key, _, value = tx[len(PREFIX):].partition(b"=")
    if not key or len(key) > limits.kv_part_bytes_max or len(value) > limits.kv_part_bytes_max:
        return "MALFORMED"
    return None


class KVApp:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.height = 0
        self._root = crypto.digest(b"kv-genesis")

    def check_tx(self, tx: bytes) -> str | None:
        return _verdict(tx)[0]

    def check_block(self, ctx: BlockContext, txs: Sequence[bytes]) -> str | None:
        for tx in txs:
            if _verdict(tx)[0] is not None:
                return "MALFORMED"
        return None

    def apply_block(self, ctx: BlockContext, txs: Sequence[bytes]) -> list[TxResult]:
        results = []
        for tx in txs:
            problem, result = _verdict(tx)
            if problem is None:
                key, _, value = tx[len(PREFIX):].partition(b"=")
                self.data[key] = value
            results.append(result)
        self.height = ctx.height
        # A chained root keeps per-block cost independent of the state size,
        # yet any divergence in state or order changes every later root.
        self._root = crypto.digest(self._root + codec.encode([ctx.height, ctx.time_ms, list(txs)]))
        return results

    def state_root(self) -> bytes:
        return self._root

    def snapshot(self) -> bytes:
        return codec.encode({"data": [[k, v] for k, v in sorted(self.data.items())],
                             "height": self.height, "root": self._root})

    def restore(self, snapshot: bytes) -> None:
        m = codec.decode(snapshot)
        self.data = {k: v for k, v in m["data"]}
        self.height, self._root = m["height"], m["root"]
