"""`consortium query ...`: read one node's store and answer with the ledger's queries.

The node's state is rebuilt from its SQLite store (newest snapshot plus the
blocks after it, node.livestore); nothing goes over the bus, so a query works
while the consortium runs and after it stopped. `--node` picks the node
(default: the member whose store is highest). Exit code 1 when not found
(a block beyond the chain: "does not exist", with the chain's last height).
Output: readable `key: value` lines; `--json` prints {node, height, answer}.
"""

from __future__ import annotations

import json
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

query_app = typer.Typer(help="Ask one node's store: eBL, LC, financing, party, balances, flows, block, tx.",
                        no_args_is_help=True)
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
        err_console.print(f"{what}: not found on {node} (chain at height {height})", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    out = {"node": node, "height": height, "answer": answer}
    if json_out:
        emit_json(out)
        return
    show = Console(highlight=False, markup=False, soft_wrap=True)
    show.print(f"{what} (node {node}, chain at height {height})")
    _print_value(show, answer, "")


def _print_value(show: Console, value: Any, pad: str) -> None:
    """Readable lines, YAML-like: `key: value` per scalar, nested maps indented,
    each record of a list as an indented `- ` block, other lists comma-separated."""
    if isinstance(value, dict):
        for key, v in value.items():
            if isinstance(v, dict) and v or _records(v):
                show.print(f"{pad}{key}:")
                _print_value(show, v, pad + "  ")
            else:
                show.print(f"{pad}{key}: {_scalar(v)}")
    elif _records(value):
        for record in value:
            lines = [f"{k}: {_scalar(v)}" for k, v in record.items()]
            show.print(f"{pad}- " + f"\n{pad}  ".join(lines or ["-"]))
    else:
        show.print(f"{pad}{'none' if value == [] else _scalar(value)}")


def _records(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _scalar(v: Any) -> str:
    if v is None or v == []:
        return "-"
    if isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v):
        return ", ".join(str(x) for x in v)
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"), sort_keys=True)
    return str(v)


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
def balances(holder: Annotated[str, typer.Argument(help="Party or member id holding deposit tokens.")],
             home: Home = DEFAULT_HOME, node: Node = None, json_out: Json = False) -> None:
    """A holder's deposit-token accounts: balance per issuing bank and currency."""
    from consortium.ledger import queries

    _ledger_query(home, node, json_out, f"balances of {holder}", lambda led: queries.balances(led, holder))


@query_app.command()
def flows(home: Home = DEFAULT_HOME, node: Node = None, json_out: Json = False) -> None:
    """HKMA's view: cross-border token payments, interbank positions, token liabilities."""
    from consortium.ledger import queries

    _ledger_query(home, node, json_out, "cross-border flows", queries.cross_border)


@query_app.command()
def summary(home: Home = DEFAULT_HOME, node: Node = None, json_out: Json = False) -> None:
    """Ledger height, date and record counts per table."""
    from consortium.ledger import queries

    _ledger_query(home, node, json_out, "summary", queries.summary)


@query_app.command()
def block(height: Annotated[int, typer.Argument(help="Block height (0: the newest).")],
          home: Home = DEFAULT_HOME, node: Node = None, json_out: Json = False) -> None:
    """A decided block: header, certificate signers, each tx with its result."""
    if height < 0:
        raise UserError(f"block height {height}: must be 0 (the newest) or more")
    ident, store = _store(home, node)
    try:
        last = store.last_height()
        h = height or last
        answer = _block_view(store, h) if 0 < h <= last else None
    finally:
        store.close()
    if answer is None and not 0 < h <= last:
        err_console.print(f"block {h or height} does not exist: the chain on {ident} ends at height {last}",
                          highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    _answer(ident, last, answer, json_out, f"block {h}")


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
