"""A read-only observer of a live run's consensus traffic, for the trace.

A real MQTT subscriber with its own broker user (`broker.OBSERVER_USER`, whose ACL
lets it READ only the broadcast proposal, prevote, precommit and status topics and
write nothing) that checks every frame like a node does (bus.adapter.FrameChecker:
topic, size, envelope, known sender, signature) and notes, with its time of arrival
(`time.monotonic()`), who sent which kind for which height and round. From it the
live trace gets each validator's step changes (the first proposal, prevote or
precommit it signed at a (height, round)) and its messages sent by kind; from the
newest retained status record of each node, its counters of frames received and
dropped at the end of the run.

It sees broadcasts only: what a node sends to one peer (a vote re-sent to a lagging
peer, sync) and what a node's network filter drops on arrival are not seen here
(the latter is in the node's status counters). It runs in its own thread with its
own event loop, so the synchronous scenario back-end can start, read and stop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from consortium import limits
from consortium.bus import topics
from consortium.bus.adapter import FrameChecker
from consortium.codec import Kind

#: the consensus kinds the observer records (each a step of its sender)
STEP_KINDS = (Kind.PROPOSAL, Kind.PREVOTE, Kind.PRECOMMIT)
#: everything the observer subscribes to, and all its broker user may read
OBSERVED_KINDS = (*STEP_KINDS, Kind.STATUS)


def observer_filters(root: str) -> tuple[str, ...]:
    """The topic filters of the observer (its ACL's read entries): broadcasts of OBSERVED_KINDS."""
    return tuple(f"{root}/+/{k}" for k in OBSERVED_KINDS)


@dataclass(frozen=True, slots=True)
class Frame:
    """One checked consensus frame as it arrived at the observer."""

    t: float  # time.monotonic() at arrival
    sender: str
    kind: str
    height: int
    round: int


@dataclass
class Observed:
    """What the observer saw so far (a copy: `BusObserver.snapshot()`)."""

    frames: list[Frame] = field(default_factory=list)  # in arrival order, up to limits.observer_frames_max
    omitted: int = 0  # frames past that limit (still counted in `sent`)
    sent: dict[tuple[str, str], int] = field(default_factory=dict)  # (sender, kind) -> frames seen
    status: dict[str, dict[str, Any]] = field(default_factory=dict)  # node -> its newest status record's info
    dropped: dict[str, int] = field(default_factory=dict)  # frames that failed a check, by reason


class BusObserver:
    """Start with `start()`, wait with `wait_connected()`, read with `snapshot()`, `stop()`."""

    def __init__(self, *, host: str, port: int, chain_id: str, keys: Mapping[str, bytes],
                 username: str | None = None, password: str | None = None,
                 frames_max: int = limits.observer_frames_max) -> None:
        self.host, self.port, self.chain_id = host, port, chain_id
        self._username, self._password = username, password
        self._checker = FrameChecker(chain_id, None, keys)
        self._frames_max = frames_max
        self._seen = Observed()
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    # ------------------------------------------------------------ lifecycle (any thread)

    def start(self) -> None:
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._task = loop.create_task(self._run())
            ready.set()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(self._task)
            loop.close()

        self._thread = threading.Thread(target=main, name="bus-observer", daemon=True)
        self._thread.start()
        ready.wait()

    def wait_connected(self, timeout_ms: int) -> bool:
        """True once subscribed (retained status records arrive right after)."""
        return self._connected.wait(timeout_ms / 1000)

    def stop(self) -> None:
        """Cancel the connection and join the thread; idempotent."""
        loop, task, thread = self._loop, self._task, self._thread
        self._thread = None
        if loop is not None and task is not None and thread is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(task.cancel)
            thread.join(limits.observer_stop_wait_ms / 1000)

    def snapshot(self) -> Observed:
        with self._lock:
            s = self._seen
            return Observed(list(s.frames), s.omitted, dict(s.sent), {k: dict(v) for k, v in s.status.items()},
                            dict(s.dropped))

    # ------------------------------------------------------------ the connection (its own thread)

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(self.host, self.port, username=self._username, password=self._password,
                                          identifier=f"observer-{secrets.token_hex(4)}",
                                          timeout=limits.client_connect_timeout_ms / 1000) as c:
                    for topic_filter in observer_filters(topics.root(self.chain_id)):
                        await c.subscribe(topic_filter, qos=0)
                    self._connected.set()
                    async for message in c.messages:
                        self.on_message(str(message.topic), message.payload, time.monotonic())
            except aiomqtt.MqttError as exc:
                self.last_error = str(exc) or type(exc).__name__
            except Exception as exc:  # noqa: BLE001 - an observer must outlive anything a broker sends
                self.last_error = repr(exc)
            self._connected.clear()
            await asyncio.sleep(limits.observer_reconnect_ms / 1000)

    def on_message(self, topic: str, payload: Any, t: float) -> None:
        """Check one frame and note it (also called directly by tests)."""
        with self._lock:  # snapshot() copies `dropped` from another thread
            env = self._checker.check_counted(topic, payload, self._seen.dropped)
        if env is None:
            return
        body = env.body if isinstance(env.body, dict) else {}
        with self._lock:
            s = self._seen
            if env.kind == Kind.STATUS:
                info = body.get("info")
                s.status[env.sender] = {**(dict(info) if isinstance(info, dict) else {}),
                                        "height": body.get("height"), "round": body.get("round")}
                return
            if env.kind not in STEP_KINDS:
                return
            kind = str(env.kind)
            s.sent[(env.sender, kind)] = s.sent.get((env.sender, kind), 0) + 1
            if len(s.frames) >= self._frames_max:
                s.omitted += 1
                return
            h, r = body.get("height", 0), body.get("round", 0)
            s.frames.append(Frame(t, env.sender, kind, h if isinstance(h, int) else 0, r if isinstance(r, int) else 0))
