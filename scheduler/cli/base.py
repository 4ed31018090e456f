"""The typer application every command module registers on, and the error console.

Kept apart from ``scheduler/cli/__init__.py`` so that a command module can be
imported alone: ``yardmaster simulate`` loads the simulator, not Celery,
Redis or the HTTP API (see :func:`scheduler.cli.main`).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(
    name="yardmaster",
    help="Exact, strategy-driven scheduling for Celery on Redis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@cache
def err() -> Console:
    """The console for errors and warnings (stderr), made on first use: rich takes
    a while to import, and most runs print nothing there."""
    from rich.console import Console

    return Console(stderr=True)


@app.callback()
def _root() -> None:
    # A callback keeps the application a group of commands when only one
    # command module is loaded (typer would otherwise run that command as the
    # whole program).
    pass
