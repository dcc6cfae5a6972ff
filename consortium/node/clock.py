"""The consortium clock of a live run: wall clock + an offset from HOME/run/clock.json.

A scenario says when its story happens (`start`, e.g. 2 March 2026) and may
let days pass (`advance`) so that UCP 600 deadlines come due. The simulator
does that on its virtual clocks; live nodes read this file instead:

    {"offset_ms": -22000000000}

Every node adds the offset to its wall clock for the times it gives the
replica (block times); timers stay on the monotonic clock, so an advance moves
ledger time without firing any timeout. A missing file means offset 0.
"""

from __future__ import annotations

import json
from pathlib import Path

from consortium import proc

CLOCK_FILE = "clock.json"


def clock_path(run_dir: Path) -> Path:
    return run_dir / CLOCK_FILE


def write_offset(run_dir: Path, offset_ms: int) -> None:
    """Atomic: a node never reads half a file."""
    run_dir.mkdir(parents=True, exist_ok=True)
    proc.write_atomic(clock_path(run_dir), json.dumps({"offset_ms": int(offset_ms)}) + "\n")


def read_offset(run_dir: Path) -> int:
    """The current offset; 0 when the file is missing or unreadable (logged by the caller)."""
    try:
        data = json.loads(clock_path(run_dir).read_text(encoding="utf-8"))
        value = data["offset_ms"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class ClockFile:
    """The node side: re-reads the file when it changes (mtime, size)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = clock_path(run_dir)
        self._seen: tuple[float, int] | None = None
        self.offset_ms = 0
        self.poll()

    def poll(self) -> bool:
        """Re-read if changed; True when the offset changed."""
        try:
            st = self.path.stat()
            seen: tuple[float, int] | None = (st.st_mtime, st.st_size)
        except OSError:
            seen = None
        if seen == self._seen:
            return False
        self._seen = seen
        before = self.offset_ms
        self.offset_ms = read_offset(self.path.parent) if seen is not None else 0
        return self.offset_ms != before
