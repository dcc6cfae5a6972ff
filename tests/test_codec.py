"""The canonical codec and the signed envelope.

Invariants, in words:
1. Every envelope kind, with any well-shaped body, round-trips: decode(encode(e)) == e
   and re-encoding gives the same bytes.
2. Equal values encode to identical bytes whatever the dict insertion order.
3. Decoding arbitrary bytes yields an Envelope or a DecodeError, nothing else.
4. No single-byte mutation of a valid signed frame is ever accepted as a
   different frame (no forgery), and every rejection is a DecodeError.
"""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortium import codec, crypto, limits
from consortium.codec import Kind, Reason
from consortium.errors import DecodeError, LocalError

CHAIN = "test-chain"
ALICE = crypto.keypair_from_entropy(b"alice")
BOB = crypto.keypair_from_entropy(b"bob")
KEYS = {"alice": ALICE.public_key, "bob": BOB.public_key}
SIGNER = crypto.Signer(ALICE)

u64 = st.integers(min_value=0, max_value=2**64 - 1)
i64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
scalars = st.none() | st.booleans() | i64 | u64 | st.text(max_size=20) | st.binary(max_size=40)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)
b32 = st.binary(min_size=32, max_size=32)

BODIES = {
    Kind.PROPOSAL: st.fixed_dictionaries(
        {"height": u64, "round": u64, "valid_round": i64,
         "block": st.dictionaries(st.text(max_size=8), values, max_size=4),
         "pol": st.lists(st.tuples(st.text(max_size=8), st.binary(min_size=64, max_size=64)).map(list),
                         max_size=3)}),
    Kind.PREVOTE: st.fixed_dictionaries({"height": u64, "round": u64, "block_id": st.none() | b32}),
    Kind.PRECOMMIT: st.fixed_dictionaries({"height": u64, "round": u64, "block_id": st.none() | b32}),
    Kind.TX: st.fixed_dictionaries({"txs": st.lists(st.binary(max_size=200), min_size=1, max_size=4)}),
    Kind.SYNC_REQUEST: st.fixed_dictionaries({"from_height": u64, "to_height": u64}),
    Kind.SYNC_RESPONSE: st.fixed_dictionaries({"blocks": st.lists(values, max_size=3)}),
    Kind.STATUS: st.fixed_dictionaries(
        {"height": u64, "round": u64, "info": st.dictionaries(st.text(max_size=8), values, max_size=4)}),
    Kind.TX_REFUSED: st.fixed_dictionaries({"tx_hash": b32, "code": st.sampled_from(["ROLE", "BSIG", "TOO_LARGE"])}),
}
assert set(BODIES) == set(Kind), "every kind has a body strategy"

envelopes = st.sampled_from(sorted(Kind)).flatmap(
    lambda k: BODIES[k].map(lambda body: codec.seal_envelope(CHAIN, "alice", k, body, SIGNER))
)


@given(envelopes)
def test_every_kind_round_trips_byte_identically(env: codec.Envelope) -> None:
    data = env.encode()
    back = codec.decode_envelope(data, chain_id=CHAIN, keys=KEYS)
    assert back == env
    assert back.encode() == data


@given(st.dictionaries(st.text(max_size=6), values, max_size=8))
def test_equal_values_encode_identically(d: dict) -> None:
    reordered = dict(reversed(list(d.items())))
    assert codec.encode(d) == codec.encode(reordered)
    assert codec.decode(codec.encode(d)) == d


@given(st.binary(max_size=300))
def test_arbitrary_bytes_yield_only_decode_error(data: bytes) -> None:
    try:
        codec.decode_envelope(data, chain_id=CHAIN, keys=KEYS)
    except DecodeError as exc:
        assert exc.reason in set(Reason)


@given(values)
def test_arbitrary_msgpack_values_yield_only_decode_error(value: object) -> None:
    data = msgpack.packb(value, use_bin_type=True)
    try:
        codec.decode_envelope(data, chain_id=CHAIN, keys=KEYS)
    except DecodeError as exc:
        assert exc.reason in set(Reason)


@given(envelopes, st.data())
def test_single_byte_mutations_are_never_accepted(env: codec.Envelope, data: st.DataObject) -> None:
    frame = env.encode()
    i = data.draw(st.integers(0, len(frame) - 1), label="position")
    b = data.draw(st.integers(0, 255).filter(lambda v: v != frame[i]), label="byte")
    mutated = frame[:i] + bytes([b]) + frame[i + 1:]
    try:
        got = codec.decode_envelope(mutated, chain_id=CHAIN, keys=KEYS)
    except DecodeError:
        return
    pytest.fail(f"accepted a mutated frame: {got}")


def test_every_single_byte_mutation_of_one_frame() -> None:
    """Exhaustive over positions for one prevote, with several replacement bytes."""
    env = codec.seal_envelope(CHAIN, "alice", Kind.PREVOTE,
                              {"height": 7, "round": 1, "block_id": b"\x11" * 32}, SIGNER)
    frame = env.encode()
    for i in range(len(frame)):
        for b in {0x00, 0xFF, frame[i] ^ 0x01, frame[i] ^ 0x80}:
            if b == frame[i]:
                continue
            with pytest.raises(DecodeError):
                codec.decode_envelope(frame[:i] + bytes([b]) + frame[i + 1:], chain_id=CHAIN, keys=KEYS)


def _frame(**kw: object) -> bytes:
    env = codec.seal_envelope(CHAIN, "alice", Kind.TX, {"txs": [b"x"]}, SIGNER)
    parts = {"version": env.version, "chain": env.chain, "sender": env.sender, "kind": str(env.kind),
             "body": env.body, "sig": env.signature} | kw
    return codec.encode(list(parts.values()))


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"\xc1", Reason.NOT_MSGPACK),
        (b"\x00" * (limits.frame_bytes_max + 1), Reason.TOO_LARGE),
        (codec.encode([1, 2, 3]), Reason.SHAPE),
        (msgpack.packb({"b": 1, "a": 2}), Reason.NON_CANONICAL),
        (msgpack.packb(1.5), Reason.NON_CANONICAL),
        (_frame(version=2), Reason.VERSION),
        (_frame(kind="gossip"), Reason.UNKNOWN_KIND),
        (_frame(body={"txs": 5}), Reason.SHAPE),
        (_frame(chain="other-chain"), Reason.WRONG_CHAIN),
        (_frame(sender="mallory"), Reason.UNKNOWN_SENDER),
        (_frame(sender="bob"), Reason.BAD_SIGNATURE),
        (_frame(sig=b"\x00" * 64), Reason.BAD_SIGNATURE),
    ],
)
def test_each_reason(data: bytes, reason: Reason) -> None:
    with pytest.raises(DecodeError) as info:
        codec.decode_envelope(data, chain_id=CHAIN, keys=KEYS)
    assert info.value.reason == reason


def test_deep_nesting_is_a_decode_error_not_a_crash() -> None:
    data = b"\x91" * 5000 + b"\xc0"  # 5000 nested one-element arrays
    with pytest.raises(DecodeError):
        codec.decode(data)


def test_floats_and_foreign_types_have_no_canonical_form() -> None:
    for bad in (1.5, {1: "int key"}, object(), 2**64):
        with pytest.raises(LocalError):
            codec.encode(bad)


@given(values)
def test_the_canonical_bytes_are_msgpack_pythons_shortest_encoding(value: object) -> None:
    """The codec encodes and re-encodes with msgspec (C speed); its bytes are exactly
    msgpack-python's packb of the same sorted value, the canonical form the wire always
    had, and they decode back to the value."""
    data = codec.encode(value)
    assert data == msgpack.packb(codec._canon(value, 0), use_bin_type=True)
    assert codec.decode(data) == codec._canon(value, 0)


@pytest.mark.parametrize(
    "data, reason",
    [
        (msgpack.packb(msgpack.ExtType(1, b"x")), Reason.NOT_MSGPACK),
        (msgpack.packb([1, msgpack.ExtType(5, b"")]), Reason.NOT_MSGPACK),
        (b"\xd6\xff\x00\x00\x00\x01", Reason.NOT_MSGPACK),  # a msgpack timestamp (ext -1)
        (msgpack.packb({1: 2}), Reason.NOT_MSGPACK),
        (msgpack.packb({b"a": 2}, use_bin_type=True), Reason.NOT_MSGPACK),
        (msgpack.packb([0] * (limits.codec_items_max + 1)), Reason.NOT_MSGPACK),
        (msgpack.packb({f"k{i:06d}": 0 for i in range(limits.codec_items_max + 1)}), Reason.NOT_MSGPACK),
        (msgpack.packb(["x" * (limits.codec_str_bytes_max + 1)]), Reason.NOT_MSGPACK),
        (msgpack.packb("é" * (limits.codec_str_bytes_max // 2 + 1)), Reason.NOT_MSGPACK),
        (msgpack.packb("x" * limits.codec_str_bytes_max), None),
        (msgpack.packb([[1.5]]), Reason.NON_CANONICAL),
        (msgpack.packb({"a": 1, "a ": 2, "b": {"d": 1, "c": 2}}), Reason.NON_CANONICAL),
        (b"\x82\xa1a\x01\xa1a\x02", Reason.NON_CANONICAL),  # a repeated key
        (b"\xcc\x05", Reason.NON_CANONICAL),  # 5 as uint8: not the shortest form
        (b"\xc0\xc0", Reason.NOT_MSGPACK),  # trailing bytes
        (b"\x91" * (limits.codec_depth_max + 2) + b"\x00", Reason.SHAPE),
    ],
)
def test_decode_refuses_what_the_unpacker_limits_and_the_canonical_rules_refuse(
        data: bytes, reason: Reason | None) -> None:
    """Untrusted bytes get the reason msgpack's bounded unpacker gave before the codec
    decoded with msgspec: ext types (timestamps too), map keys that are not text, lists
    and maps over codec_items_max and text over codec_str_bytes_max bytes are not
    msgpack to us; floats, unsorted or repeated keys and longer-than-shortest encodings
    are not canonical; nesting past codec_depth_max is a shape error. Text of exactly
    codec_str_bytes_max bytes is accepted."""
    if reason is None:
        codec.decode(data)
        return
    with pytest.raises(DecodeError) as info:
        codec.decode(data)
    assert info.value.reason == reason
