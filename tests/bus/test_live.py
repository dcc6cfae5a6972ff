"""The bus adapter against real brokers (embedded amqtt and mosquitto), over real sockets."""

from __future__ import annotations

import asyncio
from typing import Any

import aiomqtt
import msgpack
import pytest

from consortium import codec, crypto, limits
from consortium.bus import broker as brokers
from consortium.bus import topics
from consortium.bus.adapter import BusAdapter
from consortium.codec import Envelope, Kind
from tests.bus.conftest import CHAIN, Home, adapter, run, start

pytestmark = pytest.mark.broker

WAIT_MS = 5_000
ROOT = topics.root(CHAIN)


def vote(home: Home, sender: str, height: int, *, chain: str = CHAIN, signer_id: str | None = None,
         kind: Kind = Kind.PREVOTE) -> Envelope:
    signer = home.signer(signer_id or sender)
    body = {"height": height, "round": 0, "block_id": None}
    sig = signer.sign(codec.signing_bytes(chain, sender, kind, body))
    return Envelope(codec.VERSION, chain, sender, kind, body, sig)


async def until_connected(*buses: BusAdapter) -> None:
    for bus in buses:
        assert await bus.wait_connected(WAIT_MS), f"{bus.node_id}: {bus.last_error}"


def raw_client(broker: brokers.Broker, home: Home, member: str | None) -> aiomqtt.Client:
    """A plain MQTT client: with `member`'s broker password, or anonymous."""
    if member is None:
        return aiomqtt.Client(broker.host, broker.port, timeout=5)
    return aiomqtt.Client(broker.host, broker.port, username=member,
                          password=home.creds[member]["password"], timeout=5)


async def drain(bus: BusAdapter, until_height: int) -> list[Envelope]:
    """Frames up to and including the sentinel vote at `until_height`."""
    got = []
    while True:
        env = await bus.next_frame(WAIT_MS)
        got.append(env)
        if env.body.get("height") == until_height:
            return got


def test_two_adapters_exchange_signed_frames(broker: brokers.Broker, home: Home) -> None:
    async def body() -> None:
        async with adapter(broker, home, "hkma") as a, adapter(broker, home, "sdb") as b, \
                adapter(broker, home, "nticbc") as c:
            await until_connected(a, b, c)
            sent = vote(home, "hkma", 1)
            assert await a.publish_envelope(sent)
            assert await b.next_frame(WAIT_MS) == sent
            assert await c.next_frame(WAIT_MS) == sent
            reply = codec.seal_envelope(CHAIN, "sdb", Kind.SYNC_RESPONSE, {"blocks": []}, home.signer("sdb"))
            assert await b.publish(reply.encode(), Kind.SYNC_RESPONSE, to="hkma")
            assert await a.next_frame(WAIT_MS) == reply
            assert await b.publish_envelope(vote(home, "sdb", 2))  # sentinel: c got everything before it
            assert [e.body.get("height") for e in await drain(c, 2)] == [2]  # not the direct reply
            assert (await a.next_frame(WAIT_MS)).body["height"] == 2
            await asyncio.sleep(0.1)
            for bus in (a, b, c):  # own frames come back from the broker and are skipped silently
                assert bus.dropped == {} and bus.frames_pending == 0

    run(body())


def test_retained_status_reaches_a_later_observer(broker: brokers.Broker, home: Home) -> None:
    async def body() -> None:
        status = codec.seal_envelope(CHAIN, "bank-hk", Kind.STATUS, {"height": 7, "round": 1, "info": {}},
                                     home.signer("bank-hk"))
        async with adapter(broker, home, "bank-hk") as node:
            await until_connected(node)
            assert await node.publish_envelope(status, retain=True)
            await asyncio.sleep(0.2)  # let the broker store it before anyone subscribes
        async with adapter(broker, home, None) as watcher:
            assert await watcher.next_frame(WAIT_MS) == status
            with pytest.raises(Exception, match="observer"):
                await watcher.publish(status.encode(), Kind.STATUS)

    run(body())


def _hostile_frames(home: Home, attacker: str, acl: bool) -> list[tuple[str, bytes, str]]:
    """(topic, payload, expected drop reason), all published by `attacker`;
    with a broker `acl`, a frame outside the attacker's topics never arrives."""
    own = f"{ROOT}/{attacker}"
    good = vote(home, attacker, 100)
    non_canonical = msgpack.packb([1, CHAIN, attacker, "prevote", {"round": 0, "height": 1, "block_id": None},
                                   b"\x00" * 64], use_bin_type=True)
    stranger = crypto.Signer(crypto.keypair_from_entropy(b"mallory"))
    return [
        (f"{own}/prevote", b"\xc1garbage", "not_msgpack"),
        (f"{own}/prevote", b"\x00" * (limits.frame_bytes_max + 1), "too_large"),
        (f"{own}/prevote", non_canonical, "non_canonical"),
        (f"{own}/prevote", codec.encode([1, CHAIN, attacker, "prevote", {}, b"\x00" * 64]), "shape"),
        (f"{own}/prevote", vote(home, attacker, 3, chain="other-chain").encode(), "wrong_chain"),
        (f"{own}/prevote", codec.seal_envelope(CHAIN, "mallory", Kind.PREVOTE,
                                               {"height": 4, "round": 0, "block_id": None}, stranger).encode(),
         "unknown_sender"),
        (f"{own}/prevote", vote(home, attacker, 5, signer_id="hkma").encode(), "bad_signature"),
        (f"{own}/prevote", vote(home, "hkma", 6).encode(), "sender_topic_mismatch"),  # replayed/impersonating
        (f"{own}/precommit", vote(home, attacker, 7).encode(), "kind_topic_mismatch"),
        (f"{own}/no-such-kind", good.encode(), "" if acl else "topic"),  # the ACL lists the kinds
        (f"{ROOT}/NOT-AN-ID/prevote", good.encode(), "" if acl else "topic"),
        (f"{own}/prevote", good.encode(), ""),  # delivered once ...
        (f"{own}/prevote", good.encode(), ""),  # ... and its replay delivered again (retransmissions must get through)
    ]


def test_hostile_frames_are_dropped_and_counted(broker: brokers.Broker, home: Home) -> None:
    attacker = "nticbc"  # a member's credentials (mosquitto refuses anonymous clients)

    async def body() -> None:
        frames = _hostile_frames(home, attacker, acl=broker.kind == "mosquitto")
        async with adapter(broker, home, "hkma") as victim, raw_client(broker, home, attacker) as raw:
            await until_connected(victim)
            for topic, payload, _ in frames:
                await raw.publish(topic, payload)
            await raw.publish(f"{ROOT}/{attacker}/prevote", vote(home, attacker, 999).encode())
            delivered = await drain(victim, 999)
            assert [e.body["height"] for e in delivered] == [100, 100, 999]  # the repeat gets through
            expected: dict[str, int] = {}
            for _, _, reason in frames:
                if reason:
                    expected[reason] = expected.get(reason, 0) + 1
            assert victim.dropped == expected
            assert victim.stats()["repeated"] == 1
            assert victim.connected  # still running, still the first connection
            assert victim.connections == 1

    run(body())


def test_broker_killed_and_restarted_adapters_reconnect(broker: brokers.Broker, home: Home,
                                                        tmp_path: Any) -> None:
    async def body() -> None:
        async with adapter(broker, home, "hkma") as a, adapter(broker, home, "sdb") as b:
            await until_connected(a, b)
            assert await a.publish_envelope(vote(home, "hkma", 1))
            assert (await b.next_frame(WAIT_MS)).body["height"] == 1
            broker.kill()
            while a.connected or b.connected:  # bounded by the test timeout
                await asyncio.sleep(0.01)
            assert not await a.publish_envelope(vote(home, "hkma", 2))  # buffered, not raised
            assert a.stats()["outbox"] == 1
            again = start(broker.kind, home, tmp_path / "run2", port=broker.port)
            try:
                await until_connected(a, b)
                assert a.connections == 2 and b.connections == 2
                assert a.stats()["outbox"] == 0  # flushed on reconnect
                assert await a.publish_envelope(vote(home, "hkma", 3))
                heights = [e.body["height"] for e in await drain(b, 3)]
                assert heights[-1] == 3 and set(heights) <= {2, 3}  # 2 arrives if b resubscribed first
            finally:
                again.stop()

    run(body())


# ------------------------------------------------------------------ mosquitto only


def test_mosquitto_refuses_clients_without_valid_credentials(mosquitto: brokers.Broker, home: Home) -> None:
    async def body() -> None:
        with pytest.raises(aiomqtt.MqttError):
            async with raw_client(mosquitto, home, None):
                pass
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(mosquitto.host, mosquitto.port, username="hkma", password="wrong",
                                      timeout=5):
                pass
        async with adapter(mosquitto, home, "hkma", password="wrong") as bus:
            assert not await bus.wait_connected(1_000)
            assert bus.last_error is not None and "authori" in bus.last_error.lower()

    run(body())


def test_mosquitto_acl_pins_members_to_their_own_topics(mosquitto: brokers.Broker, home: Home) -> None:
    async def body() -> None:
        async with adapter(mosquitto, home, "hkma") as victim, raw_client(mosquitto, home, "nticbc") as raw:
            await until_connected(victim)
            # a perfectly valid sdb frame, but published by nticbc on sdb's topic: the broker drops it
            await raw.publish(topics.broadcast(CHAIN, "sdb", Kind.PREVOTE), vote(home, "sdb", 1).encode())
            await raw.publish(topics.broadcast(CHAIN, "nticbc", Kind.PREVOTE), vote(home, "nticbc", 2).encode())
            assert [e.body["height"] for e in await drain(victim, 2)] == [2]
            assert victim.dropped == {}

    run(body())


def test_mosquitto_client_user_may_publish_only_as_parties(mosquitto: brokers.Broker, home: Home) -> None:
    async def body() -> None:
        username, password = brokers.client_credentials(mosquitto.run_dir or home.path)
        party = home.genesis.parties[0].id
        tx = codec.seal_envelope(CHAIN, party, Kind.TX, {"txs": [b"t"]}, home.signer(party))
        async with adapter(mosquitto, home, "hkma") as victim, \
                aiomqtt.Client(mosquitto.host, mosquitto.port, username=username, password=password) as cli:
            await until_connected(victim)
            await cli.publish(topics.broadcast(CHAIN, "sdb", Kind.PREVOTE), vote(home, "sdb", 1).encode())
            await cli.publish(topics.broadcast(CHAIN, party, Kind.TX), tx.encode())
            assert await victim.next_frame(WAIT_MS) == tx
            await asyncio.sleep(0.2)
            assert victim.frames_pending == 0 and victim.dropped == {}

    run(body())
