"""A simulated node: the same Replica and application as a live node, driven
by the simulator's virtual clock instead of asyncio and MQTT.

Crash = the Replica, application and mempool are dropped (volatile state
lost); the SimStore (decided blocks, double-sign guard) survives, exactly like
the SQLite store of a live node. Restart replays the stored blocks into a fresh
application and hands the replica its guard. A rolled-back restart (`roll_back`)
first loses the newest decided blocks, never the guard."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from consortium import codec, crypto, limits
from consortium.codec import Kind
from consortium.consensus import events as ev
from consortium.consensus.app import Application, BlockContext, TxResult
from consortium.consensus.messages import Decided
from consortium.consensus.replica import Guard, Replica, Restored
from consortium.consensus.sync import sync_reply
from consortium.consensus.validators import ValidatorSet
from consortium.errors import DecodeError

_SYNC_REQUEST = Kind.SYNC_REQUEST  # a module constant: an enum class attribute costs ~0.1 us per delivery
_VOTE_KINDS = {Kind.PREVOTE: Kind.PREVOTE, Kind.PRECOMMIT: Kind.PRECOMMIT}  # what Kind(str(kind)) decodes to
_UINT_MAX = 2**limits.codec_int_bits_max - 1  # codec's uint bound (64-bit ints)


@dataclass
class SimStore:
    """What survives a crash."""

    decided: list[Decided] = field(default_factory=list)
    results: list[tuple[TxResult, ...]] = field(default_factory=list)
    roots: list[bytes] = field(default_factory=list)
    guard: Guard | None = None


class FrameMemo:
    """Decoded and verified frames, shared by the nodes of one Simulation.

    A broadcast frame reaches n-1 nodes with the same bytes; each would decode it
    and verify its Ed25519 signature again. Decoding and verifying are pure
    functions of (frame, chain id, keys), and every node of a simulation has the
    same chain id and keys, so the first result serves them all: a forged or
    altered frame has other bytes, so it is looked up (and fails) on its own.
    Envelopes are frozen and never mutated, so sharing one is safe. Bounded: it
    forgets everything past limits.sim_frame_memo_max frames (a pure memo)."""

    __slots__ = ("_chain", "_keys", "_seen")

    def __init__(self, chain_id: str, keys: Mapping[str, bytes]) -> None:
        self._chain = chain_id
        self._keys = keys
        self._seen: dict[bytes, codec.Envelope | str] = {}

    def learn_vote(self, env: codec.Envelope, verified: crypto.VerifyMemo) -> None:
        """Remember, without decoding it, what decoding a vote frame a node of this simulation
        sends will give: the envelope `decode_envelope` returns, field for field (the body as
        a canonical decode orders it). Only when every check of the decoder provably passes:
        the frame is the canonical encoding of these fields (rebuilt from them and compared,
        a fresh canonical encoding of plain values cannot be refused as non-canonical), the
        body's shape (uint height and round, nil or a 32-byte block id), the version, chain,
        a known sender with an id and frame within their bounds, and a signature `verified`
        holds as valid under the sender's key (the Signer taught it, Ed25519 is correct; the
        decoder's own check would find it there). Anything else (a forged or altered frame,
        another key, a frame the memo forgot) is decoded as before, on delivery.
        tests/sim/test_sim_fast.py compares the two."""
        frame = env.frame
        if env.kind not in _VOTE_KINDS or not frame or frame in self._seen:
            return
        body, sender, sig = env.body, env.sender, env.signature
        if type(body) is not dict or len(body) != 3:
            return
        height, rnd, block_id = body.get("height"), body.get("round"), body.get("block_id", b"")
        key = self._keys.get(sender) if type(sender) is str else None
        if (key is None or type(height) is not int or type(rnd) is not int or not 0 <= height <= _UINT_MAX
                or not 0 <= rnd <= _UINT_MAX or not (block_id is None or (type(block_id) is bytes
                                                                       and len(block_id) == limits.digest_bytes))
                or env.version != codec.VERSION or env.chain != self._chain or type(sig) is not bytes
                or len(sig) != limits.signature_bytes
                or len(sender) > limits.member_id_bytes_max or len(self._chain) > limits.chain_id_bytes_max
                or len(frame) > limits.codec_str_bytes_max):
            return
        signing = codec.vote_signing_bytes(self._chain, sender, env.kind, height, rnd, block_id)
        if (key, signing, sig) not in verified.valid or codec.frame_of(signing, sig) != frame:
            return
        if len(self._seen) >= limits.sim_frame_memo_max:
            self._seen.clear()
        self._seen[frame] = codec.Envelope(codec.VERSION, self._chain, sender, _VOTE_KINDS[env.kind],
                                           {"block_id": block_id, "height": height, "round": rnd}, sig, frame)

    def decode(self, frame: bytes) -> codec.Envelope | str:
        """The envelope, or the DecodeError reason it fails with."""
        got = self._seen.get(frame)
        if got is None:
            try:
                got = codec.decode_envelope(frame, chain_id=self._chain, keys=self._keys)
            except DecodeError as exc:
                got = str(exc.reason)
            if len(self._seen) >= limits.sim_frame_memo_max:
                self._seen.clear()
            self._seen[frame] = got
        return got


@dataclass(frozen=True, slots=True)
class NodeConfig:
    chain_id: str
    validators: ValidatorSet
    keys: Mapping[str, bytes]  # everyone who may sign frames
    params: Mapping[str, int]
    genesis_time_ms: int
    app_factory: Callable[[], Application]
    frames: FrameMemo | None = None  # shared decoding (see FrameMemo); None: each node decodes alone


class SimNode:
    """`ident` is the validator this node signs as; `instance` its id in the simulator
    (a twin, the second instance of a validator, has its own; see Simulation)."""

    def __init__(self, ident: str, keypair: crypto.KeyPair, cfg: NodeConfig, instance: str = "") -> None:
        self.id = instance or ident
        self.id_bytes = self.id.encode()  # as the trace records it
        self.me = ident
        self.keypair = keypair
        self.signer = crypto.Signer(keypair)
        self.cfg = cfg
        self.store = SimStore()
        self.alive = True
        self.paused = False
        self.skew_ms = 0
        self.dropped: dict[str, int] = {}
        self.replica, self.app = self._boot()

    # ------------------------------------------------------------ life cycle

    def _boot(self) -> tuple[Replica, Application]:
        app = self.cfg.app_factory()
        for d in self.store.decided:  # replay the store: same blocks, same state
            app.apply_block(BlockContext(d.block.height, d.block.time_ms, d.block.proposer), d.block.txs)
        last = self.store.decided[-1] if self.store.decided else None
        replica = Replica(
            chain_id=self.cfg.chain_id, validators=self.cfg.validators, me=self.me, signer=self.signer,
            app=app, params=self.cfg.params, genesis_time_ms=self.cfg.genesis_time_ms,
            restored=Restored(last, self.store.guard),
        )
        return replica, app

    def crash(self) -> None:
        self.alive = False

    def roll_back(self, blocks: int) -> None:
        """The block store as it was `blocks` decided blocks ago (a crashed node whose store
        comes back from an older snapshot, or lost its unsynced tail). The double-sign guard
        is not rolled back: it is a file of its own, written and synced before every
        signature (like CometBFT's priv_validator_state.json beside its block store), so
        an old copy of the block store leaves it current. What the guard must then
        survive: heights below it decided again through sync, never signed again."""
        assert not self.alive, "roll back a crashed node's store"
        keep = max(0, self.height - blocks)
        del self.store.decided[keep:], self.store.results[keep:], self.store.roots[keep:]

    def restart(self) -> None:
        self.replica, self.app = self._boot()
        self.alive = True
        self.paused = False

    @property
    def height(self) -> int:
        """Last decided height."""
        return len(self.store.decided)

    def clock(self, virtual_ms: int) -> int:
        """This node's wall clock: genesis time + virtual time + its skew."""
        return self.cfg.genesis_time_ms + virtual_ms + self.skew_ms

    # ------------------------------------------------------------ inputs

    def deliver(self, frame: bytes, now_ms: int) -> list[ev.Action]:
        """A frame arrives from the network: check it like the bus adapter does."""
        frames = self.cfg.frames
        if frames is not None:
            got = frames._seen.get(frame)  # FrameMemo.decode's lookup, inlined (n^2 deliveries per height)
            if got is None:
                got = frames.decode(frame)
        else:
            try:
                got = codec.decode_envelope(frame, chain_id=self.cfg.chain_id, keys=self.cfg.keys)
            except DecodeError as exc:
                got = str(exc.reason)
        if isinstance(got, str):
            self.dropped[got] = self.dropped.get(got, 0) + 1
            return []
        if got.kind is _SYNC_REQUEST:  # decoded kinds are Kind members
            return self._serve_sync(got)
        return self.replica.receive(got, now_ms)  # step(Received(got, now_ms)), no event object

    def event(self, event: ev.Event) -> list[ev.Action]:
        return self.replica.step(event)

    # step(TimeoutFired(...)) and step(TxSubmitted(...)) without building the event (millions per run)

    def timeout(self, kind: ev.TimeoutKind, height: int, rnd: int, now_ms: int) -> list[ev.Action]:
        return self.replica.timeout(kind, height, rnd, now_ms)

    def admit(self, tx: bytes, now_ms: int) -> list[ev.Action]:
        return self.replica.admit(tx, now_ms)

    def _serve_sync(self, env: codec.Envelope) -> list[ev.Action]:
        """The driver answers sync requests from its store (the replica has none)."""
        reply = sync_reply(self.cfg.chain_id, self.me, self.signer, env, self.height,
                           lambda h: self.store.decided[h - 1].to_wire())
        return [] if reply is None else [reply]

    # ------------------------------------------------------------ durable effects

    def persist(self, action: ev.Persist | ev.Commit) -> None:
        if isinstance(action, ev.Persist):
            g = self.replica.guard  # the Guard this Persist was made from, unless a later one replaced it
            if (g is None or g.payload is not action.payload or g.lock is not action.lock or g.height != action.height
                    or g.round != action.round or g.step != action.step):
                g = Guard(action.height, action.round, action.step, action.payload, action.lock)
            self.store.guard = g
        else:
            assert action.block.height == self.height + 1, "commits are contiguous"
            self.store.decided.append(Decided(action.block, action.certificate))
            self.store.results.append(action.results)
            self.store.roots.append(action.state_root)
