"""Reading the nodes' retained status records (dashboard, `status`, `tx`, bench, tests).

A reader subscribes to consortium/<chain>/+/status only (not to the consensus
traffic, which it would otherwise have to check frame by frame) and checks
every record like a node checks a frame (bus.adapter.FrameChecker: topic,
size, decoding, chain, known sender, topic vs sender, signature). Records
carry the node's wall clock (info.time_ms): a record older than
`stale_after_ms` belongs to a node that stopped or hangs (the broker keeps
the last retained record of a dead node).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from consortium.bus import broker as brokers
from consortium.bus import topics
from consortium.bus.adapter import FrameChecker
from consortium.codec import Kind
from consortium.errors import ConsortiumError, UserError
from consortium.genesis import Genesis
from consortium.home import load_credentials, load_genesis

#: A record older than this (node wall clock vs ours) is reported stale.
stale_after_ms = 3_000
#: How long `read_status` waits for the retained records of every expected node.
read_wait_ms = 2_000
#: MQTT connect timeout of readers and one-shot publishers.
client_timeout_s = 5.0


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
        if recorded == "running" and self.age_ms > stale_after_ms:
            return "stale"
        return recorded

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "height": self.height, "round": self.round, "state": self.state,
                "age_ms": self.age_ms, **self.info}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a client connects and as whom."""

    host: str
    port: int
    chain_id: str
    keys: Mapping[str, bytes]
    username: str | None = None
    password: str | None = None
    genesis: Genesis | None = field(default=None, compare=False)


def broker_address(home: Path, spec: str | None) -> tuple[str, int]:
    """host, port of `spec` (mqtt://...), else of the broker recorded in HOME/run."""
    if spec:
        return brokers.parse_broker_url(spec)
    record = brokers.load_record(home / "run")
    if record is None:
        raise UserError(f"no broker recorded in {home / 'run'}: pass --broker mqtt://host:port "
                        "or start one with `consortium up`")
    return record.host, record.port



def endpoint(home: Path, broker: str | None, *, as_member: str | None = None) -> Endpoint:
    """A client endpoint for HOME: the given or recorded broker, with credentials.

    Credentials, first found: `as_member`'s own (a member publishing as itself),
    the CLI client user of a broker started from HOME (HOME/run/client.json,
    may publish as any trading party), any member's (read-only use, e.g. in
    docker where client.json lives elsewhere), none (embedded or open brokers)."""
    genesis = load_genesis(home)
    host, port = broker_address(home, broker)
    user, password = _credentials(home, as_member)
    return Endpoint(host, port, genesis.chain_id, genesis.keys(), user, password, genesis)


def _credentials(home: Path, as_member: str | None) -> tuple[str | None, str | None]:
    creds: dict[str, dict[str, str]] = {}
    if (home / "broker" / "credentials.json").exists():
        creds = load_credentials(home)
    if as_member is not None and as_member in creds:
        return creds[as_member]["username"], creds[as_member]["password"]
    if (home / "run" / brokers.CLIENT_FILE).exists():
        return brokers.client_credentials(home / "run")
    if as_member is None:
        for cred in creds.values():
            return cred["username"], cred["password"]
    return None, None


def client(ep: Endpoint, name: str) -> aiomqtt.Client:
    return aiomqtt.Client(ep.host, ep.port, username=ep.username, password=ep.password,
                          identifier=f"{name}-{secrets.token_hex(4)}", timeout=client_timeout_s)


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
                async with client(self.ep, "status") as c:
                    await c.subscribe(f"{topics.root(self.ep.chain_id)}/+/{Kind.STATUS}")
                    self.connected.set()
                    async for message in c.messages:
                        self._on_message(str(message.topic), message.payload)
            except aiomqtt.MqttError as exc:
                self.error = str(exc) or type(exc).__name__
            except Exception as exc:  # a reader must outlive anything a broker sends
                self.error = repr(exc)
            self.connected.clear()
            await asyncio.sleep(0.5)

    def _on_message(self, topic: str, payload: Any) -> None:
        if not isinstance(payload, (bytes, bytearray)) or not payload:
            return  # a cleared retained record
        try:
            env = self._checker.check(topic, bytes(payload))
        except ConsortiumError as exc:
            reason = str(getattr(exc, "reason", "error"))
            self.dropped[reason] = self.dropped.get(reason, 0) + 1
            return
        if env is None or env.kind != Kind.STATUS:
            return
        b = env.body
        self.records[env.sender] = Status(env.sender, b["height"], b["round"], dict(b["info"]))


async def read_status(ep: Endpoint, expect: set[str], wait_ms: int = read_wait_ms) -> dict[str, Status]:
    """The retained records present now: waits until every node of `expect`
    has one or `wait_ms` passed (a node that never ran has none)."""
    watcher = StatusWatcher(ep)
    task = asyncio.create_task(watcher.run())
    try:
        deadline = time.monotonic() + wait_ms / 1000
        while time.monotonic() < deadline and not expect <= set(watcher.records):
            await asyncio.sleep(0.05)
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
