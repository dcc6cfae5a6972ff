"""`consortium explore` end to end: the landed code survives generated schedules;
with more than f Byzantine power the checkers fire, the failure is shrunk and
written as a scenario file that `consortium run` replays to the same violation;
results depend only on the seeds; bad input is one line and exit 2; Ctrl-C stops
cleanly and reports what was done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from consortium.explore.executor import LocalPool
from consortium.explore.run import run_seed
from consortium.explore.schedule import Options, generate
from consortium.explore.search import explore
from consortium.explore.to_scenario import scenario_text
from consortium.scenario import replay
from consortium.scenario import run as run_scenario
from consortium.scenario.schema import parse
from tests.conftest import interrupt_once_pool_runs

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "consortium", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=timeout)


def test_generated_schedules_find_no_violation_on_the_landed_code_same_on_pool_and_inline() -> None:
    """Two dozen generated schedules (n 4..7, every fault kind, coalitions within f) on a
    two-worker pool violate nothing, and each outcome equals the one computed in this
    process for the same seed (results depend on the seed only, not on where or in
    which order they ran)."""
    opt = Options(4, 7, heights=6)
    report = explore(LocalPool(2), seed=100, options=opt, schedules=24)
    assert report.schedules == 24 and not report.interrupted
    assert [o.seed for o in report.outcomes] == list(range(100, 124))
    assert report.failing == [], [(o.seed, o.violations) for o in report.failing]
    kinds = {e.op for s in range(100, 124) for e in generate(s, opt).episodes}
    assert len(kinds) >= 6, kinds  # the schedules really exercise many fault kinds
    for o in report.outcomes[:3]:
        assert run_seed(o.seed, opt) == o


def test_beyond_f_is_found_shrunk_written_and_replayed_by_consortium_run(tmp_path: Path) -> None:
    """With --beyond-f the checkers fire: explore exits 1, shrinks the failing schedule
    to at most 5 faults, writes it as a scenario file with its trace and its HTML
    report (offline, the violated schedule's validator lanes), and `consortium run FILE`
    exits 1 naming the violated property."""
    r = cli("explore", "--schedules", "4", "--seed", "0", "--beyond-f", "--heights", "6", "--workers", "2",
            "--out", str(tmp_path), "--json")
    assert r.returncode == 1, r.stderr
    summary = json.loads(r.stdout)
    assert summary["violations"] >= 1 and summary["found"]
    found = summary["found"][0]
    assert found["replayed"] and found["shrunk_faults"] <= min(5, found["faults"])
    path = Path(found["scenario"])
    assert path.is_file() and path.with_suffix(".trace.jsonl").is_file()
    report = Path(found["report"])
    assert report == path.with_suffix(".html") and report.is_file()
    html = report.read_text(encoding="utf-8")
    assert "<script" in html and "https://cdn" not in html
    replay = cli("run", str(path))
    assert replay.returncode == 1
    assert f"violation {found['property']}:" in replay.stdout, replay.stdout
    assert "Traceback" not in replay.stderr


def test_a_written_scenario_replays_the_schedule_exactly(tmp_path: Path) -> None:
    """A schedule written as a scenario ([sim] + timed fault steps) runs through the
    scenario runner to the same simulator trace digest as the schedule itself, faults
    and all (here a within-f schedule with several fault kinds: it passes); the trace the
    runner writes replays to the same blocks and digest."""
    opt = Options(4, 7, heights=4)
    seed = next(s for s in range(50) if len({e.op for e in generate(s, opt).episodes}) >= 3)
    s = generate(seed, opt)
    o = run_seed(seed, opt)
    path = tmp_path / "s.toml"
    path.write_text(scenario_text(s, "none"), encoding="utf-8")
    result = run_scenario(path, trace=tmp_path / "s.jsonl")
    assert result.trace_digest == o.trace_digest and result.ok == o.ok
    assert [e["at_ms"] for e in result.events] == sorted(int(f.split(":")[0]) for f in s.faults())
    rep = replay(tmp_path / "s.jsonl")  # the trace of a [sim] scenario replays too
    assert rep.identical and rep.trace_digest_match


@pytest.mark.parametrize("args", [
    ["--nodes", "4..x"], ["--nodes", "7..4"], ["--nodes", "0"], ["--nodes", "4..17"], ["--workers", "0"],
    ["--cluster", "tcp://127.0.0.1:8786"], ["--generator", "vopr"], ["--schedules", "0"], ["--minutes", "0"],
    ["--minutes", "1", "--schedules", "3"], ["--seed", "-1"],
])
def test_bad_input_is_one_line_and_exit_2(args: list[str]) -> None:
    """Every malformed option is refused before anything runs: exit 2, one line, no traceback."""
    started = time.monotonic()
    r = cli("explore", *args, timeout=30)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert time.monotonic() - started < 20


def test_sim_scenarios_are_refused_on_live_and_skew_is_simulator_only(tmp_path: Path) -> None:
    """The [sim] table (a synthetic consortium) runs on the simulator only, names only
    its own nodes, and a skew fault step is refused where a live run could get it."""
    base = 'name = "x"\nbackends = ["sim"]\n[sim]\nnodes = 4\n'
    for text, needle in (
        (base.replace('["sim"]', '["sim", "live"]'), "simulator only"),
        (base + 'byzantine = {"sh-9" = "equivocate"}\n', "not one of"),
        (base + '[[step]]\nat_ms = 5\nfault = "crash"\nnode = "zz"\n', "not one of"),
        (base + '[[step]]\nafter_height = 5\nfault = "heal"\n', "with 'at_ms'"),
        ('name = "y"\n[[step]]\nat_ms = 5\nfault = "skew"\nnode = "a"\nvalue = 10\n', "simulator only"),
    ):
        with pytest.raises(Exception, match=needle):
            parse(text, source="t.toml", base=tmp_path)


def test_ctrl_c_stops_cleanly_and_reports_what_was_done(tmp_path: Path) -> None:
    """SIGINT during a long search: the command stops within seconds, prints the summary
    of the schedules done (marked interrupted), and no traceback."""
    env = dict(os.environ, COLUMNS="200")
    p = subprocess.Popen([sys.executable, "-m", "consortium", "explore", "--minutes", "5", "--heights", "4",
                          "--workers", "2", "--out", str(tmp_path), "--json"], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    interrupt_once_pool_runs(p, workers=2, deadline_s=60)
    out, err = p.communicate(timeout=60)
    assert "Traceback" not in err, err
    summary = json.loads(out)
    assert summary["interrupted"] and p.returncode == 130
    assert summary["schedules"] >= 0


def test_a_run_that_raises_is_a_finding_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception inside the simulation (a broken replica's assertion) is reported as
    the property `error` with its message; the search goes on."""
    import consortium.explore.run as run_mod

    class Boom:
        def __init__(self, cfg: object) -> None:
            raise AssertionError("commits are contiguous")

    monkeypatch.setattr(run_mod, "Simulation", Boom)
    o = run_mod.run_schedule(generate(3, Options(heights=2)))
    assert not o.ok and o.violated == ("error",) and "commits are contiguous" in o.violations[0]
