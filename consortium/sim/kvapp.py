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
_INT_MIN, _INT_MAX = codec.INT_MIN, codec.INT_MAX
_BYTES_ONLY = {bytes}


def _problem(tx: bytes) -> str | None:
    if not tx.startswith(PREFIX) or b"=" not in tx:
        return "MALFORMED"
    key, _, value = tx[len(PREFIX):].partition(b"=")
    if not key or len(key) > limits.kv_part_bytes_max or len(value) > limits.kv_part_bytes_max:
        return "MALFORMED"
    return None


#: The problem of a tx (None: well formed), remembered (bounded): a pure function of its bytes,
#: asked by every node of a simulation at admission and again after each commit. The cache is
#: the callable itself (C), so KVApp.check_tx costs no Python frame.
tx_problem = functools.lru_cache(maxsize=limits.sim_kv_verdicts_max)(_problem)


@functools.lru_cache(maxsize=limits.sim_kv_verdicts_max)
def _verdict(tx: bytes) -> tuple[str | None, TxResult]:
    """(problem or None, its result in a block) of a tx: a pure function of its bytes (the
    result is immutable), asked for each tx of a block when its effect is computed (once per
    block, see _block_effect), so remembered (bounded)."""
    problem = tx_problem(tx)
    return problem, TxResult(crypto.digest(tx), problem or "OK")


class KVApp:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.height = 0
        self._root = crypto.digest(b"kv-genesis")

    check_tx = staticmethod(tx_problem)  # (self, tx) -> problem or None, without a frame of its own

    def check_block(self, ctx: BlockContext, txs: Sequence[bytes]) -> str | None:
        return _block_problem(tuple(txs))

    def apply_block(self, ctx: BlockContext, txs: Sequence[bytes]) -> list[TxResult]:
        root, writes, results = _block_effect(self._root, ctx.height, ctx.time_ms, tuple(txs))
        self.data.update(writes)  # the writes in block order: same values, same key order
        self.height = ctx.height
        self._root = root
        return list(results)

    def state_root(self) -> bytes:
        return self._root

    def snapshot(self) -> bytes:
        return codec.encode({"data": [[k, v] for k, v in sorted(self.data.items())],
                             "height": self.height, "root": self._root})

    def restore(self, snapshot: bytes) -> None:
        m = codec.decode(snapshot)
        self.data = {k: v for k, v in m["data"]}
        self.height, self._root = m["height"], m["root"]


# Every node of a simulation (and the checkers' reference replay) checks and applies the
# same decided block to the same state: both are pure functions of their arguments (the
# state enters apply only through its chained root; the writes do not depend on it), so
# they are computed once per block and shared. tests/sim/test_kvapp_fast.py compares them
# with the tx-by-tx originals.


@functools.lru_cache(maxsize=limits.sim_kv_blocks_max)
def _block_problem(txs: tuple[bytes, ...]) -> str | None:
    for tx in txs:
        if _verdict(tx)[0] is not None:
            return "MALFORMED"
    return None


@functools.lru_cache(maxsize=limits.sim_kv_blocks_max)
def _block_effect(root: bytes, height: int, time_ms: int,
                  txs: tuple[bytes, ...]) -> tuple[bytes, dict[bytes, bytes], tuple[TxResult, ...]]:
    """(root after the block, its writes as one dict in block order, one result per tx).
    Immutable once made: apply_block copies the writes and the results out."""
    writes: dict[bytes, bytes] = {}
    results = []
    for tx in txs:
        problem, result = _verdict(tx)
        if problem is None:
            key, _, value = tx[len(PREFIX):].partition(b"=")
            writes[key] = value
        results.append(result)
    # A chained root keeps per-block cost independent of the state size,
    # yet any divergence in state or order changes every later root.
    return crypto.digest(root + _block_bytes(height, time_ms, txs)), writes, tuple(results)


def _block_bytes(height: int, time_ms: int, txs: tuple[bytes, ...]) -> bytes:
    """codec.encode([height, time_ms, list(txs)]); built as it is when already canonical (exact ints
    within 64 bits, exact bytes), the walk otherwise (tests/sim/test_kvapp_fast.py compares them)."""
    if (type(height) is int and type(time_ms) is int and _INT_MIN <= height <= _INT_MAX
            and _INT_MIN <= time_ms <= _INT_MAX and (not txs or set(map(type, txs)) == _BYTES_ONLY)):
        return codec.pack_canonical([height, time_ms, list(txs)])
    return codec.encode([height, time_ms, list(txs)])
