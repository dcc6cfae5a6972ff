"""A live run's trace has the simulator's format: real node processes over the embedded
broker, a Shanghai | Hong Kong partition, and a transfer submitted without waiting."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report.conftest import cli, lines

pytestmark = pytest.mark.broker


def test_live_trace_records_heights_commits_faults_and_the_decision_of_a_step_that_did_not_wait(
        tmp_path: Path) -> None:
    """`consortium run sh-hk-partition-transfer --live --trace T --report R`: version 2,
    every height with its decision time, round, proposer and tx count, a commit step for
    every validator, the partition and heal as faults, the transfer sent during the
    partition with its decision height and a latency beyond the partition's 8 s, the
    business lane from the decided blocks, and a report built from it."""
    trace, report = tmp_path / "live.jsonl", tmp_path / "live.html"
    r = cli("run", "sh-hk-partition-transfer", "--live", "--trace", str(trace), "--report", str(report))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    t = lines(trace)
    assert (t[0]["version"], t[0]["backend"], t[0]["clock"]) == (2, "live", "wall")
    validators = {n["id"] for n in t[0]["nodes"]}
    blocks = [x for x in t if x["type"] == "block"]
    assert blocks and all(b["decided_ms"] is not None and b["proposer"] in validators and "round" in b
                          for b in blocks)
    assert {x["node"] for x in t if x["type"] == "node_step" and x["step"] == "commit"} == validators
    assert [f["op"] for f in t if f["type"] == "fault"] == ["partition", "heal"]
    transfer = next(x for x in t if x["type"] == "step" and x["step"] == "transfer")
    assert transfer["code"] == "OK" and transfer["height"] > 0
    assert transfer["latency_ms"] == transfer["decided_ms"] - transfer["at_ms"] > 8_000
    tx = next(x for x in t if x["type"] == "tx" and x.get("step") == "transfer")
    assert tx["lane"] == "ebl" and tx["ebl_status"] and tx["height"] == transfer["height"]
    assert report.stat().st_size > 1_000_000


def test_bench_report_draws_every_measured_latency(tmp_path: Path) -> None:
    """`consortium bench --report R --json`: a short real bench (one validator, embedded
    broker) writes a report whose latency histogram holds one value per transaction the
    bench measured (latency_ms_all n) and whose throughput chart covers the decided heights;
    the printed JSON stays as before (no samples)."""
    import base64
    import gzip
    import json
    import re

    report = tmp_path / "bench.html"
    r = cli("bench", "--nodes", "1", "--broker", "embedded", "--rate", "200", "--duration", "3", "--warmup", "1",
            "--drain", "10", "--loaders", "1", "--report", str(report), "--json")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    out = json.loads(r.stdout)
    assert "samples" not in out and out["latency_ms_all"]["n"] > 0
    packed = re.search(r'id="figures-gz">([^<]+)<', report.read_text())
    assert packed is not None
    figs = json.loads(gzip.decompress(base64.b64decode(packed.group(1))))
    assert set(figs) == {"latency"}
    hist = next(d for d in figs["latency"]["data"] if d["type"] == "histogram")
    assert len(hist["x"]) == out["latency_ms_all"]["n"]
    heights = next(d for d in figs["latency"]["data"] if d["name"] == "heights decided / s")
    assert sum(heights["y"]) >= out["heights_in_window"] > 0
