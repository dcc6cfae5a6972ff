"""The live node's parts that need no broker: store encodings, snapshots and replay, filters, timing."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from consortium import crypto
from consortium.consensus import events as ev
from consortium.consensus.app import BlockContext
from consortium.consensus.messages import ZERO_ID, Block, Certificate
from consortium.errors import LocalError, UserError
from consortium.home import init_home, load_genesis, load_key
from consortium.ledger import Ledger
from consortium.ledger.workload import Workload
from consortium.node.livestore import LiveStore
from consortium.node.netfilter import (
    NO_FILTER,
    FilterFile,
    NetFilter,
    clear_filter,
    filter_path,
    parse_filter,
    write_filter,
)
from consortium.node.runtime import BLOCK_INTERVAL_ENV, timing_params
from consortium.store.sqlite import StoreDamaged
from tests.conftest import NODES


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("units") / "home"
    init_home(path, NODES, "units-1", force=False)
    return path


def chain_of(home: Path, heights: int, txs_per_block: int = 3) -> list[ev.Commit]:
    """Commits as a replica would emit them, for a workload applied to a fresh ledger."""
    genesis = load_genesis(home)
    keys = {i: load_key(home, i, genesis) for i in ("carrier-sh", "bank-hk", "sh-exporter", "hk-importer")}
    work = Workload(genesis, keys, random.Random(7))
    ledger = Ledger(genesis)
    commits: list[ev.Commit] = []
    prev = ZERO_ID
    for h in range(1, heights + 1):
        txs = tuple(work.take(txs_per_block, genesis.genesis_time_ms + h * 1000))
        block = Block(h, genesis.genesis_time_ms + h * 1000, "hkma", prev, ledger.state_root(), None, (), txs)
        results = ledger.apply_block(BlockContext(h, block.time_ms, "hkma"), txs)
        cert = Certificate(h, 0, block.id, (("hkma", b"\x01" * 64),))
        commits.append(ev.Commit(block, cert, tuple(results), ledger.state_root()))
        prev = block.id
    return commits


def test_guard_keeps_payload_and_lock(home: Path, tmp_path: Path) -> None:
    genesis = load_genesis(home)
    with LiveStore(tmp_path / "s.db", genesis.chain_id, genesis.digest()) as store:
        assert store.replica_guard() is None
        store.persist(ev.Persist(3, 1, ev.Step.PREVOTE, b"signed frames", b"lock state"))
        g = store.replica_guard()
        assert g is not None and (g.height, g.round, g.step, g.payload, g.lock) == (
            3, 1, ev.Step.PREVOTE, b"signed frames", b"lock state")
        with pytest.raises(LocalError):  # a second, different message for the same step
            store.persist(ev.Persist(3, 1, ev.Step.PREVOTE, b"other frames", b"lock state"))


def test_boot_restores_the_snapshot_and_replays_the_blocks_after_it(home: Path, tmp_path: Path) -> None:
    genesis = load_genesis(home)
    commits = chain_of(home, 7)
    with LiveStore(tmp_path / "s.db", genesis.chain_id, genesis.digest()) as store:
        replay = Ledger(genesis)
        for c in commits:
            replay.apply_block(BlockContext(c.block.height, c.block.time_ms, "hkma"), c.block.txs)
            store.commit(c, replay.snapshot() if c.block.height == 4 else None)
        assert store.last_height() == 7 and store.snapshot_height() == 4
        assert store.restore_ledger(genesis).state_root() == commits[-1].state_root
        last = store.last_decided()
        assert last is not None and last.block == commits[-1].block
        first_tx = commits[0].results[0].tx_hash
        found = store.tx_result(first_tx)
        assert found is not None and found["height"] == 1 and found["code"] == commits[0].results[0].code
        assert store.decided_wire(2) == {"block": commits[1].block.to_wire(),
                                         "certificate": commits[1].certificate.to_wire()}


def test_boot_refuses_a_store_whose_roots_do_not_replay(home: Path, tmp_path: Path) -> None:
    genesis = load_genesis(home)
    c = chain_of(home, 1)[0]
    bad = ev.Commit(c.block, c.certificate, c.results, crypto.digest(b"not the root"))
    with LiveStore(tmp_path / "s.db", genesis.chain_id, genesis.digest()) as store:
        store.commit(bad, None)
        with pytest.raises(StoreDamaged, match="state root after height 1"):
            store.restore_ledger(genesis)


def test_filter_parsing_and_file_polling(tmp_path: Path) -> None:
    assert parse_filter({}) == NO_FILTER and not NO_FILTER.active
    f = parse_filter({"drop": 0.5, "delay_ms": 20, "block": ["hkma"]})
    assert f.active and f.block == frozenset({"hkma"})
    for bad in ({"drop": 2}, {"delay_ms": -1}, {"block": ["Not An Id"]}, {"loss": 1}, [], {"drop": True}):
        with pytest.raises(UserError):
            parse_filter(bad)
    watcher = FilterFile(filter_path(tmp_path, "sdb"), random.Random(1))
    assert watcher.poll() == NO_FILTER
    write_filter(tmp_path, "sdb", NetFilter(block=frozenset({"hkma"})))
    assert watcher.poll().block == frozenset({"hkma"})
    assert watcher.verdict("hkma") == "blocked" and watcher.verdict("bank-hk") is None
    filter_path(tmp_path, "sdb").write_text("{not json")  # a broken file keeps the last good filter
    os.utime(filter_path(tmp_path, "sdb"), ns=(1, 1))
    assert watcher.poll().block == frozenset({"hkma"})
    write_filter(tmp_path, "sdb", NetFilter(drop=1.0))
    assert watcher.poll().drop == 1.0 and watcher.verdict("bank-hk") == "dropped"
    clear_filter(tmp_path, "sdb")
    assert watcher.poll() == NO_FILTER
    assert json.loads(json.dumps(NetFilter(drop=0.1).to_dict())) == {"drop": 0.1, "delay_ms": 0, "block": []}


def test_block_interval_override(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    genesis = load_genesis(home)
    assert timing_params(genesis, None) == genesis.params
    assert timing_params(genesis, 50)["block_interval_ms"] == 50
    monkeypatch.setenv(BLOCK_INTERVAL_ENV, "75")
    assert timing_params(genesis, None)["block_interval_ms"] == 75
    monkeypatch.setenv(BLOCK_INTERVAL_ENV, "soon")
    with pytest.raises(UserError):
        timing_params(genesis, None)


def test_a_stale_status_record_does_not_lower_a_peers_height(home: Path) -> None:
    """A status record older (by its own time) than the one a node holds for that peer is
    dropped and counted: replaying a stale retained record on the broker must not make the
    node believe the peer fell back to an earlier height."""
    from consortium.node.runtime import NodeOptions, NodeRuntime

    rt = NodeRuntime(NodeOptions(home=home, node_id="hkma", broker="mqtt://127.0.0.1:1"))
    try:
        rt._note_status("sdb", {"height": 40, "info": {"time_ms": 2_000, "state": "running"}})
        rt._note_status("sdb", {"height": 3, "info": {"time_ms": 1_000, "state": "running"}})
        assert rt._peer_heights["sdb"] == 40 and rt._peer_status["sdb"] == (40, "running", 2_000)
        assert rt.errors.get("stale_status") == 1
        rt._note_status("sdb", {"height": 41, "info": {"time_ms": 2_500, "state": "running"}})
        assert rt._peer_heights["sdb"] == 41
    finally:
        rt.store.close()
