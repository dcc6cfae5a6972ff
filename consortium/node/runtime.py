"""The node runtime: one asyncio process per member, driving the Replica over MQTT.

Theory of operation (the live twin of consortium.sim.node):
- Boot: genesis and the member's key from HOME; the SQLite store
  HOME/nodes/<id>/store.db (node.livestore); the Ledger restored from the newest
  snapshot plus the blocks stored after it; the Replica with Restored(last
  decided block, double-sign guard). Then Start.
- One loop owns the replica. It takes, in this order of priority, due timers,
  due delayed frames (fault injection) and checked frames from the bus
  adapter, calls `replica.step(event)` and carries out the returned actions in
  list order, each finished before the next starts (consensus/events.py):
  Persist and Commit are durable (fsync) before any later Broadcast leaves. The
  loop never steps the replica while an action list is being carried out.
- Frames: the adapter already checked size, decoding, chain, membership, topic
  vs sender and signature. SYNC_REQUEST is answered here from the store
  (consensus.sync.sync_reply, same code as the simulator); STATUS frames only update
  the peer table; everything else goes to the replica. An exception out of
  the replica is logged and counted, never fatal: a bad frame cannot stop a node.
  A TX frame is a batch: its txs wait in a backlog and reach the replica one by
  one (TxSubmitted), a few per turn, each checked on its own signature.
- Timers are wall-clock (monotonic deadlines); `now_ms` given to the replica is
  the wall clock (block times are ledger time).
- Every `limits.status_interval_ms` a signed STATUS envelope is published retained on
  consortium/<chain>/<id>/status: body {"height": last decided height,
  "round": current round, "info": {...}} (see `NodeRuntime.status_info`).
- SIGTERM / SIGINT: finish the current action list, publish a last status
  (state "stopped"), close the bus and the store. kill -9 loses nothing durable.
- SQLite writes run in a worker thread (`StoreWriter`): the loop waits for
  them before the next action, but paho's reader keeps checking incoming frames
  (signature verification) during the fsync. A Commit's write is the exception: it
  overlaps the block interval (the timer that follows it starts at once, admission
  goes on); the next Persist, Broadcast, SendTo or Commit, a sync reply, a tx
  refusal and a status record each wait until it is durable (`_durable`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import heapq
import json
import logging
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consortium import codec, crypto, limits, proc
from consortium.bus.adapter import BusAdapter, wake
from consortium.bus.endpoint import broker_address
from consortium.codec import Envelope, Kind
from consortium.consensus import events as ev
from consortium.consensus.replica import Replica, Restored
from consortium.consensus.sync import sync_reply
from consortium.consensus.validators import Validator, ValidatorSet
from consortium.errors import UserError
from consortium.genesis import Genesis
from consortium.home import load_credentials, load_genesis, load_key
from consortium.ledger import Ledger
from consortium.node import twins
from consortium.node.clock import ClockFile
from consortium.node.livestore import LiveStore
from consortium.node.netfilter import FilterFile, filter_path
from consortium.node.record import RECORD_ENV, BootInfo, Header, InputLog, log_path
from consortium.store.sqlite import StoreDamaged

log = logging.getLogger(__name__)

# Bounds and timeouts: consortium.limits (node runtime). Transactions are handed
# to the replica only while its mempool holds fewer than limits.mempool_blocks_max
# blocks' worth: the mempool re-checks every pending tx after each commit, so a
# huge mempool slows every height down.
#: Environment variable: "1" makes SQLite writes run on the event loop's thread
#: instead of a worker thread (for measuring the difference; see docs/LIVE.md).
STORE_SYNC_ENV = "CONSORTIUM_STORE_SYNC"
#: Environment variable: local timing override of genesis params.block_interval_ms.
BLOCK_INTERVAL_ENV = "CONSORTIUM_BLOCK_INTERVAL_MS"


class GcClock:
    """Time spent in Python's cyclic garbage collector (a hidden pause: a full
    collection walks every object of a large ledger state), and whether a long full
    collection ran since the node last froze the survivors (`freeze_survivors`)."""

    def __init__(self) -> None:
        self.total_ms = 0.0
        self.max_ms = 0.0
        self.collections = 0
        self.full_since_freeze = False
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        took = (time.perf_counter() - self._t0) * 1000
        self.total_ms += took
        self.max_ms = max(self.max_ms, took)
        self.collections += 1
        if info.get("generation") == 2 and took >= limits.gc_freeze_after_full_ms:
            self.full_since_freeze = True

    def freeze_survivors(self) -> None:
        """After a full collection that took limits.gc_freeze_after_full_ms or more, move
        every object that survived it to the permanent generation (gc.freeze): the
        ledger state lives as long as the node, and each later full collection walked
        all of it again (230 ms for the state of 10,000 workload txs, in every node at
        about the same height: a pause of the whole consortium); after a freeze it walks
        only what came since. Frozen objects are still freed by reference counting; only
        a cycle among objects alive at a freeze is never collected: a few transient
        objects per freeze, and a freeze needs that much new long-lived state first."""
        if self.full_since_freeze:
            self.full_since_freeze = False
            gc.freeze()

    def to_dict(self) -> dict[str, int]:
        return {"collections": self.collections, "total_ms": int(self.total_ms), "max_ms": int(self.max_ms)}


class StoreWriter:
    """The thread that runs the store's durable writes, one at a time in the order given.
    The loop hands it a write and awaits a plain future, which the thread completes with
    call_soon_threadsafe (the write's exception, if any, is the future's). What
    run_in_executor did per write besides (a concurrent Future with its condition, a work
    item, the pool's thread bookkeeping, two chained futures) is gone; the writes never
    overlapped before either (each is awaited before the next starts)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[tuple[Any, tuple[Any, ...], asyncio.Future[None]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def write(self, fn: Any, *args: Any) -> asyncio.Future[None]:
        """Run fn(*args) in the thread; the future (of the running loop) completes after it."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
            self._thread.start()
        self._jobs.put((fn, args, fut))
        return fut

    def close(self) -> None:
        """Stop the thread once the writes handed to it are done."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join()

    def _main(self) -> None:
        jobs = self._jobs
        while (job := jobs.get()) is not None:
            fn, args, fut = job
            try:
                fn(*args)
            except BaseException as exc:  # the awaiting side raises it
                _complete_soon(fut, exc)
            else:
                _complete_soon(fut, None)


def _complete_soon(fut: asyncio.Future[None], exc: BaseException | None) -> None:
    with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits any more
        fut.get_loop().call_soon_threadsafe(_complete, fut, exc)


def _complete(fut: asyncio.Future[None], exc: BaseException | None) -> None:
    if fut.done():  # the waiter was cancelled
        return
    if exc is None:
        fut.set_result(None)
    else:
        fut.set_exception(exc)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def mono_ms() -> float:
    return time.monotonic() * 1000


@dataclass(frozen=True, slots=True)
class NodeOptions:
    home: Path
    node_id: str
    broker: str | None = None  # mqtt://host:port; None: the broker recorded in HOME/run
    parent_pid: int | None = None  # stop when this process is gone (set by `consortium up`)
    block_interval_ms: int | None = None  # local override of the genesis pause between heights
    record: bool | None = None  # log every replica input to HOME/nodes/<id>/inputs.log; None: $CONSORTIUM_RECORD
    twin: bool = False  # the validator's second process under its key (node/twins.py): own store, no status record


def validator_set(genesis: Genesis) -> ValidatorSet:
    return ValidatorSet.of(Validator(m.id, m.power, m.public_key) for m in genesis.validators)


def node_replica(genesis: Genesis, node_id: str, signer: crypto.Signer, ledger: Ledger, params: dict[str, int],
                 restored: Restored) -> Replica:
    """The Replica a live node runs (and `replay-node` rebuilds from its log)."""
    return Replica(chain_id=genesis.chain_id, validators=validator_set(genesis), me=node_id, signer=signer,
                   app=ledger, params=params, genesis_time_ms=genesis.genesis_time_ms, restored=restored)


def timing_params(genesis: Genesis, override_ms: int | None) -> dict[str, int]:
    """Genesis params with the local block-interval override (option, then env var).

    Only the pause between heights may differ per node: it is a local timing
    choice, never part of a block's validity."""
    params = dict(genesis.params)
    if override_ms is None and os.environ.get(BLOCK_INTERVAL_ENV):
        try:
            override_ms = int(os.environ[BLOCK_INTERVAL_ENV])
        except ValueError:
            raise UserError(f"{BLOCK_INTERVAL_ENV} must be an integer (ms)") from None
    if override_ms is not None:
        if not 0 <= override_ms <= limits.block_interval_ms_override_max:
            raise UserError(f"block interval must be 0..{limits.block_interval_ms_override_max} ms")
        params["block_interval_ms"] = override_ms
    return params


class NodeRuntime:
    def __init__(self, opts: NodeOptions) -> None:
        self.opts = opts
        self.id = opts.node_id
        self.genesis = load_genesis(opts.home)
        if self.genesis.member(self.id) is None:
            raise UserError(f"{self.id!r} is not a member of chain {self.genesis.chain_id} (see genesis.json)")
        self.chain = self.genesis.chain_id
        self.instance = twins.twin_instance(self.id) if opts.twin else self.id  # files, logs, client id
        if opts.twin:
            twins.check_twins([self.id], self.genesis, beyond_f=True, where=f"--twin {self.id}")
        self._skew_ms = limits.live_twin_skew_ms if opts.twin else 0
        self.signer = crypto.Signer(load_key(opts.home, self.id, self.genesis))
        self.host, self.port = broker_address(opts.home, opts.broker)
        self.store = LiveStore.open_for(opts.home, self.instance, self.genesis)
        try:
            self.replica = self._boot()
            self.recorder = self._open_recorder()
        except BaseException:
            self.store.close()
            raise
        self.bus = self._adapter()
        self.filter = FilterFile(filter_path(opts.home / "run", self.id))
        self.clock = ClockFile(opts.home / "run")
        self.started_ms = now_ms()
        self._timers: list[tuple[float, int, ev.ScheduleTimeout]] = []
        self._delayed: list[tuple[float, int, Envelope]] = []
        self._seq = 0
        self._urgent: collections.deque[Envelope] = collections.deque()
        self._txs: collections.deque[Envelope] = collections.deque()  # TX frames (batches) not yet opened
        self._txs_queued = 0  # txs in those frames
        self._admit: collections.deque[tuple[bytes, str]] = collections.deque()  # (tx, frame sender) to admit
        self._decided_txs: collections.OrderedDict[bytes, None] = collections.OrderedDict()  # recent, by hash
        self._mempool_high = limits.mempool_blocks_max * self.replica.params["block_txs_max"]
        self._stopping = asyncio.Event()
        self._committed = False  # a commit became durable since the last status record
        self._commit_waiter: asyncio.Future[None] | None = None  # the status task waiting for that
        self._writing: asyncio.Future[None] | None = None  # the commit being made durable (see _commit)
        self._store_sync = os.environ.get(STORE_SYNC_ENV) == "1"
        self._writer = StoreWriter(f"store-{self.instance}")
        members = [m.id for m in self.genesis.members]
        self._snapshot_phase = members.index(self.id) * limits.snapshot_every_heights // len(members)
        self._peers: dict[str, float] = {}  # sender -> monotonic ms of its last frame
        self._peer_heights: dict[str, int] = {}
        self._peer_status: dict[str, tuple[int, str, int]] = {}  # member -> (height, state, time_ms) of its record
        self._lost_reported: tuple[int, int, int] | None = None
        self._sync_served: dict[str, float] = {}
        self._commits: collections.deque[tuple[float, int]] = collections.deque()
        self._commits_txs = 0  # txs in those commits (kept as they come and go)
        self.txs_committed = 0
        self.filtered: dict[str, int] = {}
        self.filtered_kinds: dict[str, int] = {}  # frames the network filter dropped (blocked, lost, overflow), by kind
        self.errors: dict[str, int] = {}
        self._refusals_since, self._refusals_sent = 0.0, 0  # TX_REFUSED frames sent in the current second
        self.evidence = 0
        self.gc = GcClock()
        gc.callbacks.append(self.gc)

    # ------------------------------------------------------------ boot

    def _boot(self) -> Replica:
        t0 = time.perf_counter()
        try:
            self.ledger = self.store.check(self.genesis, validator_set(self.genesis))
        except StoreDamaged as exc:
            raise StoreDamaged(f"node {self.id} refuses to start: {exc} (restore a good copy of the store, "
                               f"or remove {self.store.path.parent} to sync the chain again from peers)",
                               exc.height) from None
        last = self.store.last_decided()
        self.snapshot_height = self.store.snapshot_height()
        self._restored = Restored(last, self.store.replica_guard())
        replica = self._replica(self._restored)
        log.info("%s: booted at height %d (snapshot %d) in %.0f ms, root %s", self.id,
                 last.block.height if last else 0, self.snapshot_height, (time.perf_counter() - t0) * 1000,
                 self.ledger.state_root().hex()[:16])
        return replica

    def _open_recorder(self) -> InputLog | None:
        """The input log (node/record.py) when recording is on: option, else $CONSORTIUM_RECORD."""
        on = self.opts.record if self.opts.record is not None else os.environ.get(RECORD_ENV) == "1"
        if not on:
            return None
        header = Header(self.chain, self.id, self.genesis.digest())
        return InputLog(log_path(self.opts.home, self.instance), header)  # a twin: HOME/nodes/ID~twin/

    def _record_boot(self) -> None:
        """The state the replica starts from, as the log's boot record (just before Start)."""
        if self.recorder is None:
            return
        r = self.replica
        self.recorder.boot(BootInfo(
            self.recorder.next_seq, self.ledger.height, self.ledger.state_root(), self.snapshot_height, r.last,
            r.guard, r.follow_to, dict(r.params), os.getpid(), now_ms()))

    def _replica(self, restored: Restored) -> Replica:
        return node_replica(self.genesis, self.id, self.signer, self.ledger,
                            timing_params(self.genesis, self.opts.block_interval_ms), restored)

    async def _learn_chain_height(self) -> None:
        """Before the first Start: read the peers' status records for
        limits.boot_listen_ms (the broker hands over the retained ones at once; a
        running peer refreshes its own within limits.status_interval_ms). If they
        report a chain beyond our store, the replica follows up to there before it
        signs anything: our guard may be older than what we signed (a store
        restored from an older copy, a lost WAL). Other frames wait in the queues."""
        deadline = mono_ms() + limits.boot_listen_ms
        while (left := deadline - mono_ms()) > 0:
            try:
                env = await self.bus.next_frame(int(left) + 1)
            except TimeoutError:
                break
            if env.kind == Kind.STATUS:
                await self._on_frame(env)
            else:
                self._route(env)
        target = self._chain_height()
        ours = self.replica.height - 1
        if target > ours:
            log.info("%s: peers report height %d, our store ends at %d: following (signing nothing) up to %d",
                     self.id, target, ours, target)
            self.replica = self._replica(Restored(self._restored.decided, self._restored.guard, follow_to=target))

    def _chain_height(self) -> int:
        """The highest height that running validators holding more than f of the power
        report (so no f liars can make us wait for a height that does not exist)."""
        vs = validator_set(self.genesis)
        now = now_ms()
        fresh = sorted(((h, vs.power(p)) for p, (h, state, t) in self._peer_status.items()
                        if p != self.id and state == "running" and now - t <= limits.status_stale_after_ms),
                       reverse=True)
        power = 0
        for height, p in fresh:
            power += p
            if power >= vs.skip:
                return height
        return 0

    def _report_lost(self) -> None:
        """Log once per discovery: the store had forgotten signatures of ours."""
        lost = self.replica.lost
        if lost is None or lost == self._lost_reported:
            return
        self._lost_reported = lost
        g = self._restored.guard
        stored = f"height {g.height} round {g.round} {g.step.name.lower()}" if g else "none"
        log.warning("%s: the double-sign guard of the store was behind what this validator signed: %s "
                    "(height %d round %d), beyond the stored guard (%s); the store lost state (restored from "
                    "an older copy? WAL deleted?). Guard raised: nothing will be signed at or below it",
                    self.id, self.replica.lost_where, lost[0], lost[1], stored)

    def _adapter(self) -> BusAdapter:
        cred = load_credentials(self.opts.home).get(self.id) if (self.opts.home / "broker").exists() else None
        user = cred.get("username") if isinstance(cred, dict) else None
        password = cred.get("password") if isinstance(cred, dict) else None
        return BusAdapter(host=self.host, port=self.port, chain_id=self.chain, node_id=self.id,
                          keys=self.genesis.keys(), username=user, password=password, client_name=self.instance)

    # ------------------------------------------------------------ life cycle

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        helpers: list[asyncio.Task[None]] = []
        try:
            async with self.bus:
                if not await self.bus.wait_connected(limits.node_connect_wait_ms):
                    log.warning("%s: broker %s:%d not reachable yet (%s); running on, frames buffered",
                                self.id, self.host, self.port, self.bus.last_error)
                else:
                    await self._learn_chain_height()
                helpers = [asyncio.create_task(self._status_loop()), asyncio.create_task(self._filter_loop())]
                if self.opts.parent_pid is not None:
                    helpers.append(asyncio.create_task(self._watch_parent(self.opts.parent_pid)))
                self._record_boot()
                gc.freeze()  # the ledger restored at boot (see GcClock.freeze_survivors)
                await self._step(ev.Start(self.ledger_now()))
                await self._main_loop()
                await self._durable()
                await self._publish_status(state="stopped")
                await asyncio.sleep(limits.status_flush_ms / 1000)  # let the last status reach the socket
        finally:
            for task in helpers:
                task.cancel()
            for task in helpers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self._writing is not None:  # an exception left a commit in flight: let it land
                with contextlib.suppress(Exception):
                    await self._writing
            self._writer.close()
            self.store.close()
            if self.recorder is not None:
                self.recorder.close()
            log.info("%s: stopped at height %d; gc %s, errors %s, dropped %s, counters %s", self.id,
                     self.replica.height - 1, self.gc.to_dict(), self.errors, self.bus.dropped,
                     self.replica.counters)

    async def _main_loop(self) -> None:
        """Timers first, then consensus frames, then transactions (see _pull)."""
        while not self._stopping.is_set():
            await self._fire_due()
            self._pull()
            if self._urgent:
                for _ in range(min(len(self._urgent), limits.frames_per_turn_max)):
                    await self._on_frame(self._urgent.popleft())
            elif (self._txs or self._admit) and len(self.replica.mempool) < self._mempool_high:
                await self._admit_some()
            else:
                await self._wait_frame()
                continue
            if self._urgent or self._txs or self._admit or self.bus.frames_pending:
                await asyncio.sleep(0)  # more to do: let paho's reader and the status task run first
            # (else the next turn waits for a frame, and that wait lets them run)

    def _pull(self) -> None:
        """Move every checked frame out of the adapter's queue, consensus and
        sync frames to `_urgent`, transactions to `_txs`. Why: under load
        thousands of TX frames queue up, and a vote waiting behind them would
        arrive after its round's timeout. Transactions beyond the backlog bound
        are refused here (counted), like a full mempool would."""
        while (env := self.bus.next_frame_nowait()) is not None:
            self._route(env)

    def _route(self, env: Envelope) -> None:
        if env.kind != Kind.TX:
            if len(self._urgent) >= limits.urgent_frames_max:  # newest rounds matter most, like the adapter's queue
                self._urgent.popleft()
                self._count_error("urgent_overflow")
            self._urgent.append(env)
            return
        n = len(env.body["txs"])
        if self._txs_queued + len(self._admit) + n <= limits.tx_backlog_max:
            self._txs.append(env)
            self._txs_queued += n
        else:
            self._count_error("tx_backlog_full", n)

    async def _admit_some(self) -> None:
        """Hand at most limits.txs_per_turn_max txs to the replica, opening the next
        TX frame (a batch) when the current one is used up. Each tx of a batch is
        admitted (or refused) on its own: one bad tx costs only itself. A turn also ends
        once it took limits.tx_turn_ms: votes, due timers and finished store writes are
        handled between turns, and a long turn would delay each consensus step."""
        done = 0
        start = mono_ms()
        while done < limits.txs_per_turn_max:
            if done and mono_ms() - start >= limits.tx_turn_ms:
                return
            if not self._admit:
                if not self._txs:
                    return
                env = self._txs.popleft()
                self._txs_queued -= len(env.body["txs"])
                await self._on_frame(env)  # network filter; a TX frame that passes fills _admit
                continue
            tx, sender = self._admit.popleft()
            await self._admit_one(tx, sender)
            done += 1

    async def _wait_frame(self) -> None:
        """Nothing to do now: wait for a frame, or until the next timer is due."""
        try:
            env = await self.bus.next_frame(self._idle_ms())
        except TimeoutError:
            return
        self._route(env)

    def _idle_ms(self) -> int:
        """Wait for a frame until the next timer or delayed frame is due (capped)."""
        due = [q[0][0] for q in (self._timers, self._delayed) if q]
        wait = min(due) - mono_ms() if due else limits.node_idle_wait_ms
        return max(1, min(limits.node_idle_wait_ms, int(wait) + 1))

    async def _fire_due(self) -> None:
        now = mono_ms()
        while self._timers and self._timers[0][0] <= now:
            _, _, t = heapq.heappop(self._timers)
            await self._step(ev.TimeoutFired(t.kind, t.height, t.round, self.ledger_now()))
        while self._delayed and self._delayed[0][0] <= now:
            _, _, env = heapq.heappop(self._delayed)
            await self._deliver(env)

    async def _watch_parent(self, parent: int) -> None:
        """Exit with `consortium up` (not detached): no orphan node if it dies."""
        while os.getppid() == parent:
            await asyncio.sleep(limits.parent_poll_ms / 1000)
        log.warning("%s: parent %d is gone; stopping", self.id, parent)
        self.stop()

    # ------------------------------------------------------------ inputs

    async def _on_frame(self, env: Envelope) -> None:
        self._peers[env.sender] = mono_ms()
        f = self.filter.current
        if f.active:
            verdict = self.filter.verdict(env.sender)
            if verdict is not None:
                self.filtered[verdict] = self.filtered.get(verdict, 0) + 1
                self.filtered_kinds[env.kind] = self.filtered_kinds.get(env.kind, 0) + 1
                return
            if f.delay_ms > 0:
                if len(self._delayed) >= limits.delayed_frames_max:
                    self.filtered["delay_overflow"] = self.filtered.get("delay_overflow", 0) + 1
                    self.filtered_kinds[env.kind] = self.filtered_kinds.get(env.kind, 0) + 1
                    return
                self._seq += 1
                heapq.heappush(self._delayed, (mono_ms() + f.delay_ms, self._seq, env))
                self.filtered["delayed"] = self.filtered.get("delayed", 0) + 1
                return
        await self._deliver(env)

    async def _deliver(self, env: Envelope) -> None:
        if env.kind == Kind.STATUS:
            if self.genesis.member(env.sender) is not None:  # a party's "status" means nothing
                self._note_status(env.sender, env.body)
            return
        if env.kind == Kind.SYNC_REQUEST:
            await self._serve_sync(env)
            return
        if env.kind == Kind.TX_REFUSED:  # to this member as a tx submitter: its client reads it, not the node
            return
        if env.kind == Kind.TX:  # a batch: its txs are admitted one by one (_admit_some)
            self._admit.extend((tx, env.sender) for tx in env.body["txs"])
            return
        await self._step(ev.Received(env, self.ledger_now()))

    def _note_status(self, sender: str, body: dict[str, Any]) -> None:
        """A peer's status record, unless it is older than the one we hold: a stale
        retained record replayed on the broker (or a QoS 1 copy arriving late) must
        not lower our view of the peer's height (counted as stale_status)."""
        info = body["info"]  # a map (codec schema); its values are the peer's word
        t = info.get("time_ms")
        t = t if isinstance(t, int) else 0
        held = self._peer_status.get(sender)
        if held is not None and t < held[2]:
            self._count_error("stale_status")
            return
        self._peer_heights[sender] = body["height"]
        self._peer_status[sender] = (body["height"], str(info.get("state", "")), t)

    async def _admit_one(self, tx: bytes, sender: str) -> None:
        """One tx into the mempool (Ledger.check_tx: decode, signature, nonce, role;
        its verdict is memoised by tx hash, so a proposal holding it is not verified
        again); a failed admission is told to the frame's sender. A tx a recent block
        already holds (another node proposed it before this one got to it) is
        skipped: no check, no refusal, no store read."""
        if crypto.digest(tx) in self._decided_txs:
            self._count_error("tx_already_decided")
            return
        rejected = self.replica.mempool.rejected
        await self._step(ev.TxSubmitted(tx, self.ledger_now()))
        if self.replica.mempool.rejected != rejected:  # failed admission (not a duplicate, not a full pool)
            await self._tell_refused(tx, sender)

    async def _tell_refused(self, tx: bytes, to: str) -> None:
        """The submitter learns at once why its tx will never reach a block: a signed
        TX_REFUSED {tx_hash, code} to the TX frame's sender, on
        consortium/<chain>/<id>/to/<sender>/tx_refused (docs/LIVE.md). Not for a
        re-sent tx this node already decided (its nonce is used: the block tells);
        at most limits.tx_refusals_per_s_max a second. The sender is the topic's
        (the broker's ACL decides who may publish there; the TX envelope's own
        signature is not checked, docs/CONSENSUS.md)."""
        h = crypto.digest(tx)
        now = mono_ms()
        if now - self._refusals_since >= 1000:
            self._refusals_since, self._refusals_sent = now, 0
        if self._refusals_sent >= limits.tx_refusals_per_s_max:
            self._count_error("tx_refusals_unsent")
            return
        code = "TOO_LARGE" if len(tx) > limits.tx_bytes_max else self.ledger.check_tx(tx)
        if code is not None:
            await self._durable()  # the store then holds every block the replica decided
        if code is None or self.store.tx_result(h) is not None:
            return
        self._refusals_sent += 1
        refusal = codec.seal_envelope(self.chain, self.id, Kind.TX_REFUSED, {"tx_hash": h, "code": code}, self.signer)
        self.bus.send_envelope(refusal, to=to)

    async def _step(self, event: ev.Event) -> None:
        if self.recorder is not None:  # before the step: replay-node re-runs exactly this
            self.recorder.event(event)
        try:
            actions = self.replica.step(event)
        except Exception:  # a replica bug must not let a peer's frame stop this node
            if self.recorder is not None:
                self.recorder.outputs(None)
            n = self._count_error("replica")
            if n & (n - 1) == 0:
                log.exception("%s: replica raised on %s (#%d)", self.id, type(event).__name__, n)
            return
        if self.recorder is not None:
            self.recorder.outputs(actions)
        await self._carry_out(actions)
        if self.replica.lost is not None:
            self._report_lost()

    async def _serve_sync(self, env: Envelope) -> None:
        last = self._sync_served.get(env.sender, -1e18)
        if mono_ms() - last < limits.sync_serve_interval_ms:
            self._count_error("sync_throttled")
            return
        self._sync_served[env.sender] = mono_ms()
        await self._durable()
        top = self.replica.height - 1
        try:
            reply = sync_reply(self.chain, self.id, self.signer, env, top, self.store.decided_wire)
        except StoreDamaged as exc:
            # A block gone bad under a running node: serve the heights below it, never crash.
            n = self._count_error("sync_bad_block")
            if n & (n - 1) == 0:
                log.error("%s: not serving height %d to %s (#%d): %s", self.id, exc.height, env.sender, n, exc)
            reply = None
            if exc.height > max(1, env.body["from_height"]):
                reply = sync_reply(self.chain, self.id, self.signer, env, exc.height - 1, self.store.decided_wire)
        if reply is not None:
            await self._carry_out([reply])

    # ------------------------------------------------------------ actions, in list order

    async def _carry_out(self, actions: list[ev.Action]) -> None:
        for a in actions:
            if isinstance(a, ev.Persist):
                if self._writing is not None:
                    await self._durable()
                await self._in_thread(self.store.persist, a)
            elif isinstance(a, ev.Commit):
                await self._commit(a)
            elif isinstance(a, ev.Broadcast):
                if self._writing is not None:
                    await self._durable()
                self.bus.send_envelope(a.envelope)  # QoS 0: written now, in order, not awaited
            elif isinstance(a, ev.SendTo):
                if self._writing is not None:
                    await self._durable()
                self.bus.send_envelope(a.envelope, to=a.to)
            elif isinstance(a, ev.ScheduleTimeout):
                self._seq += 1
                heapq.heappush(self._timers, (mono_ms() + a.delay_ms, self._seq, a))
            elif isinstance(a, ev.ReportEvidence):
                self.evidence += 1
                log.warning("%s: evidence of equivocation by %s at %s", self.id, a.evidence.a.validator,
                            a.evidence.key)

    async def _commit(self, c: ev.Commit) -> None:
        """Start making height c.block.height durable and return: the write overlaps the
        block interval that follows a decision (an fsync less on every height's path);
        whatever must come after it awaits `_durable` first (_carry_out)."""
        await self._durable()  # one write at a time, in order
        height = c.block.height
        snapshot = None
        t0 = time.perf_counter()
        if self._snapshot_due(height):
            snapshot = self.ledger.snapshot()  # the state of this height: taken now, before the ledger moves on
        t1 = time.perf_counter()
        if self.recorder is not None:  # before the next input is recorded (replay-node pairs it with this one)
            self.recorder.commit(height, c.block.id, c.state_root)
        for r in c.results:  # a late copy of these txs is skipped at admission from now on
            self._decided_txs[r.tx_hash] = None
        while len(self._decided_txs) > limits.decided_txs_remembered_max:
            self._decided_txs.popitem(last=False)
        self._writing = asyncio.ensure_future(self._write_commit(c, snapshot, t0, t1))

    async def _durable(self) -> None:
        """Return once the commit in flight (if any) is durable; raise if its write failed."""
        w = self._writing
        if w is None:
            return
        if w.done():  # landed already: no shield, no wait (result() raises if the write failed)
            w.result()
        else:
            await asyncio.shield(w)  # shielded: a cancelled waiter (status task) must not cancel the write
        if self._writing is w:
            self._writing = None

    async def _write_commit(self, c: ev.Commit, snapshot: bytes | None, t0: float, t1: float) -> None:
        height = c.block.height
        await self._in_thread(self.store.commit, c, snapshot)
        if snapshot is not None:
            self.snapshot_height = height
            log.info("%s: snapshot at height %d: %.1f MB, %.0f ms to take, %.0f ms to store", self.id, height,
                     len(snapshot) / 1e6, (t1 - t0) * 1000, (time.perf_counter() - t1) * 1000)
        self._committed = True
        waiter = self._commit_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.gc.freeze_survivors()
        self.txs_committed += len(c.block.txs)
        self._commits.append((mono_ms(), len(c.block.txs)))
        self._commits_txs += len(c.block.txs)
        if log.isEnabledFor(logging.DEBUG) or height % 100 == 0:
            log.info("%s: decided height %d (%d txs) root %s", self.id, height, len(c.block.txs),
                     c.state_root.hex()[:16])

    def _snapshot_due(self, height: int) -> bool:
        """Every limits.snapshot_every_heights heights, each node at its own phase: a
        snapshot stalls its node for a moment (taking it, writing it under the
        store's lock), and nodes stalling one at a time never stall a quorum."""
        every = limits.snapshot_every_heights
        since = height - self.snapshot_height
        return since >= 2 * every or (since >= every // 2 and (height + self._snapshot_phase) % every == 0)

    async def _in_thread(self, fn: Any, *args: Any) -> None:
        """A durable write; the loop waits for it, but paho's reader keeps checking
        incoming frames meanwhile (the fsync releases the GIL)."""
        if self._store_sync:
            fn(*args)
            return
        await self._writer.write(fn, *args)

    def _count_error(self, what: str, k: int = 1) -> int:
        n = self.errors.get(what, 0) + k
        self.errors[what] = n
        return n

    # ------------------------------------------------------------ status and filters

    def tx_per_s(self) -> int:
        now = mono_ms()
        while self._commits and self._commits[0][0] < now - limits.rate_window_ms:
            self._commits_txs -= self._commits.popleft()[1]
        window = min(limits.rate_window_ms, max(1.0, now - self._started_mono()))
        return int(self._commits_txs * 1000 / window)

    def _started_mono(self) -> float:
        return mono_ms() - (now_ms() - self.started_ms)

    def status_info(self, state: str = "running") -> dict[str, Any]:
        """The status record's info map (canonical msgpack: ints, strings, maps; no floats)."""
        r = self.replica.status()
        now = mono_ms()
        peers = sorted(p for p, t in self._peers.items() if now - t <= limits.peer_seen_ms and self.genesis.member(p))
        bus = self.bus.stats()
        return {
            "state": state, "time_ms": now_ms(), "started_ms": self.started_ms, "pid": os.getpid(),
            "step": r["step"], "proposer": r["proposer"], "working_height": r["height"],
            "last_block": r["last_block"] or "", "state_root": r["app_hash"],
            "mempool": r["mempool"], "tx_backlog": self._txs_queued + len(self._admit), "tx_per_s": self.tx_per_s(), "txs_committed": self.txs_committed,
            "peers": peers, "peer_heights": dict(sorted(self._peer_heights.items())),
            "dropped": {str(k): v for k, v in sorted(bus["dropped"].items())},
            "unsent": {str(k): v for k, v in sorted(bus["unsent"].items())},
            "filtered": dict(sorted(self.filtered.items())), "filter": _filter_info(self.filter),
            "filtered_kinds": {str(k): v for k, v in sorted(self.filtered_kinds.items())},
            "errors": dict(sorted(self.errors.items())), "evidence": self.evidence,
            "counters": {str(k): v for k, v in r["counters"].items()},
            "bus": {"connected": bus["connected"], "connections": bus["connections"], "received": bus["received"],
                    "published": bus["published"], "pending": bus["pending"], "outbox": bus["outbox"],
                    "repeated": bus["repeated"], "client_id": bus["client_id"], "deaf": bus["deaf"]},
            "snapshot_height": self.snapshot_height, "gc": self.gc.to_dict(), "follow_to": self.replica.follow_to,
        }

    async def _publish_status(self, state: str = "running") -> None:
        await self._durable()  # the record's height is in the store
        info = self.status_info(state)
        body = {"height": self.replica.height - 1, "round": self.replica.round, "info": info}
        if self.opts.twin:  # the member's retained record is its first process's: the twin's goes to a file
            proc.write_atomic(twins.status_path(self.opts.home / "run", self.instance),
                              json.dumps({"height": body["height"], "round": body["round"], **info}) + "\n")
            return
        env = codec.seal_envelope(self.chain, self.id, Kind.STATUS, body, self.signer)
        self.bus.send_envelope(env, retain=True)

    async def _status_loop(self) -> None:
        """A record every limits.status_interval_ms, and soon after each commit (at most
        every limits.status_gap_ms): readers then see every node's newest height, so
        nodes at one height show it at about the same moment."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self._publish_status()
            except Exception:  # status is best effort; the node goes on
                log.exception("%s: status record failed", self.id)
            await asyncio.sleep(limits.status_gap_ms / 1000)
            if not self._committed:  # wait for a commit, at most until the interval is over (one future)
                waiter = self._commit_waiter = loop.create_future()
                timer = loop.call_later((limits.status_interval_ms - limits.status_gap_ms) / 1000, wake, waiter)
                try:
                    await waiter
                finally:
                    timer.cancel()
                    self._commit_waiter = None
            self._committed = False

    def ledger_now(self) -> int:
        """The consortium clock (bus/clock.py): wall clock plus the run's offset.
        Only the times handed to the replica use it; timers stay monotonic."""
        return now_ms() + self.clock.offset_ms + self._skew_ms

    async def _filter_loop(self) -> None:
        while True:
            self.filter.poll()
            if self.clock.poll():
                log.info("%s: consortium clock offset now %d ms", self.id, self.clock.offset_ms)
            await asyncio.sleep(limits.netfilter_poll_ms / 1000)


def _filter_info(f: FilterFile) -> dict[str, Any]:
    cur = f.current
    return {"drop_permille": int(cur.drop * 1000), "delay_ms": cur.delay_ms, "block": sorted(cur.block)}


def run_node(opts: NodeOptions) -> None:
    """Run one node until SIGTERM/SIGINT (the `consortium node` command)."""
    runtime = NodeRuntime(opts)
    asyncio.run(runtime.run())
