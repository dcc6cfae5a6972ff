"""Traces (format version 2), the same on both back-ends: per height its decision,
per node its steps, per transaction its submission and decision; `consortium sim
--trace`; `consortium export`; bad input refused in one line naming file and line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from consortium import report
from consortium.errors import UserError
from consortium.scenario import runner
from tests.report.conftest import cli, lines


def test_a_step_that_does_not_wait_still_gets_its_decision_time_height_and_latency(flagship: dict[str, Path]) -> None:
    """The flagship's presentation is sent during the partition with wait = false: its step
    line and its tx line carry the decision time, the height and a latency of the whole
    partition (several seconds), not 0 ms."""
    t = lines(flagship["trace"])
    present = next(x for x in t if x["type"] == "step" and x["step"] == "present")
    assert present["done_ms"] == present["at_ms"]  # it did not wait ...
    assert present["height"] > 0 and present["decided_ms"] > present["at_ms"]  # ... and was decided later
    assert present["latency_ms"] == present["decided_ms"] - present["at_ms"] > 5_000
    tx = next(x for x in t if x["type"] == "tx" and x.get("step") == "present")
    assert (tx["height"], tx["decided_ms"], tx["latency_ms"]) == (present["height"], present["decided_ms"],
                                                                   present["latency_ms"])
    assert tx["kind"] == "LC_PRESENT" and tx["lane"] == "lc" and tx["presentation"] == "P1"


def test_the_trace_records_heights_node_steps_faults_messages_and_the_business_lane(
        flagship: dict[str, Path]) -> None:
    """Every decided height has its decision time, round, proposer, tx count and bytes; every
    validator its propose/prevote/precommit/commit steps; the partition and its heal are
    recorded faults; messages are listed (sent, delivered or cut) and counted per node and kind;
    business transactions carry the state they left (eBL status, financing status)."""
    t = lines(flagship["trace"])
    header = t[0]
    assert header["type"] == "header" and header["version"] == runner.TRACE_VERSION == report.TRACE_VERSION == 2
    nodes = {n["id"] for n in header["nodes"]}
    assert len(nodes) == 7
    blocks = [x for x in t if x["type"] == "block"]
    assert blocks and all({"decided_ms", "round", "proposer", "txs", "bytes", "block", "state_root"} <= set(b)
                          for b in blocks)
    assert sum(b["txs"] for b in blocks) >= 18 and all(b["proposer"] in nodes for b in blocks)
    steps = [x for x in t if x["type"] == "node_step"]
    assert {x["node"] for x in steps} == nodes
    assert {x["step"] for x in steps} == {"propose", "prevote", "precommit", "commit"}
    faults = [x for x in t if x["type"] == "fault"]
    assert [f["op"] for f in faults] == ["partition", "heal"] and faults[0]["groups"][0][0] == "sdb"
    msgs = [x for x in t if x["type"] == "msg"]
    assert any(m["dropped"] for m in msgs) and any(m["recv_ms"] for m in msgs)  # cut during the partition
    counts = [x for x in t if x["type"] == "msg_count"]
    assert sum(c["sent"] for c in counts) >= len(msgs) and sum(c["dropped"] for c in counts) > 0
    issue = next(x for x in t if x["type"] == "tx" and x.get("kind") == "ISSUE")
    assert issue["ebl_status"] == "ISSUED" and issue["lane"] == "ebl" and issue["code"] == "OK"
    approve = next(x for x in t if x["type"] == "tx" and x.get("kind") == "FIN_APPROVE")
    assert approve["financing_status"] == "LIVE"
    assert t[-1]["type"] == "result"


def test_sim_writes_the_same_trace_format_without_changing_the_run(tmp_path: Path) -> None:
    """`consortium sim --trace`: a version-2 trace with a lane for every node; recording
    changes nothing: the trace digest is the one the same run prints without --trace."""
    args = ["sim", "--nodes", "4", "--heights", "6", "--seed", "3", "--fault", "2000:crash:hk-1",
            "--fault", "4000:restart:hk-1", "--json"]
    plain = json.loads(cli(*args).stdout)
    traced = cli(*args, "--trace", str(tmp_path / "s.jsonl"))
    assert traced.returncode == 0, traced.stderr
    t = lines(tmp_path / "s.jsonl")
    assert t[0]["kind"] == "sim" and t[0]["version"] == 2
    assert t[-1]["trace_digest"] == json.loads(traced.stdout)["trace_digest"] == plain["trace_digest"]
    assert {x["node"] for x in t if x["type"] == "node_step"} == {"sh-1", "hk-1", "sh-2", "hk-2"}
    assert [x["op"] for x in t if x["type"] == "fault"] == ["crash", "restart"]
    assert len([x for x in t if x["type"] == "block"]) >= 6
    txs = [x for x in t if x["type"] == "tx" and x["height"]]
    assert txs and all(x["latency_ms"] >= 0 for x in txs)


def test_export_writes_tables_for_pandas(flagship: dict[str, Path], tmp_path: Path) -> None:
    """`consortium export --csv/--parquet`: heights, transactions, node steps, messages and
    faults as tables, one row per trace line of that kind."""
    r = cli("export", str(flagship["trace"]), "--csv", str(tmp_path / "csv"), "--parquet", str(tmp_path / "pq"),
            "--json")
    assert r.returncode == 0, r.stderr
    t = lines(flagship["trace"])
    with (tmp_path / "csv" / "heights.csv").open() as f:
        heights = list(csv.DictReader(f))
    assert [int(h["height"]) for h in heights] == [x["height"] for x in t if x["type"] == "block"]
    assert {"decided_ms", "round", "proposer", "txs", "bytes"} <= set(heights[0])
    for name, kind in (("node_steps", "node_step"), ("messages", "msg"), ("faults", "fault"),
                       ("transactions", "tx")):
        table = pq.read_table(tmp_path / "pq" / f"{name}.parquet")
        assert table.num_rows == sum(1 for x in t if x["type"] == kind) > 0, name


def test_bad_input_is_one_line_naming_file_and_line(flagship: dict[str, Path], tmp_path: Path) -> None:
    """A truncated trace line, a trace of another format version, a missing file, a trace cut
    before its result: exit 2 and one line naming the file (and the line), for report and export."""
    good = flagship["trace"].read_text().splitlines()
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(good[:5] + [good[5][: len(good[5]) // 2]] + good[6:]) + "\n")
    old = tmp_path / "old.jsonl"
    head = json.loads(good[0])
    old.write_text("\n".join([json.dumps({**head, "version": 1})] + good[1:]) + "\n")
    short = tmp_path / "short.jsonl"
    short.write_text("\n".join(good[:-1]) + "\n")
    cases = {cut: f"{cut}:6: not a JSON object", old: f"{old}:1: trace format version 1",
             tmp_path / "none.jsonl": f"{tmp_path / 'none.jsonl'}: no such file",
             short: f"{short}:{len(good)}: the trace ends before its result line"}
    for path, expected in cases.items():  # the reader: one message, naming file and line
        with pytest.raises(UserError) as err:
            report.load_trace(path)
        assert str(err.value).startswith(expected) and "\n" not in str(err.value)
    for args, expected in ((("report", str(cut), "-o", str(tmp_path / "r.html")), cases[cut]),
                           (("export", str(old), "--csv", str(tmp_path / "t")), cases[old])):
        r = cli(*args)  # the commands: exit 2, that one line, no traceback
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
        assert expected in " ".join(r.stderr.split()), r.stderr
