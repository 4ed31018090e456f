"""The ``yardmaster`` command line (typer)."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from scheduler.errors import YardmasterError

app = typer.Typer(
    name="yardmaster",
    help="Exact, strategy-driven scheduling for Celery on Redis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)

from scheduler.cli import (  # noqa: E402
    api,
    cache,
    demo,
    lifecycle,
    monitor,
    ops,
    processes,
    run,
    simulate,
    stack,
    strategy,
    workload,
)

__all__ = [
    "api", "app", "cache", "demo", "lifecycle", "main", "monitor", "ops", "processes", "run", "simulate", "stack", "strategy", "workload",
]  # fmt: skip


def main() -> None:
    """Entry point: run the command, turning yardmaster errors into a clear message and exit 2."""
    try:
        app()
    except YardmasterError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
