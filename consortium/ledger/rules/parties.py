"""Party registration: HKMA registers Hong Kong parties, SDB Shanghai (CN-SH) parties.

Genesis members and parties are registered when the ledger starts; members
act as parties with their member keys. A registered party is never removed
and its key never changes (a replayed signature stays attributable).
"""

from __future__ import annotations

from consortium import limits
from consortium.ledger import bodies as b
from consortium.ledger import records as r
from consortium.ledger import state as t
from consortium.ledger.codes import Code
from consortium.ledger.rules.common import Ctx, Reject, party
from consortium.ledger.state import State
from consortium.types import Jurisdiction, Role

#: Which registrar serves which jurisdiction.
REGISTRAR_OF = {Role.REGULATOR: Jurisdiction.HK, Role.DATA_BUREAU: Jurisdiction.CN_SH}


def on_register(s: State, ctx: Ctx, body: b.RegisterParty) -> None:
    registrar = party(s, ctx.actor)
    assert registrar is not None
    serves = REGISTRAR_OF.get(Role(registrar.role))
    if serves is None or serves.value != body.jurisdiction:
        raise Reject(Code.ROLE, f"{ctx.actor} registers {serves or 'no'} parties, not {body.jurisdiction}")
    if party(s, body.party_id) is not None:
        raise Reject(Code.DUPE, f"party {body.party_id} is already registered")
    if s.count(t.PARTY) >= limits.parties_max + limits.members_max:
        raise Reject(Code.LIMIT, f"the ledger holds {limits.parties_max} parties")
    s.put(t.PARTY, body.party_id, r.PartyRecord(
        id=body.party_id, name=body.name, role=body.role, jurisdiction=body.jurisdiction,
        public_key=body.public_key, member=False, registered_by=ctx.actor, height=ctx.height))
