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
    assert report.stat().st_size > 400_000  # plotly.js (its cartesian bundle, gzip) and the figures, embedded


def test_live_trace_has_every_validators_consensus_steps_from_the_bus_observer(tmp_path: Path) -> None:
    """A live run (real mosquitto with its ACL when installed, else the embedded broker) records,
    through its read-only bus observer, the simulator's per-node records: a prevote and a
    precommit step for every validator at every height decided once all nodes run (one may
    be missing: a node that fell behind takes a height by sync) and a propose step for each
    height's proposer, with times on the trace's clock (the decision after the precommits);
    every broadcast proposal/prevote/precommit as a message with sender, kind, height and
    round; per validator and kind the messages sent, and per node its received/dropped
    counters from its status record (the partition's blocked frames among the drops). The
    report draws one lane per validator with propose, prevote and precommit marks.
    What only a node sees comes from its input log (recording is on for a traced run), on
    the trace's clock: its timeouts that mattered (the partition forces some: a validator
    without the proposal on its side times out waiting for it), per validator and kind the
    consensus messages it received (every validator received proposals, prevotes and
    precommits), each receipt as a `msg` record to that validator (delivered after it was
    seen broadcast), per kind the frames its network filter dropped (prevotes among them:
    the partition), and the report draws the timeouts on their validators' lanes."""
    import base64
    import gzip
    import json
    import re

    from tests.bus.conftest import mosquitto_missing

    broker = "embedded" if mosquitto_missing() else "mosquitto"
    trace, report = tmp_path / "live.jsonl", tmp_path / "live.html"
    r = cli("run", "sh-hk-partition-transfer", "--live", "--broker", broker, "--trace", str(trace),
            "--report", str(report))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    t = lines(trace)
    validators = [n["id"] for n in t[0]["nodes"]]
    blocks = {b["height"]: b for b in t if b["type"] == "block"}
    steps = {(x["node"], x["height"], x["round"], x["step"]): x["t_ms"] for x in t if x["type"] == "node_step"}
    # the last node started may find the first heights decided and take them by sync: every height decided
    # two seconds after all were up (the run's clock starts then), and a node that fell behind may sync one
    later = {h for h, b in blocks.items() if b["decided_ms"] > 2_000}
    assert len(later) >= 8
    for v in validators:
        for step in ("prevote", "precommit"):
            assert len({k[1] for k in steps if k[0] == v and k[3] == step} & later) >= len(later) - 1, (v, step)
    for h, b in blocks.items():
        assert (b["proposer"], h, b["round"], "propose") in steps
        first = min(t for k, t in steps.items() if k[1:] == (h, b["round"], "precommit"))
        assert first <= b["decided_ms"] + 1_000  # one clock: precommits come before the decision
    msgs = [x for x in t if x["type"] == "msg"]
    casts = [m for m in msgs if m["dst"] == "*"]
    assert {m["kind"] for m in casts} == {"proposal", "prevote", "precommit"}
    assert {m["src"] for m in casts} == set(validators)
    counts = [x for x in t if x["type"] == "msg_count"]
    assert {(c["node"], c["kind"]) for c in counts if "observer" in c["source"]} >= {
        (v, k) for v in validators for k in ("prevote", "precommit")}
    status = {c["node"]: c for c in counts if c["kind"] == "all"}
    assert set(status) == set(validators) and all(c["received"] > 0 and c["sent"] > 0 for c in status.values())
    assert sum(c["dropped_by"].get("filter_blocked", 0) for c in status.values()) > 0  # the partition
    # from the nodes' input logs: timeouts, receipts by kind, drops by kind
    timeouts = [x for x in t if x["type"] == "timeout"]
    partition, heal = (f["t_ms"] for f in t if f["type"] == "fault")
    assert len({x["node"] for x in timeouts if partition <= x["t_ms"] <= heal}) >= 3, timeouts
    assert all(x["node"] in validators and x["kind"] in ("propose", "prevote", "precommit")
               and x["height"] >= 1 and x["round"] >= 0 for x in timeouts)
    received = {(c["node"], c["kind"]): c["received"] for c in counts if c["kind"] != "all"}
    assert all((received.get((v, k)) or 0) > 0 for v in validators for k in ("proposal", "prevote", "precommit"))
    receipts = [m for m in msgs if m["dst"] in validators]
    assert {m["dst"] for m in receipts} == set(validators)
    assert all(m["recv_ms"] >= m["t_ms"] and not m["dropped"] for m in receipts)
    assert sum(received[(v, "prevote")] for v in validators) == sum(
        1 for m in receipts if m["kind"] == "prevote")  # fewer than trace_messages_max: all listed
    dropped = {(c["node"], c["kind"]): c["dropped"] or 0 for c in counts if c["kind"] != "all"}
    assert sum(dropped.get((v, "prevote"), 0) for v in validators) > 0  # the partition, by kind
    packed = re.search(r'id="figures-gz">([^<]+)<', report.read_text())
    assert packed is not None
    timeline = json.loads(gzip.decompress(base64.b64decode(packed.group(1))))["timeline"]
    assert timeline["layout"]["yaxis"]["ticktext"] == validators
    marks = next(d for d in timeline["data"] if d["name"] == "timeout")
    assert sorted(marks["y"]) == sorted(validators.index(x["node"]) for x in timeouts) and marks["y"]
    lanes = {d["name"].split(" ")[0]: {y for y in d["y"] if y is not None} for d in timeline["data"]
             if d["name"].split(" ")[0] in ("propose", "prevote", "precommit")}
    everyone = set(range(len(validators)))
    assert lanes["prevote"] == lanes["precommit"] == everyone
    assert lanes["propose"] == {validators.index(b["proposer"]) for b in blocks.values()}


def test_bench_report_draws_every_measured_latency(tmp_path: Path) -> None:
    """`consortium bench --report R --json`: a short real bench (one validator, embedded
    broker) writes a report whose latency histogram holds one value per transaction the
    bench measured (latency_ms_all n) and whose throughput chart covers the decided heights;
    the printed JSON stays as before (no samples) and says latency counts from each tx's due time."""
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
    assert out["latency_from"] == "due"  # paced: latency counts from each tx's due time
    packed = re.search(r'id="figures-gz">([^<]+)<', report.read_text())
    assert packed is not None
    figs = json.loads(gzip.decompress(base64.b64decode(packed.group(1))))
    assert set(figs) == {"latency"}
    hist = next(d for d in figs["latency"]["data"] if d["type"] == "histogram")
    assert len(hist["x"]) == out["latency_ms_all"]["n"]
    heights = next(d for d in figs["latency"]["data"] if d["name"] == "heights decided / s")
    assert sum(heights["y"]) >= out["heights_in_window"] > 0
