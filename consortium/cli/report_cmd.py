"""`consortium report` and `consortium export`: what a run left behind, drawn or tabled.

Both read files only (a trace, a bench result, a sweep CSV); bad input is one line
naming the file and the line, exit 2."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from consortium.cli.app import app, console, emit_json, err_console
from consortium.errors import UserError


def parse_heights(spec: str | None) -> tuple[int, int] | None:
    if spec is None:
        return None
    a, _, b = spec.partition(":")
    try:
        lo, hi = int(a), int(b or a)
    except ValueError:
        raise UserError(f"--heights {spec!r}: expected FROM:TO, e.g. 5:7") from None
    if lo < 1 or hi < lo:
        raise UserError(f"--heights {spec!r}: expected 1 <= FROM <= TO")
    return lo, hi


def trace_and_report(write: Callable[[Path], None], trace: Path | None, report: Path | None,
                     bench: dict[str, Any] | None = None) -> None:
    """Write the trace (to `trace`, or a temporary file when only a report is wanted), then the report."""
    from consortium import report as rep

    if trace is None and report is None:
        return
    with tempfile.TemporaryDirectory(prefix="consortium-report-") as tmp:
        path = trace if trace is not None else Path(tmp) / "trace.jsonl"
        write(path)
        if report is not None:
            info = rep.build(report, trace=path, bench=bench)
            err_console.print(f"report {info['report']} ({info['bytes'] / 1e6:.1f} MB)", highlight=False)


@app.command("report")
def report_cmd(
    trace: Annotated[Optional[Path], typer.Argument(help="A trace (`consortium run|sim --trace`).")] = None,
    out: Annotated[Path, typer.Option("-o", "--out", help="The HTML file to write.")] = Path("report.html"),
    bench: Annotated[Optional[Path], typer.Option(help="A `consortium bench --json` result to add.")] = None,
    sweep: Annotated[Optional[Path], typer.Option(help="A sweep CSV (one column per parameter, passed, latency...).")
                     ] = None,
    heights: Annotated[Optional[str], typer.Option(help="Heights of the message sequence diagram, FROM:TO.")] = None,
    figures: Annotated[Optional[Path], typer.Option(help="Also write static figures (matplotlib) into this dir.")
                       ] = None,
    fmt: Annotated[str, typer.Option("--format", help="Static figure format: png or svg.")] = "png",
    json_out: Annotated[bool, typer.Option("--json", help="Print what was written as JSON.")] = False,
) -> None:
    """One self-contained HTML report (works offline): validator lanes with faults shaded, the
    business lane, a message sequence diagram, latency and throughput, sweep charts."""
    from consortium import report as rep
    from consortium.report import static

    if trace is None and bench is None and sweep is None:
        raise UserError("give a TRACE, --bench or --sweep (see --help)")
    if fmt not in ("png", "svg"):
        raise UserError(f"--format must be png or svg, got {fmt!r}")
    span = parse_heights(heights)
    t = rep.load_trace(trace) if trace is not None else None
    b = rep.load_bench(bench) if bench is not None else None
    info = rep.build(out, trace=t, bench=b, sweep=sweep, heights=span)
    if figures is not None:
        info["static"] = [str(p) for p in static.write(figures, fmt, t, b)]
    if json_out:
        emit_json(info)
    else:
        console.print(f"report {info['report']} ({info['bytes'] / 1e6:.1f} MB): {', '.join(info['figures'])}",
                      highlight=False)
        for p in info.get("static", []):
            console.print(f"figure {p}", highlight=False)


@app.command("export")
def export_cmd(
    trace: Annotated[Path, typer.Argument(help="A trace (`consortium run|sim --trace`).")],
    csv: Annotated[Optional[Path], typer.Option(help="Write one CSV per table into this directory.")] = None,
    parquet: Annotated[Optional[Path], typer.Option(help="Write one Parquet file per table here (needs pyarrow).")
                       ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print what was written as JSON.")] = False,
) -> None:
    """Tables of heights, transactions, node steps, messages and faults, for pandas or polars."""
    from consortium import report as rep

    if csv is None and parquet is None:
        raise UserError("give --csv DIR and/or --parquet DIR")
    t = rep.load_trace(trace)
    written = []
    if csv is not None:
        written += rep.export.write_csv(t, csv)
    if parquet is not None:
        written += rep.export.write_parquet(t, parquet)
    counts = {name: len(rows) for name, (_, rows) in rep.export.tables(t).items()}
    if json_out:
        emit_json({"files": [str(p) for p in written], "rows": counts})
    else:
        for p in written:
            console.print(f"wrote {p}", highlight=False)
        console.print(", ".join(f"{k} {v}" for k, v in counts.items()), highlight=False)
