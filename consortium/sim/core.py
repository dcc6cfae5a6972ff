"""The simulation: one process, a virtual clock (a heap of timed events), one
seeded PRNG. Same configuration and seed -> the same bytes on the wire, the
same decisions and the same trace digest, every run.

A Fault is a timed verb on the network or a node; `Simulation.run` processes
events in (time, sequence) order until every honest node reached the target
height and the liveness window after the last fault has been observed, or the
virtual time limit is hit."""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from consortium import codec, crypto, limits, types
from consortium.consensus import events as ev
from consortium.consensus.app import Application
from consortium.consensus.validators import Validator, ValidatorSet
from consortium.genesis import DEFAULT_GENESIS_TIME_MS, default_params
from consortium.sim.byzantine import BEHAVIOURS, Coalition
from consortium.sim.checkers import Checkers
from consortium.sim.faults import STEPS, Fault, RoundPartition, twin_of
from consortium.sim.kvapp import KVApp
from consortium.sim.network import LinkModel, Network
from consortium.sim.node import FrameMemo, NodeConfig, SimNode
from consortium.sim.recorder import Recorder
from consortium.types import Jurisdiction


@dataclass(frozen=True, slots=True)
class NodeSpec:
    id: str
    jurisdiction: Jurisdiction
    power: int = 10
    validator: bool = True


def synthetic_nodes(n: int, powers: list[int] | None = None) -> list[NodeSpec]:
    """n validators alternating Shanghai / Hong Kong: sh-1, hk-1, sh-2, ..."""
    out = []
    for i in range(n):
        j = Jurisdiction.CN_SH if i % 2 == 0 else Jurisdiction.HK
        tag = "sh" if j == Jurisdiction.CN_SH else "hk"
        out.append(NodeSpec(f"{tag}-{i // 2 + 1}", j, powers[i] if powers else 10))
    return out


@dataclass
class SimConfig:
    nodes: list[NodeSpec] = field(default_factory=lambda: synthetic_nodes(4))
    seed: int = 0
    heights: int = 10
    byzantine: dict[str, str] = field(default_factory=dict)  # node -> behaviour
    faults: list[Fault] = field(default_factory=list)
    tx_per_s: int = 20  # workload offered, virtual time
    time_limit_ms: int = 0  # 0: derived from heights and faults
    params: dict[str, int] = field(default_factory=default_params)
    chain_id: str = "sim-chain"
    app_factory: Callable[[], Application] = KVApp
    invariants: Callable[[Application], list[str]] | None = None
    workload: Callable[[random.Random, int], bytes] | None = None  # (rng, i) -> tx
    keys: dict[str, crypto.KeyPair] | None = None  # default: derived from the seed
    links: dict[tuple[str, str], LinkModel] | None = None  # jurisdiction pair -> latency model
    genesis_time_ms: int = DEFAULT_GENESIS_TIME_MS  # virtual time 0 on every node's clock
    targets: dict[str, tuple[str, ...]] = field(default_factory=dict)  # equivocating member -> its chosen nodes
    twins: tuple[str, ...] = ()  # validators run as two instances sharing one key (Twins; see Simulation)
    round_partitions: tuple[RoundPartition, ...] = ()  # Twins: per (height, round, step) who hears whom


@dataclass
class SimResult:
    ok: bool
    checks: dict[str, Any]
    heights: dict[str, int]
    virtual_ms: int
    messages: dict[str, int]
    dropped: dict[str, int]
    evidence_committed: int
    max_round: int
    txs_committed: int
    trace_digest: str
    liveness: dict[str, Any]
    faults: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "heights": self.heights, "virtual_ms": self.virtual_ms,
            "messages": self.messages, "dropped_frames": self.dropped,
            "evidence_committed": self.evidence_committed, "max_round": self.max_round,
            "txs_committed": self.txs_committed, "liveness": self.liveness,
            "faults": self.faults, **self.checks, "trace_digest": self.trace_digest,
        }


def heals(f: Fault) -> bool:
    """A fault that ends a disturbance: heal, restart, resume, a Byzantine node turned
    honest, loss/duplication/delay set back to 0."""
    return (f.op in ("heal", "restart", "resume", "rollback") or (f.op == "byzantine" and f.behaviour in ("", "none"))
            or (f.op in ("drop", "duplicate", "delay") and f.value == 0))


_SYNC_REQUEST = codec.Kind.SYNC_REQUEST  # served by SimNode.deliver (the driver), not the replica
_STEP_OF = dict(zip((codec.Kind.PROPOSAL, codec.Kind.PREVOTE, codec.Kind.PRECOMMIT), STEPS, strict=True))

# event kinds in the heap
_DELIVER, _TIMER, _TX, _FAULT = 0, 1, 2, 3
# A heap entry is (at << _SEQ_BITS | seq, kind, data): one int orders events by (time, sequence),
# as the tuple (at, seq) did, with one comparison instead of two (n^2 entries per height)
_SEQ_BITS = limits.sim_event_seq_bits_max


class Simulation:
    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        ids = [s.id for s in cfg.nodes]
        assert len(set(ids)) == len(ids), "node ids are unique"
        for node, b in cfg.byzantine.items():
            assert node in ids and b in BEHAVIOURS, (node, b)
        self.keys = {s.id: crypto.keypair_from_entropy(f"sim:{cfg.seed}:{s.id}".encode()) for s in cfg.nodes}
        if cfg.keys is not None:
            self.keys.update({i: cfg.keys[i] for i in ids})
        self.validators = ValidatorSet.of(
            Validator(s.id, s.power, self.keys[s.id].public_key) for s in cfg.nodes if s.validator)
        pub = {i: k.public_key for i, k in self.keys.items()}
        ncfg = NodeConfig(cfg.chain_id, self.validators, pub, cfg.params, cfg.genesis_time_ms, cfg.app_factory,
                          FrameMemo(cfg.chain_id, pub))
        self.nodes = {s.id: SimNode(s.id, self.keys[s.id], ncfg) for s in sorted(cfg.nodes, key=lambda s: s.id)}
        # Twins: a twinned validator runs a second instance (id twin_of(v)) with the same key and
        # its own store; its clock runs 1 ms ahead, so two instances leading one round propose
        # different blocks. The pair counts as one faulty validator (never checked as honest).
        # The two never hear each other: a replica that meets its own signature beyond its
        # guard raises the guard (Replica._learn_own), so each would silence the other.
        # Targeted equivocation (cfg.targets, behaviour equivocate): the member runs twin
        # instances too; the first speaks only to its chosen nodes, the second only to the rest.
        self.twinned = frozenset(cfg.twins)
        assert self.twinned <= set(ids) and not self.twinned & set(cfg.byzantine), "twins: validators, not Byzantine"
        self.aimed = {v: tuple(t) for v, t in cfg.targets.items()}
        assert all(cfg.byzantine.get(v) == "equivocate" for v in self.aimed), "targets: equivocating members"
        self.instances: dict[str, list[str]] = {i: [i] for i in ids}  # validator -> its simulator ids
        self._validator_of = {i: i for i in ids}
        for v in sorted(self.twinned | set(self.aimed)):
            t = twin_of(v)
            self.nodes[t] = SimNode(v, self.keys[v], ncfg, instance=t)
            self.nodes[t].skew_ms = limits.sim_twin_skew_ms
            self.instances[v].append(t)
            self._validator_of[t] = v
        where = {s.id: s.jurisdiction for s in cfg.nodes}
        where.update({twin_of(v): where[v] for v in self.twinned | set(self.aimed)})
        self.network = Network(self.rng, where, cfg.links)
        self.coalition = Coalition(cfg.chain_id, dict(cfg.byzantine),
                                   sorted(ids), self.rng,
                                   {i: self.nodes[i].signer for i in ids})
        self._round_cut: dict[tuple[int, int, str], dict[str, int]] = {}  # (h, r, step) -> instance -> group
        self._cut_since: dict[tuple[int, int, str], int] = {}  # when each cut first applied
        self._frame_memo = ncfg.frames
        self._frames_seen = ncfg.frames._seen if ncfg.frames is not None else {}  # see _dispatch
        self._verified = crypto.VerifyMemo()  # signatures checked once for all nodes (see run_until)
        for rp in cfg.round_partitions:
            self._round_cut[(rp.height, rp.round, rp.step)] = {x: g for g, grp in enumerate(rp.groups) for x in grp}
        ids = list(self.nodes)
        self.checkers = Checkers(cfg.chain_id, self.validators, cfg.app_factory(), cfg.invariants)
        self.now = 0
        self._heap: list[tuple[int, int, Any]] = []  # (at << _SEQ_BITS | seq, kind, data)
        self._seq = 0
        self._epoch = dict.fromkeys(ids, 0)  # bumps on crash: stale timers are dropped
        self._backlog: dict[str, list[tuple[int, Any]]] = {i: [] for i in ids}  # while paused
        self._trace = hashlib.sha256()
        self._tx_i = 0
        self.counts = {"frames_sent": 0, "frames_delivered": 0, "timers": 0, "txs_submitted": 0}
        self._commits = 0
        self._started = False
        self._faults_left = 0
        self._heal_ms = 0
        self._heights_at_heal: dict[str, int] = {}
        self._faults_applied = 0
        self._last_fault_heals = False  # the last fault ended a disturbance (see heals())
        self.recorder: Recorder | None = None  # set one before start() to record a rich trace (sim/recorder.py)

    # ------------------------------------------------------------ scheduling

    def _push(self, at: int, kind: int, data: Any) -> None:
        self._seq += 1
        assert self._seq >> _SEQ_BITS == 0, "event sequence numbers fit below the time"
        heapq.heappush(self._heap, ((at << _SEQ_BITS) + self._seq, kind, data))

    def honest(self, node: str) -> bool:
        v = self._validator_of.get(node, node)
        return v not in self.coalition.members and v not in self.twinned

    def liveness_bound_ms(self) -> int:
        """After the last fault heals (no partition, faulty power <= f), every live
        honest node decides a new height within this bound. Derivation: one
        retransmit period brings every node the round of the others (L55), then
        at most f+1 rounds with timeouts capped at round_timeout_ms_max reach an
        honest proposer, plus the block interval and one sync retry."""
        f = types.fault_tolerance([v.power for v in self.validators.validators])
        round_ms = 3 * limits.round_timeout_ms_max
        return round_ms + (f + 1) * round_ms + self.cfg.params["block_interval_ms"] + limits.sync_retry_ms

    # ------------------------------------------------------------ the loop

    def run(self, progress: Callable[[int, int], None] | None = None) -> SimResult:
        """Run to the configured end: every live honest node at `heights`, every
        scheduled fault done and liveness after it observed (or a safety
        violation, or the virtual time limit)."""
        self.start()
        limit = self.cfg.time_limit_ms or self._default_limit()

        def finished() -> bool:
            if progress is not None:
                progress(min(self.min_height(), self.cfg.heights), self.cfg.heights)
            return self._faults_left == 0 and self._done()

        self.run_until(finished, limit_ms=limit)
        return self.finish()

    # ------------------------------------------------------------ stepwise API (scenarios, notebooks)

    def start(self) -> None:
        assert not self._started, "start once"
        self._started = True
        for node in self.nodes.values():
            self._do(node, node.event(ev.Start(node.clock(self.now))))
        for fault in sorted(self.cfg.faults, key=lambda f: f.at_ms):
            self._push(fault.at_ms, _FAULT, fault)
        self._faults_left = len(self.cfg.faults)
        if self.cfg.tx_per_s > 0:
            self._push(0, _TX, None)

    def run_until(self, done: Callable[[], bool] | None = None, *, at_ms: int | None = None,
                  limit_ms: int) -> bool:
        """Process events until `done()` holds after a commit (or `at_ms` is
        reached). Returns False if the limit or a safety violation came first."""
        assert self._started
        with crypto.memoised(self._verified):  # n nodes check the same signatures: once is enough
            return self._run_until(done, at_ms, limit_ms)

    def _run_until(self, done: Callable[[], bool] | None, at_ms: int | None, limit_ms: int) -> bool:
        heap, pop = self._heap, heapq.heappop
        while heap:
            at = heap[0][0] >> _SEQ_BITS
            if at_ms is not None and at > at_ms:
                self.now = max(self.now, at_ms)
                return True
            if at > limit_ms:
                self.now = max(self.now, limit_ms)
                return False
            _, kind, data = pop(heap)
            self.now = at
            commits = self._commits
            self._dispatch(kind, data)
            if self._commits != commits:
                if self.checkers.unsafe:
                    return False  # the rest of the run proves nothing more
                if done is not None and done():
                    return True
        return at_ms is not None

    def submit(self, tx: bytes) -> None:
        """A client publishes a transaction now: every live node receives it."""
        now = self.now
        self._trace.update(b"X%d|" % now + crypto.digest(tx))
        self.counts["txs_submitted"] += 1
        if self.recorder is not None:
            self.recorder.submitted(now, tx)
        for node in self.nodes.values():
            if node.alive and not node.paused:  # step(TxSubmitted(tx, node.clock(now)))
                actions = node.replica.admit(tx, node.cfg.genesis_time_ms + now + node.skew_ms)  # SimNode.admit
                if actions:
                    self._do(node, actions)

    def inject(self, fault: Fault) -> None:
        """Apply a fault now (a scenario step), outside the configured schedule."""
        self._faults_left += 1
        self._apply_fault(fault)

    def trace_digest(self) -> str:
        return self._trace.hexdigest()

    def finish(self) -> SimResult:
        return self._result()

    def _default_limit(self) -> int:
        last_fault = max((f.at_ms for f in self.cfg.faults), default=0)
        per_height = self.cfg.params["block_interval_ms"] + limits.sim_height_time_ms
        return last_fault + self.liveness_bound_ms() + self.cfg.heights * per_height

    def _dispatch(self, kind: int, data: Any) -> None:
        if kind == _DELIVER:
            dst, frame, frame_digest = data
            node = self.nodes[dst]
            if not node.alive:
                return
            if node.paused:
                self._backlog[dst].append((kind, data))
                return
            now = self.now
            self._trace.update(b"D%d|%s|%s" % (now, node.id_bytes, frame_digest))
            self.counts["frames_delivered"] += 1
            if self.recorder is not None:
                self.recorder.received(now, dst, frame)
            got = self._frames_seen.get(frame)  # SimNode.deliver's first lookup, inlined
            if type(got) is codec.Envelope and got.kind is not _SYNC_REQUEST:
                # a frame decoded before, for the replica: SimNode.deliver's own path, without its frame
                actions = node.replica.receive(got, node.cfg.genesis_time_ms + now + node.skew_ms)
            else:
                actions = node.deliver(frame, node.cfg.genesis_time_ms + now + node.skew_ms)  # node.clock(now)
            if actions:  # most deliveries (votes below every threshold) produce none
                self._do(node, actions)
        elif kind == _TIMER:
            dst, epoch, t = data
            node = self.nodes[dst]
            if not node.alive or epoch != self._epoch[dst]:
                return
            if node.paused:
                self._backlog[dst].append((kind, data))
                return
            self.counts["timers"] += 1
            if self.recorder is not None:
                self.recorder.timeout(self.now, dst, str(t.kind), t.height, t.round)
            self._trace.update(b"T%d|%s|%s|%d|%d" % (self.now, node.id_bytes, t.kind.encode(), t.height, t.round))
            actions = node.replica.timeout(t.kind, t.height, t.round,  # SimNode.timeout, without its frame
                                           node.cfg.genesis_time_ms + self.now + node.skew_ms)
            if actions:
                self._do(node, actions)
        elif kind == _TX:
            self._submit_tx()
        else:
            self._apply_fault(data)

    def _submit_tx(self) -> None:
        self._tx_i += 1
        wl = self.cfg.workload
        self.submit(wl(self.rng, self._tx_i) if wl else b"kv:k%d=v%d" % (self._tx_i % 97, self._tx_i))
        self._push(self.now + max(1, 1000 // self.cfg.tx_per_s), _TX, None)

    # ------------------------------------------------------------ actions

    def _do(self, node: SimNode, actions: Iterable[ev.Action]) -> None:
        """Carry out a replica's actions in order, as events.py prescribes."""
        for a in actions:  # the most frequent kinds first (each action is of exactly one)
            if isinstance(a, ev.ScheduleTimeout):  # (immutable) it holds the kind, height and round it fires with
                self._push(self.now + a.delay_ms, _TIMER, (node.id, self._epoch[node.id], a))
            elif isinstance(a, ev.Broadcast):
                self._send(node, a.envelope, None)
            elif isinstance(a, ev.Persist):
                node.persist(a)
            elif isinstance(a, ev.Commit):
                node.persist(a)
                self._on_commit(node, a)
            elif isinstance(a, ev.SendTo):
                self._send(node, a.envelope, a.to)

    def _on_commit(self, node: SimNode, c: ev.Commit) -> None:
        self._commits += 1
        self._trace.update(b"C%d|%s|%d|" % (self.now, node.id.encode(), c.block.height) + c.block.id + c.state_root)
        if self.honest(node.id):
            self.checkers.on_commit(node.id, c)
        if self.recorder is not None:
            self.recorder.commit(self.now, node.id, c.block.height, c.certificate.round, c.block.proposer,
                                 c.block.id, c.block.txs, c.results, self.honest(node.id))

    def _send(self, node: SimNode, env: codec.Envelope, to: str | None) -> None:
        if node.me in self.aimed and self.coalition.behaviour(node.me) == "equivocate":
            sends = [(self._aimed_at(node, env, to), env.encode())]
        elif self.honest(node.id):
            self.checkers.on_signed(node.id, env)
            sends = [([to] if to else None, env.encode())]
            if self._frame_memo is not None:  # its receivers need not decode it (see FrameMemo.learn_vote)
                self._frame_memo.learn_vote(env, self._verified)
        else:
            sends = self.coalition.outgoing(node.me, env, to)
        cut = self._cut_of(env) if self._round_cut else None
        twins = len(self.nodes) > len(self.instances)
        src, now, plan, heap, recorder = node.id, self.now, self.network.plan, self._heap, self.recorder
        net = self.network
        plain = cut is None and not twins and recorder is None and not (net.blocked or net.loss or net.dup)
        for targets, frame in sends:
            if targets is None:
                dsts: Iterable[str] = self.nodes
            elif twins:  # a validator's instances all receive what is sent to it
                dsts = [x for t in targets for x in self.instances.get(t, [t])]
            else:
                dsts = targets
            frame_digest = crypto.digest(frame)  # for the trace, once per frame rather than per delivery
            sent = 0
            if plain:  # the loop below on a healthy network, unrecorded, no twins, no cut: n^2 per height
                links, extra, seq, drawn = net._link_of, net.extra_delay_ms, self._seq, 0
                draw = net.rng._randbelow  # type: ignore[attr-defined]  # as Network.plan draws
                for dst in dsts:
                    if dst == src:
                        continue
                    sent += 1
                    pair = links.get((src, dst))
                    if pair is None:  # first use of this link: plan() caches its latency
                        delay = plan(src, dst)[0]
                    else:  # plan()'s healthy path, inlined: the same draw from the same generator
                        drawn += 1
                        latency, j = pair
                        delay = max(1, latency + (draw(2 * j + 1) - j if j else 0) + extra)
                    seq += 1
                    heapq.heappush(heap, (((now + delay) << _SEQ_BITS) + seq, _DELIVER, (dst, frame, frame_digest)))
                assert seq >> _SEQ_BITS == 0, "event sequence numbers fit below the time"
                self._seq = seq
                net.sent += drawn
                self.counts["frames_sent"] += sent
                continue
            for dst in dsts:
                if dst == src or (twins and self._validator_of[dst] == node.me):
                    continue  # twins never hear each other (see __init__)
                if cut is not None and cut.get(src, -1) != cut.get(dst, -1) and src in cut and dst in cut:
                    self.counts["twins_cut"] = self.counts.get("twins_cut", 0) + 1
                    continue
                sent += 1
                delays = plan(src, dst)
                if recorder is not None:
                    recorder.sent(now, src, dst, env, frame, delays)
                for delay in delays:
                    self._push(now + delay, _DELIVER, (dst, frame, frame_digest))
            self.counts["frames_sent"] += sent

    # ------------------------------------------------------------ faults

    def _apply_fault(self, f: Fault) -> None:
        self._faults_left -= 1
        self._trace.update(f"F{self.now}|{f.describe()}".encode())
        if self.recorder is not None:
            self.recorder.fault(self.now, f.op, node=f.node, groups=f.groups, value=f.value,
                                behaviour=f.behaviour, describe=f.describe())
        node = self.nodes.get(f.node)
        if f.op == "crash" and node and node.alive:
            node.crash()
            self._epoch[f.node] += 1
            self._backlog[f.node].clear()
        elif f.op == "restart" and node and not node.alive:
            node.restart()
            self._do(node, node.event(ev.Start(node.clock(self.now))))
        elif f.op == "rollback" and node:  # crash (if running), lose the newest blocks, restart
            if node.alive:
                node.crash()
                self._epoch[f.node] += 1
                self._backlog[f.node].clear()
            node.roll_back(int(f.value))
            node.restart()
            self._do(node, node.event(ev.Start(node.clock(self.now))))
        elif f.op == "pause" and node:
            node.paused = True
        elif f.op == "resume" and node and node.paused:
            node.paused = False
            backlog, self._backlog[f.node] = self._backlog[f.node], []
            for kind, data in backlog:  # what queued up while stopped, in order
                self._dispatch(kind, data)
        elif f.op == "partition":
            self.network.partition(f.groups, symmetric=f.symmetric)
        elif f.op == "isolate":
            self.network.isolate(f.node)
        elif f.op == "drop":
            self.network.drop(f.value)
        elif f.op == "duplicate":
            self.network.duplicate(f.value)
        elif f.op == "delay":
            self.network.delay(int(f.value))
        elif f.op == "heal":
            self.network.heal()
        elif f.op == "skew" and node:
            node.skew_ms = int(f.value)
        elif f.op == "advance":  # all clocks jump: days pass for the ledger, not for the network
            for n in self.nodes.values():
                n.skew_ms += int(f.value)
        elif f.op == "byzantine":
            if f.behaviour in ("", "none"):
                self.coalition.members.pop(f.node, None)
            else:
                self.coalition.members[f.node] = f.behaviour
        self._heal_ms = self.now
        self._heights_at_heal = {i: n.height for i, n in self.nodes.items()}
        self._faults_applied += 1
        self._last_fault_heals = heals(f)

    # ------------------------------------------------------------ stopping and results

    def _live_honest(self) -> list[SimNode]:
        return [n for i, n in self.nodes.items() if self.honest(i) and n.alive and not n.paused]

    def min_height(self) -> int:
        live = self._live_honest()
        return min((n.height for n in live), default=0)

    def _aimed_at(self, node: SimNode, env: codec.Envelope, to: str | None) -> list[str] | None:
        """Targeted equivocation: who an instance of an aimed member sends a consensus message
        of a round the member leads to (its side, and the rest of the coalition); other
        messages go where they were sent (so the second instance, which never saw its twin's
        block win, votes with everyone in the rounds after the split)."""
        if env.kind not in _STEP_OF or self.validators.proposer(env.body["height"], env.body["round"]) != node.me:
            return [to] if to else None
        chosen = self.aimed[node.me]
        bad = self.coalition.members
        if node.id == node.me:  # the first instance: the chosen nodes (precommits: the first alone)
            side = list(chosen[:1] if env.kind == codec.Kind.PRECOMMIT else chosen)
        else:
            side = [v for v in self.coalition.everyone if v not in chosen and v not in bad]
        side += [v for v in sorted(bad) if v != node.me]
        return [to] if to in side else [] if to else side

    def _cut_of(self, env: codec.Envelope) -> dict[str, int] | None:
        """Twins: the groups of the round partition covering this consensus message, if any,
        while it holds (limits.sim_round_cut_ms from the first message it applied to)."""
        step = _STEP_OF.get(env.kind)
        if step is None:
            return None
        key = (env.body["height"], env.body["round"], step)
        cut = self._round_cut.get(key)
        if cut is not None and self.now - self._cut_since.setdefault(key, self.now) > limits.sim_round_cut_ms:
            return None
        return cut

    def liveness_expected(self) -> bool:
        faulty = sum(self.validators.power(v) for v in {self._validator_of[i] for i, n in self.nodes.items()
                                                         if not self.honest(i) or not n.alive or n.paused})
        return not self.network.blocked and faulty <= types.max_faulty_power(self.validators.total_power)

    def liveness_met(self) -> bool:
        return all(n.height > self._heights_at_heal.get(n.id, 0) for n in self._live_honest())

    def _done(self) -> bool:
        # min_height() < heights without building the list (asked after every commit): a live
        # honest node below the target, or none at all (the minimum of nothing is 0)
        target, anyone = self.cfg.heights, False
        for i, n in self.nodes.items():
            if n.height < target:
                if n.alive and not n.paused and self.honest(i):
                    return False
            elif not anyone and n.alive and not n.paused and self.honest(i):
                anyone = True
        if not anyone and 0 < target:
            return False
        return not (self.cfg.faults and self.liveness_expected() and not self.liveness_met())

    def _result(self) -> SimResult:
        # since_ms: the last fault; healed: that fault ended a disturbance (liveness after a heal)
        live = {"expected": self.liveness_expected(), "bound_ms": self.liveness_bound_ms(),
                "since_ms": self._heal_ms, "met": self.liveness_met(), "faults_applied": self._faults_applied,
                "healed": self._last_fault_heals}
        if live["expected"] and not live["met"] and self.now >= self._heal_ms + self.liveness_bound_ms():
            self.checkers.fail("liveness", f"some live honest node decided nothing within "
                                           f"{self.liveness_bound_ms()} ms after {self._heal_ms} ms")
        stuck = sorted(n.id for n in self._live_honest() if n.height < self.cfg.heights)
        if (stuck and live["expected"] and self.cfg.faults and self.now >= self._heal_ms + self.liveness_bound_ms()
                and max(n.height for n in self._live_honest()) >= self.cfg.heights):
            self.checkers.fail("liveness", f"{', '.join(stuck)} still below height {self.cfg.heights} at "
                                           f"{self.now} ms, more than {self.liveness_bound_ms()} ms after the "
                                           f"last fault ({self._heal_ms} ms), while others reached it")
        if self.min_height() < self.cfg.heights and live["expected"] and not self.cfg.faults:
            self.checkers.fail("liveness", f"target height {self.cfg.heights} not reached by "
                                           f"{self.now} ms with no faults")
        dropped: dict[str, int] = {}
        for n in self.nodes.values():
            for k, v in n.dropped.items():
                dropped[k] = dropped.get(k, 0) + v
        summary = self.checkers.summary()
        return SimResult(
            ok=self.checkers.ok, checks=summary, virtual_ms=self.now,
            heights={i: n.height for i, n in self.nodes.items()},
            messages={**self.counts, **self.network.stats()},
            dropped={str(k): v for k, v in sorted(dropped.items())},
            evidence_committed=self.checkers.evidence, max_round=self.checkers.max_round,
            txs_committed=self.checkers.txs_accepted, trace_digest=self._trace.hexdigest(), liveness=live,
            faults=[f.describe() for f in sorted(self.cfg.faults, key=lambda f: f.at_ms)],
        )
