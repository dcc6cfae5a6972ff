"""The live trace's bus observer (consortium/bus/observer.py) on the real mosquitto, with
the broker user and ACL a live run gives it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from consortium import codec
from consortium.bus import broker as brokers
from consortium.bus import topics
from consortium.bus.observer import BusObserver
from consortium.codec import Kind
from tests.bus.conftest import CHAIN, Home, home, mosquitto_missing, run
from tests.bus.test_acl import QUIET_S
from tests.bus.test_acl import _heard as heard_topics

__all__ = ["home"]  # the session fixture, imported for this module
pytestmark = pytest.mark.broker


@pytest.fixture
def mosquitto(home: Home, tmp_path: Path) -> Iterator[brokers.Broker]:
    if missing := mosquitto_missing():
        pytest.skip(f"mosquitto broker tests need mosquitto: {missing}")
    b = brokers.start_broker("mosquitto", home=home.path, run_dir=tmp_path / "run")
    try:
        yield b
    finally:
        b.stop()


def test_observer_reads_only_consensus_broadcasts_and_records_who_sent_what_when(
        mosquitto: brokers.Broker, home: Home) -> None:
    """The observer's broker user may read the broadcast proposal/prevote/precommit/status
    topics and nothing else (no tx broadcast, no direct message) and may publish nothing;
    a BusObserver connected as that user records each signed prevote with its sender,
    kind, height, round and arrival time, keeps the newest status record per node, and
    refuses (counts, does not record) a prevote whose signature is not its sender's."""
    assert mosquitto.run_dir is not None
    user, password = brokers.observer_credentials(mosquitto.run_dir)
    assert user == brokers.OBSERVER_USER
    obs = BusObserver(host=mosquitto.host, port=mosquitto.port, chain_id=CHAIN, keys=home.genesis.keys(),
                      username=user, password=password)
    obs.start()
    try:
        assert obs.wait_connected(10_000), obs.last_error
        member = "nticbc"
        prevote = codec.seal_envelope(CHAIN, member, Kind.PREVOTE, {"height": 3, "round": 1, "block_id": None},
                                      home.signer(member))
        forged = codec.seal_envelope(CHAIN, member, Kind.PREVOTE, {"height": 4, "round": 0, "block_id": None},
                                     home.signer("sdb"))
        status = codec.seal_envelope(CHAIN, member, Kind.STATUS, {"height": 2, "round": 0, "info": {"bus": {}}},
                                     home.signer(member))

        async def body() -> list[str]:
            creds = home.creds[member]
            async with aiomqtt.Client(mosquitto.host, mosquitto.port, username=user, password=password,
                                      identifier="observer-raw") as raw, \
                    aiomqtt.Client(mosquitto.host, mosquitto.port, username=creds["username"],
                                   password=creds["password"], identifier="member") as m, \
                    aiomqtt.Client(mosquitto.host, mosquitto.port, username=home.creds["sdb"]["username"],
                                   password=home.creds["sdb"]["password"], identifier="sdb") as sdb:
                await raw.subscribe(f"{topics.root(CHAIN)}/#")
                await sdb.subscribe(f"{topics.root(CHAIN)}/#")
                await asyncio.sleep(0.1)
                t0 = time.monotonic()
                await m.publish(topics.broadcast(CHAIN, member, Kind.PREVOTE), prevote.encode())
                await m.publish(topics.broadcast(CHAIN, member, Kind.PREVOTE), forged.encode())
                await m.publish(topics.broadcast(CHAIN, member, Kind.STATUS), status.encode(), retain=True)
                await m.publish(topics.broadcast(CHAIN, member, Kind.TX), b"a tx batch")
                await m.publish(topics.direct(CHAIN, member, "sdb", Kind.SYNC_REQUEST), b"for sdb only")
                # the observer's user tries to speak: as a member, and on a topic of its own name
                await raw.publish(topics.broadcast(CHAIN, "sdb", Kind.PREVOTE), b"observer speaking")
                await raw.publish(f"{topics.root(CHAIN)}/{brokers.OBSERVER_USER}/status", b"observer speaking")
                heard = await heard_topics(raw, QUIET_S)
                spoken: list[bytes] = []
                try:
                    async with asyncio.timeout(0.1):
                        async for msg in sdb.messages:
                            spoken.append(bytes(msg.payload))  # type: ignore[arg-type]
                except TimeoutError:
                    pass
                assert b"observer speaking" not in spoken
                assert obs.snapshot().frames and obs.snapshot().frames[0].t >= t0
                return heard

        heard = run(body())
    finally:
        obs.stop()
    prevote_topic = topics.broadcast(CHAIN, member, Kind.PREVOTE)
    assert sorted(set(heard)) == sorted({prevote_topic, topics.broadcast(CHAIN, member, Kind.STATUS)})
    seen = obs.snapshot()
    assert [(f.sender, f.kind, f.height, f.round) for f in seen.frames] == [(member, "prevote", 3, 1)]
    assert seen.sent == {(member, "prevote"): 1} and sum(seen.dropped.values()) == 1
    assert seen.status[member]["height"] == 2 and seen.status[member]["bus"] == {}
