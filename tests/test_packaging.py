"""Packaging: a normal (non-editable) install works away from the checkout.

The default consortium (nodes/) and the scenarios (scenarios/) live at the top
of the repository, where users edit them, and ship inside the wheel as package
data (consortium/defaults/...). These tests build a real wheel, install it into
a fresh virtualenv and drive the installed CLI from a directory that is not the
checkout; and check that a bare scenario name finds the shipped scenario."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from consortium import scenario
from consortium.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
#: what the build reads: the package, its data kept at the top level, the metadata files
BUILD_INPUTS = ("pyproject.toml", "README.md", "MANIFEST.in", "consortium", "nodes", "scenarios")
_JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(cmd)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    return out


def _build_wheel(tmp: Path) -> Path:
    """A wheel built from a copy of the checkout (the shared tree gets no build/ litter)."""
    src = tmp / "src"
    src.mkdir()
    for name in BUILD_INPUTS:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=_JUNK)
        elif p.is_file():
            shutil.copy2(p, src / name)
    dist = tmp / "dist"
    # the venv's own setuptools (>= 70.1 builds wheels without the `wheel` package): offline and fast
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(dist), str(src)], cwd=tmp)
    (wheel,) = dist.glob("consortium-*.whl")
    return wheel


def _fresh_venv(tmp: Path, wheel: Path) -> Path:
    """A new virtualenv holding only the wheel; the third-party dependencies come from this
    test's environment through a .pth line (that directory's own .pth files, among them the
    editable install's finder, are not run, so the checkout's package stays invisible)."""
    venv = tmp / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    py = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], cwd=tmp)
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp).stdout.strip())
    (site / "deps-from-test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def test_wheel_installs_and_runs_away_from_the_checkout(tmp_path: Path) -> None:
    """A wheel installed into a fresh virtualenv carries the default consortium and the scenarios:
    from a directory that is not the checkout, `consortium init`, `consortium run <shipped scenario>`,
    `consortium demo --sim` and `consortium sim` all succeed, using the installed copy of the package."""
    wheel = _build_wheel(tmp_path)
    src = tmp_path / "src"
    expected = {p.relative_to(src).as_posix() for p in (src / "consortium").rglob("*.py")}
    expected |= {f"consortium/defaults/{p.relative_to(src).as_posix()}"
                 for p in [*(src / "nodes").glob("*.toml"), *(src / "scenarios").glob("*.toml")]}
    missing = expected - set(zipfile.ZipFile(wheel).namelist())
    assert not missing, f"the wheel lacks {sorted(missing)} (pyproject [tool.setuptools] packages?)"
    venv = _fresh_venv(tmp_path, wheel)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    cli = str(venv / "bin" / "consortium")

    where = _run([str(venv / "bin" / "python"), "-c", "import consortium; print(consortium.__file__)"],
                 cwd=work, env=env).stdout.strip()
    assert Path(where).is_relative_to(venv), f"imported {where}, not the installed wheel"
    assert not Path(where).is_relative_to(ROOT)

    home = work / "h"
    init = json.loads(_run([cli, "init", "--home", str(home), "--json"], cwd=work, env=env).stdout)
    assert init["n"] == 7 and (home / "genesis.json").is_file()

    by_name = json.loads(_run([cli, "run", "lc-happy-path", "--json"], cwd=work, env=env).stdout)
    assert by_name["ok"] is True and by_name["backend"] == "sim"
    shipped = Path(where).parent / "defaults" / "scenarios" / "flagship.toml"
    by_path = json.loads(_run([cli, "run", str(shipped), "--json"], cwd=work, env=env).stdout)
    assert by_path["ok"] is True

    demo = json.loads(_run([cli, "demo", "--sim", "--json"], cwd=work, env=env).stdout)
    assert demo["ok"] is True and demo["scenario"] == "flagship"

    _run([cli, "sim", "--nodes", "4", "--heights", "5", "--seed", "1"], cwd=work, env=env)
    assert sorted(p.name for p in work.iterdir()) == ["h"], "the CLI wrote outside its home"


def test_bare_scenario_name_finds_the_shipped_scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scenario given by bare name (with or without .toml) that is no file in the current
    directory is the shipped scenario of that name; a local file of that name wins; an unknown
    bare name is one clear error listing the shipped scenarios."""
    monkeypatch.chdir(tmp_path)
    assert scenario.load("flagship").name == "flagship"
    assert scenario.load("lc-happy-path.toml").name == "lc-happy-path"
    (tmp_path / "flagship.toml").write_text('name = "local-flagship"\n')
    assert scenario.load("flagship.toml").name == "local-flagship"
    with pytest.raises(UserError, match="lc-happy-path"):
        scenario.load("no-such-scenario")
