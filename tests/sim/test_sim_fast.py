"""The simulator's fast paths (issue 12, second round) change no result.

1. Heap entries ordered by one int, (at << sim_event_seq_bits_max) + seq, come out in the
   order of the (at, seq) pairs they replace, negative times included.
2. A healthy, unrecorded network without twins sends through an inlined loop; a run with
   a Recorder attached takes the general path (Network.plan per receiver). Both give the
   same trace digest, heights, messages and checks, for plain runs, Byzantine members,
   crashes and loss (where the run switches between the paths as the network heals).
"""

from __future__ import annotations

import heapq

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortium import limits
from consortium.sim.core import Simulation
from consortium.sim.recorder import Recorder
from tests.sim.helpers import config

_BITS = limits.sim_event_seq_bits_max


@given(st.lists(st.integers(-(2**45), 2**45), max_size=80))
def test_one_int_keys_pop_in_time_then_sequence_order(times: list[int]) -> None:
    """Invariant 1: pushing (at << bits) + seq pops in (at, seq) order, and the time comes
    back with a shift."""
    pairs = [(at, seq) for seq, at in enumerate(times, start=1)]
    heap: list[int] = []
    for at, seq in pairs:
        heapq.heappush(heap, (at << _BITS) + seq)
    popped = [heapq.heappop(heap) for _ in pairs]
    assert [(k >> _BITS, k & ((1 << _BITS) - 1)) for k in popped] == sorted(pairs)


CASES = {
    "n4": config(4, heights=30, seed=1),
    "n16": config(16, heights=4, seed=2),
    "byzantine-crash": config(7, heights=6, seed=6, bad={"sh-1": "equivocate", "hk-1": "double-vote"},
                              faults=["1500:crash:sh-3", "6000:restart:sh-3"]),
    "loss-heal": config(4, heights=8, seed=3, drop=0.1, faults=["500:crash:sh-2", "4000:heal",
                                                                "4000:restart:sh-2"]),
}


@pytest.mark.parametrize("name", CASES)
def test_the_inlined_send_path_gives_the_results_of_the_general_one(name: str) -> None:
    """Invariant 2: the same configuration with and without a Recorder (which forces the
    general path) ends with identical results."""
    plain = Simulation(CASES[name]).run()
    recorded_sim = Simulation(CASES[name])
    recorded_sim.recorder = Recorder()
    recorded = recorded_sim.run()
    assert recorded.to_dict() == plain.to_dict()
    assert recorded_sim.recorder.messages  # the general path ran (it records every send)


_ID = st.binary(min_size=32, max_size=32)


@given(height=st.integers(1, 2**40), rnd=st.integers(0, 50), time_ms=st.integers(0, 2**50),
       proposer=st.text(min_size=1, max_size=8), txs=st.lists(st.binary(max_size=12), max_size=6),
       sigs=st.lists(st.tuples(st.text(max_size=5), st.binary(min_size=64, max_size=64)), max_size=4),
       ids=st.tuples(_ID, _ID, _ID))
def test_a_proposal_is_signed_over_the_plain_encoding_of_its_body(
        height: int, rnd: int, time_ms: int, proposer: str, txs: list[bytes],
        sigs: list[tuple[str, bytes]], ids: tuple[bytes, bytes, bytes]) -> None:
    """sign_proposal splices the block's cached encoding into the signing bytes: the frame is
    the one the generic canonical encoding of the whole body gives (last commit and proof of
    lock included), and it decodes back to the same proposal."""
    from consortium import codec, crypto
    from consortium.consensus.messages import Block, Certificate, Proposal, sign_proposal

    cert = Certificate(height, rnd, ids[2], tuple(sorted(sigs))) if sigs else None
    block = Block(height=height, time_ms=time_ms, proposer=proposer, prev_id=ids[0], app_hash=ids[1],
                  last_commit=cert, evidence=(), txs=tuple(txs))
    kp = crypto.keypair_from_entropy(b"fast-proposal")
    vr = rnd - 1 if sigs and rnd > 0 else -1
    pol = tuple(sigs) if vr >= 0 else ()
    p = sign_proposal("chain", crypto.Signer(kp), proposer, height, rnd, vr, block, pol)
    env = p.envelope("chain")
    plain = codec.signing_bytes("chain", proposer, codec.Kind.PROPOSAL, p.body())
    assert env.frame == codec.frame_of(plain, p.signature) and crypto.verify(kp.public_key, plain, p.signature)
    back = Proposal.from_envelope(codec.decode_envelope(env.frame, chain_id="chain", keys={proposer: kp.public_key}))
    assert back == p and back.block.id == block.id
