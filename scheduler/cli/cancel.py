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
    """Cancel a task: pending or dispatched at once; running by flag or by terminating it.

    Exits 0 when the task is cancelled or its running body was flagged, 1 when it had
    already ended otherwise (or a terminated run did not end within ``--timeout``).
    """
    client = Client(open_store())
    handle = client.handle(task_id)
    done = handle.cancel(terminate, timeout=timeout)
    record = handle.record()
    reason = f" ({record.reason})" if record.reason else ""
    if done or record.state.terminal or not record.cancel_requested:
        typer.echo(f"{task_id} {record.state}{reason}")
        if not done:
            raise typer.Exit(1)
        return
    killing = (
        terminate if terminate is not None else client.store.settings.cancel_running == "terminate"
    )
    typer.echo(f"{task_id} {record.state}: flagged for cancellation")
    if killing:
        typer.echo(
            f"  its worker was asked to kill the run, which had not ended within {timeout:g}s; "
            f"`yardmaster status` shows when it does"
        )
        raise typer.Exit(1)
    typer.echo(
        "  the body stops at its next self.check_cancelled() and the task ends cancelled; "
        "a body that never checks runs to its end (--terminate kills the run)"
    )
