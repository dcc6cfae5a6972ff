"""A scenario file is checked against its whole schema: a misspelt key anywhere
(top level, [consortium], [network], a step, a fault, an expectation, or a dot
path into the record an expectation compares) is a file error (UserError, exit
2) naming the file, the step or expectation, and the field, and suggesting the
nearest valid name. A typo must never make a scenario pass silently."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest

from consortium import scenario
from consortium.errors import UserError
from consortium.scenario.shapes import Items

ROOT = Path(__file__).resolve().parents[2]

_BASE = 'name = "typo"\nseed = 3\n'
_STEP = '\n[[step]]\nlabel = "warm-up"\nwait_ms = 100\n'

#: case -> (file text, needles every message must contain)
CASES: dict[str, tuple[str, list[str]]] = {
    "expect-field": (_BASE + _STEP + '\n[[expect]]\nwhat = "ebl"\nid = "nothing"\nstauts = "absent"\n',
                     ["expect 1", "'stauts'", "did you mean 'status'"]),
    "expect-dot-path": (_BASE + _STEP + '\n[[expect]]\nwhat = "lc"\nid = "LC-1"\n"terms.amout" = 5\n',
                        ["expect 1", "'terms.amout'", "did you mean 'terms.amount'"]),
    "expect-list-item": (_BASE + _STEP + '\n[[expect]]\nwhat = "lc"\nid = "LC-1"\n'
                         '"presentation_records.0.stats" = "HONOURED"\n',
                         ["expect 1", "'presentation_records.0.stats'",
                          "did you mean 'presentation_records.0.status'"]),
    "expect-kind": (_BASE + _STEP + '\n[[expect]]\nwhat = "eb"\nid = "x"\nstatus = "ISSUED"\n',
                    ["expect 1", "'what'", "did you mean 'ebl'"]),
    "expect-consensus": (_BASE + _STEP + '\n[[expect]]\nwhat = "consensus"\nagreemnt = true\n',
                         ["expect 1", "'agreemnt'", "did you mean 'agreement'"]),
    "expect-tx": (_BASE + _STEP + '\n[[expect]]\nwhat = "tx"\nstep = "warm-up"\ncod = "OK"\n',
                  ["expect 1", "'cod'", "did you mean 'code'"]),
    "expect-share": (_BASE + _STEP + '\n[[expect]]\nwhat = "share"\nid = "S1"\nreadable = ["bank-hk"]\n',
                     ["expect 1", "'readable'", "did you mean 'readable_by'"]),
    "expect-consent": (_BASE + _STEP + '\n[[expect]]\nwhat = "consent"\ndata_id = "D1"\ngrantee = "bank-hk"\n'
                       'purpose = "COMPLIANCE"\nstatuss = "GRANTED"\n',
                       ["expect 1", "'statuss'", "did you mean 'status'"]),
    "top-level": (_BASE + 'descripton = "x"\n' + _STEP, ["'descripton'", "did you mean 'description'"]),
    "consortium-table": (_BASE + '\n[consortium]\nmember = "nodes"\n' + _STEP,
                         ["[consortium]", "'member'", "did you mean 'members'"]),
    "network-table": (_BASE + '\n[network]\nlos = 0.1\n' + _STEP, ["[network]", "'los'", "did you mean 'loss'"]),
    "tx-step": (_BASE + _STEP + '\n[[step]]\nlabel = "issue"\nas = "carrier-sh"\ntx = "ISSUE"\n'
                'document = "example:transport-document-to-order.json"\nrefrence = "R1"\n',
                ["step 2 (issue)", "'refrence'", "did you mean 'reference'"]),
    "tx-field-of-another-kind": (_BASE + _STEP + '\n[[step]]\nlabel = "move"\nas = "sh-exporter"\ntx = "TRANSFER"\n'
                                 'document = "example:transport-document-to-order.json"\n'
                                 'body = { ebl = "x", recipient = "hk-importer" }\n',
                                 ["step 2 (move)", "'document'", "ISSUE"]),
    "step-common": (_BASE + _STEP + '\n[[step]]\nlabel = "later"\nat_mss = 5\nwait_ms = 10\n',
                    ["step 2 (later)", "'at_mss'", "did you mean 'at_ms'"]),
    "step-action": (_BASE + _STEP + '\n[[step]]\nlabel = "later"\nwait_msec = 10\n',
                    ["step 2 (later)", "'wait_msec'", "did you mean 'wait_ms'"]),
    "fault-field": (_BASE + _STEP + '\n[[step]]\nlabel = "cut"\nfault = "partition"\n'
                    'group = [["sdb"], ["hkma"]]\n', ["step 2 (cut)", "'group'", "did you mean 'groups'"]),
    "fault-kind": (_BASE + _STEP + '\n[[step]]\nlabel = "cut"\nfault = "partiton"\n'
                   'groups = [["sdb"], ["hkma"]]\n', ["step 2 (cut)", "'partiton'", "did you mean 'partition'"]),
    "fault-field-of-another-fault": (_BASE + _STEP + '\n[[step]]\nlabel = "mend"\nfault = "heal"\nnode = "sdb"\n',
                                     ["step 2 (mend)", "'node'", "heal"]),
    "byzantine-behaviour": (_BASE + _STEP + '\n[[step]]\nlabel = "evil"\nfault = "byzantine"\nnode = "sdb"\n'
                            'behaviour = "equivocat"\n', ["step 2 (evil)", "'behaviour'", "did you mean 'equivocate'"]),
}


def _write(tmp_path: Path, case: str) -> Path:
    path = tmp_path / f"{case}.toml"
    path.write_text(CASES[case][0], encoding="utf-8")
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_misspelt_key_is_a_file_error_with_the_nearest_valid_name(case: str, tmp_path: Path) -> None:
    """Loading the file raises UserError naming the file, the place and the key, with a suggestion."""
    path = _write(tmp_path, case)
    with pytest.raises(UserError) as err:
        scenario.load(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path)), message
    for needle in CASES[case][1]:
        assert needle in message, (needle, message)


def test_a_typo_in_an_expectation_fails_the_cli_with_exit_2(tmp_path: Path) -> None:
    """`stauts = "absent"` used to pass (no such field is always absent); now `consortium run`
    exits 2 with one line naming file, expectation and field, and no table."""
    path = _write(tmp_path, "expect-field")
    env = dict(os.environ, COLUMNS="200")
    out = subprocess.run([sys.executable, "-m", "consortium", "run", str(path)], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stdout == "" and "Traceback" not in out.stderr
    message = " ".join(out.stderr.split())
    assert message.count("error:") == 1
    for needle in [str(path), "expect 1", "'stauts'", "did you mean 'status'"]:
        assert needle in message, (needle, message)


def test_every_field_the_shipped_scenarios_compare_is_a_known_field() -> None:
    """The stricter schema still reads every file in scenarios/."""
    for path in sorted((ROOT / "scenarios").glob("*.toml")):
        scenario.load(path)


def _same_shape(shape: object, value: object, path: str) -> list[str]:
    """Where `value` (a query's JSON) and `shape` disagree: a field missing on either side."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return [f"{path}: a record expected, got {value!r}"]
        out = [f"{path}.{k}: not in the shape" for k in sorted(set(value) - set(shape))]
        out += [f"{path}.{k}: not in the query's record" for k in sorted(set(shape) - set(value))]
        for k in sorted(set(shape) & set(value)):
            out += _same_shape(shape[k], value[k], f"{path}.{k}")
        return out
    if isinstance(shape, Items):
        if not isinstance(value, list):
            return [f"{path}: a list expected, got {value!r}"]
        return [x for i, item in enumerate(value) for x in _same_shape(shape.of, item, f"{path}.{i}")]
    return [f"{path}: a plain value expected, got {value!r}"] if isinstance(value, (dict, list)) else []


def test_the_field_shapes_are_exactly_what_the_queries_return(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shapes the schema checks dot paths against (consortium/scenario/shapes.py) are
    the records the ledger queries really return, field for field: every record an
    expectation looked up in five scenarios covering every kind has exactly the fields
    of its shape, so a field added to or removed from a query cannot go unnoticed."""
    from consortium.ledger import queries
    from consortium.scenario.shapes import KINDS

    seen: dict[str, list[object]] = {k: [] for k in KINDS}
    names = {"ebl": "ebl", "ebl_ref": "ebl_by_reference", "lc": "lc", "financing": "financing",
             "collateral": "collateral", "party": "party", "data": "data", "consent": "consent",
             "account": "account", "dvp": "dvp"}
    for kind, fn in names.items():
        def spy(*args: object, _f: object = getattr(queries, fn), _k: str = kind) -> object:
            out = _f(*args)  # type: ignore[operator]
            if out is not None:  # a copy: ebl_by_reference adds "history" to what ebl returned
                seen[_k].append(copy.deepcopy(out))
            return out
        monkeypatch.setattr(queries, fn, spy)
    for name in ("mainland-data-consent", "qingdao-multiple-pledging", "switch-to-paper",
                 "discrepancy-refusal-waiver", "dvp-settlement"):
        assert scenario.run(ROOT / "scenarios" / f"{name}.toml").ok, name
    assert all(seen.values()), {k: len(v) for k, v in seen.items()}
    problems = [p for kind, records in seen.items() for r in records for p in _same_shape(KINDS[kind], r, kind)]
    assert not problems, problems
