"""The bus adapter's per-frame overhead (issue 12, third round), shown to change nothing a
peer or the node can see: QoS 0 frames published without awaiting the write reach a real
broker byte for byte, on the same topics, retained where asked, in publish order (also
when the socket takes a large frame piece by piece), exactly as the former awaited
aiomqtt publish delivered them; a stalled broker connection queues at most
limits.bus_write_queue_frames_max frames and counts the rest as unsent; the reader's
wait (one future, no task) hands out the same frames and drops the same ones as the
former asyncio.Queue with wait_for; parsed topics are remembered only when well formed
and never beyond limits.bus_topics_cached_max."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consortium import limits
from consortium.bus import broker as brokers
from consortium.bus import topics
from consortium.bus.adapter import QUEUE_FULL, WRITE_QUEUE_FULL, BusAdapter, FrameChecker
from consortium.codec import Kind
from consortium.errors import RemoteError
from tests.bus.conftest import CHAIN, Home, adapter, run, running_mosquitto, start
from tests.bus.test_live import until_connected, vote
from tests.conftest import NODES

WAIT_S = 10


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    from consortium.home import init_home, load_credentials

    path = tmp_path_factory.mktemp("busfast") / "home"
    genesis = init_home(path, NODES, CHAIN, force=False)
    return Home(path, genesis, load_credentials(path))


@pytest.fixture
def mosquitto(home: Home, tmp_path: Path) -> Iterator[brokers.Broker]:
    with running_mosquitto(home, tmp_path / "run") as handle:  # its SIGCONT matters: a test SIGSTOPs it
        yield handle


def reader(broker: brokers.Broker, home: Home) -> aiomqtt.Client:
    """A plain MQTT subscriber with member sdb's credentials (the broker lets it read every
    broadcast and the direct frames to sdb)."""
    return aiomqtt.Client(broker.host, broker.port, username="sdb", password=home.creds["sdb"]["password"],
                          identifier=f"busfast-reader-{os.getpid()}")


async def collect(client: aiomqtt.Client, n: int) -> list[tuple[str, bytes, bool]]:
    got: list[tuple[str, bytes, bool]] = []
    async with asyncio.timeout(WAIT_S):
        async for m in client.messages:
            assert isinstance(m.payload, bytes)
            got.append((str(m.topic), m.payload, bool(m.retain)))
            if len(got) == n:
                return got
    return got


def small_sndbuf(bus: BusAdapter) -> None:
    """A tiny kernel send buffer: a large frame then takes many writes (paho queues the rest
    and the loop writes it when the socket is writable), and later frames queue behind it."""
    assert bus._client is not None
    sock = bus._client._client.socket()
    assert isinstance(sock, socket.socket)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


def frames_to_send() -> list[tuple[bytes, Kind, str | None, bool]]:
    """(payload, kind, recipient, retain): small and large, broadcast and direct, retained."""
    big = bytes(range(256)) * (900_000 // 256)
    return [
        (b"v1" * 50, Kind.PREVOTE, None, False),
        (b"P" + big, Kind.PROPOSAL, None, False),
        (b"v2" * 50, Kind.PRECOMMIT, None, False),
        (b"s" * 300, Kind.STATUS, None, True),
        (b"sync" * 1000, Kind.SYNC_RESPONSE, "sdb", False),
        (b"Q" + big[:500_000], Kind.PROPOSAL, None, False),
        (b"r" * 40, Kind.TX_REFUSED, "sdb", False),
        (b"v3" * 50, Kind.PREVOTE, None, False),
    ]


def test_frames_published_without_awaiting_arrive_as_the_awaited_publish_sent_them(
        mosquitto: brokers.Broker, home: Home) -> None:
    """Frames of every shape (small votes, 0.5-0.9 MB proposals that the socket takes piece
    by piece, a retained status, direct sync replies and refusals) handed to `send`
    without awaiting reach a subscriber with the same topic, bytes and retain flag, in the
    order they were published: the same sequence the former path (aiomqtt's awaited
    publish, topics from bus.topics) delivers for the same frames."""
    frames = frames_to_send()

    async def body() -> tuple[list[Any], list[Any]]:
        async with reader(mosquitto, home) as sub:
            await sub.subscribe(f"{topics.root(CHAIN)}/hkma/#")
            # the new path: BusAdapter.send, nothing awaited between frames
            async with adapter(mosquitto, home, "hkma") as bus:
                await until_connected(bus)
                small_sndbuf(bus)
                assert all(bus.send(p, k, to=to, retain=r) for p, k, to, r in frames)
                assert bus.stats()["unsent"] == {} and bus.published == len(frames)
                new = await collect(sub, len(frames))
            # the former path: every frame awaited until paho wrote it
            old_client = aiomqtt.Client(mosquitto.host, mosquitto.port, username="hkma",
                                        password=home.creds["hkma"]["password"], identifier="busfast-old")
            async with old_client:
                for p, k, to, r in frames:
                    topic = (topics.direct(CHAIN, "hkma", to, k) if to is not None
                             else topics.broadcast(CHAIN, "hkma", k))
                    await old_client.publish(topic, p, qos=0, retain=r, timeout=WAIT_S)
                old = await collect(sub, len(frames))
        return new, old

    new, old = run(body())
    assert [(t, len(p)) for t, p, _ in new] == [(t, len(p)) for t, p, _ in old]
    assert new == old


def test_a_stalled_broker_connection_queues_a_bounded_number_of_frames_and_counts_the_rest(
        mosquitto: brokers.Broker, home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the broker does not read (SIGSTOP), frames published without awaiting pile
    up in paho only up to limits.bus_write_queue_frames_max; every further frame is
    refused at once and counted in unsent["write_queue_full"] (published + refused = all,
    memory bounded). Once the broker runs again, exactly the accepted frames arrive, in
    order, and publishing works again."""
    bound = 4
    monkeypatch.setattr(limits, "bus_write_queue_frames_max", bound)
    payload = b"x" * (limits.frame_bytes_max - 16)
    total = 12

    async def body() -> None:
        assert mosquitto.pid is not None
        async with reader(mosquitto, home) as sub:
            await sub.subscribe(f"{topics.root(CHAIN)}/hkma/#")
            async with adapter(mosquitto, home, "hkma") as bus:
                await until_connected(bus)
                small_sndbuf(bus)
                assert bus._client is not None
                os.kill(mosquitto.pid, signal.SIGSTOP)
                try:
                    accepted = []
                    for i in range(total):
                        if bus.send(i.to_bytes(4, "big") + payload, Kind.PROPOSAL):
                            accepted.append(i)
                        assert bus._client.write_queued() <= bound
                        await asyncio.sleep(0)  # the loop may write what the socket takes
                finally:
                    os.kill(mosquitto.pid, signal.SIGCONT)
                refused = bus.stats()["unsent"].get(WRITE_QUEUE_FULL, 0)
                assert refused >= total - bound - 2 and len(accepted) + refused == total
                assert bus.published == len(accepted) and accepted == list(range(len(accepted)))
                got = await collect(sub, len(accepted))
                assert [int.from_bytes(p[:4], "big") for _, p, _ in got] == accepted
                assert bus.send(b"after", Kind.PREVOTE)
                (_, p, _), = await collect(sub, 1)
                assert p == b"after"

    run(body())


def test_a_publish_while_disconnected_is_buffered_and_flushed_in_order(
        mosquitto: brokers.Broker, home: Home, tmp_path: Path) -> None:
    """Frames sent while the broker is gone go to the outbox (counted, not raised) and are
    written in order, ahead of anything newer, once the adapter is connected again."""

    async def body() -> None:
        async with adapter(mosquitto, home, "hkma") as bus:
            await until_connected(bus)
            allowed = asyncio.Event()  # the adapter reconnects only once the reader listens
            session = bus._session

            async def gated() -> None:
                await allowed.wait()
                await session()

            bus._session = gated  # type: ignore[method-assign]
            mosquitto.kill()
            while bus.connected:
                await asyncio.sleep(0.01)
            assert not bus.send(b"one", Kind.PREVOTE) and not bus.send(b"two", Kind.PRECOMMIT)
            assert bus.stats()["outbox"] == 2
            again = start("mosquitto", home, tmp_path / "run2", port=mosquitto.port)
            try:
                async with reader(again, home) as sub:
                    await sub.subscribe(f"{topics.root(CHAIN)}/hkma/#")
                    allowed.set()
                    await until_connected(bus)
                    assert bus.stats()["outbox"] == 0
                    assert bus.send(b"three", Kind.PREVOTE)
                    got = await collect(sub, 3)
                    assert [p for _, p, _ in got] == [b"one", b"two", b"three"]
            finally:
                again.stop()

    run(body())


# ---------------------------------------------------------------- the reader's wait

def unstarted(home: Home, queued_max: int) -> BusAdapter:
    return BusAdapter(host="127.0.0.1", port=1, chain_id=CHAIN, node_id="hkma", keys=home.genesis.keys(),
                      frames_queued_max=queued_max)


@settings(max_examples=60, deadline=None)
@given(queued_max=st.integers(1, 4),
       ops=st.lists(st.one_of(st.integers(1, 6), st.just("get"), st.just("nowait")), max_size=30))
def test_the_frame_wait_hands_out_and_drops_what_the_former_queue_did(
        home: Home, queued_max: int, ops: list[int | str]) -> None:
    """Any sequence of arrivals (n frames at once), timed reads and non-waiting reads gives
    the same frames, the same timeouts and the same queue_full drops as the former
    asyncio.Queue(maxsize) read with wait_for (the old implementation, kept here)."""
    env = vote(home, "sdb", 1)

    async def both() -> tuple[list[Any], list[Any]]:
        bus = unstarted(home, queued_max)
        old: asyncio.Queue[Any] = asyncio.Queue(maxsize=queued_max)
        old_dropped = 0
        seq = 0
        new_out: list[Any] = []
        old_out: list[Any] = []
        for op in ops:
            if isinstance(op, int):
                for _ in range(op):
                    seq += 1
                    frame = (seq, env)
                    bus._deliver(frame)  # type: ignore[arg-type]
                    if old.full():
                        old.get_nowait()
                        old_dropped += 1
                    old.put_nowait(frame)
            elif op == "get":
                for out, get in ((new_out, lambda: bus.next_frame(1)),
                                 (old_out, lambda: asyncio.wait_for(old.get(), 0.001))):
                    try:
                        out.append(await get())
                    except TimeoutError:
                        out.append("timeout")
            else:
                new_out.append(bus.next_frame_nowait())
                old_out.append(None if old.empty() else old.get_nowait())
            assert bus.frames_pending == old.qsize()
        assert bus.dropped.get(QUEUE_FULL, 0) == old_dropped
        return new_out, old_out

    new_out, old_out = asyncio.run(both())
    assert new_out == old_out


def test_a_frame_arriving_during_the_wait_ends_it_at_once_and_a_cancelled_wait_leaves_none(
        home: Home) -> None:
    """A reader waiting (one future, no task) gets a frame delivered by paho's callback as
    soon as it arrives, long before its timeout; a reader cancelled while waiting leaves no
    waiter behind (the next wait works); a wait with nothing arriving ends in TimeoutError."""
    env = vote(home, "sdb", 1)

    async def body() -> None:
        bus = unstarted(home, 8)
        loop = asyncio.get_running_loop()
        loop.call_later(0.02, bus._deliver, env)
        t0 = loop.time()
        assert await bus.next_frame(5_000) == env
        assert loop.time() - t0 < 2.5 and bus._waiter is None
        waiting = asyncio.ensure_future(bus.next_frame(5_000))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert bus._waiter is None
        with pytest.raises(TimeoutError):
            await bus.next_frame(5)
        loop.call_later(0.01, bus._deliver, env)
        assert await bus.next_frame() == env  # no timeout at all

    run(body())


# ---------------------------------------------------------------- topics

def test_remembered_topics_give_the_verdicts_of_a_fresh_parse_and_stay_bounded(
        home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker remembers parsed topics: a remembered topic yields the same Topic as
    bus.topics.parse, a bad topic is refused every time (never remembered), and no more
    than limits.bus_topics_cached_max topics are held."""
    monkeypatch.setattr(limits, "bus_topics_cached_max", 3)
    checker = FrameChecker(CHAIN, "hkma", home.genesis.keys())
    good = [topics.broadcast(CHAIN, m, k) for m in ("sdb", "bank-hk", "hkma") for k in (Kind.PREVOTE, Kind.STATUS)]
    good.append(topics.direct(CHAIN, "sdb", "hkma", Kind.SYNC_RESPONSE))
    bad = [f"{topics.root(CHAIN)}/sdb/nonsense", f"{topics.root('other-1')}/sdb/prevote",
           f"{topics.root(CHAIN)}/../prevote", f"{topics.root(CHAIN)}/sdb/to/hkma"]
    for _ in range(2):
        for t in good + bad:
            fresh: Any
            try:
                fresh = topics.parse(t, CHAIN)
            except RemoteError as exc:
                fresh = exc.reason
            try:
                checker.check(t, b"\x00")  # the payload is refused later; the topic decides first
            except RemoteError as exc:
                if exc.reason == topics.TOPIC:
                    assert fresh == topics.TOPIC, t
                    continue
            assert checker._topics.get(t, fresh) == fresh, t
            assert fresh != topics.TOPIC, t
            assert len(checker._topics) <= 3
    assert not any(t in checker._topics for t in bad)


# ---------------------------------------------------------------- the socket reader

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _publish(topic: bytes, payload: bytes, flags: int = 0, mid: bytes = b"") -> bytes:
    body = len(topic).to_bytes(2, "big") + topic + mid + payload
    return bytes([0x30 | flags]) + _varint(len(body)) + body


def _reference(data: bytes) -> tuple[int, list[tuple[bytes, Any]]]:
    """The former reader: paho's remaining-length loop and paho's decode_publish, packet by
    packet, taking QoS 0 PUBLISH packets that paho decodes without error."""
    from paho.mqtt import _packet
    from paho.mqtt.enums import MQTTProtocolVersion

    pos, out = 0, []  # type: tuple[int, list[tuple[bytes, Any]]]
    while pos < len(data):
        command = data[pos]
        if command & 0xF0 != 0x30 or (command & 0x06) >> 1 != 0:
            break
        length, mult, i, count = 0, 1, pos + 1, 0
        while True:
            if i >= len(data):
                return pos, out
            byte = data[i]
            i += 1
            count += 1
            if count > 4:
                return pos, out  # paho: MQTT_ERR_PROTOCOL
            length += (byte & 127) * mult
            mult *= 128
            if byte & 128 == 0:
                break
        if i + length > len(data):
            break
        try:
            p = _packet.decode_publish(command, data[i:i + length], MQTTProtocolVersion.MQTTv311)
        except Exception:  # paho: MalformedPacket, a protocol error that ends the connection
            break
        out.append((p.topic, p.payload))
        pos = i + length
    return pos, out


_packets = st.one_of(
    st.builds(_publish, st.binary(min_size=1, max_size=40), st.binary(max_size=300), st.sampled_from([0, 1, 8, 9])),
    st.builds(_publish, st.binary(max_size=3), st.binary(max_size=5), st.just(2), st.just(b"\x00\x01")),  # QoS 1
    st.just(b"\xd0\x00"),  # PINGRESP
    st.just(b"\x90\x03\x00\x01\x00"),  # SUBACK
    st.just(b"\x30\x00"), st.just(b"\x30\x01\x00"), st.just(b"\x30\x03\x00\x05x"),  # malformed PUBLISHes
    st.just(b"\x30\x02\x00\x00"),  # empty topic: malformed in MQTT 3.1.1
    st.just(b"\x30\xff\xff\xff\xff\x01"),  # a remaining length of 5 bytes
    st.builds(lambda n: _publish(b"t", b"x" * n), st.integers(100, 20_000)),  # multi-byte lengths
)


@settings(max_examples=300, deadline=None)
@given(packets=st.lists(_packets, max_size=12), cut=st.integers(0, 1_000_000))
def test_the_socket_reader_takes_exactly_the_publishes_paho_would_have_decoded(
        packets: list[bytes], cut: int) -> None:
    """On any stream of MQTT packets (QoS 0 publishes with any topic bytes, payloads and
    DUP/RETAIN bits, QoS 1 publishes, PINGRESP, SUBACK, malformed publishes, long remaining
    lengths), cut anywhere, the reader's parser takes the same leading QoS 0 publishes,
    with the same topic and payload bytes, as paho's own reading and decoding; it stops
    where paho would see another packet, an incomplete one or a malformed one."""
    from consortium.bus.adapter import qos0_publishes

    data = b"".join(packets)
    data = data[:cut % (len(data) + 1)]
    assert qos0_publishes(data) == _reference(data)


def test_the_socket_reader_delivers_what_paho_delivers_and_keeps_the_connection_alive(
        mosquitto: brokers.Broker, home: Home) -> None:
    """Through a real broker, the adapter's reader hands its sink every PUBLISH (bursts of
    small frames, frames larger than its window, a retained record) with the same topic
    and payload bytes, in the same order, as a plain aiomqtt subscriber (paho's reader)
    receives them; the other packets still reach paho: a keepalive ping is answered, and
    the reader counts arriving bytes for paho's keepalive."""
    from consortium.bus.adapter import _PahoClient

    sent = [(f"{topics.root(CHAIN)}/sdb/prevote", bytes([i % 256]) * (20 + i)) for i in range(200)]
    sent += [(f"{topics.root(CHAIN)}/sdb/proposal", b"P" * (limits.bus_read_bytes_max * 3 + 7)),
             (f"{topics.root(CHAIN)}/sdb/status", b"S" * 1000)]
    sent += [(f"{topics.root(CHAIN)}/sdb/precommit", bytes([i % 256]) * (5 + i)) for i in range(50)]

    async def body() -> None:
        got: list[tuple[str, bytes]] = []
        new = _PahoClient(lambda t, p: got.append((t.decode(), p)), hostname=mosquitto.host, port=mosquitto.port,
                          username="hkma", password=home.creds["hkma"]["password"], identifier="busfast-new")
        by_paho: list[Any] = []
        async with new, reader(mosquitto, home) as old:
            paho_sink = new._client.on_message
            assert paho_sink is not None

            def counted(*args: Any) -> None:
                by_paho.append(args)
                paho_sink(*args)

            new._client.on_message = counted
            for c in (new, old):
                await c.subscribe(f"{topics.root(CHAIN)}/sdb/#")
            pub = aiomqtt.Client(mosquitto.host, mosquitto.port, username="sdb",
                                 password=home.creds["sdb"]["password"], identifier="busfast-pub")
            async with pub:
                for t, p in sent:
                    await pub.publish(t, p, qos=0, retain=t.endswith("/status"))
            theirs = [(t, p) for t, p, _ in await collect(old, len(sent))]
            async with asyncio.timeout(WAIT_S):
                while len(got) < len(sent):
                    await asyncio.sleep(0.01)
            assert got == theirs == sent
            assert len(by_paho) < len(sent) // 2  # most were taken by the adapter's reader
            paho_client = new._client
            before = paho_client._last_bytes_received
            await asyncio.sleep(0.05)
            async with pub:
                for t, p in sent[:5]:
                    await pub.publish(t, p, qos=0)
            async with asyncio.timeout(WAIT_S):
                while len(got) < len(sent) + 5:
                    await asyncio.sleep(0.01)
            assert paho_client._last_bytes_received > before
            paho_client._send_pingreq()
            assert paho_client._ping_t != 0
            async with asyncio.timeout(WAIT_S):
                while paho_client._ping_t != 0:  # PINGRESP read and handled by paho
                    await asyncio.sleep(0.01)

    run(body())
