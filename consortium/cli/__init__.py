"""The `consortium` command line (typer + rich)."""

from consortium.cli.app import app, main

__all__ = ["app", "main"]
