"""The default 7-member consortium, live: real node processes over a real broker (embedded and mosquitto).

Each test starts from `consortium init` + `consortium up --detach` and uses the
CLI the way a researcher would; the stores are read directly at the end to
check that every node holds the same chain.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from consortium.bus import broker as brokers
from consortium.ledger import dcsa
from consortium.node.netfilter import NetFilter, clear_filter, write_filter
from tests.live.conftest import Live, VoteObserver, cli, start_load, wait_for

pytestmark = pytest.mark.broker

VICTIMS = ["hkma", "sdb"]  # f = 2 of 7


def documents(tmp: Path) -> tuple[Path, Path]:
    """The LOAD events and the straight transport document shipped with the ledger."""
    events, document = tmp / "load-events.json", tmp / "transport-document.json"
    events.write_text(dcsa.example("tnt-load-events.json"))
    document.write_text(dcsa.example("transport-document-straight.json"))
    return events, document


def issue_and_transfer(live: Live, tmp: Path) -> list[dict[str, object]]:
    """LOAD events, ISSUE of the straight eBL, TRANSFER to the consignee: the outcomes."""
    events, document = documents(tmp)
    outcomes = []
    rc, out = live.tx("tnt-events", "--as", "carrier-sh", "--file", str(events))
    assert rc == 0 and out["code"] == "OK", out
    outcomes.append(out)
    rc, out = live.tx("ebl-issue", "--as", "carrier-sh", "--document", str(document), "--to", "sh-exporter",
                      "--consignee", "hk-importer")
    assert rc == 0 and out["code"] == "OK", out
    outcomes.append(out)
    rc, out = live.tx("ebl-transfer", "--as", "sh-exporter", "--ebl", str(out["ebl"]), "--to", "hk-importer")
    assert rc == 0 and out["code"] == "OK", out
    outcomes.append(out)
    return outcomes


def in_every_store(live: Live, hashes: list[str]) -> None:
    stores = live.stores()
    try:
        for node, store in stores.items():
            for h in hashes:
                assert store.find_tx(bytes.fromhex(h)) is not None, f"{node} lacks decided tx {h[:16]}"
    finally:
        for s in stores.values():
            s.close()


def test_up_decides_and_accepts_ebl_issue_and_transfer(live: Live, tmp_path: Path) -> None:
    started = live.up(block_interval_ms=300)
    assert set(started["nodes"]) == set(live.members) and len(started["nodes"]) == 7
    live.wait_height(2)
    outcomes = issue_and_transfer(live, tmp_path)
    ebl = outcomes[1]["ebl"]
    rc, again = live.tx("ebl-transfer", "--as", "sh-exporter", "--ebl", str(ebl), "--to", "hk-importer")
    assert rc == 1 and again["code"] == "DISE", again  # no longer the possessor: rejected with its reason
    snapshot = live.wait_agreement()
    assert snapshot["summary"]["agree"] and snapshot["summary"]["same_height"]
    view = json.loads(cli("query", "ebl", str(ebl), "--home", str(live.home), "--node", "nticbc", "--json").stdout)
    assert view["answer"]["possessor"] == "hk-importer"
    assert [e["action"] for e in view["answer"]["chain"]] == ["ISSUE", "TRANSFER"]
    live.down()
    assert live.assert_same_chain() >= int(str(outcomes[-1]["height"]))
    in_every_store(live, [str(o["tx_hash"]) for o in [*outcomes, again]])


def test_kill_two_validators_under_load(live: Live, tmp_path: Path) -> None:
    live.up()
    live.wait_height(3)
    load = None
    try:
        with VoteObserver(live.home) as observer:
            load = start_load(live, tmp_path, rate=40, duration_s=60)
            time.sleep(2)
            for victim in VICTIMS:
                live.kill(victim)
            others = [m for m in live.members if m not in VICTIMS]
            before = max(live.heights().values())
            live.wait_height(before + 5, others)  # the other five keep deciding
            outcomes = issue_and_transfer(live, tmp_path)  # and accept transactions
            live.restart(*VICTIMS)
            target = max(live.heights().values())
            live.wait_height(target, live.members, timeout_s=60)  # the two caught up
            load.kill()
            load.wait(timeout=10)
            live.wait_height(target + 3, live.members)
        assert observer.frames > 0
        assert observer.double_signs() == {}, "a validator signed two different messages for one slot"
    finally:
        if load is not None and load.poll() is None:
            load.kill()
            load.wait(timeout=10)
    live.down()
    top = live.assert_same_chain()
    assert top >= max(int(str(o["height"])) for o in outcomes)
    in_every_store(live, [str(o["tx_hash"]) for o in outcomes])
    sent = (tmp_path / "load.bin")
    if sent.exists():  # the load process was killed before writing it: only the CLI txs are known
        from consortium.bench.load import read_records

        stores = live.stores()
        try:
            decided = [h for h, _ in read_records(sent) if stores["nticbc"].find_tx(h) is not None]
            assert decided and all(s.find_tx(h) is not None for s in stores.values() for h in decided)
        finally:
            for s in stores.values():
                s.close()


def test_broker_killed_and_restarted(live: Live) -> None:
    live.up()
    before = max(live.wait_height(3).values())
    record = live.broker_record()
    os.kill(record.pid, signal.SIGKILL)
    wait_for("the broker to die", lambda: not brokers.port_accepting(record.host, record.port), 10)
    time.sleep(1.0)  # nodes notice and start reconnecting
    restarted = brokers.start_broker(live.kind, home=live.home, run_dir=live.home / "run", port=record.port,
                                     detach=True)
    try:
        live.wait_height(before + 5, timeout_s=60)
        nodes = live.status()["nodes"]
        assert all(s["bus"]["connections"] >= 2 for s in nodes.values()), {n: s["bus"] for n, s in nodes.items()}
        live.down()
    finally:
        restarted.stop()
    assert live.assert_same_chain() >= before + 5


def test_tx_cli_refuses_a_malformed_body_before_sending(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cli("init", "--home", str(home))
    live = Live(home, "embedded")
    rc, out = live.tx("transfer", "--as", "sh-exporter", "--body", json.dumps({"ebl": "00", "recipient": "x"}))
    assert rc == 1 and out["code"] == "BENV" and out["refused"] == "before sending"
    for args in (["tx", "ebl-transfer", "--as", "sh-exporter"], ["status"], ["query", "ebl", "00"]):
        out2 = cli(*args, "--home", str(home), check=False)  # usage error / nothing running: one line
        assert out2.returncode == 2 and "Traceback" not in out2.stderr, out2.stderr


def test_network_filter_isolates_a_node_and_heals(live_embedded: Live) -> None:
    """The live fault-injection hook: HOME/run/<id>.filter.json, picked up while running."""
    live = live_embedded
    live.up()
    live.wait_height(2)
    run = live.home / "run"
    others = [m for m in live.members if m != "hkma"]
    write_filter(run, "hkma", NetFilter(block=frozenset(others)))  # hkma hears nobody
    time.sleep(1.0)
    stuck = live.heights()["hkma"]
    live.wait_height(stuck + 5, others)  # six of seven keep deciding without it
    status = live.status()["nodes"]["hkma"]
    assert status["filtered"].get("blocked", 0) > 0 and status["filter"]["block"] == sorted(others)
    assert status["height"] <= stuck + 1
    clear_filter(run, "hkma")
    live.wait_height(max(live.heights().values()), ["hkma"])  # it syncs and follows again
    live.down()
    live.assert_same_chain()
