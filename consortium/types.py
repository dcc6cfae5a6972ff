"""Identifiers, roles and jurisdictions shared by every layer.

Pure: no I/O. Member and party ids are short lowercase slugs so that they can
appear verbatim inside MQTT topics and file names.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from consortium import limits
from consortium.errors import UserError

_ID_RE = re.compile(r"^[a-z][a-z0-9-]*$")


class Role(enum.StrEnum):
    """What an organisation does in the consortium."""

    REGULATOR = "regulator"  # HKMA
    DATA_BUREAU = "data_bureau"  # SDB
    TECH_CENTER = "tech_center"  # NTICBC
    BANK = "bank"
    CARRIER = "carrier"
    SHIPPER = "shipper"  # exporter
    CONSIGNEE = "consignee"  # importer


#: Roles that may run a validator node (trading parties never do).
MEMBER_ROLES = frozenset(
    {Role.REGULATOR, Role.DATA_BUREAU, Role.TECH_CENTER, Role.BANK, Role.CARRIER}
)
#: Roles of trading parties, registered on the ledger but running no node.
PARTY_ROLES = frozenset({Role.SHIPPER, Role.CONSIGNEE, Role.BANK, Role.CARRIER})


class Jurisdiction(enum.StrEnum):
    CN_SH = "CN-SH"  # Shanghai, mainland China (SDB-governed data)
    HK = "HK"  # Hong Kong SAR


def id_problem(value: object) -> str | None:
    """Why `value` is not a valid member/party id, or None when it is."""
    if not isinstance(value, str):
        return "must be a string"
    if not 2 <= len(value) <= limits.member_id_bytes_max:
        return f"must be 2..{limits.member_id_bytes_max} characters"
    if not _ID_RE.match(value):
        return "must be lowercase letters, digits and '-', starting with a letter"
    return None


def check_id(value: object, *, where: str) -> str:
    """Return `value` as an id or raise a UserError naming `where`."""
    problem = id_problem(value)
    if problem is not None:
        raise UserError(f"{where}: id {value!r} {problem}")
    assert isinstance(value, str)
    return value


@dataclass(frozen=True, slots=True)
class Member:
    """A consortium organisation; validators run a node and vote with `power`."""

    id: str
    name: str
    role: Role
    jurisdiction: Jurisdiction
    validator: bool
    power: int
    public_key: bytes = b""

    def __post_init__(self) -> None:
        assert id_problem(self.id) is None, self.id
        assert self.role in MEMBER_ROLES, self.role
        assert 0 <= self.power <= limits.voting_power_max
        assert (self.power > 0) == self.validator, "validators and only they have power"


@dataclass(frozen=True, slots=True)
class Party:
    """A trading party (exporter, importer, ...) that signs transactions."""

    id: str
    name: str
    role: Role
    jurisdiction: Jurisdiction
    public_key: bytes = b""

    def __post_init__(self) -> None:
        assert id_problem(self.id) is None, self.id
        assert self.role in PARTY_ROLES, self.role


def max_faulty_power(total_power: int) -> int:
    """The most voting power that may be Byzantine: the largest F with 3F < total."""
    assert total_power > 0
    return (total_power - 1) // 3


def quorum_power(total_power: int) -> int:
    """Smallest power strictly above two thirds of `total_power` (2f+1 for equal powers)."""
    assert total_power > 0
    return total_power * 2 // 3 + 1


def fault_tolerance(powers: list[int]) -> int:
    """f as a count: how many validators may fail, whichever they are.

    The largest k such that the k most powerful validators together hold at
    most max_faulty_power; for n equal powers this is (n-1)//3."""
    budget = max_faulty_power(sum(powers))
    k = 0
    for p in sorted(powers, reverse=True):
        if budget < p:
            break
        budget -= p
        k += 1
    return k
