"""``yardmaster workload gen``: write a synthetic workload file of one kind."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from scheduler.cli.base import app
from scheduler.errors import InvalidInputError
from scheduler.workload_dag import DAG_KIND, DagShape, generate_dag
from scheduler.workload_gen import DEFAULT_WARM_CAPACITY, KINDS, generate, to_jsonl

workload_app = typer.Typer(
    name="workload",
    help="Make workload files for `yardmaster simulate` and `yardmaster run`.",
    no_args_is_help=True,
)
app.add_typer(workload_app)

ALL_KINDS = (*KINDS, DAG_KIND)
_DAG_ONLY = "Only with --kind dag."


@workload_app.command()
def gen(
    kind: Annotated[str, typer.Option(help="One of: " + ", ".join(ALL_KINDS) + ".")],
    n: Annotated[int, typer.Option(help="Number of tasks.")],
    seed: Annotated[int, typer.Option(help="Seed; the same seed gives the same file.")] = 0,
    workers: Annotated[int, typer.Option(help="Workers the load is sized for.")] = 2,
    slots: Annotated[int, typer.Option(help="Slots per worker the load is sized for.")] = 1,
    scale: Annotated[float, typer.Option(help="Factor on every duration, gap and deadline.")] = 1.0,
    dags: Annotated[int | None, typer.Option(help=f"Number of workflows (1). {_DAG_ONLY}")] = None,
    width: Annotated[
        int | None, typer.Option(help=f"Mean tasks per layer (2 x slots in all). {_DAG_ONLY}")
    ] = None,
    fan_in: Annotated[
        int | None, typer.Option(help=f"Most parents of a task (3). {_DAG_ONLY}")
    ] = None,
    fan_out: Annotated[
        int | None, typer.Option(help=f"Most children of a task (3). {_DAG_ONLY}")
    ] = None,
    slack: Annotated[
        float | None,
        typer.Option(help=f"Sink deadline over the workflow's lower bound (1.5). {_DAG_ONLY}"),
    ] = None,
    load: Annotated[
        float | None, typer.Option(help=f"Arrival load of workflows (0.8). {_DAG_ONLY}")
    ] = None,
    hints: Annotated[
        bool | None,
        typer.Option("--hints/--no-hints", help=f"Typical durations as hints (no). {_DAG_ONLY}"),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Generate a workload of one kind (deterministic for a seed); see docs/simulator.md."""
    dag_options: dict[str, Any] = {
        "dags": dags,
        "width": width,
        "fan_in": fan_in,
        "fan_out": fan_out,
        "slack": slack,
        "load": load,
        "hints": hints,
    }
    given = {name: value for name, value in dag_options.items() if value is not None}
    command = ["yardmaster", "workload", "gen", "--kind", kind, "--n", str(n), "--seed", str(seed)]
    command += ["--workers", str(workers), "--slots", str(slots), "--scale", f"{scale:g}"]
    try:
        if kind == DAG_KIND:
            shape = DagShape(**given)
            tasks = generate_dag(n, seed, workers=workers, slots=slots, scale=scale, shape=shape)
            for name, value in given.items():
                flag = "--" + name.replace("_", "-")
                if isinstance(value, bool):
                    command.append(flag if value else "--no-" + name)
                else:
                    command += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
        else:
            if given:
                name = next(iter(given))
                raise InvalidInputError(name, given[name], "only with --kind dag")
            tasks = generate(kind, n, seed, workers=workers, slots=slots, scale=scale)
    except InvalidInputError as exc:
        allowed = exc.allowed
        if exc.field == "kind":
            allowed = "one of: " + ", ".join(ALL_KINDS)
        raise InvalidInputError("--" + exc.field.replace("_", "-"), exc.value, allowed) from None
    header = f"made by: {shlex.join(command)} (warm capacity {DEFAULT_WARM_CAPACITY})"
    text = to_jsonl(tasks, header)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {len(tasks)} tasks ({kind}, seed {seed}) to {out}")
