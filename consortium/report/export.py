"""`consortium export TRACE --csv DIR [--parquet DIR]`: the trace as flat tables,
one file per table, ready for pandas or polars (`pd.read_csv`, `pl.read_parquet`)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from consortium.errors import UserError
from consortium.report.trace import Trace

#: table name -> trace line type
TABLES = {"heights": "block", "transactions": "tx", "node_steps": "node_step", "messages": "msg",
          "faults": "fault", "timeouts": "timeout", "message_counts": "msg_count", "steps": "step"}


def tables(trace: Trace) -> dict[str, tuple[list[str], list[dict[str, Any]]]]:
    """Each table as (columns, rows); nested values (lists, maps) as JSON text."""
    out = {}
    for name, kind in TABLES.items():
        rows = [{k: v for k, v in x.items() if k != "type"} for x in trace[kind]]
        cols: list[str] = []
        for r in rows:
            cols += [k for k in r if k not in cols]
        flat = [{c: _flat(r.get(c)) for c in cols} for r in rows]
        out[name] = (cols, flat)
    return out


def _flat(v: Any) -> Any:
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v


def write_csv(trace: Trace, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (cols, rows) in tables(trace).items():
        p = out_dir / f"{name}.csv"
        with p.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=cols or ["empty"])
            w.writeheader()
            w.writerows(rows)
        written.append(p)
    return written


def write_parquet(trace: Trace, out_dir: Path) -> list[Path]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError("--parquet needs pyarrow: pip install 'consortium[report]'") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (cols, rows) in tables(trace).items():
        p = out_dir / f"{name}.parquet"
        columns = {c: [r[c] for r in rows] for c in cols}
        pq.write_table(pa.table({c: _column(pa, v) for c, v in columns.items()}), p)
        written.append(p)
    return written


def _column(pa: Any, values: list[Any]) -> Any:
    """One Arrow column: its own type when the values agree, else text."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
