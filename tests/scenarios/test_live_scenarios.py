"""Scenarios on live node processes over a real MQTT broker (embedded amqtt and
mosquitto), and the same ledger facts as on the simulator.

Invariant: a scenario describes a story once; whichever back-end replays it,
every transaction gets the same outcome code and every ledger expectation
observes the same value (heights and timings may differ)."""

from __future__ import annotations

import shutil
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
