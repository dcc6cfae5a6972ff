"""Teeth, fast version: a planted safety bug (the commit quorum lowered to 2f of
3f+1, i.e. half the voting power) applied to a copy of the repository is found by
`consortium explore` within a minute, shrunk to at most 5 faults, and the written
scenario replays the violation under `consortium run` on the mutant. The other
mutants (tests/mutants/*.patch) run with `run_mutants.py` (minutes each); what it
found for each is kept in found/ and replayed here against its mutant."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from consortium.explore.to_scenario import violated
from consortium.scenario import run
from tests.mutants.run_mutants import HERE, MUTANTS, ROOT, env_for, hunt

FOUND = HERE / "found"


def test_the_lowered_commit_quorum_is_found_shrunk_and_replayed(tmp_path: Path) -> None:
    """On the quorum-2f mutant, explore finds a violation (a commit certificate short
    of the quorum) within its one-minute budget, shrinks it to <= 5 faults, and the
    scenario it writes replays to the same violation (exit 1, property named)."""
    assert "quorum-2f" in MUTANTS
    r = hunt("quorum-2f", minutes=1, seed=1, workers=2, heights=10, keep=tmp_path)
    assert r.found and r.to_find_s is not None and r.to_find_s < 60
    assert r.property in ("certificate", "agreement") and 0 <= r.shrunk_faults <= 5
    assert r.replays


def test_every_mutant_has_a_kept_finding_that_replays_on_it_and_passes_on_the_landed_code(tmp_path: Path) -> None:
    """Each planted bug (tests/mutants/NAME.patch) has its shrunk finding kept as
    found/NAME.toml, with at most 5 fault episodes: `consortium run` of that file on a copy
    of the package with the patch applied exits 1 and names the property the file's header
    says, and the landed code passes the same file (the violation is the mutant's)."""
    for name in MUTANTS:
        found = FOUND / f"{name}.toml"
        assert found.is_file(), f"{name}: no kept finding (run_mutants.py writes found/{name}.toml)"
        head = found.read_text().splitlines()[:2]
        episodes = re.search(r"to (\d+) fault episodes", head[0])
        prop = re.search(r"violation of '(\w+)'", head[1])
        assert episodes and prop and int(episodes[1]) <= 5, head
        tree = tmp_path / name
        shutil.copytree(ROOT / "consortium", tree / "consortium", ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run(["patch", "-p1", "--quiet", "-i", str(HERE / f"{name}.patch")], cwd=tree, check=True)
        r = subprocess.run([sys.executable, "-c", _RUN, str(found)], cwd=tree, env=env_for(tree),
                           capture_output=True, text=True)
        assert r.stdout.startswith(str(tree)), f"{name}: the copy is not what ran: {r.stdout[:200]}"
        assert r.returncode == 1 and f"violation {prop[1]}:" in r.stdout, (name, r.returncode, r.stdout[-800:])
        landed = run(found)
        assert landed.ok and not violated(landed), (name, landed.checks["violations"])


# `python -m consortium run FILE`, printing first where the package came from
_RUN = ("import sys, consortium; print(consortium.__file__, flush=True); "
        "from consortium.cli import main; sys.argv = ['consortium', 'run', sys.argv[1]]; main()")
