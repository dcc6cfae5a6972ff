"""Read-only queries: plain JSON-able dicts (bytes as hex, no floats), for the CLI and tests.

Every function takes anything with a `.state` (a Ledger) and never changes it.
"""

from __future__ import annotations

from typing import Any, Protocol

from consortium.ledger import records as r
from consortium.ledger import state as t
from consortium.ledger.banking import local_date
from consortium.ledger.rules.credit import available_with, undertakings
from consortium.ledger.rules.data import consent_key
from consortium.ledger.rules.finance import controls
from consortium.ledger.state import State


class HasState(Protocol):
    state: State


def jsonable(value: Any) -> Any:
    """Bytes become hex; records and tuples become maps and lists."""
    if isinstance(value, r.Record):
        return jsonable(r.to_value(value))
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def _today(ledger: HasState) -> str:
    meta = ledger.state.get(t.META, "chain")
    assert meta is not None
    return local_date(meta.time_ms).isoformat()


# ------------------------------------------------------------------ eBL


def ebl(ledger: HasState, ebl_id: str, *, with_document: bool = False) -> dict[str, Any] | None:
    """Status, possessor, title holder, pledgee and the transfer chain of an eBL."""
    s = ledger.state
    e = s.get(t.EBL, ebl_id)
    if e is None:
        return None
    out: dict[str, Any] = jsonable(e)
    out["title_holder"] = e.title_holder()
    out["switched_to_paper"] = e.paper
    out["chain"] = [_entry(x) for x in (s.get(t.CHAIN, t.chain_key(e.id, i)) for i in range(e.chain_len))
                    if x is not None]
    if with_document:
        doc = s.get(t.DOC, e.id)
        out["document"] = doc.text if doc is not None else None
    return out


def _entry(x: r.ChainEntry) -> dict[str, Any]:
    out: dict[str, Any] = jsonable(x)
    out["digest"] = x.digest().hex()
    return out


def ebl_by_reference(ledger: HasState, carrier: str, reference: str) -> dict[str, Any] | None:
    """The authoritative eBL of (carrier, reference), with the ids it superseded."""
    index = ledger.state.get(t.REF, f"{carrier}/{reference}")
    if index is None:
        return None
    out = ebl(ledger, index.current)
    assert out is not None
    out["history"] = list(index.history)
    return out


def ebls(ledger: HasState, *, party: str | None = None) -> list[dict[str, Any]]:
    """A summary per eBL (optionally those a party possesses or holds title to)."""
    rows = []
    for _, e in ledger.state.rows(t.EBL):
        if party is None or party in (e.possessor, e.title_holder(), e.pledgee):
            rows.append({"id": e.id, "carrier": e.carrier, "reference": e.reference, "status": e.status,
                         "possessor": e.possessor, "title_holder": e.title_holder(), "pledgee": e.pledgee})
    return rows


# ------------------------------------------------------------------ LC and financing


def lc(ledger: HasState, lc_id: str) -> dict[str, Any] | None:
    """An LC with its presentations; `refusal_precluded` is judged at the last block's date."""
    s = ledger.state
    found = s.get(t.LC, lc_id)
    if found is None:
        return None
    out: dict[str, Any] = jsonable(found)
    today = _today(ledger)
    pres = []
    for pid in found.presentations:
        p = s.get(t.PRES, f"{lc_id}/{pid}")
        if p is not None:
            item: dict[str, Any] = jsonable(p)
            item["refusal_precluded"] = p.status == "PRESENTED" and today > p.deadline
            pres.append(item)
    out["presentation_records"] = pres
    out["available_with"] = list(available_with(found))  # banks the beneficiary may present to
    out["undertakings"] = list(undertakings(found))  # banks bound to honour (art. 7, 8)
    return out


def financing(ledger: HasState, fin_id: str) -> dict[str, Any] | None:
    s = ledger.state
    fin = s.get(t.FIN, fin_id)
    if fin is None:
        return None
    out: dict[str, Any] = jsonable(fin)
    out["liens"] = [jsonable(lien) for c in fin.collateral if (lien := s.get(t.LIEN, c.fingerprint)) is not None]
    ebls = [e for c in fin.collateral if c.type == "EBL" and (e := s.get(t.EBL, c.fingerprint)) is not None]
    out["ebls_under_control"] = [e.id for e in ebls if controls(e, fin)]  # the eBLs the lender controls
    return out


def calendar(ledger: HasState, jurisdiction: str) -> dict[str, Any] | None:
    """The banking calendar the genesis pinned for `jurisdiction` (HK or CN-SH)."""
    found = ledger.state.get(t.CAL, jurisdiction)
    return None if found is None else jsonable(found)


def collateral(ledger: HasState, fingerprint: str) -> dict[str, Any] | None:
    """Which live financing or pledge a fingerprint backs, if any."""
    lien = ledger.state.get(t.LIEN, fingerprint)
    return None if lien is None else jsonable(lien)


# ------------------------------------------------------------------ parties, data, consent


def party(ledger: HasState, party_id: str) -> dict[str, Any] | None:
    found = ledger.state.get(t.PARTY, party_id)
    return None if found is None else jsonable(found)


def parties(ledger: HasState) -> list[dict[str, Any]]:
    return [jsonable(p) for _, p in ledger.state.rows(t.PARTY)]


def data(ledger: HasState, data_id: str) -> dict[str, Any] | None:
    """An attestation (salted hash + metadata) and its consents."""
    s = ledger.state
    att = s.get(t.DATA, data_id)
    if att is None:
        return None
    out: dict[str, Any] = jsonable(att)
    out["consents"] = [jsonable(c) for k, c in s.rows(t.CONSENT) if k.startswith(f"{data_id}/")]
    return out


def consent(ledger: HasState, data_id: str, grantee: str, purpose: str) -> dict[str, Any] | None:
    found = ledger.state.get(t.CONSENT, consent_key(data_id, grantee, purpose))
    return None if found is None else jsonable(found)


def readable_by(ledger: HasState, reader: str) -> list[dict[str, Any]]:
    """Sealed payloads `reader` can open: shares addressed to it, and for HKMA (the
    regulator) the copies sealed to it of shares to Hong Kong banks."""
    s = ledger.state
    me = s.get(t.PARTY, reader)
    regulator = me is not None and me.role == "regulator"
    out = []
    for share_id, share in s.rows(t.SHARE):
        if share.status != "ACTIVE":
            continue
        sealed = share.sealed if share.recipient == reader else (share.regulator_sealed if regulator else None)
        if sealed is not None:
            out.append({"share_id": share_id, "data_id": share.data_id, "owner": share.owner,
                        "purpose": share.purpose, "recipient": share.recipient, "sealed": sealed.hex()})
    return out


# ------------------------------------------------------------------ the chain


def nonce(ledger: HasState, actor: str) -> int:
    """A nonce `actor` has not used yet (one above the highest spent)."""
    w = ledger.state.get(t.NONCE, actor)
    if w is None:
        return 0
    return (w.used[-1] if w.used else w.floor) + 1


def summary(ledger: HasState) -> dict[str, Any]:
    s = ledger.state
    meta = s.get(t.META, "chain")
    assert meta is not None
    return {"height": meta.height, "time_ms": meta.time_ms, "date": local_date(meta.time_ms).isoformat(),
            "records": {table.name: s.count(table) for table in t.TABLES}}


# ------------------------------------------------------------------ tokenised deposits


def account(ledger: HasState, bank: str, currency: str, holder: str) -> dict[str, Any]:
    """`holder`'s balance of `bank`'s deposit tokens in `currency` (0 without an account)."""
    found = ledger.state.get(t.ACCOUNT, f"{bank}/{currency}/{holder}")
    return {"bank": bank, "currency": currency, "holder": holder, "balance": found.balance if found else 0}


def balances(ledger: HasState, holder: str) -> list[dict[str, Any]]:
    """Every non-empty account of `holder` (tokens of each bank, per currency)."""
    return [jsonable(a) for _, a in ledger.state.rows(t.ACCOUNT) if a.holder == holder]


def dvp(ledger: HasState, dvp_id: str) -> dict[str, Any] | None:
    found = ledger.state.get(t.DVP, dvp_id)
    return None if found is None else jsonable(found)


def cross_border(ledger: HasState) -> dict[str, Any]:
    """HKMA's view of cross-border flows: payments between parties of Hong Kong and the
    mainland per direction and currency (count, total), the interbank positions between
    banks of different jurisdictions (the exposure still to settle), and each bank's
    token liabilities per currency."""
    s = ledger.state

    def where(ident: str) -> str:
        p = s.get(t.PARTY, ident)
        return p.jurisdiction if p is not None else "?"

    positions = [{**jsonable(p), "debtor_jurisdiction": where(p.debtor), "creditor_jurisdiction": where(p.creditor)}
                 for _, p in s.rows(t.POSITION) if where(p.debtor) != where(p.creditor)]
    return {
        "flows": [jsonable(f) for _, f in s.rows(t.FLOW)],
        "positions": positions,
        "liabilities": [{**jsonable(x), "jurisdiction": where(x.bank)} for _, x in s.rows(t.LIAB)],
    }
