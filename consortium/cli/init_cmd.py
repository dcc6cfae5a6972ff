"""`consortium init`: genesis, keys and broker credentials from nodes/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from consortium.cli.app import DEFAULT_HOME, app, console, emit_json
from consortium.config import default_members_dir
from consortium.genesis import DEFAULT_CHAIN_ID
from consortium.home import init_home


@app.command()
def init(
    home: Annotated[Path, typer.Option(help="Consortium home directory to create.")] = DEFAULT_HOME,
    members: Annotated[Optional[Path], typer.Option(help="Directory of member TOML files (default: nodes/).")] = None,
    chain_id: Annotated[str, typer.Option("--chain-id", help="Chain identifier (an MQTT topic level).")] = DEFAULT_CHAIN_ID,
    force: Annotated[bool, typer.Option(help="Replace an existing home directory.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the genesis summary as JSON.")] = False,
) -> None:
    """Write the genesis, one key per member and party, and broker credentials."""
    genesis = init_home(home, members or default_members_dir(), chain_id, force=force)
    summary = genesis.summary()
    if json_out:
        emit_json({"home": str(home), **summary})
        return
    table = Table(title=f"chain {genesis.chain_id}: n = {summary['n']}, f = {summary['f']}, "
                        f"total power {summary['total_power']}")
    for col in ("id", "name", "role", "jurisdiction", "power"):
        table.add_column(col)
    for m in summary["members"]:
        table.add_row(m["id"], m["name"], m["role"], m["jurisdiction"], str(m["power"]))
    for p in summary["parties"]:
        table.add_row(p["id"], p["name"], p["role"], p["jurisdiction"], "-")
    console.print(table)
    console.print(f"wrote {home}/genesis.json, keys/ and broker/ (genesis {summary['genesis_digest'][:16]}...)")
