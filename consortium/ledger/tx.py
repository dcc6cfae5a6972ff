"""Signed ledger transactions: the builder and the strict decoder.

Wire form (canonical msgpack, consortium.codec):

    [version, chain_id, kind, actor, nonce, body, signature]

`signature` is Ed25519 by the actor's key over

    DOMAIN + canonical([version, chain_id, kind, actor, nonce, body])

so a transaction cannot be replayed on another chain (different chain id),
nor re-read as another kind, actor or nonce. The tx hash is SHA-256 of the
whole wire form; canonical encoding makes it unique per transaction.

Replay protection (stated rule): each actor has a nonce window in the state.
A nonce is accepted once: it must be above the actor's floor and not among
the nonces already used above it; the window keeps the last
`limits.used_nonces_max` used nonces and raises the floor past older ones. Gaps are
allowed (a client may use a counter or a millisecond clock), reordering within
the window is tolerated. A tx whose nonce was already consumed - by the same
bytes or any other tx - is rejected DUPE. Every tx that reaches the stateful
rules consumes its nonce, also when a rule rejects it, so a rejected tx
cannot be replayed either.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import msgspec

from consortium import codec, crypto, limits
from consortium.errors import DecodeError
from consortium.genesis import DEFAULT_CHAIN_ID
from consortium.ledger.bodies import BY_KIND, Body
from consortium.ledger.codes import Code
from consortium.ledger.fields import INT_MAX, TxError
from consortium.ledger.privacy import (
    DEFAULT_POLICY,
    Policy,
    may_hold_identifier,
    party_finding,
    value_finding,
)
from consortium.types import id_problem

VERSION = 1
DOMAIN = b"consortium/tx/v1\x00"
_SIG_TAIL = b"\xc4\x40"  # msgpack bin8 header of a 64-byte signature


@dataclass(frozen=True, slots=True)
class Tx:
    """A decoded transaction: shape, body rules and PII checked; signature not yet."""

    chain_id: str
    kind: str
    actor: str
    nonce: int
    body: Body
    signature: bytes
    hash: bytes
    size: int
    signing_bytes: bytes = field(repr=False)

    def __post_init__(self) -> None:
        assert self.kind == self.body.KIND
        assert len(self.hash) == limits.digest_bytes and len(self.signature) == limits.signature_bytes
        assert 0 < self.size <= limits.tx_bytes_max

    def signed_by(self, public_key: bytes) -> bool:
        return crypto.verify(public_key, self.signing_bytes, self.signature)


def signing_bytes(chain_id: str, kind: str, actor: str, nonce: int, body: Any) -> bytes:
    return DOMAIN + codec.encode([VERSION, chain_id, kind, actor, nonce, body])


def make_tx(kind: str, actor: str, body: dict[str, Any], signer: crypto.Signer, nonce: int,
            chain_id: str = DEFAULT_CHAIN_ID, *, validate: bool = True) -> bytes:
    """Canonical bytes of a transaction signed by `signer` (the actor's key).

    With `validate` (the default) the body must pass the same checks decode_tx
    applies, else the TxError decode_tx would raise is raised here and nothing
    is signed; tests pass validate=False to forge invalid transactions."""
    if validate:
        if kind not in BY_KIND:
            raise TxError(Code.BENV, f"unknown kind {kind!r}")
        _scan_pii(body, DEFAULT_POLICY)
        _scan_parties(BY_KIND[kind].parse(body), DEFAULT_POLICY)
    sig = signer.sign(signing_bytes(chain_id, kind, actor, nonce, body))
    data = codec.encode([VERSION, chain_id, kind, actor, nonce, body, sig])
    if validate and len(data) > limits.tx_bytes_max:
        raise TxError(Code.BENV, f"transaction is {len(data)} bytes > {limits.tx_bytes_max}")
    return data


def tx_hash(data: bytes) -> bytes:
    return crypto.digest(data)


def decode_tx(data: bytes, privacy: Policy = DEFAULT_POLICY) -> Tx:
    """Strictly decode untrusted bytes: a Tx, or TxError (BENV, PII, INCD) naming the problem.

    Checks everything that does not depend on the state: size, canonical form,
    shape, kind, body schema and body rules, personal data the genesis' privacy
    policy refuses (`privacy`: Genesis.privacy)."""
    if not isinstance(data, bytes):
        raise TxError(Code.BENV, "transaction is not bytes")
    if len(data) > limits.tx_bytes_max:
        raise TxError(Code.BENV, f"transaction is {len(data)} bytes > {limits.tx_bytes_max}")
    fields = _flat_fields(data)
    if fields is None:  # anything else takes the general path, which words every refusal
        try:
            value = codec.decode(data)
        except DecodeError as exc:
            raise TxError(Code.BENV, f"not a canonical transaction ({exc.reason})") from None
        fields = _fields(value)
    _, chain_id, kind, actor, nonce, raw_body, sig = fields
    if may_hold_identifier(data):  # else no text or bytes leaf of the body can hold one
        _scan_pii(raw_body, privacy)
    body = BY_KIND[kind].parse(raw_body, kind)
    if kind in _DOCUMENT_KINDS:  # party_finding of any other body is None: it has no `doc`
        _scan_parties(body, privacy)
    # The signed message is the wire form minus the signature: re-use the bytes.
    assert data[0] == 0x97 and data[-66:-64] == _SIG_TAIL
    # What Tx(...) stores, without its keyword parsing and __post_init__: the asserts there
    # hold by construction (kind names body's class, 64-byte signature, 0 < size <= max).
    tx = _new(Tx)
    _set_chain_id(tx, chain_id)
    _set_kind(tx, kind)
    _set_actor(tx, actor)
    _set_nonce(tx, nonce)
    _set_body(tx, body)
    _set_signature(tx, sig)
    _set_hash(tx, _sha256(data).digest())
    _set_size(tx, len(data))
    _set_signing_bytes(tx, DOMAIN + b"\x96" + data[1:-66])
    return tx


_DOCUMENT_KINDS = frozenset(kind for kind, cls in BY_KIND.items() if hasattr(cls, "doc"))  # ISSUE
_new = object.__new__
_sha256 = hashlib.sha256  # crypto.digest, inlined
_set_chain_id, _set_kind, _set_actor, _set_nonce, _set_body, _set_signature, _set_hash, _set_size, \
    _set_signing_bytes = (getattr(Tx, name).__set__ for name in Tx.__slots__)  # slot descriptors
assert Tx.__slots__ == ("chain_id", "kind", "actor", "nonce", "body", "signature", "hash", "size",
                        "signing_bytes")

#: The wire form's outer array with its types checked in C; the body's values are any.
_TX_DECODER = msgspec.msgpack.Decoder(tuple[int, str, str, str, int, dict[str, Any], bytes])
_FLAT_LEAVES = frozenset({str, int, bytes, bool, type(None)})
_NESTED_LEAVES = _FLAT_LEAVES | {list, dict}


def _flat_fields(data: bytes) -> tuple[int, str, str, str, int, dict[str, Any], bytes] | None:
    """`_fields(codec.decode(data))` for a valid transaction, or None: then the general
    path decides (and words any refusal).

    Exact: the typed decode gives the values the plain decode gives (else re-encoding
    would differ) with the outer array's types checked; a body with text keys in sorted
    order and plain leaves (no float, no ext type) is what codec's canonical walk accepts
    at depth 1 (a tx is far below codec's size and length bounds), and its lists and maps
    get codec's own walk at depth 2; equal re-encoded bytes is codec's final test; the
    field tests are `_fields`' own, and each passes."""
    try:
        value = _TX_DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    version, chain_id, kind, actor, nonce, body, sig = value
    keys = list(body)
    leaves = set(map(type, body.values()))
    if not _FLAT_LEAVES.issuperset(leaves):
        if not _NESTED_LEAVES.issuperset(leaves):
            return None
        try:  # what codec.decode's walk does below the body (depth 2 and deeper)
            for v in body.values():
                if type(v) is list or type(v) is dict:
                    codec._check_decoded(v, 2, False)  # a tx is shorter than codec_str_bytes_max
        except DecodeError:
            return None
    if (version == VERSION and type(version) is int and 0 < len(chain_id) <= limits.chain_id_bytes_max
            and kind in BY_KIND and 0 <= nonce <= INT_MAX and type(nonce) is int
            and len(sig) == limits.signature_bytes and keys == sorted(keys) and id_problem(actor) is None
            and codec.pack_canonical(value) == data):
        return value
    return None


def _fields(value: Any) -> tuple[int, str, str, str, int, dict[str, Any], bytes]:
    if not isinstance(value, list) or len(value) != 7:
        raise TxError(Code.BENV, "a transaction is a 7-element array")
    version, chain_id, kind, actor, nonce, body, sig = value
    if version != VERSION:
        raise TxError(Code.BENV, f"unsupported transaction version {version!r}")
    if not isinstance(chain_id, str) or not 0 < len(chain_id) <= limits.chain_id_bytes_max:
        raise TxError(Code.BENV, "chain id must be a short string")
    if not isinstance(kind, str) or kind not in BY_KIND:
        raise TxError(Code.BENV, f"unknown transaction kind {str(kind)[:limits.kind_bytes_max]!r}")
    problem = id_problem(actor)
    if problem is not None:
        raise TxError(Code.BENV, f"actor {problem}")
    if not isinstance(nonce, int) or isinstance(nonce, bool) or not 0 <= nonce <= INT_MAX:
        raise TxError(Code.BENV, "nonce must be an integer in 0..2^63-1")
    if not isinstance(body, dict):
        raise TxError(Code.BENV, "body must be a map")
    if not isinstance(sig, bytes) or len(sig) != limits.signature_bytes:
        raise TxError(Code.BSIG, "signature must be 64 bytes")
    return version, chain_id, kind, actor, nonce, body, sig


def _scan_pii(raw_body: Any, privacy: Policy) -> None:
    found = value_finding(raw_body, "body", privacy)
    if found is not None:
        raise TxError(Code.PII, found)


def _scan_parties(body: Body, privacy: Policy) -> None:
    """The parties of an ISSUE's document, judged by the genesis' privacy policy."""
    found = party_finding(body, privacy)
    if found is not None:
        raise TxError(Code(found[0]), found[1])
