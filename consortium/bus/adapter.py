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
  rounds, and timeouts plus sync recover whatever was lost. The queue has one
  reader (the node); its wait is a single future, woken by the next frame or by
  a timer (no task per wait).
- A session that went deaf is ended: a node hears its own frames back (it subscribes
  to every broadcast), so when nothing at all arrived for limits.bus_echo_silence_ms
  after something was published, the broker no longer serves this connection (amqtt
  0.12.1 keeps the socket of a session another connection took over open, answering
  pings but delivering nothing): the adapter reconnects (counted in `deaf`).
- Publishing while disconnected does not fail: the frame goes to a bounded
  outbox sent first on reconnect; when the outbox is full its OLDEST frame is
  dropped (counted in `unsent["outbox_full"]`).
- Publishing at QoS 0 does not wait: the frame is handed to paho and written to
  the socket at once (what the socket does not take now is written, in order,
  when it becomes writable). Frames leave in the order they were published. A
  stalled connection cannot grow memory: beyond limits.bus_write_queue_frames_max
  frames not yet written, a new frame is counted in `unsent["write_queue_full"]`
  and not queued. Publishing from inside a paho callback is not allowed (paho's
  callback lock is not reentrant); the node publishes from its own loop only.
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
WRITE_QUEUE_FULL = "write_queue_full"  # the connection is stalled: frames not yet written reached the bound
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
        self._topics: dict[str, topics.Topic] = {}  # well-formed topics already parsed (a pure function)
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
        where = self._topics.get(topic)
        if where is None:
            where = topics.parse(topic, self.chain_id)  # raises for a bad topic: never remembered
            if len(self._topics) >= limits.bus_topics_cached_max:
                self._topics.clear()
            self._topics[topic] = where
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


#: publish_nowait: the frame was queued but the connection broke while writing it.
WRITE_FAILED = -1


class _PahoClient(aiomqtt.Client):
    """aiomqtt client that hands every raw message to `sink` from paho's read
    callback instead of queueing it.

    Why override aiomqtt's (private) hook: the check runs before anything is
    queued, so a flood cannot grow an unchecked queue and no task is created per
    message; and aiomqtt's own conversion decodes the topic as UTF-8, which
    raises on a hostile topic and would tear the connection down. The message
    iterator therefore never yields; awaiting it just waits for the disconnect.
    aiomqtt is pinned <3 in pyproject; the broker tests exercise this hook."""

    def __init__(self, sink: Callable[[bytes, bytes], None], **kwargs: Any) -> None:
        self._sink = sink  # (topic bytes, payload) of every PUBLISH received
        self._deferring = False  # inside publish_nowait: paho's write registration is ours to make
        super().__init__(**kwargs)
        # paho builds a reason code and a properties object for every QoS 0 packet it wrote, only to
        # call aiomqtt's on_publish, which matters to awaited publishes alone (see `publish`)
        self._client.on_publish = None

    async def publish(self, *args: Any, **kwargs: Any) -> None:
        """aiomqtt's awaited publish (QoS > 0): it needs paho's on_publish callback."""
        self._client.on_publish = self._on_publish
        await super().publish(*args, **kwargs)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        # a PUBLISH paho read (QoS > 0, or after a packet of another kind; see _read_ready)
        self._sink(message._topic, bytes(message.payload))

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        """aiomqtt's, with `_read_ready` as the socket's reader (paho calls this from the
        connecting thread: hence call_soon_threadsafe)."""
        def create_misc_task() -> None:
            self._misc_task = self._loop.create_task(self._misc_loop())

        self._loop.call_soon_threadsafe(self._loop.add_reader, sock.fileno(), self._read_ready)
        self._loop.call_soon_threadsafe(create_misc_task)

    def _read_ready(self) -> None:
        """The socket is readable. The complete QoS 0 PUBLISH packets at the head of what
        arrived (all a node receives in steady state: it subscribes at QoS 0) are taken
        here, up to limits.bus_read_bytes_max per call, and handed to the sink in order,
        in one recv instead of paho's three or more per packet and without paho's message
        objects; anything else (another packet type, a packet not yet complete or larger
        than the window, a malformed one, MQTT 5) is left to paho's own reader, which then
        reads it from the socket exactly as before."""
        c = self._client
        try:
            sock = c._sock
            if sock is None:
                return
            # paho is between packets; a plain TCP socket (TLS cannot peek), MQTT 3.1.1
            if c._in_packet["command"] == 0 and type(sock) is socket.socket and c._protocol != paho.MQTTv5:
                try:
                    head = sock.recv(limits.bus_read_bytes_max, socket.MSG_PEEK)
                except BlockingIOError:
                    return
                except OSError:
                    head = b""  # paho's read below meets the error and ends the connection
                taken, packets = qos0_publishes(head)
                if taken:
                    got = sock.recv(taken)
                    assert len(got) == taken, "peeked bytes are in the socket buffer"
                    with c._msgtime_mutex:  # paho's keepalive: bytes arrived
                        c._last_bytes_received = time.monotonic()
                    sink = self._sink
                    for topic, payload in packets:
                        sink(topic, payload)
                    return
            c.loop_read()
        except Exception as exc:  # aiomqtt's reader: an error is the connection's end
            if not self._disconnected.done():
                self._disconnected.set_exception(exc)

    def publish_nowait(self, topic: str, payload: bytes, retain: bool) -> int:
        """Publish at QoS 0 without waiting for the write: paho's rc (MQTT_ERR_SUCCESS:
        written, or queued behind earlier frames and written in order when the socket
        takes it; WRITE_FAILED: the connection broke while writing). aiomqtt's publish
        instead waits until paho's writer callback wrote the packet in a later loop
        iteration (an Event, a wait_for task and a timer per frame, and a wake-up of the
        loop's self-pipe to register the writer)."""
        self._deferring = True
        try:
            info = self._client.publish(topic, payload, 0, retain)
        finally:
            self._deferring = False
        if info.rc != paho.MQTT_ERR_SUCCESS:
            return int(info.rc)
        if not self._write():
            return WRITE_FAILED
        if self._client.want_write():  # the socket took only part: the rest when writable
            sock = self._client.socket()
            if sock is not None:
                self._loop.add_writer(sock.fileno(), self._write)
        return paho.MQTT_ERR_SUCCESS

    def write_queued(self) -> int:
        """Packets handed to paho and not yet written to the socket."""
        return len(self._client._out_packet)

    def _write(self) -> bool:
        """aiomqtt's writer callback: write what the socket takes; False (and the
        connection's end) if the write failed."""
        try:
            return self._client.loop_write() == paho.MQTT_ERR_SUCCESS
        except Exception as exc:
            if not self._disconnected.done():
                self._disconnected.set_exception(exc)
            return False

    def _on_socket_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if self._deferring:  # publish_nowait writes at once and registers what is left
            return
        if asyncio._get_running_loop() is self._loop:  # on the loop: no thread-safe hand-off needed
            self._loop.add_writer(sock.fileno(), self._write)
            return
        super()._on_socket_register_write(client, userdata, sock)


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
        self._frames: collections.deque[Envelope] = collections.deque()
        self._frames_max = frames_queued_max
        self._waiter: asyncio.Future[None] | None = None  # the reader's wait for the next frame
        self._broadcast_topics: dict[Kind | str, str] = {}  # kind -> our broadcast topic (a pure function of both)
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
            yield await self.next_frame()

    async def next_frame(self, timeout_ms: int | None = None) -> Envelope:
        """The next checked frame; TimeoutError after `timeout_ms`. One reader at a time.
        A frame already queued is returned at once; otherwise the wait is one future that
        the next frame (or a timer) completes: no task, no wait_for per call."""
        frames = self._frames
        if frames:
            return frames.popleft()
        if self._waiter is not None:
            raise LocalError("BusAdapter frames have one reader at a time")
        loop = asyncio.get_running_loop()
        deadline = None if timeout_ms is None else loop.time() + timeout_ms / 1000
        while not frames:
            if deadline is not None and loop.time() >= deadline:
                raise TimeoutError
            waiter = self._waiter = loop.create_future()
            timer = None if deadline is None else loop.call_at(deadline, wake, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
        return frames.popleft()

    def next_frame_nowait(self) -> Envelope | None:
        frames = self._frames
        return frames.popleft() if frames else None

    @property
    def frames_pending(self) -> int:
        return len(self._frames)

    def stats(self) -> dict[str, Any]:
        """Counters for status records and the dashboard."""
        return {"connected": self.connected, "connections": self.connections, "received": self.received,
                "published": self.published, "pending": self.frames_pending, "outbox": len(self._outbox),
                "repeated": self._checker.repeated, "dropped": dict(self.dropped), "unsent": dict(self.unsent),
                "client_id": self.client_id, "deaf": self.deaf}

    def _on_raw(self, message: paho.MQTTMessage) -> None:
        """Check one raw paho message. Never raises."""
        self._on_publish(message._topic, bytes(message.payload))

    def _on_publish(self, topic: bytes, payload: bytes) -> None:
        """Check one received PUBLISH (from the socket's read callback). Never raises."""
        self._unechoed_since = None
        try:
            env = self._checker.check(topic.decode(), payload)
        except UnicodeDecodeError:  # a topic that is not UTF-8 (paho's .topic raised the same)
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
        frames = self._frames
        if len(frames) >= self._frames_max:
            frames.popleft()
            self._count_drop(QUEUE_FULL)
        frames.append(env)
        self.received += 1
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

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
        a broker problem; LocalError for our own mistakes (observer, oversize).
        QoS 0 (the default) does not wait for the write (see `send`)."""
        if qos == 0:
            return self.send(payload, kind, to=to, retain=retain)
        return await self._send(_Outgoing(self._topic(payload, kind, to), payload, qos, retain))

    async def publish_envelope(self, env: Envelope, to: str | None = None, retain: bool = False) -> bool:
        """Publish our own envelope; its kind names the topic (retain for status)."""
        return self.send_envelope(env, to=to, retain=retain)

    def send_envelope(self, env: Envelope, to: str | None = None, retain: bool = False) -> bool:
        """`publish_envelope` without awaiting anything (QoS 0; see `send`)."""
        if env.sender != self.node_id:
            raise LocalError(f"envelope of {env.sender!r} published by {self.node_id!r}")
        return self.send(env.encode(), env.kind, to=to, retain=retain)

    def send(self, payload: bytes, kind: Kind | str, to: str | None = None, retain: bool = False) -> bool:
        """Publish at QoS 0 now: the frame is written to the socket at once or queued in
        paho behind our earlier frames (in order); True then. False if buffered for the
        next connection, or dropped because the connection is stalled (more than
        limits.bus_write_queue_frames_max frames not yet written; counted in
        `unsent["write_queue_full"]`) or paho refused it (counted as before)."""
        topic = self._topic(payload, kind, to)
        client = self._client
        if client is None:
            self._buffer(_Outgoing(topic, payload, 0, retain))
            return False
        if client.write_queued() >= limits.bus_write_queue_frames_max:
            self._count_unsent(WRITE_QUEUE_FULL)
            return False
        rc = client.publish_nowait(topic, payload, retain)
        if rc != paho.MQTT_ERR_SUCCESS:
            if rc in _NO_CONNECTION:
                self._buffer(_Outgoing(topic, payload, 0, retain))
            else:
                self._count_unsent(CLIENT_QUEUE_FULL if rc == paho.MQTT_ERR_QUEUE_SIZE else PUBLISH_ERROR)
            return False
        self.published += 1
        if self._unechoed_since is None:
            self._unechoed_since = time.monotonic()
        return True

    def _topic(self, payload: bytes, kind: Kind | str, to: str | None) -> str:
        """Our topic for a frame of `kind` (to one node if `to`); LocalError for an
        observer or an oversize frame. Broadcast topics are remembered per kind."""
        if self.node_id is None:
            raise LocalError("an observer BusAdapter cannot publish")
        if len(payload) > limits.frame_bytes_max:
            raise LocalError(f"frame of {len(payload)} bytes > frame_bytes_max")
        if to is None:
            topic = self._broadcast_topics.get(kind)
            if topic is None:
                kind = Kind(kind)
                topic = self._broadcast_topics[kind] = topics.broadcast(self.chain_id, self.node_id, kind)
            return topic
        return topics.direct(self.chain_id, self.node_id, to, Kind(kind))

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
            self._on_publish, hostname=self.host, port=self.port, username=self._username,
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
        leaves the outbox only once published (QoS 0: handed to paho, which writes
        in order; the outbox is smaller than limits.bus_write_queue_frames_max);
        publish() keeps buffering until the outbox is empty, so order is kept."""
        while self._outbox:
            out = self._outbox[0]
            if out.qos == 0:
                rc = client.publish_nowait(out.topic, out.payload, out.retain)
                if rc != paho.MQTT_ERR_SUCCESS:
                    raise aiomqtt.MqttCodeError(rc, "Could not publish message")
            else:
                await client.publish(out.topic, out.payload, qos=out.qos, retain=out.retain,
                                     timeout=limits.bus_publish_timeout_ms / 1000)
            self._outbox.popleft()
            self.published += 1


def qos0_publishes(data: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    """The complete QoS 0 PUBLISH packets (MQTT 3.1.1) at the start of `data`: how many
    bytes they take and their (topic, payload), in order. Stops at the first packet of
    another type or QoS, an incomplete one, or a malformed one (left to paho)."""
    out: list[tuple[bytes, bytes]] = []
    pos, n = 0, len(data)
    while pos + 2 <= n and data[pos] & 0xF6 == 0x30:  # PUBLISH, QoS 0 (DUP and RETAIN bits free)
        length, shift, i = 0, 0, pos + 1
        while True:  # the remaining length: at most 4 bytes, 7 bits each
            if i >= n or i - pos > 4:
                return pos, out
            b = data[i]
            i += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        end = i + length
        if end > n or length < 2:
            break
        tlen = (data[i] << 8) | data[i + 1]
        if tlen == 0 or 2 + tlen > length:  # malformed for MQTT 3.1.1: paho ends the connection
            break
        out.append((data[i + 2:i + 2 + tlen], data[i + 2 + tlen:end]))
        pos = end
    return pos, out


def wake(waiter: asyncio.Future[None]) -> None:
    """Complete a waiter future unless it is done (a timer's or a frame's wake-up)."""
    if not waiter.done():
        waiter.set_result(None)


def _backoff_ms(failures: int) -> float:
    """Exponential from limits.bus_reconnect_delay_ms_min to _max, with
    jitter so that seven nodes do not reconnect in lockstep."""
    if failures == 0:
        return limits.bus_reconnect_delay_ms_min
    ceiling = min(limits.bus_reconnect_delay_ms_max, limits.bus_reconnect_delay_ms_min * 2 ** min(failures, 16))
    return random.uniform(ceiling / 2, ceiling)
