"""Consensus values: blocks, proposals, votes, certificates, evidence.

Frozen, slotted dataclasses. Values built from a peer's data go through the
`from_*` readers, which raise DecodeError(SHAPE) instead of anything else.
A vote or proposal *is* a signed envelope (codec): its signature covers
DOMAIN + canonical([version, chain, sender, kind, body]), so a certificate can
carry the precommit signatures and anyone can re-check them.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from consortium import codec, crypto, limits
from consortium.codec import Kind, Reason
from consortium.consensus.validators import ValidatorSet
from consortium.errors import DecodeError

ZERO_ID = b"\x00" * limits.digest_bytes
NIL = None  # a vote for no block

_INT_MIN, _INT_MAX = codec.INT_MIN, codec.INT_MAX
_BYTES_ONLY = {bytes}
_PRECOMMIT = Kind.PRECOMMIT


def _shape(cond: bool, what: str) -> None:
    if not cond:
        raise DecodeError(Reason.SHAPE, what)


def _get(m: Any, name: str, kind: type | tuple[type, ...]) -> Any:
    _shape(isinstance(m, dict) and name in m, f"missing field {name!r}")
    v = m[name]
    _shape(isinstance(v, kind) and not (kind is int and isinstance(v, bool)), f"field {name!r} type")
    return v


# ------------------------------------------------------------------ votes


@dataclass(frozen=True, slots=True)
class Vote:
    kind: Kind  # PREVOTE or PRECOMMIT
    height: int
    round: int
    block_id: bytes | None
    validator: str
    signature: bytes
    # the envelope this vote travels in, built once (a vote is re-sent, persisted, relayed)
    _env: codec.Envelope | None = field(default=None, init=False, compare=False, repr=False)

    def body(self) -> dict[str, Any]:
        return {"height": self.height, "round": self.round, "block_id": self.block_id}

    def envelope(self, chain: str) -> codec.Envelope:
        env = self._env
        if env is None or env.chain != chain:
            env = codec.Envelope(codec.VERSION, chain, self.validator, self.kind, self.body(), self.signature)
            object.__setattr__(self, "_env", env)
        return env

    def verify(self, chain: str, public_key: bytes) -> bool:
        msg = codec.vote_signing_bytes(chain, self.validator, self.kind, self.height, self.round, self.block_id)
        return crypto.verify(public_key, msg, self.signature)

    @staticmethod
    def from_envelope(env: codec.Envelope) -> Vote:
        assert env.kind in (Kind.PREVOTE, Kind.PRECOMMIT)
        got = env.parsed
        if type(got) is Vote:
            return got
        b = env.body
        vote = Vote(env.kind, b["height"], b["round"], b["block_id"], env.sender, env.signature)
        object.__setattr__(vote, "_env", env)  # its body has exactly the vote's fields (codec.BODY_FIELDS)
        object.__setattr__(env, "parsed", vote)
        return vote

    def to_wire(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "height": self.height, "round": self.round,
                "block_id": self.block_id, "validator": self.validator, "sig": self.signature}

    @staticmethod
    def from_wire(m: Any) -> Vote:
        kind = _get(m, "kind", str)
        _shape(kind in (Kind.PREVOTE, Kind.PRECOMMIT), "vote kind")
        block_id = m.get("block_id") if isinstance(m, dict) else None
        _shape(block_id is None or (isinstance(block_id, bytes) and len(block_id) == 32), "block_id")
        return Vote(Kind(kind), _get(m, "height", int), _get(m, "round", int), block_id,
                    _get(m, "validator", str), _get(m, "sig", bytes))


def sign_vote(chain: str, signer: crypto.Signer, validator: str, kind: Kind, height: int,
              round: int, block_id: bytes | None) -> Vote:
    body = {"height": height, "round": round, "block_id": block_id}
    sb = codec.vote_signing_bytes(chain, validator, kind, height, round, block_id)
    sig = signer.sign(sb)
    vote = Vote(kind, height, round, block_id, validator, sig)
    object.__setattr__(vote, "_env", codec.Envelope(codec.VERSION, chain, validator, kind, body, sig,
                                                    codec.frame_of(sb, sig)))
    return vote


# ------------------------------------------------------------------ certificates


@dataclass(frozen=True, slots=True)
class Certificate:
    """>= 2/3 of the voting power of precommits for one block at (height, round)."""

    height: int
    round: int
    block_id: bytes
    signatures: tuple[tuple[str, bytes], ...]  # (validator, signature), sorted by id

    def to_wire(self) -> dict[str, Any]:
        return {"height": self.height, "round": self.round, "block_id": self.block_id,
                "signatures": [[v, s] for v, s in self.signatures]}

    @staticmethod
    def from_wire(m: Any) -> Certificate:
        sigs = _get(m, "signatures", list)
        _shape(len(sigs) <= limits.validators_max, "too many signatures")
        pairs = []
        for p in sigs:
            _shape(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)
                   and isinstance(p[1], bytes), "signature pair")
            pairs.append((p[0], p[1]))
        block_id = _get(m, "block_id", bytes)
        _shape(len(block_id) == limits.digest_bytes, "block_id length")
        return Certificate(_get(m, "height", int), _get(m, "round", int), block_id, tuple(pairs))

    def problem(self, chain: str, validators: ValidatorSet,
                known: AbstractSet[tuple[str, bytes]] = frozenset()) -> str | None:
        """None if every signature is a valid precommit by a distinct validator
        and together they hold a quorum of the voting power. `known` holds
        (validator, signature) pairs of precommits for this exact (height,
        round, block) already verified by the caller: they are not re-checked."""
        seen: set[str] = set()
        power = 0
        for vid, sig in self.signatures:
            v = validators.get(vid)
            if v is None or vid in seen:
                return f"signature by unknown or repeated validator {vid!r}"
            seen.add(vid)
            if (vid, sig) not in known and not crypto.verify(  # Vote(PRECOMMIT, ...).verify without the Vote
                    v.public_key, codec.vote_signing_bytes(chain, vid, _PRECOMMIT, self.height, self.round,
                                                           self.block_id), sig):
                return f"bad precommit signature of {vid!r}"
            power += v.power
        if power < validators.quorum:
            return f"certificate power {power} < quorum {validators.quorum}"
        return None


# ------------------------------------------------------------------ evidence


@dataclass(frozen=True, slots=True)
class DuplicateVote:
    """One validator signed two different votes for one (height, round, kind)."""

    a: Vote
    b: Vote

    def __post_init__(self) -> None:
        assert (self.a.validator, self.a.kind, self.a.height, self.a.round) == (
            self.b.validator, self.b.kind, self.b.height, self.b.round)

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.a.validator, str(self.a.kind), self.a.height, self.a.round)

    def to_wire(self) -> dict[str, Any]:
        a, b = sorted([self.a, self.b], key=lambda v: (v.block_id or b"", v.signature))
        return {"a": a.to_wire(), "b": b.to_wire()}

    @staticmethod
    def from_wire(m: Any) -> DuplicateVote:
        a, b = Vote.from_wire(_get(m, "a", dict)), Vote.from_wire(_get(m, "b", dict))
        _shape((a.validator, a.kind, a.height, a.round) == (b.validator, b.kind, b.height, b.round),
               "evidence votes differ in slot")
        return DuplicateVote(a, b)

    def problem(self, chain: str, validators: ValidatorSet) -> str | None:
        v = validators.get(self.a.validator)
        if v is None:
            return "evidence against a non-validator"
        if self.a.block_id == self.b.block_id:
            return "evidence votes are not conflicting"
        if not (self.a.verify(chain, v.public_key) and self.b.verify(chain, v.public_key)):
            return "evidence signature invalid"
        return None


# ------------------------------------------------------------------ blocks


@dataclass(frozen=True, slots=True)
class Block:
    height: int
    time_ms: int
    proposer: str
    prev_id: bytes
    app_hash: bytes  # application state root after height - 1
    last_commit: Certificate | None  # certificate of height - 1 (None at height 1)
    evidence: tuple[DuplicateVote, ...]
    txs: tuple[bytes, ...]
    id: bytes = field(default=b"", compare=False)
    _encoded: bytes = field(default=b"", init=False, compare=False, repr=False)  # see `encoded`

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", crypto.digest(self.encoded))

    @property
    def encoded(self) -> bytes:
        """codec.encode(self.to_wire()), computed once (the id hashes it; a lock record embeds it)."""
        if not self._encoded:
            data = self._encoded_plain()
            object.__setattr__(self, "_encoded", codec.encode(self._wire_fields()) if data is None else data)
        return self._encoded

    def _encoded_plain(self) -> bytes | None:
        """codec.encode(self.to_wire()) built as the canonical value itself (keys inserted in sorted
        order, codec's walk would change nothing) when every field has its exact plain type and
        no evidence: the blocks of every height. None otherwise (the general walk decides, and
        raises what it raises). tests/consensus/test_fast_paths.py compares the two."""
        h, t, lc, txs = self.height, self.time_ms, self.last_commit, self.txs
        if (self.evidence or type(h) is not int or type(t) is not int or not _INT_MIN <= h <= _INT_MAX
                or not _INT_MIN <= t <= _INT_MAX or type(self.proposer) is not str or type(self.prev_id) is not bytes
                or type(self.app_hash) is not bytes or type(txs) is not tuple or (txs and set(map(type, txs)) != _BYTES_ONLY)):
            return None
        if lc is None:
            commit = None
        else:
            ch, cr, sigs = lc.height, lc.round, lc.signatures
            if (type(ch) is not int or type(cr) is not int or not _INT_MIN <= ch <= _INT_MAX
                    or not _INT_MIN <= cr <= _INT_MAX or type(lc.block_id) is not bytes or type(sigs) is not tuple):
                return None
            pairs = []
            for pair in sigs:
                if type(pair) is not tuple or len(pair) != 2 or type(pair[0]) is not str or type(pair[1]) is not bytes:
                    return None
                pairs.append(list(pair))
            commit = {"block_id": lc.block_id, "height": ch, "round": cr, "signatures": pairs}
        return codec.pack_canonical({"app_hash": self.app_hash, "evidence": [], "height": h, "last_commit": commit,
                               "prev_id": self.prev_id, "proposer": self.proposer, "time_ms": t, "txs": list(txs)})

    def _wire_fields(self) -> dict[str, Any]:
        return {"height": self.height, "time_ms": self.time_ms, "proposer": self.proposer,
                "prev_id": self.prev_id, "app_hash": self.app_hash,
                "last_commit": self.last_commit.to_wire() if self.last_commit else None,
                "evidence": [e.to_wire() for e in self.evidence], "txs": list(self.txs)}

    def to_wire(self) -> dict[str, Any]:
        return self._wire_fields()

    @property
    def size_bytes(self) -> int:
        return sum(map(len, self.txs))

    @staticmethod
    def from_wire(m: Any) -> Block:
        _shape(isinstance(m, dict) and len(m) == 8, "block fields")
        txs = _get(m, "txs", list)
        _shape(len(txs) <= limits.block_txs_max and all(isinstance(t, bytes) for t in txs), "txs")
        evidence = _get(m, "evidence", list)
        _shape(len(evidence) <= limits.evidence_per_block_max, "evidence count")
        lc = m.get("last_commit")
        prev_id, app_hash = _get(m, "prev_id", bytes), _get(m, "app_hash", bytes)
        _shape(len(prev_id) == 32 and len(app_hash) == 32, "hash lengths")
        return Block(
            height=_get(m, "height", int), time_ms=_get(m, "time_ms", int),
            proposer=_get(m, "proposer", str), prev_id=prev_id, app_hash=app_hash,
            last_commit=None if lc is None else Certificate.from_wire(lc),
            evidence=tuple(DuplicateVote.from_wire(e) for e in evidence), txs=tuple(txs),
        )


# ------------------------------------------------------------------ proposals


@dataclass(frozen=True, slots=True)
class Proposal:
    """A proposal; a re-proposal (valid_round >= 0) carries its proof of lock:
    the signatures of > 2/3 of the power prevoting this block in valid_round.
    The paper assumes those prevotes reach everyone by gossip; carrying them
    makes that true even for a node that missed them."""

    height: int
    round: int
    valid_round: int  # -1 when the proposer holds no valid value from an earlier round
    block: Block
    proposer: str
    signature: bytes
    pol: tuple[tuple[str, bytes], ...] = ()  # (validator, prevote signature) at valid_round
    # the envelope this proposal travels in, built once (re-sent, persisted with the guard)
    _env: codec.Envelope | None = field(default=None, init=False, compare=False, repr=False)

    def body(self) -> dict[str, Any]:
        return _proposal_body(self.height, self.round, self.valid_round, self.block, self.pol)

    def envelope(self, chain: str) -> codec.Envelope:
        env = self._env
        if env is None or env.chain != chain:
            env = codec.Envelope(codec.VERSION, chain, self.proposer, Kind.PROPOSAL, self.body(),
                                 self.signature)
            object.__setattr__(self, "_env", env)
        return env

    def pol_votes(self) -> list[Vote]:
        return [Vote(Kind.PREVOTE, self.height, self.valid_round, self.block.id, v, sig)
                for v, sig in self.pol]

    @staticmethod
    def from_envelope(env: codec.Envelope) -> Proposal:
        got = env.parsed
        if type(got) is Proposal:
            return got  # a pure function of the envelope, computed once
        b = env.body
        _shape(b["valid_round"] >= -1 and b["valid_round"] < b["round"], "valid_round")
        block = Block.from_wire(b["block"])
        # block.proposer is whoever built the block; a later round may re-propose it.
        _shape(block.height == b["height"], "block height vs proposal height")
        pol = b["pol"]
        _shape(len(pol) <= limits.validators_max and all(
            isinstance(x, list) and len(x) == 2 and isinstance(x[0], str) and isinstance(x[1], bytes)
            for x in pol), "pol")
        _shape(not pol or b["valid_round"] >= 0, "pol without valid_round")
        p = Proposal(b["height"], b["round"], b["valid_round"], block, env.sender, env.signature,
                     tuple((v, sig) for v, sig in pol))
        object.__setattr__(p, "_env", env)  # the signed frame it came in (re-sent as is, never rebuilt)
        object.__setattr__(env, "parsed", p)
        return p


def _proposal_body(height: int, round: int, valid_round: int, block: Block,
                   pol: tuple[tuple[str, bytes], ...]) -> dict[str, Any]:
    return {"height": height, "round": round, "valid_round": valid_round, "block": block.to_wire(),
            "pol": [[v, sig] for v, sig in pol]}


def sign_proposal(chain: str, signer: crypto.Signer, proposer: str, height: int, round: int,
                  valid_round: int, block: Block, pol: tuple[tuple[str, bytes], ...] = ()) -> Proposal:
    body = _proposal_body(height, round, valid_round, block, pol)
    # the block as it encodes (codec.raw splices its cached encoding, the bytes of its to_wire()):
    # the same signing bytes without a second canonical walk over the block
    sb = codec.signing_bytes(chain, proposer, Kind.PROPOSAL, {**body, "block": codec.raw(block.encoded)})
    sig = signer.sign(sb)
    p = Proposal(height, round, valid_round, block, proposer, sig, pol)
    object.__setattr__(p, "_env", codec.Envelope(codec.VERSION, chain, proposer, Kind.PROPOSAL, body, sig,
                                                 codec.frame_of(sb, sig)))
    return p


@dataclass(frozen=True, slots=True)
class Decided:
    """A decided block with its certificate: what sync transfers and stores keep."""

    block: Block
    certificate: Certificate

    def to_wire(self) -> dict[str, Any]:
        return {"block": self.block.to_wire(), "certificate": self.certificate.to_wire()}

    @staticmethod
    def from_wire(m: Any) -> Decided:
        return Decided(Block.from_wire(_get(m, "block", dict)),
                       Certificate.from_wire(_get(m, "certificate", dict)))
