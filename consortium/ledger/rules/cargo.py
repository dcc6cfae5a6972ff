"""Cargo events after DCSA Track & Trace 3.0, published by carriers.

Events are kept per (carrier, eventID); an eventID is published once. Actual
(ACT) events may not be dated after the block (a carrier reports what has
happened; planned and estimated events may lie ahead). Actual LOAD events
of a container feed the shipped-on-board check of ISSUE (rules/ebl.py).

Vessel sharing (VSA_DECLARE, stated rule): a carrier declares, as its own signed
statement, the partner carriers of its vessel-sharing agreements; from then on the
partners' actual LOAD events count for the shipped-on-board check of the
declaring carrier's documents (never the other way round: the partner's own
documents need the partner's own declaration). Partners must be registered
carriers; an agreement id is declared once; at most `limits.vsa_partners_max`
partners in all.
"""

from __future__ import annotations

from consortium import limits
from consortium.ledger import bodies as b
from consortium.ledger import records as r
from consortium.ledger import state as t
from consortium.ledger.codes import Code
from consortium.ledger.rules.common import Ctx, Reject, need_role
from consortium.ledger.state import State
from consortium.types import Role


def on_events(s: State, ctx: Ctx, body: b.CargoEvents) -> None:
    for ev in body.parsed:
        key = f"{ctx.actor}/{ev.event_id}"
        if s.get(t.EVENT, key) is not None:
            raise Reject(Code.DUPE, f"{ctx.actor} already published event {ev.event_id!r}")
        if ev.classifier == "ACT" and ev.utc_ms > ctx.time_ms + limits.event_clock_slack_ms:
            raise Reject(Code.FUTURE, f"actual event {ev.event_id!r} at {ev.date_time} is after the block time")
        s.put(t.EVENT, key, r.CargoEventRec(
            carrier=ctx.actor, event_id=ev.event_id, event_type=ev.event_type, classifier=ev.classifier,
            type_code=ev.type_code, date_time=ev.date_time, local_date=ev.local_date, utc_ms=ev.utc_ms,
            location=ev.location, equipment=ev.equipment, documents=ev.documents, checksum=ev.checksum,
            height=ctx.height))
        if ev.is_actual_load and ev.equipment is not None:
            _index_load(s, ctx.actor, ev.equipment, r.LoadRef(ev.local_date, ev.location, ev.event_id))


def _index_load(s: State, carrier: str, equipment: str, load: r.LoadRef) -> None:
    key = f"{carrier}/{equipment}"
    index = s.get(t.LOAD, key)
    loads = (index.loads if index is not None else ()) + (load,)
    s.put(t.LOAD, key, r.LoadIndex(carrier=carrier, equipment=equipment, loads=loads[-limits.loads_per_container_max:]))


def on_vsa_declare(s: State, ctx: Ctx, body: b.VsaDeclare) -> None:
    for partner in body.partners:
        if partner == ctx.actor:
            raise Reject(Code.BENV, "a carrier does not share vessels with itself")
        need_role(s, partner, "partner", Role.CARRIER)
    old = s.get(t.VSA, ctx.actor)
    agreements = old.agreements if old is not None else ()
    if body.vsa_id in agreements:
        raise Reject(Code.DUPE, f"{ctx.actor} already declared vessel-sharing agreement {body.vsa_id!r}")
    partners = tuple(sorted(set(body.partners) | set(old.partners if old is not None else ())))
    if len(partners) > limits.vsa_partners_max:
        raise Reject(Code.LIMIT, f"{ctx.actor} would have {len(partners)} vessel-sharing partners "
                                 f"(at most {limits.vsa_partners_max})")
    s.put(t.VSA, ctx.actor, r.Vsa(carrier=ctx.actor, agreements=agreements + (body.vsa_id,), partners=partners,
                                  height=ctx.height))


def loaders(s: State, carrier: str) -> tuple[str, ...]:
    """The carriers whose actual LOAD events count for `carrier`'s documents: itself first,
    then its declared vessel-sharing partners."""
    vsa = s.get(t.VSA, carrier)
    return (carrier,) + (vsa.partners if vsa is not None else ())
