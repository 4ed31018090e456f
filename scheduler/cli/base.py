"""The typer application every command module registers on, and the error console.

Kept apart from ``scheduler/cli/__init__.py`` so that a command module can be
imported alone: ``yardmaster simulate`` loads the simulator, not Celery,
Redis or the HTTP API (see :func:`scheduler.cli.main`).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Annotated

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


@dataclass(frozen=True)
class Invocation:
    """How the command line was started; commands read it as their context's ``obj``.

    Attributes:
        hard_exit: Whether the process may end as soon as a command's output is
            written (see :func:`finish`): true for the program's own entry
            points, false when a caller goes on after the command (tests).
    """

    hard_exit: bool = False


def finish(ctx: typer.Context) -> None:
    """End the process at once, its output flushed, when the invocation allows it.

    A command that holds many objects (``simulate`` keeps every workload row and
    every result) would otherwise spend its last tenth of a second freeing them
    one by one and tearing down the interpreter, for a process that is ending
    anyway. Only what Python itself would do at exit and matters here is done:
    the standard streams and logging handlers are flushed.
    """
    invocation = ctx.find_root().obj
    if isinstance(invocation, Invocation) and invocation.hard_exit:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


@cache
def err() -> Console:
    """The console for errors and warnings (stderr), made on first use: rich takes
    a while to import, and most runs print nothing there."""
    from rich.console import Console

    return Console(stderr=True)


@app.callback()
def _root(
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show the traceback of an error instead of a short message."),
    ] = False,
) -> None:
    # A callback keeps the application a group of commands when only one
    # command module is loaded (typer would otherwise run that command as the
    # whole program). ``--debug`` is read by the runner (scheduler.cli.main),
    # which handles errors after typer has returned.
    del debug
