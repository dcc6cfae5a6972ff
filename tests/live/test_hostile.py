"""A real MQTT client attacks the running 7-node consortium: nothing changes, every frame is counted.

The attacker holds the credentials of member nticbc (mosquitto admits no
anonymous client) and publishes garbage, oversized, non-canonical,
wrong-chain, unknown-sender, forged, impersonating and replayed frames. The
nodes keep deciding, agree, and count each frame under its reason in their
status records. nticbc's own node skips frames on its own topics without
counting (the broker echoes a node's frames back), so the others are checked.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiomqtt
import msgpack
import pytest

from consortium import codec, crypto, limits
from consortium.bus import topics
from consortium.codec import Envelope, Kind
from consortium.home import load_credentials, load_genesis
from tests.live.conftest import Live, wait_for

pytestmark = pytest.mark.broker

ATTACKER = "nticbc"


def _vote(chain: str, sender: str, signer: crypto.Signer, height: int, kind: Kind = Kind.PREVOTE) -> Envelope:
    body = {"height": height, "round": 0, "block_id": None}
    return Envelope(codec.VERSION, chain, sender, kind, body, signer.sign(codec.signing_bytes(chain, sender, kind, body)))


def hostile_frames(chain: str, captured: tuple[str, bytes], acl: bool) -> list[tuple[str, bytes, str]]:
    """(topic, payload, reason the nodes must count). `captured` is a real frame of
    another member (topic, bytes), replayed; with a broker ACL the attacker can
    only use its own topics, so the verbatim replay goes on its own topic."""
    root = topics.root(chain)
    own = f"{root}/{ATTACKER}"
    stranger = crypto.Signer(crypto.keypair_from_entropy(b"mallory"))
    far = 10**9  # a height nobody is at: even a frame that got through would change nothing
    non_canonical = msgpack.packb([1, chain, ATTACKER, "prevote", {"round": 0, "height": far, "block_id": None},
                                   b"\x00" * 64], use_bin_type=True)
    frames = [
        (f"{own}/prevote", b"\xc1garbage", "not_msgpack"),
        (f"{own}/prevote", b"\x00" * (limits.frame_bytes_max + 1), "too_large"),
        (f"{own}/prevote", non_canonical, "non_canonical"),
        (f"{own}/prevote", codec.encode([1, chain, ATTACKER, "prevote", {}, b"\x00" * 64]), "shape"),
        (f"{own}/prevote", _vote("other-chain", ATTACKER, stranger, far).encode(), "wrong_chain"),
        (f"{own}/prevote", _vote(chain, "mallory", stranger, far).encode(), "unknown_sender"),
        (f"{own}/prevote", _vote(chain, ATTACKER, stranger, far).encode(), "bad_signature"),  # forged
        (f"{own}/precommit", captured[1], "sender_topic_mismatch"),  # impersonating: hkma's frame, our topic
    ]
    if not acl:  # mosquitto's ACL lets a member write only its own known kinds: these never reach a node
        # (a verbatim replay on its original topic is delivered: the replica ignores a stale vote)
        frames += [(f"{own}/bogus-kind", captured[1], "topic"), (f"{root}/NOT-AN-ID/prevote", captured[1], "topic")]
    return frames


async def capture(c: aiomqtt.Client, root: str) -> tuple[str, bytes]:
    """One real prevote of hkma, as it went over the bus."""
    topic = f"{root}/hkma/prevote"
    await c.subscribe(topic)
    async for m in c.messages:
        # amqtt also hands a new subscriber retained records of other topics
        if str(m.topic) == topic and isinstance(m.payload, bytes):
            return topic, m.payload
    raise AssertionError("no frame captured")


def expected(frames: list[tuple[str, bytes, str]], node: str, chain: str) -> set[str]:
    """The reasons `node` must count: a node skips, uncounted, a frame on its own
    topics (the broker echoes its own frames), unless the topic itself is bad."""
    own = f"{topics.root(chain)}/{node}/"
    return {reason for topic, _, reason in frames if reason == "topic" or not topic.startswith(own)}


async def attack(live: Live) -> dict[str, set[str]]:
    """Publish every hostile frame; return the reasons each node must show.

    One connection for capture and attack: with amqtt, a client that connects
    while another disconnects can get a dead session (a race in amqtt 0.12), and
    QoS 0 publishes into a dead session vanish without an error."""
    chain = load_genesis(live.home).chain_id
    cred = load_credentials(live.home)[ATTACKER]
    kw: dict[str, Any] = {"username": cred["username"], "password": cred["password"], "timeout": 5}
    async with aiomqtt.Client("127.0.0.1", live.broker_record().port, **kw) as c:
        captured = await asyncio.wait_for(capture(c, topics.root(chain)), 20)
        frames = hostile_frames(chain, captured, acl=live.kind == "mosquitto")
        for topic, payload, _ in frames:
            await c.publish(topic, payload)
        if live.kind == "mosquitto":  # outside its ACL: mosquitto drops them, no node ever sees them
            await c.publish(f"{topics.root(chain)}/hkma/prevote", b"\xc1not-ours")
            await c.publish(f"{topics.root(chain)}/{ATTACKER}/bogus-kind", captured[1])
    return {m: expected(frames, m, chain) for m in live.members}


async def refused_without_credentials(live: Live) -> bool:
    try:
        async with aiomqtt.Client("127.0.0.1", live.broker_record().port, timeout=5):
            return False
    except aiomqtt.MqttError:
        return True


def test_hostile_frames_change_nothing_and_are_counted(live: Live) -> None:
    live.up()
    before = max(live.wait_height(2).values())
    if live.kind == "mosquitto":
        assert asyncio.run(refused_without_credentials(live))
    missing: dict[str, list[str]] = {}

    def counted() -> dict[str, Any] | None:
        nodes = live.status()["nodes"]
        missing.clear()
        missing.update({n: sorted(want - set(nodes[n]["dropped"]) if n in nodes else want)
                        for n, want in reasons.items()})
        return None if any(missing.values()) else nodes

    nodes = None
    for _ in range(3):  # a session amqtt broke anyway: attack again (counts only have to appear)
        reasons = asyncio.run(attack(live))
        assert len(reasons["hkma"]) >= (8 if live.kind == "mosquitto" else 9) and reasons[ATTACKER] <= {"topic"}
        with contextlib.suppress(AssertionError):
            nodes = wait_for("the counters", counted, 10)
            break
    assert nodes is not None, f"reasons not counted: {missing}"
    for n, s in nodes.items():
        assert s["errors"] == {} and s["state"] == "running", (n, s["errors"])
    live.wait_height(before + 5)  # still deciding, every one of them
    live.down()
    assert live.assert_same_chain() >= before + 5
