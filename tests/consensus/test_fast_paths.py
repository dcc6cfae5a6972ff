"""The simulator-speed work of issue 12 changes no result. Each fast path is checked
against the plain computation it replaces:

1. After every replica step the upon-rules are at a fixpoint, including the steps that
   skip evaluating them (a transaction, a stale timer, a vote below every threshold):
   asking the rules once more fires none, in runs with Byzantine members, crashes,
   loss, partitions and twins.
2. Pre-encoded values embed as the bytes their plain encoding would give (a block
   inside a lock record), and a block's cached encoding is its encoding.
3. A vote's signing bytes built directly equal the generic canonical encoding.
4. The canonical key order is the order of the keys' UTF-8 bytes, for any text.
5. A Signer teaches a verify memo only what is true: a signature under the public key
   its seed derives, never under a key a KeyPair merely claims.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortium import codec, crypto
from consortium.codec import Kind
from consortium.consensus import events as ev
from consortium.consensus.messages import ZERO_ID, Block
from consortium.consensus.replica import Replica
from consortium.errors import LocalError
from consortium.explore.schedule import Options, generate
from consortium.sim import node as sim_node
from consortium.sim.core import Simulation
from tests.sim.helpers import config

STEPS_CHECKED = {"n": 0}


class _FixpointChecked(Replica):
    """A replica that, after every step, asks the upon-rules once more: none may fire."""

    def _check(self, what: str) -> None:
        if not self.h.decidable:  # L49 with a quorum but no block asks for sync on every look: not a rule firing
            saved, self._out = self._out, []
            assert not self._fire_one(), f"{self.me}: a rule could still fire after {what}"
            assert self._out == [], self._out
            self._out = saved
            STEPS_CHECKED["n"] += 1

    # the simulator calls the three frequent events' own methods (step routes to them too)
    def step(self, event: ev.Event) -> list[ev.Action]:
        out = super().step(event)
        if isinstance(event, ev.Start):
            self._check("Start")
        return out

    def receive(self, env: codec.Envelope, now_ms: int) -> list[ev.Action]:
        out = super().receive(env, now_ms)
        self._check("Received")
        return out

    def admit(self, tx: bytes, now_ms: int) -> list[ev.Action]:
        out = super().admit(tx, now_ms)
        self._check("TxSubmitted")
        return out

    def timeout(self, kind: ev.TimeoutKind, height: int, rnd: int, now_ms: int) -> list[ev.Action]:
        out = super().timeout(kind, height, rnd, now_ms)
        self._check("TimeoutFired")
        return out


CASES: dict[str, Any] = {
    "double-vote": config(4, heights=6, seed=4, bad={"hk-2": "double-vote"}),
    "equivocators-crash": config(7, heights=5, seed=6, bad={"sh-1": "equivocate", "hk-1": "equivocate"},
                                 faults=["1500:crash:sh-3", "6000:restart:sh-3"]),
    "loss-partition": config(4, heights=6, seed=3, drop=0.1, faults=[
        "500:crash:sh-2", "2500:partition:sh-1,hk-1|sh-2,hk-2", "4000:heal", "4000:restart:sh-2"]),
}


@pytest.mark.parametrize("name", [*CASES, "twins-3", "explore-6"])
def test_every_step_ends_at_a_fixpoint_of_the_upon_rules(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Invariant 1, on the simulator with real nodes, signatures and faults."""
    if name == "twins-3":
        cfg = generate(3, Options(generator="twins")).config()
    elif name == "explore-6":
        cfg = generate(6, Options()).config()
    else:
        cfg = CASES[name]
    monkeypatch.setattr(sim_node, "Replica", _FixpointChecked)
    before = STEPS_CHECKED["n"]
    plain = Simulation(cfg).run()
    assert STEPS_CHECKED["n"] - before > 500
    monkeypatch.undo()
    assert Simulation(cfg).run().trace_digest == plain.trace_digest


def _block(txs: tuple[bytes, ...]) -> Block:
    return Block(height=3, time_ms=7, proposer="sh-1", prev_id=ZERO_ID, app_hash=b"\x01" * 32, last_commit=None,
                 evidence=(), txs=txs)


@given(st.lists(st.binary(max_size=40), max_size=6, unique=True))
def test_embedded_encodings_are_the_plain_encoding(txs: list[bytes]) -> None:
    """Invariant 2."""
    b = _block(tuple(txs))
    assert b.encoded == codec.encode(b.to_wire()) and b.id == crypto.digest(b.encoded)
    plain = codec.encode({"locked_round": 1, "locked": b.to_wire(), "valid_round": 2, "valid": None})
    spliced = codec.encode({"locked_round": 1, "locked": codec.raw(b.encoded), "valid_round": 2, "valid": None})
    assert spliced == plain


@given(st.sampled_from([Kind.PREVOTE, Kind.PRECOMMIT]), st.integers(-(2**63), 2**64 - 1),
       st.integers(-(2**63), 2**64 - 1), st.none() | st.binary(min_size=32, max_size=32), st.text(max_size=12))
def test_vote_signing_bytes_equal_the_generic_ones(kind: Kind, height: int, rnd: int, block_id: bytes | None,
                                                   sender: str) -> None:
    """Invariant 3 (and out-of-range integers are refused the same way)."""
    body = {"height": height, "round": rnd, "block_id": block_id}
    assert codec.vote_signing_bytes("chain", sender, kind, height, rnd, block_id) == \
        codec.signing_bytes("chain", sender, kind, body)
    for bad in (2**64, -(2**63) - 1):
        with pytest.raises(LocalError):
            codec.vote_signing_bytes("chain", sender, kind, bad, rnd, block_id)


@given(st.dictionaries(st.text(max_size=6), st.integers(0, 9), max_size=8))
def test_map_keys_sort_by_their_utf8_bytes(m: dict[str, int]) -> None:
    """Invariant 4: lone surrogates and characters beyond the BMP included."""
    order = list(codec._canon(m, 0))
    assert order == sorted(m, key=lambda k: k.encode("utf-8", "surrogatepass"))


def test_a_signer_teaches_the_memo_only_under_the_key_its_seed_derives() -> None:
    """Invariant 5."""
    real = crypto.keypair_from_entropy(b"real")
    liar = crypto.KeyPair(seed=real.seed, public_key=crypto.keypair_from_entropy(b"other").public_key)
    memo = crypto.VerifyMemo()
    with crypto.memoised(memo):
        sig = crypto.Signer(liar).sign(b"vote")
        assert not crypto.verify(liar.public_key, b"vote", sig)
        assert crypto.verify(real.public_key, b"vote", sig)
    assert memo.valid == {(real.public_key, b"vote", sig)}
