"""`consortium tx ...`: sign a ledger transaction as a party, submit it, wait until decided.

    consortium tx ebl-issue --as carrier-sh --document td.json --to sh-exporter --consignee hk-importer
    consortium tx ebl-transfer --as sh-exporter --ebl <id> --to hk-importer
    consortium tx tnt-events --as carrier-sh --file load-events.json
    consortium tx <kind> --as PARTY --body '{...}' | --body-file body.json     (every ledger kind)

Exit code: 0 accepted; 1 rejected (the reason code is printed), refused
before sending (malformed body) or refused by the nodes' admission check
(reason code and the refusing nodes printed; it reached no block); 2 usage
or configuration error (also: the broker cannot be reached); 3 not decided
within --timeout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from consortium import limits
from consortium.cli.app import DEFAULT_HOME, app, console, emit_json, err_console
from consortium.errors import UserError

tx_app = typer.Typer(help="Sign a transaction as a party, submit it to the live consortium, wait for its block.",
                     no_args_is_help=True)
app.add_typer(tx_app, name="tx")

EXIT_REJECTED = 1
EXIT_TIMEOUT = 3

As = Annotated[str, typer.Option("--as", help="Acting party or member (its key in HOME/keys signs).")]
Home = Annotated[Path, typer.Option(help="Consortium home directory.")]
Broker = Annotated[Optional[str], typer.Option(help="mqtt://host:port (default: the recorded broker).")]
Node = Annotated[Optional[str], typer.Option(help="Read the nonce and the decision from this node's store.")]
Timeout = Annotated[float, typer.Option(help="Seconds to wait for the decision.")]
Json = Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")]


def _run(kind: str, actor: str, body: dict[str, Any], home: Path, broker: str | None, node: str | None,
         timeout: float, json_out: bool, extra: dict[str, Any] | None = None) -> None:
    from consortium.client.submit import submit
    from consortium.ledger.fields import TxError

    try:
        outcome = submit(home, actor, kind, body, broker=broker, node=node, timeout_s=timeout)
    except TxError as exc:
        _report({"decided": False, "accepted": False, "code": str(exc.code), "detail": exc.detail,
                 "refused": "before sending"}, json_out)
        raise typer.Exit(EXIT_REJECTED) from None
    out = {"kind": kind, "actor": actor, **outcome.to_dict(), **(extra or {})}
    _report(out, json_out)
    if outcome.refused:
        raise typer.Exit(EXIT_REJECTED)
    if outcome.height is None:
        raise typer.Exit(EXIT_TIMEOUT)
    if not outcome.accepted:
        raise typer.Exit(EXIT_REJECTED)


def _report(out: dict[str, Any], json_out: bool) -> None:
    if json_out:
        emit_json(out)
    elif out.get("refused"):
        err_console.print(f"refused before sending: {out['code']} {out['detail']}", highlight=False, soft_wrap=True)
    elif out.get("refused_by"):
        nodes = out["refused_by"]
        err_console.print(f"refused by the nodes, in no block: {out['code']} {out['detail']} "
                          f"(tx {out['tx_hash'][:16]}...; refused by {', '.join(nodes)})",
                          highlight=False, soft_wrap=True)
    elif not out["decided"]:
        why = out["detail"].removeprefix("not decided in time")
        err_console.print(f"tx {out['tx_hash'][:16]}... not decided within the timeout{why}",
                          highlight=False, soft_wrap=True)
    elif out["accepted"]:
        extra = f", eBL {out['ebl']}" if "ebl" in out else ""
        console.print(f"accepted at height {out['height']} (tx {out['tx_hash'][:16]}...{extra})", highlight=False,
                      soft_wrap=True)
    else:
        console.print(f"rejected at height {out['height']}: {out['code']} {out['detail']}", highlight=False,
                      soft_wrap=True)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read {what} as JSON ({exc})") from None


# ---------------------------------------------------------------- convenience commands


@tx_app.command("ebl-issue")
def ebl_issue(
    actor: As,
    document: Annotated[Path, typer.Option(help="DCSA eBL 3.0 transport document (JSON file).")],
    to: Annotated[str, typer.Option(help="Party the eBL is issued to (PINT issueTo), usually the shipper.")],
    consignee: Annotated[Optional[str], typer.Option(help="Ledger party of the document's consignee (straight bill).")] = None,
    endorsee: Annotated[Optional[str], typer.Option(help="Ledger party of the document's endorsee (to-order bill).")] = None,
    supersedes: Annotated[Optional[str], typer.Option(help="Id of the voided eBL this amended document reissues.")] = None,
    home: Home = DEFAULT_HOME, broker: Broker = None, node: Node = None, timeout: Timeout = limits.tx_wait_ms / 1000,
    json_out: Json = False,
) -> None:
    """ISSUE an eBL from a DCSA transport document (the carrier acts; LOAD events must be on the ledger)."""
    from consortium.ledger import builders

    text = document.read_text(encoding="utf-8") if document.exists() else None
    if text is None:
        raise UserError(f"{document}: no such file")
    body = builders.issue_body(text, to, consignee=consignee, endorsee=endorsee, supersedes=supersedes)
    _run("ISSUE", actor, body, home, broker, node, timeout, json_out, {"ebl": body["checksum"]})


@tx_app.command("ebl-transfer")
def ebl_transfer(
    actor: As,
    ebl: Annotated[str, typer.Option(help="eBL id (its document checksum, 64 hex).")],
    to: Annotated[str, typer.Option(help="Recipient party.")],
    home: Home = DEFAULT_HOME, broker: Broker = None, node: Node = None, timeout: Timeout = limits.tx_wait_ms / 1000,
    json_out: Json = False,
) -> None:
    """TRANSFER possession of an eBL (the possessor acts)."""
    _run("TRANSFER", actor, {"ebl": ebl, "recipient": to}, home, broker, node, timeout, json_out, {"ebl": ebl})


@tx_app.command("tnt-events")
def tnt_events(
    actor: As,
    file: Annotated[Path, typer.Option(help="DCSA Track & Trace events (JSON file: {'events': [...]} or a list).")],
    home: Home = DEFAULT_HOME, broker: Broker = None, node: Node = None, timeout: Timeout = limits.tx_wait_ms / 1000,
    json_out: Json = False,
) -> None:
    """CARGO_EVENT from a DCSA T&T file (e.g. the LOAD events an ISSUE needs)."""
    from consortium.ledger import builders

    data = _read_json(file, "T&T events")
    events = data if isinstance(data, list) else data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list):
        raise UserError(f"{file}: expected a list of events or {{'events': [...]}}")
    _run("CARGO_EVENT", actor, builders.events_body(events), home, broker, node, timeout, json_out)


# ---------------------------------------------------------------- one command per ledger kind


def _generic(kind: str) -> Callable[..., None]:
    def command(
        actor: As,
        body: Annotated[Optional[str], typer.Option(help="The body as a JSON object.")] = None,
        body_file: Annotated[Optional[Path], typer.Option(help="The body in a JSON file.")] = None,
        home: Home = DEFAULT_HOME, broker: Broker = None, node: Node = None, timeout: Timeout = limits.tx_wait_ms / 1000,
        json_out: Json = False,
    ) -> None:
        if (body is None) == (body_file is None):
            raise UserError("give the body with exactly one of --body JSON or --body-file FILE")
        if body is not None:
            try:
                data = json.loads(body)
            except ValueError as exc:
                raise UserError(f"--body is not JSON ({exc})") from None
        else:
            assert body_file is not None
            data = _read_json(body_file, "the body")
        if not isinstance(data, dict):
            raise UserError("the body must be a JSON object")
        _run(kind, actor, _bytes_fields(data), home, broker, node, timeout, json_out)

    command.__doc__ = f"{kind} with a JSON body (fields as in consortium/ledger/bodies.py; bytes as hex:...)."
    return command


def _bytes_fields(data: Any) -> Any:
    """JSON has no bytes: a string "hex:0a1b..." stands for bytes (keys, salted hashes, sealed data)."""
    if isinstance(data, dict):
        return {k: _bytes_fields(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_bytes_fields(v) for v in data]
    if isinstance(data, str) and data.startswith("hex:"):
        try:
            return bytes.fromhex(data[4:])
        except ValueError:
            raise UserError(f"{data[:20]!r}...: not hex after 'hex:'") from None
    return data


def _register() -> None:
    from consortium.ledger.bodies import BY_KIND

    for kind in sorted(BY_KIND):
        tx_app.command(kind.lower().replace("_", "-"))(_generic(kind))


_register()
