"""What every rule module shares: the apply context, the rejection, lookups."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from consortium.errors import RemoteError
from consortium.ledger import state as t
from consortium.ledger.codes import Code
from consortium.ledger.records import Ebl, PartyRecord
from consortium.ledger.state import State
from consortium.ledger.tx import Tx
from consortium.types import Role


class Reject(RemoteError):
    """A stateful rejection: recorded in the block's results, the tx rolled back."""

    def __init__(self, code: Code, detail: str) -> None:
        super().__init__(str(code), detail)
        self.code = code


@dataclass(frozen=True, slots=True)
class Ctx:
    """One transaction being applied in one block."""

    height: int
    time_ms: int
    today: dt.date  # local (UTC+8) calendar date of the block
    tx: Tx
    actor: str = field(init=False, repr=False, compare=False)  # tx.actor (the rules read it often)

    def __post_init__(self) -> None:
        object.__setattr__(self, "actor", self.tx.actor)

    @classmethod
    def of(cls, height: int, time_ms: int, today: dt.date, tx: Tx) -> Ctx:
        """Ctx(height, time_ms, today, tx), built slot by slot (once per applied tx)."""
        c = _new(cls)
        _set_height(c, height)
        _set_time_ms(c, time_ms)
        _set_today(c, today)
        _set_tx(c, tx)
        _set_actor(c, tx.actor)
        return c

    @property
    def date(self) -> str:
        return self.today.isoformat()


_new = object.__new__
_set_height, _set_time_ms, _set_today, _set_tx, _set_actor = (getattr(Ctx, n).__set__ for n in Ctx.__slots__)
assert Ctx.__slots__ == ("height", "time_ms", "today", "tx", "actor")


def party(s: State, ident: str) -> PartyRecord | None:
    return s.get(t.PARTY, ident)


def need_party(s: State, ident: str, what: str) -> PartyRecord:
    """A named counterparty must be registered (PINT: an unknown transferee is BENV)."""
    found = s.get(t.PARTY, ident)
    if found is None:
        raise Reject(Code.BENV, f"{what} {ident!r} is not a registered party")
    return found


def need_role(s: State, ident: str, what: str, *roles: Role) -> PartyRecord:
    found = need_party(s, ident, what)
    if found.role not in roles:
        raise Reject(Code.BENV, f"{what} {ident!r} is a {found.role}, not a {'/'.join(roles)}")
    return found


def need_ebl(s: State, ebl_id: str) -> Ebl:
    found = s.get(t.EBL, ebl_id)
    if found is None:
        raise Reject(Code.MDOC, f"no eBL with document checksum {ebl_id[:16]}... on the ledger")
    return found


def short(ebl_id: str) -> str:
    return ebl_id[:12]
