"""``yardmaster submit``: one task, its id (and its result with ``--wait``)."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from scheduler import placement
from scheduler.cli.base import app
from scheduler.cli.connect import open_client
from scheduler.errors import InvalidInputError


def _json_arg(field: str, text: str, kind: type) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            field, text, f"JSON text of a {kind.__name__}", problem=str(exc)
        ) from None
    if not isinstance(value, kind):
        raise InvalidInputError(field, text, f"JSON text of a {kind.__name__}")
    return value


@app.command()
def submit(
    name: Annotated[str, typer.Argument(help="Registered task name, e.g. sleep.")],
    args: Annotated[
        list[str] | None, typer.Argument(help="Positional arguments, each parsed as JSON.")
    ] = None,
    kwargs: Annotated[str, typer.Option(help="Keyword arguments as a JSON object.")] = "{}",
    priority: Annotated[int, typer.Option(help="0..9, higher runs first.")] = 5,
    deadline_in: Annotated[float | None, typer.Option(help="Deadline, seconds from now.")] = None,
    expected_duration: Annotated[
        float | None, typer.Option(help="Run-time hint in seconds.")
    ] = None,
    affinity_key: Annotated[str | None, typer.Option(help="Affinity key.")] = None,
    cache_ttl: Annotated[
        float | None, typer.Option(help="Cache a successful result this many seconds.")
    ] = None,
    cache_version: Annotated[
        str | None, typer.Option(help="Version part of the cache key.")
    ] = None,
    coalesce: Annotated[bool, typer.Option(help="Attach to an identical task in flight.")] = False,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Return the task submitted with this key.")
    ] = None,
    concurrency_key: Annotated[
        str | None, typer.Option(help="Cap tasks of this key (with --max-concurrent).")
    ] = None,
    max_concurrent: Annotated[int | None, typer.Option(help="Cap for --concurrency-key.")] = None,
    retry: Annotated[
        str | None,
        typer.Option(help='Retry policy as JSON, e.g. \'{"max_attempts": 3, "backoff": 1}\'.'),
    ] = None,
    soft_time_limit: Annotated[float | None, typer.Option(help="Soft time limit, s.")] = None,
    time_limit: Annotated[float | None, typer.Option(help="Hard time limit, s.")] = None,
    after: Annotated[
        list[str] | None,
        typer.Option(help="Run after this task succeeded (repeat for several parents)."),
    ] = None,
    on_parent_failure: Annotated[
        str,
        typer.Option(
            help="cancel (default), run, or run_only (an errback: only after a failure): "
            "what a parent's failure does."
        ),
    ] = "cancel",
    pass_results: Annotated[
        bool, typer.Option(help="The parents' results become the first argument.")
    ] = False,
    resources: Annotated[
        str | None, typer.Option(help="Resources it holds while it runs, e.g. gpu=1,mem=4G.")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option(help="A label key=value its worker must carry (repeatable).")
    ] = None,
    queue: Annotated[
        str | None, typer.Option(help="A Celery queue its worker must consume (worker -Q).")
    ] = None,
    prefer: Annotated[
        list[str] | None,
        typer.Option(help="A label key=value a worker should carry; soft (repeatable)."),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Refuse it now if no live worker could ever run it.")
    ] = False,
    wait: Annotated[bool, typer.Option(help="Wait for the result and print it.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 60.0,
) -> None:
    """Submit one task; prints its id (and its result with --wait)."""
    parsed = [_json_arg(f"args[{i}]", text, object) for i, text in enumerate(args or [])]
    client = open_client()
    handle = client.submit(
        name,
        parsed,
        _json_arg("kwargs", kwargs, dict),
        priority=priority,
        deadline=None if deadline_in is None else time.time() + deadline_in,
        expected_duration=expected_duration,
        affinity_key=affinity_key,
        cache_ttl=cache_ttl,
        cache_version=cache_version,
        coalesce=coalesce,
        idempotency_key=idempotency_key,
        concurrency_key=concurrency_key,
        max_concurrent=max_concurrent,
        retry=None if retry is None else _json_arg("retry", retry, dict),
        soft_time_limit=soft_time_limit,
        time_limit=time_limit,
        depends_on=after or (),
        on_parent_failure=on_parent_failure,
        pass_results=pass_results,
        resources=None if resources is None else placement.resources("--resources", resources),
        labels=None if not label else placement.labels("--label", label),
        queue=placement.queue("--queue", queue),
        prefer=None if not prefer else placement.labels("--prefer", prefer),
        strict=strict,
    )
    typer.echo(handle.id)
    if wait:
        typer.echo(json.dumps(handle.result(timeout=timeout)))
