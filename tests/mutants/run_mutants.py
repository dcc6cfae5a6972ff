"""Teeth for `consortium explore`: apply each planted safety bug (a patch in this
directory) to a copy of the repository and let explore hunt for it.

    .venv/bin/python tests/mutants/run_mutants.py [--minutes 3] [--seed 1] [--workers N] [NAME ...]

For each mutant: copy the tree (without .git and .venv), `patch -p1` it, check
that the copy's code is what runs (consortium.__file__ under the copy), run
`python -m consortium explore --minutes M --json` there, and report found / not
found (a violation the landed code shares is skipped, the search resumes after
it), wall time to the first violation, the violated property and the shrunk
scenario's fault count; then `consortium run` the written scenario on the copy
and check it exits 1 naming the property. Exit 0 if every mutant named was found.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MUTANTS = sorted(p.stem for p in HERE.glob("*.patch"))
_IGNORE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache",
                                 ".pytest_cache", ".hypothesis", "explore-out")


@dataclass
class Result:
    mutant: str
    found: bool
    seconds: float  # wall time of the explore run (search, shrinking, writing)
    to_find_s: float | None  # wall time from explore's start to the first violation
    schedules: int
    per_minute: float
    first_seed: int | None
    property: str
    faults: int  # fault episodes of the failing schedule before shrinking
    shrunk_faults: int  # ... and after
    scenario: str
    replays: bool  # `consortium run SCENARIO` on the mutant exits 1 naming the property
    shared: list[int]  # failing seeds skipped because the landed code fails them too


def copy_with(mutant: str, into: Path) -> Path:
    tree = into / "repo"
    shutil.copytree(ROOT, tree, ignore=_IGNORE, symlinks=True)
    subprocess.run(["patch", "-p1", "--quiet", "-i", str(HERE / f"{mutant}.patch")], cwd=tree, check=True)
    return tree


def env_for(tree: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(tree), COLUMNS="200")


def check_copy_runs(tree: Path) -> None:
    got = subprocess.run([sys.executable, "-c", "import consortium; print(consortium.__file__)"],
                         cwd=tree, env=env_for(tree), capture_output=True, text=True, check=True).stdout.strip()
    if not Path(got).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"the copy's code is not what runs: consortium is {got}, not under {tree}")


def landed_fails(seed: int, heights: int | None) -> bool:
    """Does the schedule of `seed` fail on the landed (unpatched) code too? Then it is
    not the mutant's doing (a finding about the landed code, reported separately)."""
    from consortium.explore.run import run_seed
    from consortium.explore.schedule import Options

    return not run_seed(seed, Options(heights=heights) if heights else Options()).ok


def hunt(mutant: str, minutes: float, seed: int, workers: int | None, heights: int | None,
         keep: Path = HERE / "found") -> Result:
    """Explore the mutant until a violation the landed code does not have (violations the
    landed code shares are skipped: the search resumes after that seed), or the time is up."""
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant}-") as tmp:
        tree = copy_with(mutant, Path(tmp))
        check_copy_runs(tree)
        started = time.monotonic()
        schedules, shared = 0, []
        while (left := minutes * 60 - (time.monotonic() - started)) > 1:
            out = Path(tmp) / f"found-{seed}"
            cmd = [sys.executable, "-m", "consortium", "explore", "--minutes", f"{left / 60:.3f}", "--seed",
                   str(seed), "--out", str(out), "--json", "--first"]
            cmd += ["--workers", str(workers)] if workers else []
            cmd += ["--heights", str(heights)] if heights else []
            phase = time.monotonic()
            r = subprocess.run(cmd, cwd=tree, env=env_for(tree), capture_output=True, text=True)
            if r.returncode not in (0, 1):
                raise SystemExit(f"{mutant}: explore failed (exit {r.returncode}): {r.stderr.strip()[-2000:]}")
            s = json.loads(r.stdout)
            schedules += s["schedules"]
            found = s["found"][0] if s["found"] else None
            if found is None:
                break
            if landed_fails(found["seed"], heights):
                shared.append(found["seed"])
                seed = max(s["failing_seeds"]) + 1
                continue
            to_find = phase - started + (s["first_violation_s"] or 0)
            rr = subprocess.run([sys.executable, "-m", "consortium", "run", found["scenario"]], cwd=tree,
                                env=env_for(tree), capture_output=True, text=True)
            replays = rr.returncode == 1 and f"violation {found['property']}:" in rr.stdout
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(found["scenario"], keep / f"{mutant}.toml")
            wall = time.monotonic() - started
            return Result(mutant, True, round(wall, 1), round(to_find, 1), schedules,
                          round(schedules / wall * 60, 1), found["seed"], found["property"], found["faults"],
                          found["shrunk_faults"], str(keep / f"{mutant}.toml"), replays, shared)
        wall = time.monotonic() - started
        return Result(mutant, False, round(wall, 1), None, schedules, round(schedules / wall * 60, 1), None,
                      "", -1, -1, "", False, shared)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mutants", nargs="*", default=MUTANTS, help=f"of {', '.join(MUTANTS)}")
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--heights", type=int, default=None)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    unknown = sorted(set(a.mutants) - set(MUTANTS))
    if unknown:
        print(f"error: unknown mutant {unknown[0]!r} (mutants: {', '.join(MUTANTS)})", file=sys.stderr)
        return 2
    results = []
    for m in a.mutants:
        res = hunt(m, a.minutes, a.seed, a.workers, a.heights)
        results.append(res)
        if not a.json:
            print(f"{m:32} {'FOUND' if res.found else 'not found':9} found after {res.to_find_s} s (explore {res.seconds:.1f} s), "
                  f"{res.schedules} schedules ({res.per_minute}/min), seed {res.first_seed}, "
                  f"{res.property or '-'}, faults {res.faults} -> {res.shrunk_faults}, "
                  f"replays {'yes' if res.replays else 'no'}; skipped seeds the landed code fails too: {res.shared}",
                  flush=True)
    if a.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    return 0 if all(r.found for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
