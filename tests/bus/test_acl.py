"""Least-privilege broker access on the real mosquitto (consortium.bus.broker.member_topics).

Invariants: a member reads only broadcasts and the direct messages addressed to
it (not another member's sync traffic or refusals), and so does the CLI client
user (broadcasts and the parties' refusals); nobody publishes under another
member's id; and no member can make the broker hold more retained data than its
fixed set of topics times the packet size (a flood on made-up topics under its
own id is dropped, the broker's memory does not grow with it)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt
import pytest

from consortium.bus import broker as brokers
from consortium.bus import topics
from consortium.codec import Kind
from tests.bus.conftest import CHAIN, Home, run

pytestmark = pytest.mark.broker
ROOT = topics.root(CHAIN)
QUIET_S = 0.6  # how long a subscriber listens for what it must not get (loopback delivers in ~1 ms)


def _client(b: brokers.Broker, home: Home, user: str | None) -> aiomqtt.Client:
    if user is None:
        assert b.run_dir is not None
        name, password = brokers.client_credentials(b.run_dir)
    else:
        name, password = user, home.creds[user]["password"]
    return aiomqtt.Client(b.host, b.port, username=name, password=password, identifier=f"acl-test-{name}")


async def _heard(c: aiomqtt.Client, seconds: float) -> list[str]:
    out: list[str] = []
    try:
        async with asyncio.timeout(seconds):
            async for m in c.messages:
                out.append(str(m.topic))
    except TimeoutError:
        pass
    return out


def test_members_and_client_read_only_broadcasts_and_their_own_direct_messages(
        mosquitto: brokers.Broker, home: Home) -> None:
    async def body() -> None:
        async with _client(mosquitto, home, "sdb") as sdb, _client(mosquitto, home, "hkma") as spy, \
                _client(mosquitto, home, None) as cli, _client(mosquitto, home, "nticbc") as nticbc:
            await sdb.subscribe(f"{ROOT}/+/to/sdb/+")
            for c in (spy, cli):  # everything they can think of, including sdb's direct topic by name
                await c.subscribe(f"{ROOT}/#")
                await c.subscribe(f"{ROOT}/+/to/sdb/+")
                await c.subscribe(f"{ROOT}/nticbc/to/sdb/{Kind.SYNC_REQUEST}")
            await nticbc.subscribe(f"{ROOT}/#")
            await asyncio.sleep(0.1)
            direct = topics.direct(CHAIN, "nticbc", "sdb", Kind.SYNC_REQUEST)
            await nticbc.publish(direct, b"for sdb only")
            await nticbc.publish(topics.broadcast(CHAIN, "nticbc", Kind.PREVOTE), b"for everyone")
            # hkma tries to speak as sdb: a broadcast and a direct message to nticbc
            await spy.publish(topics.broadcast(CHAIN, "sdb", Kind.PREVOTE), b"forged")
            await spy.publish(topics.direct(CHAIN, "sdb", "nticbc", Kind.SYNC_RESPONSE), b"forged")
            heard_sdb, heard_spy, heard_cli, heard_nticbc = await asyncio.gather(
                _heard(sdb, QUIET_S), _heard(spy, QUIET_S), _heard(cli, QUIET_S), _heard(nticbc, QUIET_S))
            assert heard_sdb == [direct]  # the addressee gets it
            broadcast = topics.broadcast(CHAIN, "nticbc", Kind.PREVOTE)
            assert broadcast in heard_spy and broadcast in heard_cli  # both listen, and hear broadcasts
            assert direct not in heard_spy and direct not in heard_cli  # ... but not sdb's direct messages
            assert not [t for t in heard_nticbc if t.startswith(f"{ROOT}/sdb/")]  # nothing "from sdb" arrived

    run(body())


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_member_cannot_fill_the_broker_with_retained_messages(mosquitto: brokers.Broker, home: Home) -> None:
    flood_topics, size = 300, 100_000  # 30 MB of retained messages on made-up topics under its own id
    write, _ = brokers.member_topics(ROOT, "hkma", [m.id for m in home.genesis.members],
                                     [p.id for p in home.genesis.parties])
    assert all("+" not in t and "#" not in t for t in write)  # a fixed set: the retained count is bounded

    async def body() -> tuple[int, int]:
        assert mosquitto.pid is not None
        before = _rss_kib(mosquitto.pid)
        async with _client(mosquitto, home, "hkma") as flooder:
            payload = b"x" * size
            for i in range(flood_topics):
                await flooder.publish(f"{ROOT}/hkma/junk{i}/{Kind.STATUS}", payload, retain=True)
                await flooder.publish(f"{ROOT}/hkma/to/nobody{i}/{Kind.TX_REFUSED}", payload, retain=True)
        async with _client(mosquitto, home, None) as reader:  # a ping round trip: the broker read everything
            await reader.subscribe(f"{ROOT}/hkma/+/+/+")
            await asyncio.sleep(0.3)
        return before, _rss_kib(mosquitto.pid)

    before, after = run(body())
    assert after - before < 10_000, f"mosquitto grew by {after - before} KiB under a retained flood"
