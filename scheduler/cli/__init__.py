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
from typing import Any

from scheduler.errors import YardmasterError

# Command (or command group) name -> the module under scheduler.cli that registers it.
COMMANDS: dict[str, str] = {
    "api": "api",
    "submit": "ops",
    "status": "ops",
    "up": "stack",
    "demo": "demo",
    "breaker": "lifecycle",
    "cancel": "lifecycle",
    "monitor": "monitor",
    "health": "monitor",
    "dispatcher": "processes",
    "worker": "processes",
    "run": "run",
    "simulate": "simulate",
    "cache": "cache",
    "ratelimit": "cache",
    "strategy": "strategy",
    "workload": "workload",
    "tune": "tune",
}
# The order of the help listing.
MODULES = (
    "api", "cache", "demo", "lifecycle", "monitor", "ops", "processes", "run", "simulate", "stack", "strategy", "tune", "workload",
)  # fmt: skip


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
    """Run the command, turning yardmaster errors into a clear message and exit 2.

    Args:
        hard_exit: Let a command end the process once its output is written,
            without the interpreter's teardown (:func:`scheduler.cli.base.finish`).
    """
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
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
    from scheduler.cli.base import Invocation, app, err

    try:
        app(obj=Invocation(hard_exit=hard_exit))
    except YardmasterError as exc:
        err().print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
