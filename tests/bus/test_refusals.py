"""TX_REFUSED, the frame a node sends a submitter whose tx failed admission, and the
broker checks clients make before they wait for anything.

- A refusal counts only when validators with more than f's voting power give the
  same reason (one node, or f nodes, could be Byzantine and lie).
- The submitter checks every refusal frame like a node checks frames: topic shape,
  signature, topic sender = envelope sender, topic kind = envelope kind, addressed
  to the submitter.
- On mosquitto the ACL lets a node send a refusal under its own id only, and lets
  the CLI client user read it: no party can forge a node's refusal.
- A broker that cannot be reached is one line naming the address and the reason.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import aiomqtt
import pytest

from consortium import codec, crypto
from consortium.bus import broker as brokers
from consortium.bus import topics
from consortium.bus.endpoint import Endpoint, check_broker
from consortium.client.submit import Refusals, check_refusal_frame
from consortium.codec import Envelope, Kind
from consortium.errors import RemoteError, UserError
from consortium.node.runtime import validator_set
from tests.bus.conftest import CHAIN, Home, run

TX = crypto.digest(b"a transaction")
PARTY = "sh-exporter"


def refusal(home: Home, node: str, code: str = "ROLE", tx_hash: bytes = TX, signer: str | None = None) -> Envelope:
    return codec.seal_envelope(CHAIN, node, Kind.TX_REFUSED, {"tx_hash": tx_hash, "code": code},
                               home.signer(signer or node))


def test_a_refusal_counts_once_more_than_f_validators_agree(home: Home) -> None:
    """With 7 equal validators (f = 2): two refusals are not enough, a third with a
    different reason is not either, the third with the same reason is; refusals by
    a party, or of another tx, never count."""
    validators = validator_set(home.genesis)
    ids = sorted(v.id for v in validators.validators)
    r = Refusals(validators, TX)
    assert not r.add(refusal(home, PARTY))  # a party is no node
    assert not r.add(refusal(home, ids[0], tx_hash=crypto.digest(b"another tx")))
    assert r.add(refusal(home, ids[0])) and r.add(refusal(home, ids[1]))
    assert r.conclusive() is None
    assert r.add(refusal(home, ids[2], code="BSIG"))
    assert r.conclusive() is None
    r.add(refusal(home, ids[0], code="BSIG"))  # a second word from the same node does not count twice
    assert r.conclusive() is None
    r.add(refusal(home, ids[3]))
    assert r.conclusive() == ("ROLE", [ids[0], ids[1], ids[3]])


def test_refusal_frames_are_checked_like_node_frames(home: Home) -> None:
    """A good refusal to the submitter passes; a forged signature, a frame on another
    node's topic, a refusal addressed to someone else, or a frame of another chain
    raise (and are dropped by the client)."""
    ep = Endpoint("127.0.0.1", 1, CHAIN, home.genesis.keys())
    good = refusal(home, "hkma")
    mine = topics.direct(CHAIN, "hkma", PARTY, Kind.TX_REFUSED)
    assert check_refusal_frame(ep, PARTY, mine, good.encode()) == good
    forged = refusal(home, "hkma", signer="sdb")
    bad = [
        (mine, forged.encode()),  # signed by another key
        (topics.direct(CHAIN, "sdb", PARTY, Kind.TX_REFUSED), good.encode()),  # on sdb's topic
        (topics.direct(CHAIN, "hkma", "hk-importer", Kind.TX_REFUSED), good.encode()),  # not for us
        (topics.direct(CHAIN, "hkma", PARTY, Kind.STATUS), good.encode()),  # kind mismatch
        (mine, codec.seal_envelope("other-chain", "hkma", Kind.TX_REFUSED, good.body, home.signer("hkma")).encode()),
        (mine, b"\x96garbage"),
    ]
    for topic, payload in bad:
        with pytest.raises(RemoteError):
            check_refusal_frame(ep, PARTY, topic, payload)
    body = {"tx_hash": TX, "code": "x" * 33}  # the codec keeps codes short
    with pytest.raises(Exception, match="code"):
        codec.seal_envelope(CHAIN, "hkma", Kind.TX_REFUSED, body, home.signer("hkma"))


@pytest.mark.broker
def test_mosquitto_lets_nodes_tell_submitters_and_no_one_forge_it(mosquitto: brokers.Broker, home: Home) -> None:
    """On mosquitto the CLI client user, subscribed to a party's refusals, receives a
    node's refusal sent under the node's own id; the same frame published by the
    client user on the node's topic is dropped by the broker's ACL."""
    async def body() -> None:
        assert mosquitto.run_dir is not None
        username, password = brokers.client_credentials(mosquitto.run_dir)
        topic = topics.direct(CHAIN, "hkma", PARTY, Kind.TX_REFUSED)
        forged_first = refusal(home, "hkma", code="BSIG")
        genuine = refusal(home, "hkma")
        async with aiomqtt.Client(mosquitto.host, mosquitto.port, username=username, password=password,
                                  timeout=5) as reader, \
                aiomqtt.Client(mosquitto.host, mosquitto.port, username="hkma",
                               password=home.creds["hkma"]["password"], timeout=5) as node:
            await reader.subscribe(topics.refusals_for(CHAIN, PARTY), qos=1)
            await reader.publish(topic, forged_first.encode(), qos=1)  # the ACL drops it
            await node.publish(topic, genuine.encode(), qos=1)
            message = await asyncio.wait_for(anext(aiter(reader.messages)), 5)
            assert str(message.topic) == topic and message.payload == genuine.encode()

    run(body())


@pytest.mark.broker
def test_a_broker_that_cannot_be_reached_is_named_with_the_reason(mosquitto: brokers.Broker, home: Home) -> None:
    """`check_broker` fails at once with the address and the reason: nothing listens
    (connection refused), or the broker refuses the credentials."""
    ep = Endpoint("127.0.0.1", 1, CHAIN, home.genesis.keys())
    with pytest.raises(UserError, match=r"^cannot connect to broker 127\.0\.0\.1:1: connection refused$"):
        run(check_broker(ep), timeout_s=5)
    wrong = replace(ep, host=mosquitto.host, port=mosquitto.port, username="hkma", password="wrong")
    with pytest.raises(UserError, match=rf"cannot connect to broker {mosquitto.host}:{mosquitto.port}: .*authori"):
        run(check_broker(wrong), timeout_s=10)
