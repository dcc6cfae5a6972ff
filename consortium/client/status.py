"""Reading the nodes' status records for a user (`status`, `tx`, bench, tests)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping
from typing import Any

from consortium import limits
from consortium.bus.endpoint import Endpoint
from consortium.errors import UserError
from consortium.node.status import Status, StatusWatcher


async def read_status(ep: Endpoint, expect: set[str], wait_ms: int = limits.status_read_wait_ms) -> dict[str, Status]:
    """The retained records present now: waits until every node of `expect`
    has one or `wait_ms` passed (a node that never ran has none)."""
    watcher = StatusWatcher(ep)
    task = asyncio.create_task(watcher.run())
    try:
        deadline = time.monotonic() + wait_ms / 1000
        while time.monotonic() < deadline and not expect <= set(watcher.records):
            await asyncio.sleep(limits.status_poll_ms / 1000)
        if not watcher.connected.is_set() and not watcher.records:
            raise UserError(f"cannot read status from broker {ep.host}:{ep.port} ({watcher.error or 'timeout'})")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return dict(watcher.records)


def agreement(records: Mapping[str, Status]) -> dict[str, Any]:
    """Do the running nodes agree? Same (height, state root) or, at different
    heights, nothing to compare; the summary `status --json` prints."""
    running = {n: s for n, s in records.items() if s.state == "running"}
    heights = {n: s.height for n, s in running.items()}
    top = max(heights.values(), default=0)
    roots = {s.info.get("state_root") for s in running.values() if s.height == top}
    return {"running": sorted(running), "min_height": min(heights.values(), default=0), "max_height": top,
            "same_height": len(set(heights.values())) <= 1, "roots_at_max_height": len(roots),
            "agree": len(roots) <= 1}


def dumps(records: Mapping[str, Status]) -> str:
    return json.dumps({n: s.to_dict() for n, s in sorted(records.items())}, indent=2)
