"""Canonical msgpack and the signed envelope.

Canonical form: equal values give identical bytes. Maps have str keys sorted by
their UTF-8 bytes, integers fit 64 bits and use msgpack's shortest encoding,
text is str and binary is bytes, and floats, ext types and non-str keys are
refused (a float in signed data has no single encoding). Decoding re-encodes
the value and refuses any input that is not already canonical, so a signed
frame has exactly one byte representation (no malleability).

The envelope is the unit on the bus: [version, chain, sender, kind, body, sig],
where sig is Ed25519 over DOMAIN + canonical([version, chain, sender, kind, body]).
Decoding untrusted bytes returns an Envelope or raises DecodeError with one
Reason; nothing else escapes (a property test holds us to that).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from consortium import crypto, limits
from consortium.errors import DecodeError, LocalError

VERSION = 1
DOMAIN = b"consortium/envelope/v1\x00"

# ints fit msgpack's int64 / uint64: -2**63 .. 2**64 - 1
_INT_MIN = -(2 ** (limits.codec_int_bits_max - 1))
_INT_MAX = 2**limits.codec_int_bits_max - 1


class Reason(enum.StrEnum):
    """Why a frame was dropped: stable codes used in counters and logs."""

    TOO_LARGE = "too_large"
    NOT_MSGPACK = "not_msgpack"
    NON_CANONICAL = "non_canonical"
    SHAPE = "shape"
    VERSION = "version"
    UNKNOWN_KIND = "unknown_kind"
    WRONG_CHAIN = "wrong_chain"
    UNKNOWN_SENDER = "unknown_sender"
    BAD_SIGNATURE = "bad_signature"


class Kind(enum.StrEnum):
    PROPOSAL = "proposal"
    PREVOTE = "prevote"
    PRECOMMIT = "precommit"
    TX = "tx"
    SYNC_REQUEST = "sync_request"
    SYNC_RESPONSE = "sync_response"
    STATUS = "status"
    TX_REFUSED = "tx_refused"  # a node to a submitter: your tx failed admission (never reached a block)


# ---------------------------------------------------------------- canonical values


def _canon(value: Any, depth: int) -> Any:
    """Check `value` is encodable and return it with map keys sorted."""
    if depth > limits.codec_depth_max:
        raise LocalError("value nests deeper than codec_depth_max")
    t = type(value)
    if t is bytes or t is str:  # the exact common types first (subclasses take the general path below)
        return value
    if t is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise LocalError(f"integer {value} does not fit 64 bits")
        return value
    if t is dict:
        for k in value:
            if type(k) is not str and not isinstance(k, str):
                raise LocalError(f"map key {k!r} is not a str")
        # code point order of str is the order of their UTF-8 bytes (surrogatepass
        # included), so a plain sort is the canonical key order
        return {k: _canon(value[k], depth + 1) for k in sorted(value)}
    if t is list or t is tuple:
        if all(type(v) in _FLAT for v in value):  # e.g. a block's txs: nothing to sort
            return list(value)
        return [_canon(v, depth + 1) for v in value]
    if t is Raw:  # pre-encoded canonical bytes (see raw)
        return value
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise LocalError(f"integer {value} does not fit 64 bits")
        return value
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, (list, tuple)):
        if all(type(v) in _FLAT for v in value):  # e.g. a block's txs: nothing to sort
            return list(value)
        return [_canon(v, depth + 1) for v in value]
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise LocalError(f"map key {k!r} is not a str")
        return {k: _canon(value[k], depth + 1) for k in sorted(value, key=_key_bytes)}
    raise LocalError(f"type {type(value).__name__} has no canonical encoding")


_FLAT = (bytes, str, bool, type(None))
Raw = msgspec.Raw


def raw(canonical: bytes) -> Raw:
    """Bytes that `encode` produced, to embed as they are in a larger value (a block
    inside a lock record): encoding splices them in, which is what re-encoding the
    value they came from would give."""
    return msgspec.Raw(canonical)


def _key_bytes(key: str) -> bytes:
    return key.encode("utf-8", "surrogatepass")


def encode(value: Any) -> bytes:
    """Canonical msgpack bytes of `value` (LocalError if it has none)."""
    return _ENCODER.encode(_canon(value, 0))


#: One decoder and one encoder for every frame and value (msgspec: C speed, no per-call
#: setup). The canonical form is msgpack's shortest encoding of plain values, which
#: msgspec and msgpack-python produce identically (tests/test_codec.py compares them).
_DECODER = msgspec.msgpack.Decoder()
_ENCODER = msgspec.msgpack.Encoder()

#: msgpack of a value that is already canonical (exact plain types, ints within INT_MIN..INT_MAX,
#: map keys inserted in sorted order): what `encode` gives for it, without its Python walk.
#: Hot paths build such values only, and fall back to `encode` otherwise.
pack_canonical = _ENCODER.encode
INT_MIN, INT_MAX = _INT_MIN, _INT_MAX  # the integers a canonical value may hold (64 bits)

#: Types a decoded value may hold: msgpack nil, bool, int, str, bin, array, map. Anything
#: else msgspec hands back (ext types, timestamps) is refused like msgpack's ext hook did.
_PLAIN = frozenset({type(None), bool, int, str, bytes, list, dict})
_FLAT_PLAIN = frozenset({type(None), bool, int, bytes})  # nothing inside to check
_TEXT_ONLY = frozenset({str})


def _check_decoded(value: Any, depth: int, long_text: bool) -> None:
    """One walk over the containers of a decoded value, each checked with C-speed
    set and sort operations rather than element by element in Python:
    - NOT_MSGPACK (what msgpack's unpacker limits refused before): a value that is
      not plain (ext types), a list or map of more than codec_items_max items, a map
      key that is not text, text longer than codec_str_bytes_max (only possible, so
      only looked for, when `long_text`: the input is longer than that);
    - NON_CANONICAL: a float; map keys not in sorted order (code point order of str
      equals the order of their UTF-8 bytes, and valid UTF-8 is all msgspec decodes);
    - SHAPE: nesting deeper than codec_depth_max.
    Minimal integer and length encodings are then checked by re-encoding."""
    if depth > limits.codec_depth_max:
        raise DecodeError(Reason.SHAPE, "value nests too deep")
    t = type(value)
    if t is list:
        items: Any = value
    elif t is dict:
        keys = list(value)
        if len(keys) > limits.codec_items_max:
            raise DecodeError(Reason.NOT_MSGPACK, "map too long")
        if keys and set(map(type, keys)) != _TEXT_ONLY:
            raise DecodeError(Reason.NOT_MSGPACK, "map key is not text")
        if keys != sorted(keys):
            raise DecodeError(Reason.NON_CANONICAL, "map keys are not sorted")
        if long_text:
            _check_text(keys)
        items = value.values()
    else:
        _check_scalar(value, long_text)
        return
    if len(items) > limits.codec_items_max:
        raise DecodeError(Reason.NOT_MSGPACK, "list too long")
    kinds = set(map(type, items))
    if kinds <= _FLAT_PLAIN:
        return
    if not kinds <= _PLAIN:
        if float in kinds and kinds - {float} <= _PLAIN:
            raise DecodeError(Reason.NON_CANONICAL, "floats are not allowed")
        raise DecodeError(Reason.NOT_MSGPACK, "ext types are not allowed")
    if long_text and str in kinds:
        _check_text(items)
    if list in kinds or dict in kinds:
        for v in items:
            if type(v) is list or type(v) is dict:
                _check_decoded(v, depth + 1, long_text)


def _check_scalar(value: Any, long_text: bool) -> None:
    t = type(value)
    if t is float:
        raise DecodeError(Reason.NON_CANONICAL, "floats are not allowed")
    if t not in _PLAIN:
        raise DecodeError(Reason.NOT_MSGPACK, "ext types are not allowed")
    if long_text and t is str:
        _check_text([value])


def _check_text(values: Any) -> None:
    for v in values:
        if type(v) is str and len(v) * 4 > limits.codec_str_bytes_max \
                and len(v.encode("utf-8")) > limits.codec_str_bytes_max:
            raise DecodeError(Reason.NOT_MSGPACK, "text too long")


def decode(data: bytes) -> Any:
    """Decode canonical msgpack from an untrusted source.

    Returns the value or raises DecodeError (TOO_LARGE, NOT_MSGPACK, SHAPE,
    NON_CANONICAL)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(Reason.NOT_MSGPACK, "not bytes")
    data = bytes(data)
    if len(data) > limits.frame_bytes_max:
        raise DecodeError(Reason.TOO_LARGE, f"{len(data)} bytes > {limits.frame_bytes_max}")
    try:
        value = _DECODER.decode(data)
    except Exception as exc:  # malformed, truncated, trailing bytes, nested past the recursion limit
        raise DecodeError(Reason.NOT_MSGPACK, type(exc).__name__) from None
    _check_decoded(value, 0, len(data) > limits.codec_str_bytes_max)
    # Plain values, keys sorted, no floats: re-encoding now reproduces the
    # canonical form, so any difference is a non-minimal encoding (or a repeated key).
    try:
        again = _ENCODER.encode(value)
    except Exception as exc:
        raise DecodeError(Reason.NON_CANONICAL, str(exc)) from None
    if again != data:
        raise DecodeError(Reason.NON_CANONICAL, "bytes are not in canonical form")
    return value


# ---------------------------------------------------------------- body shapes

Check = Callable[[Any], bool]


def _uint(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= _INT_MAX


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _bytes32(v: Any) -> bool:
    return isinstance(v, bytes) and len(v) == limits.digest_bytes


def _opt_bytes32(v: Any) -> bool:
    return v is None or _bytes32(v)


def _code(v: Any) -> bool:
    """A reason code: short ASCII (ledger codes such as ROLE, mempool ones such as TOO_LARGE)."""
    return isinstance(v, str) and 0 < len(v) <= limits.kind_bytes_max and v.isascii() and v.isprintable()


def _map(v: Any) -> bool:
    return isinstance(v, dict)


def _list(v: Any) -> bool:
    return isinstance(v, list)


def _txs(v: Any) -> bool:
    """A TX frame's batch: 1..tx_batch_txs_max transactions, each bytes (checked one by one later)."""
    return (isinstance(v, list) and 0 < len(v) <= limits.tx_batch_txs_max
            and all(type(t) is bytes for t in v))


#: The top-level shape of each kind's body: required fields and their checks.
#: Deeper structure (a block inside a proposal) is checked by its own layer.
BODY_FIELDS: dict[Kind, dict[str, Check]] = {
    Kind.PROPOSAL: {"height": _uint, "round": _uint, "valid_round": _int, "block": _map, "pol": _list},
    Kind.PREVOTE: {"height": _uint, "round": _uint, "block_id": _opt_bytes32},
    Kind.PRECOMMIT: {"height": _uint, "round": _uint, "block_id": _opt_bytes32},
    Kind.TX: {"txs": _txs},
    Kind.SYNC_REQUEST: {"from_height": _uint, "to_height": _uint},
    Kind.SYNC_RESPONSE: {"blocks": _list},
    Kind.STATUS: {"height": _uint, "round": _uint, "info": _map},
    Kind.TX_REFUSED: {"tx_hash": _bytes32, "code": _code},
}


def body_problem(kind: Kind, body: Any) -> str | None:
    fields = BODY_FIELDS[kind]
    if not isinstance(body, dict):
        return "body is not a map"
    if set(body) != set(fields):
        return f"body fields {sorted(body)} != {sorted(fields)}"
    for name, check in fields.items():
        if not check(body[name]):
            return f"body field {name!r} has the wrong type"
    return None


# ---------------------------------------------------------------- the envelope


@dataclass(frozen=True, slots=True)
class Envelope:
    """A signed frame. Construct with `seal_envelope`; decode with `decode_envelope`."""

    version: int
    chain: str
    sender: str
    kind: Kind
    body: Any
    signature: bytes
    frame: bytes = field(default=b"", compare=False, repr=False)  # the encoding, once known
    # what consensus made of the body (a Proposal or Vote, immutable), once: every node of a
    # simulation gets the same Envelope of a frame (sim.node.FrameMemo) and reads it once
    parsed: Any = field(default=None, init=False, compare=False, repr=False)

    def signing_bytes(self) -> bytes:
        return signing_bytes(self.chain, self.sender, self.kind, self.body, self.version)

    def encode(self) -> bytes:
        """The canonical frame, computed once (frames are re-sent and persisted)."""
        if not self.frame:
            data = encode([self.version, self.chain, self.sender, str(self.kind), self.body, self.signature])
            object.__setattr__(self, "frame", data)
        return self.frame


def signing_bytes(chain: str, sender: str, kind: Kind, body: Any, version: int = VERSION) -> bytes:
    return DOMAIN + encode([version, chain, sender, str(kind), body])


def vote_signing_bytes(chain: str, sender: str, kind: Kind, height: int, round: int,
                       block_id: bytes | None) -> bytes:
    """signing_bytes of a vote's body {"height", "round", "block_id"}, built without the
    generic canonical walk (certificates are checked signature by signature): the same
    bytes, since the keys are given in sorted order and plain values encode as they are."""
    if (type(height) is int and type(round) is int and _INT_MIN <= height <= _INT_MAX
            and _INT_MIN <= round <= _INT_MAX and (block_id is None or type(block_id) is bytes)
            and type(chain) is str and type(sender) is str):
        return DOMAIN + _ENCODER.encode([VERSION, chain, sender, str(kind),
                                         {"block_id": block_id, "height": height, "round": round}])
    return signing_bytes(chain, sender, kind, {"height": height, "round": round, "block_id": block_id})


def seal_envelope(chain: str, sender: str, kind: Kind, body: Any, signer: crypto.Signer) -> Envelope:
    """Sign and build an envelope from our own data (LocalError on a bad body)."""
    problem = body_problem(kind, body)
    if problem is not None:
        raise LocalError(f"{kind}: {problem}")
    sb = signing_bytes(chain, sender, kind, body)
    sig = signer.sign(sb)
    return Envelope(VERSION, chain, sender, kind, body, sig, frame_of(sb, sig))


def frame_of(signing: bytes, signature: bytes) -> bytes:
    """The frame from its signing bytes: the same elements under a 6-array
    header, then the signature (the inverse of _signing_bytes_of_frame)."""
    assert signing[len(DOMAIN)] == 0x95 and len(signature) == limits.signature_bytes
    return b"\x96" + signing[len(DOMAIN) + 1:] + b"\xc4\x40" + signature


#: Kinds whose envelope signature a node need not check: a TX frame only carries
#: transactions, each signed by its actor and verified on its own at admission, so a
#: second signature over the same bytes adds nothing a node relies on (who may
#: publish on the topic is the broker's ACL; the reasoning: docs/CONSENSUS.md).
SELF_SIGNED_KINDS = frozenset({Kind.TX})


def decode_envelope(data: bytes, *, chain_id: str, keys: Mapping[str, bytes],
                    verify_self_signed: bool = True) -> Envelope:
    """Check untrusted bytes all the way to the signature.

    `keys` maps each known sender id to its Ed25519 public key. With
    `verify_self_signed` False the envelope signature of SELF_SIGNED_KINDS frames
    is not checked (everything else still is): the node's bus adapter."""
    env = decode_unverified(data)
    if env.chain != chain_id:
        raise DecodeError(Reason.WRONG_CHAIN, f"chain {env.chain!r}")
    key = keys.get(env.sender)
    if key is None:
        raise DecodeError(Reason.UNKNOWN_SENDER, f"sender {env.sender!r}")
    if not verify_self_signed and env.kind in SELF_SIGNED_KINDS:
        return env
    if not crypto.verify(key, _signing_bytes_of_frame(bytes(data)), env.signature):
        raise DecodeError(Reason.BAD_SIGNATURE, f"sender {env.sender!r}")
    return env


_SIG_SUFFIX_BYTES = 2 + limits.signature_bytes  # bin8 header (0xc4, 64) + signature


def _signing_bytes_of_frame(frame: bytes) -> bytes:
    """DOMAIN + canonical([version, chain, sender, kind, body]) cut out of a
    canonical 6-array frame: the same elements under a 5-array header (0x95),
    without the trailing signature. Saves re-encoding the body per receiver."""
    assert frame[0] == 0x96 and frame[-_SIG_SUFFIX_BYTES] == 0xC4
    return DOMAIN + b"\x95" + frame[1:-_SIG_SUFFIX_BYTES]


def decode_unverified(data: bytes) -> Envelope:
    """Decode and shape-check a frame without chain, sender or signature checks."""
    value = decode(data)
    if not isinstance(value, list) or len(value) != 6:
        raise DecodeError(Reason.SHAPE, "envelope is not a 6-element array")
    version, chain, sender, kind, body, sig = value
    if not _uint(version) or not isinstance(chain, str) or not isinstance(sender, str):
        raise DecodeError(Reason.SHAPE, "envelope header has the wrong types")
    if not isinstance(kind, str) or not isinstance(sig, bytes):
        raise DecodeError(Reason.SHAPE, "envelope kind or signature has the wrong type")
    if version != VERSION:
        raise DecodeError(Reason.VERSION, f"version {version}")
    if len(sig) != limits.signature_bytes:
        raise DecodeError(Reason.SHAPE, "signature is not 64 bytes")
    if len(chain) > limits.chain_id_bytes_max or len(sender) > limits.member_id_bytes_max:
        raise DecodeError(Reason.SHAPE, "chain or sender id too long")
    try:
        known = Kind(kind)
    except ValueError:
        raise DecodeError(Reason.UNKNOWN_KIND, repr(kind)[: limits.kind_bytes_max]) from None
    problem = body_problem(known, body)
    if problem is not None:
        raise DecodeError(Reason.SHAPE, f"{known}: {problem}")
    return Envelope(version, chain, sender, known, body, sig, bytes(data))
