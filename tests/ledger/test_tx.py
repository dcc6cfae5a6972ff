"""Transactions on the wire and the stateless gate (check_tx, check_block).

Invariants, in words:
1. A transaction built by make_tx decodes to the same kind, actor, nonce and body.
2. Decoding arbitrary bytes yields a Tx or a TxError with a reason code, nothing else.
3. No single-byte change of a signed transaction is accepted as a valid transaction.
4. A block holding a transaction that can never be valid (malformed, forged, another
   chain's, plaintext mainland PII) is invalid; a valid block is applied without
   verifying any signature a second time.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortium import codec, crypto, limits
from consortium.consensus.app import BlockContext
from consortium.ledger import Ledger, decode_tx, make_tx
from consortium.ledger import tx as txmod
from consortium.ledger.codes import Code
from consortium.ledger.fields import TxError
from tests.ledger.helpers import CHAIN, GENESIS, KEYS, SIGNERS, Net

TRANSFER = {"ebl": "ab" * 32, "recipient": "hk-importer"}
CTX = BlockContext(height=1, time_ms=GENESIS.genesis_time_ms + 86_400_000, proposer="hkma")


def signed(kind: str = "TRANSFER", actor: str = "sh-exporter", body: dict | None = None, nonce: int = 1,
           **kw: object) -> bytes:
    return make_tx(kind, actor, TRANSFER if body is None else body, SIGNERS[actor], nonce, CHAIN, **kw)  # type: ignore[arg-type]


def test_make_and_decode_round_trip() -> None:
    """make_tx then decode_tx gives back every field; the signature covers them."""
    data = signed(nonce=7)
    tx = decode_tx(data)
    assert (tx.chain_id, tx.kind, tx.actor, tx.nonce, tx.body.to_dict()) == (CHAIN, "TRANSFER", "sh-exporter", 7,
                                                                              TRANSFER)
    assert tx.hash == crypto.digest(data) and tx.signed_by(KEYS["sh-exporter"].public_key)
    assert tx.signing_bytes == txmod.signing_bytes(CHAIN, "TRANSFER", "sh-exporter", 7, TRANSFER)
    assert not tx.signed_by(KEYS["hk-importer"].public_key)


@given(st.binary(max_size=400))
def test_arbitrary_bytes_yield_a_tx_error(data: bytes) -> None:
    """Hostile bytes give a Tx or a TxError with a known code, never another exception."""
    try:
        decode_tx(data)
    except TxError as exc:
        assert exc.code in set(Code)


@given(st.integers(min_value=0), st.integers(min_value=1, max_value=255))
def test_no_byte_flip_is_accepted(position: int, flip: int) -> None:
    """No single-byte change of a signed tx passes the gate."""
    data = bytearray(signed())
    data[position % len(data)] ^= flip
    ledger = Ledger(GENESIS)
    assert ledger.check_tx(bytes(data)) in {"BENV", "BSIG", "PII"}


@pytest.mark.parametrize("make, code", [
    (lambda: signed(kind="NOPE", validate=False), "BENV"),
    (lambda: signed(body={"ebl": "x"}, validate=False), "BENV"),
    (lambda: make_tx("TRANSFER", "sh-exporter", TRANSFER, SIGNERS["sh-exporter"], 1, "other-chain"), "BENV"),
    (lambda: make_tx("TRANSFER", "sh-exporter", TRANSFER, SIGNERS["hk-importer"], 1, CHAIN), "BSIG"),
    (lambda: make_tx("TRANSFER", "nobody", TRANSFER, SIGNERS["hk-importer"], 1, CHAIN), "BSIG"),
    (lambda: codec.encode([1, CHAIN, "TRANSFER", "sh-exporter", 1, TRANSFER, b"\0" * 63]), "BSIG"),
    (lambda: codec.encode([2, CHAIN, "TRANSFER", "sh-exporter", 1, TRANSFER, b"\0" * 64]), "BENV"),
    (lambda: b"\x00" * (limits.tx_bytes_max + 1), "BENV"),
    (lambda: signed(kind="DATA_ATTEST", actor="sdb", validate=False, body={
        "data_id": "D1", "owner": "sh-exporter", "category": "KYC", "salted_hash": bytes(32),
        "schema": "id 11010519491231002X", "size": 1}), "PII"),
    (lambda: signed(kind="LC_WAIVE", validate=False, body={"lc_id": "L1", "presentation_id": "call 13812345678"}),
     "PII"),
])
def test_a_tx_that_can_never_be_valid_invalidates_its_block(make: object, code: str) -> None:
    """Stateless failures are block-invalidating (check_block) and rejected on apply too."""
    data = make()  # type: ignore[operator]
    ledger = Ledger(GENESIS)
    good = signed(nonce=99)
    assert ledger.check_tx(data) == code
    assert ledger.check_block(CTX, [good, data]) == code
    assert ledger.check_block(CTX, [good]) is None
    assert [r.code for r in ledger.apply_block(CTX, [good, data])][1] == code


def test_make_tx_refuses_to_sign_what_decode_would_reject() -> None:
    """The builder refuses, with decode's code, a body decode would reject."""
    with pytest.raises(TxError) as exc:
        signed(body={"ebl": "not hex", "recipient": "hk-importer"})
    assert exc.value.code == "BENV"


def test_a_block_may_register_a_party_and_then_carry_its_transaction() -> None:
    """check_block knows keys registered earlier in the same block (by HKMA or SDB)."""
    newcomer = crypto.keypair_from_seed(b"n" * 32)
    register = make_tx("REGISTER_PARTY", "hkma", {"party_id": "hk-newco", "name": "NewCo", "role": "consignee",
                                                  "jurisdiction": "HK", "public_key": newcomer.public_key},
                       SIGNERS["hkma"], 1, CHAIN)
    act = make_tx("SIGN", "hk-newco", {"ebl": "cd" * 32}, crypto.Signer(newcomer), 1, CHAIN)
    ledger = Ledger(GENESIS)
    assert ledger.check_block(CTX, [act]) == "BSIG"
    assert ledger.check_block(CTX, [register, act]) is None
    assert [r.code for r in ledger.apply_block(CTX, [register, act])] == ["OK", "MDOC"]


def test_check_block_then_apply_block_verifies_each_signature_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """check_block then apply_block verify each signature exactly once (memo)."""
    calls = []
    real = crypto.verify

    def counting(public_key: bytes, message: bytes, signature: bytes) -> bool:
        calls.append(signature)
        return real(public_key, message, signature)

    monkeypatch.setattr(crypto, "verify", counting)
    txs = [signed(nonce=n) for n in range(1, 21)]
    ledger = Ledger(GENESIS)
    assert ledger.check_block(CTX, txs) is None
    ledger.apply_block(CTX, txs)
    assert len(calls) == 20 and len(set(calls)) == 20


def test_nonces_are_spent_once_and_rejected_txs_spend_theirs() -> None:
    """Replay protection: a nonce is accepted once (DUPE after), also when the tx was
    rejected by a rule; gaps and reordering within the window are fine; the window's floor
    rises past old nonces."""
    net = Net()
    first = net.tx("TRANSFER", "sh-exporter", TRANSFER, nonce=5)
    assert net.block(first)[0].code == "MDOC"  # no such eBL: rejected, nonce spent
    assert net.block(first)[0].code == "DUPE"
    other_body = net.tx("SIGN", "sh-exporter", {"ebl": "ab" * 32}, nonce=5)
    assert net.block(other_body)[0].code == "DUPE"
    assert net.block(net.tx("SIGN", "sh-exporter", {"ebl": "ab" * 32}, nonce=3))[0].code == "MDOC"
    many = [net.tx("SIGN", "sh-exporter", {"ebl": "ab" * 32}, nonce=n) for n in range(100, 100 + limits.used_nonces_max)]
    net.block(*many)
    assert net.ledger.check_tx(net.tx("SIGN", "sh-exporter", {"ebl": "ab" * 32}, nonce=4)) == "DUPE"  # below floor
    assert net.ledger.next_nonce("sh-exporter") == 100 + limits.used_nonces_max


def test_check_tx_applies_role_rules_but_changes_nothing() -> None:
    """check_tx applies role rules and leaves the state root unchanged."""
    ledger = Ledger(GENESIS)
    root = ledger.state_root()
    forged_issue = make_tx("SACC", "sh-exporter", {"ebl": "ab" * 32}, SIGNERS["sh-exporter"], 1, CHAIN)
    assert ledger.check_tx(forged_issue) == "ROLE"
    assert ledger.check_tx(signed()) is None
    assert ledger.state_root() == root


def test_the_memo_is_bounded_and_forgets_its_oldest_tx_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """The decode/verify memo holds at most MEMO_MAX txs and, when full, forgets the one it
    learnt first (FIFO): the newest txs, those a proposal or the apply is about to look up,
    stay. A forgotten tx is decoded and verified again, to the same verdict."""
    from consortium.ledger import ledger as ledger_mod
    monkeypatch.setattr(ledger_mod, "MEMO_MAX", 8)
    ledger = Ledger(GENESIS)
    txs = [signed(nonce=i) for i in range(1, 21)]
    verdicts = [ledger.check_tx(tx) for tx in txs]
    assert list(ledger._memo) == txs[-8:]
    verifies = 0
    real = crypto.verify

    def counting(*args: object) -> bool:
        nonlocal verifies
        verifies += 1
        return real(*args)  # type: ignore[arg-type]
    monkeypatch.setattr(crypto, "verify", counting)
    assert ledger.check_tx(txs[-1]) == verdicts[-1] and verifies == 0  # remembered
    assert ledger.check_tx(txs[0]) == verdicts[0] and verifies == 1  # forgotten: checked again
    assert list(ledger._memo) == txs[-7:] + [txs[0]]
