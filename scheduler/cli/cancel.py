"""``yardmaster cancel``: end a pending or dispatched task, flag or terminate a running one."""

from __future__ import annotations

from typing import Annotated

import typer

from scheduler.cli.base import app
from scheduler.cli.connect import open_store
from scheduler.client import Client


@app.command()
def cancel(
    task_id: Annotated[str, typer.Argument(help="The task's id.")],
    terminate: Annotated[
        bool | None,
        typer.Option(
            "--terminate/--flag",
            help="Kill a running task (default: YM_CANCEL_RUNNING), or only flag it.",
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a terminated run.")] = 30.0,
) -> None:
    """Cancel a task: pending or dispatched at once; running by flag or by terminating it."""
    client = Client(open_store())
    handle = client.handle(task_id)
    done = handle.cancel(terminate, timeout=timeout)
    record = handle.record()
    reason = f" ({record.reason})" if record.reason else ""
    typer.echo(f"{task_id} {record.state}{reason}")
    if not done:
        raise typer.Exit(1)
