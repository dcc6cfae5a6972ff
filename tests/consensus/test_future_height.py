"""Future-height buffering: messages for height h+1 that arrive at height h.

Invariant: a replica at height h keeps (up to `limits.future_messages_max`)
proposals and votes for height h+1 and processes them as soon as it reaches h+1;
messages further ahead are not kept; the bound holds whatever a peer sends.
Seeing a peer ahead also makes it ask that peer for the blocks it missed.
"""

from __future__ import annotations

from consortium import codec, limits
from consortium.codec import Kind
from consortium.consensus import events as ev
from consortium.consensus.messages import Block, Decided
from tests.consensus.harness import PRECOMMIT, PREVOTE, Network, commits, sent

X = "a"
PEERS = ["b", "c", "d"]


def _two_heights(net: Network) -> tuple[Block, Block]:
    """Blocks v1 (height 1) and v2 (height 2, on top of v1 with its certificate)."""
    v1 = net.block()
    v2 = net.block(chain=[Decided(v1, net.certificate(v1, PEERS))])
    return v1, v2


def _height_2_messages(net: Network, v2: Block) -> list[codec.Envelope]:
    return [net.sign_proposal(0, v2), *net.sign_votes(PRECOMMIT, 0, v2.id, PEERS, height=2)]


def test_next_height_messages_are_buffered_and_used_on_arrival_there() -> None:
    """At height 1, X receives the whole of height 2 (proposal and 2f+1 precommits):
    nothing is decided yet, X asks a peer for height 1. When height 1 is decided the
    buffered messages are replayed and height 2 is decided in the same step."""
    net = Network(live=[X])
    net.start()
    v1, v2 = _two_heights(net)
    acts = net.receive(X, *_height_2_messages(net, v2))
    assert commits(acts) == [] and net.view(X).height == 1
    [req] = sent(acts, Kind.SYNC_REQUEST)
    assert req.body == {"from_height": 1, "to_height": 1}
    assert len(net.replicas[X].future) == 4

    net.receive(X, net.sign_proposal(0, v1))
    acts = net.receive(X, *net.sign_votes(PRECOMMIT, 0, v1.id, PEERS))
    assert [c.block.id for c in commits(acts)] == [v1.id, v2.id]
    assert net.view(X).height == 3 and net.replicas[X].future == []


def test_only_the_next_height_is_buffered() -> None:
    """Messages for h+2 or later are dropped (counted), not kept; older heights are stale."""
    net = Network(live=[X])
    net.start()
    net.receive(X, net.sign_vote("b", PREVOTE, 0, None, height=3), net.sign_vote("b", PREVOTE, 0, None, height=9))
    assert net.replicas[X].future == [] and net.replicas[X].counters["future_dropped"] == 2


def test_the_buffer_is_bounded() -> None:
    """A peer that floods X with height-2 messages fills the buffer up to its bound
    and no further: the excess, even genuine messages, is dropped, so height 2 is
    not decided from the buffer when height 1 is."""
    net = Network(live=[X])
    net.start()
    v1, v2 = _two_heights(net)
    junk = net.sign_vote("b", PREVOTE, 0, None, height=2)
    checked = net.receive(X, junk)  # through the driver's checks once; then the same envelope again and again
    assert commits(checked) == []
    for _ in range(limits.future_messages_max - 1):
        net.step(X, ev.Received(junk, net.now))
    assert len(net.replicas[X].future) == limits.future_messages_max
    net.receive(X, *_height_2_messages(net, v2))
    assert len(net.replicas[X].future) == limits.future_messages_max
    assert net.replicas[X].counters["future_dropped"] == 4

    net.receive(X, net.sign_proposal(0, v1))
    acts = net.receive(X, *net.sign_votes(PRECOMMIT, 0, v1.id, PEERS))
    assert [c.block.id for c in commits(acts)] == [v1.id]
    assert net.view(X).height == 2
