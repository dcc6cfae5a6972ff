"""The mempool keyed by tx bytes (issue 12, simulator speed) behaves exactly like the
former one keyed by SHA-256 digests: for any sequence of admissions (with a check that
refuses some txs), block batches and commits (with a re-check that turns some txs
stale), every verdict, every batch, the size and the refusal counters are the same.
Two txs have equal digests exactly when their bytes are equal, so a dict keyed by the
bytes deduplicates, orders and drops what the digest-keyed one did."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from hypothesis import given
from hypothesis import strategies as st

from consortium import crypto, limits
from consortium.consensus.mempool import Mempool


class _DigestKeyedMempool:
    """The former implementation (consortium/consensus/mempool.py before issue 12's
    simulator work), kept here only as the reference."""

    def __init__(self, capacity: int = limits.mempool_txs_max) -> None:
        self.capacity = capacity
        self._txs: dict[bytes, bytes] = {}
        self.rejected = 0
        self.full = 0

    def __len__(self) -> int:
        return len(self._txs)

    def add(self, tx: bytes, check: Callable[[bytes], str | None]) -> str | None:
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
        out: list[bytes] = []
        size = 0
        for tx in self._txs.values():
            if len(out) >= txs_max:
                break
            if size + len(tx) > bytes_max:
                continue
            out.append(tx)
            size += len(tx)
        return out

    def remove_committed(self, txs: Iterable[bytes], check: Callable[[bytes], str | None]) -> None:
        for tx in txs:
            self._txs.pop(crypto.digest(tx), None)
        stale = [h for h, tx in self._txs.items() if check(tx) is not None]
        for h in stale:
            del self._txs[h]


_FEW = st.sampled_from([b"", b"a", b"b", b"ab", b"kv:x=1", b"\x00" * 3, b"zzzz"])  # so that txs repeat
_TX = st.one_of(_FEW, _FEW, _FEW, st.binary(min_size=0, max_size=6), st.just(b"y" * (limits.tx_bytes_max + 1)))
_OP = st.one_of(
    st.tuples(st.just("add"), _TX, st.booleans()),  # (add, tx, as a bytearray)
    st.tuples(st.just("batch"), st.integers(0, 6), st.integers(0, 24)),
    st.tuples(st.just("commit"), st.lists(_TX, max_size=4), st.integers(0, 3)),
)


@given(ops=st.lists(_OP, max_size=60), capacity=st.integers(1, 8), refuse_mod=st.integers(2, 5))
def test_the_bytes_keyed_mempool_gives_every_result_of_the_digest_keyed_one(
        ops: list[tuple[object, ...]], capacity: int, refuse_mod: int) -> None:
    """Same verdicts (None, DUPE, TOO_LARGE, MEMPOOL_FULL, the check's reason), same batches
    in the same order, same size and counters, after every operation."""
    new, old = Mempool(capacity), _DigestKeyedMempool(capacity)
    state = {"commits": 0}

    def check(tx: bytes) -> str | None:  # refuses some txs, and which ones changes with each commit
        return "BAD" if (sum(tx) + len(tx) + state["commits"]) % refuse_mod == 0 else None

    for op in ops:
        if op[0] == "add":
            tx = op[1]
            assert isinstance(tx, bytes)
            assert new.add(bytearray(tx) if op[2] else tx, check) == old.add(tx, check)
        elif op[0] == "batch":
            assert isinstance(op[1], int) and isinstance(op[2], int)
            got = new.batch(op[1], op[2])
            assert got == old.batch(op[1], op[2]) and all(type(t) is bytes for t in got)
        else:
            txs = list(op[1])  # type: ignore[call-overload]
            pending = new.batch(len(new), 10**9)
            txs += pending[: op[2]]  # commit some pending txs too
            state["commits"] += 1
            new.remove_committed(txs, check)
            old.remove_committed(txs, check)
        assert (len(new), new.rejected, new.full) == (len(old), old.rejected, old.full)
        assert new.batch(10**6, 10**9) == old.batch(10**6, 10**9)
