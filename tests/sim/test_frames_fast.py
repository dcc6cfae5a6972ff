"""A vote frame an honest simulated node sends is known to the shared FrameMemo without
being decoded (issue 12, simulator speed, third round): `FrameMemo.learn_vote`.

1. Whenever it remembers a frame, `codec.decode_envelope` of that frame (with the same
   verify memo) returns an equal envelope: version, chain, sender, kind, signature, frame
   and the body with the same items in the same order. Any vote fields, in and out of
   bounds, a known or unknown sender, the chain or another, with or without the
   signature in the memo.
2. A forged or altered frame, a signature under another key, a frame whose envelope
   fields differ from its bytes, or a signature the memo does not hold is not remembered:
   such frames are decoded (and refused) as before.
3. Whole simulations end with identical results with and without it.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortium import codec, crypto, limits
from consortium.codec import Kind
from consortium.consensus.messages import sign_vote
from consortium.errors import DecodeError
from consortium.sim.core import Simulation
from consortium.sim.node import FrameMemo
from tests.sim.helpers import config

_A, _B = crypto.keypair_from_entropy(b"frames-a"), crypto.keypair_from_entropy(b"frames-b")
_KEYS = {"sh-1": _A.public_key, "hk-1": _B.public_key}
_ID = st.none() | st.binary(min_size=32, max_size=32) | st.binary(max_size=40)
_INT = st.integers(0, 2**20) | st.sampled_from([-1, -(2**63), 2**63, 2**64 - 1]) | st.integers(-(2**63), 2**64 - 1)


def _same(a: codec.Envelope, b: codec.Envelope) -> bool:
    return (a == b and a.frame == b.frame and type(a.kind) is type(b.kind) and list(a.body.items()) == list(b.body.items())
            and [type(v) for v in a.body.values()] == [type(v) for v in b.body.values()])


def _decoded(frame: bytes, memo: crypto.VerifyMemo, chain: str = "chain") -> codec.Envelope | str:
    with crypto.memoised(memo):
        try:
            return codec.decode_envelope(frame, chain_id=chain, keys=_KEYS)
        except DecodeError as exc:
            return str(exc.reason)


@given(st.sampled_from(["sh-1", "hk-1", "xx-9", "s" * (limits.member_id_bytes_max + 1)]),
       st.sampled_from([Kind.PREVOTE, Kind.PRECOMMIT]), _INT, _INT, _ID, st.sampled_from(["chain", "other"]),
       st.booleans(), st.booleans())
def test_a_remembered_vote_frame_is_what_decoding_gives(sender: str, kind: Kind, height: int, rnd: int,
                                                        block_id: bytes | None, chain: str, with_memo: bool,
                                                        own_key: bool) -> None:
    """Invariants 1 and 2 (wrong key: the sender signs with the other validator's key)."""
    memo = crypto.VerifyMemo()
    key = (_A if sender != "hk-1" else _B) if own_key else (_B if sender != "hk-1" else _A)
    try:
        with crypto.memoised(memo) if with_memo else crypto.memoised(crypto.VerifyMemo()):
            vote = sign_vote(chain, crypto.Signer(key), sender, kind, height, rnd, block_id)
    except Exception:  # out of codec's range: nothing is ever sent
        return
    env = vote.envelope(chain)
    frames = FrameMemo("chain", _KEYS)
    frames.learn_vote(env, memo)
    known = frames._seen.get(env.frame)
    got = _decoded(env.frame, memo)
    if known is not None:
        assert isinstance(got, codec.Envelope) and isinstance(known, codec.Envelope) and _same(known, got)
    if not with_memo or not own_key or chain != "chain" or sender == "xx-9":
        assert known is None
    if with_memo and own_key and chain == "chain" and sender in _KEYS and height >= 0 and rnd >= 0 \
            and (block_id is None or len(block_id) == 32):
        assert known is not None  # not vacuous: the frames of honest nodes are remembered


_EDGES = [(h, r, b) for h in (-1, 0, 2**63, 2**64 - 1) for r in (-1, 0, 2**64 - 1)
          for b in (None, b"\x01" * 32, b"\x01" * 31, b"")]


@pytest.mark.parametrize(("height", "rnd", "block_id"), _EDGES)
def test_vote_fields_at_the_bounds(height: int, rnd: int, block_id: bytes | None) -> None:
    """Invariants 1 and 2 at the bounds of the body's shape, everything else right."""
    memo = crypto.VerifyMemo()
    with crypto.memoised(memo):
        env = sign_vote("chain", crypto.Signer(_A), "sh-1", Kind.PRECOMMIT, height, rnd, block_id).envelope("chain")
    frames = FrameMemo("chain", _KEYS)
    frames.learn_vote(env, memo)
    got = _decoded(env.frame, memo)
    known = frames._seen.get(env.frame)
    assert (known is not None) == isinstance(got, codec.Envelope)
    if known is not None:
        assert _same(known, got)  # type: ignore[arg-type]


def _memo_and_vote() -> tuple[crypto.VerifyMemo, codec.Envelope]:
    memo = crypto.VerifyMemo()
    with crypto.memoised(memo):
        vote = sign_vote("chain", crypto.Signer(_A), "sh-1", Kind.PREVOTE, 5, 0, b"\x01" * 32)
    return memo, vote.envelope("chain")


@pytest.mark.parametrize("how", ["signature", "body", "huge-height", "frame", "sender", "kind"])
def test_altered_vote_frames_are_not_remembered(how: str) -> None:
    """Invariant 2: an envelope altered after signing (its signature, a body field, even out of
    codec's range, its frame bytes, its sender or kind) is never remembered (nor raises); its frame decodes as before, and a
    frame with a flipped signature bit is refused as a bad signature."""
    memo, env = _memo_and_vote()
    sig, frame, body = env.signature, env.frame, dict(env.body)
    if how == "signature":
        sig = bytes([sig[0] ^ 1]) + sig[1:]
        frame = codec.frame_of(codec._signing_bytes_of_frame(frame), sig)
    elif how == "body":
        body["round"] = 1  # the fields say round 1, the signed frame says round 0
    elif how == "huge-height":
        body["height"] = 2**64  # no frame can say that (codec's ints are 64-bit)
    elif how == "frame":
        frame = frame[:-1] + bytes([frame[-1] ^ 1])
    altered = codec.Envelope(env.version, env.chain, "hk-1" if how == "sender" else env.sender,
                             Kind.PRECOMMIT if how == "kind" else env.kind, body, sig, frame)
    frames = FrameMemo("chain", _KEYS)
    frames.learn_vote(altered, memo)
    assert frames._seen == {}
    assert frames.decode(altered.encode()) == _decoded(altered.encode(), memo)
    if how in ("signature", "frame"):
        assert _decoded(frame, memo) == codec.Reason.BAD_SIGNATURE
    frames.learn_vote(env, memo)  # the unaltered one is
    assert _same(frames._seen[env.frame], _decoded(env.frame, memo))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["n4", "byzantine-forge-crash", "twins"])
def test_runs_give_the_same_results_without_remembered_votes(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Invariant 3 (forged votes, a crash, twins sharing a key)."""
    from consortium.explore.schedule import Options, generate

    cfg: Any = {"n4": config(4, heights=20, seed=1),
                "byzantine-forge-crash": config(7, heights=5, seed=6, bad={"sh-1": "forge", "hk-1": "double-vote"},
                                                faults=["1500:crash:sh-3", "6000:restart:sh-3"]),
                "twins": generate(4, Options(generator="twins")).config()}[name]
    taught = Simulation(cfg)
    fast = taught.run().to_dict()
    assert taught._frame_memo is not None and taught._frame_memo._seen
    monkeypatch.setattr(FrameMemo, "learn_vote", lambda self, env, verified: None)
    assert Simulation(cfg).run().to_dict() == fast
