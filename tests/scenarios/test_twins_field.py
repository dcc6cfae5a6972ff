"""The scenario field `twins` (Twins across processes; node/twins.py), without processes.

Invariant: `twins = [...]` at the top level of a consortium scenario names validators
run twice under one key on both back-ends; a wrong value is one file error before
anything runs, and the scenario as run (traces) keeps it."""

from __future__ import annotations

from pathlib import Path

import pytest

from consortium.config import seeded_genesis
from consortium.errors import UserError
from consortium.node.twins import check_twins
from consortium.scenario.schema import as_data, from_data, parse
from tests.conftest import NODES, ROOT

HEAD = 'name = "t"\nbackends = ["sim", "live"]\n'


@pytest.mark.parametrize(("text", "needle"), [
    ('twins = "nticbc"', "must be a list of validator ids"),
    ('twins = ["nticbc", "nticbc"]', "names 'nticbc' twice"),
    ("beyond_f = true", "applies to 'twins' only"),
    ('twins = ["nticbc"]\nbeyond_f = "yes"', "'beyond_f' must be true or false"),
    ('backends = ["sim"]\ntwins = ["sh-1"]\n[sim]\nnodes = 4', "names its twins in [sim]"),
])
def test_bad_twins_fields_are_file_errors(text: str, needle: str) -> None:
    """Each malformed twins field is a UserError naming the file and the field."""
    head = 'name = "t"\n' if "backends" in text else HEAD
    with pytest.raises(UserError) as err:
        parse(head + text + "\n", source="f.toml", base=Path("."))
    assert needle in str(err.value) and str(err.value).startswith("f.toml:"), str(err.value)


def test_twins_checked_against_the_genesis() -> None:
    """A twin must be a validator of the consortium, and twins together within f of the power
    (two of seven equal validators are; three are not, unless beyond_f)."""
    genesis = seeded_genesis(NODES, 0)[0]
    assert check_twins(["nticbc", "carrier-hk"], genesis) == ["nticbc", "carrier-hk"]
    with pytest.raises(UserError, match="'sh-exporter': not a member"):
        check_twins(["sh-exporter"], genesis)
    with pytest.raises(UserError, match="more than f = 2"):
        check_twins(["nticbc", "carrier-hk", "sdb"], genesis)
    assert len(check_twins(["nticbc", "carrier-hk", "sdb"], genesis, beyond_f=True)) == 3


def test_twins_survive_the_scenario_as_run() -> None:
    """The shipped twins scenario keeps its twins through as_data/from_data (what a trace
    stores and replay runs)."""
    sc = parse((ROOT / "scenarios" / "twins-live.toml").read_text(), source="twins-live.toml", base=ROOT)
    assert sc.twins == ("nticbc", "carrier-hk") and not sc.beyond_f
    again = from_data(as_data(sc), source="again")
    assert again.twins == sc.twins and again.beyond_f == sc.beyond_f
