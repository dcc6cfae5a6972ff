"""MQTT topic names. The sender's id is a topic level, so a broker ACL can pin
each member to its own topics (`consortium/<chain>/<member>/#`, home.acl_for).

    consortium/<chain>/<sender>/<kind>                    broadcast
    consortium/<chain>/<sender>/to/<recipient>/<kind>     direct (e.g. sync replies)
    consortium/<chain>/<sender>/status                    retained status (kind "status")
    consortium/<chain>/<node>/to/<actor>/tx_refused       a node tells a submitter its tx failed admission

The two shapes differ in their number of levels, so an id that happens to be
"to" cannot make a topic ambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

from consortium import limits
from consortium.codec import Kind
from consortium.errors import LocalError, RemoteError
from consortium.home import topic_root
from consortium.types import id_problem

#: Drop reason for a topic that is not one of the shapes above under our chain.
TOPIC = "topic"
_DIRECT = "to"


def root(chain_id: str) -> str:
    return topic_root(chain_id)


def broadcast(chain_id: str, sender: str, kind: Kind) -> str:
    return f"{root(chain_id)}/{_own_id(sender)}/{Kind(kind)}"


def direct(chain_id: str, sender: str, recipient: str, kind: Kind) -> str:
    return f"{root(chain_id)}/{_own_id(sender)}/{_DIRECT}/{_own_id(recipient)}/{Kind(kind)}"


def status(chain_id: str, sender: str) -> str:
    return broadcast(chain_id, sender, Kind.STATUS)


def refusals_for(chain_id: str, actor: str) -> str:
    """What a tx submitter subscribes to: every node's TX_REFUSED addressed to `actor`
    (a direct message, so the broker's ACL lets only the node publish it, under its own id)."""
    return f"{root(chain_id)}/+/{_DIRECT}/{_own_id(actor)}/{Kind.TX_REFUSED}"


def subscriptions(chain_id: str, node_id: str | None) -> list[str]:
    """What a node subscribes to: every broadcast, and direct messages to itself
    only (the broker filters the rest, so others' sync traffic costs us nothing).
    An observer (node_id None) sees broadcasts only."""
    filters = [f"{root(chain_id)}/+/+"]
    if node_id is not None:
        filters.append(f"{root(chain_id)}/+/{_DIRECT}/{_own_id(node_id)}/+")
    return filters


@dataclass(frozen=True, slots=True)
class Topic:
    sender: str
    kind: Kind
    recipient: str | None  # None for a broadcast


def parse(topic: str, chain_id: str) -> Topic:
    """Read a topic from the wire; RemoteError(TOPIC) unless it is well formed and ours."""
    prefix = root(chain_id) + "/"
    if len(topic) > limits.topic_bytes_max or not topic.startswith(prefix):
        raise RemoteError(TOPIC, "not under our chain's root")
    levels = topic[len(prefix):].split("/")
    if len(levels) == 2:
        sender, kind, recipient = levels[0], levels[1], None
    elif len(levels) == 4 and levels[1] == _DIRECT:
        sender, kind, recipient = levels[0], levels[3], levels[2]
    else:
        raise RemoteError(TOPIC, f"{len(levels)} levels after the root")
    if id_problem(sender) is not None or (recipient is not None and id_problem(recipient) is not None):
        raise RemoteError(TOPIC, "sender or recipient is not a valid id")
    try:
        known = Kind(kind)
    except ValueError:
        raise RemoteError(TOPIC, "unknown kind level") from None
    return Topic(sender, known, recipient)


def _own_id(ident: str) -> str:
    """Ids we put into topics ourselves: a bad one is our bug."""
    problem = id_problem(ident)
    if problem is not None:
        raise LocalError(f"topic id {ident!r} {problem}")
    return ident

