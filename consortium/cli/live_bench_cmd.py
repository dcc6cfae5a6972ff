"""`consortium bench`: committed tx/s, commit latency and the signature ceiling, measured live.

Starts a throw-away consortium (temp home, broker, one process per validator,
separate load processes) and prints what it measured; see consortium/bench/live.py
for how each number is taken. Targets live in the issue and docs/PERFORMANCE.md,
never in tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from consortium import limits
from consortium.cli.app import app, emit_json, err_console


@app.command()
def bench(
    nodes: Annotated[int, typer.Option(help="Validators (one process each).")] = 4,
    broker: Annotated[str, typer.Option(help="mosquitto, embedded or mqtt://host:port.")] = "mosquitto",
    rate: Annotated[int, typer.Option(help="Offered load in tx/s (all load processes together).")] = 500,
    max_: Annotated[bool, typer.Option("--max", help="Offer as much as the mempools absorb instead of --rate.")] = False,
    duration: Annotated[float, typer.Option(help="Seconds of load.")] = limits.bench_duration_ms / 1000,
    loaders: Annotated[int, typer.Option(help="Separate load processes.")] = 2,
    block_interval_ms: Annotated[int, typer.Option(help="Pause between heights (ms).")] = limits.bench_block_interval_ms,
    drain: Annotated[float, typer.Option(help="Seconds to wait for the backlog after the load stops.")] = limits.bench_drain_ms / 1000,
    warmup: Annotated[float, typer.Option(help="First seconds of load left out of tx/s and latency_ms.")] = limits.bench_warmup_ms / 1000,
    keep: Annotated[Optional[Path], typer.Option(help="Copy the run's home (stores, logs) here.")] = None,
    profile: Annotated[bool, typer.Option(help="Nodes write cProfile stats (HOME/run/<id>.prof; use --keep).")] = False,
    against_raft: Annotated[bool, typer.Option(
        "--against-raft", help="Then run a PySyncObj Raft log of the same n here (extra consortium[bench]) "
                               "and print both rates and their ratio.")] = False,
    report: Annotated[Optional[Path], typer.Option(
        help="Write an HTML report here: latency distribution and throughput over time.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Measure committed tx/s and commit latency (with --rate: from the moment each tx was due) of N local validators over a real broker."""
    from consortium.bench.live import BenchOptions, run_bench

    opts = BenchOptions(nodes=nodes, broker=broker, rate=0 if max_ else rate, max=max_, duration_s=duration,
                        loaders=loaders, block_interval_ms=block_interval_ms, drain_s=drain, keep=keep,
                        profile=profile, warmup_s=warmup, samples=report is not None, against_raft=against_raft)
    result = run_bench(opts, progress=lambda msg: err_console.print(f"bench: {msg}", highlight=False))
    if report is not None:
        from consortium import report as rep

        info = rep.build(report, bench=result)
        err_console.print(f"bench: report {info['report']} ({info['bytes'] / 1e6:.1f} MB)", highlight=False)
        result.pop("samples", None)
    if json_out:
        emit_json(result)
    else:
        _print(result)


def _print(r: dict[str, Any]) -> None:
    out = Console(soft_wrap=True, highlight=False)  # one result per line, also through a pipe
    lat = r["latency_ms"]
    c = r["ceiling"]
    out.print(f"{r['nodes']} validators over {r['broker']}, offered {r['offered_tx_per_s']} tx/s "
              f"for {r['duration_s']} s by {r['load_processes']} load processes")
    out.print(f"committed {r['committed_tx_per_s']} tx/s ({r['heights_per_s']} heights/s); "
              f"sent {r['txs_sent']}, decided {r['txs_decided']}, accepted {r['txs_accepted']}, "
              f"undecided {r['txs_undecided']}")
    start = "was due" if r.get("latency_from") == "due" else "was sent"
    out.print(f"commit latency ms (from when a tx {start}) after {r['warmup_s']} s warm-up: p50 {lat['p50']}, p95 {lat['p95']}, "
              f"p99 {lat['p99']}, max {lat['max']}; all txs: p50 {r['latency_ms_all']['p50']}, "
              f"p99 {r['latency_ms_all']['p99']}")
    out.print(f"Ed25519 verify: {r['verify_per_s_one_core']}/s on one core; ceiling with {c['cores']} cores "
              f"and {c['verifies_per_tx_per_node']} verifies per tx per node: {c['tx_per_s']} tx/s "
              f"(reached {c['fraction_reached']:.0%})")
    lc = r["ledger_ceiling"]
    out.print(f"ledger path (admission check, block check, apply, state root; Ed25519 included): "
              f"{lc['tx_per_cpu_s_one_core']} tx per CPU-second on one core (before / after the run: "
              f"{' / '.join(str(x) for x in lc['samples'])}); ceiling with {lc['cores']} cores "
              f"and {r['nodes']} nodes: {lc['tx_per_s']} tx/s (reached {lc['fraction_reached']:.0%})")
    out.print(f"CPU share (cores busy): {r['cpu_share']}")
    if "raft" in r:
        rf = r["raft"]
        out.print(f"Raft baseline ({rf['library']}, {rf['nodes']} nodes, loopback, batched, no signatures, "
                  f"no fsync): {rf['ops_per_s']} ops/s; committed tx/s / Raft ops/s = {r['ratio_vs_raft']}x")
    m = r["machine"]
    out.print(f"machine: {m['cores']} cores, {m['mem_gib']} GiB, {m['cpu']}, Python {m['python']}")
