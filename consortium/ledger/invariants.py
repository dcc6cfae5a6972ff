"""The ledger's invariants, checked from the state alone (after every block in
tests and in the simulator). `check_invariants(ledger)` returns one sentence per
violation, an empty list when all hold.

1. One authoritative record per (carrier, reference): at most one eBL of a
   (carrier, reference) is not VOIDED, and the reference index names it.
2. Exactly one possessor: every eBL has one possessor, a registered party; a
   surrendered or pending eBL is possessed by its issuing carrier.
3. Possession changes only by the possessor's signed act, or the carrier's SREJ.
4. Surrender only to the issuing carrier, and nothing after SACC.
5. A collateral fingerprint backs at most one live financing or pledge, and the
   lien table says exactly that. 5b: no requested financing lists an eBL that left
   the ledger (surrender for amendment, switch to paper) by anyone but the lender.
6. A pledged eBL moves only with the pledgee.
7. An issued LC is irrevocable: its terms are the issued terms changed only by
   amendments the beneficiary accepted, in order. 7b: a presentation is examined by
   a bank the credit is available with (issuing, nominated, confirming once
   confirmed); reimbursement is owed exactly to a nominated/confirming bank that
   honoured.
8. No plaintext mainland personal data anywhere in the state.
9. The transfer chain of every eBL verifies end to end: entries numbered from
   an ISSUE by the carrier, each linked to the previous entry's digest, the head
   matching the record, the document matching its checksum.
10. Tokenised deposits: no negative balance; each bank's token supply per currency
   (the sum of its holders' balances) equals its recorded liabilities; interbank
   positions are between two banks, net and positive.
11. No payment claimed against an obligation without a matching obligation: what was
   paid against an LC honour or a loan binds its parties and currency and is at most due.

Invariants 2, 3, 4, 6 and 9 are checked by replaying each eBL's chain with an
implementation independent of the rules (rules/ebl.py): the replayed
possessor, endorsement, pledge and status must equal the record's. Per-record
results are cached by the records' content digests (ledger.invariant_cache), so
a block costs what it changed plus one pass over small indexes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from consortium import crypto, limits
from consortium.ledger import records as r
from consortium.ledger import state as t
from consortium.ledger.privacy import DEFAULT_POLICY, Policy, document_party_findings, value_finding
from consortium.ledger.rules.credit import apply_amendment
from consortium.ledger.rules.settlement import TOKEN_CURRENCIES, account_key, position_key
from consortium.ledger.state import State


class HasState(Protocol):
    state: State
    invariant_cache: dict[bytes, bool]
    invariant_warm: bool

    def state_root(self) -> bytes: ...


def check_invariants(ledger: HasState) -> list[str]:
    """Every violation, one sentence each (sorted); [] when all invariants hold.

    After a clean check, the next one looks only at what changed since (the state
    tracks written keys) plus the cheap global passes; after a violation, a restore,
    or when the change log overflowed, it checks everything again."""
    ledger.state_root()  # flush: record digests are current
    s = ledger.state
    cache = ledger.invariant_cache
    if len(cache) > limits.invariant_cache_entries_max:
        cache.clear()
    touched = s.drain_touched()
    genesis = getattr(ledger, "genesis", None)  # the privacy policy is the genesis' (invariant 8)
    privacy: Policy = genesis.privacy if genesis is not None else DEFAULT_POLICY
    if touched is None or not ledger.invariant_warm:
        out = _everything(s, cache, privacy)
    else:
        out = _changed(s, cache, touched, privacy)
    ledger.invariant_warm = not out
    return sorted(out)  # records were visited in no particular order


def _everything(s: State, cache: dict[bytes, bool], privacy: Policy) -> list[str]:
    out: list[str] = []
    out += _references(s)
    for _, e in s.items(t.EBL):
        out += _cached(cache, _ebl_key(s, e), partial(_ebl_problems, s, e))
    out += _collateral(s)
    for _, lc in s.items(t.LC):
        out += _lc_problems(s, lc)
    out += _privacy(s, cache, [full for full, _ in s.digests()], privacy)
    out += _shares(s, [k for k, _ in s.items(t.SHARE)])
    out += _settlement(s)
    return out


def _changed(s: State, cache: dict[bytes, bool], touched: set[str], privacy: Policy) -> list[str]:
    by_table: dict[str, set[str]] = {}
    for full in touched:
        name, _, key = full.partition("/")
        by_table.setdefault(name, set()).add(key)
    ebl_ids = by_table.get("ebl", set()) | by_table.get("doc", set())
    ebl_ids |= {k.partition("/")[0] for k in by_table.get("chain", ())}
    ebls = [e for i in sorted(ebl_ids) if (e := s.get(t.EBL, i)) is not None]
    out: list[str] = []
    groups = {(e.carrier, e.reference) for e in ebls}
    groups |= {(k.partition("/")[0], k.partition("/")[2]) for k in by_table.get("ref", ())}
    for carrier, ref in sorted(groups):
        members = _group(s, carrier, ref)
        out += _reference_group(s, carrier, ref, members + [e for e in ebls if (e.carrier, e.reference) ==
                                                              (carrier, ref) and e not in members])
    for e in ebls:
        out += _cached(cache, _ebl_key(s, e), partial(_ebl_problems, s, e))
    out += _collateral(s)
    lc_ids = by_table.get("lc", set()) | {k.partition("/")[0] for k in by_table.get("pres", ())}
    out += [p for i in sorted(lc_ids) if (lc := s.get(t.LC, i)) is not None for p in _lc_problems(s, lc)]
    out += _privacy(s, cache, [f for f in touched if s.record(f) is not None], privacy)
    shares = set(by_table.get("share", ()))
    for k in by_table.get("consent", ()):
        consent = s.get(t.CONSENT, k)
        shares |= set(consent.shares) if consent is not None else set()
    out += _shares(s, sorted(shares))
    if _SETTLEMENT_TABLES & by_table.keys():
        out += _settlement(s)
    return out


def _cached(cache: dict[bytes, bool], key: bytes, check: Callable[[], list[str]]) -> list[str]:
    """Run a per-record check unless the same content already passed."""
    if cache.get(key):
        return []
    problems = check()
    if not problems:
        cache[key] = True
    return problems


# ------------------------------------------------------------------ 1. references


def _references(s: State) -> list[str]:
    groups: dict[tuple[str, str], list[r.Ebl]] = {}
    for _, e in s.items(t.EBL):
        groups.setdefault((e.carrier, e.reference), []).append(e)
    out: list[str] = []
    for (carrier, ref), ebls in groups.items():
        out += _reference_group(s, carrier, ref, ebls)
    return out


def _group(s: State, carrier: str, ref: str) -> list[r.Ebl]:
    """The eBLs the reference index lists (for an incremental check)."""
    index = s.get(t.REF, f"{carrier}/{ref}")
    return [e for i in (index.history if index else ()) if (e := s.get(t.EBL, i)) is not None]


def _reference_group(s: State, carrier: str, ref: str, ebls: list[r.Ebl]) -> list[str]:
    out: list[str] = []
    live = [e.id for e in ebls if e.status != "VOIDED"]
    if len(live) > 1:
        out.append(f"({carrier}, {ref}) has {len(live)} authoritative eBLs {sorted(x[:12] for x in live)}")
    index = s.get(t.REF, f"{carrier}/{ref}")
    if index is None or set(index.history) != {e.id for e in ebls} or any(
            (e.carrier, e.reference) != (carrier, ref) for e in ebls):
        out.append(f"reference index of ({carrier}, {ref}) does not list its eBLs")
    elif live and index.current != live[0]:
        out.append(f"reference index of ({carrier}, {ref}) points at {index.current[:12]}, not {live[0][:12]}")
    return out


# ------------------------------------------------------------------ 2-4, 6, 9. chain replay


@dataclass(slots=True)
class _Replay:
    possessor: str
    status: str
    endorsee: str | None
    blank: bool
    endorsable: bool
    pledgee: str | None = None
    pledgor: str | None = None
    trust_receipt: bool = False
    surrendered_by: str | None = None


def _ebl_key(s: State, e: r.Ebl) -> bytes:
    parts = [b"ebl", s.digest_of(t.EBL, e.id) or b"", s.digest_of(t.DOC, e.id) or b""]
    parts += [s.digest_of(t.CHAIN, t.chain_key(e.id, i)) or b"" for i in range(e.chain_len + 1)]
    return crypto.digest(b"".join(parts))


def _ebl_problems(s: State, e: r.Ebl) -> list[str]:
    name = f"eBL {e.id[:12]}"
    out: list[str] = []
    doc = s.get(t.DOC, e.id)
    if doc is None or hashlib.sha256(doc.text.encode()).hexdigest() != e.id:
        out.append(f"{name}: the document does not match its checksum")
    entries = [s.get(t.CHAIN, t.chain_key(e.id, i)) for i in range(e.chain_len)]
    if any(x is None for x in entries) or s.get(t.CHAIN, t.chain_key(e.id, e.chain_len)) is not None:
        return out + [f"{name}: chain has gaps or entries beyond chain_len {e.chain_len}"]
    chain = [x for x in entries if x is not None]
    out += _links(e, chain)
    if out:
        return out
    replay, problems = _replay(e, chain)
    out += [f"{name}: {p}" for p in problems]
    if replay is not None:
        out += [f"{name}: {p}" for p in _compare(s, e, replay)]
    return out


def _links(e: r.Ebl, chain: list[r.ChainEntry]) -> list[str]:
    out: list[str] = []
    prev = r.ZERO_HASH
    for i, x in enumerate(chain):
        if x.seq != i or x.ebl != e.id or x.document_checksum != e.id or x.prev != prev:
            out.append(f"eBL {e.id[:12]}: chain entry {i} does not link to entry {i - 1}")
        prev = x.digest()
    if prev != e.chain_head:
        out.append(f"eBL {e.id[:12]}: chain head does not match the last entry")
    return out


def _replay(e: r.Ebl, chain: list[r.ChainEntry]) -> tuple[_Replay | None, list[str]]:
    first = chain[0]
    if first.action != "ISSUE" or first.actor != e.carrier or first.recipient is None:
        return None, ["chain does not start with an ISSUE by the issuing carrier"]
    st = _Replay(possessor=first.recipient, status="ISSUED", endorsee=e.issued_endorsee,
                 blank=e.is_to_order and e.issued_endorsee is None, endorsable=True)
    out: list[str] = []
    for i, x in enumerate(chain[1:], start=1):
        problem = _allowed(e, st, x)
        if problem is not None:
            out.append(f"entry {i} {x.action} by {x.actor}: {problem}")
        _effect(e, st, x)
    return st, out


def _allowed(e: r.Ebl, st: _Replay, x: r.ChainEntry) -> str | None:
    """Why entry `x` may not follow the replayed state `st` (None: it may)."""
    if st.status.startswith("SURRENDERED"):
        return "an act after SACC"
    if x.action in ("SACC", "SREJ"):
        ok = x.actor == e.carrier and st.status.startswith("PENDING")
        return None if ok else "only the issuing carrier answers a pending surrender"
    if st.status != "ISSUED":
        return f"an act while {st.status}"
    pledge_ok = st.pledgee is None or (x.actor == st.pledgee and x.action in (
        "SIGN", "TRUST_RECEIPT", "RELEASE", "SURRENDER_FOR_DELIVERY")) or (
        st.trust_receipt and x.actor == st.pledgor and x.action in ("SIGN", "SURRENDER_FOR_DELIVERY"))
    if not pledge_ok:
        return f"a pledged eBL moved without the pledgee {st.pledgee}"
    holder = x.actor if x.action == "RELEASE" and st.trust_receipt else st.possessor
    if x.actor != holder:
        return f"not by the possessor {st.possessor}"
    return _allowed_kind(e, st, x)


def _allowed_kind(e: r.Ebl, st: _Replay, x: r.ChainEntry) -> str | None:
    title = (st.possessor if st.blank else st.endorsee) if e.is_to_order else e.consignee
    if x.action.startswith("SURRENDER") and x.recipient != e.carrier:
        return f"surrendered to {x.recipient}, not the issuing carrier {e.carrier}"
    if x.action == "SURRENDER_FOR_DELIVERY" and x.actor != title:
        return f"delivery claimed by {x.actor}, not the holder {title}"
    if x.action in ("ENDORSE", "ENDORSE_TO_ORDER", "BLANK_ENDORSE") and not (
            e.is_to_order and st.endorsable and x.actor == title):
        return "endorsed by someone who is not an endorsing holder of a to-order bill"
    if x.action in ("TRANSFER", "PLEDGE", "TRUST_RECEIPT") and (x.recipient is None or x.recipient == x.actor):
        return "moves possession to nobody"
    if x.action not in _EFFECTS:
        return "unknown action"
    return None


def _effect(e: r.Ebl, st: _Replay, x: r.ChainEntry) -> None:
    _EFFECTS.get(x.action, _nothing)(e, st, x)


def _nothing(e: r.Ebl, st: _Replay, x: r.ChainEntry) -> None:
    return None


def _to_recipient(e: r.Ebl, st: _Replay, x: r.ChainEntry) -> None:
    st.possessor = x.recipient or st.possessor


def _endorsed(e: r.Ebl, st: _Replay, x: r.ChainEntry) -> None:
    st.endorsee, st.blank, st.endorsable = x.recipient, x.recipient is None, x.action != "ENDORSE"


def _surrender(e: r.Ebl, st: _Replay, x: r.ChainEntry) -> None:
    st.possessor, st.surrendered_by = e.carrier, x.actor
    st.status = "PENDING_" + x.action


def _sacc(e: r.Ebl, st: _Replay, x: r.ChainEntry) -> None:
    st.status = st.status.replace("PENDING_SURRENDER", "SURRENDERED")
    st.pledgee = st.pledgor = None
    st.trust_receipt = False


def _srej(e: r.Ebl, st: _Replay, x: r.ChainEntry) -> None:
    st.possessor, st.status, st.surrendered_by = st.surrendered_by or st.possessor, "ISSUED", None


def _pledge(e: r.Ebl, st: _Replay, x: r.ChainEntry) -> None:
    st.pledgor, st.pledgee, st.possessor, st.trust_receipt = x.actor, x.recipient, x.recipient or "", False


def _trust_receipt(e: r.Ebl, st: _Replay, x: r.ChainEntry) -> None:
    st.possessor, st.trust_receipt = st.pledgor or st.possessor, True


def _release(e: r.Ebl, st: _Replay, x: r.ChainEntry) -> None:
    st.possessor = st.pledgor or st.possessor
    st.pledgee = st.pledgor = None
    st.trust_receipt = False


_EFFECTS = {
    "TRANSFER": _to_recipient, "ENDORSE": _endorsed, "ENDORSE_TO_ORDER": _endorsed, "BLANK_ENDORSE": _endorsed,
    "SIGN": _nothing, "SURRENDER_FOR_DELIVERY": _surrender, "SURRENDER_FOR_AMENDMENT": _surrender,
    "SACC": _sacc, "SREJ": _srej, "PLEDGE": _pledge, "TRUST_RECEIPT": _trust_receipt, "RELEASE": _release,
}


def _compare(s: State, e: r.Ebl, st: _Replay) -> list[str]:
    out: list[str] = []
    status_ok = e.status == st.status or (e.status == "VOIDED" and st.status == "SURRENDERED_FOR_AMENDMENT")
    if not status_ok:
        out.append(f"status {e.status} but the chain says {st.status}")
    fields = (("possessor", e.possessor, st.possessor), ("endorsee", e.endorsee, st.endorsee),
              ("blank", e.blank, st.blank), ("endorsable", e.endorsable, st.endorsable),
              ("pledgee", e.pledgee, st.pledgee), ("pledgor", e.pledgor, st.pledgor),
              ("trust_receipt", e.trust_receipt, st.trust_receipt))
    out += [f"{n} is {a!r} but the chain says {b!r}" for n, a, b in fields if a != b]
    if s.get(t.PARTY, e.possessor) is None:
        out.append(f"possessor {e.possessor} is not a registered party")
    if e.status != "ISSUED" and e.possessor != e.carrier:
        out.append(f"{e.status} but possessed by {e.possessor}, not the carrier")
    return out


# ------------------------------------------------------------------ 5. collateral


def _collateral(s: State) -> list[str]:
    claims: dict[str, set[str]] = {}
    live = {k: f for k, f in s.items(t.FIN) if f.live}
    for fin_id, fin in live.items():
        for c in fin.collateral:
            claims.setdefault(c.fingerprint, set()).add(f"financing {fin_id}")
    for _, e in s.items(t.EBL):
        if e.pledgee is None:
            continue
        under = live.get(e.pledge_financing or "")
        joined = under is not None and any(c.fingerprint == e.id for c in under.collateral)
        claim = f"financing {e.pledge_financing}" if joined else f"pledge of {e.id[:12]}"
        claims.setdefault(e.id, set()).add(claim)
    out = [f"fingerprint {fp[:12]} backs {len(cs)} live interests: {sorted(cs)}"
           for fp, cs in claims.items() if len(cs) > 1]
    liens = dict(s.items(t.LIEN))
    for fp in sorted(set(claims) ^ set(liens)):
        out.append(f"fingerprint {fp[:12]}: lien table and live interests disagree")
    return out + _under_control(s, live)


_AMENDMENT_STATES = ("PENDING_SURRENDER_FOR_AMENDMENT", "SURRENDERED_FOR_AMENDMENT", "VOIDED")


def _under_control(s: State, live: dict[str, r.Financing]) -> list[str]:
    """5b. Collateral under control: no requested financing lists an eBL that left the
    ledger (surrendered for amendment, switched to paper) by anyone's act but the lender's."""
    out = []
    for fin_id, fin in live.items():
        if fin.status != "REQUESTED":
            continue  # approved under control: only the lender's own act gave it up
        for c in fin.collateral:
            e = s.get(t.EBL, c.fingerprint) if c.type == "EBL" else None
            if e is not None and e.status in _AMENDMENT_STATES and e.surrendered_by != fin.lender:
                out.append(f"financing {fin_id} is {fin.status} against eBL {e.id[:12]}, which "
                           f"{e.surrendered_by} surrendered for amendment ({e.status}{', paper' if e.paper else ''})")
    return out


# ------------------------------------------------------------------ 7. letters of credit


def _lc_problems(s: State, lc: r.Lc) -> list[str]:
    terms = lc.original
    for i, am in enumerate(lc.amendments, start=1):
        if am.seq != i:
            return [f"LC {lc.lc_id}: amendments are not numbered 1..n"]
        if am.status == "ACCEPTED":
            terms = apply_amendment(terms, am)
    out: list[str] = []
    if terms != lc.terms:
        out.append(f"LC {lc.lc_id}: terms differ from the issued terms and accepted amendments (revoked?)")
    pres = [s.get(t.PRES, f"{lc.lc_id}/{p}") for p in lc.presentations]
    honoured = [p for p in pres if p is not None and p.status == "HONOURED"]
    if None in pres or (lc.status == "UTILIZED") != bool(honoured) or len(honoured) > 1:
        out.append(f"LC {lc.lc_id}: status {lc.status} does not match its presentations")
    return out + _roles(lc, [p for p in pres if p is not None])


def _roles(lc: r.Lc, pres: list[r.Presentation]) -> list[str]:
    """7b. UCP 600 roles: a presentation is examined by the issuing bank, the nominated
    bank, or the confirming bank once it confirmed; reimbursement is owed exactly to a
    nominated/confirming bank that honoured (art. 7(c), 8(c))."""
    banks = {lc.issuing_bank, lc.nominated_bank} | ({lc.confirming_bank} if lc.confirmed else set())
    out = []
    for p in pres:
        if p.bank not in banks:
            out.append(f"LC {lc.lc_id}/{p.presentation_id}: examined by {p.bank}, with whom it is not available")
        owed = p.status == "HONOURED" and p.bank != lc.issuing_bank
        if (p.reimbursement is not None) != owed:
            out.append(f"LC {lc.lc_id}/{p.presentation_id}: reimbursement {p.reimbursement} but "
                       f"{'honoured by ' + p.bank if p.status == 'HONOURED' else p.status}")
    return out


# ------------------------------------------------------------------ 8. privacy, shares


def _privacy(s: State, cache: dict[bytes, bool], keys: list[str], privacy: Policy) -> list[str]:
    """The records under `keys`, each scanned once per content (cache keyed by digest)."""
    out: list[str] = []
    for full in keys:
        name, _, key = full.partition("/")
        digest = s.digest_of(t.BY_NAME[name], key) or b""
        if not cache.get(b"pii" + digest):
            out += _cached(cache, b"pii" + digest, partial(_pii, s, full, privacy))
    return out


def _pii(s: State, full: str, privacy: Policy) -> list[str]:
    rec = s.record(full)
    assert rec is not None
    found = value_finding(r.to_value(rec), full, privacy)
    if found is not None:
        return [f"plaintext mainland personal data: {found}"]
    if isinstance(rec, r.Doc):
        parties = json.loads(rec.text).get("documentParties")
        return [f"plaintext mainland personal data: {full[:16]} {f}" for f in document_party_findings(parties, privacy)]
    return []


def _shares(s: State, share_ids: list[str]) -> list[str]:
    out: list[str] = []
    for share_id in share_ids:
        share = s.get(t.SHARE, share_id)
        if share is None or share.status != "ACTIVE":
            continue
        consent = s.get(t.CONSENT, f"{share.data_id}/{share.recipient}/{share.purpose}")
        if consent is None or consent.status != "GRANTED":
            out.append(f"share {share_id} is readable although consent is {consent and consent.status}")
    return out


# ------------------------------------------------------------------ 10, 11. tokenised deposits

#: Tables whose change re-runs the settlement pass (one pass over accounts and settlements).
_SETTLEMENT_TABLES = frozenset({"acct", "liab", "ibpos", "settled", "fin", "pres", "lc", "party"})


def _settlement(s: State) -> list[str]:
    out: list[str] = []
    supply: dict[tuple[str, str], int] = {}
    for key, a in s.items(t.ACCOUNT):
        bank = s.get(t.PARTY, a.bank)
        if a.balance < 0:
            out.append(f"account {key}: negative balance {a.balance}")
        if (key != account_key(a.bank, a.currency, a.holder) or a.holder == a.bank or bank is None
                or bank.role != "bank" or s.get(t.PARTY, a.holder) is None or a.currency not in TOKEN_CURRENCIES):
            out.append(f"account {key}: not a registered holder's {a.currency} tokens of a bank")
        supply[(a.bank, a.currency)] = supply.get((a.bank, a.currency), 0) + a.balance
    liabilities = {(x.bank, x.currency): x.amount for _, x in s.items(t.LIAB)}
    for bank_id, currency in sorted(set(supply) | set(liabilities)):
        have, owe = supply.get((bank_id, currency), 0), liabilities.get((bank_id, currency), 0)
        if have != owe:
            out.append(f"{bank_id}'s {currency} token supply {have} differs from its recorded liabilities {owe}")
    for key, p in s.items(t.POSITION):
        banks = [s.get(t.PARTY, x) for x in (p.debtor, p.creditor)]
        if (p.amount <= 0 or p.debtor == p.creditor or key != position_key(p.currency, p.debtor, p.creditor)
                or any(x is None or x.role != "bank" for x in banks)):
            out.append(f"interbank position {key}: not a positive net position between two banks")
    for key, x in s.items(t.SETTLED):
        problem = _obligation_problem(s, x) if key == f"{x.obligation}/{x.ref}" and x.paid > 0 else "bad record"
        if problem is not None:
            out.append(f"payment against {x.obligation} {x.ref} without a matching obligation: {problem}")
    return out


def _obligation_problem(s: State, x: r.Settled) -> str | None:
    """Why what was paid against `x` matches no obligation (None: it matches)."""
    if x.obligation == "LC_HONOUR":
        lc = s.get(t.LC, x.ref.partition("/")[0])
        pres = s.get(t.PRES, x.ref)
        if lc is None or pres is None or pres.status != "HONOURED":
            return "no honoured presentation"
        parties, due = (pres.bank, pres.presenter, lc.terms.currency), min(pres.invoice_amount, lc.terms.amount)
    else:
        fin = s.get(t.FIN, x.ref)
        if fin is None or fin.status not in ("LIVE", "REPAID"):
            return "no approved financing"
        if x.obligation == "LOAN_DISBURSE":
            parties, due = (fin.lender, fin.borrower, fin.currency), fin.amount
        else:
            parties, due = (fin.borrower, fin.lender, fin.currency), fin.amount - fin.outstanding
    if (x.payer, x.payee, x.currency) != parties:
        return f"paid by {x.payer} to {x.payee} in {x.currency}, owed {parties}"
    if x.paid > due:
        return f"{x.paid} paid, {due} due"
    return None
