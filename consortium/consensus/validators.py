"""The validator set: voting power, quorums, deterministic proposer rotation."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from math import gcd

from consortium import limits, types

# The proposer schedule repeats every total_power/gcd(powers) slots; beyond
# limits.proposer_schedule_slots_max slots we fall back to a coarser period (still deterministic).


@dataclass(frozen=True, slots=True)
class Validator:
    id: str
    power: int
    public_key: bytes


@dataclass(frozen=True)
class ValidatorSet:
    """Validators sorted by id; power-weighted quorums and proposer schedule."""

    validators: tuple[Validator, ...]
    _by_id: dict[str, Validator] = field(init=False, repr=False, compare=False)
    powers: dict[str, int] = field(init=False, repr=False, compare=False)  # id -> power (validators only)
    _schedule: tuple[str, ...] = field(init=False, repr=False, compare=False)
    total_power: int = field(init=False, compare=False)
    quorum: int = field(init=False, compare=False)
    skip: int = field(init=False, compare=False)

    def __post_init__(self) -> None:
        ids = [v.id for v in self.validators]
        assert ids == sorted(ids) and len(set(ids)) == len(ids), "sorted, unique ids"
        assert all(v.power > 0 for v in self.validators) and self.validators
        object.__setattr__(self, "_by_id", {v.id: v for v in self.validators})
        object.__setattr__(self, "powers", {v.id: v.power for v in self.validators})
        object.__setattr__(self, "_schedule", _weighted_schedule(self.validators))
        total = sum(v.power for v in self.validators)
        object.__setattr__(self, "total_power", total)
        # quorum: power strictly above 2/3 of the total (2f+1 for equal powers);
        # skip: power that guarantees one honest sender, more than f (f+1).
        object.__setattr__(self, "quorum", types.quorum_power(total))
        object.__setattr__(self, "skip", types.max_faulty_power(total) + 1)

    @classmethod
    def of(cls, validators: Iterable[Validator]) -> ValidatorSet:
        return cls(tuple(sorted(validators, key=lambda v: v.id)))

    def get(self, ident: str) -> Validator | None:
        return self._by_id.get(ident)

    def power(self, ident: str) -> int:
        v = self._by_id.get(ident)
        return v.power if v else 0

    def proposer(self, height: int, round: int) -> str:
        return self._schedule[(height + round) % len(self._schedule)]

    def __len__(self) -> int:
        return len(self.validators)


def _weighted_schedule(validators: tuple[Validator, ...]) -> tuple[str, ...]:
    """CometBFT-style weighted round robin, unrolled over one period.

    Each slot every validator gains its power in priority; the highest (ties:
    smallest id) proposes and loses the total. Over one period each validator
    proposes exactly power/g times, interleaved rather than in runs."""
    g = 0
    for v in validators:
        g = gcd(g, v.power)
    weights = [v.power // g for v in validators]
    period = sum(weights)
    if period > limits.proposer_schedule_slots_max:  # keep memory bounded for odd powers
        scale = period // limits.proposer_schedule_slots_max + 1
        weights = [max(1, w // scale) for w in weights]
        period = sum(weights)
    prio = [0] * len(weights)
    out = []
    for _ in range(period):
        for i, w in enumerate(weights):
            prio[i] += w
        best = max(range(len(prio)), key=lambda i: (prio[i], -i))
        prio[best] -= period
        out.append(validators[best].id)
    return tuple(out)
