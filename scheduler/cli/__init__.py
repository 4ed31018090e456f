"""The ``yardmaster`` command line (typer).

Each command lives in its own module; :func:`main` imports only the module of
the command it is asked for, so a command does not pay for the imports of
the others (``simulate`` starts without Celery, Redis or FastAPI). Reading
``app`` from this package loads every command.
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import Any, NoReturn

from scheduler.errors import StoreError, YardmasterError

# Command (or command group) name -> the module under scheduler.cli that registers it:
# each is named after its command.
COMMANDS: dict[str, str] = {
    name: name
    for name in (
        "api", "breaker", "cache", "cancel", "demo", "dispatcher", "health", "monitor",
        "ratelimit", "run", "simulate", "status", "strategy", "submit", "trace", "tune", "up",
        "worker", "workflow", "workload",
    )
}  # fmt: skip
# The order of the help listing.
MODULES = tuple(sorted(set(COMMANDS.values())))


def load_commands(*modules: str) -> None:
    """Import command modules (every one when none is named), which registers their commands."""
    for name in modules or MODULES:
        importlib.import_module(f"scheduler.cli.{name}")


def __getattr__(name: str) -> Any:
    if name == "app":
        load_commands()
        from scheduler.cli import base

        return getattr(base, name)
    raise AttributeError(f"module 'scheduler.cli' has no attribute {name!r}")


def run() -> None:
    """The ``yardmaster`` program (and ``python -m scheduler.cli``): :func:`main` in a
    process of its own, which a command may end as soon as its output is written."""
    main(hard_exit=True)


def main(*, hard_exit: bool = False) -> None:
    """Run the command; a yardmaster error, or Redis out of reach or refusing, ends it
    with a short message and exit 2 (``--debug`` shows the traceback instead).

    Args:
        hard_exit: Let a command end the process once its output is written,
            without the interpreter's teardown (:func:`scheduler.cli.base.finish`).
    """
    args = sys.argv[1:]
    command = next((arg for arg in args if not arg.startswith("-")), None)
    debug = "--debug" in args[: args.index(command) if command else len(args)]
    module = COMMANDS.get(command or "")
    if hard_exit and module == "simulate":
        # A process that only simulates makes no reference cycles worth collecting
        # (the engine pauses the collector for its runs anyway); without collections
        # while the modules load, start-up is about 10 ms shorter.
        gc.disable()
    if module is not None:
        load_commands(module)
    else:
        load_commands()  # no command, help, or a mistyped name: list them all
    from scheduler.cli.base import Invocation, app

    try:
        app(obj=Invocation(hard_exit=hard_exit))
    except Exception as exc:
        if debug:
            raise
        lines = _unreachable(exc)
        if lines is not None:
            _fail(*lines)
        if isinstance(exc, YardmasterError):
            _fail(str(exc))
        raise


def _unreachable(exc: Exception) -> tuple[str, str] | None:
    """Two lines when ``exc`` (or the Redis error it was raised from) says that Redis
    cannot be reached or refuses, else None."""
    if not isinstance(exc, StoreError) and not type(exc).__module__.startswith("redis"):
        return None  # neither the store's error nor redis-py's (raised by a library)
    from scheduler.cli.unreachable import explain

    connect = sys.modules.get("scheduler.cli.connect")
    opened = connect.last_opened() if connect is not None else None
    if opened is None:  # a command that reaches Redis another way (up, demo)
        from scheduler.settings import load_settings

        opened = (load_settings().redis_url or "", None)
    return explain(exc, *opened)


def _fail(first: str, *more: str) -> NoReturn:
    """Print an error (at most two lines) and exit 2."""
    from rich.markup import escape

    from scheduler.cli.base import err

    err().print(f"[bold red]error:[/] {escape(first)}", highlight=False, soft_wrap=True)
    for line in more:
        err().print(f"  {escape(line)}", highlight=False, soft_wrap=True)
    sys.exit(2)
