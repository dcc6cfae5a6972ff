"""Read a trace (JSON lines, written by `consortium run|sim --trace`), a bench result
(JSON) or a sweep (CSV) for the report and the export. Bad input is one line naming
the file and the line (UserError: exit 2), never a traceback."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consortium import limits
from consortium.errors import UserError

#: the trace format this reader understands (consortium.scenario.runner.TRACE_VERSION; a test keeps them equal)
TRACE_VERSION = 2
LINE_TYPES = ("header", "step", "block", "node_step", "timeout", "fault", "msg", "msg_count", "tx", "result")


@dataclass
class Trace:
    path: Path
    header: dict[str, Any]
    lines: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    result: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, kind: str) -> list[dict[str, Any]]:
        return self.lines.get(kind, [])

    @property
    def nodes(self) -> list[dict[str, Any]]:
        nodes = self.header.get("nodes") or []
        if nodes:
            return list(nodes)
        seen = sorted({x["node"] for x in self["node_step"]})
        return [{"id": n, "jurisdiction": "", "power": 0} for n in seen]

    @property
    def title(self) -> str:
        h = self.header
        return f"{h.get('scenario', '?')} ({h.get('backend', '?')}, seed {h.get('seed', '?')})"


def _open_text(path: Path) -> list[str]:
    try:
        with path.open("r", encoding="utf-8") as f:
            return f.read().split("\n")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a trace file") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not a text file ({exc.reason})") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def load_trace(path: Path) -> Trace:
    """Every line checked: JSON object with a known `type`, the header first and of
    this version, a result line last (else the file was cut short)."""
    path = Path(path)
    raw = _open_text(path)
    if raw and raw[-1] == "":
        raw.pop()
    if not raw:
        raise UserError(f"{path}:1: empty file, not a trace")
    trace: Trace | None = None
    for n, text in enumerate(raw, start=1):
        if len(text) > limits.trace_line_chars_max:
            raise UserError(f"{path}:{n}: line longer than {limits.trace_line_chars_max} characters")
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{n}: not a JSON object (truncated or damaged line: {exc.msg}, "
                            f"column {exc.colno})") from None
        if not isinstance(obj, dict) or obj.get("type") not in LINE_TYPES:
            raise UserError(f"{path}:{n}: not a trace line (no known 'type'; expected one of "
                            f"{', '.join(LINE_TYPES)})")
        kind = obj["type"]
        if n == 1:
            if kind != "header":
                raise UserError(f"{path}:1: a trace starts with its header line")
            version = obj.get("version")
            if version != TRACE_VERSION:
                raise UserError(f"{path}:1: trace format version {version}; this consortium reads version "
                                f"{TRACE_VERSION} (write the trace again with `consortium run --trace`)")
            trace = Trace(path, obj)
            continue
        assert trace is not None
        if kind == "header":
            raise UserError(f"{path}:{n}: a second header line")
        if kind == "result":
            if n != len(raw):
                raise UserError(f"{path}:{n}: lines after the result line")
            trace.result = obj
        else:
            trace.lines[kind].append(obj)
    assert trace is not None
    if not trace.result:
        raise UserError(f"{path}:{len(raw) + 1}: the trace ends before its result line (truncated)")
    return trace


def load_bench(path: Path) -> dict[str, Any]:
    """A `consortium bench --json` result (with "samples" when it ran with --report)."""
    text = "\n".join(_open_text(Path(path)))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
    if not isinstance(data, dict) or "latency_ms" not in data:
        raise UserError(f"{path}:1: not a `consortium bench --json` result (no latency_ms)")
    return data


#: sweep columns that are results, not parameters
SWEEP_RESULTS = ("seed", "passed", "ok", "heights_per_s", "tx_per_s", "virtual_ms", "heights", "frames", "txs",
                 "error", "max_round")


def load_sweep(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """A sweep CSV: one column per parameter, `seed`, `passed`, and result columns
    (`heights_per_s`, latency percentiles `latency_*`...). Returns (parameters, rows)
    with numbers parsed."""
    lines = _open_text(Path(path))
    reader = csv.DictReader(lines)
    if not reader.fieldnames:
        raise UserError(f"{path}:1: empty CSV, no header row")
    cols = list(reader.fieldnames)
    if "passed" not in cols and "ok" not in cols:
        raise UserError(f"{path}:1: a sweep CSV needs a 'passed' column (columns: {', '.join(cols)})")
    rows = []
    for n, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            raise UserError(f"{path}:{n}: {len(cols)} columns expected (truncated or damaged row)")
        rows.append({k: _num(v) for k, v in row.items()})
    params = [c for c in cols if c not in SWEEP_RESULTS and not c.startswith("latency")]
    return params, rows


def _num(v: str) -> Any:
    if v in ("True", "true"):
        return True
    if v in ("False", "false"):
        return False
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        return v
