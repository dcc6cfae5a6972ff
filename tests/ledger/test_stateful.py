"""Random parties attempt random transactions, valid and invalid, in random order,
grouped into blocks at random dates.

Invariants, in words:
1. Every ledger invariant (consortium.ledger.invariants) holds after every step.
2. No transaction ever makes the ledger fail internally: each gets OK or a reason code.
3. Applying the same block sequence to a fresh ledger gives the same state root
   (determinism across nodes).
4. restore(snapshot()) gives the same state root.

Settlement in tokenised deposits is attempted too (`_money`): tokens issued and redeemed,
payments plain or claimed against an LC honour or a loan, interbank positions settled,
DvP offers made, cancelled and settled with the buyer funded or not; invariant 1 then
covers no negative balance, supply = recorded liabilities, no payment without its obligation.

Acts are mostly attempted by the party entitled to them (so that deep paths - pledge,
trust receipt, presentation, refusal, waiver, consent - are reached) and sometimes by
anyone (so that every rejection path is exercised too). Credits may name a nominated
and a confirming bank (presentation there, confirmation, forwarding, reimbursement),
refusal notices state some or all of the discrepancies, and financings may list an eBL
beside an invoice (approval needs the lender's control; the eBL is reserved until then). One `attempt` rule dispatches
over weighted categories (time passing included), so that Hypothesis' swarm testing
(switching rules off per example) cannot starve the eBL acts; an attempt goes into a
block at once three times in four, else it waits for the next block with others.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from consortium import crypto, limits
from consortium.ledger import Ledger, builders
from consortium.ledger import state as t
from consortium.ledger.banking import local_date
from consortium.ledger.bodies import EXAMINER_DISCREPANCIES, LEDGER_DISCREPANCIES
from consortium.ledger.invariants import check_invariants
from tests.ledger.helpers import GENESIS, IDS, KEYS, Net

DAY = 86_400_000
CARRIERS = ["carrier-sh", "carrier-hk"]
BANKS = ["bank-hk", "bank-sh"]
TRADERS = ["sh-exporter", "sh-supplier", "hk-importer", "hk-distributor"]
EBL_ACTIONS = ["TRANSFER", "ENDORSE", "ENDORSE_TO_ORDER", "BLANK_ENDORSE", "SIGN", "SURRENDER_FOR_DELIVERY",
               "SURRENDER_FOR_AMENDMENT", "SACC", "SREJ", "VOID", "PLEDGE", "RELEASE", "TRUST_RECEIPT"]
LC_ACTIONS = ["LC_ADVISE", "LC_PRESENT", "LC_HONOUR", "LC_REFUSE", "LC_WAIVE", "LC_AMEND", "LC_AMEND_ACCEPT",
              "LC_AMEND_REJECT", "LC_CONFIRM", "LC_FORWARD", "LC_REIMBURSE"]
maybe_bank = st.sampled_from([None, None, *BANKS])
FIXED_FPS = [builders.fingerprint({"doc": i}) for i in range(3)]  # invoices, orders, warehouse receipts
#: Weighted categories of attempts.
ATTEMPTS = (["issue"] * 3 + ["ebl"] * 8 + ["reissue"] + ["fin_request"] * 2 + ["fin"] * 3 + ["lc_issue"] * 2
            + ["lc"] * 5 + ["attest"] + ["consent"] * 3 + ["garbage"] * 2 + ["advance"] * 2 + ["money"] * 5)
#: Settlement acts (tokenised deposits); EUR has no token (CURRENCY).
MONEY_ACTIONS = ["TOKEN_ISSUE", "TOKEN_ISSUE", "TOKEN_REDEEM", "PAY", "PAY", "PAY_OBLIGATION", "PAY_OBLIGATION",
                 "INTERBANK_SETTLE", "DVP_OFFER", "DVP", "DVP", "DVP_CANCEL"]
CURRENCIES = ["CNH", "HKD", "USD"]

anyone = st.sampled_from(IDS)
trader = st.sampled_from(TRADERS + ["bank-hk"])
pick = st.integers(min_value=0, max_value=10_000)
#: 0-1: the act the record's state invites, by the entitled party; 2: any act by that
#: party; 3: any act by anyone (Hypothesis favours small values: plausible first).
MODE = st.integers(0, 3)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.net = Net()
        self.pending: list[bytes] = []
        self.sent: list[bytes] = []
        self.ebls: list[str] = []
        self.fins: list[str] = []
        self.lcs: list[str] = []
        self.data: list[str] = []
        self.dvps: list[str] = []
        self.focus: dict[str, str] = {}
        self.seq = 0

    # ------------------------------------------------------------ the rules

    @rule(d=st.data(), what=st.sampled_from(ATTEMPTS), seal=st.integers(0, 3))
    def attempt(self, d: st.DataObject, what: str, seal: int) -> None:
        """One category of act; most go into a block at once (seal != 0), some pile up."""
        getattr(self, f"_{what}")(d)
        if seal:
            self.seal()

    def _advance(self, d: st.DataObject) -> None:
        self.net.time_ms += d.draw(st.integers(0, 9)) * DAY + d.draw(st.integers(0, 23)) * 3_600_000

    def seal(self) -> None:
        txs, self.pending = self.pending[: limits.block_txs_max], self.pending[limits.block_txs_max:]
        self.net.block(*txs)  # asserts no INTERNAL result and every invariant
        if not self.pending:  # forget ids that never made it (keep one, for the misses)
            for table, pool in ((t.EBL, self.ebls), (t.FIN, self.fins), (t.LC, self.lcs), (t.DATA, self.data),
                                (t.DVP, self.dvps)):
                known = [x for x in pool if self.net.ledger.state.get(table, x) is not None]
                pool[:] = known + [x for x in pool if x not in known][-1:]

    @invariant()
    def invariants_hold(self) -> None:
        assert check_invariants(self.net.ledger) == []

    def teardown(self) -> None:
        if self.pending:
            self.seal()
        again = Ledger(GENESIS)
        for ctx, txs in self.net.blocks:
            again.apply_block(ctx, txs)
        assert again.state_root() == self.net.ledger.state_root()
        restored = Ledger(GENESIS)
        restored.restore(self.net.ledger.snapshot())
        assert restored.state_root() == self.net.ledger.state_root()
        assert check_invariants(restored) == []

    # ------------------------------------------------------------ helpers

    def submit(self, kind: str, actor: str, body: dict[str, Any], **kw: Any) -> None:
        data = self.net.tx(kind, actor, body, **kw)
        self.pending.append(data)
        self.sent.append(data)

    def next(self) -> int:
        self.seq += 1
        return self.seq

    def today(self, days: int = 0) -> str:
        d = local_date(self.net.time_ms)
        return d.fromordinal(d.toordinal() + days).isoformat()

    def get(self, table: t.Table[Any], pool: list[str], i: int) -> tuple[str, Any]:
        """A record of `pool`: mostly the one last acted on (so that lifecycles go deep:
        pledge then trust receipt then surrender then SACC), else any."""
        if not pool:
            return "0" * 64, None
        focus = self.focus.get(table.name)
        # `i` is often 0 (Hypothesis favours simple values): 0 means "the focus" here.
        key = focus if (focus in pool and i % 4 != 1) else pool[-1 - i % len(pool)]
        self.focus[table.name] = key
        return key, self.net.ledger.state.get(table, key)

    # ------------------------------------------------------------ eBL

    def _issue(self, d: st.DataObject) -> None:
        issuer = d.draw(st.sampled_from(CARRIERS * 3 + ["sh-exporter"]))
        shipper, consignee = d.draw(trader), d.draw(trader)
        to_order, blank, on_board = d.draw(st.booleans()), d.draw(st.booleans()), d.draw(st.booleans())
        loaded = d.draw(st.integers(0, 5))  # 0: no LOAD (MDOC), 1: a stale LOAD (LOAD_MISMATCH)
        n = self.next()
        container = f"HYPU{n:07d}"
        if on_board and loaded:
            when = f"{self.today()}T00:30:00+08:00" if loaded > 1 else "2020-01-01T00:00:00+08:00"
            # loaded == 5: a vessel-sharing partner loads it; declared (VSA_DECLARE) or not
            loader = next(c for c in CARRIERS if c != issuer) if loaded == 5 else issuer
            if loader != issuer and d.draw(st.booleans()):
                self.submit("VSA_DECLARE", issuer, {"vsa_id": f"V{n}", "partners": [loader]})
            self.submit("CARGO_EVENT", loader, builders.events_body([builders.load_event(
                f"ev{n}", container, "CNSHA", when)]))
        endorsee = None if (blank or not to_order) else shipper
        consignee_id = None if to_order else consignee
        doc = builders.transport_document(
            f"R{d.draw(st.integers(0, 40))}", carrier_code="HPCS", shipper=shipper, consignee=consignee_id,
            endorsee=endorsee, equipment=[container], port_of_loading="CNSHA", port_of_discharge="HKHKG",
            on_board_date=self.today() if on_board else None, received_date=None if on_board else self.today())
        doc["termsAndConditions"] = f"terms {n}"
        body = builders.issue_body(doc, shipper, consignee=consignee_id, endorsee=endorsee)
        self.ebls.append(body["checksum"])
        self.focus["ebl"] = body["checksum"]
        self.submit("ISSUE", issuer, body)

    def _ebl(self, d: st.DataObject) -> None:
        """Mode 0-1: the act the eBL's state invites, by the party entitled to it; mode 2:
        any act by that party; mode 3: any act by anyone."""
        ebl, e = self.get(t.EBL, self.ebls, d.draw(pick))
        mode = d.draw(MODE)
        action, actor, recipient = d.draw(st.sampled_from(EBL_ACTIONS)), d.draw(anyone), d.draw(trader)
        if e is not None and mode < 3:
            if mode < 2:
                action = d.draw(st.sampled_from(self._next_ebl_acts(e)))
            actor = {"SACC": e.carrier, "SREJ": e.carrier, "VOID": e.carrier, "RELEASE": e.pledgee,
                     "TRUST_RECEIPT": e.pledgee}.get(action) or e.possessor
            recipient = e.carrier if action.startswith("SURRENDER") and mode < 2 else recipient
            recipient = next(x for x in TRADERS if x != actor) if recipient == actor else recipient
        body: dict[str, Any] = {"ebl": ebl}
        if action in ("TRANSFER", "ENDORSE", "ENDORSE_TO_ORDER", "SURRENDER_FOR_DELIVERY"):
            body["recipient"] = recipient
        elif action == "SURRENDER_FOR_AMENDMENT":
            body.update(recipient=recipient, reason_code=d.draw(st.sampled_from(["SWTP", "COD", None])))
        elif action == "VOID":
            body["paper"] = e is not None and e.amendment_reason == "SWTP" and d.draw(st.booleans())
        elif action == "PLEDGE":
            body.update(self._pledge(d, ebl, mode, recipient))
        self.submit(action, actor, body)

    @staticmethod
    def _next_ebl_acts(e: Any) -> list[str]:
        if e.status.startswith("PENDING"):
            return ["SACC", "SREJ"]
        if e.status == "SURRENDERED_FOR_AMENDMENT":
            return ["VOID"]
        if e.status != "ISSUED":
            return EBL_ACTIONS
        if e.pledgee is not None:
            return ["SURRENDER_FOR_DELIVERY", "RELEASE", "SIGN"] if e.trust_receipt else ["TRUST_RECEIPT", "RELEASE"]
        acts = ["TRANSFER", "TRANSFER", "PLEDGE", "PLEDGE", "SURRENDER_FOR_AMENDMENT", "SIGN"]
        if e.title_holder() == e.possessor:
            acts += ["SURRENDER_FOR_DELIVERY"] * 2
            acts += ["ENDORSE", "ENDORSE_TO_ORDER", "BLANK_ENDORSE"] if e.is_to_order and e.endorsable else []
        return acts

    def _pledge(self, d: st.DataObject, ebl: str, mode: int, recipient: str) -> dict[str, Any]:
        """Standalone, under a financing listing this eBL, or under any financing."""
        how = d.draw(st.integers(0, 2))
        listing = [f for f in self.fins if self._lists(f, ebl)]
        financing = None
        if how == 1 and listing:
            financing = listing[-1]
        elif how == 2 and self.fins:
            financing = self.fins[d.draw(pick) % len(self.fins)]
        fin = self.net.ledger.state.get(t.FIN, financing) if financing else None
        pledgee = (fin.lender if fin is not None else d.draw(st.sampled_from(BANKS))) if mode < 3 else recipient
        return {"pledgee": pledgee, "financing": financing}

    def _lists(self, fin_id: str, ebl: str) -> bool:
        fin = self.net.ledger.state.get(t.FIN, fin_id)
        return fin is not None and any(c.fingerprint == ebl for c in fin.collateral)

    def _reissue(self, d: st.DataObject) -> None:
        """The carrier reissues an amended document for a (maybe not) voided eBL."""
        _, e = self.get(t.EBL, self.ebls, d.draw(pick))
        if e is None:
            return
        doc = builders.transport_document(
            e.reference, carrier_code="HPCS", shipper="sh-exporter", consignee=e.consignee,
            endorsee=e.issued_endorsee, equipment=[f"HYRU{self.next():07d}"], port_of_loading="CNSHA",
            port_of_discharge="HKHKG", on_board_date=None, received_date=self.today())
        issue_to = e.surrendered_by or e.issue_to if d.draw(st.booleans()) else d.draw(trader)
        body = builders.issue_body(doc, issue_to, consignee=e.consignee, endorsee=e.issued_endorsee,
                                   supersedes=e.id)
        self.ebls.append(body["checksum"])
        self.submit("ISSUE", e.carrier, body)

    # ------------------------------------------------------------ financing

    def _fin_request(self, d: st.DataObject) -> None:
        borrower, lender = d.draw(trader), d.draw(st.sampled_from(BANKS * 2 + ["hk-importer"]))
        if d.draw(st.booleans()) and self.ebls:
            ebl, e = self.get(t.EBL, self.ebls, d.draw(pick))
            borrower = e.possessor if (e is not None and d.draw(MODE) < 3) else borrower
            collateral, kind = [{"type": "EBL", "fingerprint": ebl}], "CARGO_PLEDGE"
            if d.draw(st.booleans()):  # receivables with the eBL as further collateral (control needed)
                kind = "RECEIVABLES"
                collateral.append({"type": "INVOICE", "fingerprint": d.draw(st.sampled_from(FIXED_FPS))})
        else:
            kind, ctype = d.draw(st.sampled_from([("PRE_SHIPMENT", "PO"), ("RECEIVABLES", "INVOICE"),
                                                  ("CARGO_PLEDGE", "WAREHOUSE_RECEIPT")]))
            collateral = [{"type": ctype, "fingerprint": d.draw(st.sampled_from(FIXED_FPS))}]
        fin_id = f"F{self.next()}"
        self.fins.append(fin_id)
        self.focus["fin"] = fin_id
        self.submit("FIN_REQUEST", borrower, {"fin_id": fin_id, "kind": kind, "lender": lender, "currency": "USD",
                                              "amount": d.draw(st.integers(1, 10**6)), "collateral": collateral})

    def _fin(self, d: st.DataObject) -> None:
        fin_id, fin = self.get(t.FIN, self.fins, d.draw(pick))
        mode, actor, amount = d.draw(MODE), d.draw(anyone), d.draw(st.integers(1, 10**6))
        action = d.draw(st.sampled_from(["FIN_APPROVE", "FIN_DECLINE", "FIN_REPAY"]))
        if fin is not None and mode < 3:
            actor = fin.lender
            if mode < 2:
                action = {"REQUESTED": d.draw(st.sampled_from(["FIN_APPROVE", "FIN_APPROVE", "FIN_DECLINE"])),
                          "LIVE": "FIN_REPAY"}.get(fin.status, action)
                amount = max(1, min(amount, fin.outstanding))
        body: dict[str, Any] = {"fin_id": fin_id}
        if action == "FIN_REPAY":
            body["amount"] = amount
        self.submit(action, actor, body)

    # ------------------------------------------------------------ letters of credit

    def _lc_issue(self, d: st.DataObject) -> None:
        applicant, beneficiary = d.draw(trader), d.draw(trader)
        _, e = self.get(t.EBL, self.ebls, d.draw(pick))
        if e is not None and d.draw(MODE) < 3:  # a credit for the shipment at hand
            beneficiary = e.possessor
        if applicant == beneficiary:
            beneficiary = "sh-exporter" if applicant != "sh-exporter" else "sh-supplier"
        ship, expiry = d.draw(st.integers(-3, 20)), d.draw(st.integers(0, 40))
        lc_id = f"L{self.next()}"
        self.lcs.append(lc_id)
        self.focus["lc"] = lc_id
        self.submit("LC_ISSUE", d.draw(st.sampled_from(BANKS * 3 + ["sh-exporter"])), {
            "lc_id": lc_id, "applicant": applicant, "beneficiary": beneficiary,
            "advising_bank": d.draw(st.sampled_from(BANKS)), "currency": "USD", "amount": 100_000,
            "expiry_date": self.today(ship + expiry), "latest_shipment_date": self.today(ship),
            "port_of_loading": "CNSHA", "port_of_discharge": "HKHKG", "goods": "goods",
            "documents_required": ["BL", "INVOICE"], "presentation_days": 21,
            "nominated_bank": d.draw(maybe_bank), "confirming_bank": d.draw(maybe_bank)})

    def _lc(self, d: st.DataObject) -> None:
        lc_id, lc = self.get(t.LC, self.lcs, d.draw(pick))
        mode, actor, pid = d.draw(MODE), d.draw(anyone), d.draw(st.integers(1, 3))
        action = d.draw(st.sampled_from(LC_ACTIONS))
        found = d.draw(st.lists(st.sampled_from(LEDGER_DISCREPANCIES + EXAMINER_DISCREPANCIES), min_size=1,
                                max_size=5, unique=True))
        pres = None
        if lc is not None and lc.open_presentation is not None:
            pres = self.net.ledger.state.get(t.PRES, f"{lc_id}/{lc.open_presentation}")
        if lc is not None and mode < 3:
            if mode < 2:
                action = d.draw(st.sampled_from(self._next_lc_acts(lc, pres)))
                pid = int(lc.open_presentation[1:]) if pres is not None else len(lc.presentations) + 1
                pid = len(lc.presentations) if action == "LC_REIMBURSE" else pid
                found = found[:1] if d.draw(st.booleans()) else found  # the bank's own notice (art. 14(a))
            examiner = pres.bank if pres is not None else lc.issuing_bank
            actor = {"LC_ADVISE": lc.advising_bank, "LC_PRESENT": lc.beneficiary, "LC_WAIVE": lc.applicant,
                     "LC_AMEND_ACCEPT": lc.beneficiary, "LC_AMEND_REJECT": lc.beneficiary,
                     "LC_HONOUR": examiner, "LC_REFUSE": examiner, "LC_FORWARD": examiner,
                     "LC_CONFIRM": lc.confirming_bank or lc.issuing_bank,
                     }.get(action, lc.issuing_bank)
        body: dict[str, Any] = {"lc_id": lc_id}
        if action in ("LC_HONOUR", "LC_REFUSE", "LC_WAIVE", "LC_PRESENT", "LC_FORWARD", "LC_REIMBURSE"):
            body["presentation_id"] = f"P{pid}"
        if action == "LC_PRESENT":
            held = [x for x in self.ebls if lc is not None and self._held_by(x, lc.beneficiary)]
            pool = held if (held and mode < 3) else self.ebls or ["0" * 64]
            body.update(ebl=pool[d.draw(pick) % len(pool)], invoice_amount=d.draw(st.integers(50_000, 150_000)),
                        currency="USD", documents=d.draw(st.sampled_from([["INVOICE"], []])),
                        bank=d.draw(st.sampled_from([lc.nominated_bank, lc.confirming_bank, lc.nominated_bank, None])
                                    if lc is not None and mode < 3 else maybe_bank))
        elif action == "LC_REFUSE":
            body.update(discrepancies=found[:12],
                        disposal=d.draw(st.sampled_from(["HOLD_PENDING_WAIVER", "RETURN", "HOLD",
                                                         "PRIOR_INSTRUCTIONS"])))
        elif action == "LC_AMEND":
            body.update(amount=d.draw(st.integers(50_000, 150_000)), expiry_date=None, latest_shipment_date=None,
                        documents_required=None)
        elif action.startswith("LC_AMEND_"):
            body["amendment"] = max(1, len(lc.amendments)) if (lc is not None and mode < 2) else pid
        self.submit(action, actor, body)

    @staticmethod
    def _next_lc_acts(lc: Any, pres: Any) -> list[str]:
        if not lc.advised:
            return ["LC_ADVISE"]
        if lc.confirming_bank is not None and not lc.confirmed and lc.status == "ISSUED":
            return ["LC_CONFIRM", "LC_PRESENT"]
        if lc.status == "UTILIZED":
            return ["LC_REIMBURSE", "LC_REIMBURSE", "LC_PRESENT"]
        if any(a.status == "PROPOSED" for a in lc.amendments):
            return ["LC_AMEND_ACCEPT", "LC_AMEND_REJECT"]
        if pres is None:
            return ["LC_PRESENT", "LC_PRESENT", "LC_AMEND"] if lc.status == "ISSUED" else LC_ACTIONS
        if pres.status == "PRESENTED":
            return ["LC_HONOUR", "LC_REFUSE", "LC_REFUSE", "LC_WAIVE", "LC_FORWARD"]
        return ["LC_HONOUR"] if pres.waived else ["LC_WAIVE", "LC_HONOUR", "LC_REFUSE"]

    def _held_by(self, ebl: str, party: str) -> bool:
        e = self.net.ledger.state.get(t.EBL, ebl)
        return e is not None and e.possessor == party and e.status == "ISSUED" and e.pledgee is None

    # ------------------------------------------------------------ cross-border data

    def _attest(self, d: st.DataObject) -> None:
        data_id = f"D{self.next()}"
        self.data.append(data_id)
        self.focus["data"] = data_id
        owner = d.draw(st.sampled_from(["sh-exporter", "sh-supplier", "sh-exporter", "hk-importer"]))
        self.submit("DATA_ATTEST", "sdb" if d.draw(MODE) < 3 else d.draw(anyone), {
            "data_id": data_id, "owner": owner, "category": "KYC", "salted_hash": crypto.digest(data_id.encode()),
            "schema": "kyc-v1", "size": 10})

    def _consent(self, d: st.DataObject) -> None:
        data_id, att = self.get(t.DATA, self.data, d.draw(pick))
        mode, actor = d.draw(MODE), d.draw(anyone)
        action = d.draw(st.sampled_from(["CONSENT_GRANT", "CONSENT_REVOKE", "DATA_SHARE"]))
        grantee = d.draw(st.sampled_from(BANKS + ["hkma", "hk-importer"]))
        purpose = d.draw(st.sampled_from(["TRADE_FINANCE", "COMPLIANCE"]))
        hkma_copy = d.draw(st.booleans())
        if att is not None and mode < 3:
            actor = att.owner
            if mode < 2:
                granted = [(c.grantee, c.purpose) for k, c in self.net.ledger.state.rows(t.CONSENT)
                           if k.startswith(f"{data_id}/") and c.status == "GRANTED"]
                if granted and d.draw(st.integers(0, 3)):
                    grantee, purpose = granted[d.draw(pick) % len(granted)]
                    action = d.draw(st.sampled_from(["DATA_SHARE", "DATA_SHARE", "CONSENT_REVOKE"]))
                else:
                    action = "CONSENT_GRANT"
                hkma_copy = grantee == "bank-hk"
        if action == "DATA_SHARE":
            n = self.next()
            seeds = (crypto.digest(b"a%d" % n), crypto.digest(b"b%d" % n))
            body = builders.share_body(f"S{n}", data_id, grantee, purpose, b"payload %d" % n,
                                       KEYS[grantee].public_key, KEYS["hkma"].public_key if hkma_copy else None, seeds)
        else:
            body = {"data_id": data_id, "grantee": grantee, "purpose": purpose}
            if action == "CONSENT_GRANT":
                body["expires"] = None
        self.submit(action, actor, body)

    # ------------------------------------------------------------ settlement in tokenised deposits

    def _money(self, d: st.DataObject) -> None:
        """Mode 0-1: an act an account, obligation, position or DvP offer invites, by the
        party entitled, mostly within its balance; mode 2-3: any amount, party or currency."""
        s = self.net.ledger.state
        action, mode = d.draw(st.sampled_from(MONEY_ACTIONS)), d.draw(MODE)
        actor, bank, payee, payee_bank = d.draw(anyone), d.draw(st.sampled_from(BANKS)), d.draw(trader), \
            d.draw(st.sampled_from(BANKS))
        currency = d.draw(st.sampled_from(CURRENCIES + ["EUR"] if mode == 3 else CURRENCIES))
        amount = d.draw(st.integers(1, 10**6))
        accounts = [a for _, a in s.rows(t.ACCOUNT)]
        held = accounts[d.draw(pick) % len(accounts)] if accounts and mode < 2 else None
        if held is not None:  # spend what an account holds (in mode 0 never more)
            actor, bank, currency = held.holder, held.bank, held.currency
            amount = min(amount, held.balance) if mode == 0 else amount
        elif mode < 2 and action in ("PAY", "TOKEN_REDEEM"):  # no account yet: fund one first
            actor = d.draw(trader)
            self.submit("TOKEN_ISSUE", bank, {"holder": actor, "currency": currency, "amount": amount})
        if action == "TOKEN_ISSUE":
            self.submit(action, d.draw(st.sampled_from(BANKS)) if mode < 3 else actor,
                        {"holder": payee, "currency": currency, "amount": amount})
        elif action == "TOKEN_REDEEM":
            self.submit(action, actor, {"bank": bank, "currency": currency, "amount": amount})
        elif action == "PAY":
            payee = next(x for x in TRADERS + BANKS if x != actor) if payee == actor else payee
            self.submit(action, actor, {"bank": bank, "payee": payee, "payee_bank": payee_bank, "currency": currency,
                                        "amount": amount, "obligation": None, "ref": None})
        elif action == "PAY_OBLIGATION":
            self._pay_obligation(d, mode, actor, bank, currency, amount)
        elif action == "INTERBANK_SETTLE":
            positions = [p for _, p in s.rows(t.POSITION)]
            p = positions[d.draw(pick) % len(positions)] if positions and mode < 3 else None
            body = {"debtor": bank, "currency": currency, "amount": amount}
            actor = d.draw(st.sampled_from(BANKS)) if mode < 3 else actor
            if p is not None:
                actor, body = p.creditor, {"debtor": p.debtor, "currency": p.currency,
                                           "amount": min(amount, p.amount) if mode < 2 else amount}
            self.submit(action, actor, body)
        else:
            self._dvp(d, action, mode, actor, bank, currency, amount)

    def _pay_obligation(self, d: st.DataObject, mode: int, actor: str, bank: str, currency: str,
                        amount: int) -> None:
        s = self.net.ledger.state
        kind = d.draw(st.sampled_from(["LC_HONOUR", "LOAN_DISBURSE", "LOAN_REPAY"]))
        payee, payee_bank = d.draw(trader), d.draw(st.sampled_from(BANKS))
        if kind == "LC_HONOUR":
            lc_id, lc = self.get(t.LC, self.lcs, d.draw(pick))
            honoured = [x for x in self.lcs if (c := s.get(t.LC, x)) is not None and c.status == "UTILIZED"]
            if honoured and mode < 2:  # a credit that owes a payment
                lc_id = honoured[d.draw(pick) % len(honoured)]
                lc = s.get(t.LC, lc_id)
            ref = f"{lc_id}/P{d.draw(st.integers(1, 3))}"
            pres = s.get(t.PRES, f"{lc_id}/{lc.presentations[-1]}") if lc is not None and lc.presentations else None
            if pres is not None and mode < 3:
                ref, actor, bank, payee, currency = (f"{lc_id}/{pres.presentation_id}", pres.bank, pres.bank,
                                                     pres.presenter, lc.terms.currency)
        else:
            ref, fin = self.get(t.FIN, self.fins, d.draw(pick))
            live = [x for x in self.fins if (f := s.get(t.FIN, x)) is not None and f.status == "LIVE"]
            if live and mode < 2:  # a financing that may be disbursed or repaid
                ref = live[d.draw(pick) % len(live)]
                fin = s.get(t.FIN, ref)
            if fin is not None and mode < 3:
                payer, payee = (fin.lender, fin.borrower) if kind == "LOAN_DISBURSE" else (fin.borrower, fin.lender)
                actor, currency = payer, fin.currency
                bank = payer if kind == "LOAN_DISBURSE" else bank
                payee_bank = payee if kind == "LOAN_REPAY" else payee_bank
                if kind == "LOAN_REPAY" and mode < 2:  # fund the borrower first
                    self.submit("TOKEN_ISSUE", bank, {"holder": actor, "currency": currency, "amount": amount})
        payee = next(x for x in TRADERS if x != actor) if payee == actor else payee
        self.submit("PAY", actor, {"bank": bank, "payee": payee, "payee_bank": payee_bank, "currency": currency,
                                   "amount": amount, "obligation": kind, "ref": ref})

    def _dvp(self, d: st.DataObject, action: str, mode: int, buyer: str, bank: str, currency: str,
             amount: int) -> None:
        dvp_id, offer = self.get(t.DVP, self.dvps, d.draw(pick))
        if action == "DVP_OFFER" or (mode < 2 and (offer is None or offer.status != "OFFERED")):
            ebl, e = self.get(t.EBL, self.ebls, d.draw(pick))
            seller = e.possessor if e is not None and mode < 3 else d.draw(trader)
            buyer = d.draw(trader) if mode < 3 else buyer
            buyer = next(x for x in TRADERS if x != seller) if buyer == seller else buyer
            dvp_id = f"V{self.next()}"
            self.dvps.append(dvp_id)
            self.focus["dvp"] = dvp_id
            self.submit("DVP_OFFER", buyer, {"dvp_id": dvp_id, "ebl": ebl, "seller": seller, "bank": bank,
                                             "seller_bank": d.draw(st.sampled_from(BANKS)), "currency": currency,
                                             "amount": amount})
            if mode < 2 and d.draw(st.booleans()):  # settled at once, the buyer funded or not
                if d.draw(st.booleans()) and buyer != bank:
                    self.submit("TOKEN_ISSUE", bank, {"holder": buyer, "currency": currency, "amount": amount})
                self.submit("DVP", seller, {"dvp_id": dvp_id})
            return
        actor = buyer
        if offer is not None and mode < 3:
            actor = offer.seller if action == "DVP" else offer.buyer
            if action == "DVP" and mode < 2 and offer.buyer != offer.bank:  # fund the buyer first
                self.submit("TOKEN_ISSUE", offer.bank, {"holder": offer.buyer, "currency": offer.currency,
                                                        "amount": offer.amount})
        self.submit(action, actor, {"dvp_id": dvp_id})

    # ------------------------------------------------------------ faults

    def _garbage(self, d: st.DataObject) -> None:
        kind, which = d.draw(st.integers(0, 5)), d.draw(pick)
        if kind == 0 and self.sent:
            self.pending.append(self.sent[which % len(self.sent)])  # replay
        elif kind == 1:
            self.pending.append(self.net.tx("SIGN", "sh-exporter", {"ebl": "ab" * 32}, signer="hk-importer"))
        elif kind == 2:
            self.pending.append(bytes([which % 256]) * (which % 40))
        elif kind == 3:  # plaintext mainland ID number
            self.pending.append(self.net.tx("LC_ADVISE", "bank-sh", {"lc_id": "ID11010519491231002X"},
                                            validate=False))
        elif kind == 4:
            self.pending.append(self.net.tx("SIGN", "sh-exporter", {"ebl": "ab" * 32}, chain="elsewhere"))
        else:
            key = crypto.keypair_from_seed(crypto.digest(b"p%d" % which))
            self.pending.append(self.net.tx("REGISTER_PARTY", "hkma" if which % 2 else "sdb", {
                "party_id": f"new-{which % 7}", "name": "Newco", "role": "consignee",
                "jurisdiction": "HK" if which % 3 else "CN-SH", "public_key": key.public_key}))


LedgerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
TestLedgerMachine = LedgerMachine.TestCase
