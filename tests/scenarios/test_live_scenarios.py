"""Scenarios on live node processes over a real MQTT broker (embedded amqtt and
mosquitto), and the same ledger facts as on the simulator.

Invariant: a scenario describes a story once; whichever back-end replays it,
every transaction gets the same outcome code and every ledger expectation
observes the same value (heights and timings may differ)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from consortium import scenario
from consortium.scenario.runner import ScenarioResult

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
pytestmark = pytest.mark.broker

needs_mosquitto = pytest.mark.skipif(
    shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists(),
    reason="mosquitto is not installed (make test installs it with apt-get as root)")


def _ledger_facts(r: ScenarioResult) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    codes = [(e["step"], e.get("code", "")) for e in r.events if e["action"] == "tx"]
    observed = [(row.expectation, row.observed) for row in r.rows if not row.expectation.startswith("consensus")]
    return codes, observed


def _live(name: str, broker: str) -> ScenarioResult:
    result = scenario.run(SCENARIOS / f"{name}.toml", backend="live", broker=broker)
    failed = [r for r in result.rows if not r.met]
    assert result.ok, (failed, result.checks)
    return result


def test_lc_happy_path_live_embedded_same_facts_as_simulator() -> None:
    live = _live("lc-happy-path", "embedded")
    sim = scenario.run(SCENARIOS / "lc-happy-path.toml")
    assert _ledger_facts(live) == _ledger_facts(sim)


def test_flagship_live_embedded_same_facts_as_simulator() -> None:
    """The demo's scenario: a partition mid-flow, healed, on real processes."""
    live = _live("flagship", "embedded")
    sim = scenario.run(SCENARIOS / "flagship.toml")
    assert _ledger_facts(live) == _ledger_facts(sim)


@needs_mosquitto
def test_broker_restart_live_mosquitto() -> None:
    _live("broker-restart", "mosquitto")


@needs_mosquitto
def test_carrier_crash_between_surrender_and_sacc_live_mosquitto() -> None:
    live = _live("carrier-crash-surrender-sacc", "mosquitto")
    sim = scenario.run(SCENARIOS / "carrier-crash-surrender-sacc.toml")
    assert _ledger_facts(live) == _ledger_facts(sim)


def test_dvp_settlement_live_embedded_same_facts_as_simulator(tmp_path: Path) -> None:
    """Delivery versus payment in tokenised deposits on live processes: the unfunded DVP
    is refused (FUNDS) with nothing moved, the funded one moves the eBL and the CNH in one
    transaction; every code and ledger fact equals the simulator's. Afterwards
    `consortium query flows` (HKMA's view) shows the HK -> CN-SH CNH payment and what
    bank-hk still owes bank-sh, and `query balances` the exporter's CNH."""
    home = tmp_path / "home"
    result = scenario.run(SCENARIOS / "dvp-settlement.toml", backend="live", broker="embedded", home=home,
                          keep_home=True)
    assert result.ok, ([r for r in result.rows if not r.met], result.checks)
    sim = scenario.run(SCENARIOS / "dvp-settlement.toml")
    assert _ledger_facts(result) == _ledger_facts(sim)
    flows = json.loads(_cli("query", "flows", "--home", str(home), "--json"))["answer"]
    assert [(f["origin"], f["destination"], f["currency"], f["total"]) for f in flows["flows"]] == [
        ("HK", "CN-SH", "CNH", 180000000)]
    assert [(p["debtor"], p["creditor"], p["amount"]) for p in flows["positions"]] == [
        ("bank-hk", "bank-sh", 80000000)]
    held = json.loads(_cli("query", "balances", "sh-exporter", "--home", str(home), "--json"))["answer"]
    assert [(a["bank"], a["currency"], a["balance"]) for a in held] == [("bank-sh", "CNH", 180000000)]


def _cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "consortium", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout
