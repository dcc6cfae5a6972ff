"""Faults at the MQTT level, on real connections (scenario faults mqtt-duplicate,
slow-consumer, retained-replay, session-takeover; docs/LIVE.md "MQTT-level faults").

- **A node's own relay** (`start_node_relay`): the node's broker connection goes
  through a `consortium.bus.relay` process (started with `--mqtt`) that forwards
  as is until told otherwise; its control file is RUN/nemesis/<node>/link.json.
  - `duplicate(p)`: each PUBLISH the broker delivers to the node is put on the
    node's socket twice with probability p. Why a relay and not a second
    publisher: the nodes subscribe at QoS 0, so a broker never redelivers to
    them; a QoS 1 redelivery is, on the subscriber's socket, the same PUBLISH
    packet once more (DUP set), to that one subscriber only, and that is exactly
    what the relay writes. A re-publisher would instead hand every subscriber a
    new message from another connection. The node's adapter counts the copies
    of remembered frames (`bus.repeated` in its status record); the relay counts
    every copy (`duplicated`).
  - `throttle(rate_bps)`: a slow consumer. Each direction carries at most
    `rate_bps` bytes a second; what does not fit waits in the relay (up to
    limits.relay_held_bytes_max), then in the broker's queue for that client
    (TCP backpressure), as with a node on a congested line. 0 lifts it.
- **Stale retained messages** (`capture` then `replay`): read the retained status
  records and the first consensus frames of every member early in a run, and
  publish them again later with the retain flag, under their senders' own
  broker users (the ACL lets nobody else write a member's topics). The broker
  then holds old status records (old heights) and old signed votes as retained
  messages, hands them at once to every new subscriber (a node that reconnects
  or restarts, `consortium status`), and delivers them to every running node.
- **Session takeover** (`take_over`): a second connection with the node's own
  client id (from its status record, `bus.client_id`) and the node's
  credentials. The broker closes the node's session (MQTT 3.1.1 takeover); the
  node's adapter reconnects under a fresh id (`bus.connections` goes up); the
  intruder holds on for `hold_ms` and leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from consortium import limits, proc
from consortium.bus import broker as bk
from consortium.bus import relay as relays
from consortium.bus import topics
from consortium.bus.endpoint import Endpoint
from consortium.codec import Kind
from consortium.errors import RemoteError, UserError

NEMESIS_DIR = "nemesis"
#: Consensus frames worth replaying: signed votes and proposals of an old height.
_CAPTURED_KINDS = frozenset({Kind.PROPOSAL, Kind.PREVOTE, Kind.PRECOMMIT})


def node_relay_dir(run_dir: Path, node: str) -> Path:
    return run_dir / NEMESIS_DIR / node


@dataclass
class NodeRelay:
    """The relay in front of one node's broker connection."""

    node: str
    run_dir: Path  # RUN/nemesis/<node>: its control, state and log files
    listen: tuple[str, int]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"mqtt://{self.listen[0]}:{self.listen[1]}"

    def duplicate(self, p: float) -> dict[str, Any]:
        return relays.write_command(self.run_dir, "up", duplicate=p)

    def throttle(self, rate_bps: int) -> dict[str, Any]:
        return relays.write_command(self.run_dir, "up", rate_bps=rate_bps)

    def state(self) -> dict[str, Any]:
        return relays.read_state(self.run_dir) or {}

    def stop(self) -> None:
        if self.process is None:
            return
        alive = proc.reaper({"relay": self.process}, lambda _i, pid: relays.is_relay(pid))
        proc.stop_all({"relay": self.process.pid}, alive, timeout_ms=limits.broker_stop_timeout_ms,
                      what=f"relay of {self.node}")
        self.process = None


def start_node_relay(run_dir: Path, node: str, target: tuple[str, int], *, netns: str | None = None,
                     seed: int | None = None) -> NodeRelay:
    """Start a pass-through MQTT relay for `node` in front of the broker at `target`
    (in network namespace `netns`, where the node runs); it exits with this process."""
    rdir = node_relay_dir(run_dir, node)
    rdir.mkdir(parents=True, exist_ok=True)
    host = bk.LOCAL_HOST
    with bk.netns_socket(netns) as s:
        s.bind((host, 0))
        port = int(s.getsockname()[1])
    cmd = [sys.executable, "-m", "consortium.bus.relay", "--mqtt", "--listen", f"{host}:{port}",
           "--target", f"{target[0]}:{target[1]}", "--run-dir", str(rdir), "--latency-ms", "0",
           "--jitter-ms", "0", "--parent-pid", str(os.getpid())]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    if netns:
        cmd = [*bk.netns_exec(netns), *cmd]
    (rdir / relays.STATE_FILE).unlink(missing_ok=True)
    with open(rdir / relays.LOG_FILE, "ab") as out:
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                   start_new_session=True, close_fds=True)
    relay = NodeRelay(node, rdir, (host, port), process)
    try:
        bk.wait_port(host, port, process=process, log=rdir / relays.LOG_FILE, netns=netns)
        deadline = time.monotonic() + limits.relay_ack_timeout_ms / 1000
        while relays.read_state(rdir) is None:  # its control loop runs: commands will be confirmed
            if time.monotonic() > deadline:
                raise UserError(f"the relay of node {node} did not start within {limits.relay_ack_timeout_ms} ms")
            time.sleep(limits.relay_control_poll_ms / 1000)
    except BaseException:
        relay.stop()
        raise
    return relay


# ---------------------------------------------------------------- stale retained messages


@dataclass
class Captured:
    """Frames read early in a run, to be published again, retained, later."""

    status: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # member -> (topic, payload)
    frames: list[tuple[str, str, bytes]] = field(default_factory=list)  # (sender, topic, payload)

    def count(self) -> int:
        return len(self.status) + len(self.frames)


async def capture(ep: Endpoint, members: list[str], wait_ms: int = limits.nemesis_capture_wait_ms) -> Captured:
    """The retained status record of each member (the one the broker holds now) and the
    first signed proposals and votes seen, reading broadcasts until every member has
    both or `wait_ms` passed. Frames are taken as the broker delivers them (a replay
    needs no check: nodes check them as any frame)."""
    got = Captured()
    root = topics.root(ep.chain_id)
    async with _client(ep, "nemesis-capture") as c:
        await c.subscribe(f"{root}/+/+")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_ms / 1000):
                await _read(c, ep.chain_id, members, got)
    return got


async def _read(c: aiomqtt.Client, chain_id: str, members: list[str], got: Captured) -> None:
    with_frame: set[str] = set()
    async for message in c.messages:
        topic = str(message.topic)
        payload = message.payload
        if not isinstance(payload, (bytes, bytearray)) or not payload:
            continue
        try:
            where = topics.parse(topic, chain_id)
        except RemoteError:
            continue
        if where.sender not in members:
            continue
        if where.kind == Kind.STATUS and where.sender not in got.status:
            got.status[where.sender] = (topic, bytes(payload))
        elif where.kind in _CAPTURED_KINDS and len(got.frames) < limits.nemesis_capture_frames_max:
            got.frames.append((where.sender, topic, bytes(payload)))
            with_frame.add(where.sender)
        if set(members) <= set(got.status) and set(members) <= with_frame:
            break


async def replay(endpoints: dict[str, Endpoint], got: Captured) -> int:
    """Publish every captured message again with the retain flag, each under its
    sender's endpoint (its broker user); the number published."""
    by_sender: dict[str, list[tuple[str, bytes]]] = {}
    for sender, (topic, payload) in got.status.items():
        by_sender.setdefault(sender, []).append((topic, payload))
    for sender, topic, payload in got.frames:
        by_sender.setdefault(sender, []).append((topic, payload))
    n = 0
    for sender, messages in sorted(by_sender.items()):
        async with _client(endpoints[sender], f"nemesis-replay-{sender}") as c:
            for topic, payload in messages:
                await c.publish(topic, payload, qos=1, retain=True,
                                timeout=limits.nemesis_publish_timeout_ms / 1000)
                n += 1
    return n


# ---------------------------------------------------------------- session takeover


async def take_over(ep: Endpoint, client_id: str, hold_ms: int) -> None:
    """Connect as `client_id` (the broker ends the session that has it), hold `hold_ms`, leave."""
    if not client_id:
        raise UserError("session-takeover: the node's status record names no client id (an older node?)")
    client = aiomqtt.Client(ep.host, ep.port, username=ep.username, password=ep.password, identifier=client_id,
                            timeout=limits.nemesis_publish_timeout_ms / 1000)
    async with client:
        await asyncio.sleep(hold_ms / 1000)


def _client(ep: Endpoint, name: str) -> aiomqtt.Client:
    return aiomqtt.Client(ep.host, ep.port, username=ep.username, password=ep.password,
                          identifier=f"{name}-{os.getpid()}-{time.monotonic_ns() % 10**8}",
                          timeout=limits.nemesis_publish_timeout_ms / 1000)


def describe(relays_: dict[str, NodeRelay]) -> dict[str, Any]:
    """Each node relay's counters (for a run's facts)."""
    out = {}
    for node, r in sorted(relays_.items()):
        st = r.state()
        out[node] = {k: st.get(k) for k in ("rate_bps", "duplicate", "duplicated", "bytes", "connections")}
    return out

