"""Persist before send, for every signed message (the driver contract of events.py).

Invariant: in every action list a replica returns, every proposal or vote it
signed is preceded by a `Persist` for exactly that (height, round, step) whose
payload holds exactly that frame; persisted slots strictly increase; a node never
signs two different frames for one slot, across restarts too. `SigningAudit`
(tests/consensus/harness.py) checks this on every step of every harness test;
here it is shown to have teeth, then run over many random schedules.
"""

from __future__ import annotations

import random

import pytest

from consortium import codec
from consortium.consensus import events as ev
from tests.consensus.harness import NIL, PREVOTE, TK, Network, SigningAudit


def _persist_for(env: codec.Envelope, step: ev.Step = ev.Step.PREVOTE) -> ev.Persist:
    b = env.body
    return ev.Persist(b["height"], b["round"], step, codec.encode([env.encode()]), b"")


def test_the_audit_accepts_the_contract_and_refuses_every_way_of_breaking_it() -> None:
    """A vote sent after a Persist covering it passes; sent first, sent alone, covered
    by a Persist of another step or another value, a slot persisted twice, or a
    second different vote for a slot: each is refused."""
    net = Network(live=["a"])
    v = net.block()
    nil_vote = net.sign_vote("a", PREVOTE, 0, NIL)
    v_vote = net.sign_vote("a", PREVOTE, 0, v.id)
    persist, send = _persist_for(nil_vote), ev.Broadcast(nil_vote)

    SigningAudit().check("a", [persist, send])
    SigningAudit().check("a", [persist, ev.ScheduleTimeout(TK.PREVOTE, 1, 0, 1), ev.SendTo("b", nil_vote)])
    broken: list[list[ev.Action]] = [
        [send, persist], [send], [_persist_for(nil_vote, ev.Step.PRECOMMIT), send], [_persist_for(v_vote), send],
        [persist, persist, send]]
    for bad in broken:
        with pytest.raises(AssertionError):
            SigningAudit().check("a", bad)

    audit = SigningAudit()
    audit.check("a", [persist, send])
    audit.check("a", [send])  # a re-send of a frame persisted earlier is fine
    with pytest.raises(AssertionError):  # the second vote for (1, 0, prevote) is not covered
        audit.check("a", [ev.Broadcast(v_vote)])
    other = net.sign_vote("a", PREVOTE, 1, v.id)
    audit.check("a", [_persist_for(other), ev.Broadcast(other)])
    with pytest.raises(AssertionError):  # persisting an earlier slot again
        audit.check("a", [_persist_for(v_vote), ev.Broadcast(v_vote)])


def test_the_audit_sees_real_replica_output() -> None:
    """Not vacuous: the harness audits what replicas return (signed frames counted)."""
    net = Network()
    net.start()
    net.settle()
    assert all(len(net.decided(i)) == 1 for i in net.ids)
    assert net.audit.frames >= 4 * 2 + 1  # every prevote and precommit, and the proposal


def explore(seed: int, n: int, powers: list[int] | None, steps: int) -> Network:
    """A random schedule: messages delivered in any order, lost or duplicated,
    timers fired in any order (stale ones too), nodes restarted, txs submitted.
    The harness audits every action list on the way."""
    rng = random.Random(seed)
    net = Network(n, powers=powers)
    net.start()
    for i in range(steps):
        r = rng.random()
        if net.inflight and r < 0.85:
            net.deliver_in_order([rng.choice(net.inflight)])
        elif net.inflight and r < 0.90:
            m = rng.choice(net.inflight)
            net.drop(where=lambda x, m=m: x is m)
        elif net.inflight and r < 0.92:
            m = rng.choice(net.inflight)
            net.send(m.env, to=m.dst, src=m.src)
        elif r < 0.98:
            node = rng.choice(net.live)
            if net.timers[node]:
                t = rng.choice(net.timers[node]).timeout
                net.fire_timeout(node, t.kind, round=t.round)
        elif r < 0.99:
            net.restart(rng.choice(net.live))
        else:
            net.submit(b"kv:k%d=%d" % (i % 7, i))
    return net


@pytest.mark.parametrize(("n", "powers"), [(4, None), (4, [40, 10, 10, 10]), (7, None), (7, [5, 1, 2, 3, 4, 1, 2])])
def test_every_signed_frame_of_random_schedules_is_persisted_first(n: int, powers: list[int] | None) -> None:
    """Over many random schedules (loss, duplication, reordering, stale timers,
    restarts), every action list of every replica obeys the signing contract, and
    the decided chains agree."""
    frames = decided = 0
    for seed in range(8):
        net = explore(seed, n, powers, steps=150 * n)
        frames += net.audit.frames
        by_height: dict[int, set[bytes]] = {}
        for i in net.ids:
            for b in net.decided(i):
                by_height.setdefault(b.height, set()).add(b.id)
        assert all(len(ids) == 1 for ids in by_height.values()), f"seed {seed}: disagreement"
        decided += len(by_height)
    assert frames > 500 and decided > 8, (frames, decided)
