"""A TX frame handed to the replica (issue 12): its body is a batch, {"txs": [...]}."""

from __future__ import annotations

from consortium import codec, crypto
from consortium.codec import Kind
from consortium.consensus import events as ev
from tests.consensus.test_replica import KEYS, T0, replica


def test_a_tx_frame_given_to_the_replica_admits_each_tx_of_its_batch() -> None:
    """A driver may hand the replica a decoded TX frame (`Received`): every transaction of
    its batch goes through mempool admission on its own, a bad one is refused and counted
    without losing the others, and a tx already pending is a duplicate, not an error."""
    r = replica("a")
    r.step(ev.Start(T0))
    body = {"txs": [b"kv:x=1", b"not a kv tx", b"kv:y=2", b"kv:x=1"]}
    env = codec.seal_envelope("unit", "b", Kind.TX, body, crypto.Signer(KEYS["b"]))
    decoded = codec.decode_envelope(env.encode(), chain_id="unit", keys={"b": KEYS["b"].public_key})
    r.step(ev.Received(decoded, T0 + 1))
    assert len(r.mempool) == 2
    assert r.counters.get("tx_refused_MALFORMED") == 1 and r.counters.get("tx_refused_DUPE") == 1
