"""Cargo events after DCSA Track & Trace 3.0, published by carriers.

Events are kept per (carrier, eventID); an eventID is published once. Actual
(ACT) events may not be dated after the block (a carrier reports what has
happened; planned and estimated events may lie ahead). Actual LOAD events
of a container feed the shipped-on-board check of ISSUE (rules/ebl.py).
"""

from __future__ import annotations

from consortium import limits
from consortium.ledger import bodies as b
from consortium.ledger import records as r
from consortium.ledger import state as t
from consortium.ledger.codes import Code
from consortium.ledger.rules.common import Ctx, Reject
from consortium.ledger.state import State


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
