"""The genesis: chain id, members with public keys and power, parties, consensus
parameters. Pure data with a strict reader; files are handled by `home`.

Its digest (SHA-256 of the canonical msgpack form) identifies the chain
configuration: two nodes with different genesis digests must not talk."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from consortium import codec, crypto, limits
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
        return Genesis(chain_id=need(data, "chain_id", str), genesis_time_ms=need(data, "genesis_time_ms", int),
                       members=members, parties=parties, params=dict(params))
    except (ValueError, AssertionError) as exc:
        raise UserError(f"{source}: invalid genesis ({exc})") from None
