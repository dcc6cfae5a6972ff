"""Reports from what runs leave behind: traces (JSON lines), bench results (JSON) and
sweeps (CSV). Reads files only: never runs a simulator or a node.

    from consortium import report
    t = report.load_trace("t.jsonl")
    report.build("report.html", trace=t)          # self-contained HTML (plotly, offline)
    report.export.write_csv(t, Path("tables"))    # heights, transactions, node steps, messages, faults
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from consortium.report import export
from consortium.report.trace import TRACE_VERSION, Trace, load_bench, load_sweep, load_trace


def build(out: str | Path, *, trace: Trace | str | Path | None = None, bench: dict[str, Any] | str | Path | None = None,
          sweep: str | Path | None = None, heights: tuple[int, int] | None = None) -> dict[str, Any]:
    """Write one self-contained HTML report from a trace and/or a bench result and/or a sweep CSV."""
    from consortium.report.html import build as _build

    try:
        import plotly  # noqa: F401
    except ImportError:
        from consortium.errors import UserError

        raise UserError("reports need plotly: pip install 'consortium[report]'") from None
    t = load_trace(Path(trace)) if isinstance(trace, (str, Path)) else trace
    b = load_bench(Path(bench)) if isinstance(bench, (str, Path)) else bench
    sw = load_sweep(Path(sweep)) if sweep is not None else None
    return _build(Path(out), trace=t, bench=b, sweep=sw, heights=heights)


__all__ = ["TRACE_VERSION", "Trace", "build", "export", "load_bench", "load_sweep", "load_trace"]
