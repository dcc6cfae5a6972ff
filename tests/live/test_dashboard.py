"""What readers show of the nodes' status records: the computed state, the record's
fields, and the dashboard at the widths terminals really have. No broker needed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from consortium import limits
from consortium.bus.broker import free_port
from consortium.cli.live_cmd import dashboard_table
from consortium.home import init_home, load_genesis
from consortium.node.runtime import NodeOptions, NodeRuntime
from consortium.node.status import Status
from tests.conftest import NODES


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_a_dead_nodes_last_record_reports_stale_not_running() -> None:
    """A node that died keeps its last retained record, which says "running": every
    reader (status --json included) must report the state computed from the record's
    age, "stale", never the node's own word."""
    old = _now_ms() - limits.status_stale_after_ms - 5_000
    s = Status("hkma", 12, 0, {"state": "running", "time_ms": old, "pid": 4242})
    d = s.to_dict()
    assert d["state"] == "stale" and s.state == "stale"
    assert d["age_ms"] >= limits.status_stale_after_ms and d["pid"] == 4242
    fresh = Status("hkma", 12, 0, {"state": "running", "time_ms": _now_ms()})
    assert fresh.to_dict()["state"] == "running"
    stopped = Status("hkma", 12, 0, {"state": "stopped", "time_ms": old})
    assert stopped.to_dict()["state"] == "stopped"


def test_the_status_record_carries_the_repeated_frame_count(tmp_path: Path) -> None:
    """docs/LIVE.md documents bus.repeated (byte-identical frames delivered without a
    second signature check) as part of the status record: it must be in it."""
    home = tmp_path / "home"
    init_home(home, NODES, "status-1", force=False)
    rt = NodeRuntime(NodeOptions(home=home, node_id="hkma", broker=f"mqtt://127.0.0.1:{free_port()}"))
    try:
        info = rt.status_info()
        assert info["bus"]["repeated"] == 0
        for key in ("connected", "connections", "received", "published", "pending", "outbox"):
            assert key in info["bus"]
    finally:
        rt.store.close()


def _records(members: list[str]) -> dict[str, Status]:
    """Busy, realistic records: long step names, big counters, several drop reasons."""
    out = {}
    for i, m in enumerate(members):
        info: dict[str, Any] = {
            "state": "running", "time_ms": _now_ms() - 400, "step": "precommit", "proposer": "carrier-hk",
            "working_height": 123_457, "peers": [x for x in members if x != m], "mempool": 12_345,
            "tx_per_s": 1_234, "dropped": {"bad_signature": 17, "stale": 3, "wrong_chain": 2},
            "state_root": "ab" * 32, "tx_backlog": 20_000,
        }
        out[m] = Status(m, 123_456, 12 + i, info)
    return out


def _render(width: int) -> list[str]:
    members = [m.id for m in load_genesis(_home()).members]
    records = _records(members[:-1])  # one member has no record yet: "waiting"
    console = Console(width=width, record=True, color_system=None)
    console.print(dashboard_table(records, members, width=width))
    return console.export_text().splitlines()


_HOME: list[Path] = []


def _home() -> Path:
    return _HOME[0]


@pytest.fixture(autouse=True, scope="module")
def _a_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("dash") / "home"
    init_home(path, NODES, "dash-1", force=False)
    _HOME.append(path)


def test_the_dashboard_fits_80_columns_with_every_header_whole() -> None:
    """At 80 columns (a default terminal) every line fits and nothing is cut: no
    header and no value ends in an ellipsis, every node has its row with its height."""
    lines = _render(80)
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    text = "\n".join(lines)
    assert "…" not in text, text
    for header in ("node", "state", "height", "round", "step", "peers", "tx/s", "root", "age"):
        assert header in text, (header, text)
    members = [m.id for m in load_genesis(_home()).members]
    for m in members[:-1]:
        assert any(m in line and "123456" in line for line in lines), (m, text)
    assert any(members[-1] in line and "waiting" in line for line in lines), text


def test_the_dashboard_uses_a_wide_terminal_for_more_columns() -> None:
    """At 160 columns the dashboard shows what 80 columns cannot hold (proposer,
    mempool, backlog, drops by reason, a longer root), still uncut and within width."""
    lines = _render(160)
    assert all(len(line) <= 160 for line in lines)
    text = "\n".join(lines)
    assert "…" not in text, text
    for header in ("proposer", "mempool", "backlog", "dropped"):
        assert header in text, (header, text)
    assert "carrier-hk" in text and "bad_signature=17" in text
    assert len(max(lines, key=len)) > 80
