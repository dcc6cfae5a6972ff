"""Topics, the frame checker and the adapter's receive/publish paths, without a broker."""

from __future__ import annotations

import asyncio

import paho.mqtt.client as paho
import pytest

from consortium import codec, limits
from consortium.bus import adapter as adapter_mod
from consortium.bus import topics
from consortium.bus.adapter import BusAdapter, FrameChecker
from consortium.codec import Envelope, Kind
from consortium.errors import LocalError, RemoteError
from tests.bus.conftest import CHAIN, Home
from tests.bus.test_live import vote

ROOT = topics.root(CHAIN)


def test_topic_shapes_round_trip() -> None:
    assert topics.broadcast(CHAIN, "hkma", Kind.PREVOTE) == f"{ROOT}/hkma/prevote"
    assert topics.direct(CHAIN, "sdb", "to", Kind.SYNC_RESPONSE) == f"{ROOT}/sdb/to/to/sync_response"
    assert topics.status(CHAIN, "hkma") == f"{ROOT}/hkma/status"
    assert topics.parse(f"{ROOT}/hkma/prevote", CHAIN) == topics.Topic("hkma", Kind.PREVOTE, None)
    assert topics.parse(f"{ROOT}/to/to/to/tx", CHAIN) == topics.Topic("to", Kind.TX, "to")
    assert topics.subscriptions(CHAIN, "sdb") == [f"{ROOT}/+/+", f"{ROOT}/+/to/sdb/+"]
    assert topics.subscriptions(CHAIN, None) == [f"{ROOT}/+/+"]
    with pytest.raises(LocalError):
        topics.broadcast(CHAIN, "Bad Id", Kind.TX)


@pytest.mark.parametrize("topic", [
    "consortium/other-chain/hkma/prevote", f"{ROOT}/hkma", f"{ROOT}/hkma/prevote/x", f"{ROOT}/hkma/vote",
    f"{ROOT}/HKMA/prevote", f"{ROOT}/hkma/from/sdb/prevote", f"{ROOT}/hkma/to/S D B/prevote", f"{ROOT}//prevote",
    f"{ROOT}/hkma/" + "x" * 300, "", "#",
])
def test_bad_topics_are_refused(topic: str) -> None:
    with pytest.raises(RemoteError) as info:
        topics.parse(topic, CHAIN)
    assert info.value.reason == "topic"


def _reason(checker: FrameChecker, topic: str, payload: bytes) -> str:
    with pytest.raises(RemoteError) as info:
        checker.check(topic, payload)
    return str(info.value.reason)


def test_checker_order_and_reasons(home: Home) -> None:
    checker = FrameChecker(CHAIN, "hkma", home.genesis.keys())
    good = vote(home, "sdb", 1)
    assert checker.check(f"{ROOT}/sdb/prevote", good.encode()) == good
    # a repeat is delivered again (the replica re-sends on purpose), without a second signature check
    assert checker.check(f"{ROOT}/sdb/prevote", good.encode()) == good and checker.repeated == 1
    assert checker.check(f"{ROOT}/hkma/prevote", b"anything") is None  # our own: skipped, not checked
    # size is checked before decoding, topic before size
    assert _reason(checker, f"{ROOT}/sdb/prevote", b"\x00" * (limits.frame_bytes_max + 1)) == "too_large"
    assert _reason(checker, f"{ROOT}/sdb/bogus", b"\x00" * (limits.frame_bytes_max + 1)) == "topic"
    direct = vote(home, "sdb", 2)
    assert _reason(checker, f"{ROOT}/sdb/to/nticbc/prevote", direct.encode()) == "not_for_us"
    assert checker.check(f"{ROOT}/sdb/to/hkma/prevote", direct.encode()) == direct


def test_checker_lets_status_and_sync_requests_repeat(home: Home) -> None:
    checker = FrameChecker(CHAIN, "hkma", home.genesis.keys())
    status = codec.seal_envelope(CHAIN, "sdb", Kind.STATUS, {"height": 1, "round": 0, "info": {}},
                                 home.signer("sdb"))
    req = codec.seal_envelope(CHAIN, "sdb", Kind.SYNC_REQUEST, {"from_height": 1, "to_height": 9},
                              home.signer("sdb"))
    for _ in range(2):
        assert checker.check(f"{ROOT}/sdb/status", status.encode()) == status
        assert checker.check(f"{ROOT}/sdb/sync_request", req.encode()) == req


def test_checker_forgets_old_frames(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "bus_recent_frames_max", 2)
    checker = FrameChecker(CHAIN, "hkma", home.genesis.keys())
    frames = [vote(home, "sdb", h) for h in range(3)]
    for env in frames:
        checker.check(f"{ROOT}/sdb/prevote", env.encode())
    assert checker.check(f"{ROOT}/sdb/prevote", frames[0].encode()) == frames[0]  # bounded memory


def _message(topic: bytes, payload: bytes) -> paho.MQTTMessage:
    msg = paho.MQTTMessage(topic=topic)
    msg.payload = payload
    return msg


def _bus(home: Home, **kw: int) -> BusAdapter:
    return BusAdapter(host="127.0.0.1", port=1, chain_id=CHAIN, node_id="hkma", keys=home.genesis.keys(), **kw)


def test_receive_path_never_raises(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    bus = _bus(home)
    bus._on_raw(_message(f"{ROOT}/\xff/prevote".encode("latin-1"), b"x"))  # not UTF-8
    bus._on_raw(_message(b"#", b"x"))

    def explode(topic: str, payload: bytes) -> Envelope | None:
        raise ValueError("a bug in a check")

    monkeypatch.setattr(bus._checker, "check", explode)
    bus._on_raw(_message(f"{ROOT}/sdb/prevote".encode(), vote(home, "sdb", 1).encode()))
    assert bus.dropped == {"topic": 2, "internal": 1}
    assert bus.frames_pending == 0


def test_full_queue_drops_the_oldest_frame(home: Home) -> None:
    bus = _bus(home, frames_queued_max=2)
    frames = [vote(home, "sdb", h) for h in range(3)]
    for env in frames:
        bus._on_raw(_message(f"{ROOT}/sdb/prevote".encode(), env.encode()))
    assert bus.dropped == {"queue_full": 1} and bus.received == 3
    assert [bus.next_frame_nowait(), bus.next_frame_nowait(), bus.next_frame_nowait()] == [*frames[1:], None]


def test_publish_while_disconnected_buffers_boundedly(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "bus_outbox_frames_max", 2)

    async def body() -> None:
        bus = _bus(home)  # never started: disconnected
        for h in range(3):
            assert await bus.publish_envelope(vote(home, "hkma", h)) is False
        assert bus.stats()["outbox"] == 2 and bus.unsent == {"outbox_full": 1}
        with pytest.raises(LocalError):
            await bus.publish_envelope(vote(home, "sdb", 1))  # not ours to send
        with pytest.raises(LocalError):
            await bus.publish(b"\x00" * (limits.frame_bytes_max + 1), Kind.TX)

    asyncio.run(body())


def test_backoff_is_bounded() -> None:
    delays = [adapter_mod._backoff_ms(n) for n in range(40)]
    assert delays[0] == limits.bus_reconnect_delay_ms_min
    assert all(0 < d <= limits.bus_reconnect_delay_ms_max for d in delays)
    assert max(delays[20:]) >= limits.bus_reconnect_delay_ms_max / 2


def test_a_tx_frame_is_accepted_without_its_envelope_signature_and_nothing_else_is(home: Home) -> None:
    """A TX frame is a batch of transactions, each signed by its actor and verified by
    the node at admission: the checker does not verify the frame's envelope signature
    (no Ed25519 call at all), so a TX frame sealed with a wrong key still passes. Every
    other check stays: a vote with the same wrong signature is dropped as bad_signature,
    a TX frame on another sender's topic as sender_topic_mismatch, one from a sender the
    genesis does not know as unknown_sender, and an empty batch as shape."""
    checker = FrameChecker(CHAIN, "hkma", home.genesis.keys())
    party = home.genesis.parties[0].id
    wrong = home.signer("sdb")
    frame = codec.seal_envelope(CHAIN, party, Kind.TX, {"txs": [b"tx-1", b"tx-2"]}, wrong)
    calls = []
    real_verify = codec.crypto.verify

    def counting_verify(key: bytes, message: bytes, sig: bytes) -> bool:
        calls.append(message[:8])
        return real_verify(key, message, sig)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(codec.crypto, "verify", counting_verify)
        assert checker.check(f"{ROOT}/{party}/tx", frame.encode()) == frame
        assert calls == []
        bad_vote = codec.seal_envelope(CHAIN, "nticbc", Kind.PREVOTE, vote(home, "nticbc", 3).body, wrong)
        assert _reason(checker, f"{ROOT}/nticbc/prevote", bad_vote.encode()) == "bad_signature"
        assert len(calls) == 1
    assert _reason(checker, f"{ROOT}/sdb/tx", frame.encode()) == "sender_topic_mismatch"
    stranger = codec.seal_envelope(CHAIN, "mallory", Kind.TX, {"txs": [b"tx"]}, wrong)
    assert _reason(checker, f"{ROOT}/mallory/tx", stranger.encode()) == "unknown_sender"
    empty = codec.encode([1, CHAIN, party, "tx", {"txs": []}, b"\x00" * 64])
    assert _reason(checker, f"{ROOT}/{party}/tx", empty) == "shape"
    not_bytes = codec.encode([1, CHAIN, party, "tx", {"txs": [b"ok", "text"]}, b"\x00" * 64])
    assert _reason(checker, f"{ROOT}/{party}/tx", not_bytes) == "shape"
