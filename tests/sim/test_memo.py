"""The simulator shares decoding and signature checks between its nodes (pure memos):
the same frame or signature is verified once per run, never with another result."""

from __future__ import annotations

from consortium import codec, crypto
from consortium.codec import Kind
from consortium.sim.core import SimConfig, Simulation, synthetic_nodes
from consortium.sim.node import FrameMemo


def test_a_verify_memo_remembers_valid_signatures_and_never_a_forged_one() -> None:
    """Under crypto.memoised, a valid (key, message, signature) is checked once and then
    remembered; a forged signature (one bit flipped) and another message under the same
    signature stay invalid, before and after the valid one was remembered."""
    kp = crypto.keypair_from_entropy(b"memo")
    sig = crypto.Signer(kp).sign(b"vote")
    forged = sig[:-1] + bytes([sig[-1] ^ 1])
    memo = crypto.VerifyMemo()
    with crypto.memoised(memo):
        assert not crypto.verify(kp.public_key, b"vote", forged)
        assert crypto.verify(kp.public_key, b"vote", sig)
        assert (kp.public_key, b"vote", sig) in memo.valid and len(memo.valid) == 1
        assert crypto.verify(kp.public_key, b"vote", sig)
        assert not crypto.verify(kp.public_key, b"vote", forged)
        assert not crypto.verify(kp.public_key, b"other vote", sig)
    assert crypto.verify(kp.public_key, b"vote", sig) and len(memo.valid) == 1  # outside: not consulted


def test_a_frame_memo_decodes_once_and_keeps_a_forged_frame_invalid() -> None:
    """FrameMemo returns the same decoded envelope for the same bytes, and a frame with one
    signature bit flipped is its own entry: refused (bad_signature) every time."""
    kp = crypto.keypair_from_entropy(b"frames")
    env = codec.seal_envelope("c", "sh-1", Kind.PREVOTE, {"height": 1, "round": 0, "block_id": None}, crypto.Signer(kp))
    frame = env.encode()
    memo = FrameMemo("c", {"sh-1": kp.public_key})
    first = memo.decode(frame)
    assert isinstance(first, codec.Envelope) and memo.decode(bytes(frame)) is first
    forged = frame[:-1] + bytes([frame[-1] ^ 1])
    assert memo.decode(forged) == "bad_signature" and memo.decode(forged) == "bad_signature"


def test_memos_change_no_result() -> None:
    """A run with the shared memos has the trace digest of a run where every node decodes
    and verifies alone (a forging Byzantine node included): the memos are pure."""
    cfg = SimConfig(nodes=synthetic_nodes(4), seed=9, heights=5, byzantine={"hk-2": "forge"})
    shared = Simulation(cfg)
    alone = Simulation(cfg)
    for node in alone.nodes.values():  # each node its own decoder, and no verify memo
        object.__setattr__(node, "cfg", node.cfg.__class__(*[getattr(node.cfg, f) for f in
                                                              ("chain_id", "validators", "keys", "params",
                                                               "genesis_time_ms", "app_factory")]))
    alone._verified = crypto.VerifyMemo()
    alone._verified.valid = _NeverRemembers()
    a, b = shared.run(), alone.run()
    assert a.trace_digest == b.trace_digest and a.ok and b.ok
    assert shared.nodes["sh-1"].cfg.frames is not None and alone.nodes["sh-1"].cfg.frames is None


class _NeverRemembers(set):  # type: ignore[type-arg]
    """A set that stays empty: verify under it checks every signature."""

    def add(self, item: object) -> None:
        return None
