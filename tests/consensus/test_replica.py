"""Unit tests of the sans-I/O replica and its values."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortium import codec, crypto, types
from consortium.codec import Kind
from consortium.consensus import events as ev
from consortium.consensus.mempool import Mempool
from consortium.consensus.messages import Certificate, Vote, sign_vote
from consortium.consensus.replica import Guard, Replica, Restored
from consortium.consensus.validators import Validator, ValidatorSet
from consortium.genesis import DEFAULT_GENESIS_TIME_MS, default_params
from consortium.sim.kvapp import KVApp
from tests.consensus.harness import SigningAudit

CHAIN = "unit"
IDS = ["a", "b", "c", "d"]
KEYS = {i: crypto.keypair_from_entropy(i.encode()) for i in IDS}
VSET = ValidatorSet.of(Validator(i, 10, KEYS[i].public_key) for i in IDS)
T0 = DEFAULT_GENESIS_TIME_MS + 1000


def replica(me: str, restored: Restored | None = None) -> Replica:
    return Replica(chain_id=CHAIN, validators=VSET, me=me, signer=crypto.Signer(KEYS[me]), app=KVApp(),
                   params=default_params(), genesis_time_ms=DEFAULT_GENESIS_TIME_MS, restored=restored)


def broadcasts(actions: list[ev.Action]) -> list[codec.Envelope]:
    return [a.envelope for a in actions if isinstance(a, ev.Broadcast)]


@given(st.lists(st.integers(1, 50), min_size=1, max_size=12))
def test_proposer_schedule_is_weighted_and_deterministic(powers: list[int]) -> None:
    """Over one period each validator proposes in proportion to its power."""
    vs = ValidatorSet.of(Validator(f"v{i:02d}", p, bytes([i]) * 32) for i, p in enumerate(powers))
    again = ValidatorSet.of(reversed(vs.validators))
    from math import gcd
    g = 0
    for p in powers:
        g = gcd(g, p)
    period = sum(powers) // g
    if period > 100_000:
        return
    counts = Counter(vs.proposer(h, 0) for h in range(period))
    assert all(counts[v.id] == v.power // g for v in vs.validators)
    assert [vs.proposer(h, r) for h in range(20) for r in range(3)] == \
           [again.proposer(h, r) for h in range(20) for r in range(3)]


@pytest.mark.parametrize("n", [4, 7, 10, 13])
def test_quorum_is_2f_plus_1_for_equal_powers(n: int) -> None:
    f = (n - 1) // 3
    assert types.fault_tolerance([10] * n) == f
    q = types.quorum_power(10 * n)
    assert q * 3 > 2 * 10 * n >= (q - 1) * 3, "strictly above two thirds, and the least such"
    assert -(-q // 10) == 2 * f + 1, "2f+1 equal validators reach the quorum"


def _precommits(block_id: bytes, voters: list[str], height: int = 1, rnd: int = 0) -> list[Vote]:
    return [sign_vote(CHAIN, crypto.Signer(KEYS[v]), v, Kind.PRECOMMIT, height, rnd, block_id) for v in voters]


def test_certificate_checks() -> None:
    bid = b"\x01" * 32
    good = Certificate(1, 0, bid, tuple(sorted((v.validator, v.signature) for v in _precommits(bid, IDS[:3]))))
    assert good.problem(CHAIN, VSET) is None
    short = Certificate(1, 0, bid, good.signatures[:2])
    assert "quorum" in (short.problem(CHAIN, VSET) or "")
    dup = Certificate(1, 0, bid, good.signatures[:2] + good.signatures[:1])
    assert "repeated" in (dup.problem(CHAIN, VSET) or "")
    forged = Certificate(1, 0, bid, good.signatures[:2] + (("c", b"\x00" * 64),))
    assert "bad precommit" in (forged.problem(CHAIN, VSET) or "")
    other_block = Certificate(1, 0, b"\x02" * 32, good.signatures)
    assert other_block.problem(CHAIN, VSET) is not None
    stranger = Certificate(1, 0, bid, good.signatures + (("zz", b"\x00" * 64),))
    assert "unknown" in (stranger.problem(CHAIN, VSET) or "")


def _run_round(nodes: dict[str, Replica], audit: SigningAudit) -> None:
    """Deliver every broadcast to every other node until quiet (a perfect network),
    auditing every action list (persist before send, for every signed frame)."""
    def step(i: str, event: ev.Event) -> list[tuple[str, ev.Action]]:
        actions = nodes[i].step(event)
        audit.check(i, actions)
        return [(i, a) for a in actions]

    queue = [x for i in nodes for x in step(i, ev.Start(T0))]
    for _ in range(10_000):
        if not queue:
            return
        sender, action = queue.pop(0)
        if isinstance(action, ev.Broadcast):
            for i in nodes:
                if i != sender:
                    queue += step(i, ev.Received(action.envelope, T0))


def test_four_replicas_decide_height_one() -> None:
    """Four honest replicas on a perfect network decide the same block at height 1,
    and every vote or proposal each signed left only after a Persist covering it
    (the full check is tests/consensus/test_signing_order.py)."""
    nodes = {i: replica(i) for i in IDS}
    audit = SigningAudit()
    _run_round(nodes, audit)
    assert all(r.height == 2 for r in nodes.values())
    assert len({r.last.block.id for r in nodes.values() if r.last}) == 1
    assert audit.frames >= 9  # 1 proposal + 4 prevotes + 4 precommits, each audited


def test_guard_survives_restart_no_second_signature() -> None:
    """A validator that prevoted nil at (1, 0), crashed and restarted never signs
    another prevote at (1, 0), even when a valid proposal arrives: it re-sends
    exactly the bytes it signed before."""
    prop = replica(VSET.proposer(1, 0))
    proposal = broadcasts(prop.step(ev.Start(T0)))[0]
    me = next(i for i in IDS if i != VSET.proposer(1, 0))
    r = replica(me)
    r.step(ev.Start(T0))
    actions = r.step(ev.TimeoutFired(ev.TimeoutKind.PROPOSE, 1, 0, T0 + 5000))
    persist = next(a for a in actions if isinstance(a, ev.Persist))
    nil_vote = broadcasts(actions)[0]
    assert nil_vote.body["block_id"] is None
    guard = Guard(persist.height, persist.round, persist.step, persist.payload, persist.lock)
    again = replica(me, Restored(None, guard))
    out = again.step(ev.Start(T0 + 6000))
    assert [e.encode() for e in broadcasts(out)] == [nil_vote.encode()]
    out = again.step(ev.Received(proposal, T0 + 6000))
    assert not [e for e in broadcasts(out) if e.kind == Kind.PREVOTE], "no second prevote at (1, 0)"


def test_lock_survives_restart() -> None:
    """The lock travels with the guard: a restarted validator still holds it."""
    nodes = {i: replica(i) for i in IDS}
    proposer = VSET.proposer(1, 0)
    proposal = broadcasts(nodes[proposer].step(ev.Start(T0)))[0]
    me = next(i for i in IDS if i != proposer)
    r = nodes[me]
    r.step(ev.Start(T0))
    r.step(ev.Received(proposal, T0))
    bid = proposal.body["block"]
    out: list[ev.Action] = []
    for v in IDS:
        if v != me:
            vote = sign_vote(CHAIN, crypto.Signer(KEYS[v]), v, Kind.PREVOTE, 1, 0, r.h.proposals[0].block.id)
            out += r.step(ev.Received(vote.envelope(CHAIN), T0))
    assert r.locked is not None and r.locked_round == 0
    persist = [a for a in out if isinstance(a, ev.Persist)][-1]
    g = Guard(persist.height, persist.round, persist.step, persist.payload, persist.lock)
    back = replica(me, Restored(None, g))
    assert back.locked is not None and back.locked.id == r.locked.id and back.locked_round == 0
    assert bid is not None


def test_mempool_dedups_bounds_and_rechecks() -> None:
    m = Mempool(capacity=2)
    ok = lambda tx: None  # noqa: E731
    assert m.add(b"kv:a=1", ok) is None
    assert m.add(b"kv:a=1", ok) == "DUPE"
    assert m.add(b"kv:b=1", ok) is None
    assert m.add(b"kv:c=1", ok) == "MEMPOOL_FULL"
    m.remove_committed([b"kv:a=1"], lambda tx: "STALE" if tx == b"kv:b=1" else None)
    assert len(m) == 0
