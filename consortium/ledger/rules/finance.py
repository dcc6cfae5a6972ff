"""Trade financing against collateral fingerprints.

Theory of operation
    FIN_REQUEST  borrower   reserves every collateral fingerprint (a lien per fingerprint)
    FIN_APPROVE  lender     REQUESTED -> LIVE (every eBL it lists under the lender's control)
    FIN_DECLINE  lender     REQUESTED -> DECLINED, liens freed
    FIN_REPAY    lender     acknowledges repayment; at zero LIVE -> REPAID, liens freed

Stated rule: a fingerprint (an eBL's checksum, or SHA-256 of an invoice, purchase
order or warehouse receipt) backs at most one live financing or pledge. The
reservation is taken at request time, so two banks can never both approve a
financing of the same invoice (the duplicate-financing fraud); a decline
frees it. A pledge made under a financing joins that financing's reservation;
when the financing ends first, the pledge keeps the lien until released.

Collateral under control (an eBL is title to goods: a fingerprint alone gives the
lender nothing). A financing listing an eBL becomes LIVE only once the lender
controls it: the eBL is pledged to it under this financing, or the lender
possesses it and is its holder (endorsed to it, or a blank-endorsed bill
transferred to it). Until then (the financing REQUESTED) the eBL is reserved:
it moves only to the lender or by the lender's own act; any other transfer,
endorsement, presentation or surrender (for delivery, amendment or a switch to
paper) is RESERVED. Once LIVE the lender holds control, and it leaves the
lender only by the lender's own act (RELEASE, TRUST_RECEIPT, a transfer): the
fingerprint stays committed to the financing, but a bank that releases the eBL
(say, for presentation under a credit that will repay it) chose to. So in one block an approval and a switch to paper
cannot both succeed (the approval lacks control, the switch is reserved), and
no one can be endorsed an eBL it cannot pledge (the endorsement away is refused
until the lender declines).
"""

from __future__ import annotations

from consortium.ledger import bodies as b
from consortium.ledger import records as r
from consortium.ledger import state as t
from consortium.ledger.codes import Code
from consortium.ledger.records import replace
from consortium.ledger.rules.common import Ctx, Reject, need_ebl, need_role
from consortium.ledger.state import State
from consortium.types import Role


def _fin(s: State, fin_id: str, ctx: Ctx) -> r.Financing:
    fin = s.get(t.FIN, fin_id)
    if fin is None:
        raise Reject(Code.UNKNOWN, f"no financing {fin_id!r}")
    if fin.lender != ctx.actor:
        raise Reject(Code.AUTH, f"financing {fin_id} is with {fin.lender}")
    return fin


def on_request(s: State, ctx: Ctx, body: b.FinRequest) -> None:
    if s.get(t.FIN, body.fin_id) is not None:
        raise Reject(Code.DUPE, f"financing {body.fin_id} exists")
    need_role(s, body.lender, "lender", Role.BANK)
    for c in body.collateral:
        if c.type == "EBL":
            e = need_ebl(s, c.fingerprint)
            if e.status != "ISSUED" or e.possessor != ctx.actor:
                raise Reject(Code.DISE, f"{ctx.actor} does not hold eBL {c.fingerprint[:12]} ({e.status}, "
                                        f"possessor {e.possessor})")
        lien = s.get(t.LIEN, c.fingerprint)
        if lien is not None:
            what = f"financing {lien.financing}" if lien.financing else f"a pledge of eBL {c.fingerprint[:12]}"
            raise Reject(Code.DISE, f"{c.type} {c.fingerprint[:12]} already backs {what} with {lien.holder}")
        s.put(t.LIEN, c.fingerprint, r.Lien(fingerprint=c.fingerprint, holder=body.lender,
                                           financing=body.fin_id, pledged_ebl=None))
    collateral = tuple(r.CollateralRec(c.type, c.fingerprint) for c in body.collateral)
    s.put(t.FIN, body.fin_id, r.Financing(
        fin_id=body.fin_id, kind=body.kind, borrower=ctx.actor, lender=body.lender, currency=body.currency,
        amount=body.amount, outstanding=body.amount, collateral=collateral, status="REQUESTED",
        height=ctx.height))


def on_approve(s: State, ctx: Ctx, body: b.FinApprove) -> None:
    fin = _fin(s, body.fin_id, ctx)
    if fin.status != "REQUESTED":
        raise Reject(Code.STATE, f"financing {fin.fin_id} is {fin.status}")
    for c in fin.collateral:
        e = s.get(t.EBL, c.fingerprint) if c.type == "EBL" else None
        if e is not None and not controls(e, fin):
            raise Reject(Code.STATE, f"eBL {c.fingerprint[:12]} is not under {fin.lender}'s control: pledge it "
                                     f"under {fin.fin_id}, or endorse and transfer it to {fin.lender}")
    s.put(t.FIN, fin.fin_id, replace(fin, status="LIVE"))


def controls(e: r.Ebl, fin: r.Financing) -> bool:
    """The lender controls the eBL: pledged to it under this financing, or it possesses
    the (unpledged, active) eBL and is the holder entitled to the goods."""
    if e.pledgee is not None:
        return e.pledgee == fin.lender and e.pledge_financing == fin.fin_id
    return e.status == "ISSUED" and e.possessor == fin.lender and e.title_holder() == fin.lender


def need_unreserved(s: State, e: r.Ebl, actor: str, towards: str | None, action: str) -> None:
    """An eBL a requested financing reserves without a pledge moves only to the lender or
    by the lender's own act (the pledge rules govern a pledged one; after approval the
    lender had control, and gave it up only by its own act)."""
    lien = s.get(t.LIEN, e.id)
    if lien is None or lien.financing is None or lien.pledged_ebl is not None:
        return
    if lien.holder in (actor, towards):
        return
    fin = s.get(t.FIN, lien.financing)
    if fin is not None and fin.status == "REQUESTED":
        raise Reject(Code.RESERVED, f"eBL {e.id[:12]} is reserved by the request for financing {fin.fin_id} "
                                    f"with {fin.lender}: {action} goes only to the lender until it declines")


def on_decline(s: State, ctx: Ctx, body: b.FinDecline) -> None:
    fin = _fin(s, body.fin_id, ctx)
    if fin.status != "REQUESTED":
        raise Reject(Code.STATE, f"financing {fin.fin_id} is {fin.status}")
    for c in fin.collateral:
        lien = s.get(t.LIEN, c.fingerprint)
        if lien is not None and lien.pledged_ebl is not None:
            raise Reject(Code.STATE, f"eBL {c.fingerprint[:12]} is pledged under {fin.fin_id}: release it first")
    _free_liens(s, fin)
    s.put(t.FIN, fin.fin_id, replace(fin, status="DECLINED"))


def on_repay(s: State, ctx: Ctx, body: b.FinRepay) -> None:
    fin = _fin(s, body.fin_id, ctx)
    if fin.status != "LIVE":
        raise Reject(Code.STATE, f"financing {fin.fin_id} is {fin.status}")
    if body.amount > fin.outstanding:
        raise Reject(Code.AMOUNT, f"repayment {body.amount} exceeds the outstanding {fin.outstanding}")
    left = fin.outstanding - body.amount
    fin = replace(fin, outstanding=left, status="LIVE" if left else "REPAID")
    if left == 0:
        _free_liens(s, fin)
    s.put(t.FIN, fin.fin_id, fin)


def _free_liens(s: State, fin: r.Financing) -> None:
    """The financing no longer holds its fingerprints; a pledge made under it keeps its own."""
    for c in fin.collateral:
        lien = s.get(t.LIEN, c.fingerprint)
        if lien is None or lien.financing != fin.fin_id:
            continue
        if lien.pledged_ebl is not None:
            s.put(t.LIEN, c.fingerprint, replace(lien, financing=None))
        else:
            s.delete(t.LIEN, c.fingerprint)
