"""Settlement in tokenised deposits, after HKMA's Project Ensemble.

Theory of operation
    TOKEN_ISSUE       bank      mints its deposit tokens to a customer's account (cash paid in
                                off-ledger); the bank's recorded liabilities rise by the same amount
    TOKEN_REDEEM      holder    burns its tokens of a bank (paid out off-ledger); liabilities fall
    PAY               payer     payer's tokens of `bank` -> payee's account at `payee_bank`;
                                optionally claims to settle an obligation (LC honour, loan
                                disbursement, loan repayment) that must exist and match
    INTERBANK_SETTLE  creditor  acknowledges that the debtor bank settled part of their position
    DVP_OFFER         buyer     standing instruction: pay `amount` to the seller against the eBL
    DVP_CANCEL        buyer     withdraws an offer not yet settled
    DVP               seller    delivery versus payment: the seller's eBL transfer (and, for a
                                to-order bill endorsed to the seller, its endorsement to the
                                buyer) and the buyer's payment in ONE transaction: both or neither

A deposit token is a claim on its issuing bank: an account is (bank, currency, holder).
Currencies: HKD, CNH, USD (others: CURRENCY). A bank never holds its own tokens: a bank
that pays (an LC honour, a loan) names itself as `bank` and pays from its own funds, and
a payment to a bank itself (a repayment) names it as payee and payee_bank.

The interbank leg (stated rule): a payment from a customer of bank A to a customer of
bank B burns A's tokens and mints B's, and records that A owes B the amount in that
currency. Positions are netted per pair of banks and currency (one record, the net
debtor); the creditor bank acknowledges settlement in the currency's RTGS system
(CHATS in Hong Kong for HKD, USD and CNH) with INTERBANK_SETTLE. So every payment
settles the customers finally and at once, and the banks' exposure to each other is
on the ledger, where HKMA sees it (queries.cross_border).

An obligation is paid at most up to what is due: an LC honour up to the smaller of the
invoice and the credit amount, by the bank that honoured (issuing, nominated or
confirming) to the presenter in the credit's currency, once the presentation is HONOURED; a disbursement up to the financing's
amount, by the lender to the borrower, while LIVE; a repayment up to the outstanding
amount, by the borrower to the lender, which reduces the outstanding amount as
FIN_REPAY does (and at zero frees the collateral).
"""

from __future__ import annotations

from consortium import limits
from consortium.ledger import bodies as b
from consortium.ledger import records as r
from consortium.ledger import state as t
from consortium.ledger.codes import Code
from consortium.ledger.fields import INT_MAX
from consortium.ledger.records import replace
from consortium.ledger.rules import ebl, finance
from consortium.ledger.rules.common import Ctx, Reject, need_ebl, need_party, need_role
from consortium.ledger.state import State
from consortium.types import Role

#: Currencies with deposit tokens on the ledger (Project Ensemble's pilots: HKD, CNH, USD).
TOKEN_CURRENCIES = ("HKD", "CNH", "USD")


def account_key(bank: str, currency: str, holder: str) -> str:
    return f"{bank}/{currency}/{holder}"


def position_key(currency: str, a: str, b_: str) -> str:
    lo, hi = sorted((a, b_))
    return f"{currency}/{lo}/{hi}"


def flow_key(origin: str, destination: str, currency: str) -> str:
    return f"{origin}>{destination}/{currency}"


# ------------------------------------------------------------------ balances


def _need_currency(currency: str) -> None:
    if currency not in TOKEN_CURRENCIES:
        raise Reject(Code.CURRENCY, f"no deposit token in {currency} (only {', '.join(TOKEN_CURRENCIES)})")


def _liabilities(s: State, bank: str, currency: str, delta: int) -> None:
    key = f"{bank}/{currency}"
    found = s.get(t.LIAB, key)
    amount = (found.amount if found is not None else 0) + delta
    assert amount >= 0, "liabilities cover every balance"
    if amount > limits.token_amount_minor_max:
        raise Reject(Code.LIMIT, f"{bank}'s {currency} token liabilities would exceed {limits.token_amount_minor_max}")
    if amount:
        s.put(t.LIAB, key, r.Liabilities(bank=bank, currency=currency, amount=amount))
    else:
        s.delete(t.LIAB, key)


def balance(s: State, bank: str, currency: str, holder: str) -> int:
    found = s.get(t.ACCOUNT, account_key(bank, currency, holder))
    return 0 if found is None else found.balance


def _set_balance(s: State, bank: str, currency: str, holder: str, amount: int) -> None:
    key = account_key(bank, currency, holder)
    if amount:
        s.put(t.ACCOUNT, key, r.Account(bank=bank, currency=currency, holder=holder, balance=amount))
    else:
        s.delete(t.ACCOUNT, key)  # an empty account is no record


def mint(s: State, bank: str, currency: str, holder: str, amount: int) -> None:
    _liabilities(s, bank, currency, amount)
    _set_balance(s, bank, currency, holder, balance(s, bank, currency, holder) + amount)


def burn(s: State, bank: str, currency: str, holder: str, amount: int) -> None:
    have = balance(s, bank, currency, holder)
    if have < amount:
        raise Reject(Code.FUNDS, f"{holder} holds {have} {currency} of {bank}'s tokens, not {amount}: "
                                 "no overdraft")
    _set_balance(s, bank, currency, holder, have - amount)
    _liabilities(s, bank, currency, -amount)


def _owe(s: State, currency: str, debtor: str, creditor: str, amount: int) -> None:
    """`debtor` owes `creditor` `amount` more (netted against the reverse position)."""
    key = position_key(currency, debtor, creditor)
    found = s.get(t.POSITION, key)
    net = amount  # > 0: debtor owes creditor
    if found is not None:
        net += found.amount if found.debtor == debtor else -found.amount
    if abs(net) > limits.token_amount_minor_max:
        raise Reject(Code.LIMIT, f"the {currency} position of {debtor} and {creditor} would exceed "
                                 f"{limits.token_amount_minor_max}")
    if net > 0:
        s.put(t.POSITION, key, r.Position(currency=currency, debtor=debtor, creditor=creditor, amount=net))
    elif net < 0:
        s.put(t.POSITION, key, r.Position(currency=currency, debtor=creditor, creditor=debtor, amount=-net))
    else:
        s.delete(t.POSITION, key)


def _flow(s: State, origin: str, destination: str, currency: str, amount: int) -> None:
    key = flow_key(origin, destination, currency)
    found = s.get(t.FLOW, key) or r.Flow(origin=origin, destination=destination, currency=currency, count=0,
                                         total=0)
    if found.total + amount > INT_MAX:
        raise Reject(Code.LIMIT, f"the recorded {origin}->{destination} {currency} flow is full")
    s.put(t.FLOW, key, replace(found, count=found.count + 1, total=found.total + amount))


def pay(s: State, payer: str, bank: str, payee: str, payee_bank: str, currency: str, amount: int) -> None:
    """Move `amount` from payer's tokens of `bank` to payee's account at `payee_bank`,
    recording the interbank leg and a cross-border flow. A bank paying from its own funds
    is payer == bank (nothing burnt); a bank paid for itself is payee == payee_bank
    (nothing minted: e.g. a loan repaid in its own tokens extinguishes them)."""
    _need_currency(currency)
    need_role(s, bank, "payer's bank", Role.BANK)
    need_role(s, payee_bank, "payee's bank", Role.BANK)
    to = need_party(s, payee, "payee")
    if payee == payer:
        raise Reject(Code.BENV, "a payment to oneself")
    if payer != bank:
        burn(s, bank, currency, payer, amount)
    if payee != payee_bank:
        mint(s, payee_bank, currency, payee, amount)
    if bank != payee_bank:
        _owe(s, currency, bank, payee_bank, amount)
    origin = need_party(s, payer, "payer").jurisdiction
    if origin != to.jurisdiction:
        _flow(s, origin, to.jurisdiction, currency, amount)


# ------------------------------------------------------------------ issue, redeem, pay


def on_issue(s: State, ctx: Ctx, body: b.TokenIssue) -> None:
    _need_currency(body.currency)
    need_party(s, body.holder, "holder")
    if body.holder == ctx.actor:
        raise Reject(Code.BENV, f"{ctx.actor} cannot hold its own deposit tokens")
    mint(s, ctx.actor, body.currency, body.holder, body.amount)


def on_redeem(s: State, ctx: Ctx, body: b.TokenRedeem) -> None:
    _need_currency(body.currency)
    need_role(s, body.bank, "bank", Role.BANK)
    burn(s, body.bank, body.currency, ctx.actor, body.amount)


def on_pay(s: State, ctx: Ctx, body: b.Pay) -> None:
    if body.obligation is not None:
        assert body.ref is not None
        _claim(s, ctx, body, body.obligation, body.ref)
    pay(s, ctx.actor, body.bank, body.payee, body.payee_bank, body.currency, body.amount)


def on_interbank_settle(s: State, ctx: Ctx, body: b.InterbankSettle) -> None:
    _need_currency(body.currency)
    found = s.get(t.POSITION, position_key(body.currency, body.debtor, ctx.actor))
    if found is None or found.debtor != body.debtor:
        raise Reject(Code.UNKNOWN, f"{body.debtor} owes {ctx.actor} nothing in {body.currency}")
    if body.amount > found.amount:
        raise Reject(Code.AMOUNT, f"{body.debtor} owes {ctx.actor} {found.amount} {body.currency}, "
                                  f"not {body.amount}")
    _owe(s, body.currency, ctx.actor, body.debtor, body.amount)


# ------------------------------------------------------------------ obligations


def _claim(s: State, ctx: Ctx, body: b.Pay, obligation: str, ref: str) -> None:
    """The obligation must exist, bind this payer to this payee in this currency, and
    still be due; the amount settled so far is recorded."""
    if obligation == "LC_HONOUR":
        payer, payee, currency, due = _lc_due(s, ref)
    else:
        payer, payee, currency, due = _loan_due(s, obligation, ref)
    if ctx.actor != payer:
        raise Reject(Code.AUTH, f"{obligation} {ref} is owed by {payer}, not {ctx.actor}")
    if (body.payee, body.currency) != (payee, currency):
        raise Reject(Code.OBLIGATION, f"{obligation} {ref} is owed to {payee} in {currency}, "
                                      f"not to {body.payee} in {body.currency}")
    key = f"{obligation}/{ref}"
    done = s.get(t.SETTLED, key) or r.Settled(obligation=obligation, ref=ref, payer=payer, payee=payee,
                                               currency=currency, paid=0)
    if body.amount > due - done.paid:
        raise Reject(Code.AMOUNT, f"{obligation} {ref}: {due - done.paid} {currency} is due, not {body.amount}")
    s.put(t.SETTLED, key, replace(done, paid=done.paid + body.amount))
    if obligation == "LOAN_REPAY":
        _repaid(s, ref, body.amount)


def _lc_due(s: State, ref: str) -> tuple[str, str, str, int]:
    lc_id, _, pid = ref.partition("/")
    lc = s.get(t.LC, lc_id)
    pres = s.get(t.PRES, ref) if pid else None
    if lc is None or pres is None:
        raise Reject(Code.UNKNOWN, f"no presentation {ref!r} (LC_HONOUR needs lc_id/presentation_id)")
    if pres.status != "HONOURED":
        raise Reject(Code.OBLIGATION, f"presentation {ref} is {pres.status}: nothing is owed before the honour")
    # The bank that honoured pays: the issuing bank, or a nominated/confirming bank (pres.bank).
    return pres.bank, pres.presenter, lc.terms.currency, min(pres.invoice_amount, lc.terms.amount)


def _loan_due(s: State, obligation: str, ref: str) -> tuple[str, str, str, int]:
    fin = s.get(t.FIN, ref)
    if fin is None:
        raise Reject(Code.UNKNOWN, f"no financing {ref!r}")
    if fin.status != "LIVE":
        raise Reject(Code.OBLIGATION, f"financing {ref} is {fin.status}: {obligation} needs it LIVE")
    if obligation == "LOAN_DISBURSE":
        return fin.lender, fin.borrower, fin.currency, fin.amount
    # A repayment is bounded by the outstanding amount, whatever was repaid before.
    done = s.get(t.SETTLED, f"{obligation}/{ref}")
    return fin.borrower, fin.lender, fin.currency, fin.outstanding + (done.paid if done else 0)


def _repaid(s: State, fin_id: str, amount: int) -> None:
    """The repayment reduces the outstanding amount as the lender's FIN_REPAY does."""
    fin = s.get(t.FIN, fin_id)
    assert fin is not None and amount <= fin.outstanding
    left = fin.outstanding - amount
    fin = replace(fin, outstanding=left, status="LIVE" if left else "REPAID")
    if left == 0:
        finance._free_liens(s, fin)
    s.put(t.FIN, fin.fin_id, fin)


# ------------------------------------------------------------------ delivery versus payment


def _offer(s: State, dvp_id: str) -> r.DvpRec:
    found = s.get(t.DVP, dvp_id)
    if found is None:
        raise Reject(Code.UNKNOWN, f"no DvP offer {dvp_id!r}")
    return found


def on_dvp_offer(s: State, ctx: Ctx, body: b.DvpOffer) -> None:
    if s.get(t.DVP, body.dvp_id) is not None:
        raise Reject(Code.DUPE, f"DvP {body.dvp_id} exists")
    _need_currency(body.currency)
    need_ebl(s, body.ebl)
    need_party(s, body.seller, "seller")
    if body.seller == ctx.actor:
        raise Reject(Code.BENV, "a DvP with oneself")
    need_role(s, body.bank, "buyer's bank", Role.BANK)
    need_role(s, body.seller_bank, "seller's bank", Role.BANK)
    s.put(t.DVP, body.dvp_id, r.DvpRec(
        dvp_id=body.dvp_id, ebl=body.ebl, buyer=ctx.actor, bank=body.bank, seller=body.seller,
        seller_bank=body.seller_bank, currency=body.currency, amount=body.amount, status="OFFERED",
        height=ctx.height, settled_height=None))


def on_dvp_cancel(s: State, ctx: Ctx, body: b.DvpCancel) -> None:
    offer = _offer(s, body.dvp_id)
    if offer.buyer != ctx.actor:
        raise Reject(Code.AUTH, f"only the buyer {offer.buyer} cancels DvP {offer.dvp_id}")
    if offer.status != "OFFERED":
        raise Reject(Code.STATE, f"DvP {offer.dvp_id} is {offer.status}")
    s.put(t.DVP, offer.dvp_id, replace(offer, status="CANCELLED"))


def on_dvp(s: State, ctx: Ctx, body: b.Dvp) -> None:
    """Both legs inside this one state transaction: a refusal of either rolls back both."""
    offer = _offer(s, body.dvp_id)
    if offer.seller != ctx.actor:
        raise Reject(Code.AUTH, f"only the seller {offer.seller} settles DvP {offer.dvp_id}")
    if offer.status != "OFFERED":
        raise Reject(Code.STATE, f"DvP {offer.dvp_id} is {offer.status}")
    # Delivery: the eBL rules themselves (possessor, active, unpledged, title).
    e = need_ebl(s, offer.ebl)
    if e.is_to_order and not e.blank and e.endorsee == ctx.actor:
        ebl.on_endorse_to_order(s, ctx, b.EndorseToOrder(ebl=e.id, recipient=offer.buyer))
    ebl.on_transfer(s, ctx, b.Transfer(ebl=e.id, recipient=offer.buyer))
    # Payment: the buyer's instruction, from the buyer's tokens.
    pay(s, offer.buyer, offer.bank, offer.seller, offer.seller_bank, offer.currency, offer.amount)
    s.put(t.DVP, offer.dvp_id, replace(offer, status="SETTLED", settled_height=ctx.height))

