"""``yardmaster workflow show|cancel ID``: a workflow's progress, or cancelling it whole."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from scheduler.cli.base import app
from scheduler.cli.connect import open_store
from scheduler.client import Client

workflow_app = typer.Typer(
    help="Workflows (tasks with dependencies submitted as one unit): status, cancel.",
    no_args_is_help=True,
)
app.add_typer(workflow_app, name="workflow")

WorkflowId = Annotated[str, typer.Argument(help="The workflow's id.")]


@workflow_app.command("show")
def show(
    workflow_id: WorkflowId,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """How many of its tasks are in each state, and whether all are finished."""
    status = Client(open_store()).workflow(workflow_id)
    if as_json:
        typer.echo(json.dumps(status.as_json()))
        return
    done = "finished" if status.finished else "in progress"
    typer.echo(f"workflow {workflow_id}: {status.total} tasks, {done}")
    for state, count in sorted(status.counts.items()):
        typer.echo(f"  {state}: {count}")


@workflow_app.command("cancel")
def cancel(workflow_id: WorkflowId) -> None:
    """Cancel every unfinished task of the workflow (running ones are flagged)."""
    n = Client(open_store()).cancel_workflow(workflow_id)
    typer.echo(f"workflow {workflow_id}: {n} unfinished tasks cancelled or flagged")
