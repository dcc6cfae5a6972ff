"""The replica's third-round fast paths (issue 12, simulator speed) change no result. Each is
checked against the code it replaced, which lives only here:

1. `Replica.receive` records the common vote (a validator's, our height, a round from ours
   to rounds_ahead_max ahead) without `_on_envelope` / `_record`; `_record_vote` counts a
   vote's power itself (no `_add_power`); `Replica.timeout` returns at once for a timer of
   another height. Whole simulations with the former methods and with the new ones end
   with the same results, trace digests, replica counters and mempools, with Byzantine
   members, crashes, loss, partitions, twins and explored schedules.
2. A block's encoding built as the canonical value itself (`Block._encoded_plain`) is
   `codec.encode(block.to_wire())`, and where it declines the general walk gives the same
   bytes or raises the same error, for any field values (odd types and ranges included).
3. The guard's payload and lock record written without the canonical walk are the bytes
   `codec.encode` gives for them.
4. `Certificate.problem` checks each signature without building a Vote: the same verdict
   and message as the Vote-based check, for valid, forged, foreign, repeated and unknown
   signatures.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortium import codec, crypto
from consortium.codec import Kind, pack_canonical
from consortium.consensus import events as ev
from consortium.consensus.messages import (
    Block,
    Certificate,
    DuplicateVote,
    Vote,
    sign_vote,
)
from consortium.consensus.replica import Replica, Step
from consortium.consensus.validators import Validator, ValidatorSet
from consortium.explore.schedule import Options, generate
from consortium.sim import node as sim_node
from consortium.sim.core import Simulation
from tests.sim.helpers import config

# ------------------------------------------------------------------ 1. the replica's vote and timer paths


class _Before(Replica):
    """The replica's receive, timeout and vote recording as they were before this round."""

    def receive(self, env: codec.Envelope, now_ms: int) -> list[ev.Action]:
        self._out = []
        self._now = now_ms
        h = self.h
        if env.kind in (Kind.PREVOTE, Kind.PRECOMMIT) and not h.decidable:
            before = h.crossings
            self._on_envelope(env)
            if self.h is h and h.crossings == before and not h.decidable:
                out, self._out = self._out, []
                return out
        else:
            self._on_envelope(env)
        self._process()
        out, self._out = self._out, []
        return out

    def timeout(self, kind: ev.TimeoutKind, height: int, rnd: int, now_ms: int) -> list[ev.Action]:
        self._out = []
        self._now = now_ms
        if self._on_timeout(kind, height, rnd):
            self._process()
        out, self._out = self._out, []
        return out

    def _record_vote(self, vote: Vote) -> None:
        validator, rnd = vote.validator, vote.round
        key = (vote.kind, rnd)
        h = self.h
        slot = h.votes.get(key)
        if slot is None:
            slot = h.votes[key] = {}
            tally = h.tally[key] = {}
        else:
            tally = h.tally[key]
        known = slot.get(validator)
        power = self.validators.powers.get(validator, 0)
        if known is not None:
            if known.block_id == vote.block_id:
                return
            self._note_evidence(DuplicateVote(known, vote))
            extra = self.h.conflicts.setdefault(key, {})
            if (vote.validator, vote.block_id) not in extra:
                extra[(vote.validator, vote.block_id)] = vote
                self._add_power(tally, vote, power)
            return
        if vote.validator == self.me:
            self._learn_own(vote.height, vote.round, Step.PREVOTE if vote.kind == Kind.PREVOTE else Step.PRECOMMIT,
                            f"our {vote.kind} in a peer's message")
        slot[validator] = vote
        self._add_power(tally, vote, power)
        total = h.total.get(key, 0)
        h.total[key] = total + power
        if total < self.validators.quorum <= total + power:
            h.crossings += 1
        self._note_sender(rnd, validator)

    def _add_power(self, tally: dict[bytes | None, int], vote: Vote, power: int) -> None:
        before = tally.get(vote.block_id, 0)
        tally[vote.block_id] = before + power
        q = self.validators.quorum
        if before < q <= before + power:
            self.h.crossings += 1
            if vote.kind == Kind.PRECOMMIT and vote.block_id is not None:
                self.h.decidable += 1


CASES: dict[str, Any] = {
    "n4": config(4, heights=25, seed=1),
    "double-vote": config(4, heights=6, seed=4, bad={"hk-2": "double-vote"}),
    "equivocators-crash": config(7, heights=5, seed=6, bad={"sh-1": "equivocate", "hk-1": "equivocate"},
                                 faults=["1500:crash:sh-3", "6000:restart:sh-3"]),
    "loss-partition": config(4, heights=6, seed=3, drop=0.1, faults=[
        "500:crash:sh-2", "2500:partition:sh-1,hk-1|sh-2,hk-2", "4000:heal", "4000:restart:sh-2"]),
    "rollback-replay": config(5, heights=8, seed=9, bad={"hk-1": "replay"}, faults=["3000:rollback:sh-2:3"]),
}


def _outcome(sim: Simulation) -> dict[str, Any]:
    out = sim.run().to_dict()
    out["counters"] = {i: dict(sorted(n.replica.counters.items())) for i, n in sim.nodes.items()}
    out["mempools"] = {i: len(n.replica.mempool) for i, n in sim.nodes.items()}
    out["guards"] = {i: n.store.guard for i, n in sim.nodes.items()}
    return out


@pytest.mark.parametrize("name", [*CASES, "twins-2", "explore-13"])
def test_the_fused_vote_and_stale_timer_paths_give_the_former_results(name: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Invariant 1: identical results, digests, counters, mempools and stored guards."""
    if name == "twins-2":
        cfg = generate(2, Options(generator="twins")).config()
    elif name == "explore-13":  # votes of earlier rounds reach nodes ahead (help for lagging peers)
        cfg = generate(13, Options()).config()
    else:
        cfg = CASES[name]
    new = _outcome(Simulation(cfg))
    monkeypatch.setattr(sim_node, "Replica", _Before)
    old = _outcome(Simulation(cfg))
    assert new == old


# ------------------------------------------------------------------ 2. a block's encoding

# mostly plain values (the plain encoding applies only when all are), and every odd kind
_INTS = st.one_of(*[st.integers(-5, 2**40)] * 4, st.integers(-(2**64), 2**65), st.booleans(),
                  st.sampled_from([Step.PREVOTE]))
_TEXT = st.one_of(*[st.text(max_size=6)] * 4, st.sampled_from([Kind.PREVOTE]))
_BYTES = st.one_of(*[st.binary(max_size=33)] * 4, st.builds(bytearray, st.binary(max_size=4)))
_PAIR = st.one_of(*[st.tuples(_TEXT, _BYTES)] * 4, st.tuples(st.text(max_size=3)),
                  st.lists(st.binary(max_size=3), min_size=2, max_size=2))


def _vote(validator: str, block_id: bytes | None) -> Vote:
    return Vote(Kind.PREVOTE, 3, 0, block_id, validator, b"\x07" * 64)


_CERT = st.builds(Certificate, _INTS, _INTS, _BYTES, st.one_of(st.lists(_PAIR, max_size=4).map(tuple),
                                                             st.lists(_PAIR, max_size=2)))
_EVIDENCE = st.one_of(*[st.just(())] * 3, st.lists(st.builds(
    lambda v: DuplicateVote(_vote(v, None), _vote(v, b"\x01" * 32)), st.text(max_size=3)), min_size=1, max_size=1).map(tuple))
_TXS = st.one_of(*[st.lists(st.binary(max_size=9), max_size=6).map(tuple)] * 4,
                 st.lists(st.one_of(st.binary(max_size=3), st.text(max_size=2)), max_size=3).map(tuple),
                 st.lists(st.binary(max_size=3), max_size=3))


def _result(f: Any) -> tuple[str, Any]:
    try:
        return ("ok", f())
    except Exception as exc:  # the same error, type and message
        return (type(exc).__name__, str(exc))


@given(_INTS, _INTS, _TEXT, _BYTES, _BYTES, st.none() | _CERT, _EVIDENCE, _TXS)
def test_a_blocks_plain_encoding_is_its_canonical_encoding(height: Any, time_ms: Any, proposer: Any, prev_id: Any,
                                                           app_hash: Any, last_commit: Any, evidence: Any,
                                                           txs: Any) -> None:
    """Invariant 2: where the plain encoding applies it is codec's; everywhere, `encoded` gives
    what the general walk gives (bytes, or the same error)."""
    b = Block(height=height, time_ms=time_ms, proposer=proposer, prev_id=prev_id, app_hash=app_hash,
              last_commit=last_commit, evidence=evidence, txs=txs, id=b"given")  # id given: nothing encoded yet
    general = _result(lambda: codec.encode(b.to_wire()))
    plain = _result(b._encoded_plain)
    assert plain[0] == "ok"  # it never raises: it declines
    if plain[1] is not None:
        assert general == plain
    assert _result(lambda: b.encoded) == general


_PLAIN_CERT = Certificate(4, 1, b"\x02" * 32, (("sh-1", b"\x03" * 64), ("sh-2", b"\x04" * 64)))
_ODD: list[tuple[str, Any]] = [
    *[(f, v) for f in ("height", "time_ms") for v in (2**64, 2**64 - 1, -(2**63) - 1, -(2**63), True, Step.PREVOTE)],
    ("proposer", Kind.PREVOTE), ("proposer", b"sh-1"), ("prev_id", bytearray(b"x")), ("app_hash", "text"),
    ("txs", [b"a"]), ("txs", (b"a", "t")), ("txs", (bytearray(b"a"),)), ("txs", ()),
    *[("last_commit", Certificate(*args)) for args in (
        (2**64, 1, b"\x02", ()), (4, -(2**63) - 1, b"\x02", ()), (4, False, b"\x02", ()), (4, 1, bytearray(b"\x02"), ()),
        (4, 1, b"\x02", [("a", b"s")]), (4, 1, b"\x02", (("a", b"s", b"t"),)), (4, 1, b"\x02", (("a", bytearray(b"s")),)),
        (4, 1, b"\x02", ((Kind.PREVOTE, b"s"),)), (4, 1, b"\x02", (["a", b"s"],)), (4, 1, b"\x02", ()))],
    ("evidence", (DuplicateVote(_vote("a", None), _vote("a", b"\x01" * 32)),)),
]


@pytest.mark.parametrize(("field", "value"), _ODD)
def test_one_odd_field_gives_the_general_encoding(field: str, value: Any) -> None:
    """Invariant 2, one field at a time off a plain block: bounds, bools, enums, subclasses, lists."""
    fields: dict[str, Any] = dict(height=7, time_ms=9, proposer="sh-1", prev_id=b"\x00" * 32, app_hash=b"\x01" * 32,
                                  last_commit=_PLAIN_CERT, evidence=(), txs=(b"kv:a=1",))
    fields[field] = value
    b = Block(**fields, id=b"given")
    assert _result(lambda: b.encoded) == _result(lambda: codec.encode(b.to_wire()))


def test_the_blocks_of_a_run_take_the_plain_encoding() -> None:
    """The blocks a simulation decides (with and without a last commit) are all encoded the plain way."""
    sim = Simulation(config(4, heights=4, seed=2))
    sim.run()
    blocks = [d.block for d in sim.nodes["sh-1"].store.decided]
    assert len(blocks) == 4 and blocks[0].last_commit is None and blocks[1].txs
    for b in blocks:
        assert b._encoded_plain() == codec.encode(b.to_wire()) == b.encoded


# ------------------------------------------------------------------ 3. guard payload and lock record


@given(st.lists(st.binary(max_size=300), max_size=4))
def test_a_list_of_frames_is_packed_as_codec_encodes_it(frames: list[bytes]) -> None:
    """Invariant 3, the payload: a list of exact bytes."""
    assert pack_canonical(frames) == codec.encode(frames)


class _LockState:
    """What Replica._lock_bytes reads and writes."""

    def __init__(self, locked: Block | None, locked_round: int, valid: Block | None, valid_round: int) -> None:
        self.locked, self.locked_round, self.valid_value, self.valid_round = locked, locked_round, valid, valid_round
        self._lock_memo: Any = None


@given(st.integers(-1, 2**63 - 1), st.integers(-1, 2**63 - 1), st.booleans(), st.booleans(),
       st.lists(st.binary(max_size=8), max_size=3))
def test_the_lock_record_is_the_canonical_encoding_of_its_fields(locked_round: int, valid_round: int, has_lock: bool,
                                                                 has_valid: bool, txs: list[bytes]) -> None:
    """Invariant 3, the lock record: the bytes of the record with the blocks' fields, keys in any order."""
    block = Block(height=2, time_ms=5, proposer="sh-1", prev_id=b"\x00" * 32, app_hash=b"\x01" * 32,
                  last_commit=None, evidence=(), txs=tuple(txs))
    state = _LockState(block if has_lock else None, locked_round, block if has_valid else None, valid_round)
    got = Replica._lock_bytes(state)  # type: ignore[arg-type]
    assert got == codec.encode({"locked_round": locked_round, "locked": block.to_wire() if has_lock else None,
                                "valid_round": valid_round, "valid": block.to_wire() if has_valid else None})
    assert Replica._lock_bytes(state) is got  # (the memo: the same lock state, the same bytes)  # type: ignore[arg-type]


# ------------------------------------------------------------------ 4. certificates

_KEYS = [crypto.keypair_from_entropy(b"cert-%d" % i) for i in range(4)]
_SET = ValidatorSet.of(Validator(f"v{i}", 1 + i % 2, k.public_key) for i, k in enumerate(_KEYS))


def _problem_before(cert: Certificate, chain: str, validators: ValidatorSet,
                    known: frozenset[tuple[str, bytes]]) -> str | None:
    seen: set[str] = set()
    power = 0
    for vid, sig in cert.signatures:
        v = validators.get(vid)
        if v is None or vid in seen:
            return f"signature by unknown or repeated validator {vid!r}"
        seen.add(vid)
        if (vid, sig) not in known and not Vote(Kind.PRECOMMIT, cert.height, cert.round, cert.block_id, vid,
                                                sig).verify(chain, v.public_key):
            return f"bad precommit signature of {vid!r}"
        power += v.power
    if power < validators.quorum:
        return f"certificate power {power} < quorum {validators.quorum}"
    return None


@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["good", "forged", "other-chain", "other-key",
                                                              "other-round", "known-junk"])), max_size=6),
       st.integers(1, 3), st.integers(0, 2), st.booleans())
def test_certificate_checks_without_votes_give_the_former_verdicts(sigs: list[tuple[int, str]], height: int, rnd: int,
                                                                   memo: bool) -> None:
    """Invariant 4, with and without a verify memo."""
    block_id = b"\x05" * 32
    pairs, known = [], set()
    for i, how in sigs:
        vid = f"v{i}"  # v4, v5: not validators
        kp = _KEYS[i % 4] if how != "other-key" else _KEYS[(i + 1) % 4]
        vote = sign_vote("other" if how == "other-chain" else "chain", crypto.Signer(kp), vid, Kind.PRECOMMIT, height,
                         rnd + (how == "other-round"), block_id)
        sig = vote.signature if how != "forged" else bytes([vote.signature[0] ^ 1]) + vote.signature[1:]
        if how == "known-junk":
            sig = b"\x09" * 64
            known.add((vid, sig))
        pairs.append((vid, sig))
    cert = Certificate(height, rnd, block_id, tuple(pairs))
    if memo:
        with crypto.memoised(crypto.VerifyMemo()):
            assert cert.problem("chain", _SET, frozenset(known)) == _problem_before(cert, "chain", _SET, frozenset(known))
    assert cert.problem("chain", _SET, frozenset(known)) == _problem_before(cert, "chain", _SET, frozenset(known))
