"""The Ledger: consortium.consensus.app.Application over the trade state machine.

Theory of operation, per transaction of a decided block (apply_block):

    1. decode (shape, body rules, plaintext mainland PII)   -> BENV / INCD / PII
    2. chain id is ours                                       -> BENV
    3. the actor is registered with a key; signature verifies -> BSIG
    4. the nonce is fresh (tx.py, replay protection)          -> DUPE
       -- from here on the nonce is consumed, accepted or not --
    5. the actor's role may submit this kind                  -> ROLE
    6. the kind's rule, atomically (state transaction)        -> OK or a reason code

Steps 1-3 are stateless validity (check_block: a block holding such a tx is
invalid); check_tx runs 1-5 against the committed state without changing it.
Decoding and signature verification are pure functions of the bytes (and the
signer's fixed key), so their outcome is memoised by the tx bytes themselves (a
bytes object caches its hash: the mempool's re-checks after every commit look a
tx up without hashing it again) in a bounded FIFO, with the tx hash: check_block
then apply_block verify each signature once. The memo never affects results,
only speed.
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from consortium import crypto, limits
from consortium.consensus.app import BlockContext, TxResult
from consortium.genesis import Genesis
from consortium.ledger import banking, rules
from consortium.ledger import records as r
from consortium.ledger import state as t
from consortium.ledger.banking import local_date
from consortium.ledger.bodies import RegisterParty
from consortium.ledger.codes import Code
from consortium.ledger.fields import TxError
from consortium.ledger.rules import Ctx, Reject
from consortium.ledger.state import State
from consortium.ledger.tx import Tx, decode_tx
from consortium.types import Role

MEMO_MAX = limits.mempool_txs_max  # decoded/verified txs kept; FIFO eviction
_NO_NONCES = r.NonceWindow(floor=-1, used=())
_OK = str(Code.OK)


@dataclass(slots=True)
class _Memo:
    tx: Tx | None
    error: TxError | None
    hash: bytes  # SHA-256 of the tx bytes (TxResult.tx_hash)
    verified_key: bytes | None = None


class Ledger:
    """One node's ledger. Deterministic in (genesis, sequence of applied blocks)."""

    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.state = State()
        # tx bytes -> decoded, hash, verified key. An OrderedDict: a plain dict's oldest key
        # (next(iter(d))) is found by scanning past the slots of every key deleted before it,
        # which made a full memo's FIFO eviction ~8 us per tx at a live node (0.3 us here).
        self._memo: collections.OrderedDict[bytes, _Memo] = collections.OrderedDict()
        #: Scratch space for invariants.check_invariants (not state; see there).
        self.invariant_cache: dict[bytes, bool] = {}
        self.invariant_warm = False
        self._install_genesis()

    def _install_genesis(self) -> None:
        for m in self.genesis.members:
            self.state.put(t.PARTY, m.id, r.PartyRecord(id=m.id, name=m.name, role=m.role.value,
                                                  jurisdiction=m.jurisdiction.value, public_key=m.public_key,
                                                  member=True, registered_by="genesis", height=0))
        for p in self.genesis.parties:
            assert self.state.get(t.PARTY, p.id) is None, f"party {p.id} is also a member"
            self.state.put(t.PARTY, p.id, r.PartyRecord(id=p.id, name=p.name, role=p.role.value,
                                                  jurisdiction=p.jurisdiction.value, public_key=p.public_key,
                                                  member=False, registered_by="genesis", height=0))
        self.state.put(t.META, "chain", r.Meta(height=0, time_ms=self.genesis.genesis_time_ms))
        for cal in banking.records(self.genesis.calendars):  # UCP 600 banking days, pinned
            self.state.put(t.CAL, cal.jurisdiction, cal)

    # ---------------------------------------------------------------- Application

    def check_tx(self, tx: bytes) -> str | None:
        try:
            decoded, actor = self._signed(tx)
            self._check_nonce(decoded)
            self._check_role_of(decoded, actor)
        except (TxError, Reject) as exc:
            return str(exc.code)
        return None

    def check_block(self, ctx: BlockContext, txs: Sequence[bytes]) -> str | None:
        if len(txs) > limits.block_txs_max or sum(len(x) for x in txs) > limits.block_bytes_max:
            return str(Code.BENV)
        registered: dict[str, bytes] = {}  # parties registered earlier in this block
        memo_of = self._memo.get
        for raw in txs:
            # _authentic(raw, registered), its common case inlined: a tx the memo holds,
            # decoded, ours, from a registered actor whose key it was verified with
            memo = memo_of(raw) if type(raw) is bytes else None
            tx = None
            if memo is not None and memo.tx is not None and memo.tx.chain_id == self.chain_id \
                    and memo.verified_key is not None:
                actor = self.state.get(t.PARTY, memo.tx.actor)
                if actor is not None and actor.public_key == memo.verified_key:
                    tx = memo.tx
            if tx is None:
                try:
                    tx = self._authentic(raw, registered)
                except TxError as exc:
                    return str(exc.code)
            if isinstance(tx.body, RegisterParty) and self._may_register(tx.actor):
                registered.setdefault(tx.body.party_id, tx.body.public_key)
        return None

    def apply_block(self, ctx: BlockContext, txs: Sequence[bytes]) -> list[TxResult]:
        today = local_date(ctx.time_ms)
        results = [self._apply_one(ctx, today, raw) for raw in txs]
        self.state.put(t.META, "chain", r.Meta(height=ctx.height, time_ms=ctx.time_ms))
        return results

    def state_root(self) -> bytes:
        return self.state.root()

    def snapshot(self) -> bytes:
        return self.state.snapshot(self.chain_id)

    def restore(self, snapshot: bytes) -> None:
        self.state = State.restore(snapshot, self.chain_id)
        self.invariant_cache.clear()
        self.invariant_warm = False

    # ---------------------------------------------------------------- one transaction

    def _apply_one(self, ctx: BlockContext, today: dt.date, raw: bytes) -> TxResult:
        if not isinstance(raw, bytes):
            return TxResult(bytes(32), str(Code.BENV), "transaction is not bytes")
        try:
            tx, actor = self._signed(raw)  # what _decoded + _verified(memo, {}) did
            window = self._check_nonce(tx)
        except (TxError, Reject) as exc:
            return TxResult(self._memo[raw].hash, str(exc.code), exc.detail)
        state = self.state
        state.put(t.NONCE, tx.actor, (window or _NO_NONCES).spend(tx.nonce))  # consumed
        c = Ctx.of(ctx.height, ctx.time_ms, today, tx)
        state.begin()
        try:
            self._check_role_of(tx, actor)  # the nonce write above leaves parties as read
            rules.HANDLERS[tx.kind](state, c, tx.body)
        except Reject as exc:
            state.rollback()
            return TxResult(tx.hash, str(exc.code), exc.detail)
        except Exception as exc:  # a bug: keep the node alive, keep nodes in step
            state.rollback()
            # Only the type: a message may hold addresses or other node-local text.
            return TxResult(tx.hash, str(Code.INTERNAL), f"internal error {type(exc).__name__} in {tx.kind}")
        state.commit()
        return TxResult(tx.hash, _OK, "")

    def _signed(self, raw: bytes) -> tuple[Tx, r.PartyRecord]:
        """_authentic(raw, {}) and the actor's record, which then exists: one memo lookup
        and one read of the actor for admission and apply."""
        if not isinstance(raw, bytes):
            raise TxError(Code.BENV, "transaction is not bytes")
        memo = self._memo.get(raw)
        if memo is None:
            memo = self._decode(raw)
        tx = memo.tx
        if tx is None:
            assert memo.error is not None
            raise memo.error
        actor = self.state.get(t.PARTY, tx.actor)
        self._signed_with(memo, tx, actor.public_key if actor is not None else b"")
        assert actor is not None
        return tx, actor

    def _authentic(self, raw: bytes, registered: dict[str, bytes]) -> Tx:
        """Steps 1-3: decoded, ours, signed by its registered actor (memoised)."""
        if not isinstance(raw, bytes):
            raise TxError(Code.BENV, "transaction is not bytes")
        return self._verified(self._decoded(raw), registered)

    def _decoded(self, raw: bytes) -> _Memo:
        """Step 1, memoised by the bytes."""
        memo = self._memo.get(raw)
        if memo is None:
            memo = self._decode(raw)
        return memo

    def _decode(self, raw: bytes) -> _Memo:
        """Step 1 for bytes the memo does not hold; remembered."""
        try:
            tx = decode_tx(raw, self.genesis.privacy)
            memo = _Memo(tx, None, tx.hash)
        except TxError as exc:
            memo = _Memo(None, exc, crypto.digest(raw))
        self._remember(raw, memo)
        return memo

    def _verified(self, memo: _Memo, registered: dict[str, bytes]) -> Tx:
        """Steps 2-3 for a decoded tx (the signature check memoised per key)."""
        if memo.tx is None:
            assert memo.error is not None
            raise memo.error
        tx = memo.tx
        actor = self.state.get(t.PARTY, tx.actor)
        self._signed_with(memo, tx, actor.public_key if actor is not None else registered.get(tx.actor, b""))
        return tx

    def _signed_with(self, memo: _Memo, tx: Tx, key: bytes) -> None:
        """Steps 2-3: our chain's, signed with `key`, the actor's registered key (b"": none);
        the check is memoised per key."""
        if tx.chain_id != self.chain_id:
            raise TxError(Code.BENV, f"transaction for chain {tx.chain_id!r}, this is {self.chain_id!r}")
        if not key:
            raise TxError(Code.BSIG, f"{tx.actor} has no registered key")
        if memo.verified_key != key:
            if not tx.signed_by(key):
                raise TxError(Code.BSIG, f"signature does not verify with {tx.actor}'s key")
            memo.verified_key = key

    def _remember(self, raw: bytes, memo: _Memo) -> None:
        if len(self._memo) >= MEMO_MAX:
            self._memo.popitem(last=False)  # oldest first
        self._memo[raw] = memo

    def _may_register(self, actor: str) -> bool:
        p = self.state.get(t.PARTY, actor)
        return p is not None and p.role in (Role.REGULATOR, Role.DATA_BUREAU)

    @staticmethod
    def _check_role_of(tx: Tx, actor: r.PartyRecord) -> None:
        """Step 5, with the actor's record (read with the signature check)."""
        allowed = rules.ROLES[tx.kind]
        if allowed is not None and actor.role not in allowed:
            names = "/".join(sorted(allowed))
            raise Reject(Code.ROLE, f"{tx.actor} is a {actor.role}; {tx.kind} is for a {names}")

    # ---------------------------------------------------------------- nonces

    def _check_nonce(self, tx: Tx) -> r.NonceWindow | None:
        """Step 4; the actor's nonce window (None: none spent yet), which the nonce is fresh in."""
        w = self.state.get(t.NONCE, tx.actor)
        if w is not None and (tx.nonce <= w.floor or tx.nonce in w.used):
            raise Reject(Code.DUPE, f"nonce {tx.nonce} of {tx.actor} was already used")
        return w

    # ---------------------------------------------------------------- convenience

    @property
    def height(self) -> int:
        meta = self.state.get(t.META, "chain")
        assert meta is not None
        return meta.height

    @property
    def time_ms(self) -> int:
        meta = self.state.get(t.META, "chain")
        assert meta is not None
        return meta.time_ms

    def next_nonce(self, actor: str) -> int:
        """A nonce `actor` has certainly not used: one above the highest spent."""
        w = self.state.get(t.NONCE, actor)
        if w is None:
            return 0
        return (w.used[-1] if w.used else w.floor) + 1

    def apply(self, height: int, time_ms: int, txs: Sequence[bytes], proposer: str = "") -> list[TxResult]:
        """apply_block with a context built here (tests, tools)."""
        return self.apply_block(BlockContext(height=height, time_ms=time_ms, proposer=proposer), txs)
