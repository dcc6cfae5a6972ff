"""Reading the consortium description (nodes/): one TOML file per member, plus
parties.toml. Every problem is a UserError naming the file and the field."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from consortium import limits
from consortium.crypto import KeyPair, keypair_from_entropy
from consortium.errors import UserError
from consortium.genesis import DEFAULT_CHAIN_ID, DEFAULT_GENESIS_TIME_MS, Genesis, keyed_genesis
from consortium.types import (
    MEMBER_ROLES,
    PARTY_ROLES,
    Jurisdiction,
    Member,
    Party,
    Role,
    id_problem,
)

PARTIES_FILE = "parties.toml"


def shipped_dir(name: str) -> Path:
    """A directory of defaults kept at the top of the repository ("nodes", "scenarios"): the copy a
    wheel ships inside the package (consortium/defaults/NAME, see pyproject), else the checkout's
    own (an editable install, where users edit it)."""
    shipped = Path(str(resources.files("consortium"))) / "defaults" / name
    checkout = Path(__file__).resolve().parents[1]
    if not shipped.is_dir() and (checkout / "pyproject.toml").is_file() and (checkout / name).is_dir():
        return checkout / name
    return shipped


def default_members_dir() -> Path:
    """The default consortium: nodes/ (shipped with the package, or of the checkout)."""
    return shipped_dir("nodes")
_MEMBER_FIELDS = {"id", "name", "role", "jurisdiction", "validator", "power"}
_PARTY_FIELDS = {"id", "name", "role", "jurisdiction"}


@dataclass(frozen=True, slots=True)
class Consortium:
    members: tuple[Member, ...]
    parties: tuple[Party, ...]
    source: Path


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot be read ({exc.__class__.__name__})") from None


def _field(path: Path, where: str, data: dict[str, Any], name: str, kind: type) -> Any:
    if name not in data:
        raise UserError(f"{path}: {where}field '{name}' is missing")
    value = data[name]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise UserError(f"{path}: {where}field '{name}' must be {kind.__name__}, got {value!r}")
    return value


def _common(path: Path, where: str, data: dict[str, Any], allowed: set[str],
            roles: frozenset[Role]) -> tuple[str, str, Role, Jurisdiction]:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise UserError(f"{path}: {where}unknown field '{unknown[0]}' (allowed: {sorted(allowed)})")
    ident = _field(path, where, data, "id", str)
    problem = id_problem(ident)
    if problem is not None:
        raise UserError(f"{path}: {where}field 'id' {problem}")
    name = _field(path, where, data, "name", str)
    if not name.strip() or len(name) > limits.member_name_chars_max:
        raise UserError(f"{path}: {where}field 'name' must be 1..{limits.member_name_chars_max} characters")
    role_s = _field(path, where, data, "role", str)
    try:
        role = Role(role_s)
    except ValueError:
        role = None
    if role is None or role not in roles:
        raise UserError(f"{path}: {where}field 'role' must be one of "
                        f"{sorted(r.value for r in roles)}, got {role_s!r}")
    jur_s = _field(path, where, data, "jurisdiction", str)
    try:
        jur = Jurisdiction(jur_s)
    except ValueError:
        raise UserError(f"{path}: {where}field 'jurisdiction' must be one of "
                        f"{[j.value for j in Jurisdiction]}, got {jur_s!r}") from None
    return ident, name, role, jur


def load_member(path: Path) -> Member:
    data = _read_toml(path)
    ident, name, role, jur = _common(path, "", data, _MEMBER_FIELDS, MEMBER_ROLES)
    validator = _field(path, "", data, "validator", bool)
    power = _field(path, "", data, "power", int) if validator else data.get("power", 0)
    if validator and not 1 <= power <= limits.voting_power_max:
        raise UserError(f"{path}: field 'power' must be 1..{limits.voting_power_max} for a validator")
    if not validator and power != 0:
        raise UserError(f"{path}: field 'power' must be 0 (or absent) when validator = false")
    return Member(id=ident, name=name, role=role, jurisdiction=jur, validator=validator, power=power)


def load_parties(path: Path) -> list[Party]:
    data = _read_toml(path)
    extra = sorted(set(data) - {"party"})
    if extra:
        raise UserError(f"{path}: unknown table '{extra[0]}' (expected [[party]] entries)")
    entries = data.get("party", [])
    if not isinstance(entries, list):
        raise UserError(f"{path}: 'party' must be an array of tables ([[party]])")
    parties = []
    for i, entry in enumerate(entries):
        where = f"party[{i}]: "
        if not isinstance(entry, dict):
            raise UserError(f"{path}: {where}must be a table")
        ident, name, role, jur = _common(path, where, entry, _PARTY_FIELDS, PARTY_ROLES)
        parties.append(Party(id=ident, name=name, role=role, jurisdiction=jur))
    return parties


def load_consortium(directory: Path) -> Consortium:
    """Read every *.toml in `directory`; refuse duplicates and empty sets."""
    if not directory.is_dir():
        raise UserError(f"{directory}: members directory does not exist")
    seen: dict[str, Path] = {}
    members: list[Member] = []
    parties: list[Party] = []

    def claim(ident: str, path: Path) -> None:
        if ident in seen:
            raise UserError(f"{path}: field 'id' duplicates id {ident!r} already defined in {seen[ident]}")
        seen[ident] = path

    for path in sorted(directory.glob("*.toml")):
        if path.name == PARTIES_FILE:
            continue
        member = load_member(path)
        claim(member.id, path)
        members.append(member)
    parties_path = directory / PARTIES_FILE
    if parties_path.exists():
        for party in load_parties(parties_path):
            claim(party.id, parties_path)
            parties.append(party)
    if not any(m.validator for m in members):
        raise UserError(f"{directory}: no validator member (*.toml with validator = true)")
    if len(members) > limits.members_max or len(parties) > limits.parties_max:
        raise UserError(f"{directory}: too many members or parties")
    return Consortium(members=tuple(members), parties=tuple(parties), source=directory)


def seeded_genesis(members_dir: Path | None, seed: int, genesis_time_ms: int = DEFAULT_GENESIS_TIME_MS
                   ) -> tuple[Genesis, dict[str, KeyPair]]:
    """The consortium of `members_dir` (default: the shipped nodes/) with keys
    derived from `seed`, as scenarios on the simulator use it: same seed, same keys."""
    c = load_consortium(members_dir or default_members_dir())
    return keyed_genesis(DEFAULT_CHAIN_ID, genesis_time_ms, c.members, c.parties,
                         lambda i: keypair_from_entropy(f"scenario:{seed}:{i}".encode()))
