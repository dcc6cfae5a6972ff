"""UCP 600 roles and collateral under control (issue 14, part B).

Nominated and confirming banks (arts. 6, 7, 8, 12, 14(b), 15), the refusal notice
(art. 14(a), 16(c)(ii)), late presentation as a waivable discrepancy, the banking
calendar pinned in the genesis, and financing against an eBL only under control.
Every block is followed by check_invariants (tests.ledger.helpers.Net).
"""

from __future__ import annotations

import copy
from dataclasses import replace

from consortium.ledger import queries
from tests.ledger.helpers import GENESIS, Net
from tests.ledger.test_stories import HK_LC, presentation

#: A Hong Kong LC available with a Shanghai bank: shipment by 28 Sep 2026, so the
#: exporter presents in Shanghai on Wed 30 Sep, just before the mainland's National Day week.
NOMINATED_LC = dict(HK_LC, latest_shipment_date="2026-09-28", expiry_date="2026-11-30", nominated_bank="bank-sh")
PID = {"lc_id": "LC-HK-001", "presentation_id": "P1"}


def _presented_in_shanghai(net: Net, lc: dict[str, object], bank: str = "bank-sh") -> str:
    net.on("2026-09-25")
    ebl = net.shipment("NOM0001", consignee=None, endorsee=None, container="TSTU3000001", date="2026-09-25")
    net.ok("LC_ISSUE", "bank-hk", lc)
    net.ok("LC_ADVISE", "bank-sh", {"lc_id": "LC-HK-001"})
    if lc.get("confirming_bank"):
        net.ok("LC_CONFIRM", lc["confirming_bank"], {"lc_id": "LC-HK-001"})  # type: ignore[arg-type]
    net.on("2026-09-30")
    net.ok("LC_PRESENT", "sh-exporter", dict(presentation(ebl, amount=240_000_00), bank=bank))
    return ebl


def _pres(net: Net) -> dict[str, object]:
    return queries.lc(net.ledger, "LC-HK-001")["presentation_records"][0]  # type: ignore[index,no-any-return]


def test_nominated_bank_in_shanghai_examines_on_its_own_calendar_and_is_reimbursed() -> None:
    """A Hong Kong LC available with a Shanghai nominated bank (arts. 6(a), 12): the
    beneficiary presents there; the nominated bank's five banking days follow the
    mainland calendar (art. 14(b)): presented Wed 30 Sep 2026, the mainland closes 1-7 Oct
    and works Sat 10 Oct, so its last day is Tue 13 Oct (a HK bank's would be Thu 8 Oct).
    It honours and forwards the eBL to the issuing bank (art. 15(c)), which owes it
    reimbursement (art. 7(c)) and reimburses. A bank the credit is not available with
    cannot be presented to (AUTH); only the issuing bank reimburses (AUTH)."""
    net = Net()
    net.on("2026-09-25")
    ebl = net.shipment("NOM0001", consignee=None, endorsee=None, container="TSTU3000001", date="2026-09-25")
    net.ok("LC_ISSUE", "bank-hk", NOMINATED_LC)
    net.ok("LC_ADVISE", "bank-sh", {"lc_id": "LC-HK-001"})
    net.on("2026-09-30")
    wrong = dict(presentation(ebl, amount=240_000_00), bank="hk-importer")
    assert net.do("LC_PRESENT", "sh-exporter", wrong).code == "AUTH"
    net.ok("LC_PRESENT", "sh-exporter", dict(presentation(ebl, amount=240_000_00), bank="bank-sh"))
    pres = _pres(net)
    assert (pres["bank"], pres["deemed_date"], pres["deadline"]) == ("bank-sh", "2026-09-30", "2026-10-13")
    assert net.ebl(ebl)["possessor"] == "bank-sh"
    assert net.do("LC_HONOUR", "bank-hk", PID).code == "AUTH"  # the examining bank is bank-sh
    net.on("2026-10-09")
    net.ok("LC_HONOUR", "bank-sh", PID)
    pres = _pres(net)
    assert (pres["status"], pres["reimbursement"]) == ("HONOURED", "DUE")
    assert net.ebl(ebl)["possessor"] == "bank-hk"  # forwarded to the issuing bank
    assert net.do("LC_REIMBURSE", "bank-sh", PID).code == "AUTH"
    net.ok("LC_REIMBURSE", "bank-hk", PID)
    lc = queries.lc(net.ledger, "LC-HK-001")
    assert lc is not None and lc["status"] == "UTILIZED" and lc["nominated_bank"] == "bank-sh"
    assert _pres(net)["reimbursement"] == "PAID"
    assert net.do("LC_REIMBURSE", "bank-hk", PID).code == "STATE"


def test_nominated_bank_that_does_not_act_forwards_to_the_issuing_bank() -> None:
    """A nominated bank that is not a confirming bank need not honour (art. 12(a)): it
    forwards the documents, and the issuing bank examines them in its own calendar from
    the day it receives them. Expected: LC_FORWARD OK, the eBL at bank-hk, the examining
    bank bank-hk with a deadline five HK banking days after Fri 2 Oct (Fri 9 Oct); the
    issuing bank honours; nothing is reimbursed (it paid the beneficiary itself)."""
    net = Net()
    ebl = _presented_in_shanghai(net, NOMINATED_LC)
    net.on("2026-10-02")
    net.ok("LC_FORWARD", "bank-sh", PID)
    pres = _pres(net)
    assert (pres["bank"], pres["deadline"]) == ("bank-hk", "2026-10-09")
    assert net.ebl(ebl)["possessor"] == "bank-hk"
    net.ok("LC_HONOUR", "bank-hk", PID)
    assert _pres(net)["reimbursement"] is None


def test_confirming_bank_adds_its_own_undertaking() -> None:
    """Art. 8: the bank the issuing bank names adds its confirmation and is then bound
    itself: presentation to it before it confirms -> STATE; confirmation by another bank
    -> AUTH; once confirmed, it examines on its own (mainland) calendar, may not just
    forward (STATE), refuses within its own period (9 Oct is after a HK bank's last day but
    within its own, OK), and after the applicant's waiver honours and is reimbursed."""
    net = Net()
    lc = dict(NOMINATED_LC, confirming_bank="bank-sh")
    net.on("2026-09-25")
    ebl = net.shipment("NOM0001", consignee=None, endorsee=None, container="TSTU3000001", date="2026-09-25")
    net.ok("LC_ISSUE", "bank-hk", dict(lc, nominated_bank=None))
    net.ok("LC_ADVISE", "bank-sh", {"lc_id": "LC-HK-001"})
    net.on("2026-09-30")
    early = net.do("LC_PRESENT", "sh-exporter", dict(presentation(ebl), bank="bank-sh"))
    assert early.code == "STATE"
    assert net.do("LC_CONFIRM", "bank-hk", {"lc_id": "LC-HK-001"}).code == "AUTH"
    net.ok("LC_CONFIRM", "bank-sh", {"lc_id": "LC-HK-001"})
    assert net.do("LC_CONFIRM", "bank-sh", {"lc_id": "LC-HK-001"}).code == "STATE"
    view = queries.lc(net.ledger, "LC-HK-001")
    assert view is not None and view["undertakings"] == ["bank-hk", "bank-sh"]
    net.ok("LC_PRESENT", "sh-exporter", dict(presentation(ebl, amount=260_000_00), bank="bank-sh"))
    assert _pres(net)["deadline"] == "2026-10-13"
    assert net.do("LC_FORWARD", "bank-sh", PID).code == "STATE"
    net.on("2026-10-09")
    net.ok("LC_REFUSE", "bank-sh", dict(PID, discrepancies=["AMOUNT_EXCEEDS"], disposal="HOLD_PENDING_WAIVER"))
    net.ok("LC_WAIVE", "hk-importer", PID)
    net.ok("LC_HONOUR", "bank-sh", PID)
    assert _pres(net)["reimbursement"] == "DUE"
    net.ok("LC_REIMBURSE", "bank-hk", PID)


def test_refusal_notice_states_the_banks_own_discrepancies() -> None:
    """Art. 14(a), 16(c)(ii): the bank's own examination decides; its notice states the
    discrepancies on which it refuses. The ledger finds AMOUNT_EXCEEDS, LATE_SHIPMENT and
    MISSING_DOCUMENT; a notice citing only LATE_SHIPMENT is accepted (was NOTICE) and
    recorded as given; a notice stating no discrepancy is refused (BENV)."""
    net = Net()
    net.ok("LC_ISSUE", "bank-hk", dict(HK_LC, latest_shipment_date="2026-03-01"))
    net.ok("LC_ADVISE", "bank-sh", {"lc_id": "LC-HK-001"})
    ebl = net.shipment("DSC0001", consignee=None, endorsee=None)
    net.ok("LC_PRESENT", "sh-exporter", presentation(ebl, amount=260_000_00, documents=("INVOICE",)))
    assert _pres(net)["discrepancies"] == ["AMOUNT_EXCEEDS", "LATE_SHIPMENT", "MISSING_DOCUMENT"]
    notice = dict(PID, disposal="HOLD")
    empty = net.do("LC_REFUSE", "bank-hk", dict(notice, discrepancies=[]), validate=False)
    assert empty.code == "BENV"
    net.ok("LC_REFUSE", "bank-hk", dict(notice, discrepancies=["LATE_SHIPMENT"]))
    assert _pres(net)["refusal"] == ["LATE_SHIPMENT"]


def test_presentation_after_expiry_is_a_discrepancy_the_applicant_may_waive() -> None:
    """A presentation after the expiry date (extended per art. 29(a)) is not refused by the
    ledger: it is recorded with the discrepancy PRESENTED_AFTER_EXPIRY (and
    LATE_PRESENTATION past the 21 days of art. 14(c)); the bank refuses, the applicant
    waives, the bank honours. Expiry Fri 29 May 2026, presented Mon 1 Jun: OK (was EXPIRED)."""
    net = Net()
    net.ok("LC_ISSUE", "bank-hk", HK_LC)
    net.ok("LC_ADVISE", "bank-sh", {"lc_id": "LC-HK-001"})
    ebl = net.shipment("EXP0001", consignee=None, endorsee=None)
    net.on("2026-06-01")
    net.ok("LC_PRESENT", "sh-exporter", presentation(ebl))
    assert _pres(net)["discrepancies"] == ["LATE_PRESENTATION", "PRESENTED_AFTER_EXPIRY"]
    net.ok("LC_REFUSE", "bank-hk", dict(PID, discrepancies=["PRESENTED_AFTER_EXPIRY"],
                                        disposal="HOLD_PENDING_WAIVER"))
    net.ok("LC_WAIVE", "hk-importer", PID)
    net.ok("LC_HONOUR", "bank-hk", PID)


def test_banking_calendar_is_pinned_in_the_genesis() -> None:
    """The banking days are data in the genesis (library version and days), not the
    installed `holidays` library: the genesis names its source and its provisional years
    (the mainland's 2027 make-up working days are unpublished), and a genesis that
    closes Hong Kong banks on Fri 6 Mar 2026 moves the deadline of a Thu 5 Mar
    presentation from Thu 12 Mar to Fri 13 Mar; the state root differs."""
    cal = GENESIS.to_dict()["calendars"]
    assert cal["source"].startswith("holidays ")
    assert 2027 in cal["CN-SH"]["provisional"]
    assert "2026-10-01" in cal["CN-SH"]["closed"] and "2026-10-10" in cal["CN-SH"]["open"]
    assert "2026-04-03" in cal["HK"]["closed"]  # Good Friday
    closed = copy.deepcopy(cal)
    closed["HK"]["closed"] = sorted(closed["HK"]["closed"] + ["2026-03-06"])
    deadlines, roots = [], []
    for genesis in (GENESIS, replace(GENESIS, calendars=closed)):
        net = Net(genesis)
        net.ok("LC_ISSUE", "bank-hk", HK_LC)
        net.ok("LC_ADVISE", "bank-sh", {"lc_id": "LC-HK-001"})
        ebl = net.shipment("CAL0001", consignee=None, endorsee=None)
        net.on("2026-03-05")
        net.ok("LC_PRESENT", "sh-exporter", presentation(ebl))
        deadlines.append(_pres(net)["deadline"])
        roots.append(net.ledger.state_root())
    assert deadlines == ["2026-03-12", "2026-03-13"]
    assert roots[0] != roots[1]
    assert queries.calendar(Net().ledger, "CN-SH")["source"] == cal["source"]  # type: ignore[index]


def test_lc_beyond_the_pinned_calendar_is_refused() -> None:
    """A credit whose expiry falls after the last year the genesis calendar covers could
    not have its deadlines computed from pinned data: LC_ISSUE -> LIMIT."""
    net = Net()
    last = GENESIS.to_dict()["calendars"]["last_year"]
    far = net.do("LC_ISSUE", "bank-hk", dict(HK_LC, expiry_date=f"{last + 1}-01-15"))
    assert far.code == "LIMIT"


# ------------------------------------------------------------------ collateral under control

RECEIVABLES = {"fin_id": "RX-1", "kind": "RECEIVABLES", "lender": "bank-sh", "currency": "USD",
               "amount": 100_000_00}


def _financed(net: Net, reference: str = "COL0001") -> str:
    ebl = net.shipment(reference, consignee=None, endorsee="sh-exporter", container="TSTU4000001")
    from consortium.ledger import builders
    invoice = builders.fingerprint({"invoiceNumber": reference})
    net.ok("FIN_REQUEST", "sh-exporter", dict(RECEIVABLES, collateral=[
        {"type": "INVOICE", "fingerprint": invoice}, {"type": "EBL", "fingerprint": ebl}]))
    return ebl


def test_approval_and_switch_to_paper_in_one_block_leave_no_loan_without_control() -> None:
    """Gap 1: financing against an eBL needs control. The lender's approval and the
    exporter's switch to paper in the same block: the approval is refused (STATE: the
    eBL is neither pledged nor endorsed to the lender) and the surrender for amendment
    is refused (RESERVED: a live financing reserves it), in either order. After a pledge
    under the financing the approval is OK."""
    net = Net()
    ebl = _financed(net)
    approve = net.tx("FIN_APPROVE", "bank-sh", {"fin_id": "RX-1"})
    switch = net.tx("SURRENDER_FOR_AMENDMENT", "sh-exporter",
                    {"ebl": ebl, "recipient": "carrier-sh", "reason_code": "SWTP"})
    assert [r.code for r in net.block(approve, switch)] == ["STATE", "RESERVED"]
    switch2 = net.tx("SURRENDER_FOR_AMENDMENT", "sh-exporter",
                     {"ebl": ebl, "recipient": "carrier-sh", "reason_code": "SWTP"})
    approve2 = net.tx("FIN_APPROVE", "bank-sh", {"fin_id": "RX-1"})
    assert [r.code for r in net.block(switch2, approve2)] == ["RESERVED", "STATE"]
    assert net.ebl(ebl)["status"] == "ISSUED"
    net.ok("PLEDGE", "sh-exporter", {"ebl": ebl, "pledgee": "bank-sh", "financing": "RX-1"})
    net.ok("FIN_APPROVE", "bank-sh", {"fin_id": "RX-1"})
    assert queries.financing(net.ledger, "RX-1")["status"] == "LIVE"  # type: ignore[index]


def test_endorsement_to_the_lender_is_control_and_endorsement_away_waits_for_the_decline() -> None:
    """While a requested financing reserves an eBL, it moves only to the lender: an
    endorsement (or transfer) to another party -> RESERVED, so no new holder ends up with
    an eBL it cannot pledge; after the lender declines, the endorsement and the new
    holder's pledge are OK. Endorsing and transferring the eBL to the lender gives it
    control: approval OK."""
    net = Net()
    ebl = _financed(net)
    away = net.do("ENDORSE_TO_ORDER", "sh-exporter", {"ebl": ebl, "recipient": "hk-importer"})
    assert away.code == "RESERVED" and "RX-1" in away.detail
    assert net.do("TRANSFER", "sh-exporter", {"ebl": ebl, "recipient": "hk-importer"}).code == "RESERVED"
    net.ok("FIN_DECLINE", "bank-sh", {"fin_id": "RX-1"})
    net.ok("ENDORSE_TO_ORDER", "sh-exporter", {"ebl": ebl, "recipient": "hk-importer"})
    net.ok("TRANSFER", "sh-exporter", {"ebl": ebl, "recipient": "hk-importer"})
    net.ok("PLEDGE", "hk-importer", {"ebl": ebl, "pledgee": "bank-hk", "financing": None})

    net2 = Net()
    ebl2 = _financed(net2, "COL0002")
    net2.ok("ENDORSE_TO_ORDER", "sh-exporter", {"ebl": ebl2, "recipient": "bank-sh"})
    net2.ok("TRANSFER", "sh-exporter", {"ebl": ebl2, "recipient": "bank-sh"})
    net2.ok("FIN_APPROVE", "bank-sh", {"fin_id": "RX-1"})


def test_pinned_calendar_matches_its_library_version_and_round_trips() -> None:
    """The shipped pin is what `library_calendars` gives with the library version it names
    (checked when that version is installed; an upgrade is then a reviewed regeneration,
    never a silent change); a genesis file carries it through to_dict/from_dict, and a
    malformed calendar is refused with a one-line UserError naming the field."""
    import holidays
    import pytest

    from consortium import genesis as g
    from consortium.errors import UserError
    from consortium.ledger.banking import library_calendars

    pinned = g.default_calendars()
    data = GENESIS.to_dict()
    assert g.from_dict(data, source="t").calendars == pinned
    bad = copy.deepcopy(data)
    bad["calendars"]["HK"]["closed"] = ["2026-13-01"]
    with pytest.raises(UserError, match="calendars"):
        g.from_dict(bad, source="t")
    if pinned["source"] != f"holidays {getattr(holidays, '__version__')}":
        pytest.skip(f"installed holidays {getattr(holidays, '__version__')} is not the pinned {pinned['source']}")
    assert library_calendars(pinned["first_year"], pinned["last_year"]) == pinned
