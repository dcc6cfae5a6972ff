"""eBL rules after DCSA PINT 3.0, plus pledge, release and trust receipt.

Theory of operation (who may do what; every act appends one chain entry that
links to the previous entry's digest, except VOID which ends nothing but the
record: PINT allows no chain entry after SACC):

    ISSUE                   carrier -> issue_to         possessor := issue_to
    TRANSFER                possessor -> recipient      possessor := recipient
    ENDORSE / _TO_ORDER     holder (to-order bills)     endorsee := recipient
    BLANK_ENDORSE           holder (to-order bills)     bearer bill (blank)
    SIGN                    possessor                   (acknowledges possession)
    SURRENDER_FOR_DELIVERY  holder -> issuing carrier   possessor := carrier, pending
    SURRENDER_FOR_AMENDMENT possessor -> issuing carr.  possessor := carrier, pending
    SACC                    issuing carrier             surrendered: final
    SREJ                    issuing carrier             possessor := who surrendered
    VOID                    issuing carrier             after SACC of an amendment
    PLEDGE                  possessor -> bank           possessor := pledgee
    TRUST_RECEIPT           pledgee -> pledgor          possessor := pledgor (pledge stays)
    RELEASE                 pledgee                     pledge ends, possessor := pledgor

While pledged only the pledgee moves the eBL: it may SIGN, give a trust receipt,
release, or take delivery itself; under a trust receipt the pledgor may only
SIGN or surrender for delivery (the purpose of a trust receipt). SACC of a
pledged eBL discharges the pledge (the goods are delivered; the bank's claim
continues against the financing). Possession only changes by the possessor's
own signed act, or by the carrier's SREJ returning it.
"""

from __future__ import annotations

from typing import Any

from consortium import limits
from consortium.ledger import bodies as b
from consortium.ledger import records as r
from consortium.ledger import state as t
from consortium.ledger.banking import add_days
from consortium.ledger.codes import Code
from consortium.ledger.dcsa import TransportDoc
from consortium.ledger.records import replace
from consortium.ledger.rules.cargo import loaders
from consortium.ledger.rules.common import Ctx, Reject, need_ebl, need_party, need_role, short
from consortium.ledger.rules.finance import need_unreserved
from consortium.ledger.state import State
from consortium.types import Role

# ------------------------------------------------------------------ chain


def append(s: State, ctx: Ctx, e: r.Ebl, action: str, recipient: str | None,
           reason: str | None = None, **changes: Any) -> r.Ebl:
    """Add one entry to the eBL's transfer chain; returns the eBL with the new head (and
    `changes`: one copy of the record where the act also changes other fields)."""
    if e.chain_len >= limits.ebl_chain_entries_max:
        raise Reject(Code.LIMIT, f"eBL {short(e.id)} has {limits.ebl_chain_entries_max} chain entries")
    entry = r.ChainEntry(ebl=e.id, seq=e.chain_len, action=action, actor=ctx.actor, recipient=recipient,
                         reason_code=reason, time_ms=ctx.time_ms, tx_hash=ctx.tx.hash, prev=e.chain_head,
                         document_checksum=e.id)
    s.put(t.CHAIN, t.chain_key(e.id, entry.seq), entry)
    return replace(e, chain_len=e.chain_len + 1, chain_head=entry.digest(), **changes)


def need_active(e: r.Ebl, action: str) -> None:
    """PINT: after SACC (and once voided or pending surrender) no act but SACC/SREJ."""
    if e.status != "ISSUED":
        raise Reject(Code.BENV, f"eBL {short(e.id)} is {e.status}: {action} is not possible")


def need_possessor(e: r.Ebl, actor: str) -> None:
    if e.possessor != actor:
        raise Reject(Code.DISE, f"{actor} is not the possessor of eBL {short(e.id)} ({e.possessor} is)")


def need_unpledged(e: r.Ebl, action: str) -> None:
    if e.pledgee is not None:
        raise Reject(Code.PLEDGED, f"eBL {short(e.id)} is pledged to {e.pledgee}: {action} needs a release first")


def movable(s: State, ctx: Ctx, ebl_id: str, action: str) -> r.Ebl:
    """The common gate of a possessor's act that moves possession or title."""
    e = need_ebl(s, ebl_id)
    need_active(e, action)
    need_possessor(e, ctx.actor)
    need_unpledged(e, action)
    return e


def pass_possession(s: State, ctx: Ctx, e: r.Ebl, recipient: str, action: str = "TRANSFER") -> r.Ebl:
    """Possession passes from the actor (checked possessor) to `recipient`."""
    assert e.possessor == ctx.actor
    if recipient == ctx.actor:
        raise Reject(Code.BENV, f"{action} to oneself")
    need_party(s, recipient, "recipient")
    return append(s, ctx, e, action, recipient, possessor=recipient)


# ------------------------------------------------------------------ ISSUE


def on_issue(s: State, ctx: Ctx, body: b.Issue) -> None:
    doc = body.doc
    if s.get(t.EBL, doc.checksum) is not None:
        raise Reject(Code.DUPE, f"document {short(doc.checksum)} is already an eBL")
    for who, ident in (("issue_to", body.issue_to), ("consignee", body.consignee), ("endorsee", body.endorsee)):
        if ident is not None:
            need_party(s, ident, who)
    old = _superseded(s, ctx, body)
    _check_reference(s, ctx, doc, old)
    if doc.is_shipped_on_board:
        check_loaded(s, ctx.actor, doc)
    e = _new_ebl(ctx, body)
    s.put(t.DOC, doc.checksum, r.Doc(text=doc.canonical))
    s.put(t.EBL, e.id, append_first(s, ctx, e))
    ref_key = f"{ctx.actor}/{doc.reference}"
    index = s.get(t.REF, ref_key)
    history = (index.history if index is not None else ()) + (e.id,)
    s.put(t.REF, ref_key, r.RefIndex(carrier=ctx.actor, reference=doc.reference, current=e.id, history=history))
    if old is not None:
        s.put(t.EBL, old.id, replace(old, superseded_by=e.id))


def _superseded(s: State, ctx: Ctx, body: b.Issue) -> r.Ebl | None:
    """A reissue of an amended document names the voided eBL; title goes back to
    the party that surrendered it for amendment, not to anyone the carrier picks."""
    if body.supersedes is None:
        return None
    old = need_ebl(s, body.supersedes)
    if old.carrier != ctx.actor:
        raise Reject(Code.AUTH, f"eBL {short(old.id)} was issued by {old.carrier}")
    if old.status != "VOIDED" or old.paper:
        raise Reject(Code.STATE, f"eBL {short(old.id)} is {old.status}{' (paper)' if old.paper else ''}: "
                                 "only a voided eBL can be reissued")
    if old.superseded_by is not None:
        raise Reject(Code.STATE, f"eBL {short(old.id)} was already reissued as {short(old.superseded_by)}")
    if body.issue_to != old.surrendered_by:
        raise Reject(Code.DISE, f"a reissue goes to {old.surrendered_by}, who surrendered it for amendment")
    return old


def _check_reference(s: State, ctx: Ctx, doc: TransportDoc, old: r.Ebl | None) -> None:
    """One authoritative record per (carrier, reference): a reference is reused only
    by the reissue of its own voided eBL."""
    index = s.get(t.REF, f"{ctx.actor}/{doc.reference}")
    if index is None:
        return
    if old is None or index.current != old.id:
        raise Reject(Code.DISE, f"{ctx.actor} already issued reference {doc.reference!r} "
                                f"(eBL {short(index.current)})")


def check_loaded(s: State, carrier: str, doc: TransportDoc) -> None:
    """Stated rule (SOB-LOAD): a shipped-on-board eBL needs, for every container on it, an
    actual LOAD event by the issuing carrier or one of its declared vessel-sharing partners
    (rules/cargo.py) at the port of loading (its UN/LOCODE, which such a document must
    give: SOB-POL-UNLOC) dated within the 30 days up to shippedOnBoardDate, and the last
    container loaded defines that date (DCSA: "date when the last container ... is
    physically loaded onboard")."""
    sob = doc.shipped_on_board_date
    pol = doc.port_of_loading
    assert sob is not None and pol is not None
    earliest = add_days(sob, -limits.load_lookback_days)
    latest: list[str] = []
    carriers = loaders(s, carrier)
    for eq in doc.equipment:
        loads = [x for c in carriers if (index := s.get(t.LOAD, f"{c}/{eq}")) is not None for x in index.loads]
        if not loads:
            raise Reject(Code.MDOC, f"SOB-LOAD: no actual LOAD event by {' or '.join(carriers)} for container {eq}")
        at_port = [x for x in loads if x.location == pol]
        if not at_port:
            raise Reject(Code.LOAD_MISMATCH, f"SOB-LOAD: container {eq} was not loaded at {pol}")
        dated = [x.local_date for x in at_port if earliest <= x.local_date <= sob]
        if not dated:
            raise Reject(Code.LOAD_MISMATCH, f"SOB-LOAD: container {eq} has no LOAD at {pol} within "
                                             f"{limits.load_lookback_days} days up to {sob}")
        latest.append(max(dated))
    if max(latest) != sob:
        raise Reject(Code.LOAD_MISMATCH, f"SOB-LOAD: the last container was loaded on {max(latest)}, "
                                         f"but shippedOnBoardDate is {sob}")


def _new_ebl(ctx: Ctx, body: b.Issue) -> r.Ebl:
    doc = body.doc
    return r.Ebl(
        id=doc.checksum, carrier=ctx.actor, reference=doc.reference, carrier_code=doc.carrier_code,
        is_to_order=doc.is_to_order, on_board=doc.is_shipped_on_board, shipment_date=doc.shipment_date,
        port_of_loading=doc.port_of_loading, port_of_discharge=doc.port_of_discharge,
        issue_to=body.issue_to, consignee=body.consignee, status="ISSUED", possessor=body.issue_to,
        # DCSA: a to-order B/L without an endorsee is blank endorsed.
        endorsee=body.endorsee, issued_endorsee=body.endorsee, blank=doc.is_to_order and body.endorsee is None,
        endorsable=True,
        pledgee=None, pledgor=None, pledge_financing=None, trust_receipt=False, surrendered_by=None,
        amendment_reason=None, paper=False, supersedes=body.supersedes, superseded_by=None,
        chain_len=1, chain_head=r.ZERO_HASH, issued_height=ctx.height,
    )


def append_first(s: State, ctx: Ctx, e: r.Ebl) -> r.Ebl:
    entry = r.ChainEntry(ebl=e.id, seq=0, action="ISSUE", actor=ctx.actor, recipient=e.issue_to,
                         reason_code=None, time_ms=ctx.time_ms, tx_hash=ctx.tx.hash, prev=r.ZERO_HASH,
                         document_checksum=e.id)
    s.put(t.CHAIN, t.chain_key(e.id, 0), entry)
    return replace(e, chain_head=entry.digest())


# ------------------------------------------------------------------ possession and title


def on_transfer(s: State, ctx: Ctx, body: b.Transfer) -> None:
    e = movable(s, ctx, body.ebl, "TRANSFER")
    need_unreserved(s, e, ctx.actor, body.recipient, "TRANSFER")
    s.put(t.EBL, e.id, pass_possession(s, ctx, e, body.recipient))


def _endorse(s: State, ctx: Ctx, ebl_id: str, action: str, recipient: str | None) -> None:
    e = need_ebl(s, ebl_id)
    if not e.is_to_order:
        raise Reject(Code.BENV, f"eBL {short(e.id)} is a straight bill: {action} applies to to-order bills")
    need_active(e, action)
    need_possessor(e, ctx.actor)
    need_unpledged(e, action)
    need_unreserved(s, e, ctx.actor, recipient, action)
    if e.title_holder() != ctx.actor:
        raise Reject(Code.TITLE, f"{ctx.actor} holds eBL {short(e.id)} but is not its endorsee")
    if not e.endorsable:
        raise Reject(Code.TITLE, f"{ctx.actor} was endorsed with ENDORSE and cannot endorse further")
    if recipient is not None:
        need_party(s, recipient, "endorsee")
    blank = recipient is None
    s.put(t.EBL, e.id, append(s, ctx, e, action, recipient, endorsee=recipient, blank=blank,
                              endorsable=action != "ENDORSE"))


def on_endorse(s: State, ctx: Ctx, body: b.Endorse) -> None:
    _endorse(s, ctx, body.ebl, "ENDORSE", body.recipient)


def on_endorse_to_order(s: State, ctx: Ctx, body: b.EndorseToOrder) -> None:
    _endorse(s, ctx, body.ebl, "ENDORSE_TO_ORDER", body.recipient)


def on_blank_endorse(s: State, ctx: Ctx, body: b.BlankEndorse) -> None:
    _endorse(s, ctx, body.ebl, "BLANK_ENDORSE", None)


def on_sign(s: State, ctx: Ctx, body: b.Sign) -> None:
    e = need_ebl(s, body.ebl)
    need_active(e, "SIGN")
    need_possessor(e, ctx.actor)
    s.put(t.EBL, e.id, append(s, ctx, e, "SIGN", None))


# ------------------------------------------------------------------ surrender


def _surrender(s: State, ctx: Ctx, ebl_id: str, action: str, recipient: str, reason: str | None) -> None:
    e = need_ebl(s, ebl_id)
    need_active(e, action)
    need_possessor(e, ctx.actor)
    if recipient != e.carrier:
        raise Reject(Code.BENV, f"a surrender goes to the issuing carrier {e.carrier}, not {recipient}")
    if action == "SURRENDER_FOR_DELIVERY":
        _may_take_delivery(e, ctx.actor)
    else:
        need_unpledged(e, action)
    need_unreserved(s, e, ctx.actor, None, action)  # financing: collateral under control
    s.put(t.EBL, e.id, append(s, ctx, e, action, recipient, reason, status=r.PENDING[action], possessor=e.carrier,
                              surrendered_by=ctx.actor, amendment_reason=reason))


def _may_take_delivery(e: r.Ebl, actor: str) -> None:
    if e.pledgee is not None and not (actor == e.pledgee or (e.trust_receipt and actor == e.pledgor)):
        raise Reject(Code.PLEDGED, f"eBL {short(e.id)} is pledged to {e.pledgee} without a trust receipt")
    if e.title_holder() != actor:
        raise Reject(Code.TITLE, f"{actor} is not the holder entitled to delivery "
                                 f"({'bearer' if e.blank else e.title_holder()})")


def on_surrender_for_delivery(s: State, ctx: Ctx, body: b.SurrenderForDelivery) -> None:
    _surrender(s, ctx, body.ebl, "SURRENDER_FOR_DELIVERY", body.recipient, None)


def on_surrender_for_amendment(s: State, ctx: Ctx, body: b.SurrenderForAmendment) -> None:
    _surrender(s, ctx, body.ebl, "SURRENDER_FOR_AMENDMENT", body.recipient, body.reason_code)


def _pending_for_carrier(s: State, ctx: Ctx, ebl_id: str, action: str) -> r.Ebl:
    e = need_ebl(s, ebl_id)
    if e.carrier != ctx.actor:
        raise Reject(Code.AUTH, f"only the issuing carrier {e.carrier} answers a surrender")
    if not e.status.startswith("PENDING_"):
        raise Reject(Code.BENV, f"eBL {short(e.id)} is {e.status}: no surrender to {action}")
    return e


def on_sacc(s: State, ctx: Ctx, body: b.Sacc) -> None:
    e = _pending_for_carrier(s, ctx, body.ebl, "SACC")
    e = append(s, ctx, e, "SACC", e.surrendered_by, status=r.SURRENDERED[e.status])
    if e.pledgee is not None:
        e = discharge_pledge(s, e)
    s.put(t.EBL, e.id, e)


def on_srej(s: State, ctx: Ctx, body: b.Srej) -> None:
    e = _pending_for_carrier(s, ctx, body.ebl, "SREJ")
    back = e.surrendered_by
    assert back is not None
    s.put(t.EBL, e.id, append(s, ctx, e, "SREJ", back, status="ISSUED", possessor=back, surrendered_by=None,
                              amendment_reason=None))


def on_void(s: State, ctx: Ctx, body: b.Void) -> None:
    e = need_ebl(s, body.ebl)
    if e.carrier != ctx.actor:
        raise Reject(Code.AUTH, f"only the issuing carrier {e.carrier} voids eBL {short(e.id)}")
    if e.status != "SURRENDERED_FOR_AMENDMENT":
        raise Reject(Code.STATE, f"eBL {short(e.id)} is {e.status}: void follows SACC of an amendment")
    if body.paper and e.amendment_reason != "SWTP":
        raise Reject(Code.STATE, "a switch to paper needs a surrender for amendment with reason SWTP")
    s.put(t.EBL, e.id, replace(e, status="VOIDED", paper=body.paper))


# ------------------------------------------------------------------ pledge


def on_pledge(s: State, ctx: Ctx, body: b.Pledge) -> None:
    e = need_ebl(s, body.ebl)
    need_active(e, "PLEDGE")
    need_possessor(e, ctx.actor)
    if e.pledgee is not None:
        raise Reject(Code.DISE, f"eBL {short(e.id)} is already pledged to {e.pledgee}")
    need_role(s, body.pledgee, "pledgee", Role.BANK)
    _take_lien(s, ctx, e, body.pledgee, body.financing)
    e = pass_possession(s, ctx, e, body.pledgee, "PLEDGE")
    s.put(t.EBL, e.id, replace(e, pledgee=body.pledgee, pledgor=ctx.actor, pledge_financing=body.financing,
                               trust_receipt=False))


def _take_lien(s: State, ctx: Ctx, e: r.Ebl, pledgee: str, financing: str | None) -> None:
    """The eBL's fingerprint (its checksum) backs at most one security interest: a
    pledge joins its own financing's reservation, or stands alone."""
    lien = s.get(t.LIEN, e.id)
    if financing is None:
        if lien is not None:
            raise Reject(Code.DISE, f"eBL {short(e.id)} already backs {_lien_text(lien)}")
        s.put(t.LIEN, e.id, r.Lien(fingerprint=e.id, holder=pledgee, financing=None, pledged_ebl=e.id))
        return
    fin = s.get(t.FIN, financing)
    if fin is None:
        raise Reject(Code.UNKNOWN, f"no financing {financing!r}")
    if fin.borrower != ctx.actor or fin.lender != pledgee:
        raise Reject(Code.AUTH, f"financing {financing} is {fin.borrower}'s with {fin.lender}")
    if not fin.live or all(c.fingerprint != e.id for c in fin.collateral):
        raise Reject(Code.STATE, f"financing {financing} is {fin.status} or does not list this eBL")
    if lien is None or lien.financing != financing or lien.pledged_ebl is not None:
        raise Reject(Code.DISE, f"eBL {short(e.id)} already backs {_lien_text(lien)}")
    s.put(t.LIEN, e.id, replace(lien, pledged_ebl=e.id))


def _lien_text(lien: r.Lien | None) -> str:
    if lien is None:
        return "nothing"
    if lien.pledged_ebl is not None:
        return f"a pledge to {lien.holder}"
    return f"financing {lien.financing} with {lien.holder}"


def discharge_pledge(s: State, e: r.Ebl) -> r.Ebl:
    """End the pledge on the record and free or narrow the lien it held."""
    lien = s.get(t.LIEN, e.id)
    if lien is not None and lien.pledged_ebl == e.id:
        fin = s.get(t.FIN, lien.financing) if lien.financing is not None else None
        if fin is not None and fin.live:
            s.put(t.LIEN, e.id, replace(lien, pledged_ebl=None))
        else:
            s.delete(t.LIEN, e.id)
    return replace(e, pledgee=None, pledgor=None, pledge_financing=None, trust_receipt=False)


def _pledged_to_actor(s: State, ctx: Ctx, ebl_id: str, action: str) -> r.Ebl:
    e = need_ebl(s, ebl_id)
    need_active(e, action)
    if e.pledgee is None:
        raise Reject(Code.STATE, f"eBL {short(e.id)} is not pledged")
    if e.pledgee != ctx.actor:
        raise Reject(Code.AUTH, f"eBL {short(e.id)} is pledged to {e.pledgee}")
    return e


def on_release(s: State, ctx: Ctx, body: b.Release) -> None:
    e = _pledged_to_actor(s, ctx, body.ebl, "RELEASE")
    assert e.pledgor is not None
    if not e.trust_receipt:
        need_possessor(e, ctx.actor)
    pledgor = e.pledgor
    e = append(s, ctx, e, "RELEASE", pledgor)
    s.put(t.EBL, e.id, replace(discharge_pledge(s, e), possessor=pledgor))


def on_trust_receipt(s: State, ctx: Ctx, body: b.TrustReceipt) -> None:
    e = _pledged_to_actor(s, ctx, body.ebl, "TRUST_RECEIPT")
    if e.trust_receipt:
        raise Reject(Code.STATE, f"eBL {short(e.id)} is already out under a trust receipt")
    need_possessor(e, ctx.actor)
    pledgor = e.pledgor
    assert pledgor is not None
    e = append(s, ctx, e, "TRUST_RECEIPT", pledgor)
    s.put(t.EBL, e.id, replace(e, possessor=pledgor, trust_receipt=True))
