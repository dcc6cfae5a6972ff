"""Documentary credits under UCP 600.

Theory of operation
    LC_ISSUE  issuing bank    irrevocable from issue (art. 3, 7(b)); terms fixed; may make the
                              credit available with a nominated bank (art. 6(a), 12) and ask a
                              bank to confirm it (art. 8)
    LC_ADVISE advising bank   the beneficiary may present only an advised credit (art. 9)
    LC_CONFIRM confirming bank adds its own undertaking (art. 8(a)), before expiry
    LC_AMEND  issuing bank    a proposal; binding only on the beneficiary's acceptance
    LC_AMEND_ACCEPT / _REJECT beneficiary (art. 10(a), (c); no partial acceptance, 10(e))
    LC_PRESENT beneficiary    to the issuing bank, the nominated bank or the confirming bank
                              (once confirmed); the eBL passes to that bank, which examines
                              on its own calendar; the ledger records what it can see
    LC_HONOUR examining bank  pays (art. 15(a)); a nominated/confirming bank forwards the eBL
                              to the issuing bank (art. 15(c)) and is owed reimbursement
    LC_FORWARD nominated bank does not act on its nomination (art. 12(a)): the documents go to
                              the issuing bank, which examines them from their receipt
    LC_REFUSE examining bank  one notice stating the discrepancies it refuses on, and a
                              disposal (art. 16(c), (d)); its own examination decides which
                              (art. 14(a)); within 5 of its banking days following
                              presentation (art. 14(b)), else precluded (art. 16(f))
    LC_WAIVE  applicant       waives the discrepancies (art. 16(b))
    LC_REIMBURSE issuing bank reimburses the honouring nominated/confirming bank (art. 7(c), 8(c))

Dates: the block's local date (UTC+8). The examining bank's jurisdiction picks
the banking calendar (HK or CN-SH), pinned in the genesis (banking.py).
Presentation after the expiry date (extended to the next banking day of the
bank presented to, art. 29(a)) is recorded as the discrepancy
PRESENTED_AFTER_EXPIRY, presentation later than `presentation_days` (21 by
default, art. 14(c)) after shipment as LATE_PRESENTATION: the bank may refuse
on them and the applicant may waive them, like any other discrepancy.
"""

from __future__ import annotations

from consortium import limits
from consortium.ledger import banking
from consortium.ledger import bodies as b
from consortium.ledger import records as r
from consortium.ledger import state as t
from consortium.ledger.banking import add_days, examination_period, first_banking_day_from, parse_date
from consortium.ledger.codes import Code
from consortium.ledger.records import replace
from consortium.ledger.rules.common import Ctx, Reject, need_ebl, need_party, need_role, party
from consortium.ledger.rules.ebl import need_active, need_possessor, need_unpledged, pass_possession
from consortium.ledger.rules.finance import need_unreserved
from consortium.ledger.state import State
from consortium.types import Jurisdiction, Role


def _lc(s: State, lc_id: str) -> r.Lc:
    found = s.get(t.LC, lc_id)
    if found is None:
        raise Reject(Code.UNKNOWN, f"no letter of credit {lc_id!r}")
    return found


def _need(actor: str, expected: str, what: str, lc: r.Lc) -> None:
    if actor != expected:
        raise Reject(Code.AUTH, f"only the {what} {expected} may do this on LC {lc.lc_id}")


def _jurisdiction(s: State, bank: str) -> Jurisdiction:
    found = party(s, bank)
    assert found is not None, "a bank stays registered"
    return Jurisdiction(found.jurisdiction)


def calendar(s: State, bank: str) -> banking.Calendar:
    """The banking calendar of `bank`'s jurisdiction, as pinned in the genesis."""
    where = _jurisdiction(s, bank)
    rec = s.get(t.CAL, where.value)
    assert rec is not None, "the genesis installs every jurisdiction's calendar"
    return banking.from_record(rec)


def available_with(lc: r.Lc) -> tuple[str, ...]:
    """The banks a beneficiary may present to: the issuing bank (always, art. 6(d)(ii)),
    the nominated bank, and the confirming bank once it confirmed."""
    banks = [lc.issuing_bank]
    for bank in (lc.nominated_bank, lc.confirming_bank if lc.confirmed else None):
        if bank is not None and bank not in banks:
            banks.append(bank)
    return tuple(banks)


def undertakings(lc: r.Lc) -> tuple[str, ...]:
    """Who is bound to honour a complying presentation: the issuing bank (art. 7(a)) and a
    confirming bank that added its confirmation (art. 8(a))."""
    return (lc.issuing_bank, lc.confirming_bank) if lc.confirmed and lc.confirming_bank else (lc.issuing_bank,)


# ------------------------------------------------------------------ issue, advise, amend


def on_issue(s: State, ctx: Ctx, body: b.LcIssue) -> None:
    if s.get(t.LC, body.lc_id) is not None:
        raise Reject(Code.DUPE, f"LC {body.lc_id} already exists")
    need_party(s, body.applicant, "applicant")
    need_party(s, body.beneficiary, "beneficiary")
    need_role(s, body.advising_bank, "advising bank", Role.BANK)
    if body.expiry_date < ctx.date:
        raise Reject(Code.STATE, f"expiry date {body.expiry_date} has passed")
    for what, bank in (("nominated bank", body.nominated_bank), ("confirming bank", body.confirming_bank)):
        if bank is not None:
            need_role(s, bank, what, Role.BANK)
            if bank == ctx.actor:
                raise Reject(Code.BENV, f"the issuing bank cannot also be the {what}")
    for bank in (ctx.actor, body.nominated_bank, body.confirming_bank):
        cal = calendar(s, bank) if bank is not None else None
        if cal is not None and not cal.covers(parse_date(body.expiry_date).year + 1):
            raise Reject(Code.LIMIT, f"expiry {body.expiry_date}: the genesis pins {cal.jurisdiction} banking "
                                     f"days for {cal.first_year}-{cal.last_year} only")
    terms = r.LcTerms(currency=body.currency, amount=body.amount, expiry_date=body.expiry_date,
                      latest_shipment_date=body.latest_shipment_date, port_of_loading=body.port_of_loading,
                      port_of_discharge=body.port_of_discharge, goods=body.goods,
                      documents_required=body.documents_required, presentation_days=body.presentation_days)
    s.put(t.LC, body.lc_id, r.Lc(
        lc_id=body.lc_id, issuing_bank=ctx.actor, applicant=body.applicant, beneficiary=body.beneficiary,
        advising_bank=body.advising_bank, original=terms, terms=terms, advised=False, status="ISSUED",
        amendments=(), presentations=(), open_presentation=None, issue_date=ctx.date,
        nominated_bank=body.nominated_bank, confirming_bank=body.confirming_bank, confirmed=False))


def on_advise(s: State, ctx: Ctx, body: b.LcAdvise) -> None:
    lc = _lc(s, body.lc_id)
    _need(ctx.actor, lc.advising_bank, "advising bank", lc)
    if lc.advised:
        raise Reject(Code.STATE, f"LC {lc.lc_id} is already advised")
    s.put(t.LC, lc.lc_id, replace(lc, advised=True))


def on_confirm(s: State, ctx: Ctx, body: b.LcConfirm) -> None:
    """Art. 8: the confirming bank's own undertaking, from the moment it confirms."""
    lc = _lc(s, body.lc_id)
    if lc.confirming_bank is None:
        raise Reject(Code.STATE, f"LC {lc.lc_id}: the issuing bank asked no bank to confirm it")
    _need(ctx.actor, lc.confirming_bank, "confirming bank", lc)
    if lc.confirmed or lc.status != "ISSUED":
        raise Reject(Code.STATE, f"LC {lc.lc_id} is {lc.status}{', already confirmed' if lc.confirmed else ''}")
    expiry = first_banking_day_from(calendar(s, ctx.actor), parse_date(lc.terms.expiry_date)).isoformat()
    if ctx.date > expiry:
        raise Reject(Code.EXPIRED, f"LC {lc.lc_id} expired on {lc.terms.expiry_date}: nothing left to confirm")
    s.put(t.LC, lc.lc_id, replace(lc, confirmed=True))


def on_amend(s: State, ctx: Ctx, body: b.LcAmend) -> None:
    lc = _lc(s, body.lc_id)
    _need(ctx.actor, lc.issuing_bank, "issuing bank", lc)
    if lc.status != "ISSUED" or lc.open_presentation is not None:
        raise Reject(Code.STATE, f"LC {lc.lc_id} is {lc.status} or has an open presentation")
    if any(a.status == "PROPOSED" for a in lc.amendments):
        raise Reject(Code.STATE, f"LC {lc.lc_id} already has an amendment awaiting the beneficiary")
    if len(lc.amendments) >= limits.lc_amendments_max:
        raise Reject(Code.LIMIT, f"LC {lc.lc_id} has {limits.lc_amendments_max} amendments")
    am = r.Amendment(seq=len(lc.amendments) + 1, amount=body.amount, expiry_date=body.expiry_date,
                     latest_shipment_date=body.latest_shipment_date,
                     documents_required=body.documents_required, status="PROPOSED", height=ctx.height)
    amended = apply_amendment(lc.terms, am)
    if amended.latest_shipment_date > amended.expiry_date:
        raise Reject(Code.BENV, "the amended latest shipment date would fall after the expiry date")
    s.put(t.LC, lc.lc_id, replace(lc, amendments=lc.amendments + (am,)))


def apply_amendment(terms: r.LcTerms, am: r.Amendment) -> r.LcTerms:
    """The terms an accepted amendment gives (nil fields keep the term)."""
    return replace(
        terms,
        amount=terms.amount if am.amount is None else am.amount,
        expiry_date=terms.expiry_date if am.expiry_date is None else am.expiry_date,
        latest_shipment_date=terms.latest_shipment_date if am.latest_shipment_date is None
        else am.latest_shipment_date,
        documents_required=terms.documents_required if am.documents_required is None
        else am.documents_required,
    )


def _answer(s: State, ctx: Ctx, lc_id: str, seq: int, accept: bool) -> None:
    lc = _lc(s, lc_id)
    _need(ctx.actor, lc.beneficiary, "beneficiary", lc)
    if not 1 <= seq <= len(lc.amendments):
        raise Reject(Code.UNKNOWN, f"LC {lc_id} has no amendment {seq}")
    am = lc.amendments[seq - 1]
    if am.status != "PROPOSED":
        raise Reject(Code.STATE, f"amendment {seq} of LC {lc_id} is already {am.status}")
    done = replace(am, status="ACCEPTED" if accept else "REJECTED")
    amendments = lc.amendments[: seq - 1] + (done,) + lc.amendments[seq:]
    terms = apply_amendment(lc.terms, am) if accept else lc.terms
    s.put(t.LC, lc_id, replace(lc, amendments=amendments, terms=terms))


def on_amend_accept(s: State, ctx: Ctx, body: b.LcAmendAccept) -> None:
    _answer(s, ctx, body.lc_id, body.amendment, True)


def on_amend_reject(s: State, ctx: Ctx, body: b.LcAmendReject) -> None:
    _answer(s, ctx, body.lc_id, body.amendment, False)


# ------------------------------------------------------------------ presentation and examination


def on_present(s: State, ctx: Ctx, body: b.LcPresent) -> None:
    lc = _lc(s, body.lc_id)
    _need(ctx.actor, lc.beneficiary, "beneficiary", lc)
    if lc.status != "ISSUED" or not lc.advised or lc.open_presentation is not None:
        raise Reject(Code.STATE, f"LC {lc.lc_id} is {lc.status}, {'advised' if lc.advised else 'not advised'}, "
                                 f"open presentation: {lc.open_presentation}")
    key = f"{lc.lc_id}/{body.presentation_id}"
    if s.get(t.PRES, key) is not None:
        raise Reject(Code.DUPE, f"presentation {body.presentation_id} of LC {lc.lc_id} exists")
    if len(lc.presentations) >= limits.lc_presentations_max:
        raise Reject(Code.LIMIT, f"LC {lc.lc_id} has {limits.lc_presentations_max} presentations")
    bank = body.bank or lc.issuing_bank
    if bank not in available_with(lc):
        if bank == lc.confirming_bank:
            raise Reject(Code.STATE, f"{bank} has not added its confirmation to LC {lc.lc_id} (art. 8)")
        raise Reject(Code.AUTH, f"LC {lc.lc_id} is not available with {bank} "
                                f"(present to {' or '.join(available_with(lc))})")
    where = calendar(s, bank)
    e = need_ebl(s, body.ebl)
    need_active(e, "LC_PRESENT")
    need_possessor(e, ctx.actor)
    need_unpledged(e, "LC_PRESENT")
    need_unreserved(s, e, ctx.actor, bank, "LC_PRESENT")
    found = examine(lc.terms, e, body, ctx.date, where)
    deemed, deadline = examination_period(where, ctx.today)
    s.put(t.EBL, e.id, pass_possession(s, ctx, e, bank))
    s.put(t.PRES, key, r.Presentation(
        lc_id=lc.lc_id, presentation_id=body.presentation_id, ebl=e.id, presenter=ctx.actor,
        invoice_amount=body.invoice_amount, currency=body.currency, documents=body.documents,
        presented_date=ctx.date, deemed_date=deemed.isoformat(), deadline=deadline.isoformat(),
        discrepancies=found, status="PRESENTED", refusal=(), disposal=None, waived=False,
        refused_date=None, honoured_date=None, bank=bank, forwarded_date=None, reimbursement=None,
        reimbursed_date=None))
    s.put(t.LC, lc.lc_id, replace(lc, presentations=lc.presentations + (body.presentation_id,),
                                  open_presentation=body.presentation_id))


def examine(terms: r.LcTerms, e: r.Ebl, body: b.LcPresent, today: str,
            where: Jurisdiction | banking.Calendar) -> tuple[str, ...]:
    """The discrepancies the ledger can see from the data it holds (sorted codes). Dates
    count in the calendar of the bank presented to (art. 29(a))."""
    found: list[str] = []
    if body.invoice_amount > terms.amount:
        found.append("AMOUNT_EXCEEDS")
    if body.currency != terms.currency:
        found.append("CURRENCY")
    if not e.on_board:
        found.append("NOT_ON_BOARD")  # art. 20(a)(ii): an on-board notation is required
    if e.shipment_date > terms.latest_shipment_date:
        found.append("LATE_SHIPMENT")
    last_day = min(add_days(e.shipment_date, terms.presentation_days), terms.expiry_date)
    if today > first_banking_day_from(where, parse_date(last_day)).isoformat():
        found.append("LATE_PRESENTATION")
    if today > first_banking_day_from(where, parse_date(terms.expiry_date)).isoformat():
        found.append("PRESENTED_AFTER_EXPIRY")  # art. 6(d)(i), 29(a): the applicant may waive it
    if e.port_of_loading != terms.port_of_loading:
        found.append("PORT_OF_LOADING")
    if e.port_of_discharge != terms.port_of_discharge:
        found.append("PORT_OF_DISCHARGE")
    if any(d not in body.documents for d in terms.documents_required if d != "BL"):
        found.append("MISSING_DOCUMENT")  # the eBL itself is the BL
    return tuple(sorted(found))


def _presentation(s: State, lc_id: str, pid: str) -> tuple[r.Lc, r.Presentation]:
    lc = _lc(s, lc_id)
    pres = s.get(t.PRES, f"{lc_id}/{pid}")
    if pres is None:
        raise Reject(Code.UNKNOWN, f"LC {lc_id} has no presentation {pid!r}")
    return lc, pres


def on_honour(s: State, ctx: Ctx, body: b.LcHonour) -> None:
    lc, pres = _presentation(s, body.lc_id, body.presentation_id)
    _need(ctx.actor, pres.bank, "examining bank", lc)
    if pres.status == "REFUSED" and (pres.disposal == "RETURN" or not pres.waived):
        raise Reject(Code.STATE, "a refused presentation is honoured only after the applicant's waiver, "
                                 "and not once the documents were returned")
    if pres.status == "HONOURED":
        raise Reject(Code.STATE, f"presentation {pres.presentation_id} is already honoured")
    honoured = replace(pres, status="HONOURED", honoured_date=ctx.date)
    if ctx.actor != lc.issuing_bank:
        # art. 15(c), 7(c), 8(c): forward the documents; the issuing bank owes reimbursement
        # (for a complying presentation; a discrepant one honoured without a waiver is at the
        # honouring bank's risk: DISCREPANT).
        _forward_documents(s, ctx, pres, lc.issuing_bank)
        complying = not pres.discrepancies or pres.waived
        honoured = replace(honoured, forwarded_date=ctx.date, reimbursement="DUE" if complying else "DISCREPANT")
    s.put(t.PRES, f"{lc.lc_id}/{pres.presentation_id}", honoured)
    s.put(t.LC, lc.lc_id, replace(lc, status="UTILIZED", open_presentation=None))


def _forward_documents(s: State, ctx: Ctx, pres: r.Presentation, issuing_bank: str) -> None:
    e = need_ebl(s, pres.ebl)
    if e.status != "ISSUED" or e.possessor != ctx.actor or e.pledgee is not None:
        raise Reject(Code.STATE, f"{ctx.actor} no longer holds eBL {e.id[:12]}: it cannot forward it")
    s.put(t.EBL, e.id, pass_possession(s, ctx, e, issuing_bank))


def on_forward(s: State, ctx: Ctx, body: b.LcForward) -> None:
    """Art. 12(a): a nominated bank need not honour; it forwards the documents and the
    issuing bank examines them within five of its banking days following receipt."""
    lc, pres = _presentation(s, body.lc_id, body.presentation_id)
    _need(ctx.actor, pres.bank, "examining bank", lc)
    if ctx.actor == lc.issuing_bank:
        raise Reject(Code.STATE, "the issuing bank examines: there is no one to forward to")
    if ctx.actor in undertakings(lc):
        raise Reject(Code.STATE, f"{ctx.actor} confirmed LC {lc.lc_id}: it must honour or refuse (art. 8(a))")
    if pres.status != "PRESENTED":
        raise Reject(Code.STATE, f"presentation {pres.presentation_id} is {pres.status}")
    _forward_documents(s, ctx, pres, lc.issuing_bank)
    deemed, deadline = examination_period(calendar(s, lc.issuing_bank), ctx.today)
    s.put(t.PRES, f"{lc.lc_id}/{pres.presentation_id}", replace(
        pres, bank=lc.issuing_bank, forwarded_date=ctx.date, deemed_date=deemed.isoformat(),
        deadline=deadline.isoformat()))


def on_reimburse(s: State, ctx: Ctx, body: b.LcReimburse) -> None:
    """Art. 7(c), 8(c): the issuing bank reimburses the bank that honoured and forwarded."""
    lc, pres = _presentation(s, body.lc_id, body.presentation_id)
    _need(ctx.actor, lc.issuing_bank, "issuing bank", lc)
    if pres.reimbursement not in ("DUE", "DISCREPANT"):
        raise Reject(Code.STATE, f"presentation {pres.presentation_id}: no reimbursement outstanding "
                                 f"({pres.reimbursement or 'honoured by the issuing bank itself'})")
    s.put(t.PRES, f"{lc.lc_id}/{pres.presentation_id}", replace(pres, reimbursement="PAID",
                                                                reimbursed_date=ctx.date))


def on_refuse(s: State, ctx: Ctx, body: b.LcRefuse) -> None:
    lc, pres = _presentation(s, body.lc_id, body.presentation_id)
    _need(ctx.actor, pres.bank, "examining bank", lc)
    if pres.status == "REFUSED":
        raise Reject(Code.NOTICE, "a notice of refusal was already given: it is the single notice (art. 16(d))")
    if pres.status != "PRESENTED":
        raise Reject(Code.STATE, f"presentation {pres.presentation_id} is {pres.status}")
    if ctx.date > pres.deadline:
        raise Reject(Code.PRECLUDED, f"the examination period ended on {pres.deadline}: "
                                     "the bank is precluded from refusing (art. 16(f))")
    # Art. 14(a), 16(c)(ii): the bank's own examination decides; the notice states the
    # discrepancies it refuses on (at least one: the body schema requires it). The ledger's
    # own findings stay on the record beside them.
    key = f"{lc.lc_id}/{pres.presentation_id}"
    refused = replace(pres, status="REFUSED", refusal=body.discrepancies, disposal=body.disposal,
                      refused_date=ctx.date)
    if body.disposal == "RETURN":
        _return_documents(s, ctx, pres)
        lc = replace(lc, open_presentation=None)
    s.put(t.PRES, key, refused)
    s.put(t.LC, lc.lc_id, lc)


def _return_documents(s: State, ctx: Ctx, pres: r.Presentation) -> None:
    """Returning the documents hands the eBL back: the bank is its possessor and this
    notice is the bank's own signed act."""
    e = need_ebl(s, pres.ebl)
    if e.status != "ISSUED" or e.possessor != ctx.actor or e.pledgee is not None:
        raise Reject(Code.STATE, f"the bank no longer holds eBL {e.id[:12]}: it cannot return it")
    s.put(t.EBL, e.id, pass_possession(s, ctx, e, pres.presenter))


def on_waive(s: State, ctx: Ctx, body: b.LcWaive) -> None:
    lc, pres = _presentation(s, body.lc_id, body.presentation_id)
    _need(ctx.actor, lc.applicant, "applicant", lc)
    if not pres.open or pres.waived:
        raise Reject(Code.STATE, f"presentation {pres.presentation_id} is {pres.status}"
                                 f"{', already waived' if pres.waived else ''}")
    s.put(t.PRES, f"{lc.lc_id}/{pres.presentation_id}", replace(pres, waived=True))
