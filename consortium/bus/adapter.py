"""The bus adapter: one MQTT connection per node, every incoming frame checked.

Theory of operation
- A background task keeps one aiomqtt connection alive: connect (with the
  member's broker password when given), subscribe, flush the outbox, then wait
  for the disconnect; on any failure sleep a bounded, jittered exponential
  backoff and start again. Nothing here ever raises into the node.
- Each raw message is checked synchronously in paho's read callback
  (`_PahoClient._on_message`), before anything queues it, in this order:
  topic shape and chain -> size -> envelope (decode, canonical form, shape,
  kind, chain, known sender, signature) -> topic sender == envelope sender and
  topic kind == envelope kind -> addressed to us. The envelope signature of a
  TX frame is not checked (codec.SELF_SIGNED_KINDS): it carries a batch of
  transactions, each signed by its actor and verified by the ledger at
  admission, one Ed25519 check per tx per node (docs/CONSENSUS.md). A bad frame is counted in
  `dropped[reason]` and forgotten; our own frames (topic sender == node id,
  the broker echoes them back) are skipped without counting.
- A byte-identical copy of a recent good frame on the same topic is delivered
  again WITHOUT re-checking its signature (a replay costs a hash, not a
  verification) and counted in `repeated`, not dropped: the replica re-sends
  its signed votes on purpose (retransmission after loss or a healed
  partition), and a copy the node could not use the first time (filtered,
  too far ahead) must still reach it. The replica ignores what it already has.
- Good frames go to a bounded queue. When it is full the OLDEST frame is
  dropped (counted "queue_full"): consensus is driven by the newest heights and
  rounds, and timeouts plus sync recover whatever was lost.
- A session that went deaf is ended: a node hears its own frames back (it subscribes
  to every broadcast), so when nothing at all arrived for limits.bus_echo_silence_ms
  after something was published, the broker no longer serves this connection (amqtt
  0.12.1 keeps the socket of a session another connection took over open, answering
  pings but delivering nothing): the adapter reconnects (counted in `deaf`).
- Publishing while disconnected does not fail: the frame goes to a bounded
  outbox sent first on reconnect; when the outbox is full its OLDEST frame is
  dropped (counted in `unsent["outbox_full"]`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiomqtt
import paho.mqtt.client as paho

from consortium import codec, crypto, limits
from consortium.bus import topics
from consortium.codec import Envelope, Kind, Reason
from consortium.errors import ConsortiumError, LocalError, RemoteError

log = logging.getLogger(__name__)

# Drop reasons, in addition to codec.Reason (all are plain strings in `dropped`).
TOPIC = topics.TOPIC  # topic not of our shapes, not under our chain, not UTF-8
SENDER_TOPIC_MISMATCH = "sender_topic_mismatch"  # impersonation or a replay on another topic
KIND_TOPIC_MISMATCH = "kind_topic_mismatch"
NOT_FOR_US = "not_for_us"  # a direct message to another node (broker misrouted it)
QUEUE_FULL = "queue_full"  # the node did not keep up; oldest frame dropped
INTERNAL = "internal"  # a bug on our side while checking; counted, never raised

DROP_REASONS: tuple[str, ...] = (
    TOPIC, *(str(r) for r in Reason), SENDER_TOPIC_MISMATCH, KIND_TOPIC_MISMATCH, NOT_FOR_US,
    QUEUE_FULL, INTERNAL,
)

# Reasons a publish did not reach the broker (in `unsent`).
OUTBOX_FULL = "outbox_full"
CLIENT_QUEUE_FULL = "client_queue_full"
PUBLISH_ERROR = "publish_error"

#: Kinds whose exact repeats are legitimate (periodic status, retried sync requests).
_REPEATABLE = frozenset({Kind.STATUS, Kind.SYNC_REQUEST})
#: Kinds not remembered for the repeat shortcut: legitimate repeats, and TX frames (their
#: envelope signature is not checked at all, so a repeat saves nothing; each tx is checked
#: by its own signature, and a copy is a duplicate for the mempool).
_NOT_REMEMBERED = _REPEATABLE | codec.SELF_SIGNED_KINDS
_NO_CONNECTION = frozenset({paho.MQTT_ERR_NO_CONN, paho.MQTT_ERR_CONN_LOST})


class FrameChecker:
    """The incoming-frame checks, without any I/O (unit-testable, no broker)."""

    def __init__(self, chain_id: str, node_id: str | None, keys: Mapping[str, bytes]) -> None:
        self.chain_id = chain_id
        self.node_id = node_id
        self.keys = keys
        self._recent: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self.repeated = 0  # good frames seen again (delivered without a second signature check)

    def check_counted(self, topic: str, payload: Any, dropped: dict[str, int]) -> Envelope | None:
        """For readers beside the node (status reader, bus observer): the envelope of a
        good frame; None for a cleared retained record (empty payload), our own frame, or
        a refused one (counted in `dropped` by its reason)."""
        if not isinstance(payload, (bytes, bytearray)) or not payload:
            return None
        try:
            return self.check(topic, bytes(payload))
        except ConsortiumError as exc:
            reason = str(getattr(exc, "reason", "error"))
            dropped[reason] = dropped.get(reason, 0) + 1
            return None

    def check(self, topic: str, payload: bytes) -> Envelope | None:
        """The envelope of a good frame, None for our own; RemoteError(reason) otherwise."""
        where = topics.parse(topic, self.chain_id)
        if where.sender == self.node_id:
            return None
        if len(payload) > limits.frame_bytes_max:
            raise RemoteError(Reason.TOO_LARGE, f"{len(payload)} bytes")
        key = None
        known = False
        if where.kind not in _NOT_REMEMBERED:
            key = crypto.digest(topic.encode() + b"\0" + payload)
            known = key in self._recent
        if known:  # these very bytes on this very topic passed every check before
            self.repeated += 1
            env = codec.decode_unverified(payload)
        else:
            env = codec.decode_envelope(payload, chain_id=self.chain_id, keys=self.keys, verify_self_signed=False)
        if env.sender != where.sender:
            raise RemoteError(SENDER_TOPIC_MISMATCH, f"{env.sender!r} on {where.sender!r}'s topic")
        if env.kind != where.kind:
            raise RemoteError(KIND_TOPIC_MISMATCH, f"{env.kind} on a {where.kind} topic")
        if where.recipient is not None and where.recipient != self.node_id:
            raise RemoteError(NOT_FOR_US, f"addressed to {where.recipient!r}")
        if key is not None:
            self._remember(key)
        return env

    def _remember(self, key: bytes) -> None:
        self._recent[key] = None
        if len(self._recent) > limits.bus_recent_frames_max:
            self._recent.popitem(last=False)


class _PahoClient(aiomqtt.Client):
    """aiomqtt client that hands every raw message to `sink` from paho's read
    callback instead of queueing it.

    Why override aiomqtt's (private) hook: the check runs before anything is
    queued, so a flood cannot grow an unchecked queue and no task is created per
    message; and aiomqtt's own conversion decodes the topic as UTF-8, which
    raises on a hostile topic and would tear the connection down. The message
    iterator therefore never yields; awaiting it just waits for the disconnect.
    aiomqtt is pinned <3 in pyproject; the broker tests exercise this hook."""

    def __init__(self, sink: Callable[[paho.MQTTMessage], None], **kwargs: Any) -> None:
        self._sink = sink
        super().__init__(**kwargs)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._sink(message)


@dataclass(frozen=True, slots=True)
class _Outgoing:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class BusAdapter:
    """A node's (or observer's) connection to the bus.

        async with BusAdapter(host=..., port=..., chain_id=..., node_id="hkma",
                              keys=genesis.keys(), username=..., password=...) as bus:
            await bus.wait_connected(5_000)
            await bus.publish(env.encode(), env.kind)
            async for env in bus.frames(): ...

    `node_id` None makes a read-only observer of broadcasts (status readers).
    """

    def __init__(self, *, host: str, port: int, chain_id: str, node_id: str | None,
                 keys: Mapping[str, bytes], username: str | None = None, password: str | None = None,
                 frames_queued_max: int = limits.bus_frames_queued_max, client_name: str | None = None) -> None:
        assert frames_queued_max >= 1
        self.host, self.port, self.chain_id, self.node_id = host, port, chain_id, node_id
        # MQTT client id prefix (a random suffix follows): a twin process publishes as its member
        # (node_id) under a client id of its own, or its connection would take over the member's session
        self.client_name = client_name or node_id or "observer"
        self._username, self._password = username, password
        self._checker = FrameChecker(chain_id, node_id, keys)
        self._frames: asyncio.Queue[Envelope] = asyncio.Queue(maxsize=frames_queued_max)
        self._outbox: collections.deque[_Outgoing] = collections.deque()
        self._client: _PahoClient | None = None  # set only while connected and flushed
        self._up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.dropped: dict[str, int] = {}
        self.unsent: dict[str, int] = {}
        self.received = 0  # good frames delivered to the queue
        self.published = 0  # frames handed to the broker connection
        self.connections = 0  # successful connects so far (reconnects = connections - 1)
        self.last_error: str | None = None  # why the last connection attempt or session ended
        self.client_id = ""  # MQTT client id of the current (or last) session
        self.deaf = 0  # sessions ended because nothing arrived after we published (see the module doc)
        self._unechoed_since: float | None = None  # monotonic s of the first publish since the last arrival

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> BusAdapter:
        self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def start(self) -> None:
        if self._task is not None:
            raise LocalError("BusAdapter started twice")
        self._task = asyncio.create_task(self._run(), name=f"bus-{self.node_id}")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def wait_connected(self, timeout_ms: int) -> bool:
        """True once connected (and subscribed); False if `timeout_ms` passed first."""
        try:
            await asyncio.wait_for(self._up.wait(), timeout_ms / 1000)
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------ receiving

    async def frames(self) -> AsyncIterator[Envelope]:
        """Checked frames from other senders, forever."""
        while True:
            yield await self._frames.get()

    async def next_frame(self, timeout_ms: int | None = None) -> Envelope:
        """The next checked frame; TimeoutError after `timeout_ms`."""
        if timeout_ms is None:
            return await self._frames.get()
        return await asyncio.wait_for(self._frames.get(), timeout_ms / 1000)

    def next_frame_nowait(self) -> Envelope | None:
        try:
            return self._frames.get_nowait()
        except asyncio.QueueEmpty:
            return None

    @property
    def frames_pending(self) -> int:
        return self._frames.qsize()

    def stats(self) -> dict[str, Any]:
        """Counters for status records and the dashboard."""
        return {"connected": self.connected, "connections": self.connections, "received": self.received,
                "published": self.published, "pending": self.frames_pending, "outbox": len(self._outbox),
                "repeated": self._checker.repeated, "dropped": dict(self.dropped), "unsent": dict(self.unsent),
                "client_id": self.client_id, "deaf": self.deaf}

    def _on_raw(self, message: paho.MQTTMessage) -> None:
        """Check one raw message (paho read callback). Never raises."""
        self._unechoed_since = None
        try:
            payload = message.payload
            env = self._checker.check(message.topic, payload if isinstance(payload, bytes) else bytes(payload))
        except UnicodeDecodeError:  # paho decodes the topic lazily, on .topic
            self._count_drop(TOPIC)
        except RemoteError as exc:
            self._count_drop(exc.reason)
        except Exception:
            n = self._count_drop(INTERNAL)
            if n & (n - 1) == 0:  # log the 1st, 2nd, 4th, ... not every one
                log.exception("bus %s: unexpected error while checking a frame (#%d)", self.node_id, n)
        else:
            if env is not None:
                self._deliver(env)

    def _deliver(self, env: Envelope) -> None:
        if self._frames.full():
            self._frames.get_nowait()
            self._count_drop(QUEUE_FULL)
        self._frames.put_nowait(env)
        self.received += 1

    def _count_drop(self, reason: str) -> int:
        reason = str(reason)
        n = self.dropped.get(reason, 0) + 1
        self.dropped[reason] = n
        return n

    # ------------------------------------------------------------ publishing

    async def publish(self, payload: bytes, kind: Kind | str, to: str | None = None,
                      retain: bool = False, qos: int = 0) -> bool:
        """Publish an encoded envelope of `kind` on our topic (to one node if `to`).

        True if handed to the broker connection; False if buffered for the
        next connection or dropped (then counted in `unsent`). Never raises for
        a broker problem; LocalError for our own mistakes (observer, oversize)."""
        if self.node_id is None:
            raise LocalError("an observer BusAdapter cannot publish")
        if len(payload) > limits.frame_bytes_max:
            raise LocalError(f"frame of {len(payload)} bytes > frame_bytes_max")
        kind = Kind(kind)
        topic = (topics.direct(self.chain_id, self.node_id, to, kind) if to is not None
                 else topics.broadcast(self.chain_id, self.node_id, kind))
        return await self._send(_Outgoing(topic, payload, qos, retain))

    async def publish_envelope(self, env: Envelope, to: str | None = None, retain: bool = False) -> bool:
        """Publish our own envelope; its kind names the topic (retain for status)."""
        if env.sender != self.node_id:
            raise LocalError(f"envelope of {env.sender!r} published by {self.node_id!r}")
        return await self.publish(env.encode(), env.kind, to=to, retain=retain)

    async def _send(self, out: _Outgoing) -> bool:
        client = self._client
        if client is None:
            self._buffer(out)
            return False
        try:
            await client.publish(out.topic, out.payload, qos=out.qos, retain=out.retain,
                                 timeout=limits.bus_publish_timeout_ms / 1000)
        except aiomqtt.MqttCodeError as exc:
            if exc.rc in _NO_CONNECTION:
                self._buffer(out)
            else:
                self._count_unsent(CLIENT_QUEUE_FULL if exc.rc == paho.MQTT_ERR_QUEUE_SIZE else PUBLISH_ERROR)
            return False
        except aiomqtt.MqttError:  # a timeout: the connection is stalled or going away
            self._count_unsent(PUBLISH_ERROR)
            return False
        self.published += 1
        if self._unechoed_since is None:
            self._unechoed_since = time.monotonic()
        return True

    def _buffer(self, out: _Outgoing) -> None:
        if len(self._outbox) >= limits.bus_outbox_frames_max:
            self._outbox.popleft()
            self._count_unsent(OUTBOX_FULL)
        self._outbox.append(out)

    def _count_unsent(self, reason: str) -> None:
        self.unsent[reason] = self.unsent.get(reason, 0) + 1

    # ------------------------------------------------------------ the connection

    async def _run(self) -> None:
        """Connect, serve, and reconnect with backoff, until cancelled."""
        failures = 0
        while True:
            was = self.connections
            try:
                await self._session()
            except aiomqtt.MqttError as exc:
                self.last_error = str(exc) or type(exc).__name__
            except Exception as exc:  # the connection task must never die
                self.last_error = repr(exc)
                log.exception("bus %s: unexpected error in the connection task", self.node_id)
            failures = 0 if self.connections > was else failures + 1
            if failures in (1, 10):
                log.warning("bus %s: broker %s:%s unavailable (%s); retrying", self.node_id,
                            self.host, self.port, self.last_error)
            await asyncio.sleep(_backoff_ms(failures) / 1000)

    async def _session(self) -> None:
        self.client_id = f"{self.client_name}-{secrets.token_hex(4)}"  # in the status record (session-takeover)
        client = _PahoClient(
            self._on_raw, hostname=self.host, port=self.port, username=self._username,
            password=self._password, identifier=self.client_id,
            keepalive=limits.bus_keepalive_ms // 1000, clean_session=True,
            max_queued_outgoing_messages=limits.bus_client_messages_queued_max,
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],  # small frames, latency-bound
        )
        async with client:
            for topic_filter in topics.subscriptions(self.chain_id, self.node_id):
                await client.subscribe(topic_filter, qos=0)
            try:
                await self._flush_outbox(client)
                self._client = client
                self.connections += 1
                self._up.set()
                self._unechoed_since = None
                reader = asyncio.ensure_future(self._read(client))
                watchdog = asyncio.ensure_future(self._watch_deaf())
                try:
                    done, _ = await asyncio.wait({reader, watchdog}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in (reader, watchdog):
                        task.cancel()
                for task in done:
                    task.result()  # the disconnect's MqttError, or the watchdog's
            finally:
                self._client = None
                self._up.clear()

    @staticmethod
    async def _read(client: _PahoClient) -> None:
        async for _ in client.messages:  # never yields (see _PahoClient); ends on disconnect
            pass

    async def _watch_deaf(self) -> None:
        """End the session when nothing arrived for bus_echo_silence_ms after we published."""
        while True:
            await asyncio.sleep(limits.bus_echo_silence_ms / 4000)
            since = self._unechoed_since
            if since is not None and time.monotonic() - since > limits.bus_echo_silence_ms / 1000:
                self.deaf += 1
                log.warning("bus %s: nothing arrived for %d ms after publishing (session %s taken over or "
                            "dead); reconnecting", self.node_id, limits.bus_echo_silence_ms, self.client_id)
                raise aiomqtt.MqttError(f"deaf session: nothing arrived for {limits.bus_echo_silence_ms} ms")

    async def _flush_outbox(self, client: _PahoClient) -> None:
        """Send what was published while we were away, oldest first. A frame
        leaves the outbox only once published; publish() keeps buffering until
        the outbox is empty, so order is kept."""
        while self._outbox:
            out = self._outbox[0]
            await client.publish(out.topic, out.payload, qos=out.qos, retain=out.retain,
                                 timeout=limits.bus_publish_timeout_ms / 1000)
            self._outbox.popleft()
            self.published += 1


def _backoff_ms(failures: int) -> float:
    """Exponential from limits.bus_reconnect_delay_ms_min to _max, with
    jitter so that seven nodes do not reconnect in lockstep."""
    if failures == 0:
        return limits.bus_reconnect_delay_ms_min
    ceiling = min(limits.bus_reconnect_delay_ms_max, limits.bus_reconnect_delay_ms_min * 2 ** min(failures, 16))
    return random.uniform(ceiling / 2, ceiling)
