"""The [live] table of a scenario: how live runs are deployed (`topology`).

Invariants: `topology` is "single" (the default) or "bridged"; anything else, or an
unknown [live] field, is refused naming the file; the field survives the trace's
as_data/from_data round trip (a replay deploys what ran); and the live back-end
takes it as a keyword too."""

from __future__ import annotations

from pathlib import Path

import pytest

from consortium.errors import UserError
from consortium.scenario.runner import LIVE_OPTIONS
from consortium.scenario.schema import as_data, from_data, parse

BASE = 'name = "t"\n[[step]]\nlabel = "w"\nwait_ms = 10\n'


def test_live_topology_field() -> None:
    assert parse(BASE, source="t.toml", base=Path(".")).live == {"topology": "single"}
    sc = parse(BASE + '[live]\ntopology = "bridged"\n', source="t.toml", base=Path("."))
    assert sc.live == {"topology": "bridged"}
    assert from_data(as_data(sc), source="t.toml").live == {"topology": "bridged"}
    with pytest.raises(UserError, match=r"t.toml: \[live\]: topology 'mesh' is not one of single, bridged"):
        parse(BASE + '[live]\ntopology = "mesh"\n', source="t.toml", base=Path("."))
    with pytest.raises(UserError, match=r"t.toml: \[live\]: unknown field 'topolgy'"):
        parse(BASE + '[live]\ntopolgy = "bridged"\n', source="t.toml", base=Path("."))
    assert "topology" in LIVE_OPTIONS
