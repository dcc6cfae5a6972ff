"""The simulator's key-value application computes a block's check and effect once per
block and shares them between the nodes (issue 12, simulator speed). Each node still
ends with exactly the state, results and roots of the former tx-by-tx application: a
Hypothesis property over chains of blocks (valid and malformed txs, keys written twice
in one block, empty blocks, a block applied by several nodes), and the workload of a
real simulation."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from consortium import codec, crypto, limits
from consortium.consensus.app import BlockContext, TxResult
from consortium.sim.core import SimConfig, Simulation, synthetic_nodes
from consortium.sim.kvapp import PREFIX, KVApp


def _problem(tx: bytes) -> str | None:
    if not tx.startswith(PREFIX) or b"=" not in tx:
        return "MALFORMED"
    key, _, value = tx[len(PREFIX):].partition(b"=")
    if not key or len(key) > limits.kv_part_bytes_max or len(value) > limits.kv_part_bytes_max:
        return "MALFORMED"
    return None


class _TxByTxKVApp:
    """The former KVApp (before issue 12's second simulator round), kept only as the reference."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.height = 0
        self._root = crypto.digest(b"kv-genesis")

    def check_tx(self, tx: bytes) -> str | None:
        return _problem(tx)

    def check_block(self, ctx: BlockContext, txs: Sequence[bytes]) -> str | None:
        for tx in txs:
            if _problem(tx) is not None:
                return "MALFORMED"
        return None

    def apply_block(self, ctx: BlockContext, txs: Sequence[bytes]) -> list[TxResult]:
        results = []
        for tx in txs:
            problem = _problem(tx)
            if problem is None:
                key, _, value = tx[len(PREFIX):].partition(b"=")
                self.data[key] = value
            results.append(TxResult(crypto.digest(tx), problem or "OK"))
        self.height = ctx.height
        self._root = crypto.digest(self._root + codec.encode([ctx.height, ctx.time_ms, list(txs)]))
        return results

    def state_root(self) -> bytes:
        return self._root


_PART = st.binary(min_size=0, max_size=3).map(lambda b: b.replace(b"=", b"")) | st.just(b"k" * 65)
_KV_TX = st.builds(lambda k, v: PREFIX + k + b"=" + v, _PART, _PART)
_TX = _KV_TX | st.binary(max_size=8) | st.sampled_from([b"kv:", b"kv:=1", b"kv:a", b"kv:a=b=c"])
_BLOCK = st.lists(_TX, max_size=8).map(tuple)


@given(blocks=st.lists(_BLOCK, max_size=6), time0=st.integers(0, 2**40), nodes=st.integers(1, 3))
def test_every_node_gets_the_state_results_and_root_of_the_tx_by_tx_application(
        blocks: list[tuple[bytes, ...]], time0: int, nodes: int) -> None:
    """For a chain of blocks applied by `nodes` apps (sharing the memo) and the reference:
    equal check_tx and check_block verdicts, results, data (same keys in the same order),
    height and root after every block."""
    apps, ref = [KVApp() for _ in range(nodes)], _TxByTxKVApp()
    for i, txs in enumerate(blocks):
        ctx = BlockContext(i + 1, time0 + i, "sh-1")
        for tx in txs:
            assert all(a.check_tx(tx) == ref.check_tx(tx) for a in apps)
        want_check = ref.check_block(ctx, txs)
        want = ref.apply_block(ctx, txs)
        for a in apps:
            assert a.check_block(ctx, list(txs)) == want_check
            got = a.apply_block(ctx, list(txs))
            assert got == want and type(got) is list
            assert list(a.data.items()) == list(ref.data.items())
            assert (a.height, a.state_root()) == (ref.height, ref.state_root())


def test_a_simulation_s_blocks_apply_as_with_the_tx_by_tx_application() -> None:
    """Every block a 4-node run decided (the workload's txs, a Byzantine invalid-tx proposer's
    refused blocks beside them) replays on the reference to the roots the nodes committed."""
    cfg = SimConfig(nodes=synthetic_nodes(4), seed=3, heights=12, byzantine={"hk-2": "invalid-tx"})
    sim = Simulation(cfg)
    result = sim.run()
    assert result.ok
    ref = _TxByTxKVApp()
    store = sim.nodes["sh-1"].store
    assert len(store.decided) >= 12
    for d, root, results in zip(store.decided, store.roots, store.results, strict=True):
        b = d.block
        ctx = BlockContext(b.height, b.time_ms, b.proposer)
        assert ref.check_block(ctx, b.txs) is None
        assert tuple(ref.apply_block(ctx, b.txs)) == results and ref.state_root() == root
    assert list(sim.nodes["sh-1"].app.data.items()) == list(ref.data.items())  # type: ignore[attr-defined]
