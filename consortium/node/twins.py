"""Twins across processes: a validator run twice, by two OS processes under one key.

The second process of validator V (its twin) is the *instance* `V~twin`:

- the same member: its key, its broker credentials, its topics (the broker's ACL
  is per member, so it can only speak as V), the same network filter file;
- its own store, HOME/nodes/V~twin/store.db, its own log, pid and record in
  HOME/run (V~twin.log, V~twin.pid), its own MQTT client id (`V~twin-xxxxxxxx`: a
  second connection under V's client id would take over V's session);
- it never hears V (a node skips frames on its own member's topics), as in the
  simulator (`consortium.sim.faults.twin_of`, `V'`), and its clock runs
  `limits.live_twin_skew_ms` ahead, so when both lead a round they propose
  different blocks;
- it publishes no status record (V's retained record is V's; readers must not
  see two processes flip one record): it writes the same record as JSON to
  HOME/run/V~twin.status.json instead (`consortium status --json` lists it
  under "twins").

Both instances sign whatever their own replica decides, so honest nodes see two
different votes from V for one (height, round, step): DuplicateVote evidence,
which the next proposer commits on chain. A twinned validator counts as faulty:
with at most f of the voting power twinned, safety holds (`check_twins`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from consortium import types
from consortium.errors import UserError
from consortium.genesis import Genesis

TWIN_SUFFIX = "~twin"
STATUS_SUFFIX = ".status.json"


def twin_instance(member: str) -> str:
    """The instance id (files, records, logs) of validator `member`'s twin process."""
    return member + TWIN_SUFFIX


def is_twin(instance: str) -> bool:
    return instance.endswith(TWIN_SUFFIX)


def member_of(instance: str) -> str:
    """The member an instance speaks for: `nticbc~twin` -> `nticbc`, `nticbc` -> `nticbc`."""
    return instance.removesuffix(TWIN_SUFFIX)


def status_path(run_dir: Path, instance: str) -> Path:
    return run_dir / f"{instance}{STATUS_SUFFIX}"


def read_status(run_dir: Path, instance: str) -> dict[str, Any] | None:
    """A twin's last status record (its `info` map plus height and round), None if absent or unreadable."""
    try:
        data = json.loads(status_path(run_dir, instance).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_twins(twins: Sequence[str], genesis: Genesis, *, beyond_f: bool = False, where: str = "") -> list[str]:
    """The twinned validators, checked: each a validator of `genesis`, named once, and
    together at most f of the voting power (they count as faulty) unless `beyond_f`.
    UserError (one line, prefixed by `where`) otherwise."""
    prefix = f"{where}: " if where else ""
    validators = {m.id: m.power for m in genesis.validators}
    seen: list[str] = []
    for t in twins:
        if t not in validators:
            what = "a member but not a validator" if genesis.member(t) is not None else "not a member"
            raise UserError(f"{prefix}twin {t!r}: {what} (validators: {', '.join(sorted(validators))})")
        if t in seen:
            raise UserError(f"{prefix}twin {t!r} is named twice")
        seen.append(t)
    faulty = sum(validators[t] for t in seen)
    budget = types.max_faulty_power(sum(validators.values()))
    if faulty > budget and not beyond_f:
        f = types.fault_tolerance(list(validators.values()))
        raise UserError(f"{prefix}{len(seen)} twins hold {faulty} of the {sum(validators.values())} voting power, "
                        f"more than f = {f} validators' worth (at most {budget} may be faulty): safety is not "
                        "promised; set beyond_f = true (CLI: --beyond-f) to run it anyway")
    return seen
