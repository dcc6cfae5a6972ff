"""`consortium init` and the nodes/ consortium description, through the real CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NODES


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "consortium", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_help_lists_commands() -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    assert "init" in out.stdout


def test_init_reports_default_consortium(tmp_path: Path) -> None:
    home = tmp_path / "c"
    out = run_cli("init", "--home", str(home), "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["n"] == 7 and summary["f"] == 2
    assert set(summary["roles"]) == {"regulator", "data_bureau", "tech_center", "bank", "carrier",
                                     "shipper", "consignee"}
    assert summary["jurisdictions"] == ["CN-SH", "HK"]
    assert summary["quorum_power"] * 3 > 2 * summary["total_power"]
    keys = sorted(p.stem for p in (home / "keys").glob("*.key"))
    assert keys == sorted([m["id"] for m in summary["members"]] + [p["id"] for p in summary["parties"]])
    assert (home / "broker" / "credentials.json").stat().st_mode & 0o077 == 0


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    home = tmp_path / "c"
    assert run_cli("init", "--home", str(home)).returncode == 0
    before = (home / "genesis.json").read_text()
    out = run_cli("init", "--home", str(home))
    assert out.returncode == 2 and "--force" in out.stderr
    assert (home / "genesis.json").read_text() == before
    assert run_cli("init", "--home", str(home), "--force").returncode == 0
    assert (home / "genesis.json").read_text() != before  # new keys


def _members_copy(tmp_path: Path) -> Path:
    d = tmp_path / "nodes"
    shutil.copytree(NODES, d)
    return d


@pytest.mark.parametrize(
    "filename, content, needles",
    [
        ("bank-hk.toml", 'id = "bank-hk"\nname = "x"\nrole = "bank"\njurisdiction = "HK"\nvalidator = true\npower = "ten"\n',
         ["bank-hk.toml", "'power'"]),
        ("bank-hk.toml", 'id = "bank-hk"\nname = "x"\nrole = "banker"\njurisdiction = "HK"\nvalidator = true\npower = 1\n',
         ["bank-hk.toml", "'role'"]),
        ("bank-hk.toml", 'id = "bank-hk"\nname = "x"\nrole = "bank"\njurisdiction = "SG"\nvalidator = true\npower = 1\n',
         ["bank-hk.toml", "'jurisdiction'"]),
        ("bank-hk.toml", 'id = "bank-hk"\nname = "x"\nrole = "bank"\njurisdiction = "HK"\nvalidator = true\n',
         ["bank-hk.toml", "'power' is missing"]),
        ("bank-hk.toml", "id = [unclosed\n", ["bank-hk.toml", "not valid TOML"]),
        ("bank-hk2.toml", 'id = "bank-hk"\nname = "x"\nrole = "bank"\njurisdiction = "HK"\nvalidator = true\npower = 1\n',
         ["duplicates id 'bank-hk'"]),
        ("parties.toml", '[[party]]\nid = "hkma"\nname = "x"\nrole = "shipper"\njurisdiction = "HK"\n',
         ["parties.toml", "duplicates id 'hkma'"]),
        ("bank-hk.toml", 'id = "Bank HK"\nname = "x"\nrole = "bank"\njurisdiction = "HK"\nvalidator = true\npower = 1\n',
         ["bank-hk.toml", "'id'"]),
    ],
)
def test_bad_member_files_one_line_no_traceback_nothing_written(
    tmp_path: Path, filename: str, content: str, needles: list[str]
) -> None:
    members = _members_copy(tmp_path)
    (members / filename).write_text(content)
    home = tmp_path / "home"
    out = run_cli("init", "--home", str(home), "--members", str(members))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    for needle in needles:
        assert needle in out.stderr
    assert not home.exists(), "nothing half-written"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".home")], "no temp dir left"


def test_bad_chain_id(tmp_path: Path) -> None:
    out = run_cli("init", "--home", str(tmp_path / "h"), "--chain-id", "a/b")
    assert out.returncode == 2 and "--chain-id" in out.stderr


@pytest.mark.parametrize("home", ["/proc/x", "/proc/x/y", "/dev/null/x"])
def test_init_in_an_unwritable_place_is_one_line(home: str) -> None:
    """A home that cannot be created (a read-only or non-directory parent) is a
    one-line error naming the home, exit 2, never a traceback."""
    out = run_cli("init", "--home", home)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and home in lines[0], out.stderr


def test_work_dirs_names_init_homes_leftovers_only(tmp_path: Path) -> None:
    """An interrupt can land between init_home making its build or set-aside directory and
    the cleanup that owns it: `work_dirs` names exactly those siblings of a home (so a
    temporary home's owner removes them too: the interrupted `run --live` test saw one
    left), never the home itself or another home's."""
    from consortium.home import work_dirs

    home = tmp_path / "consortium-live-abc"
    home.mkdir()
    mine = [tmp_path / ".consortium-live-abc.init-x1", tmp_path / ".consortium-live-abc.old-0f0f"]
    others = [tmp_path / ".consortium-live-abcd.init-x2", tmp_path / "consortium-live-abc.init-x3"]
    for d in mine + others:
        d.mkdir()
    assert sorted(work_dirs(home)) == sorted(mine)
