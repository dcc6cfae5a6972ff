"""Live fault injection: a per-node filter on incoming frames, changed at runtime.

A node polls HOME/run/<id>.filter.json (every `limits.netfilter_poll_ms`) and applies it to
every checked frame before the replica sees it:

    {"drop": 0.2,              probability (0..1) to drop a frame
     "delay_ms": 150,          hold every frame this long before delivery (order kept)
     "block": ["hkma", "sdb"]} drop every frame from these senders (members or parties)

Every field is optional; a missing or empty file means no filter. A file that
does not parse is ignored (the previous filter stays) and logged. Write it
with `write_filter` (atomic rename), remove it with `clear_filter`.

Only the receiving side is filtered: a broadcast reaches the broker once, so
"A cannot hear B" is `block: [B]` in A's file; a symmetric partition is two
files. Dropped and blocked frames are counted in the status record under
info.filtered, apart from the bus's dropped-frame counters (those are about
hostile or broken frames). A process pause is SIGSTOP/SIGCONT, a crash is
SIGKILL: the filter does not need to imitate them.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consortium import limits, proc
from consortium.errors import UserError
from consortium.types import id_problem

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NetFilter:
    drop: float = 0.0
    delay_ms: int = 0
    block: frozenset[str] = field(default_factory=frozenset)

    @property
    def active(self) -> bool:
        return self.drop > 0 or self.delay_ms > 0 or bool(self.block)

    def to_dict(self) -> dict[str, Any]:
        return {"drop": self.drop, "delay_ms": self.delay_ms, "block": sorted(self.block)}


NO_FILTER = NetFilter()


def parse_filter(data: Any) -> NetFilter:
    """A NetFilter from the decoded JSON; UserError naming the bad field."""
    if not isinstance(data, dict):
        raise UserError("a filter is a JSON object")
    unknown = set(data) - {"drop", "delay_ms", "block"}
    if unknown:
        raise UserError(f"unknown filter field {sorted(unknown)[0]!r}")
    drop = data.get("drop", 0.0)
    if isinstance(drop, bool) or not isinstance(drop, (int, float)) or not 0 <= drop <= 1:
        raise UserError("filter field 'drop' must be a number in 0..1")
    delay = data.get("delay_ms", 0)
    if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= limits.netfilter_delay_ms_max:
        raise UserError(f"filter field 'delay_ms' must be an integer in 0..{limits.netfilter_delay_ms_max}")
    block = data.get("block", [])
    if not isinstance(block, list) or any(id_problem(b) is not None for b in block):
        raise UserError("filter field 'block' must be a list of member or party ids")
    return NetFilter(float(drop), delay, frozenset(block))


def filter_path(run_dir: Path, node_id: str) -> Path:
    return run_dir / f"{node_id}.filter.json"


def write_filter(run_dir: Path, node_id: str, f: NetFilter) -> None:
    """Install `f` on node `node_id` (picked up within limits.netfilter_poll_ms). Atomic: a node never reads half a file."""
    path = filter_path(run_dir, node_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    proc.write_atomic(path, json.dumps(f.to_dict()) + "\n")


def clear_filter(run_dir: Path, node_id: str) -> None:
    filter_path(run_dir, node_id).unlink(missing_ok=True)


class FilterFile:
    """The node side: re-reads the file when its mtime or size changes."""

    def __init__(self, path: Path, rng: random.Random | None = None) -> None:
        self.path = path
        self.current = NO_FILTER
        self.rng = rng or random.Random()
        self._seen: tuple[int, int] | None = None

    def poll(self) -> NetFilter:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            if self._seen is not None:
                log.info("network filter removed")
            self._seen, self.current = None, NO_FILTER
            return self.current
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._seen:
            self._seen = stamp
            self._load()
        return self.current

    def _load(self) -> None:
        try:
            self.current = parse_filter(json.loads(self.path.read_text(encoding="utf-8") or "{}"))
            log.info("network filter now %s", self.current.to_dict())
        except (OSError, ValueError, UserError) as exc:
            log.warning("%s: ignored (%s); keeping %s", self.path, exc, self.current.to_dict())

    def verdict(self, sender: str) -> str | None:
        """"blocked" or "dropped" if a frame from `sender` must go, else None."""
        f = self.current
        if sender in f.block:
            return "blocked"
        if f.drop > 0 and self.rng.random() < f.drop:
            return "dropped"
        return None
