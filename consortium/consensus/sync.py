"""Serving sync: what every driver of a Replica does the same way.

The simulator (consortium.sim.node) and the live node (consortium.node.runtime)
drive the same Replica; they differ in time (virtual vs wall clock), transport
(heap of deliveries vs MQTT) and storage (SimStore vs SQLite). Answering a
peer's sync request from the decided blocks is the same in both: the replica
never serves sync (it holds only the last decided block), its driver does.
Both call `sync_reply`, so a change to the sync window or its bounds applies
to both at once. The two drivers may not import each other (import-linter),
hence this module beside the consensus it serves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from consortium import codec, crypto, limits
from consortium.codec import Kind
from consortium.consensus import events as ev


def sync_reply(chain_id: str, me: str, signer: crypto.Signer, request: codec.Envelope, decided_height: int,
               decided_wire: Callable[[int], dict[str, Any]]) -> ev.SendTo | None:
    """The SYNC_RESPONSE to a checked SYNC_REQUEST, or None if we hold nothing asked for.

    `decided_wire(h)` returns `Decided.to_wire()` of height h (1 <= h <=
    `decided_height`). The reply holds the requested heights we have, oldest
    first, at most sync_blocks_per_response_max of them and, beyond the first,
    only as many as fit block_bytes_max (so a reply always fits one frame)."""
    assert request.kind == Kind.SYNC_REQUEST
    lo = max(1, request.body["from_height"])
    hi = min(request.body["to_height"], decided_height, lo + limits.sync_blocks_per_response_max - 1)
    blocks: list[Any] = []
    size = 0
    for h in range(lo, hi + 1):
        wire = decided_wire(h)
        size += len(codec.encode(wire))
        if blocks and size > limits.block_bytes_max:
            break
        blocks.append(wire)
    if not blocks:
        return None
    reply = codec.seal_envelope(chain_id, me, Kind.SYNC_RESPONSE, {"blocks": blocks}, signer)
    return ev.SendTo(request.sender, reply)
