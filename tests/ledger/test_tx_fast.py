"""Decoding a transaction and the ledger's memo path, third round of issue 12: same results.

Invariants, in words:
1. `decode_tx` (a typed decode of the outer array for bodies without lists or maps,
   the PII scan skipped when the wire bytes cannot hold an identifier, the Tx built
   slot by slot) gives exactly the former decoder's result: an equal Tx (every field,
   the signing bytes included) or a TxError with the same code and message, for every
   workload transaction and for hand-made and Hypothesis-mutated wire forms
   (non-canonical ints, unsorted or repeated keys, floats, ext types, bools for ints,
   non-text keys, nested bodies, wrong lengths and kinds, flipped/inserted/removed bytes).
2. `privacy.may_hold_identifier(encoded)` is False only when `value_finding` of the
   decoded value finds nothing, under every policy, for any value whose text leaves mix
   valid and spoilt PRC ID numbers, mobiles and digit runs.
3. `Ledger.check_block` (the memo's common case inlined) returns what the former loop
   over `_authentic` returned, for blocks mixing valid txs, forged signatures, other
   chains, unknown actors, non-bytes, garbage, and parties registered earlier in the block.
4. `Ctx.of` (built slot by slot per applied tx) equals `Ctx(...)`, its `actor` the tx's.
The former decoder and loop are copied here (they are not live code).
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import msgpack
from hypothesis import assume, given
from hypothesis import strategies as st

from consortium import codec, crypto
from consortium.consensus.app import BlockContext
from consortium.errors import DecodeError, LocalError
from consortium.ledger import Ledger, make_tx
from consortium.ledger import tx as txm
from consortium.ledger.bodies import BY_KIND, PURPOSES, RegisterParty
from consortium.ledger.fields import TxError
from consortium.ledger.privacy import DEFAULT_POLICY, Policy, may_hold_identifier, value_finding
from consortium.ledger.rules.common import Ctx
from consortium.ledger.workload import Workload
from tests.ledger.helpers import CHAIN, GENESIS, KEYS, SIGNERS
from tests.ledger.test_privacy_fast import POLICIES, VALUES

# ------------------------------------------------------------------ the former code


def former_decode_tx(data: bytes, privacy: Policy = DEFAULT_POLICY) -> txm.Tx:
    if not isinstance(data, bytes):
        raise TxError(txm.Code.BENV, "transaction is not bytes")
    if len(data) > txm.limits.tx_bytes_max:
        raise TxError(txm.Code.BENV, f"transaction is {len(data)} bytes > {txm.limits.tx_bytes_max}")
    try:
        value = codec.decode(data)
    except DecodeError as exc:
        raise TxError(txm.Code.BENV, f"not a canonical transaction ({exc.reason})") from None
    version, chain_id, kind, actor, nonce, raw_body, sig = txm._fields(value)
    txm._scan_pii(raw_body, privacy)
    body = BY_KIND[kind].parse(raw_body, kind)
    txm._scan_parties(body, privacy)
    assert data[0] == 0x97 and data[-66:-64] == txm._SIG_TAIL
    message = txm.DOMAIN + b"\x96" + data[1:-66]
    return txm.Tx(chain_id=chain_id, kind=kind, actor=actor, nonce=nonce, body=body, signature=sig,
                  hash=crypto.digest(data), size=len(data), signing_bytes=message)


def former_check_block(ledger: Ledger, txs: list[Any]) -> str | None:
    registered: dict[str, bytes] = {}
    for raw in txs:
        try:
            tx = ledger._authentic(raw, registered)
        except TxError as exc:
            return str(exc.code)
        if isinstance(tx.body, RegisterParty) and ledger._may_register(tx.actor):
            registered.setdefault(tx.body.party_id, tx.body.public_key)
    return None


def outcome(decode: Any, data: Any) -> Any:
    try:
        return decode(data)
    except TxError as exc:
        return ("refused", exc.code, exc.detail)


def same_decoding(data: Any) -> None:
    new, old = outcome(txm.decode_tx, data), outcome(former_decode_tx, data)
    assert new == old
    if isinstance(new, txm.Tx):
        assert new.signing_bytes == old.signing_bytes and type(new.body) is type(old.body)


# ------------------------------------------------------------------ corpora

WORKLOAD = Workload(GENESIS, KEYS, random.Random(5), invalid_ratio=0.1).take(600, GENESIS.genesis_time_ms + 86_400_000)
SIG = bytes(range(64))
BODY = {"ebl": "ab" * 32, "recipient": "hk-importer"}


def wire(*fields: Any) -> bytes:
    return msgpack.packb(list(fields), use_bin_type=True)  # type: ignore[no-any-return]


def nest(value: Any, k: int) -> Any:
    """`value` inside k - 1 more lists (codec_depth_max is 32: the edge of SHAPE)."""
    for _ in range(k - 1):
        value = [value]
    return value


HANDMADE = [
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, BODY, SIG),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, dict(reversed(BODY.items())), SIG),  # keys unsorted
    wire(True, CHAIN, "TRANSFER", "sh-exporter", 7, BODY, SIG),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", True, BODY, SIG),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", -1, BODY, SIG),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 2**63, BODY, SIG),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 2**64 - 1, BODY, SIG),
    wire(2, CHAIN, "TRANSFER", "sh-exporter", 7, BODY, SIG),
    wire(1, "", "TRANSFER", "sh-exporter", 7, BODY, SIG),
    wire(1, "c" * 65, "TRANSFER", "sh-exporter", 7, BODY, SIG),
    wire(1, CHAIN, "NOPE", "sh-exporter", 7, BODY, SIG),
    wire(1, CHAIN, "TRANSFER", "Bad Actor", 7, BODY, SIG),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, BODY, SIG[:63]),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, BODY, SIG + b"x"),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, BODY, "s" * 64),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, BODY, SIG, 0),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, BODY),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, [BODY], SIG),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, {**BODY, "x": 1.5}, SIG),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, {**BODY, "x": [1]}, SIG),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, {**BODY, "x": {"a": 1}}, SIG),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, {**BODY, "x": [1.5]}, SIG),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, {**BODY, "x": [{"a": msgpack.ExtType(1, b"a")}]}, SIG),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, {**BODY, "x": {"b": 1, "a": 2}}, SIG),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, {**BODY, "recipient": True}, SIG),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, {**BODY, "recipient": None}, SIG),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, {**BODY, "recipient": b"hk-importer"}, SIG),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, {**BODY, "recipient": "110105194912310025"}, SIG),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, {**BODY, "recipient": "13812345678"}, SIG),
    wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, {**BODY, "x": msgpack.ExtType(1, b"a")}, SIG),
    msgpack.packb([1, CHAIN, "TRANSFER", "sh-exporter", 7, {1: "a", **BODY}, SIG], use_bin_type=True,
                  strict_map_key=False) if False else wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, BODY, SIG)[:-1],
    wire(1.0, CHAIN, "TRANSFER", "sh-exporter", 7, BODY, SIG),
    b"\x97\x01" + wire(CHAIN)[1:] + wire("TRANSFER")[1:] + wire("sh-exporter")[1:] + b"\xcd\x00\x07"
    + wire(BODY)[1:] + wire(SIG)[1:],  # nonce 7 as uint16: not minimal
    b"\x97\x01" + wire(CHAIN)[1:] + wire("TRANSFER")[1:] + wire("sh-exporter")[1:] + b"\x07"
    + b"\x83" + wire("ebl")[1:] + wire("ab" * 32)[1:] + wire("ebl")[1:] + wire("ab" * 32)[1:]
    + wire("recipient")[1:] + wire("hk-importer")[1:] + wire(SIG)[1:],  # a repeated key
    b"\x97\x01" + wire(CHAIN)[1:] + wire("TRANSFER")[1:] + wire("sh-exporter")[1:] + b"\x07"
    + b"\x82" + b"\xc4\x03ebl" + wire("ab" * 32)[1:] + wire("recipient")[1:] + wire("hk-importer")[1:]
    + wire(SIG)[1:],  # a binary key
    *(wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, {**BODY, "x": nest([1], k)}, SIG) for k in (30, 31, 32, 33)),
    b"", b"\x97", bytearray(wire(1, CHAIN, "TRANSFER", "sh-exporter", 7, BODY, SIG)), "text", None,
]


def test_decode_equals_the_former_decoder_on_the_workload_and_handmade_forms() -> None:
    """Every workload tx (all kinds, 10 % faulty) and every hand-made wire form decodes
    to an equal Tx or the same refusal as with the former decoder."""
    for data in WORKLOAD + HANDMADE:
        same_decoding(data)


@given(st.sampled_from(WORKLOAD + HANDMADE[:1]), st.integers(0, 10**6), st.integers(0, 255),
       st.sampled_from(["flip", "insert", "delete"]))
def test_decode_equals_the_former_decoder_on_mutated_bytes(data: bytes, at: int, byte: int, how: str) -> None:
    """A workload tx with one byte replaced, inserted or removed: same Tx or same refusal."""
    assume(isinstance(data, bytes) and data)
    i = at % len(data)
    if how == "flip":
        data = data[:i] + bytes([byte]) + data[i + 1:]
    elif how == "insert":
        data = data[:i] + bytes([byte]) + data[i:]
    else:
        data = data[:i] + data[i + 1:]
    same_decoding(data)


@given(st.dictionaries(st.sampled_from(["ebl", "recipient", "x", "a", "zz"]),
                      st.one_of(st.text(max_size=70), st.binary(max_size=40), st.integers(-2**64, 2**64),
                                st.booleans(), st.none(), st.floats(), st.lists(st.integers(0, 3), max_size=2)),
                      max_size=4),
       st.sampled_from(["TRANSFER", "SACC", "DATA_ATTEST", "CONSENT_REVOKE", "NOPE"]),
       st.integers(-2, 2**64 - 1))
def test_decode_equals_the_former_decoder_on_generated_bodies(body: dict[str, Any], kind: str, nonce: int) -> None:
    """Bodies of any keys and leaf values (text, bytes, big ints, bools, nil, floats,
    lists), in any key order: same Tx or same refusal."""
    try:
        data = wire(1, CHAIN, kind, "sh-exporter", nonce, body, SIG)
    except (OverflowError, ValueError):
        return
    same_decoding(data)


@given(VALUES, st.sampled_from(range(len(POLICIES))))
def test_may_hold_identifier_is_false_only_without_a_finding(value: Any, policy: int) -> None:
    """When the canonical bytes of a value hold no identifier's shape, value_finding of
    that value (decoded from those bytes) is None under every policy."""
    try:
        encoded = codec.encode(value)
    except (LocalError, UnicodeEncodeError):  # no canonical form: never on the wire
        return
    if not may_hold_identifier(encoded):
        assert value_finding(codec.decode(encoded), "body", POLICIES[policy]) is None


def test_may_hold_identifier_sees_real_identifiers() -> None:
    """Real ID numbers and mobiles, as text or bytes, alone or inside a body: found."""
    for leaf in ("11010519491231002X", "+86 138-1234-5678", "13812345678", "0086 13812345678"):
        for value in (leaf, leaf.encode(), {"a": ["x", leaf]}):
            assert value_finding(value, "body") is not None
            assert may_hold_identifier(codec.encode(value))


def test_check_block_equals_the_former_loop() -> None:
    """Blocks drawn from valid txs, forged signatures, another chain, an unknown actor,
    non-bytes, garbage, and a party registered in the block then acting: the same verdict
    as the former loop over `_authentic`, from a cold and from a warm memo."""
    newcomer = crypto.keypair_from_seed(b"n" * 32)
    register = make_tx("REGISTER_PARTY", "hkma", {"party_id": "newcomer", "name": "New", "role": "shipper",
                                                  "jurisdiction": "HK", "public_key": newcomer.public_key},
                       SIGNERS["hkma"], 1, CHAIN)
    revoke = {"data_id": "d-1", "grantee": "hk-importer", "purpose": PURPOSES[0]}
    acts = make_tx("CONSENT_REVOKE", "newcomer", revoke, crypto.Signer(newcomer), 1, CHAIN)
    forged = make_tx("CONSENT_REVOKE", "sh-exporter", revoke, SIGNERS["hk-importer"], 1, CHAIN)
    other = make_tx("CONSENT_REVOKE", "sh-exporter", revoke, SIGNERS["sh-exporter"], 2, "other")
    stranger = make_tx("CONSENT_REVOKE", "nobody", revoke, SIGNERS["sh-exporter"], 3, CHAIN)
    pool: list[Any] = [*WORKLOAD[:40], register, acts, forged, other, stranger, "text", b"\x90", bytearray(acts)]
    rng = random.Random(3)
    ctx = BlockContext(1, GENESIS.genesis_time_ms + 1000, "hkma")
    for round_ in range(300):
        ledger = Ledger(GENESIS)
        block = rng.sample(pool, rng.randint(1, 6))
        if round_ % 3 == 0:
            block = [register, *block, acts]
        if round_ % 2:
            for x in block:
                ledger.check_tx(x)
        assert ledger.check_block(ctx, block) == former_check_block(Ledger(GENESIS), block)
        assert ledger.check_block(ctx, block) == former_check_block(ledger, block)
    # A signature the memo verified with the key registered in a block, while the state
    # later holds another key for that party: refused as before.
    ledger = Ledger(GENESIS)
    assert ledger.check_block(ctx, [register, acts]) is None
    other_key = crypto.keypair_from_seed(b"o" * 32).public_key
    ledger.apply_block(ctx, [make_tx("REGISTER_PARTY", "hkma", {
        "party_id": "newcomer", "name": "New", "role": "shipper", "jurisdiction": "HK",
        "public_key": other_key}, SIGNERS["hkma"], 2, CHAIN)])
    assert ledger.check_block(ctx, [acts]) == former_check_block(Ledger(GENESIS), [acts]) == "BSIG"


def test_ctx_of_equals_the_dataclass_constructor() -> None:
    """`Ctx.of` (slot by slot, as apply builds it per tx) equals `Ctx(...)` and both
    carry the tx's actor."""
    for data in WORKLOAD[:50]:
        try:
            tx = txm.decode_tx(data)
        except TxError:
            continue
        a, b = Ctx.of(7, 1234, dt.date(2026, 3, 2), tx), Ctx(7, 1234, dt.date(2026, 3, 2), tx)
        assert a == b and (a.actor, a.date, repr(a)) == (b.actor, b.date, repr(b)) == (tx.actor, "2026-03-02", repr(b))
