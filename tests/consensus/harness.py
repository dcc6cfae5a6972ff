"""A scripted consensus network, in the spirit of etcd-io/raft's `network` test harness.

N replicas wired in memory, no simulator heap, no clock but `Network.now`. What a
replica does is captured, never carried out behind the test's back:

- every frame sits in `Network.inflight` (a visible list of `Msg`) until the test
  delivers, drops or reorders it;
- every timer a replica arms sits in `Network.timers` until the test fires it;
- `Persist` and `Commit` go to the node's `Store` (what survives a restart), evidence
  reports to `Store.evidence`; every action list is kept in `Network.log`.

Validators are "a", "b", "c", ... (equal power 10 unless `powers` is given). Only the
`live` ones run a Replica; the others are puppets: nothing is delivered to them and
the test signs their messages itself (`sign_vote`, `sign_proposal`), which is how a
test plays a slow, absent or Byzantine validator.

Every action list any replica returns is checked by a `SigningAudit` (the driver
contract of `consortium.consensus.events`): a signed proposal or vote leaves only
after a `Persist` that covers exactly its (height, round, step) and value, persisted
slots strictly increase, and a node never signs two different frames for one slot.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from consortium import codec, crypto
from consortium.codec import Kind
from consortium.consensus import events as ev
from consortium.consensus.app import BlockContext
from consortium.consensus.messages import (
    ZERO_ID,
    Block,
    Certificate,
    Decided,
    DuplicateVote,
    sign_proposal,
    sign_vote,
)
from consortium.consensus.replica import Guard, Replica, Restored
from consortium.consensus.sync import sync_reply
from consortium.consensus.validators import Validator, ValidatorSet
from consortium.errors import DecodeError
from consortium.genesis import DEFAULT_GENESIS_TIME_MS, default_params
from consortium.sim.kvapp import KVApp

Step = ev.Step
TK = ev.TimeoutKind
PROPOSAL, PREVOTE, PRECOMMIT = Kind.PROPOSAL, Kind.PREVOTE, Kind.PRECOMMIT
NIL = None  # a vote for no block

CHAIN = "harness"
T0 = DEFAULT_GENESIS_TIME_MS + 1_000
NAMES = "abcdefghijklmnop"
SIGNED_KINDS = {PROPOSAL: Step.PROPOSE, PREVOTE: Step.PREVOTE, PRECOMMIT: Step.PRECOMMIT}

Slot = tuple[int, int, int]  # (height, round, step)


def slot_of(env: codec.Envelope) -> Slot:
    """The (height, round, step) a proposal or vote is signed for."""
    return (env.body["height"], env.body["round"], int(SIGNED_KINDS[env.kind]))


def value_of(env: codec.Envelope) -> bytes | None:
    """What a vote is for (None: nil), or the id of a proposal's block."""
    if env.kind == PROPOSAL:
        return Block.from_wire(env.body["block"]).id
    block_id: bytes | None = env.body["block_id"]
    return block_id


# ------------------------------------------------------------------ reading action lists


def sent(actions: Iterable[ev.Action], kind: Kind | None = None) -> list[codec.Envelope]:
    """Every envelope an action list puts on the wire (Broadcast or SendTo), in order."""
    out = [a.envelope for a in actions if isinstance(a, ev.Broadcast | ev.SendTo)]
    return [e for e in out if kind is None or e.kind == kind]


def sent_votes(actions: Iterable[ev.Action], kind: Kind) -> list[tuple[int, bytes | None]]:
    """(round, block_id) of every vote of `kind` in an action list."""
    return [(e.body["round"], e.body["block_id"]) for e in sent(actions, kind)]


def armed(actions: Iterable[ev.Action], kind: ev.TimeoutKind) -> list[ev.ScheduleTimeout]:
    return [a for a in actions if isinstance(a, ev.ScheduleTimeout) and a.kind == kind]


def commits(actions: Iterable[ev.Action]) -> list[ev.Commit]:
    return [a for a in actions if isinstance(a, ev.Commit)]


# ------------------------------------------------------------------ the signing audit


class SigningAudit:
    """Checks the driver contract on every action list a replica returns.

    For each node, over its whole life (restarts included):
    - every proposal or vote it sends (Broadcast or SendTo, first send or re-send) was
      covered, earlier in the same list or in an earlier list, by a `Persist` for
      exactly that (height, round, step) whose payload holds that exact frame;
    - the slots it persists strictly increase (never sign at or before the last slot);
    - it never sends two different frames for one (height, round, step).
    """

    def __init__(self) -> None:
        self.covered: dict[str, dict[bytes, Slot]] = {}  # node -> frame -> slot of its covering Persist
        self.last_slot: dict[str, Slot] = {}
        self.signed: dict[str, dict[Slot, codec.Envelope]] = {}
        self.lists = 0  # action lists checked
        self.frames = 0  # signed frames checked (first sends and re-sends)

    def check(self, node: str, actions: Sequence[ev.Action]) -> None:
        self.lists += 1
        covered = self.covered.setdefault(node, {})
        mine = self.signed.setdefault(node, {})
        for i, a in enumerate(actions):
            if isinstance(a, ev.Persist):
                slot = (a.height, a.round, int(a.step))
                last = self.last_slot.get(node)
                assert last is None or slot > last, f"{node}: Persist {slot} not after {last} (action {i})"
                self.last_slot[node] = slot
                for frame in codec.decode(a.payload):
                    env = codec.decode_unverified(frame)
                    if env.sender == node and env.kind in SIGNED_KINDS and slot_of(env) == slot:
                        covered.setdefault(frame, slot)
            elif isinstance(a, ev.Broadcast | ev.SendTo):
                env = a.envelope
                if env.sender != node or env.kind not in SIGNED_KINDS:
                    continue
                self.frames += 1
                frame, slot = env.encode(), slot_of(env)
                assert covered.get(frame) == slot, (
                    f"{node}: {env.kind} {slot} value {_hex(value_of(env))} sent (action {i} of "
                    f"{[type(x).__name__ for x in actions]}) without an earlier Persist covering it")
                first = mine.setdefault(slot, env)
                assert first.encode() == frame, f"{node}: two different frames signed for {slot}"


def _hex(v: bytes | None) -> str:
    return "nil" if v is None else v.hex()[:8]


# ------------------------------------------------------------------ the network


@dataclass(frozen=True, slots=True)
class Msg:
    """One frame in flight from `src` to `dst`."""

    src: str
    dst: str
    env: codec.Envelope

    @property
    def kind(self) -> Kind:
        return self.env.kind

    @property
    def height(self) -> int | None:
        return self.env.body.get("height") if isinstance(self.env.body, dict) else None

    @property
    def round(self) -> int | None:
        return self.env.body.get("round") if isinstance(self.env.body, dict) else None

    @property
    def value(self) -> bytes | None:
        return value_of(self.env)

    def __repr__(self) -> str:
        where = f" h{self.height} r{self.round}" if self.kind in SIGNED_KINDS else ""
        val = f" {_hex(self.value)}" if self.kind in SIGNED_KINDS else ""
        return f"<{self.src}->{self.dst} {self.kind}{where}{val}>"


@dataclass(frozen=True, slots=True)
class Armed:
    """A timer a replica asked for, at `at_ms`."""

    at_ms: int
    timeout: ev.ScheduleTimeout


@dataclass
class Store:
    """What a node keeps across a restart: the guard and the decided blocks."""

    guard: Guard | None = None
    decided: list[Decided] = field(default_factory=list)
    evidence: list[DuplicateVote] = field(default_factory=list)  # ReportEvidence, in order


@dataclass(frozen=True, slots=True)
class View:
    """A replica's consensus variables, as the paper names them."""

    height: int
    round: int
    step: Step
    locked_round: int
    locked: bytes | None  # id of lockedValue
    valid_round: int
    valid: bytes | None  # id of validValue
    waiting: bool  # between a decision and round 0 of the next height


Filter = Callable[[Msg], bool]


class Network:
    def __init__(self, n: int = 4, *, powers: Sequence[int] | None = None,
                 live: Iterable[str] | None = None, now_ms: int = T0) -> None:
        assert powers is None or len(powers) == n
        self.ids = list(NAMES[:n])
        self.keys = {i: crypto.keypair_from_entropy(f"harness:{i}".encode()) for i in self.ids}
        self.signers = {i: crypto.Signer(k) for i, k in self.keys.items()}
        self.validators = ValidatorSet.of(
            Validator(i, powers[k] if powers else 10, self.keys[i].public_key) for k, i in enumerate(self.ids))
        self.live = sorted(self.ids if live is None else live)
        assert set(self.live) <= set(self.ids)
        self.params = default_params()
        self.now = now_ms
        self.audit = SigningAudit()
        self.inflight: list[Msg] = []
        self.timers: dict[str, list[Armed]] = {i: [] for i in self.live}
        self.stores: dict[str, Store] = {i: Store() for i in self.live}
        self.log: dict[str, list[list[ev.Action]]] = {i: [] for i in self.live}
        self.refused: list[tuple[Msg, str]] = []  # frames the driver's envelope check refused
        self.isolated: set[str] = set()
        self.replicas: dict[str, Replica] = {i: self._boot(i) for i in self.live}

    # ------------------------------------------------------------ names

    def proposer(self, round: int, height: int = 1) -> str:
        return self.validators.proposer(height, round)

    # ------------------------------------------------------------ life cycle

    def _boot(self, node: str) -> Replica:
        store = self.stores[node]
        app = KVApp()
        for d in store.decided:
            app.apply_block(BlockContext(d.block.height, d.block.time_ms, d.block.proposer), d.block.txs)
        return Replica(chain_id=CHAIN, validators=self.validators, me=node, signer=self.signers[node], app=app,
                       params=self.params, genesis_time_ms=DEFAULT_GENESIS_TIME_MS,
                       restored=Restored(store.decided[-1] if store.decided else None, store.guard))

    def start(self, *nodes: str) -> dict[str, list[ev.Action]]:
        return {i: self.step(i, ev.Start(self.now)) for i in (nodes or self.live)}

    def restart(self, node: str) -> list[ev.Action]:
        """Crash `node` and start it again from its Store (decided blocks and guard).
        Its armed timers die with it; frames in flight to it are kept."""
        self.timers[node] = []
        self.replicas[node] = self._boot(node)
        return self.step(node, ev.Start(self.now))

    # ------------------------------------------------------------ the driver

    def step(self, node: str, event: ev.Event) -> list[ev.Action]:
        """Step one replica, audit its action list, then carry it out in order."""
        actions = self.replicas[node].step(event)
        self.audit.check(node, actions)
        self.log[node].append(actions)
        store = self.stores[node]
        for a in actions:
            if isinstance(a, ev.Persist):
                store.guard = Guard(a.height, a.round, a.step, a.payload, a.lock)
            elif isinstance(a, ev.Commit):
                assert a.block.height == len(store.decided) + 1, "commits are contiguous"
                store.decided.append(Decided(a.block, a.certificate))
            elif isinstance(a, ev.Broadcast):
                self.send(a.envelope, src=node)
            elif isinstance(a, ev.SendTo):
                self.send(a.envelope, to=a.to, src=node)
            elif isinstance(a, ev.ScheduleTimeout):
                self.timers[node].append(Armed(self.now, a))
            elif isinstance(a, ev.ReportEvidence):
                store.evidence.append(a.evidence)
        return actions

    def send(self, env: codec.Envelope, to: str | Iterable[str] | None = None, *, src: str | None = None) -> None:
        """Put a frame in flight: to `to` (default: every live node but its sender)."""
        src = src or env.sender
        dsts = [to] if isinstance(to, str) else list(to) if to is not None else self.live
        for dst in dsts:
            if dst != src and dst in self.replicas and not {src, dst} & self.isolated:
                self.inflight.append(Msg(src, dst, env))

    def receive(self, node: str, *envs: codec.Envelope) -> list[ev.Action]:
        """`node` receives these frames now, bypassing the in-flight list."""
        out: list[ev.Action] = []
        for env in envs:
            out += self._deliver(Msg(env.sender, node, env))
        return out

    def _deliver(self, m: Msg) -> list[ev.Action]:
        """What the live driver does with a frame: check it all the way to the
        signature, answer sync requests from the store, hand the rest to the replica."""
        keys = {v.id: v.public_key for v in self.validators.validators}
        try:
            env = codec.decode_envelope(m.env.encode(), chain_id=CHAIN, keys=keys)
        except DecodeError as exc:
            self.refused.append((m, exc.reason))
            return []
        if env.kind == Kind.SYNC_REQUEST:
            decided = self.stores[m.dst].decided
            reply = sync_reply(CHAIN, m.dst, self.signers[m.dst], env, len(decided),
                               lambda h: decided[h - 1].to_wire())
            if reply is not None:
                self.send(reply.envelope, to=reply.to, src=m.dst)
            return []
        return self.step(m.dst, ev.Received(env, self.now))

    # ------------------------------------------------------------ the verbs

    def pending(self, *, kind: Kind | None = None, src: str | None = None, dst: str | None = None,
                height: int | None = None, round: int | None = None, where: Filter | None = None) -> list[Msg]:
        """The in-flight messages matching every given filter, oldest first."""
        return [m for m in self.inflight
                if (kind is None or m.kind == kind) and (src is None or m.src == src)
                and (dst is None or m.dst == dst) and (height is None or m.height == height)
                and (round is None or m.round == round) and (where is None or where(m))]

    def deliver(self, **filters: Any) -> list[Msg]:
        """Deliver the in-flight messages matching `filters` (see `pending`), oldest
        first. What they cause goes in flight but is not delivered by this call."""
        batch = self.pending(**filters)
        self.deliver_in_order(batch)
        return batch

    def deliver_in_order(self, msgs: Sequence[Msg]) -> None:
        """Reorder: deliver exactly these in-flight messages, in this order."""
        for m in msgs:
            self.inflight.remove(m)
        for m in msgs:
            self._deliver(m)

    def drop(self, **filters: Any) -> list[Msg]:
        """Lose the in-flight messages matching `filters`."""
        batch = self.pending(**filters)
        for m in batch:
            self.inflight.remove(m)
        return batch

    def settle(self, steps_max: int = 100_000) -> int:
        """Deliver everything in flight, and what that causes, until nothing is left."""
        for n in range(steps_max):
            if not self.inflight:
                return n
            self._deliver(self.inflight.pop(0))
        raise AssertionError(f"still {len(self.inflight)} messages in flight after {steps_max} deliveries")

    def isolate(self, node: str) -> None:
        """Cut `node` off: frames to or from it are lost until `heal`."""
        self.isolated.add(node)
        self.inflight = [m for m in self.inflight if node not in (m.src, m.dst)]

    def heal(self) -> None:
        self.isolated.clear()

    def armed(self, node: str, kind: ev.TimeoutKind | None = None) -> list[ev.ScheduleTimeout]:
        """The timers `node` armed that have not fired yet, oldest first."""
        return [a.timeout for a in self.timers[node] if kind is None or a.timeout.kind == kind]

    def fire_timeout(self, node: str, kind: ev.TimeoutKind, *, round: int | None = None) -> list[ev.Action]:
        """Fire the latest timer of `kind` that `node` armed (in `round` if given).
        Time moves on to when it was due. Fails if no such timer is armed."""
        match = [a for a in self.timers[node]
                 if a.timeout.kind == kind and (round is None or a.timeout.round == round)]
        assert match, f"{node} has no {kind} timeout armed (round {round}): {self.armed(node)}"
        a = match[-1]
        self.timers[node].remove(a)
        self.now = max(self.now, a.at_ms + a.timeout.delay_ms)
        t = a.timeout
        return self.step(node, ev.TimeoutFired(t.kind, t.height, t.round, self.now))

    def fire(self, node: str, kind: ev.TimeoutKind, *, round: int, height: int | None = None) -> list[ev.Action]:
        """Deliver a TimeoutFired whether or not it is armed (a stale or late timer)."""
        h = self.replicas[node].height if height is None else height
        return self.step(node, ev.TimeoutFired(kind, h, round, self.now))

    def fire_all(self, kind: ev.TimeoutKind) -> None:
        """Fire the latest timer of `kind` on every live node that has one."""
        for node in self.live:
            if self.armed(node, kind):
                self.fire_timeout(node, kind)

    def submit(self, tx: bytes, *nodes: str) -> None:
        for node in nodes or self.live:
            self.step(node, ev.TxSubmitted(tx, self.now))

    # ------------------------------------------------------------ inspection

    def view(self, node: str) -> View:
        r = self.replicas[node]
        return View(r.height, r.round, r.round_step, r.locked_round, r.locked.id if r.locked else None,
                    r.valid_round, r.valid_value.id if r.valid_value else None, r.waiting)

    def signed(self, node: str, kind: Kind, height: int = 1) -> dict[int, bytes | None]:
        """round -> value of every `kind` that `node` ever signed at `height` (a
        vote's block id, nil as None; a proposal's block id)."""
        step = int(SIGNED_KINDS[kind])
        mine = self.audit.signed.get(node, {})
        return {s[1]: value_of(env) for s, env in sorted(mine.items()) if s[0] == height and s[2] == step}

    def actions(self, node: str) -> list[ev.Action]:
        """Every action `node` returned, across all its steps."""
        return [a for step in self.log[node] for a in step]

    def decided(self, node: str) -> list[Block]:
        return [d.block for d in self.stores[node].decided]

    # ------------------------------------------------------------ signing for puppets

    def sign_vote(self, by: str, kind: Kind, round: int, block_id: bytes | None, *,
                  height: int = 1) -> codec.Envelope:
        return sign_vote(CHAIN, self.signers[by], by, kind, height, round, block_id).envelope(CHAIN)

    def sign_votes(self, kind: Kind, round: int, block_id: bytes | None, by: Iterable[str], *,
                   height: int = 1) -> list[codec.Envelope]:
        return [self.sign_vote(v, kind, round, block_id, height=height) for v in by]

    def pol(self, round: int, block: Block, by: Iterable[str]) -> tuple[tuple[str, bytes], ...]:
        """A proof of lock: the prevote signatures of `by` for `block` in `round`."""
        votes = [sign_vote(CHAIN, self.signers[v], v, PREVOTE, block.height, round, block.id) for v in by]
        return tuple(sorted((v.validator, v.signature) for v in votes))

    def sign_proposal(self, round: int, block: Block, *, valid_round: int = -1,
                      pol: tuple[tuple[str, bytes], ...] = (), by: str | None = None) -> codec.Envelope:
        """A proposal of `block` in `round`, signed by that round's proposer (or `by`)."""
        by = by or self.proposer(round, block.height)
        return sign_proposal(CHAIN, self.signers[by], by, block.height, round, valid_round, block,
                             pol).envelope(CHAIN)

    def certificate(self, block: Block, by: Iterable[str], *, round: int = 0) -> Certificate:
        votes = [sign_vote(CHAIN, self.signers[v], v, PRECOMMIT, block.height, round, block.id) for v in by]
        return Certificate(block.height, round, block.id, tuple(sorted((v.validator, v.signature) for v in votes)))

    def sync_response(self, by: str, blocks: list[Any]) -> codec.Envelope:
        """A SYNC_RESPONSE from `by` holding these wire items (normally Decided.to_wire())."""
        return codec.seal_envelope(CHAIN, by, Kind.SYNC_RESPONSE, {"blocks": blocks}, self.signers[by])

    def block(self, *, chain: Sequence[Decided] | None = None, proposer: str | None = None,
              txs: Sequence[bytes] = (), time_ms: int | None = None, **changes: Any) -> Block:
        """A valid block on top of `chain` (default: what the first live node decided);
        `changes` overrides fields afterwards (to make it invalid)."""
        if chain is None:
            chain = self.stores[self.live[0]].decided if self.live else []
        app = KVApp()
        for d in chain:
            app.apply_block(BlockContext(d.block.height, d.block.time_ms, d.block.proposer), d.block.txs)
        prev = chain[-1] if chain else None
        prev_time = prev.block.time_ms if prev else DEFAULT_GENESIS_TIME_MS
        height = len(chain) + 1
        b = Block(height=height, time_ms=time_ms if time_ms is not None else max(self.now, prev_time + 1),
                  proposer=proposer or self.proposer(0, height), prev_id=prev.block.id if prev else ZERO_ID,
                  app_hash=app.state_root(), last_commit=prev.certificate if prev else None,
                  evidence=(), txs=tuple(txs))
        return dataclasses.replace(b, id=b"", **changes) if changes else b
