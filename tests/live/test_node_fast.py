"""The live node's latency work (issue 12), without a broker: admission turns bounded in
time, and a commit's durable write overlapping the block interval while every later
signed frame, guard record, sync reply and refusal still waits for it."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consortium import codec, crypto, limits
from consortium.codec import Kind
from consortium.consensus import events as ev
from consortium.consensus.app import BlockContext
from consortium.consensus.messages import ZERO_ID, Block, Certificate
from consortium.home import init_home, load_genesis, load_key
from consortium.ledger import Ledger
from consortium.ledger.workload import Workload
from consortium.node import runtime as rt_mod
from consortium.node.runtime import NodeOptions, NodeRuntime
from tests.conftest import NODES

PARTIES = ("carrier-sh", "bank-hk", "sh-exporter", "hk-importer")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nodefast") / "home"
    init_home(path, NODES, "nodefast-1", force=False)
    return path


@pytest.fixture
def node(home: Path, tmp_path: Path) -> Iterator[NodeRuntime]:
    """hkma's runtime on a fresh store (its own copy of the home), never connected: what it
    publishes waits in the adapter's outbox."""
    import shutil

    mine = tmp_path / "home"
    shutil.copytree(home, mine)
    rt = NodeRuntime(NodeOptions(home=mine, node_id="hkma", broker="mqtt://127.0.0.1:1"))
    try:
        yield rt
    finally:
        rt.store.close()


def workload_txs(home: Path, n: int, seed: int = 5) -> list[bytes]:
    genesis = load_genesis(home)
    work = Workload(genesis, {p: load_key(home, p, genesis) for p in PARTIES}, random.Random(seed))
    return work.take(n, genesis.genesis_time_ms + 60_000)


def test_an_admission_turn_ends_once_it_took_tx_turn_ms_and_keeps_the_order(
        node: NodeRuntime, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A turn of tx admissions hands txs to the replica until limits.tx_turn_ms passed (at
    least one tx per turn), not always txs_per_turn_max: with each check taking 1 ms (a
    clock that advances 1 ms per check), a turn admits tx_turn_ms txs and the rest wait, in
    order, for the next turns. Every tx is admitted in the end, in arrival order."""
    clock = [1_000.0]
    monkeypatch.setattr(rt_mod, "mono_ms", lambda: clock[0])
    real_check = node.ledger.check_tx

    def one_ms_check(tx: bytes) -> str | None:
        clock[0] += 1.0
        return real_check(tx)

    monkeypatch.setattr(node.ledger, "check_tx", one_ms_check)
    txs = workload_txs(home, limits.txs_per_turn_max + 8)
    node._admit.extend((tx, "sh-exporter") for tx in txs)

    async def turns() -> list[int]:
        sizes = []
        while node._admit:
            before = len(node._admit)
            await node._admit_some()
            sizes.append(before - len(node._admit))
        return sizes

    sizes = asyncio.run(turns())
    assert sizes[0] == limits.tx_turn_ms < limits.txs_per_turn_max
    assert sum(sizes) == len(txs) and all(1 <= s <= limits.tx_turn_ms for s in sizes)
    pool = node.replica.mempool
    assert pool.batch(len(txs) + 1, 1 << 40) == txs  # FIFO, every one admitted


def one_commit(home: Path, txs: list[bytes]) -> ev.Commit:
    genesis = load_genesis(home)
    ledger = Ledger(genesis)
    t = genesis.genesis_time_ms + 1_000
    block = Block(1, t, "hkma", ZERO_ID, ledger.state_root(), None, (), tuple(txs))
    results = ledger.apply_block(BlockContext(1, t, "hkma"), block.txs)
    cert = Certificate(1, 0, block.id, (("hkma", b"\x01" * 64),))
    return ev.Commit(block, cert, tuple(results), ledger.state_root())


def test_a_commit_overlaps_the_block_interval_and_every_later_output_waits_for_it(
        node: NodeRuntime, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The block-interval timer that follows a Commit starts while the commit's durable
    write is still running (the fsync no longer adds to every height); but the guard
    record and the signed frame of the next step, a sync reply, and the status record all
    wait until the commit is durable (consensus/events.py: Persist and Commit are durable
    before any later Broadcast leaves), and writes never overlap each other."""
    commit = one_commit(home, workload_txs(home, 3, seed=9))
    release = threading.Event()
    order: list[str] = []
    real_commit, real_persist = node.store.commit, node.store.persist

    def slow_commit(c: ev.Commit, snapshot: bytes | None) -> None:
        assert release.wait(30), "the test never released the commit"
        real_commit(c, snapshot)
        order.append("commit")

    def persist(p: ev.Persist) -> None:
        real_persist(p)
        order.append("persist")

    monkeypatch.setattr(node.store, "commit", slow_commit)
    monkeypatch.setattr(node.store, "persist", persist)
    signer = crypto.Signer(load_key(home, "hkma", load_genesis(home)))
    prevote = codec.seal_envelope(node.chain, "hkma", Kind.PREVOTE,
                                  {"height": 2, "round": 0, "block_id": None}, signer)
    guard = ev.Persist(2, 0, ev.Step.PREVOTE, codec.encode([prevote.encode()]), b"")
    timer = ev.ScheduleTimeout(ev.TimeoutKind.COMMIT, 2, 0, 20)

    async def run() -> None:
        # Commit then the block-interval timer: carried out without waiting for the fsync.
        await asyncio.wait_for(node._carry_out([commit, timer]), 10)
        assert [t[2] for t in node._timers] == [timer]
        assert order == [] and commit.block.txs and crypto.digest(commit.block.txs[0]) in node._decided_txs
        # The next signed step: its guard record and frame wait for the commit.
        later = asyncio.ensure_future(node._carry_out([guard, ev.Broadcast(prevote)]))
        status = asyncio.ensure_future(node._publish_status())
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert not later.done() and not status.done()
        assert node.store.load_guard() is None and len(node.bus._outbox) == 0
        release.set()
        await asyncio.wait_for(asyncio.gather(later, status), 30)
        assert order == ["commit", "persist"]
        assert node.store.last_height() == 1 and node.txs_committed == len(commit.block.txs)
        sent = {codec.decode_unverified(o.payload).kind: o.payload for o in node.bus._outbox}
        assert len(node.bus._outbox) == 2 and set(sent) == {Kind.PREVOTE, Kind.STATUS}
        status_body: Any = codec.decode_unverified(sent[Kind.STATUS]).body
        assert status_body["height"] == 0 and status_body["info"]["txs_committed"] == len(commit.block.txs)

    asyncio.run(run())


def test_a_long_full_collection_freezes_its_survivors_at_the_next_commit(
        node: NodeRuntime, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a full (generation 2) collection took limits.gc_freeze_after_full_ms or more,
    the node moves what survived it to the permanent generation when its next commit is
    durable (later full collections then skip the long-lived ledger state); a commit
    after only short full collections freezes nothing."""
    import gc

    gc.unfreeze()
    try:
        monkeypatch.setattr(limits, "gc_freeze_after_full_ms", 10**9)  # no collection is that long
        gc.collect()
        asyncio.run(_commit_and_wait(node, one_commit(home, [])))
        assert gc.get_freeze_count() == 0
        monkeypatch.setattr(limits, "gc_freeze_after_full_ms", 0)  # every full collection counts as long
        gc.collect()
        assert gc.get_freeze_count() == 0  # nothing is frozen inside the collector's callback
        commit2 = one_commit(home, [])
        block2 = Block(2, commit2.block.time_ms + 1, "hkma", commit2.block.id, commit2.state_root, None, (), ())
        cert2 = Certificate(2, 0, block2.id, (("hkma", b"\x01" * 64),))
        asyncio.run(_commit_and_wait(node, ev.Commit(block2, cert2, (), commit2.state_root)))
        assert gc.get_freeze_count() > 0 and not node.gc.full_since_freeze
    finally:
        gc.unfreeze()


async def _commit_and_wait(node: NodeRuntime, commit: ev.Commit) -> None:
    """Carry out a Commit and wait until it is durable."""
    await node._carry_out([commit])
    durable = getattr(node, "_durable", None)  # (a node that wrote commits before returning has none)
    if durable is not None:
        await durable()


def test_a_failed_commit_write_stops_every_later_output_even_once_it_has_landed(
        node: NodeRuntime, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit whose durable write failed (the store raised) is never followed by a signed
    frame: the next Broadcast raises the write's error instead of publishing, whether it
    came while the write still ran or after it had already finished (`_durable`'s shortcut
    for a finished write still reads its outcome)."""
    commit = one_commit(home, [])

    def broken_commit(c: ev.Commit, snapshot: bytes | None) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(node.store, "commit", broken_commit)
    signer = crypto.Signer(load_key(home, "hkma", load_genesis(home)))
    prevote = codec.seal_envelope(node.chain, "hkma", Kind.PREVOTE, {"height": 2, "round": 0, "block_id": None},
                                  signer)

    async def run() -> None:
        await node._carry_out([commit])
        writing = node._writing
        assert writing is not None
        while not writing.done():  # the write lands (and fails) first
            await asyncio.sleep(0.005)
        with pytest.raises(OSError, match="disk gone"):
            await node._carry_out([ev.Broadcast(prevote)])
        assert len(node.bus._outbox) == 0

    asyncio.run(run())


def test_the_status_task_publishes_soon_after_a_commit_and_otherwise_once_per_interval(
        node: NodeRuntime, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The status task publishes a record, then waits at least status_gap_ms and at most
    status_interval_ms: a durable commit ends the wait early (one record soon after it),
    and without commits no further record comes before the interval is over."""
    monkeypatch.setattr(limits, "status_gap_ms", 20)
    monkeypatch.setattr(limits, "status_interval_ms", 60_000)

    def records() -> int:
        return sum(1 for o in node.bus._outbox if codec.decode_unverified(o.payload).kind == Kind.STATUS)

    async def until(n: int) -> None:
        while records() < n:
            await asyncio.sleep(0.005)

    async def run() -> None:
        task = asyncio.ensure_future(node._status_loop())
        try:
            await asyncio.wait_for(until(1), 10)
            await asyncio.sleep(0.3)  # many gaps, no commit: still one record
            assert records() == 1
            await node._carry_out([one_commit(home, [])])
            await node._durable()
            await asyncio.wait_for(until(2), 10)  # the commit ends the wait
            await asyncio.sleep(0.3)
            assert records() == 2
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(run())


def test_the_store_writer_runs_writes_in_order_one_at_a_time_and_hands_back_their_errors() -> None:
    """The node's store thread runs the writes handed to it one at a time, in the order
    given, each future completing only after its own write returned; a write's exception
    is raised to the side awaiting it (and the thread goes on); a waiter cancelled while its
    write runs leaves the thread serving the next writes; close() ends the thread."""
    writer = rt_mod.StoreWriter("test-store")
    log: list[tuple[str, int]] = []
    lock = threading.Lock()

    def write(i: int) -> None:
        assert lock.acquire(blocking=False), "two writes overlapped"
        try:
            log.append(("start", i))
            threading.Event().wait(0.002)
            log.append(("end", i))
        finally:
            lock.release()

    def broken() -> None:
        raise OSError("disk gone")

    async def run() -> None:
        futs = [writer.write(write, i) for i in range(5)]
        for i, f in enumerate(futs):
            await f
            assert ("end", i) in log
        with pytest.raises(OSError, match="disk gone"):
            await writer.write(broken)
        cancelled = writer.write(write, 5)
        cancelled.cancel()
        await writer.write(write, 6)

    asyncio.run(run())
    assert log == [(e, i) for i in range(7) for e in ("start", "end")]
    writer.close()
    assert writer._thread is None


def test_the_status_tx_rate_is_the_former_sum_over_the_window(
        node: NodeRuntime, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The status record's tx_per_s, kept as a running total of the txs of the commits in
    the last limits.rate_window_ms, equals the former sum over those commits at every
    moment, while commits of different sizes arrive and age out of the window."""
    clock = [10_000.0]
    monkeypatch.setattr(rt_mod, "mono_ms", lambda: clock[0])
    monkeypatch.setattr(rt_mod, "now_ms", lambda: int(clock[0]) + 1_700_000_000_000)  # the same clock
    monkeypatch.setattr(node, "started_ms", rt_mod.now_ms())
    monkeypatch.setattr(node.store, "commit", lambda c, snapshot: None)
    started = node._started_mono()
    txs = workload_txs(home, 4, seed=11)
    seen: list[tuple[float, int]] = []
    rng = random.Random(3)

    def former() -> int:
        now = clock[0]
        window = min(limits.rate_window_ms, max(1.0, now - started))
        return int(sum(n for t, n in seen if t >= now - limits.rate_window_ms) * 1000 / window)

    async def run() -> None:
        for _ in range(60):
            clock[0] += rng.choice([10.0, 250.0, 900.0, limits.rate_window_ms / 2])
            c = one_commit(home, txs[:rng.randrange(len(txs) + 1)])
            await node._write_commit(c, None, 0.0, 0.0)
            seen.append((clock[0], len(c.block.txs)))
            assert node.tx_per_s() == former()

    asyncio.run(run())
