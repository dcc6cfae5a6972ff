"""The invariant checker catches every kind of corruption it promises to.

Each case writes a corrupted state directly (as a buggy rule would) and expects
check_invariants to name the broken invariant; an untouched ledger passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from consortium.ledger import builders, records
from consortium.ledger import state as t
from consortium.ledger.invariants import check_invariants
from consortium.ledger.ledger import Ledger
from tests.ledger.helpers import Net


def forge(ledger: Ledger, ebl_id: str, action: str, actor: str, recipient: str | None, **changes: object) -> None:
    """Append a correctly linked chain entry and change the record: only the replay can object."""
    s = ledger.state
    e = s.get(t.EBL, ebl_id)
    assert e is not None
    entry = records.ChainEntry(ebl=e.id, seq=e.chain_len, action=action, actor=actor, recipient=recipient,
                               reason_code=None, time_ms=0, tx_hash=bytes(32), prev=e.chain_head,
                               document_checksum=e.id)
    s.put(t.CHAIN, t.chain_key(e.id, entry.seq), entry)
    s.put(t.EBL, e.id, replace(e, chain_len=e.chain_len + 1, chain_head=entry.digest(), **changes))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def world() -> tuple[Net, dict[str, str]]:
    """A straight eBL held by the importer, a pledged one, a surrendered one, a financing, an LC."""
    net = Net()
    ids = {
        "held": net.shipment("INV0001", container="INVU0000001"),
        "pledged": net.shipment("INV0002", container="INVU0000002"),
        "done": net.shipment("INV0003", container="INVU0000003"),
    }
    net.ok("TRANSFER", "sh-exporter", {"ebl": ids["held"], "recipient": "hk-importer"})
    net.ok("PLEDGE", "sh-exporter", {"ebl": ids["pledged"], "pledgee": "bank-sh", "financing": None})
    net.ok("TRANSFER", "sh-exporter", {"ebl": ids["done"], "recipient": "hk-importer"})
    net.ok("SURRENDER_FOR_DELIVERY", "hk-importer", {"ebl": ids["done"], "recipient": "carrier-sh"})
    net.ok("SACC", "carrier-sh", {"ebl": ids["done"]})
    ids["invoice"] = builders.fingerprint({"invoice": 1})
    net.ok("FIN_REQUEST", "sh-exporter", {"fin_id": "FX", "kind": "RECEIVABLES", "lender": "bank-sh",
                                          "currency": "USD", "amount": 100,
                                          "collateral": [{"type": "INVOICE", "fingerprint": ids["invoice"]}]})
    net.ok("LC_ISSUE", "bank-hk", {
        "lc_id": "LCX", "applicant": "hk-importer", "beneficiary": "sh-exporter", "advising_bank": "bank-sh",
        "currency": "USD", "amount": 1000, "expiry_date": "2026-06-01", "latest_shipment_date": "2026-05-01",
        "port_of_loading": "CNSHA", "port_of_discharge": "HKHKG", "goods": "goods", "documents_required": ["BL"],
        "presentation_days": 21, "nominated_bank": None, "confirming_bank": None})
    return net, ids


def corrupt_second_live_record(ledger: Ledger, ids: dict[str, str]) -> None:
    e = ledger.state.get(t.EBL, ids["held"])
    assert e is not None
    twin = "e" * 64
    ledger.state.put(t.EBL, twin, replace(e, id=twin))


def corrupt_possessor(ledger: Ledger, ids: dict[str, str]) -> None:
    e = ledger.state.get(t.EBL, ids["held"])
    ledger.state.put(t.EBL, ids["held"], replace(e, possessor="hk-distributor"))  # type: ignore[type-var]


def corrupt_chain_entry(ledger: Ledger, ids: dict[str, str]) -> None:
    key = t.chain_key(ids["held"], 1)
    entry = ledger.state.get(t.CHAIN, key)
    ledger.state.put(t.CHAIN, key, replace(entry, actor="hk-distributor"))  # type: ignore[type-var]


CASES: dict[str, tuple[Callable[[Ledger, dict[str, str]], None], str]] = {
    "two authoritative records of one reference": (corrupt_second_live_record, "authoritative"),
    "possession changed without a chain entry": (corrupt_possessor, "possessor is"),
    "a chain entry rewritten": (corrupt_chain_entry, "chain head"),
    "possession taken by someone who is not the possessor": (
        lambda L, i: forge(L, i["held"], "TRANSFER", "hk-distributor", "hk-distributor", possessor="hk-distributor"),
        "not by the possessor"),
    "an act after SACC": (
        lambda L, i: forge(L, i["done"], "SIGN", "carrier-sh", None), "after SACC"),
    "surrender to another carrier": (
        lambda L, i: forge(L, i["held"], "SURRENDER_FOR_DELIVERY", "hk-importer", "carrier-hk",
                           status="PENDING_SURRENDER_FOR_DELIVERY", possessor="carrier-sh",
                           surrendered_by="hk-importer"),
        "not the issuing carrier"),
    "a pledged eBL moved without the pledgee": (
        lambda L, i: forge(L, i["pledged"], "TRANSFER", "bank-sh", "hk-importer", possessor="hk-importer"),
        "without the pledgee"),
    "a second live interest on a fingerprint": (
        lambda L, i: L.state.put(t.FIN, "FY", replace(L.state.get(t.FIN, "FX"), fin_id="FY")),  # type: ignore[type-var]
        "2 live interests"),
    "a lien lost": (lambda L, i: L.state.delete(t.LIEN, i["invoice"]), "lien table"),
    "an LC revoked by its bank": (
        lambda L, i: L.state.put(t.LC, "LCX", replace(L.state.get(t.LC, "LCX"),  # type: ignore[type-var]
                                                      terms=replace(L.state.get(t.LC, "LCX").terms, amount=1))),  # type: ignore[union-attr]
        "terms differ"),
    "plaintext mainland personal data": (
        lambda L, i: L.state.put(t.PARTY, "sh-exporter", replace(L.state.get(t.PARTY, "sh-exporter"),  # type: ignore[type-var]
                                                                  name="Wang, ID 11010519491231002X")),
        "personal data"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_corruption_is_reported(world: tuple[Net, dict[str, str]], case: str) -> None:
    """A clean copy passes; after one corruption the checker names the broken invariant."""
    net, ids = world
    ledger = Ledger(net.ledger.genesis)
    ledger.restore(net.ledger.snapshot())  # a private copy
    assert check_invariants(ledger) == []
    corrupt, words = CASES[case]
    corrupt(ledger, ids)
    problems = check_invariants(ledger)
    assert any(words in p for p in problems), problems
