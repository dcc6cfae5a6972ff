"""Settlement in tokenised deposits (rules/settlement.py), after HKMA's Project Ensemble.

Every block of every story is followed by check_invariants (tests.ledger.helpers.Net),
so each story also shows that no negative balance, supply = recorded liabilities and
"no payment without a matching obligation" hold along the way.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from consortium.ledger import builders, queries
from consortium.ledger import records as r
from consortium.ledger import state as t
from consortium.ledger.bodies import BY_KIND
from consortium.ledger.fields import Opt, spec
from consortium.ledger.invariants import check_invariants
from tests.ledger.helpers import Net, example
from tests.ledger.test_stories import HK_LC, presentation


def pay(payee: str, payee_bank: str, currency: str, amount: int, bank: str, obligation: str | None = None,
        ref: str | None = None) -> dict[str, Any]:
    return {"bank": bank, "payee": payee, "payee_bank": payee_bank, "currency": currency, "amount": amount,
            "obligation": obligation, "ref": ref}


def full(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """`body` with every optional field it leaves out as nil (fields other rules may add)."""
    return {**{n: None for n, c in spec(BY_KIND[kind]) if isinstance(c, Opt) and n not in body}, **body}


def bal(net: Net, bank: str, currency: str, holder: str) -> int:
    return int(queries.account(net.ledger, bank, currency, holder)["balance"])


def liabilities(net: Net) -> dict[str, int]:
    return {f"{x.bank}/{x.currency}": x.amount for _, x in net.ledger.state.rows(t.LIAB)}


def funded(amount: int = 1_000_000_00, currency: str = "CNH") -> Net:
    """The Hong Kong importer holds `amount` of bank-hk's `currency` tokens."""
    net = Net()
    net.ok("TOKEN_ISSUE", "bank-hk", {"holder": "hk-importer", "currency": currency, "amount": amount})
    return net


def test_cross_border_payment_settles_customers_and_records_the_interbank_leg() -> None:
    """A Hong Kong importer pays a Shanghai exporter in CNH: bank-hk's tokens are burnt,
    bank-sh's minted, bank-hk owes bank-sh the amount (net position), HKMA sees a HK->CN-SH
    CNH flow; bank-sh acknowledging settlement clears the position; the exporter redeems.
    Supply equals liabilities at every step (checked after each block)."""
    net = funded(500_000_00)
    net.ok("PAY", "hk-importer", pay("sh-exporter", "bank-sh", "CNH", 200_000_00, "bank-hk"))
    assert (bal(net, "bank-hk", "CNH", "hk-importer"), bal(net, "bank-sh", "CNH", "sh-exporter")) == (
        300_000_00, 200_000_00)
    assert liabilities(net) == {"bank-hk/CNH": 300_000_00, "bank-sh/CNH": 200_000_00}
    view = queries.cross_border(net.ledger)
    assert [(f["origin"], f["destination"], f["currency"], f["count"], f["total"]) for f in view["flows"]] == [
        ("HK", "CN-SH", "CNH", 1, 200_000_00)]
    assert [(p["debtor"], p["creditor"], p["amount"]) for p in view["positions"]] == [
        ("bank-hk", "bank-sh", 200_000_00)]
    # A payment the other way nets the position instead of opening a second one.
    net.ok("PAY", "sh-exporter", pay("hk-importer", "bank-hk", "CNH", 50_000_00, "bank-sh"))
    pos = queries.cross_border(net.ledger)["positions"]
    assert [(p["debtor"], p["creditor"], p["amount"]) for p in pos] == [("bank-hk", "bank-sh", 150_000_00)]
    assert net.do("INTERBANK_SETTLE", "bank-sh", {"debtor": "bank-hk", "currency": "CNH",
                                                  "amount": 150_000_01}).code == "AMOUNT"
    net.ok("INTERBANK_SETTLE", "bank-sh", {"debtor": "bank-hk", "currency": "CNH", "amount": 150_000_00})
    assert queries.cross_border(net.ledger)["positions"] == []
    net.ok("TOKEN_REDEEM", "sh-exporter", {"bank": "bank-sh", "currency": "CNH", "amount": 150_000_00})
    assert bal(net, "bank-sh", "CNH", "sh-exporter") == 0
    assert liabilities(net) == {"bank-hk/CNH": 350_000_00}


def test_refusal_codes_of_bad_settlement_transactions() -> None:
    """Each bad case is refused with its own code and changes no balance: overdraft (FUNDS),
    a currency without a deposit token (CURRENCY), issuing by a non-bank (ROLE), paying
    against an LC or a financing that does not exist (UNKNOWN), against one not yet owed or
    owed to someone else (OBLIGATION), by someone who does not owe it (AUTH), more than is
    due (AMOUNT), to oneself or to a non-bank as bank (BENV), redeeming more than held
    (FUNDS), settling a position that does not exist (UNKNOWN)."""
    net = funded(1_000)
    before = dict(net.ledger.state.items(t.ACCOUNT))
    cases = [
        ("PAY", "hk-importer", pay("sh-exporter", "bank-sh", "CNH", 1_001, "bank-hk"), "FUNDS"),
        ("PAY", "hk-importer", pay("sh-exporter", "bank-sh", "EUR", 1, "bank-hk"), "CURRENCY"),
        ("TOKEN_ISSUE", "bank-hk", {"holder": "hk-importer", "currency": "JPY", "amount": 5}, "CURRENCY"),
        ("TOKEN_ISSUE", "hk-importer", {"holder": "hk-distributor", "currency": "HKD", "amount": 5}, "ROLE"),
        ("TOKEN_ISSUE", "carrier-hk", {"holder": "hk-importer", "currency": "HKD", "amount": 5}, "ROLE"),
        ("TOKEN_ISSUE", "bank-hk", {"holder": "bank-hk", "currency": "HKD", "amount": 5}, "BENV"),
        ("PAY", "bank-hk", pay("sh-exporter", "bank-sh", "CNH", 5, "bank-hk", "LC_HONOUR", "NO-LC/P1"), "UNKNOWN"),
        ("PAY", "bank-hk", pay("sh-exporter", "bank-sh", "CNH", 5, "bank-hk", "LOAN_DISBURSE", "NO-FIN"), "UNKNOWN"),
        ("PAY", "hk-importer", pay("bank-hk", "bank-sh", "CNH", 5, "bank-hk", "LOAN_REPAY", "NO-FIN"), "UNKNOWN"),
        ("PAY", "hk-importer", pay("hk-importer", "bank-hk", "CNH", 5, "bank-hk"), "BENV"),
        ("PAY", "hk-importer", pay("sh-exporter", "sh-exporter", "CNH", 5, "bank-hk"), "BENV"),
        ("PAY", "hk-importer", pay("sh-exporter", "bank-sh", "CNH", 5, "carrier-hk"), "BENV"),
        ("PAY", "sh-exporter", pay("hk-importer", "bank-hk", "CNH", 5, "sh-exporter"), "BENV"),  # not a bank's funds
        ("TOKEN_REDEEM", "hk-importer", {"bank": "bank-hk", "currency": "CNH", "amount": 1_001}, "FUNDS"),
        ("TOKEN_REDEEM", "hk-importer", {"bank": "bank-sh", "currency": "CNH", "amount": 1}, "FUNDS"),
        ("INTERBANK_SETTLE", "bank-sh", {"debtor": "bank-hk", "currency": "CNH", "amount": 1}, "UNKNOWN"),
        ("INTERBANK_SETTLE", "hk-importer", {"debtor": "bank-hk", "currency": "CNH", "amount": 1}, "ROLE"),
    ]
    got = [(kind, actor, net.do(kind, actor, body).code) for kind, actor, body, _ in cases]
    assert got == [(kind, actor, code) for kind, actor, _, code in cases]
    assert dict(net.ledger.state.items(t.ACCOUNT)) == before


def _honoured_lc(net: Net) -> None:
    net.ok("LC_ISSUE", "bank-hk", full("LC_ISSUE", HK_LC))
    net.ok("LC_ADVISE", "bank-sh", {"lc_id": "LC-HK-001"})
    net.load_examples()
    ebl = net.issue(example("transport-document-to-order.json"), "carrier-sh", "sh-exporter",
                    endorsee="sh-exporter")
    net.ok("BLANK_ENDORSE", "sh-exporter", {"ebl": ebl})
    net.on("2026-03-05")
    net.ok("LC_PRESENT", "sh-exporter", full("LC_PRESENT", presentation(ebl)))


def test_lc_honour_moves_tokens_only_against_the_honoured_presentation() -> None:
    """The issuing bank pays the beneficiary for an honoured presentation: before the honour
    there is nothing owed (OBLIGATION); another payer is AUTH, another payee or currency is
    OBLIGATION; it pays up to the invoice amount and no more (AMOUNT)."""
    net = Net()
    _honoured_lc(net)
    claim = pay("sh-exporter", "bank-sh", "USD", 240_000_00, "bank-hk", "LC_HONOUR", "LC-HK-001/P1")
    assert net.do("PAY", "bank-hk", claim).code == "OBLIGATION"  # presented, not honoured
    net.ok("LC_HONOUR", "bank-hk", full("LC_HONOUR", {"lc_id": "LC-HK-001", "presentation_id": "P1"}))
    assert net.do("PAY", "bank-sh", {**claim, "bank": "bank-sh", "payee_bank": "bank-hk"}).code == "AUTH"
    assert net.do("PAY", "bank-hk", {**claim, "payee": "sh-supplier"}).code == "OBLIGATION"
    assert net.do("PAY", "bank-hk", {**claim, "currency": "HKD"}).code == "OBLIGATION"
    assert net.do("PAY", "bank-hk", {**claim, "ref": "LC-HK-001/P2"}).code == "UNKNOWN"
    net.ok("PAY", "bank-hk", {**claim, "amount": 200_000_00})
    assert net.do("PAY", "bank-hk", {**claim, "amount": 40_000_01}).code == "AMOUNT"
    net.ok("PAY", "bank-hk", {**claim, "amount": 40_000_00})
    assert bal(net, "bank-sh", "USD", "sh-exporter") == 240_000_00
    assert [(p["debtor"], p["creditor"], p["amount"]) for p in queries.cross_border(net.ledger)["positions"]] == [
        ("bank-hk", "bank-sh", 240_000_00)]


def test_loan_disbursement_and_repayment_move_tokens_and_the_outstanding_amount() -> None:
    """A receivables financing: the lender disburses to the borrower only once it is LIVE
    and at most its amount; the borrower's repayments reduce the outstanding amount as
    FIN_REPAY does, and the last one makes it REPAID and frees the invoice's lien."""
    net = Net()
    invoice = builders.fingerprint({"invoice": "INV-77"})
    net.ok("FIN_REQUEST", "sh-exporter", {"fin_id": "RF-1", "kind": "RECEIVABLES", "lender": "bank-sh",
                                          "currency": "CNH", "amount": 80_000_00,
                                          "collateral": [{"type": "INVOICE", "fingerprint": invoice}]})
    out = pay("sh-exporter", "bank-sh", "CNH", 80_000_00, "bank-sh", "LOAN_DISBURSE", "RF-1")
    assert net.do("PAY", "bank-sh", out).code == "OBLIGATION"  # requested, not approved
    net.ok("FIN_APPROVE", "bank-sh", {"fin_id": "RF-1"})
    assert net.do("PAY", "bank-sh", {**out, "amount": 80_000_01}).code == "AMOUNT"
    net.ok("PAY", "bank-sh", out)
    assert bal(net, "bank-sh", "CNH", "sh-exporter") == 80_000_00
    back = pay("bank-sh", "bank-sh", "CNH", 30_000_00, "bank-hk", "LOAN_REPAY", "RF-1")
    assert net.do("PAY", "bank-hk", back).code == "AUTH"  # the borrower repays
    assert net.do("PAY", "sh-exporter", {**back, "payee": "bank-hk", "payee_bank": "bank-hk"}).code == "OBLIGATION"
    # Part in bank-hk's tokens (bank-hk then owes bank-sh), the rest in bank-sh's own (burnt).
    net.ok("TOKEN_ISSUE", "bank-hk", {"holder": "sh-exporter", "currency": "CNH", "amount": 30_000_00})
    net.ok("PAY", "sh-exporter", back)
    fin = queries.financing(net.ledger, "RF-1")
    assert fin is not None and (fin["outstanding"], fin["status"]) == (50_000_00, "LIVE")
    assert [(p["debtor"], p["creditor"], p["amount"]) for p in queries.cross_border(net.ledger)["positions"]] == [
        ("bank-hk", "bank-sh", 30_000_00)]
    back = {**back, "bank": "bank-sh"}
    assert net.do("PAY", "sh-exporter", {**back, "amount": 50_000_01}).code == "AMOUNT"
    net.ok("PAY", "sh-exporter", {**back, "amount": 50_000_00})
    fin = queries.financing(net.ledger, "RF-1")
    assert fin is not None and (fin["outstanding"], fin["status"], fin["liens"]) == (0, "REPAID", [])
    assert bal(net, "bank-sh", "CNH", "sh-exporter") == 30_000_00
    assert liabilities(net) == {"bank-sh/CNH": 30_000_00}
    assert net.do("PAY", "sh-exporter", {**back, "amount": 1}).code == "OBLIGATION"  # REPAID


# ------------------------------------------------------------------ delivery versus payment


def dvp_world(amount: int = 1_000_000_00, funds: int = 1_000_000_00) -> tuple[Net, str]:
    """A straight eBL to the Hong Kong importer, held by the Shanghai exporter; the
    importer (funded with `funds` CNH at bank-hk) offers `amount` CNH for it."""
    net = funded(funds)
    ebl = net.shipment("DVP0001")
    net.ok("DVP_OFFER", "hk-importer", {"dvp_id": "DVP-1", "ebl": ebl, "seller": "sh-exporter", "bank": "bank-hk",
                                        "seller_bank": "bank-sh", "currency": "CNH", "amount": amount})
    return net, ebl


def test_dvp_delivers_the_ebl_and_pays_in_one_transaction() -> None:
    """The seller's DVP moves the eBL to the buyer and the buyer's CNH to the seller in one
    tx; the offer is SETTLED and cannot be settled or cancelled again (STATE); only the
    seller settles (AUTH); the importer can then take delivery."""
    net, ebl = dvp_world()
    assert net.do("DVP", "hk-importer", {"dvp_id": "DVP-1"}).code == "AUTH"
    result = net.ok("DVP", "sh-exporter", {"dvp_id": "DVP-1"})
    view = net.ebl(ebl)
    assert view["possessor"] == "hk-importer"
    assert view["chain"][-1]["action"] == "TRANSFER" and view["chain"][-1]["tx_hash"] == result.tx_hash.hex()
    assert (bal(net, "bank-hk", "CNH", "hk-importer"), bal(net, "bank-sh", "CNH", "sh-exporter")) == (0, 1_000_000_00)
    assert queries.dvp(net.ledger, "DVP-1")["status"] == "SETTLED"  # type: ignore[index]
    assert net.do("DVP", "sh-exporter", {"dvp_id": "DVP-1"}).code == "STATE"
    assert net.do("DVP_CANCEL", "hk-importer", {"dvp_id": "DVP-1"}).code == "STATE"
    net.ok("SURRENDER_FOR_DELIVERY", "hk-importer", {"ebl": ebl, "recipient": "carrier-sh"})


def test_dvp_whose_payment_fails_leaves_the_ebl_with_the_seller_and_balances_unchanged() -> None:
    """Both or neither: the buyer's tokens do not cover the price, so the DVP is FUNDS and
    nothing happened: the eBL is still the seller's (no chain entry), every balance is as
    before, the offer is still open."""
    net, ebl = dvp_world(amount=1_000_000_00, funds=999_999_99)
    chain_before = net.ebl(ebl)["chain_len"]
    accounts = dict(net.ledger.state.items(t.ACCOUNT))
    assert net.do("DVP", "sh-exporter", {"dvp_id": "DVP-1"}).code == "FUNDS"
    assert (net.ebl(ebl)["possessor"], net.ebl(ebl)["chain_len"]) == ("sh-exporter", chain_before)
    assert dict(net.ledger.state.items(t.ACCOUNT)) == accounts
    assert queries.dvp(net.ledger, "DVP-1")["status"] == "OFFERED"  # type: ignore[index]


@pytest.mark.parametrize("spoil, code", [("transfer", "DISE"), ("pledge", "PLEDGED")])
def test_dvp_whose_transfer_fails_moves_no_money(spoil: str, code: str) -> None:
    """Both or neither: the seller no longer possesses the eBL (sold it elsewhere: DISE) or
    holds it pledged under a trust receipt (PLEDGED), so the DVP is refused and no token moved."""
    net, ebl = dvp_world()
    if spoil == "transfer":
        net.ok("TRANSFER", "sh-exporter", {"ebl": ebl, "recipient": "hk-distributor"})
    else:
        net.ok("PLEDGE", "sh-exporter", {"ebl": ebl, "pledgee": "bank-sh", "financing": None})
        net.ok("TRUST_RECEIPT", "bank-sh", {"ebl": ebl})  # back in the seller's hands, still pledged
    accounts, liab = dict(net.ledger.state.items(t.ACCOUNT)), liabilities(net)
    assert net.do("DVP", "sh-exporter", {"dvp_id": "DVP-1"}).code == code
    assert dict(net.ledger.state.items(t.ACCOUNT)) == accounts and liabilities(net) == liab
    assert queries.cross_border(net.ledger) == {"flows": [], "positions": [], "liabilities": [
        {"bank": "bank-hk", "currency": "CNH", "amount": 1_000_000_00, "jurisdiction": "HK"}]}


def test_dvp_of_a_to_order_bill_endorses_it_to_the_buyer() -> None:
    """A to-order eBL endorsed to the seller: the DVP endorses it to the buyer and hands it
    over in the same tx, so the buyer holds title (it can surrender for delivery)."""
    net = funded()
    ebl = net.shipment("DVP0002", consignee=None, endorsee="sh-exporter")
    net.ok("DVP_OFFER", "hk-importer", {"dvp_id": "DVP-2", "ebl": ebl, "seller": "sh-exporter", "bank": "bank-hk",
                                        "seller_bank": "bank-sh", "currency": "CNH", "amount": 10})
    net.ok("DVP", "sh-exporter", {"dvp_id": "DVP-2"})
    view = net.ebl(ebl)
    assert (view["possessor"], view["title_holder"]) == ("hk-importer", "hk-importer")
    assert [x["action"] for x in view["chain"][-2:]] == ["ENDORSE_TO_ORDER", "TRANSFER"]
    net.ok("SURRENDER_FOR_DELIVERY", "hk-importer", {"ebl": ebl, "recipient": "carrier-sh"})


def test_dvp_offer_refusals() -> None:
    """An offer names an existing eBL (MDOC), a token currency (CURRENCY), banks (BENV), a new
    id (DUPE); only its buyer cancels it (AUTH); a cancelled offer cannot settle (STATE)."""
    net, ebl = dvp_world()
    offer = {"dvp_id": "DVP-9", "ebl": ebl, "seller": "sh-exporter", "bank": "bank-hk", "seller_bank": "bank-sh",
             "currency": "CNH", "amount": 1}
    assert net.do("DVP_OFFER", "hk-importer", {**offer, "ebl": "ab" * 32}).code == "MDOC"
    assert net.do("DVP_OFFER", "hk-importer", {**offer, "currency": "GBP"}).code == "CURRENCY"
    assert net.do("DVP_OFFER", "hk-importer", {**offer, "seller_bank": "hkma"}).code == "BENV"
    assert net.do("DVP_OFFER", "hk-importer", {**offer, "dvp_id": "DVP-1"}).code == "DUPE"
    assert net.do("DVP_CANCEL", "sh-exporter", {"dvp_id": "DVP-1"}).code == "AUTH"
    assert net.do("DVP", "sh-exporter", {"dvp_id": "DVP-404"}).code == "UNKNOWN"
    net.ok("DVP_CANCEL", "hk-importer", {"dvp_id": "DVP-1"})
    assert net.do("DVP", "sh-exporter", {"dvp_id": "DVP-1"}).code == "STATE"
    assert net.ebl(ebl)["possessor"] == "sh-exporter"


# ------------------------------------------------------------------ the invariant checker


@pytest.fixture()
def paid() -> Net:
    """A cross-border payment and a disbursed loan on the ledger."""
    net = funded(1_000)
    net.ok("PAY", "hk-importer", pay("sh-exporter", "bank-sh", "CNH", 400, "bank-hk"))
    net.ok("FIN_REQUEST", "sh-exporter", {"fin_id": "F1", "kind": "PRE_SHIPMENT", "lender": "bank-sh",
                                          "currency": "CNH", "amount": 500,
                                          "collateral": [{"type": "PO", "fingerprint": builders.fingerprint("PO")}]})
    net.ok("FIN_APPROVE", "bank-sh", {"fin_id": "F1"})
    net.ok("PAY", "bank-sh", pay("sh-exporter", "bank-sh", "CNH", 300, "bank-sh", "LOAN_DISBURSE", "F1"))
    assert check_invariants(net.ledger) == []
    return net


def _negative(s: t.State) -> None:
    a = s.get(t.ACCOUNT, "bank-hk/CNH/hk-importer")
    assert a is not None
    s.put(t.ACCOUNT, "bank-hk/CNH/hk-importer", replace(a, balance=-5))
    s.put(t.LIAB, "bank-hk/CNH", r.Liabilities("bank-hk", "CNH", -5))


def _minted_unrecorded(s: t.State) -> None:
    s.put(t.ACCOUNT, "bank-hk/HKD/hk-distributor", r.Account("bank-hk", "HKD", "hk-distributor", 7))


def _liability_forgotten(s: t.State) -> None:
    s.delete(t.LIAB, "bank-sh/CNH")


def _claim_without_obligation(s: t.State) -> None:
    s.put(t.SETTLED, "LC_HONOUR/LC-NONE/P1", r.Settled("LC_HONOUR", "LC-NONE/P1", "bank-hk", "sh-exporter", "CNH", 1))


def _overpaid_loan(s: t.State) -> None:
    x = s.get(t.SETTLED, "LOAN_DISBURSE/F1")
    assert x is not None
    s.put(t.SETTLED, "LOAN_DISBURSE/F1", replace(x, paid=501))


def _position_with_itself(s: t.State) -> None:
    s.put(t.POSITION, "CNH/bank-hk/bank-hk", r.Position("CNH", "bank-hk", "bank-hk", 3))


@pytest.mark.parametrize("corrupt, words", [
    (_negative, "negative balance"),
    (_minted_unrecorded, "differs from its recorded liabilities"),
    (_liability_forgotten, "differs from its recorded liabilities"),
    (_claim_without_obligation, "without a matching obligation"),
    (_overpaid_loan, "without a matching obligation"),
    (_position_with_itself, "not a positive net position"),
], ids=lambda x: getattr(x, "__name__", "")[1:] or None)
def test_invariant_checker_catches_corrupted_settlement_state(paid: Net, corrupt: Any, words: str) -> None:
    """A state written as a buggy rule would (a negative balance, tokens minted without a
    liability, a liability dropped, a payment claimed against no obligation or beyond what
    is due, a bank owing itself) is named by check_invariants, also incrementally."""
    corrupt(paid.ledger.state)
    problems = check_invariants(paid.ledger)
    assert any(words in p for p in problems), problems
