"""The consortium of a scenario: members and parties from nodes/ (or the
scenario's own directory) with keys derived from the seed, for the simulator."""

from __future__ import annotations

from pathlib import Path

from consortium import crypto
from consortium.config import default_members_dir, load_consortium
from consortium.genesis import DEFAULT_CHAIN_ID, DEFAULT_GENESIS_TIME_MS, Genesis
from consortium.types import Member, Party


def seeded_genesis(members_dir: Path | None, seed: int, genesis_time_ms: int = DEFAULT_GENESIS_TIME_MS
                   ) -> tuple[Genesis, dict[str, crypto.KeyPair]]:
    c = load_consortium(members_dir or default_members_dir())
    ids = [m.id for m in c.members] + [p.id for p in c.parties]
    keys = {i: crypto.keypair_from_entropy(f"scenario:{seed}:{i}".encode()) for i in ids}
    members = tuple(Member(m.id, m.name, m.role, m.jurisdiction, m.validator, m.power, keys[m.id].public_key)
                    for m in c.members)
    parties = tuple(Party(p.id, p.name, p.role, p.jurisdiction, keys[p.id].public_key) for p in c.parties)
    return Genesis(DEFAULT_CHAIN_ID, genesis_time_ms, members, parties), keys
