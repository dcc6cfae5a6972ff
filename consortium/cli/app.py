"""Entry point: the typer app, shared options and the one-line error policy.

Every ConsortiumError (bad input, bad config, a remote violation reported to
the user) is printed as one line on stderr with a non-zero exit code; no
traceback reaches the user. Exit codes: 0 ok, 1 a run/check failed, 2 usage or
configuration error."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from consortium.errors import ConsortiumError, UserError

app = typer.Typer(
    name="consortium",
    help="Shanghai-Hong Kong cargo-trade consortium: a multi-node BFT blockchain simulator.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

console = Console()
err_console = Console(stderr=True)

DEFAULT_HOME = Path("home")


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    """Shanghai-Hong Kong cargo-trade consortium: a multi-node BFT blockchain simulator."""
    if version:
        from consortium import __version__

        console.print(f"consortium {__version__}")
        raise typer.Exit(0)


def emit_json(data: Any) -> None:
    """Machine-readable output: one JSON document on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    # Register the commands (each module adds itself to `app`).
    from consortium.cli import commands  # noqa: F401

    # SIGTERM unwinds like Ctrl-C, so `finally` blocks stop the node processes and
    # brokers a command started (a node process installs its own handler later).
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    except UserError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except ConsortiumError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except OSError as exc:  # a file or device the user named cannot be used: not a bug of ours
        where = f"{exc.filename}: " if exc.filename else ""
        err_console.print(f"[red]error:[/red] {where}{exc.strerror or exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
