"""`consortium query ...`: read one node's store and answer with the ledger's queries.

The node's state is rebuilt from its SQLite store (newest snapshot plus the
blocks after it, bus.livestore); nothing goes over the bus, so a query works
while the consortium runs and after it stopped. `--node` picks the node
(default: the member whose store is highest). Exit code 1 when not found.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console

from consortium.cli.app import DEFAULT_HOME, app, emit_json, err_console
from consortium.errors import UserError

if TYPE_CHECKING:
    from consortium.ledger import Ledger
    from consortium.node.livestore import LiveStore

query_app = typer.Typer(help="Ask one node's store: eBL, LC, financing, party, block, tx.", no_args_is_help=True)
app.add_typer(query_app, name="query")

Home = Annotated[Path, typer.Option(help="Consortium home directory.")]
Node = Annotated[Optional[str], typer.Option(help="Member whose store answers (default: the highest).")]
Json = Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")]


def _store(home: Path, node: str | None) -> tuple[str, LiveStore]:
    from consortium.client.submit import member_stores
    from consortium.home import load_genesis

    stores = member_stores(home, load_genesis(home), node)
    ident = node or max(stores, key=lambda i: (stores[i].last_height(), i))
    for other, s in stores.items():
        if other != ident:
            s.close()
    return ident, stores[ident]


def _answer(node: str, height: int, answer: Any, json_out: bool, what: str) -> None:
    if answer is None:
        err_console.print(f"{what}: not found on {node} (height {height})", highlight=False)
        raise typer.Exit(1)
    out = {"node": node, "height": height, "answer": answer}
    if json_out:
        emit_json(out)
    else:
        Console().print_json(data=out)


def _ledger_query(home: Path, node: str | None, json_out: bool, what: str,
                  ask: Callable[[Ledger], Any]) -> None:
    from consortium.home import load_genesis

    ident, store = _store(home, node)
    try:
        ledger = store.restore_ledger(load_genesis(home))
        height = store.last_height()
    finally:
        store.close()
    _answer(ident, height, ask(ledger), json_out, what)


@query_app.command()
def ebl(ebl_id: Annotated[str, typer.Argument(help="eBL id (document checksum).")],
        document: Annotated[bool, typer.Option(help="Include the transport document text.")] = False,
        home: Home = DEFAULT_HOME, node: Node = None, json_out: Json = False) -> None:
    """An eBL: status, possessor, title holder, pledgee, transfer chain."""
    from consortium.ledger import queries

    _ledger_query(home, node, json_out, f"eBL {ebl_id}", lambda led: queries.ebl(led, ebl_id, with_document=document))


@query_app.command()
def ebls(party: Annotated[Optional[str], typer.Option(help="Only eBLs this party possesses, holds or has pledged.")] = None,
         home: Home = DEFAULT_HOME, node: Node = None, json_out: Json = False) -> None:
    """A summary line per eBL."""
    from consortium.ledger import queries

    _ledger_query(home, node, json_out, "eBLs", lambda led: queries.ebls(led, party=party))


@query_app.command()
def lc(lc_id: Annotated[str, typer.Argument(help="Letter of credit id.")],
       home: Home = DEFAULT_HOME, node: Node = None, json_out: Json = False) -> None:
    """A letter of credit with its presentations."""
    from consortium.ledger import queries

    _ledger_query(home, node, json_out, f"LC {lc_id}", lambda led: queries.lc(led, lc_id))


@query_app.command()
def financing(fin_id: Annotated[str, typer.Argument(help="Financing id.")],
              home: Home = DEFAULT_HOME, node: Node = None, json_out: Json = False) -> None:
    """A financing request and the liens on its collateral."""
    from consortium.ledger import queries

    _ledger_query(home, node, json_out, f"financing {fin_id}", lambda led: queries.financing(led, fin_id))


@query_app.command()
def party(party_id: Annotated[str, typer.Argument(help="Party or member id.")],
          home: Home = DEFAULT_HOME, node: Node = None, json_out: Json = False) -> None:
    """A registered party (role, jurisdiction, key) and its next unused nonce."""
    from consortium.ledger import queries

    def ask(led: Ledger) -> Any:
        found = queries.party(led, party_id)
        return None if found is None else {**found, "next_nonce": queries.nonce(led, party_id)}

    _ledger_query(home, node, json_out, f"party {party_id}", ask)


@query_app.command()
def summary(home: Home = DEFAULT_HOME, node: Node = None, json_out: Json = False) -> None:
    """Ledger height, date and record counts per table."""
    from consortium.ledger import queries

    _ledger_query(home, node, json_out, "summary", queries.summary)


@query_app.command()
def block(height: Annotated[int, typer.Argument(help="Block height (0: the newest).")],
          home: Home = DEFAULT_HOME, node: Node = None, json_out: Json = False) -> None:
    """A decided block: header, certificate signers, each tx with its result."""
    ident, store = _store(home, node)
    try:
        h = height or store.last_height()
        answer = _block_view(store, h)
    finally:
        store.close()
    _answer(ident, h, answer, json_out, f"block {height}")


def _block_view(store: LiveStore, height: int) -> dict[str, Any] | None:
    from consortium.node.livestore import decode_results

    d = store.decided(height)
    info = store.block_info(height)
    raw = store.results(height)
    if d is None or info is None or raw is None:
        return None
    b, c = d.block, d.certificate
    return {"height": b.height, "id": b.id.hex(), "time_ms": b.time_ms, "proposer": b.proposer,
            "prev_id": b.prev_id.hex(), "app_hash": b.app_hash.hex(), "state_root_after": info[1].hex(),
            "certificate": {"round": c.round, "signers": [v for v, _ in c.signatures]},
            "evidence": len(b.evidence),
            "txs": [{"tx_hash": h.hex(), "code": code, "detail": detail} for h, code, detail in decode_results(raw)]}


@query_app.command()
def tx(tx_hash: Annotated[str, typer.Argument(help="Transaction hash (64 hex).")],
       home: Home = DEFAULT_HOME, node: Node = None, json_out: Json = False) -> None:
    """Where a transaction was decided and its result."""
    try:
        h = bytes.fromhex(tx_hash)
    except ValueError:
        raise UserError(f"{tx_hash!r} is not hex") from None
    ident, store = _store(home, node)
    try:
        found = store.tx_result(h)
        height = store.last_height()
    finally:
        store.close()
    _answer(ident, height, found, json_out, f"tx {tx_hash[:16]}")
