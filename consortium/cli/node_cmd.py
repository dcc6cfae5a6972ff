"""`consortium node`: one node process (normally started by `consortium up`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from consortium.cli.app import DEFAULT_HOME, app

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@app.command()
def node(
    node_id: Annotated[str, typer.Option("--id", help="Member id of this node (a nodes/*.toml id).")],
    home: Annotated[Path, typer.Option(help="Consortium home directory (from `consortium init`).")] = DEFAULT_HOME,
    broker: Annotated[Optional[str], typer.Option(
        help="mqtt://host:port of the broker (default: the one `consortium up` recorded in HOME/run).")] = None,
    block_interval_ms: Annotated[Optional[int], typer.Option(
        help="Local pause between heights in ms (default: genesis params, or $CONSORTIUM_BLOCK_INTERVAL_MS).")] = None,
    parent_pid: Annotated[Optional[int], typer.Option(
        hidden=True, help="Stop when this process is gone (set by `consortium up`).")] = None,
    log_level: Annotated[str, typer.Option(help="Log level on stderr: debug, info, warning.")] = "info",
    twin: Annotated[bool, typer.Option(
        "--twin", help="Run as the validator's twin (Twins): a second process under its key, with its own store "
                       "HOME/nodes/ID~twin, client id and status file; see docs/LIVE.md.")] = False,
    profile: Annotated[Optional[Path], typer.Option(
        hidden=True, help="Write cProfile stats of the whole run to this file (bench --profile).")] = None,
    record: Annotated[bool, typer.Option(
        "--record", help="Log every input of the replica to HOME/nodes/ID/inputs.log (or $CONSORTIUM_RECORD=1), "
                         "for `consortium replay-node`.")] = False,
) -> None:
    """Run one node: replica + ledger + SQLite store + MQTT bus, until SIGTERM or Ctrl-C."""
    from consortium.node.runtime import NodeOptions, run_node  # the bus stack only for this command

    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO), format=LOG_FORMAT)
    opts = NodeOptions(home=home, node_id=node_id, broker=broker, parent_pid=parent_pid,
                       block_interval_ms=block_interval_ms, twin=twin, record=True if record else None)
    if profile is None:
        run_node(opts)
        return
    import cProfile

    with cProfile.Profile() as prof:
        try:
            run_node(opts)
        finally:
            prof.dump_stats(str(profile))
