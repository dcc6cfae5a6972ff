"""A node's status record, as readers see it: the retained STATUS frame every
node publishes (height, round, peers, drops, state root, ...).

A reader subscribes to consortium/<chain>/+/status only (not to the consensus
traffic, which it would otherwise have to check frame by frame) and checks
every record like a node checks a frame (bus.adapter.FrameChecker: topic,
size, decoding, chain, known sender, topic vs sender, signature). Records
carry the node's wall clock (info.time_ms): a record older than
`limits.status_stale_after_ms` belongs to a node that stopped or hangs (the
broker keeps the last retained record of a dead node).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiomqtt

from consortium import limits
from consortium.bus import topics
from consortium.bus.adapter import FrameChecker
from consortium.bus.endpoint import Endpoint, mqtt_client
from consortium.codec import Kind


@dataclass(frozen=True, slots=True)
class Status:
    node: str
    height: int
    round: int
    info: dict[str, Any]

    @property
    def age_ms(self) -> int:
        return max(0, time.time_ns() // 1_000_000 - int(self.info.get("time_ms", 0)))

    @property
    def state(self) -> str:
        """running, stopped (clean shutdown) or stale (no fresh record: dead or hung)."""
        recorded = str(self.info.get("state", "running"))
        if recorded == "running" and self.age_ms > limits.status_stale_after_ms:
            return "stale"
        return recorded

    def to_dict(self) -> dict[str, Any]:
        # the computed state last: a dead node's own last record says "running"
        return {**self.info, "node": self.node, "height": self.height, "round": self.round,
                "state": self.state, "age_ms": self.age_ms}


class StatusWatcher:
    """Keeps the newest checked status record of every node, until cancelled."""

    def __init__(self, ep: Endpoint) -> None:
        self.ep = ep
        self.records: dict[str, Status] = {}
        self.dropped: dict[str, int] = {}
        self.connected = asyncio.Event()
        self.error: str | None = None
        self._checker = FrameChecker(ep.chain_id, None, ep.keys)

    async def run(self) -> None:
        """Read records forever, reconnecting after a broker failure."""
        while True:
            try:
                async with mqtt_client(self.ep, "status") as c:
                    await c.subscribe(f"{topics.root(self.ep.chain_id)}/+/{Kind.STATUS}")
                    self.connected.set()
                    async for message in c.messages:
                        self._on_message(str(message.topic), message.payload)
            except aiomqtt.MqttError as exc:
                self.error = str(exc) or type(exc).__name__
            except Exception as exc:  # a reader must outlive anything a broker sends
                self.error = repr(exc)
            self.connected.clear()
            await asyncio.sleep(limits.status_reconnect_ms / 1000)

    def _on_message(self, topic: str, payload: Any) -> None:
        env = self._checker.check_counted(topic, payload, self.dropped)
        if env is None or env.kind != Kind.STATUS:
            return
        b = env.body
        self.records[env.sender] = Status(env.sender, b["height"], b["round"], dict(b["info"]))
