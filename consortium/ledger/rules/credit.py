"""Documentary credits under UCP 600.

Theory of operation
    LC_ISSUE  issuing bank    irrevocable from issue (art. 3, 7(b)); terms fixed
    LC_ADVISE advising bank   the beneficiary may present only an advised credit (art. 9)
    LC_AMEND  issuing bank    a proposal; binding only on the beneficiary's acceptance
    LC_AMEND_ACCEPT / _REJECT beneficiary (art. 10(a), (c); no partial acceptance, 10(e))
    LC_PRESENT beneficiary    the eBL passes to the issuing bank; the ledger examines
    LC_HONOUR issuing bank    pays (art. 15(a))
    LC_REFUSE issuing bank    one notice, every discrepancy, a disposal (art. 16(c), (d)),
                              within 5 banking days following presentation (art. 14(b)),
                              else precluded (art. 16(f)); RETURN sends the eBL back
    LC_WAIVE  applicant       waives the discrepancies (art. 16(b))

Dates: the block's local date (UTC+8). The issuing bank's jurisdiction picks
the banking calendar (HK or CN). Presentation after the expiry date (extended
to the next banking day when the bank is closed that day, art. 29(a)) is
rejected EXPIRED; presentation later than `presentation_days` (21 by default,
art. 14(c)) after shipment is recorded as the discrepancy LATE_PRESENTATION.
"""

from __future__ import annotations

from dataclasses import replace

from consortium import limits
from consortium.ledger import bodies as b
from consortium.ledger import records as r
from consortium.ledger import state as t
from consortium.ledger.banking import add_days, examination_period, first_banking_day_from, parse_date
from consortium.ledger.codes import Code
from consortium.ledger.rules.common import Ctx, Reject, need_ebl, need_party, need_role, party
from consortium.ledger.rules.ebl import need_active, need_possessor, need_unpledged, pass_possession
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
    assert found is not None, "an issuing bank stays registered"
    return Jurisdiction(found.jurisdiction)


# ------------------------------------------------------------------ issue, advise, amend


def on_issue(s: State, ctx: Ctx, body: b.LcIssue) -> None:
    if s.get(t.LC, body.lc_id) is not None:
        raise Reject(Code.DUPE, f"LC {body.lc_id} already exists")
    need_party(s, body.applicant, "applicant")
    need_party(s, body.beneficiary, "beneficiary")
    need_role(s, body.advising_bank, "advising bank", Role.BANK)
    if body.expiry_date < ctx.date:
        raise Reject(Code.STATE, f"expiry date {body.expiry_date} has passed")
    terms = r.LcTerms(currency=body.currency, amount=body.amount, expiry_date=body.expiry_date,
                      latest_shipment_date=body.latest_shipment_date, port_of_loading=body.port_of_loading,
                      port_of_discharge=body.port_of_discharge, goods=body.goods,
                      documents_required=body.documents_required, presentation_days=body.presentation_days)
    s.put(t.LC, body.lc_id, r.Lc(
        lc_id=body.lc_id, issuing_bank=ctx.actor, applicant=body.applicant, beneficiary=body.beneficiary,
        advising_bank=body.advising_bank, original=terms, terms=terms, advised=False, status="ISSUED",
        amendments=(), presentations=(), open_presentation=None, issue_date=ctx.date))


def on_advise(s: State, ctx: Ctx, body: b.LcAdvise) -> None:
    lc = _lc(s, body.lc_id)
    _need(ctx.actor, lc.advising_bank, "advising bank", lc)
    if lc.advised:
        raise Reject(Code.STATE, f"LC {lc.lc_id} is already advised")
    s.put(t.LC, lc.lc_id, replace(lc, advised=True))


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
    where = _jurisdiction(s, lc.issuing_bank)
    expiry = first_banking_day_from(where, parse_date(lc.terms.expiry_date)).isoformat()
    if ctx.date > expiry:
        raise Reject(Code.EXPIRED, f"LC {lc.lc_id} expired on {lc.terms.expiry_date}")
    e = need_ebl(s, body.ebl)
    need_active(e, "LC_PRESENT")
    need_possessor(e, ctx.actor)
    need_unpledged(e, "LC_PRESENT")
    found = examine(lc.terms, e, body, ctx.date, where)
    deemed, deadline = examination_period(where, ctx.today)
    s.put(t.EBL, e.id, pass_possession(s, ctx, e, lc.issuing_bank))
    s.put(t.PRES, key, r.Presentation(
        lc_id=lc.lc_id, presentation_id=body.presentation_id, ebl=e.id, presenter=ctx.actor,
        invoice_amount=body.invoice_amount, currency=body.currency, documents=body.documents,
        presented_date=ctx.date, deemed_date=deemed.isoformat(), deadline=deadline.isoformat(),
        discrepancies=found, status="PRESENTED", refusal=(), disposal=None, waived=False,
        refused_date=None, honoured_date=None))
    s.put(t.LC, lc.lc_id, replace(lc, presentations=lc.presentations + (body.presentation_id,),
                                  open_presentation=body.presentation_id))


def examine(terms: r.LcTerms, e: r.Ebl, body: b.LcPresent, today: str, where: Jurisdiction) -> tuple[str, ...]:
    """The discrepancies the ledger can see from the data it holds (sorted codes)."""
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
    _need(ctx.actor, lc.issuing_bank, "issuing bank", lc)
    if pres.status == "REFUSED" and (pres.disposal == "RETURN" or not pres.waived):
        raise Reject(Code.STATE, "a refused presentation is honoured only after the applicant's waiver, "
                                 "and not once the documents were returned")
    if pres.status == "HONOURED":
        raise Reject(Code.STATE, f"presentation {pres.presentation_id} is already honoured")
    s.put(t.PRES, f"{lc.lc_id}/{pres.presentation_id}", replace(pres, status="HONOURED", honoured_date=ctx.date))
    s.put(t.LC, lc.lc_id, replace(lc, status="UTILIZED", open_presentation=None))


def on_refuse(s: State, ctx: Ctx, body: b.LcRefuse) -> None:
    lc, pres = _presentation(s, body.lc_id, body.presentation_id)
    _need(ctx.actor, lc.issuing_bank, "issuing bank", lc)
    if pres.status == "REFUSED":
        raise Reject(Code.NOTICE, "a notice of refusal was already given: it is the single notice (art. 16(d))")
    if pres.status != "PRESENTED":
        raise Reject(Code.STATE, f"presentation {pres.presentation_id} is {pres.status}")
    if ctx.date > pres.deadline:
        raise Reject(Code.PRECLUDED, f"the examination period ended on {pres.deadline}: "
                                     "the bank is precluded from refusing (art. 16(f))")
    missing = [d for d in pres.discrepancies if d not in body.discrepancies]
    if missing:
        raise Reject(Code.NOTICE, f"the notice must state every discrepancy; it omits {', '.join(missing)}")
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
