"""Expectations: compare what a run produced with what the scenario says.

Both back-ends hand over the same `Facts` (a ledger at the end of the run,
transaction outcomes by step label, consensus facts), so the same scenario is
judged the same way on the simulator and on live processes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from consortium import crypto
from consortium.errors import RemoteError
from consortium.ledger import queries
from consortium.ledger.ledger import Ledger
from consortium.scenario.schema import Expect

#: the fields that name the record, per kind; every other field is compared
_META = {"consent": {"data_id", "grantee", "purpose"}}


@dataclass(frozen=True, slots=True)
class TxOutcome:
    code: str  # "OK", a ledger reason code, or "PENDING" (never decided)
    height: int  # 0 when refused before any block (mempool) or never decided
    detail: str = ""


@dataclass
class Facts:
    ledger: Ledger
    txs: dict[str, TxOutcome]
    min_height: int
    agreement: bool
    liveness: bool
    evidence: int
    max_round: int
    keys: dict[str, crypto.KeyPair] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the summary table."""

    expectation: str
    expected: str
    observed: str
    met: bool

    def to_dict(self) -> dict[str, Any]:
        return {"expectation": self.expectation, "expected": self.expected, "observed": self.observed,
                "met": self.met}


def evaluate(expects: tuple[Expect, ...], facts: Facts, subst: Callable[[Any], Any]) -> list[Row]:
    rows: list[Row] = []
    for e in expects:
        fields = subst(e.fields)
        handler = _HANDLERS.get(e.what, _record)
        rows.extend(handler(e, fields, facts))
    return rows


def _lookup(record: dict[str, Any] | None, path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _record(e: Expect, fields: dict[str, Any], facts: Facts) -> list[Row]:
    lg = facts.ledger
    ident = fields.get("id", "")
    query: dict[str, Callable[[], dict[str, Any] | None]] = {
        "ebl": lambda: queries.ebl(lg, ident),
        "ebl_ref": lambda: queries.ebl_by_reference(lg, *ident.split("/", 1)) if "/" in ident else None,
        "lc": lambda: queries.lc(lg, ident),
        "financing": lambda: queries.financing(lg, ident),
        "party": lambda: queries.party(lg, ident),
        "data": lambda: queries.data(lg, ident),
        "collateral": lambda: queries.collateral(lg, ident),
        "consent": lambda: queries.consent(lg, fields["data_id"], fields["grantee"], fields["purpose"]),
        "account": lambda: queries.account(lg, *ident.split("/", 2)) if ident.count("/") == 2 else None,
        "dvp": lambda: queries.dvp(lg, ident),
    }
    record = query[e.what]()
    # named with variables resolved (`fields` is substituted): the user sees the id `${bl}` held
    ident_shown = fields.get("id") or "/".join(str(fields.get(k, "")) for k in ("data_id", "grantee", "purpose"))
    name = f"{e.what} {ident_shown}".strip()
    rows = []
    for key, want in fields.items():
        if key in _META.get(e.what, {"id"}):
            continue
        got = None if record is None else _lookup(record, key)
        if want == "absent":
            rows.append(Row(f"{name} {key}", "absent", _show(got), got is None))
        else:
            rows.append(Row(f"{name} {key}", _show(want), "no such record" if record is None else _show(got),
                            record is not None and _same(got, want)))
    return rows


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, list) and isinstance(got, (list, tuple)):
        return sorted(map(str, got)) == sorted(map(str, want))
    return got == want or str(got) == str(want)


def _show(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(map(str, v)) + "]"
    return "none" if v is None else str(v)


def _tx(e: Expect, fields: dict[str, Any], facts: Facts) -> list[Row]:
    out = facts.txs.get(fields["step"])
    got = out.code if out else "not submitted"
    detail = f" ({out.detail})" if out and out.detail and out.code != "OK" else ""
    rows = [Row(f"tx {fields['step']}", fields["code"], got + detail, got == fields["code"])]
    if "height_min" in fields:
        h = out.height if out else 0
        rows.append(Row(f"tx {fields['step']} height", f">= {fields['height_min']}", str(h),
                        h >= fields["height_min"]))
    return rows


def _consensus(e: Expect, fields: dict[str, Any], facts: Facts) -> list[Row]:
    rows = []
    if "min_height" in fields:
        rows.append(Row("consensus height", f">= {fields['min_height']}", str(facts.min_height),
                        facts.min_height >= fields["min_height"]))
    if "agreement" in fields:
        rows.append(Row("consensus agreement", str(fields["agreement"]).lower(), str(facts.agreement).lower(),
                        facts.agreement == fields["agreement"]))
    if "liveness" in fields:
        rows.append(Row("consensus liveness after heal", str(fields["liveness"]).lower(),
                        str(facts.liveness).lower(), facts.liveness == fields["liveness"]))
    if "evidence_min" in fields:
        rows.append(Row("evidence committed", f">= {fields['evidence_min']}", str(facts.evidence),
                        facts.evidence >= fields["evidence_min"]))
    if "max_round_max" in fields:
        rows.append(Row("highest deciding round", f"<= {fields['max_round_max']}", str(facts.max_round),
                        facts.max_round <= fields["max_round_max"]))
    return rows


def _share(e: Expect, fields: dict[str, Any], facts: Facts) -> list[Row]:
    """Try to open every sealed copy of the share with each named member's key."""
    share_id = fields["id"]
    sealed: list[bytes] = []
    for who in set(facts.keys):
        for item in queries.readable_by(facts.ledger, who):
            if item["share_id"] == share_id:
                sealed.append(bytes.fromhex(item["sealed"]))
    rows = []
    for who in fields.get("readable_by", []):
        ok = who in facts.keys and any(_opens(facts.keys[who], s) for s in sealed)
        rows.append(Row(f"share {share_id} readable by {who}", "yes", "yes" if ok else "no", ok))
    for who in fields.get("not_readable_by", []):
        ok = who in facts.keys and any(_opens(facts.keys[who], s) for s in sealed)
        rows.append(Row(f"share {share_id} readable by {who}", "no", "yes" if ok else "no", not ok))
    return rows


def _opens(kp: crypto.KeyPair, sealed: bytes) -> bool:
    try:
        crypto.unseal(kp, sealed)
    except RemoteError:
        return False
    return True


_HANDLERS: dict[str, Callable[[Expect, dict[str, Any], Facts], list[Row]]] = {
    "tx": _tx, "consensus": _consensus, "share": _share,
}
