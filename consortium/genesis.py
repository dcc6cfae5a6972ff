"""The genesis: chain id, members with public keys and power, parties, consensus
parameters. Pure data with a strict reader; files are handled by `home`.

Its digest (SHA-256 of the canonical msgpack form) identifies the chain
configuration: two nodes with different genesis digests must not talk."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from consortium import calendars, codec, crypto, limits
from consortium.errors import UserError
from consortium.types import (
    Jurisdiction,
    Member,
    Party,
    Role,
    fault_tolerance,
    max_faulty_power,
    quorum_power,
)

DEFAULT_CHAIN_ID = "sh-hk-cargo-1"
#: 2026-03-01T00:00:00Z: ledger time (block time) starts here, so runs replay.
DEFAULT_GENESIS_TIME_MS = 1_772_323_200_000


#: Personal data the ledger recognises (consortium.ledger.privacy) and what a policy may say.
PRIVACY_CATEGORIES = ("resident_id", "mobile", "natural_person", "business_contact")
PRIVACY_ALLOW = "ALLOW"
PRIVACY_VERDICTS = (PRIVACY_ALLOW, "PII")  # ALLOW, or the reason code that refuses the tx


def default_privacy() -> dict[str, dict[str, Any]]:
    """Personal-data policy per jurisdiction (a fresh copy): the countries whose parties it
    governs and, per category, ALLOW or the reason code. Mainland (PIPL): a natural
    person's identifiers never in plaintext (they cross sealed under consent, DATA_SHARE);
    a company's business contact details (a desk e-mail) are allowed. Hong Kong (PDPO):
    allowed (a party's own details on its own trade document)."""
    return {
        "CN-SH": {"law": "PIPL", "countries": ["CN"], "resident_id": "PII", "mobile": "PII",
                  "natural_person": "PII", "business_contact": PRIVACY_ALLOW},
        "HK": {"law": "PDPO", "countries": ["HK"], "resident_id": PRIVACY_ALLOW, "mobile": PRIVACY_ALLOW,
               "natural_person": PRIVACY_ALLOW, "business_contact": PRIVACY_ALLOW},
    }


def privacy_problem(policy: Any) -> str | None:
    """Why `policy` is not a privacy policy (Genesis.privacy), or None."""
    if not isinstance(policy, dict):
        return "must be a table of jurisdictions"
    for jurisdiction, rule in policy.items():
        if jurisdiction not in {j.value for j in Jurisdiction} or not isinstance(rule, dict):
            return f"{jurisdiction!r} is not a jurisdiction with a table"
        if not isinstance(rule.get("law"), str) or not isinstance(rule.get("countries"), list) or not all(
                isinstance(c, str) and len(c) == 2 for c in rule["countries"]):
            return f"{jurisdiction}: needs 'law' (text) and 'countries' (ISO 3166 codes)"
        extra = set(rule) - {"law", "countries", *PRIVACY_CATEGORIES}
        if extra or any(rule.get(c, PRIVACY_ALLOW) not in PRIVACY_VERDICTS for c in PRIVACY_CATEGORIES):
            return f"{jurisdiction}: categories are {PRIVACY_CATEGORIES}, each one of {PRIVACY_VERDICTS}"
    return None


def default_params() -> dict[str, int]:
    return {
        "block_txs_max": limits.block_txs_max,
        "block_bytes_max": limits.block_bytes_max,
        "propose_timeout_ms": limits.propose_timeout_ms,
        "propose_timeout_ms_delta": limits.propose_timeout_ms_delta,
        "prevote_timeout_ms": limits.prevote_timeout_ms,
        "prevote_timeout_ms_delta": limits.prevote_timeout_ms_delta,
        "precommit_timeout_ms": limits.precommit_timeout_ms,
        "precommit_timeout_ms_delta": limits.precommit_timeout_ms_delta,
        "block_interval_ms": limits.block_interval_ms,
    }


def default_calendars() -> dict[str, Any]:
    """The banking calendars pinned with this version (consortium.calendars): data in
    the genesis, so deadlines never depend on the installed `holidays` library."""
    return copy.deepcopy(calendars.PINNED)


def keyed_genesis(chain_id: str, genesis_time_ms: int, members: Iterable[Member], parties: Iterable[Party],
                  key_for: Callable[[str], crypto.KeyPair]) -> tuple[Genesis, dict[str, crypto.KeyPair]]:
    """The genesis of these members and parties, each given the key `key_for(id)`
    returns (asked once per id, members first, in order), and those keys.

    The one place identities get their keys: `init` (fresh random keys),
    scenarios (keys derived from the seed) and benchmarks (fixed keys)."""
    members, parties = tuple(members), tuple(parties)
    ids = [m.id for m in members] + [p.id for p in parties]
    keys = {ident: key_for(ident) for ident in ids}
    assert len(keys) == len(members) + len(parties), "member and party ids are unique"
    genesis = Genesis(chain_id, genesis_time_ms,
                      tuple(replace(m, public_key=keys[m.id].public_key) for m in members),
                      tuple(replace(p, public_key=keys[p.id].public_key) for p in parties))
    return genesis, keys


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    genesis_time_ms: int
    members: tuple[Member, ...]
    parties: tuple[Party, ...]
    params: dict[str, int] = field(default_factory=default_params)
    calendars: dict[str, Any] = field(default_factory=default_calendars)  # UCP 600 banking days
    privacy: dict[str, dict[str, Any]] = field(default_factory=default_privacy)  # see default_privacy

    def __post_init__(self) -> None:
        assert self.validators, "a genesis has at least one validator"
        assert all(m.public_key for m in self.members)

    @property
    def validators(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.validator)

    @property
    def total_power(self) -> int:
        return sum(m.power for m in self.validators)

    @property
    def f(self) -> int:
        return fault_tolerance([m.power for m in self.validators])

    def member(self, ident: str) -> Member | None:
        return next((m for m in self.members if m.id == ident), None)

    def keys(self) -> dict[str, bytes]:
        """Public keys of everyone who may sign: members and parties."""
        out = {m.id: m.public_key for m in self.members}
        out.update({p.id: p.public_key for p in self.parties})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "genesis_time_ms": self.genesis_time_ms,
            "members": [
                {"id": m.id, "name": m.name, "role": m.role.value,
                 "jurisdiction": m.jurisdiction.value, "validator": m.validator,
                 "power": m.power, "public_key": m.public_key.hex()}
                for m in self.members
            ],
            "parties": [
                {"id": p.id, "name": p.name, "role": p.role.value,
                 "jurisdiction": p.jurisdiction.value, "public_key": p.public_key.hex()}
                for p in self.parties
            ],
            "params": dict(sorted(self.params.items())),
            "calendars": self.calendars,
            "privacy": self.privacy,
        }

    def digest(self) -> bytes:
        return crypto.digest(codec.encode(self.to_dict()))

    def summary(self) -> dict[str, Any]:
        """What `consortium init --json` prints."""
        vals = self.validators
        return {
            "chain_id": self.chain_id,
            "genesis_digest": self.digest().hex(),
            "n": len(vals),
            "f": self.f,
            "total_power": self.total_power,
            "quorum_power": quorum_power(self.total_power),
            "max_faulty_power": max_faulty_power(self.total_power),
            "validators": [m.id for m in vals],
            "members": [
                {"id": m.id, "name": m.name, "role": m.role.value,
                 "jurisdiction": m.jurisdiction.value, "validator": m.validator, "power": m.power}
                for m in self.members
            ],
            "parties": [
                {"id": p.id, "name": p.name, "role": p.role.value, "jurisdiction": p.jurisdiction.value}
                for p in self.parties
            ],
            "roles": sorted({m.role.value for m in self.members} | {p.role.value for p in self.parties}),
            "jurisdictions": sorted({m.jurisdiction.value for m in self.members}
                                    | {p.jurisdiction.value for p in self.parties}),
        }


def from_dict(data: Any, *, source: str) -> Genesis:
    """Strictly read a genesis (UserError naming `source` and the field)."""
    def need(obj: Any, name: str, kind: type, where: str = "") -> Any:
        if not isinstance(obj, dict) or name not in obj:
            raise UserError(f"{source}: {where}field '{name}' is missing")
        value = obj[name]
        if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
            raise UserError(f"{source}: {where}field '{name}' must be {kind.__name__}")
        return value

    def key(obj: Any, where: str) -> bytes:
        try:
            raw = bytes.fromhex(need(obj, "public_key", str, where))
        except ValueError:
            raw = b""
        if len(raw) != limits.public_key_bytes:
            raise UserError(f"{source}: {where}field 'public_key' must be 64 hex chars")
        return raw

    try:
        members = tuple(
            Member(id=need(m, "id", str, f"members[{i}]."), name=need(m, "name", str, f"members[{i}]."),
                   role=Role(need(m, "role", str, f"members[{i}].")),
                   jurisdiction=Jurisdiction(need(m, "jurisdiction", str, f"members[{i}].")),
                   validator=need(m, "validator", bool, f"members[{i}]."),
                   power=need(m, "power", int, f"members[{i}]."), public_key=key(m, f"members[{i}]."))
            for i, m in enumerate(need(data, "members", list))
        )
        parties = tuple(
            Party(id=need(p, "id", str, f"parties[{i}]."), name=need(p, "name", str, f"parties[{i}]."),
                  role=Role(need(p, "role", str, f"parties[{i}].")),
                  jurisdiction=Jurisdiction(need(p, "jurisdiction", str, f"parties[{i}].")),
                  public_key=key(p, f"parties[{i}]."))
            for i, p in enumerate(need(data, "parties", list))
        )
        params = need(data, "params", dict)
        if set(params) != set(default_params()) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in params.values()
        ):
            raise UserError(f"{source}: field 'params' must hold positive ints {sorted(default_params())}")
        cals = data.get("calendars", default_calendars())  # absent (older files): this version's pinned days
        problem = _check_calendars(cals)
        if problem:
            raise UserError(f"{source}: field 'calendars' {problem}")
        return Genesis(chain_id=need(data, "chain_id", str), genesis_time_ms=need(data, "genesis_time_ms", int),
                       members=members, parties=parties, params=dict(params), calendars=cals,
                       privacy=_privacy(data, source))
    except (ValueError, AssertionError) as exc:
        raise UserError(f"{source}: invalid genesis ({exc})") from None


def _check_calendars(data: Any) -> str | None:
    """Why a genesis `calendars` value is malformed (None: well formed): a map of
    source, first_year, last_year and per jurisdiction closed/open ISO dates in order
    and provisional years."""
    if not isinstance(data, dict) or not isinstance(data.get("source"), str):
        return "must be a map with 'source'"
    first, last = data.get("first_year"), data.get("last_year")
    if not (type(first) is int and type(last) is int and 1970 < first <= last < first + 100):
        return "must give 'first_year' <= 'last_year'"
    names = [j.value for j in Jurisdiction]
    if set(data) != {"source", "first_year", "last_year", *names}:
        return f"must hold exactly 'source', 'first_year', 'last_year' and {names}"
    for name in names:
        cal = data[name]
        if not isinstance(cal, dict) or set(cal) != {"closed", "open", "provisional"}:
            return f"'{name}' must hold 'closed', 'open' and 'provisional'"
        for part in ("closed", "open"):
            days = cal[part]
            if not isinstance(days, list) or len(days) > limits.calendar_days_max or not all(
                    isinstance(d, str) and _iso_date(d) for d in days) or days != sorted(set(days)):
                return f"'{name}.{part}' must list ISO dates in order, once each"
        if not isinstance(cal["provisional"], list) or not all(
                type(y) is int and first <= y <= last for y in cal["provisional"]):
            return f"'{name}.provisional' must list covered years"
    return None


def _iso_date(text: str) -> bool:
    try:
        return dt.date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


def _privacy(data: dict[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """The genesis' privacy policy; a genesis written before it existed gets the default."""
    if "privacy" not in data:
        return default_privacy()
    problem = privacy_problem(data["privacy"])
    if problem is not None:
        raise UserError(f"{source}: field 'privacy' {problem}")
    return data["privacy"]  # type: ignore[no-any-return]
